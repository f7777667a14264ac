"""Training tokens per second of the transformers Trainer vs a plain PyTorch loop, for each GPT-2 preset.

Both sides train the same model (`build_model(preset, seed=0)`: identical initial weights) on the same packed blocks
of real melodies (`essen/kinder0`, transposed -5..5, via `build_dataset`), with the same batch size, block length,
number of steps, AdamW (lr 3e-3, weight decay 0.01, constant schedule), gradient clipping at 1.0 (the Trainer's
default) and the same `torch.set_num_threads`.

trainer:  `Trainer(model, MelodyTrainingArguments(use_cpu=True, eval/save off, logging every 25 steps), ...)`.train()
plain:    blocks stacked into tensors once; a loop of forward -> backward -> clip -> AdamW step -> zero_grad.

Two figures per side: `steady_tokens_per_s`, from the median duration of the steps after the first `--warmup`
ones (timed at the end of each optimizer step; robust to the odd step slowed by other processes; the figure that
matters for long runs), and `total_tokens_per_s`, from the whole run: setup (building the Trainer or the optimizer,
the dataloader) and every step. Tokens are block positions (batch x length x steps, padding included; packed blocks
are almost full). Runs alternate between the sides (trainer, plain / plain, trainer, ...) in one process; medians
over `--reps`, their ratios, and the ratio of each adjacent pair of runs are reported.

    .venv/bin/python benchmarks/speed/train_throughput.py --steps 16 --batch-size 16 --length 256 --reps 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEFAULT_PRESETS = ("original", "deeper-thinner", "wider-shallower", "small")
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def load_blocks(corpus: str, length: int, num_blocks: int):
    """`num_blocks` packed training blocks of `corpus` (cycled if the corpus has fewer), as a `datasets.Dataset`."""
    from datasets import concatenate_datasets

    from hf_melody import MelodyTokenizer
    from hf_melody.data.arguments import DataConfig
    from hf_melody.data.corpora import load_melodies
    from hf_melody.data.dataset import build_dataset

    tokenizer = MelodyTokenizer()
    melodies, _ = load_melodies(corpus, progress=False)
    ds = build_dataset(melodies, tokenizer, DataConfig(max_length=length, augment_semitones=5), cache=False)["train"]
    while len(ds) < num_blocks:
        ds = concatenate_datasets([ds, ds])
    return tokenizer, ds.select(range(num_blocks))


def step_timer():
    """A TrainerCallback recording `time.perf_counter()` at the end of every optimizer step."""
    from transformers import TrainerCallback

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter())

    return StepTimes()


def run_trainer(preset: str, tokenizer, ds, args: argparse.Namespace) -> dict:
    import torch
    from transformers import PrinterCallback, Trainer, default_data_collator

    from hf_melody.modeling.presets import build_model
    from hf_melody.training.arguments import MelodyTrainingArguments

    model = build_model(preset, tokenizer, n_positions=args.length, dropout=args.dropout, seed=0)
    timer = step_timer()
    with tempfile.TemporaryDirectory(prefix="hf_melody_bench_") as out:
        t0 = time.perf_counter()
        training_args = MelodyTrainingArguments(
            output_dir=out, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
            learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY, lr_scheduler_type="constant", warmup_steps=0,
            max_grad_norm=MAX_GRAD_NORM, eval_strategy="no", save_strategy="no", logging_steps=25,
            use_cpu=True, report_to="none", disable_tqdm=True, dataloader_num_workers=0, seed=0)
        trainer = Trainer(model=model, args=training_args, train_dataset=ds, data_collator=default_data_collator,
                          callbacks=[timer])
        trainer.remove_callback(PrinterCallback)  # it prints Python dicts to stdout, which holds only JSON here
        trainer.train()
        t1 = time.perf_counter()
    return {"total_s": t1 - t0, "step_times": timer.times, "threads_after": torch.get_num_threads()}


def run_plain(preset: str, tokenizer, ds, args: argparse.Namespace) -> dict:
    import torch

    from hf_melody.modeling.presets import build_model

    model = build_model(preset, tokenizer, n_positions=args.length, dropout=args.dropout, seed=0)
    t0 = time.perf_counter()
    data = ds.with_format("torch")
    input_ids, labels, mask = data["input_ids"], data["labels"], data["attention_mask"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(input_ids), generator=generator)
    model.train()
    times = []
    for step in range(args.steps):
        idx = order[(step * args.batch_size) % len(order):][:args.batch_size]
        loss = model(input_ids=input_ids[idx], attention_mask=mask[idx], labels=labels[idx]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter())
    return {"total_s": times[-1] - t0, "step_times": times, "threads_after": torch.get_num_threads()}


def rates(run: dict, args: argparse.Namespace) -> tuple[float, float]:
    """(steady, total) tokens/s: steady from the median step duration after the warm-up steps (robust to the odd
    step slowed by other processes), total from the whole run including setup."""
    tokens_per_step = args.batch_size * args.length
    t = run["step_times"]
    durations = [b - a for a, b in zip(t[args.warmup - 1:-1], t[args.warmup:], strict=True)]
    return tokens_per_step / statistics.median(durations), tokens_per_step * args.steps / run["total_s"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS),
                        help=f"Presets to measure (default: {' '.join(DEFAULT_PRESETS)}).")
    parser.add_argument("--base", action="store_true", help="Also measure the `base` preset (slow on a CPU).")
    parser.add_argument("--steps", type=int, default=16, help="Optimizer steps per run (default 16).")
    parser.add_argument("--warmup", type=int, default=3,
                        help="First steps left out of the steady-state rate (default 3).")
    parser.add_argument("--batch-size", type=int, default=16, help="Blocks per step (default 16).")
    parser.add_argument("--length", type=int, default=256, help="Tokens per block = n_positions (default 256).")
    parser.add_argument("--dropout", type=float, default=0.1,
                        help="Model dropout (default 0.1, the library default; 0 is about 2x faster on CPU).")
    parser.add_argument("--reps", type=int, default=3, help="Runs per side and preset, interleaved (default 3).")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both sides (default 1).")
    parser.add_argument("--corpus", default="essen/kinder0", help="Corpus the blocks come from (default "
                        "essen/kinder0, transposed -5..5).")
    return parser


SIDES = {"trainer": run_trainer, "plain_pytorch": run_plain}


def measure(presets: list[str], tokenizer, ds, args: argparse.Namespace) -> dict[tuple[str, str], list[dict]]:
    """`--reps` runs of each side for each preset, alternating which side goes first, after an untimed warm-up."""
    # warm-up (untimed): one short run per side, so first-call costs (imports, kernels) hit neither side
    warm = argparse.Namespace(**{**vars(args), "steps": args.warmup + 2})
    for fn in SIDES.values():
        fn(presets[0], tokenizer, ds, warm)

    results: dict[tuple[str, str], list[dict]] = {(p, s): [] for p in presets for s in SIDES}
    for rep in range(args.reps):
        for i, preset in enumerate(presets):
            order = list(SIDES) if (rep + i) % 2 == 0 else list(reversed(SIDES))
            for side in order:
                results[(preset, side)].append(SIDES[side](preset, tokenizer, ds, args))
    return results


def report(preset: str, runs_by_side: dict[str, list[dict]], n_params: int, args: argparse.Namespace) -> None:
    """One JSON line per side (medians and every repetition), then one comparing them pair by pair."""
    import torch
    import transformers

    medians = {}
    for side, runs in runs_by_side.items():
        steady, total = zip(*(rates(r, args) for r in runs), strict=True)
        medians[side] = (statistics.median(steady), statistics.median(total))
        emit({"benchmark": "train_throughput", "preset": preset, "impl": side, "parameters": n_params,
              "steps": args.steps, "batch_size": args.batch_size, "length": args.length,
              "dropout": args.dropout, "threads": args.threads, "reps": len(runs),
              "steady_tokens_per_s_median": round(medians[side][0]),
              "total_tokens_per_s_median": round(medians[side][1]),
              "steady_tokens_per_s_reps": [round(x) for x in steady],
              "total_tokens_per_s_reps": [round(x) for x in total],
              "torch_threads_after": runs[-1]["threads_after"]})
    paired = [(rates(a, args), rates(b, args)) for a, b in
              zip(runs_by_side["trainer"], runs_by_side["plain_pytorch"], strict=True)]
    emit({"benchmark": "train_throughput", "preset": preset, "impl": "comparison",
          # medians of the paired ratios (each trainer run over the plain run next to it)
          "trainer_over_plain_steady": round(statistics.median(a[0] / b[0] for a, b in paired), 3),
          "trainer_over_plain_total": round(statistics.median(a[1] / b[1] for a, b in paired), 3),
          "paired_steady_ratio_reps": [round(a[0] / b[0], 3) for a, b in paired],
          "paired_total_ratio_reps": [round(a[1] / b[1], 3) for a, b in paired],
          "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
          "transformers": transformers.__version__})


def main(argv: list[str] | None = None) -> None:
    # 1. Arguments: the presets to measure, and enough steps that some remain after the warm-up ones.
    parser = build_parser()
    args = parser.parse_args(argv)
    presets = list(args.presets) + (["base"] if args.base and "base" not in args.presets else [])
    if args.warmup < 1 or args.steps <= args.warmup + 1:
        parser.error(f"need 1 <= --warmup ({args.warmup}) < --steps ({args.steps}) - 1")

    import datasets
    import torch
    import transformers

    from hf_melody.modeling.presets import PRESETS, build_model, num_parameters

    for p in presets:
        if p not in PRESETS:
            parser.error(f"unknown preset {p!r}; choose from {', '.join(PRESETS)}")

    # 2. The same threads on both sides, and quiet libraries: stdout holds only the JSON lines.
    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    logging.getLogger("hf_melody").setLevel(logging.ERROR)

    # 3. The blocks are built once, outside every timed run, so both sides train on identical data.
    tokenizer, ds = load_blocks(args.corpus, args.length, args.steps * args.batch_size)

    # 4. Time both sides, interleaved, so machine load distorts them alike.
    results = measure(presets, tokenizer, ds, args)

    # 5. Report each preset: its parameter count, each side's rates, and the paired ratios.
    for preset in presets:
        n_params = num_parameters(build_model(preset, tokenizer, n_positions=args.length, seed=0))
        report(preset, {side: results[(preset, side)] for side in SIDES}, n_params, args)


if __name__ == "__main__":
    main()
