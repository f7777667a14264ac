"""Fine-tuning a pretrained bundle on a user's folder vs training from scratch for the same time vs an n-gram.

For each folder (melodies that pretraining never saw: the Kinderlieder `essen/kinder0`, held out of every bundled
checkpoint, and the Bach chorale sopranos `bach-chorales`), 20% of the melodies (by a hash of their id) are held out
as the test set; the other 80% are written as MIDI files into a temporary folder, exactly what a user gives
`recipes/finetune_style.yaml` (style `other`). Then, on one CPU thread each:

- finetune: `python recipes/train.py --config recipes/finetune_style.yaml --dataset FOLDER` (init_from folk-base,
  epochs with early stopping on validation loss, at most 15 minutes (`max_train_minutes`), best checkpoint kept);
  its wall time is T.
- scratch: the same preset (`small`), same data and recipe, fresh weights, stopped after the same wall time T
  (`--max_train_minutes T/60`).
- ngram: an order-2 note n-gram (pitch, duration, IOI viewpoints) fit on the same 80%.

Reported on the held-out 20%: bits per note and pitch bits per note (the models score `BOS Style-other ...`).

    .venv/bin/python benchmarks/quality/finetune_folders.py --folders essen/kinder0 bach-chorales --base folk-base
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).parents[2]



def split(melodies, test_share: float = 0.2):
    from hf_melody.data.dataset import split_of

    test = [m for m in melodies if split_of(m.id, 0.0, test_share, seed=7) == "test"]
    train = [m for m in melodies if split_of(m.id, 0.0, test_share, seed=7) != "test"]
    return train, test


def write_folder(melodies, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(melodies):
        m.to_score().dump_midi(str(folder / f"{i:04d}.mid"))


def train(args_list: list[str], time_limit: float | None, log: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "recipes/train.py"), *args_list]
    if time_limit is not None:  # `max_train_minutes` stops after the step that passes it
        cmd += ["--max_train_minutes", str(time_limit / 60)]
    t = time.perf_counter()
    with open(log, "w") as f:
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - t


def score(bundle: str, test) -> dict:
    from hf_melody import load_model, load_tokenizer
    from hf_melody.evaluation.likelihood import score_melodies

    for m in test:
        m.style = "other"
    r = score_melodies(load_model(bundle), load_tokenizer(bundle), test)
    return {"bits_per_note": round(r.bits_per_note, 3), "pitch_bits_per_note": round(r.pitch_bits_per_note, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folders", nargs="+", default=["essen/kinder0", "bach-chorales"])
    parser.add_argument("--base", default="folk-base")
    parser.add_argument("--out", default="out/finetune_folders")
    args = parser.parse_args()

    from hf_melody import load_melodies
    from hf_melody.evaluation.baselines import NGramNoteModel

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in args.folders:
        melodies, _ = load_melodies(spec, progress=False)
        train_mels, test = split(melodies)
        name = spec.replace("/", "-")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / name
            write_folder(train_mels, folder)
            common = ["--config", "recipes/finetune_style.yaml", "--dataset", str(folder), "--disable_tqdm", "true",
                      "--overwrite_output_dir", "true"]
            ft_dir = out / f"{name}-finetune"
            seconds = train([*common, "--init_from", args.base, "--output_dir", str(ft_dir)], None,
                            out / f"{name}-finetune.log")
            sc_dir = out / f"{name}-scratch"
            train([*common, "--init_from", "", "--preset", "small", "--learning_rate", "0.002",
                   "--num_train_epochs", "1000", "--early_stopping_patience", "1000", "--output_dir", str(sc_dir)],
                  seconds, out / f"{name}-scratch.log")
        ngram = NGramNoteModel(order=2).fit([m.notes for m in train_mels]).evaluate([m.notes for m in test])
        record = {"benchmark": "finetune_folders", "folder": spec, "train_melodies": len(train_mels),
                  "test_melodies": len(test), "finetune_seconds": round(seconds),
                  "finetune": score(str(ft_dir), test), "scratch_same_time": score(str(sc_dir), test),
                  "ngram_order2": {"bits_per_note": round(ngram["bits_per_note"], 3),
                                   "pitch_bits_per_note": round(ngram["pitch_bits_per_note"], 3)}}
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
