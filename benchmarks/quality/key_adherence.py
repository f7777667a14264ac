"""Keys, measured: how well `estimate_key` names the corpora's annotated keys, and how often sampled melodies are
heard in the key they were asked for.

Two sections, one JSON line per measurement:

1. `estimate`: `hf_melody.music.estimate_key` against the keys written in the bundled corpora, for four key
   profiles (Krumhansl-Kessler, Aarden-Essen, Temperley's Kostka-Payne, Bellman-Budge), each with and without the
   last-note weight, and music21's own `analyze("key")` (Aarden-Essen) on the first `--music21-tunes` tunes of
   each corpus. Essen's `K:` field names the tonic (its mode is "major" in 8,501 of 8,514 tunes, whatever the
   notes), so Essen is scored on the tonic; O'Neill's 1850 names major, minor and modes, so it is scored on the whole
   key (major and minor tunes) and on the key signature (all tunes).
2. `adherence`: `--samples` melodies (seeds 0..n-1) per asked key and per setting, and the share whose estimated
   key (`estimate_key`, and music21's two analyses as second judges) is the asked one, for `key=` alone and with
   `end_on_tonic=True`; `--before` samples as before issue 23 (the key's scale as a hard mask, no tonic weight).

    .venv/bin/python benchmarks/quality/key_adherence.py                       # both sections, folk-base
    .venv/bin/python benchmarks/quality/key_adherence.py --section adherence --samples 50 --num-bars 8 [--before]
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROFILES = {
    "krumhansl-kessler": ((6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
                          (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)),
    "aarden-essen": ((17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494,
                      0.232998, 4.95122),
                     (18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186,
                      7.37619, 1.75623)),
    "temperley-kostka-payne": None,  # hf_melody.music.KEY_PROFILES, the default
    "bellman-budge": ((16.80, 0.86, 12.95, 1.41, 13.49, 11.93, 1.25, 20.28, 1.80, 8.04, 0.62, 10.57),
                      (18.16, 0.69, 12.99, 13.34, 1.07, 11.15, 1.38, 21.07, 7.49, 1.53, 0.92, 10.21)),
}
KEYS = ("D major", "A minor", "Bb major", "E minor")


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def music21_key(notes, method: str = "key") -> str:
    """music21's `analyze(method)` of `(onset, duration, pitch)` notes, as "D major" ("key": Aarden-Essen,
    "key.krumhansl": Krumhansl-Schmuckler)."""
    from fractions import Fraction

    import music21

    from hf_melody.music import TPQ

    stream = music21.stream.Stream()
    for onset, duration, pitch in notes:
        stream.insert(Fraction(onset, TPQ), music21.note.Note(pitch, quarterLength=Fraction(duration, TPQ)))
    key = stream.analyze(method)
    return f"{key.tonic.name.replace('-', 'b')} {key.mode}"


def section_estimate(music21_tunes: int) -> None:
    from hf_melody import load_melodies
    from hf_melody.music import FINAL_NOTE_WEIGHT, KEY_PROFILES, estimate_key, key_signature, parse_key

    for corpus in ("essen", "oneills1850"):
        melodies, _ = load_melodies(corpus, progress=False)
        tunes = [(m.notes, parse_key(m.key.replace("-", "b"))) for m in melodies if m.key and m.notes]
        judges = [(name, weight, profiles or KEY_PROFILES) for name, profiles in PROFILES.items()
                  for weight in (0.0, FINAL_NOTE_WEIGHT)]
        for name, weight, profiles in [*judges, ("music21 analyze('key')", None, None)]:
            subset = tunes[:music21_tunes] if weight is None else tunes
            tonic = key = signature = majmin = 0
            for notes, truth in subset:
                guess = music21_key(notes) if weight is None else estimate_key(notes, profiles, weight)
                parsed = parse_key(guess)
                tonic += parsed.tonic == truth.tonic
                signature += key_signature(guess)[0] % 12 == key_signature(truth.name)[0] % 12
                if truth.mode in ("major", "minor"):
                    majmin += 1
                    key += (parsed.tonic, parsed.mode) == (truth.tonic, truth.mode)
            emit({"section": "estimate", "corpus": corpus, "judge": name, "final_note_weight": weight,
                  "tunes": len(subset), "tonic_accuracy": round(tonic / len(subset), 4),
                  "key_accuracy": round(key / majmin, 4) if majmin else None, "major_minor_tunes": majmin,
                  "signature_accuracy": round(signature / len(subset), 4)})


def section_adherence(model: str, samples: int, num_bars: int | None, before: bool) -> None:
    from hf_melody import MelodyPipeline
    from hf_melody.music import estimate_key, parse_key

    pipe = MelodyPipeline.from_pretrained(model)
    settings = {"key": {}, "key + end_on_tonic": {"end_on_tonic": True}}
    if before:  # issue 23's "before": the key's scale as a hard mask and nothing more
        settings = {f"{name}, before (tonic_weight 0)": extra for name, extra in settings.items()}
        from hf_melody.generation import logits_process

        logits_process.TONIC_WEIGHT = 0.0
    lengths = {"num_bars": num_bars} if num_bars else {}
    for key in KEYS:
        want = parse_key(key)
        for name, extra in settings.items():
            melodies = pipe(seed=0, num_return_sequences=samples, key=key, **lengths, **extra)
            ours = m21 = krumhansl = tonic_end = 0
            for m in melodies:
                notes = m.notes
                ours += estimate_key(notes) == want.name
                m21 += music21_key(notes) == want.name
                krumhansl += music21_key(notes, "key.krumhansl") == want.name
                tonic_end += max(notes)[2] % 12 == want.tonic
            emit({"section": "adherence", "model": model, "key": key, "setting": name, "samples": samples,
                  "num_bars": num_bars, "estimate_key_share": round(ours / samples, 3),
                  "music21_share": round(m21 / samples, 3),
                  "music21_krumhansl_share": round(krumhansl / samples, 3),
                  "ends_on_tonic": round(tonic_end / samples, 3)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--section", choices=("estimate", "adherence", "all"), default="all")
    parser.add_argument("--model", default="folk-base")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--num-bars", type=int, default=None, help="default: whole tunes (8-32 bars)")
    parser.add_argument("--music21-tunes", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--before", action="store_true", help="sample as before issue 23: no tonic weight")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.section in ("estimate", "all"):
        section_estimate(args.music21_tunes)
    if args.section in ("adherence", "all"):
        section_adherence(args.model, args.samples, args.num_bars, args.before)


if __name__ == "__main__":
    main()
