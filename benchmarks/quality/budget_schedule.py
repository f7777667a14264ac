"""Fine-tuning sized to the time budget (issue 29): the learning-rate schedule planned for the epochs (before) vs
sized to `max_train_minutes` (after, `training/schedule.py`), on three folders held out of folk-base's pretraining.

Folders (20% of each held out as the test set by a hash of the melody id, as in `finetune_folders.py`):
- `long-simple`: Palestrina soprano lines (music21 corpus `palestrina`), re-timed to equal quarter notes (each rest
  kept as one quarter rest), three movements joined into one tune: ~300 notes of plain rhythm each.
- `bach-chorales`: the Bach chorale sopranos.
- `essen/kinder0`: the Kinderlieder (folk tunes with rhythm).

Each run: `recipes/train.py --config recipes/finetune_style.yaml --dataset FOLDER --max_train_minutes M` on one
thread; before adds `--fit_schedule_to_budget false` (the Trainer's cosine over the 30 planned epochs). Reported:
held-out bits per note (and pitch bits) of the kept checkpoint, the steps run and the last learning rate.

    PYTHONPATH=src .venv/bin/python benchmarks/quality/budget_schedule.py --minutes 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from finetune_folders import ROOT, score, split, train, write_folder  # noqa: E402 - the sibling benchmark's helpers

TPQ = 480


def long_simple(num_tunes: int = 100, join: int = 3, cache: Path | None = None):
    """`num_tunes` long, rhythmically plain melodies from Palestrina's soprano lines (see the module)."""
    from music21 import converter

    from hf_melody.data.melody import Melody
    from hf_melody.data.music21_corpora import _m21_melody, _music21_root

    if cache is not None and cache.is_file():
        return [Melody(**d) for d in json.loads(cache.read_text())]
    files = sorted((_music21_root() / "palestrina").glob("*.krn"))[:num_tunes * join]
    lines = []
    for f in files:
        m = _m21_melody(converter.parse(str(f)), f.stem, "palestrina", "")
        notes, t, end = [], 0, 0
        for onset, duration, pitch in m.notes:
            if onset > end:  # a rest: one quarter
                t += TPQ
            notes.append([t, TPQ, pitch])
            t, end = t + TPQ, onset + duration
        lines.append(notes)
    melodies = []
    for i in range(0, len(lines) - join + 1, join):
        notes, t = [], 0
        for line in lines[i:i + join]:
            notes += [[t + o, d, p] for o, d, p in line]
            t = notes[-1][0] + 2 * TPQ
        melodies.append(Melody(f"long-simple/{i // join}", "long-simple", notes, [[0, 4, 4]]))
    if cache is not None:
        cache.write_text(json.dumps([m.to_dict() for m in melodies]))
    return melodies


def last_lr(bundle: Path) -> tuple[int, float]:
    log = json.loads((bundle / "training_log.json").read_text())["train"]
    lrs = [h for h in log if "learning_rate" in h]
    return lrs[-1]["step"], lrs[-1]["learning_rate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folders", nargs="+", default=["long-simple", "bach-chorales", "essen/kinder0"])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--base", default="folk-base")
    parser.add_argument("--variants", nargs="+", default=["before", "after"])
    parser.add_argument("--out", default="out/budget_schedule")
    args = parser.parse_args()

    from hf_melody import load_melodies

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # before: the recipe as it was, a schedule planned for its 30 epochs and a fixed evaluation interval
    recipe = (ROOT / "recipes/finetune_style.yaml").read_text().splitlines()
    before = out / "finetune_style_before.yaml"
    before.write_text("\n".join(line for line in recipe if not line.startswith(("evals_per_run:", "fit_schedule")))
                      + "\nfit_schedule_to_budget: false\n")
    for spec in args.folders:
        melodies = (long_simple(cache=out / "long-simple.json") if spec == "long-simple"
                    else load_melodies(spec, progress=False)[0])
        train_mels, test = split(melodies)
        name = spec.replace("/", "-")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / name
            write_folder(train_mels, folder)
            for variant, recipe in (("before", before), ("after", "recipes/finetune_style.yaml")):
                if variant not in args.variants:
                    continue
                bundle = out / f"{name}-{variant}"
                seconds = train(["--config", str(recipe), "--dataset", str(folder),
                                 "--init_from", args.base, "--output_dir", str(bundle), "--disable_tqdm", "true",
                                 "--overwrite_output_dir", "true"], args.minutes * 60, out / f"{name}-{variant}.log")
                info = json.loads((bundle / "training_info.json").read_text())
                step, lr = last_lr(bundle)
                record = {"benchmark": "budget_schedule", "folder": spec, "variant": variant,
                          "train_melodies": len(train_mels), "test_melodies": len(test), "minutes": args.minutes,
                          "seconds": round(seconds), "last_step": step, "last_lr": lr,
                          "schedule": info.get("schedule", {}).get("summary"), **score(str(bundle), test)}
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
