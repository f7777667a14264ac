"""Do samples sound like the music the model learned? Musical statistics of sampled melodies against real tunes.

For each temperature, `--num` melodies from the default call of the pipeline (`pipe(num_return_sequences=N,
seed=S, style=STYLE, temperature=T)`: whole tunes of 8-32 bars that end by themselves, grammar on) are compared with
each reference set by `compare_sets` (Yang & Lerch 2020 overlap): in-key ratio, mean absolute interval, median
length in notes, mean overlap over the features. Reference sets: the Kinderlieder (`essen/kinder0`, never seen by
folk-base) and the test split of the model's own training corpora (the tunes of its training style it did not
train on). Issue 10's targets: in-key ratio >= 0.97, mean |interval| within 0.15 semitones of the real tunes,
median length >= 24 notes. One JSON line per (temperature, reference), then a Markdown table.

    python benchmarks/quality/sample_stats.py --model folk-base --temperatures 0.8 0.9 1.0 --top-p 1.0 0.9 --num 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from hf_melody import MelodyPipeline, load_melodies
from hf_melody.data.dataset import melody_style, split_melodies
from hf_melody.evaluation import bundle_training_files
from hf_melody.evaluation.statistics import compare_sets


def reference_sets(model: str, extra: list[str], style: str | None) -> dict[str, list]:
    """Each reference name with its melodies: the `extra` datasets and the model's own test split (the tunes of
    the samples' style only, when a style is given)."""
    refs = {}
    for spec in extra:
        refs[spec] = load_melodies(spec, progress=False)[0]
    info, _ = bundle_training_files(model)
    if info.get("dataset"):
        melodies, _ = load_melodies(info["dataset"], progress=False, exclude=info.get("exclude", []))
        test = split_melodies(melodies)["test"]
        if style:
            test = [m for m in test if melody_style(m) == style]
        refs[f"{model} test split" + (f" ({style})" if style else "")] = test
    return refs


def sample(pipe: MelodyPipeline, num: int, seed: int, style: str | None, temperature: float,
           top_p: float | None) -> tuple[list, float]:
    start = time.perf_counter()
    out = pipe(num_return_sequences=num, seed=seed, style=style, temperature=temperature, top_p=top_p)
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="folk-base", help="bundle name or folder (default: folk-base)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.8, 0.9, 1.0])
    parser.add_argument("--top-p", type=float, nargs="+", default=[1.0], help="nucleus sampling values to try "
                        "with each temperature (default: 1.0, off)")
    parser.add_argument("--num", type=int, default=100, help="samples per temperature (default: 100)")
    parser.add_argument("--seed", type=int, default=10000)
    parser.add_argument("--style", default="german-folk", help="style token of the samples (default: german-folk)")
    parser.add_argument("--references", nargs="*", default=["essen/kinder0"],
                        help="datasets to compare with, besides the model's own test split")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pipe = MelodyPipeline.from_pretrained(args.model)
    refs = reference_sets(args.model, args.references, args.style)
    rows = []
    for temperature, top_p in [(t, p) for t in args.temperatures for p in args.top_p]:
        samples, seconds = sample(pipe, args.num, args.seed, args.style, temperature, top_p)
        gen_notes = [m.notes for m in samples]
        gen_ts = [[[t.time, t.numerator, t.denominator] for t in m.score.time_signatures] or [[0, 4, 4]]
                  for m in samples]
        for name, real in refs.items():
            report = compare_sets(gen_notes, [m.notes for m in real], gen_ts, [m.time_signatures for m in real])
            g, r = report["generated"], report["reference"]
            row = {"model": args.model, "temperature": temperature, "top_p": top_p, "reference": name,
                   "samples": len(samples), "real": len(real), "seconds": round(seconds, 1),
                   "in_key_ratio": [round(g["in_key_ratio"]["mean"], 3), round(r["in_key_ratio"]["mean"], 3)],
                   "mean_abs_interval": [round(g["mean_abs_interval"]["mean"], 3),
                                         round(r["mean_abs_interval"]["mean"], 3)],
                   "median_notes": [statistics.median(len(n) for n in gen_notes),
                                    statistics.median(len(m.notes) for m in real)],
                   "mean_overlap": round(report["mean_overlap"], 3)}
            row["targets_met"] = (row["in_key_ratio"][0] >= 0.97
                                  and abs(row["mean_abs_interval"][0] - row["mean_abs_interval"][1]) <= 0.15
                                  and row["median_notes"][0] >= 24)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print("| T | top-p | vs | in-key (samples / real) | mean abs interval (samples / real) "
          "| median notes (samples / real) | mean overlap | targets met |")
    print("|---|---|---|---|---|---|---:|---|")
    for r in rows:
        print(f"| {r['temperature']} | {r['top_p']} | {r['reference']} "
              f"| {r['in_key_ratio'][0]:.3f} / {r['in_key_ratio'][1]:.3f} "
              f"| {r['mean_abs_interval'][0]:.3f} / {r['mean_abs_interval'][1]:.3f} "
              f"| {r['median_notes'][0]:g} / {r['median_notes'][1]:g} | {r['mean_overlap']:.3f} "
              f"| {'yes' if r['targets_met'] else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
