"""What the reliability work of issue 27 costs: atomic checkpoints, long prompts through the window, folder locks.

1. `checkpoint`: one `checkpoint-N` save of a real Trainer (after one training step, so the optimizer has state),
   through transformers' own `Trainer._save_checkpoint` (written in place) and through
   `AtomicCheckpointTrainer._save_checkpoint` (staged, then renamed), alternating on the same trainer.
2. `long_prompt`: `MelodyPipeline("original")` continuing a real Kinderlied (essen kinder0_0, 10 bars of 2/4)
   repeated k times, 4 new bars, seed 0: seconds per call, the tokens of the prompt and of what the model saw, and
   the peak of Python allocations (tracemalloc; torch's own buffers are not counted, and the model input is at most
   half the context whatever the prompt's length).
3. `lock`: taking and releasing the `hf-melody generate` lock on a folder (`lock_folder(..., record=False)`).

Prints one JSON line per measurement.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 PYTHONPATH=src .venv/bin/python benchmarks/speed/reliability_costs.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import torch


def checkpoint_costs(preset: str, reps: int) -> dict:
    from transformers import PrinterCallback, Trainer, TrainingArguments, default_data_collator

    from hf_melody import MelodyTokenizer, build_model
    from hf_melody.training.checkpoints import AtomicCheckpointTrainer

    tok = MelodyTokenizer()
    model = build_model(preset, tok, n_positions=256, seed=0)
    data = [{"input_ids": torch.randint(3, tok.vocab_size, (256,)), "labels": torch.randint(3, tok.vocab_size, (256,))}
            for _ in range(8)]
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, use_cpu=True, report_to="none", max_steps=1, save_strategy="no",
                                 per_device_train_batch_size=4, disable_tqdm=True)
        trainer = AtomicCheckpointTrainer(model=model, args=args, train_dataset=data,
                                          data_collator=default_data_collator)
        trainer.remove_callback(PrinterCallback)  # its log dicts would mix with the JSON lines on stdout
        trainer.train()
        sides = {"in_place": lambda: Trainer._save_checkpoint(trainer, trainer.model, None),
                 "atomic": lambda: trainer._save_checkpoint(trainer.model, None)}
        times: dict[str, list[float]] = {name: [] for name in sides}
        for r in range(reps):
            for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):  # A B / B A / ...
                trainer.state.global_step += 1
                start = time.perf_counter()
                sides[name]()
                times[name].append(time.perf_counter() - start)
        size = sum(p.stat().st_size for p in next(Path(tmp).glob("checkpoint-*")).iterdir())
    med = {name: statistics.median(t) for name, t in times.items()}
    return {"measure": "checkpoint", "preset": preset, "checkpoint_bytes": size,
            "in_place_s": round(med["in_place"], 4), "atomic_s": round(med["atomic"], 4),
            "ratio": round(med["atomic"] / med["in_place"], 3),
            "in_place_reps": [round(t, 4) for t in times["in_place"]],
            "atomic_reps": [round(t, 4) for t in times["atomic"]]}


def long_prompt_costs(repeats: list[int], reps: int) -> list[dict]:
    from hf_melody import MelodyPipeline, read_midi

    fixture = Path(__file__).parents[2] / "tests" / "fixtures" / "kinder0_0.mid"
    pipe = MelodyPipeline.from_pretrained("original")
    config = pipe._sanitize_parameters(seed=0, num_bars=4)[0]["config"]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in repeats:
            melody = read_midi(fixture)
            span = 10 * 2 * 480
            melody.notes = [[t + i * span, d, p] for i in range(k) for t, d, p in melody.notes]
            path = Path(tmp) / f"tune_x{k}.mid"
            melody.to_score().dump_midi(str(path))
            seen = pipe.preprocess({"prompt": str(path)}, config)
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                [result] = pipe(str(path), seed=0, num_bars=4)
                times.append(time.perf_counter() - start)
            tracemalloc.start()
            pipe(str(path), seed=0, num_bars=4)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            out.append({"measure": "long_prompt", "bars": 10 * k, "prompt_notes": len(melody.notes),
                        "prompt_tokens": len(result.token_ids[:result.prompt_length]),
                        "model_input_tokens": seen["input_ids"].shape[1], "new_notes": result.num_notes
                        - result.num_prompt_notes, "seconds": round(statistics.median(times), 4),
                        "python_peak_mb": round(peak / 2**20, 2), "reps": [round(t, 4) for t in times]})
    return out


def lock_costs(reps: int) -> dict:
    from hf_melody.utils import lock_folder

    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            lock_folder(tmp, "x", "y", record=False).close()
            times.append(time.perf_counter() - start)
    return {"measure": "lock", "median_us": round(1e6 * statistics.median(times), 1), "reps": reps}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["original", "small"])
    p.add_argument("--repeats", nargs="+", type=int, default=[1, 5, 12, 48], help="times the 10-bar tune is played")
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    for preset in args.presets:
        print(json.dumps(checkpoint_costs(preset, args.reps)), flush=True)
    for row in long_prompt_costs(args.repeats, args.reps):
        print(json.dumps(row), flush=True)
    print(json.dumps(lock_costs(200)), flush=True)


if __name__ == "__main__":
    main()
