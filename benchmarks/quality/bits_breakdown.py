"""Where the bits go: bits per note split by token type, and how much the suffix helps when infilling.

For each model, every held-out melody is scored left to right (`BOS style bars EOS`, whole melodies: the context is
long enough for the Kinderlieder) and the -log2 probability of each target token is added to its type: Bar,
TimeSig, Position, Pitch, Duration, Rest, EOS. Each type's total is divided by the number of notes, so the columns
add up to the model's bits per note. A deterministic token (TimeSig after every Bar) should cost ~0 once learned;
Bar/Position carry the rhythm, Pitch the melody, Duration the note lengths.

`--infill` (models trained with the fill-in-the-middle format): for each melody of at least 4 bars, a gap of 1-2
bars (seeded by the melody id) is scored twice: left to right given the bars before it only, and in the infill
format given the bars before and after it (`Infill prefix InfillSuffix suffix InfillMiddle gap`). Bits per note of
the gap's tokens (EOS not counted on either side). `--samples N` also regenerates each gap N times with
`MelodyPipeline.infill` and reports how often a regenerated bar repeats one of its neighbouring bars exactly
(pitches and onsets relative to the bar line), against the same rate in the real tunes.

    .venv/bin/python benchmarks/quality/bits_breakdown.py --models folk-base original --dataset essen/kinder0 --infill
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections import defaultdict

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TYPES = ("Bar", "TimeSig", "Position", "Pitch", "Duration", "Rest", "EOS")


def token_bits(model, ids: list[int]) -> list[float]:
    """-log2 P(ids[i] | ids[:i]) for i >= 1 (one forward pass; the caller keeps ids within the context)."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    logp = torch.log_softmax(logits, -1)
    target = torch.tensor(ids[1:])
    return (-logp[torch.arange(len(target)), target] / torch.log(torch.tensor(2.0))).tolist()


def kind(tok, i: int) -> str:
    name = tok.miditok[int(i)]
    return name.split("_")[0]


def breakdown(model, tok, melodies, style: str) -> dict:
    totals: dict[str, float] = defaultdict(float)
    notes = 0
    n_pos = model.config.n_positions
    for m in melodies:
        ids = tok.encode(m, bos=True, eos=True, style=style)[:n_pos]
        bits = token_bits(model, ids)
        for t, b in zip(ids[1:], bits, strict=True):
            k = kind(tok, t)
            if k.startswith("Style"):
                continue
            totals[k if k in TYPES else "other"] += b
        notes += sum(1 for t in ids if kind(tok, t) == "Duration")
    out = {k: round(totals.get(k, 0.0) / notes, 4) for k in TYPES if k in totals}
    out["bits_per_note"] = round(sum(totals.values()) / notes, 4)
    out["notes"] = notes
    return out


def gap_of(melody_id: str, n_bars: int) -> tuple[int, int]:
    """A 1-2 bar gap strictly inside the tune (0-based start, stop), seeded by the melody id."""
    h = hashlib.sha1(melody_id.encode()).digest()
    width = 1 + h[0] % 2
    start = 1 + h[1] % max(1, n_bars - width - 1)
    return start, min(start + width, n_bars - 1)


def infill_bits(model, tok, melodies, style: str) -> dict:
    from hf_melody.data.infill_format import head_length, split_bars

    marks = tok.infill_token_ids
    l2r = infill = 0.0
    notes = 0
    used = 0
    for m in melodies:
        ids = tok.encode(m, bos=True, eos=True, style=style)
        head = head_length(ids, tok)
        bars = split_bars(ids[head:-1], tok.bar_token_id)
        if len(bars) < 4 or len(ids) + 3 > model.config.n_positions:
            continue
        start, stop = gap_of(m.id, len(bars))
        prefix = [t for b in bars[:start] for t in b]
        middle = [t for b in bars[start:stop] for t in b]
        suffix = [t for b in bars[stop:] for t in b]
        seq = ids[:head] + prefix + middle
        bits = token_bits(model, seq)
        l2r += sum(bits[-len(middle):])
        fim = ids[:head] + [marks["Infill"], *prefix, marks["InfillSuffix"], *suffix, marks["InfillMiddle"], *middle]
        bits = token_bits(model, fim)
        infill += sum(bits[-len(middle):])
        notes += sum(1 for t in middle if kind(tok, t) == "Duration")
        used += 1
    return {"melodies": used, "gap_notes": notes, "gap_bits_per_note_prefix_only": round(l2r / notes, 4),
            "gap_bits_per_note_prefix_and_suffix": round(infill / notes, 4)}


def bar_shapes(score, n_bars: int) -> list[tuple]:
    """Per bar: the (onset from the bar line, pitch) pairs of its notes."""
    from hf_melody.music import bar_start_ticks

    edges = bar_start_ticks(score, n_bars)
    shapes: list[list] = [[] for _ in range(n_bars)]
    for n in score.tracks[0].notes:
        for b in range(n_bars):
            if edges[b] <= n.time < edges[b + 1]:
                shapes[b].append((n.time - edges[b], n.pitch))
                break
    return [tuple(s) for s in shapes]


def copy_rates(pipe, tok, melodies, style: str, samples: int) -> dict:
    """How often a regenerated gap bar equals a neighbouring bar, vs the same for the real tune's gap bars."""
    from hf_melody.data.infill_format import head_length, split_bars

    gen_copies = gen_bars = real_copies = real_bars = 0
    for m in melodies:
        ids = tok.encode(m, bos=True, eos=True, style=style)
        bars = split_bars(ids[head_length(ids, tok):-1], tok.bar_token_id)
        if len(bars) < 4 or len(ids) + 3 > pipe.model.config.n_positions:
            continue
        start, stop = gap_of(m.id, len(bars))
        real = bar_shapes(tok.decode(ids), len(bars))
        neighbours = {real[start - 1], real[stop]} if stop < len(bars) else {real[start - 1]}
        real_copies += sum(real[b] in neighbours for b in range(start, stop))
        real_bars += stop - start
        for out in pipe.infill(m, bars=(start + 1, stop), num_return_sequences=samples, seed=0, style=style):
            shapes = bar_shapes(out.score, len(bars))
            gen_copies += sum(shapes[b] in neighbours for b in range(start, stop))
            gen_bars += stop - start
    return {"regenerated_bars": gen_bars, "copy_rate_regenerated": round(gen_copies / max(1, gen_bars), 4),
            "copy_rate_real": round(real_copies / max(1, real_bars), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["folk-base"])
    parser.add_argument("--dataset", default="essen/kinder0")
    parser.add_argument("--style", default="german-folk")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N melodies")
    parser.add_argument("--infill", action="store_true", help="also score gaps with and without the suffix")
    parser.add_argument("--samples", type=int, default=0, help="regenerate each gap N times (copy rate)")
    args = parser.parse_args()

    import torch

    from hf_melody import MelodyPipeline, load_melodies

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    melodies, _ = load_melodies(args.dataset, progress=False)
    melodies = melodies[:args.limit] if args.limit else melodies
    for name in args.models:
        pipe = MelodyPipeline.from_pretrained(name)
        model, tok = pipe.model.eval(), pipe.melody_tokenizer
        record = {"benchmark": "bits_breakdown", "model": name, "dataset": args.dataset,
                  "melodies": len(melodies), **breakdown(model, tok, melodies, args.style)}
        if args.infill:
            record.update(infill_bits(model, tok, melodies, args.style))
        if args.samples:
            record.update(copy_rates(pipe, tok, melodies, args.style, args.samples))
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
