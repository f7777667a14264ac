"""Controlled generation, measured side by side in one run: grammar cost, constraint compliance, streaming latency.

Three sections, one JSON line per measurement:

1. `grammar_cost`: tokens/s with and without the REMI grammar processor (same seeded sampler, temperature 1), for
   one melody per `generate` (as `MelodyPipeline` runs) and for one batched `generate` of `--batch` rows; EOS does
   not stop generation, so both sides produce exactly rows x `--new-tokens` tokens. Sides alternate, `--reps`
   times; medians are reported. Also: the pipeline's first call with an empty mask cache (tokens up to EOS).
2. `constraints`: `--samples` melodies (seeds 0..n-1) per setting: none, unconstrained (no grammar), key hard, key
   soft, pitch range, key + range, num_bars, end_on_tonic. Reported: token-error rate (miditok `tokens_errors`),
   share of notes in the key and in the range, melodies fully in key / in range, bar-exactness, tonic endings.
3. `streaming`: `pipe.stream()` over `--stream-runs` seeds: latency to the first note, generation time, and the
   real-time factor (seconds of compute per second of music at `--qpm`; below 1 is faster than real time).

    .venv/bin/python benchmarks/quality/constraints.py --model folk-base
    .venv/bin/python benchmarks/quality/constraints.py --model path/to/bundle --samples 100 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

KEY, RANGE = "D minor", (60, 72)


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def pipeline_tokens_per_s(pipe, constrained: bool, n: int, first_seed: int) -> tuple[float, int, float]:
    """Tokens generated (up to EOS) per second over `n` single-melody calls."""
    start = time.perf_counter()
    melodies = pipe(seed=first_seed, num_return_sequences=n, constrained=constrained, output_type="ids")
    seconds = time.perf_counter() - start
    tokens = sum(len(ids) - 1 for ids in melodies)  # prompt = BOS
    return tokens / seconds, tokens, seconds


def generate_tokens_per_s(pipe, constrained: bool, rows: int, new_tokens: int, first_seed: int) -> float:
    import torch

    from hf_melody.generation.logits_process import melody_logits_processors

    tok = pipe.melody_tokenizer
    ids = torch.full((rows, 1), tok.bos_token_id)
    procs = melody_logits_processors(tok, constrained=constrained, seed=range(first_seed, first_seed + rows))
    start = time.perf_counter()
    out = pipe.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                              max_new_tokens=new_tokens, min_new_tokens=new_tokens, logits_processor=procs,
                              pad_token_id=tok.pad_token_id, eos_token_id=None)
    seconds = time.perf_counter() - start
    assert out.shape == (rows, new_tokens + 1)
    return rows * new_tokens / seconds


def grammar_cost(pipe, args) -> None:
    from hf_melody.grammar.remi import REMIGrammar

    grammar = REMIGrammar.for_tokenizer(pipe.melody_tokenizer)
    grammar.legal._mask_cache.clear()
    grammar.legal._finish_cache.clear()
    rate, tokens, seconds = pipeline_tokens_per_s(pipe, True, args.melodies, 10_000)
    emit({"bench": "grammar_cost", "mode": "pipeline, cold mask cache", "constrained": True,
          "tokens_per_s": round(rate, 1), "tokens": tokens, "seconds": round(seconds, 3),
          "cached_states": len(grammar.legal._mask_cache)})
    for rows, melodies in ((1, args.melodies), (args.batch, 1)):
        runs = {True: [], False: []}
        for rep in range(args.reps):
            for constrained in (False, True) if rep % 2 == 0 else (True, False):
                start = time.perf_counter()
                for i in range(melodies):
                    generate_tokens_per_s(pipe, constrained, rows, args.new_tokens, 1000 * rep + rows * i)
                runs[constrained].append(melodies * rows * args.new_tokens / (time.perf_counter() - start))
        with_g, without = statistics.median(runs[True]), statistics.median(runs[False])
        emit({"bench": "grammar_cost", "mode": f"generate, {rows} row(s) x {args.new_tokens} tokens, {melodies} "
              "call(s) per run", "tokens_per_s_with_grammar": round(with_g, 1),
              "tokens_per_s_without": round(without, 1),
              "slowdown": round(statistics.median(w / g for g, w in zip(runs[True], runs[False], strict=True)), 3),
              "reps": args.reps, "runs_with": [round(r, 1) for r in runs[True]],
              "runs_without": [round(r, 1) for r in runs[False]]})


def compliance(pipe, name: str, options: dict, n: int) -> None:
    from hf_melody.music import parse_key

    key = parse_key(KEY)
    tok = pipe.melody_tokenizer
    start = time.perf_counter()
    melodies = pipe(seed=0, num_return_sequences=n, **options)
    seconds = time.perf_counter() - start
    pitches = [[p for _, _, p in m.notes] for m in melodies]
    notes = [p for ps in pitches for p in ps]
    bars_exact = None
    if options.get("num_bars"):
        exact = 0
        for m in melodies:
            ts = m.score.time_signatures[0]
            exact += m.score.end() == options["num_bars"] * ts.numerator * 1920 // ts.denominator
        bars_exact = exact / n
    errors = [tok.tokens_errors(m.token_ids) for m in melodies]
    emit({
        "bench": "constraints", "setting": name, "options": {k: v for k, v in options.items()}, "melodies": n,
        "seconds": round(seconds, 2), "mean_notes": round(len(notes) / n, 1),
        "empty_melodies": sum(not ps for ps in pitches),
        "token_error_rate": round(statistics.fmean(errors), 4),
        "melodies_with_errors": sum(e > 0 for e in errors),
        "in_key_ratio": round(sum(p % 12 in key.pitch_classes for p in notes) / max(len(notes), 1), 4),
        "melodies_all_in_key": sum(all(p % 12 in key.pitch_classes for p in ps) for ps in pitches),
        "in_range_ratio": round(sum(RANGE[0] <= p <= RANGE[1] for p in notes) / max(len(notes), 1), 4),
        "melodies_all_in_range": sum(all(RANGE[0] <= p <= RANGE[1] for p in ps) for ps in pitches),
        "ends_on_tonic": sum(bool(ps) and ps[-1] % 12 == key.tonic for ps in pitches),
        "bars_exact": bars_exact,
    })


def streaming(pipe, args) -> None:
    for options in ({}, {"num_bars": 8, "time_signature": "4/4", "key": KEY}):
        latencies, rtfs, gen_seconds, music_seconds, counts = [], [], [], [], []
        for seed in range(args.stream_runs):
            start = time.perf_counter()
            first = None
            notes = []
            for note in pipe.stream(seed=seed, tempo_qpm=args.qpm, **options):
                if first is None:
                    first = time.perf_counter() - start
                notes.append(note)
            total = time.perf_counter() - start
            if not notes:
                continue
            music = max(n.onset_seconds + n.duration_seconds for n in notes) - notes[0].onset_seconds
            latencies.append(first)
            gen_seconds.append(total)
            music_seconds.append(music)
            rtfs.append(total / music if music > 0 else float("inf"))
            counts.append(len(notes))
        emit({"bench": "streaming", "options": options, "runs": len(latencies), "qpm": args.qpm,
              "first_note_latency_s_median": round(statistics.median(latencies), 4),
              "first_note_latency_s_max": round(max(latencies), 4),
              "generation_s_median": round(statistics.median(gen_seconds), 3),
              "music_s_median": round(statistics.median(music_seconds), 2),
              "real_time_factor_median": round(statistics.median(rtfs), 4),
              "real_time_factor_max": round(max(rtfs), 4), "notes_median": statistics.median(counts)})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="folk-base", help="bundled name, bundle folder or Hub id")
    p.add_argument("--samples", type=int, default=100, help="melodies per constraint setting")
    p.add_argument("--melodies", type=int, default=20, help="melodies per pipeline speed run")
    p.add_argument("--batch", type=int, default=100, help="rows of the batched speed run")
    p.add_argument("--new-tokens", type=int, default=100, help="tokens per row of the batched speed run")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--stream-runs", type=int, default=10)
    p.add_argument("--qpm", type=float, default=120.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 suits tiny models on a busy CPU)")
    p.add_argument("--sections", default="cost,constraints,streaming")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from hf_melody import MelodyPipeline

    pipe = MelodyPipeline.from_pretrained(args.model)
    emit({"bench": "setup", "model": args.model, "vocab_size": pipe.melody_tokenizer.vocab_size,
          "bpe": pipe.melody_tokenizer.is_bpe, "n_positions": pipe.model.config.n_positions,
          "parameters": sum(p.numel() for p in pipe.model.parameters()), "torch_threads": args.threads,
          "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__})
    sections = args.sections.split(",")
    if "cost" in sections:
        grammar_cost(pipe, args)
    if "constraints" in sections:
        settings = [
            ("none", {}),
            ("unconstrained (no grammar)", {"constrained": False}),
            ("key hard", {"key": KEY}),
            ("key soft 3.0", {"key": KEY, "key_strictness": 3.0}),
            ("pitch range", {"pitch_range": RANGE}),
            ("key hard + range", {"key": KEY, "pitch_range": RANGE}),
            ("num_bars 8 (4/4)", {"num_bars": 8, "time_signature": "4/4"}),
            ("key + end_on_tonic", {"key": KEY, "end_on_tonic": True}),
        ]
        for name, options in settings:
            compliance(pipe, name, options, args.samples)
    if "streaming" in sections:
        streaming(pipe, args)


if __name__ == "__main__":
    main()
