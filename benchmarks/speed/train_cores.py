"""Training throughput on both CPU cores: one thread vs two threads vs two gloo (DDP) processes, through the recipe.

Every variant runs `recipes/train.py` for real (the Trainer, `accelerate launch` for the two-process one) on the same
data (`essen/kinder0` by default, transposed -5..5), preset, global batch and block length, no evaluation or
checkpoints, and reports tokens/s from the Trainer's `train_runtime` (global batch x block length x steps / runtime,
warm-up included). Variants:

  0.1 recipe, 1 thread   fp32, `gelu_new` (how the first bundled checkpoints were trained: issue 10's baseline)
  0.2 recipe, 1 thread   bf16 autocast where the CPU has it, exact `gelu`
  0.2 recipe, 2 threads  the same with `OMP_NUM_THREADS=2` (intra-op threads)
  0.2 recipe, 2 procs    two processes of one thread each, DDP over gloo (`accelerate_configs/cpu-2proc.yaml`),
                         half the batch per process

Runs alternate between the variants (A B C D / D C B A / ...). The machine must be otherwise idle for the two-core
variants to mean anything: the script prints the load average before each run. One JSON line per run, then a JSON
line per variant with the median tokens/s and the median ratio to the baseline.

    .venv/bin/python benchmarks/speed/train_cores.py --steps 15 --reps 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = {
    "0.1 recipe, 1 thread": {"threads": 1, "procs": 1, "activation": "gelu_new", "bf16": False},
    "0.2 recipe, 1 thread": {"threads": 1, "procs": 1, "activation": "gelu", "bf16": True},
    "0.2 recipe, 2 threads": {"threads": 2, "procs": 1, "activation": "gelu", "bf16": True},
    "0.2 recipe, 2 procs": {"threads": 1, "procs": 2, "activation": "gelu", "bf16": True},
}
BASELINE = "0.1 recipe, 1 thread"


def run(variant: dict, args: argparse.Namespace, out: Path) -> dict:
    """Train once; returns tokens/s and the final mean training loss."""
    batch = args.batch_size // variant["procs"]
    train = [str(ROOT / "recipes" / "train.py"), "--config", str(ROOT / "recipes" / "small.yaml"),
             "--preset", args.preset, "--dataset", args.dataset, "--exclude", "", "--max_length",
             str(args.max_length), "--max_steps", str(args.steps), "--per_device_train_batch_size", str(batch),
             "--activation_function", variant["activation"], "--bf16", str(variant["bf16"]).lower(),
             "--infill_ratio", "0", "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps",
             str(args.steps), "--output_dir", str(out), "--overwrite_output_dir", "true", "--disable_tqdm", "true",
             "--dataloader_num_workers", "0", "--report_to", "none", "--seed", "0"]
    if variant["procs"] == 1:
        cmd = [sys.executable, *train]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(ROOT / "recipes" / "accelerate_configs" / "cpu-2proc.yaml"), *train]
    env = {**os.environ, "OMP_NUM_THREADS": str(variant["threads"]), "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    text = proc.stdout + proc.stderr
    found = re.findall(r"'train_runtime': '?([\d.]+)'?", text)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"training failed ({proc.returncode}):\n{text[-3000:]}")
    runtime = float(found[-1])
    loss = re.findall(r"'train_loss': '?([\d.]+)'?", text)
    return {"tokens_per_s": round(args.batch_size * args.max_length * args.steps / runtime),
            "train_runtime": runtime, "train_loss": float(loss[-1]) if loss else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--dataset", default="essen/kinder0")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32, help="global blocks per step (default: 32)")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per block (default: 256)")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help="subset of the variants")
    args = parser.parse_args(argv)
    names = [n for n in VARIANTS if n in args.variants]
    results: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for name in (names if rep % 2 == 0 else names[::-1]):
                r = run(VARIANTS[name], args, Path(tmp) / f"run{rep}")
                r.update({"variant": name, "rep": rep, "load_average": [round(x, 2) for x in os.getloadavg()]})
                results[name].append(r)
                print(json.dumps(r), flush=True)
    base = statistics.median(r["tokens_per_s"] for r in results.get(BASELINE, [])) if BASELINE in results else None
    for name in names:
        rate = statistics.median(r["tokens_per_s"] for r in results[name])
        line = {"variant": name, **VARIANTS[name], "preset": args.preset, "batch": args.batch_size,
                "max_length": args.max_length, "steps": args.steps, "tokens_per_s": round(rate),
                "tokens_per_s_reps": [r["tokens_per_s"] for r in results[name]]}
        if base and BASELINE in results and name != BASELINE:
            pairs = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(results[name], results[BASELINE],
                                                                            strict=True)]
            line["ratio_to_baseline"] = round(statistics.median(pairs), 2)
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
