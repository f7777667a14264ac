"""Training speed of the 0.1 recipe vs the 0.2 recipe through the real Trainer, side by side, and their loss parity.

0.1: fp32, GPT-2's `gelu_new` (what the first bundled checkpoints were trained with).
0.2: bfloat16 autocast where the CPU has it (`bf16: true`; fp32 master weights), exact `gelu` (one fused kernel).
Also each change alone. Same preset, batch, block length, data (essen/kinder0 blocks, transposed -5..5), seed and
`torch.set_num_threads`; runs alternate between the variants in one process. Reported per variant: steady tokens/s
(median step after the warm-up), and per variant other than the baseline the median of the paired ratios to the
baseline run next to it. Loss parity: the mean training loss of the last 5 of `--steps` steps, per variant, over
`--reps` runs with seeds 0..reps-1 (so the spread between seeds is the run-to-run noise it is compared with).

    .venv/bin/python benchmarks/speed/train_recipes.py --presets small original --steps 30 --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

VARIANTS = {"0.1 (fp32, gelu_new)": ("gelu_new", False), "bf16 only": ("gelu_new", True),
            "gelu only": ("gelu", False), "0.2 (bf16, gelu)": ("gelu", True)}


def run(preset: str, activation: str, bf16: bool, ds, tokenizer, args, seed: int) -> dict:
    from transformers import PrinterCallback, Trainer, TrainerCallback, default_data_collator

    from hf_melody.modeling.presets import build_model
    from hf_melody.training.arguments import MelodyTrainingArguments

    class Timer(TrainerCallback):
        def __init__(self):
            self.times, self.losses = [], []

        def on_step_end(self, a, state, control, **kw):
            self.times.append(time.perf_counter())

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

    model = build_model(preset, tokenizer, n_positions=args.length, dropout=0.0, seed=seed,
                        activation_function=activation)
    timer = Timer()
    with tempfile.TemporaryDirectory() as out:
        targs = MelodyTrainingArguments(
            output_dir=out, max_steps=args.steps, per_device_train_batch_size=args.batch_size, learning_rate=2e-3,
            lr_scheduler_type="constant", warmup_steps=0, eval_strategy="no", save_strategy="no", logging_steps=1,
            use_cpu=True, bf16=bf16, report_to="none", disable_tqdm=True, dataloader_num_workers=0, seed=seed)
        trainer = Trainer(model=model, args=targs, train_dataset=ds, data_collator=default_data_collator,
                          callbacks=[timer])
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    durations = [b - a for a, b in zip(timer.times[args.warmup - 1:-1], timer.times[args.warmup:], strict=True)]
    return {"tokens_per_s": args.batch_size * args.length / statistics.median(durations),
            "final_loss": statistics.mean(timer.losses[-5:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["small", "original"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import datasets
    import torch
    import transformers
    from datasets import concatenate_datasets

    from hf_melody import MelodyTokenizer, load_melodies
    from hf_melody.data.arguments import DataConfig
    from hf_melody.data.dataset import build_dataset
    from hf_melody.training.trainer import cpu_supports_bf16

    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    tokenizer = MelodyTokenizer()
    melodies, _ = load_melodies("essen/kinder0", progress=False)
    ds = build_dataset(melodies, tokenizer, DataConfig(max_length=args.length), cache=False)["train"]
    while len(ds) < args.steps * args.batch_size:
        ds = concatenate_datasets([ds, ds])
    print(json.dumps({"cpu_bf16": cpu_supports_bf16(), "threads": args.threads, "load_average": os.getloadavg()}))
    for preset in args.presets:
        results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        for rep in range(args.reps):
            order = list(VARIANTS) if rep % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                results[name].append(run(preset, *VARIANTS[name], ds, tokenizer, args, seed=rep))
        base = results["0.1 (fp32, gelu_new)"]
        for name, runs in results.items():
            losses = [r["final_loss"] for r in runs]
            record = {"benchmark": "train_recipes", "preset": preset, "variant": name, "batch_size": args.batch_size,
                      "length": args.length, "steps": args.steps, "reps": args.reps,
                      "tokens_per_s_median": round(statistics.median(r["tokens_per_s"] for r in runs)),
                      "speedup_median_paired": round(statistics.median(
                          r["tokens_per_s"] / b["tokens_per_s"] for r, b in zip(runs, base, strict=True)), 2),
                      "final_loss_mean": round(statistics.mean(losses), 4),
                      "final_loss_sd": round(statistics.stdev(losses), 4) if len(losses) > 1 else None}
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
