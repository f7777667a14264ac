"""Fine-tuning sized to the time budget (issue 29): the learning-rate schedule planned for the epochs (before) vs
sized to `max_train_minutes` (after, `training/schedule.py`), on three folders held out of folk-base's pretraining.

Folders (20% of each held out as the test set by a hash of the melody id, as in `finetune_folders.py`):
- `long-simple`: Palestrina soprano lines (music21 corpus `palestrina`), re-timed to equal quarter notes (each rest
  kept as one quarter rest), three movements joined into one tune: ~300 notes of plain rhythm each.
- `bach-chorales`: the Bach chorale sopranos.
- `essen/kinder0`: the Kinderlieder (folk tunes with rhythm).

Each run: `recipes/train.py --config recipes/finetune_style.yaml --dataset FOLDER --max_train_minutes M` on one
thread per process (`--processes 2`: two processes, DDP over gloo through `accelerate launch`); before adds
`--fit_schedule_to_budget false` (the Trainer's cosine over the 30 planned epochs, evaluation every 20 steps). Other
variants move one of the recipe's choices (peak learning rate, warmup share, early-stopping patience) to pick them by
measurement. `--side-by-side` runs a folder's variants at the same time, so they share the machine alike. Reported:
held-out bits per note (and pitch bits) of the kept checkpoint, the steps run, the last learning rate, the
evaluations and which was best.

    PYTHONPATH=src .venv/bin/python benchmarks/quality/budget_schedule.py --minutes 15 --side-by-side \
        --variants before after after-lr1e-3 after-warmup0.15
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

sys.path.insert(0, str(Path(__file__).parent))
from finetune_folders import ROOT, score, split, write_folder  # noqa: E402 - the sibling benchmark's helpers

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


VARIANTS = {
    # name: (recipe, extra arguments); "before" is the recipe as it was (written by `main`)
    "before": ("before", []),
    "after": ("after", []),
    "after-lr1e-3": ("after", ["--learning_rate", "0.001"]),
    "after-lr2.5e-4": ("after", ["--learning_rate", "0.00025"]),
    "after-warmup0.15": ("after", ["--warmup_steps", "0.15"]),
    "after-patience-off": ("after", ["--early_stopping_patience", "1000"]),
    "after-decay0.3": ("after", ["--decay_share", "0.3"]),
}
"""The runs this script knows: the schedule before/after, and the recipe's choices (peak learning rate, warmup share,
early-stopping patience, the share of the run that decays) each moved one at a time, to pick them by measurement."""


def curve(bundle: Path) -> dict:
    """What the run did: its last step and learning rate, its evaluations and the best one, its horizon."""
    info = json.loads((bundle / "training_info.json").read_text())
    logs = json.loads((bundle / "training_log.json").read_text())
    log = logs["train"]
    lrs = [h for h in log if "learning_rate" in h]
    evals = [(h["step"], h["eval_loss"]) for h in logs["eval"]]
    best = min(evals, key=lambda e: e[1]) if evals else (None, None)
    schedule = info.get("schedule", {})
    return {"last_step": max([h.get("step", 0) for h in log] or [0]),
            "last_lr": lrs[-1]["learning_rate"] if lrs else None,
            "evals": len(evals), "best_eval_step": best[0], "best_eval_loss": best[1],
            "first_eval_loss": evals[0][1] if evals else None, "schedule": schedule.get("summary"),
            "horizon": schedule.get("horizon_steps")}


def launch(recipe: Path, extra: list[str], folder: Path, bundle: Path, base: str, minutes: float, processes: int,
           log: Path) -> subprocess.Popen:
    """Start one fine-tuning run (one thread per process; `processes` 2 is DDP over gloo via `accelerate launch`)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = [str(ROOT / "recipes/train.py"), "--config", str(recipe), "--dataset", str(folder), "--init_from", base,
             "--output_dir", str(bundle), "--disable_tqdm", "true", "--overwrite_output_dir", "true",
             "--max_train_minutes", str(minutes), *extra]
    launcher = ([sys.executable] if processes == 1 else
                [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                 str(ROOT / "recipes/accelerate_configs/cpu-2proc.yaml")])
    with open(log, "w") as f:  # the child keeps its own copy of the file descriptor
        return subprocess.Popen([*launcher, *train], cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folders", nargs="+", default=["long-simple", "bach-chorales", "essen/kinder0"])
    parser.add_argument("--minutes", type=float, default=15.0, help="max_train_minutes of every run")
    parser.add_argument("--base", default="folk-base")
    parser.add_argument("--variants", nargs="+", default=["before", "after"], choices=sorted(VARIANTS))
    parser.add_argument("--processes", type=int, default=1, choices=(1, 2),
                        help="processes per run: 1, or 2 (DDP over gloo, `accelerate launch`), one thread each")
    parser.add_argument("--side-by-side", action="store_true",
                        help="run a folder's variants at the same time (they share the machine alike: a fair "
                             "comparison on a noisy machine) instead of one after the other")
    parser.add_argument("--out", default="out/budget_schedule")
    args = parser.parse_args()

    from hf_melody import load_melodies

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # before: the recipe as it was, a schedule planned for its 30 epochs and a fixed evaluation interval
    recipe = (ROOT / "recipes/finetune_style.yaml").read_text().splitlines()
    recipes = {"before": out / "finetune_style_before.yaml", "after": ROOT / "recipes/finetune_style.yaml"}
    kept = [line for line in recipe if not line.startswith(("evals_per_run:", "fit_schedule"))]
    recipes["before"].write_text("\n".join(kept) + "\nfit_schedule_to_budget: false\n")
    for spec in args.folders:
        melodies = (long_simple(cache=out / "long-simple.json") if spec == "long-simple"
                    else load_melodies(spec, progress=False)[0])
        train_mels, test = split(melodies)
        name = spec.replace("/", "-")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / name
            write_folder(train_mels, folder)
            runs = {}
            for variant in args.variants:
                which, extra = VARIANTS[variant]
                bundle = out / f"{name}-{variant}-{args.processes}p"
                started = time.perf_counter()
                proc = launch(recipes[which], extra, folder, bundle, args.base, args.minutes, args.processes,
                              out / f"{bundle.name}.log")
                runs[variant] = (bundle, proc, started)
                if not args.side_by_side:
                    proc.wait()
            ended = {}
            while len(ended) < len(runs):  # the wall time of each run, also when they run side by side
                for variant, (_, proc, _) in runs.items():
                    if variant not in ended and proc.poll() is not None:
                        ended[variant] = time.perf_counter()
                time.sleep(1)
            for variant, (bundle, proc, started) in runs.items():
                if proc.returncode != 0:
                    print(json.dumps({"benchmark": "budget_schedule", "folder": spec, "variant": variant,
                                      "error": f"exit {proc.returncode}, see {bundle.name}.log"}), flush=True)
                    continue
                record = {"benchmark": "budget_schedule", "folder": spec, "variant": variant,
                          "processes": args.processes, "side_by_side": len(runs) if args.side_by_side else 1,
                          "train_melodies": len(train_mels), "test_melodies": len(test), "minutes": args.minutes,
                          "seconds": round(ended[variant] - started), **curve(bundle),
                          **score(str(bundle), test)}
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
