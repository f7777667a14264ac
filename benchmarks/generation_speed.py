"""CPU generation speed of each model: `model.generate` (KV cache) vs a naive loop that re-runs the whole context.

For every model (the bundled checkpoints, or `--models` folders; when there are none, freshly built *untrained* models
of each preset saved with `save_bundle`: with EOS disabled, speed does not depend on the weights) and for one melody
and a batch of `--batch-size`, both sides sample exactly `--new-tokens` new tokens after the same prompt
(BOS, Bar, TimeSig 4/4) with the same settings (temperature 1, no top-k/top-p), the same seed and EOS/PAD suppressed:

generate: `model.generate(..., do_sample=True, use_cache=True, suppress_tokens=[EOS, PAD])`.
naive:    for each token: `model(all ids so far, use_cache=False)`, mask EOS/PAD, softmax, `torch.multinomial`.

Reported per side: tokens/s, notes/s (Pitch tokens), the real-time factor (seconds of compute per second of music
at `--qpm`, the decoded score's length; below 1 is faster than real time, the definition of `constraints.py` too),
and for one melody the latency to the first token and to the first note (Pitch token). Runs alternate between the
sides in one process; medians over `--reps` are reported, the ratio of each adjacent pair of runs, their median (the
headline speedup; the ratio of the two medians is kept as `ratio_of_medians`), and the share of sequences that came
out identical on both sides (same seed: a check that both did the same work). The real-time factor depends on what
the model writes (rests, note lengths, bar tokens), so it means something only for trained models; tokens/s does
not depend on the weights.

    .venv/bin/python benchmarks/generation_speed.py --reps 3
    .venv/bin/python benchmarks/generation_speed.py --models out/folk-base out/original
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
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FALLBACK_PRESETS = ("original", "deeper-thinner", "wider-shallower", "small")


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def model_sources(args: argparse.Namespace, tmp: Path) -> list[tuple[str, str, str]]:
    """`(name, name_or_folder, weights)` of the models to measure; builds untrained bundles when none exist."""
    from hf_melody.hub import bundled_checkpoints, save_bundle
    from hf_melody.modeling import build_model
    from hf_melody.tokenizer import MelodyTokenizer

    if args.models:
        return [(Path(m).name, m, "given") for m in args.models]
    bundled = bundled_checkpoints()
    if bundled:
        return [(name, name, "bundled") for name in bundled]
    out = []
    for preset in args.presets:
        tokenizer = MelodyTokenizer()
        folder = tmp / f"{preset}-untrained"
        save_bundle(build_model(preset, tokenizer, n_positions=args.n_positions, seed=0), tokenizer, folder,
                    card=False)
        out.append((f"{preset}-untrained", str(folder), "untrained"))
    return out


class Clock:
    """Times the first new token and the first new note (a token holding a Pitch) of sequence 0."""

    def __init__(self, pitch_counts):
        self.pitch_counts = pitch_counts
        self.start = self.first_token = self.first_note = None

    def reset(self) -> None:
        self.start, self.first_token, self.first_note = time.perf_counter(), None, None

    def tick(self, new_ids) -> None:
        if self.first_note is not None:
            return
        now = time.perf_counter()
        if self.first_token is None:
            self.first_token = now - self.start
        if self.pitch_counts[int(new_ids.reshape(-1)[0])] > 0:
            self.first_note = now - self.start


def make_streamer(clock: Clock):
    """A transformers streamer that feeds the clock (the first `put` is the prompt)."""
    from transformers.generation.streamers import BaseStreamer

    class ClockStreamer(BaseStreamer):
        def __init__(self):
            self.seen_prompt = False

        def put(self, value):
            if not self.seen_prompt:
                self.seen_prompt = True
                return
            clock.tick(value)

        def end(self):
            pass

    return ClockStreamer()


def generate_cached(model, prompt, batch: int, new_tokens: int, seed: int, suppress: list[int], pad_id: int,
                    clock: Clock | None):
    import torch

    ids = prompt.repeat(batch, 1)
    streamer = make_streamer(clock) if clock is not None else None
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                             top_k=0, top_p=1.0, max_new_tokens=new_tokens,
                             suppress_tokens=suppress, use_cache=True, pad_token_id=pad_id, streamer=streamer)
    return out[:, prompt.shape[1]:]


def generate_naive(model, prompt, batch: int, new_tokens: int, seed: int, suppress: list[int], pad_id: int,
                   clock: Clock | None):
    import torch

    ids = prompt.repeat(batch, 1)
    torch.manual_seed(seed)
    with torch.inference_mode():
        for _ in range(new_tokens):
            logits = model(input_ids=ids, use_cache=False).logits[:, -1, :].float()
            logits[:, suppress] = -float("inf")
            nxt = torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1)
            ids = torch.cat([ids, nxt], dim=1)
            if clock is not None:
                clock.tick(nxt)
    return ids[:, prompt.shape[1]:]


def music_seconds(tokenizer, prompt_ids: list[int], new_ids: list[int], qpm: float) -> float | None:
    """Length in seconds (at `qpm`) of the decoded melody, or None when the tokens do not decode."""
    try:
        score = tokenizer.decode(prompt_ids + new_ids)
    except Exception:  # noqa: BLE001 - untrained models can emit token soups miditok rejects
        return None
    return score.end() / score.ticks_per_quarter * 60.0 / qpm if score.end() > 0 else 0.0


def measure_model(name: str, weights: str, model, tokenizer, sides: dict, args: argparse.Namespace) -> None:
    """Time both sides on one model, for one melody and for a batch; print the JSON lines."""
    import torch
    import transformers

    from hf_melody.generation import token_counts
    from hf_melody.modeling import num_parameters

    pitch_counts, _ = token_counts(tokenizer)
    prompt_ids = [tokenizer.bos_token_id, *tokenizer.encode_base_tokens(["Bar_None", "TimeSig_4/4"])]
    prompt = torch.tensor([prompt_ids])
    new_tokens = min(args.new_tokens, model.config.n_positions - len(prompt_ids))
    suppress = [tokenizer.eos_token_id, tokenizer.pad_token_id]
    common = {"benchmark": "generation_speed", "model": name, "weights": weights,
              "parameters": num_parameters(model), "new_tokens": new_tokens, "threads": args.threads}
    for fn in sides.values():  # untimed warm-up
        fn(model, prompt, 2, 4, args.seed, suppress, tokenizer.pad_token_id, None)

    for batch in (1, args.batch_size):
        runs: dict[str, list[dict]] = {s: [] for s in sides}
        outputs: dict[str, list[list[int]]] = {}
        for rep in range(args.reps):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))
            for side in order:
                clock = Clock(pitch_counts) if batch == 1 else None
                if clock is not None:
                    clock.reset()
                t0 = time.perf_counter()
                new = sides[side](model, prompt, batch, new_tokens, args.seed, suppress, tokenizer.pad_token_id,
                                  clock)
                seconds = time.perf_counter() - t0
                outputs[side] = new.tolist()
                runs[side].append({"seconds": seconds,
                                   "first_token_s": clock.first_token if clock else None,
                                   "first_note_s": clock.first_note if clock else None,
                                   "notes": int(pitch_counts[new].sum())})
        medians = {}
        for side, rs in runs.items():
            seconds = statistics.median(r["seconds"] for r in rs)
            secs = [music_seconds(tokenizer, prompt_ids, seq, args.qpm) for seq in outputs[side]]
            music = sum(s for s in secs if s is not None)
            record = {**common, "impl": side, "batch_size": batch, "reps": len(rs),
                      "seconds_median": round(seconds, 4),
                      "seconds_reps": [round(r["seconds"], 4) for r in rs],
                      "tokens_per_s": round(batch * new_tokens / seconds, 1),
                      "notes_per_s": round(rs[-1]["notes"] / seconds, 1),
                      "notes": rs[-1]["notes"],
                      "music_seconds": round(music, 2), "undecodable_sequences": secs.count(None),
                      "real_time_factor": round(seconds / music, 5) if music else None}
            if batch == 1:
                first_note = [r["first_note_s"] for r in rs if r["first_note_s"] is not None]
                record["first_token_latency_s"] = round(statistics.median(r["first_token_s"] for r in rs), 4)
                record["first_note_latency_s"] = round(statistics.median(first_note), 4) if first_note else None
            medians[side] = seconds
            emit(record)
        a, b = outputs["generate_kv_cache"], outputs["naive_no_cache"]
        paired = [n["seconds"] / g["seconds"] for g, n in zip(runs["generate_kv_cache"], runs["naive_no_cache"],
                                                              strict=True)]
        emit({**common, "impl": "comparison", "batch_size": batch,
              "speedup_generate_vs_naive": round(statistics.median(paired), 2),  # median of the paired ratios
              "paired_speedup_reps": [round(r, 2) for r in paired],
              "ratio_of_medians": round(medians["naive_no_cache"] / medians["generate_kv_cache"], 2),
              "identical_sequences": f"{sum(x == y for x, y in zip(a, b, strict=True))}/{len(a)}",
              "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
              "transformers": transformers.__version__})



def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None,
                        help="Bundle folders (or bundled names / cached Hub ids) to measure instead of the bundled "
                             "checkpoints.")
    parser.add_argument("--presets", nargs="+", default=list(FALLBACK_PRESETS),
                        help="Presets of the untrained stand-ins, used only when no bundled checkpoint exists and "
                             f"--models is not given (default: {' '.join(FALLBACK_PRESETS)}).")
    parser.add_argument("--n-positions", type=int, default=256, help="Context of the untrained stand-ins (256).")
    parser.add_argument("--new-tokens", type=int, default=200, help="New tokens per sequence (default 200).")
    parser.add_argument("--batch-size", type=int, default=16, help="Sequences in the batched run (default 16).")
    parser.add_argument("--reps", type=int, default=3, help="Timed runs per side and setting, interleaved (3).")
    parser.add_argument("--seed", type=int, default=0, help="Sampling seed, the same for both sides (default 0).")
    parser.add_argument("--qpm", type=float, default=120.0, help="Tempo for the real-time factor (default 120).")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both sides (default 1).")
    args = parser.parse_args(argv)

    import torch
    import transformers

    from hf_melody.hub import load_model, load_tokenizer

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("hf_melody").setLevel(logging.ERROR)
    sides = {"generate_kv_cache": generate_cached, "naive_no_cache": generate_naive}

    with tempfile.TemporaryDirectory(prefix="hf_melody_bench_") as tmp:
        for name, where, weights in model_sources(args, Path(tmp)):
            model, tokenizer = load_model(where).eval(), load_tokenizer(where)
            measure_model(name, weights, model, tokenizer, sides, args)


if __name__ == "__main__":
    main()
