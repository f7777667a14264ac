"""Melodies over chords: strong-beat and overall chord-tone ratios for no chords / soft / hard, with a real-tune
reference.

One JSON line per (progression, meter, setting): `--seeds` melodies (seeds 0..n-1) of the progression's length
(`num_bars` = its bars, repeated to `--bars`), measured over the progression with
`hf_melody.harmony.inference.chord_tone_ratios` on the notes as the decoder placed them (bar 0 = the first chord).
Settings: `none` (no chords: the same melodies' fit to the progression by chance), `soft 1.5`, `soft 4.0` and
`hard`. Also the time per melody of each setting (the chord processor's cost), and one line per reference corpus:
real tunes over the chords inferred from them (`infer_chords`, per bar), the value a melody that fits its
harmony as real tunes do would reach.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality/chord_tones.py --model folk-base --seeds 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROGRESSIONS = ("C G Am F", "Dm7 G7 Cmaj7 Cmaj7", "Am Dm E7 Am")
SETTINGS = (("none", None), ("soft 1.5", 1.5), ("soft 4.0", 4.0), ("hard", "hard"))


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def tracked_notes(pipe, ids):
    from hf_melody.grammar.remi import REMIGrammar

    grammar = REMIGrammar.for_tokenizer(pipe.melody_tokenizer)
    return [[n.onset, n.duration, n.pitch] for n in grammar.feed(grammar.initial_state(), ids)], grammar


def measure(pipe, chords: str, meter: str, strictness, seeds: int, bars: int) -> dict:
    from hf_melody.harmony.inference import chord_tone_ratios

    rows, seconds = [], []
    for seed in range(seeds):
        options = {"seed": seed, "time_signature": meter, "num_bars": bars}
        if strictness is not None:
            options.update(chords=chords, chord_strictness=strictness)
        start = time.perf_counter()
        [m] = pipe(**options)
        seconds.append(time.perf_counter() - start)
        notes, grammar = tracked_notes(pipe, m.token_ids)
        rows.append(chord_tone_ratios(notes, chords, meter, tpq=grammar.ticks_per_quarter))
    out = {}
    for name in ("strong_beat_chord_tone_ratio", "chord_tone_ratio"):
        values = [r[name] for r in rows if r[name] == r[name]]
        out[name] = round(statistics.mean(values), 4)
        out[f"{name}_min"] = round(min(values), 4)
    out["seconds_per_melody"] = round(statistics.median(seconds), 4)
    return out


def reference(corpus: str, limit: int | None) -> dict:
    from hf_melody import load_melodies
    from hf_melody.evaluation.statistics import chord_statistics

    melodies, _ = load_melodies(corpus, progress=False)
    melodies = melodies[:limit] if limit else melodies
    rows = [chord_statistics([list(n) for n in m.notes], [list(t) for t in m.time_signatures]) for m in melodies]
    out = {"corpus": corpus, "tunes": len(rows)}
    for name in ("strong_beat_chord_tone_ratio", "chord_tone_ratio"):
        values = [r[name] for r in rows if r[name] == r[name]]
        out[name] = round(statistics.mean(values), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="folk-base")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--bars", type=int, default=8, help="bars per melody (the progression repeats)")
    parser.add_argument("--meters", default="4/4,3/4")
    parser.add_argument("--references", default="essen/kinder0")
    parser.add_argument("--reference-limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from hf_melody import MelodyPipeline

    pipe = MelodyPipeline.from_pretrained(args.model)
    for corpus in filter(None, args.references.split(",")):
        emit({"section": "reference", "chords": "inferred per bar", **reference(corpus, args.reference_limit)})
    for meter in args.meters.split(","):
        for chords in PROGRESSIONS:
            for name, strictness in SETTINGS:
                emit({"section": "chord_tones", "model": args.model, "chords": chords, "meter": meter,
                      "setting": name, "seeds": args.seeds, "bars": args.bars,
                      **measure(pipe, chords, meter, strictness, args.seeds, args.bars)})


if __name__ == "__main__":
    main()
