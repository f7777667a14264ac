"""Chords inferred from a melody, and how well a melody fits chords: the reference for the chord-tone metrics.

`infer_chords` picks, per bar (or half bar), the triad or seventh whose tones cover the most of the melody there,
weighting each note by its duration and doubling notes that start on a strong beat (`chords.strong_beats`); ties go
to the chord before, then to the chord whose root sounds most.
`chord_tone_ratios` measures the share of notes that are chord tones, on strong beats and overall.

Notes are plain lists `[onset, duration, pitch]` in ticks at `music.TPQ` (480) per quarter, as in
`hf_melody.evaluation.statistics`.

Examples:
    >>> from hf_melody.harmony.inference import chord_tone_ratios, infer_chords
    >>> notes = [[0, 480, 60], [480, 480, 64], [960, 960, 67], [1920, 960, 67], [2880, 960, 71]]
    >>> infer_chords(notes, "4/4")
    'C G'
    >>> chord_tone_ratios(notes, "C G", "4/4")
    {'strong_beat_chord_tone_ratio': 1.0, 'chord_tone_ratio': 1.0}
"""

from __future__ import annotations

from collections.abc import Sequence

from ..music import DEFAULT_TIME_SIGNATURE, TPQ, bar_ticks
from .chords import Progression, parse_chord, parse_progression, parse_time_signature, strong_beats

__all__ = ["INFERRED_QUALITIES", "Meter", "chord_tone_ratios", "infer_chords", "main_meter"]

INFERRED_QUALITIES = ("", "m", "7", "m7", "maj7", "dim")
"""The chords `infer_chords` chooses among (on each of the 12 roots): triads and the common sevenths."""
SEVENTH_COST = 0.15
"""A seventh (four tones) must cover this share of the span's weight more than the best triad to be chosen."""
KEEP_BONUS = 0.1
"""The chord of the span before gets this share of the span's weight as a bonus: harmony changes only when the
notes ask for it (a half bar of passing notes keeps its chord)."""
_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_CANDIDATES = [(f"{_NAMES[root]}{q}", parse_chord(f"{_NAMES[root]}{q}").pitch_classes, root)
               for q in INFERRED_QUALITIES for root in range(12)]


Meter = str | tuple[int, int] | Sequence[Sequence[int]] | None
"""A meter ("3/4", `(3, 4)`), or a score's time signatures `[[tick, numerator, denominator], ...]`."""


def _meters(time_signature: Meter) -> list[tuple[int, int, int]]:
    if isinstance(time_signature, list | tuple) and time_signature and isinstance(time_signature[0], list | tuple):
        tss = sorted((int(t), int(n), int(d)) for t, n, d in time_signature)
        return tss if tss[0][0] == 0 else [(0, *DEFAULT_TIME_SIGNATURE), *tss]
    return [(0, *parse_time_signature(time_signature))]


def main_meter(time_signature: Meter) -> tuple[int, int]:
    """The meter a progression is laid out in: the last one of a score (a pickup's short first bar comes before).

    Examples:
        >>> main_meter([[0, 1, 8], [240, 6, 8]])
        (6, 8)
    """
    return _meters(time_signature)[-1][1:]


def _locate(notes: Sequence[Sequence[int]], time_signature: Meter, tpq: int
            ) -> list[tuple[int, float, int, float, bool]]:
    """(bar, beat in the bar, pitch class, weight, on a strong beat) of each note, bars following the meters (a
    meter change takes effect at the next bar line)."""
    tss, out = _meters(time_signature), []
    bars: list[tuple[int, int, int, int]] = []  # (start, length, numerator, denominator)
    tick, i = 0, 0
    end = max((int(t) for t, _, _ in notes), default=-1)
    while tick <= end:
        while i + 1 < len(tss) and tss[i + 1][0] <= tick:
            i += 1
        _, num, den = tss[i]
        bars.append((tick, max(bar_ticks(num, den, tpq), 1), num, den))
        tick += bars[-1][1]
    b = 0
    for t, d, p in sorted((int(t), int(d), int(p)) for t, d, p in notes):
        while b + 1 < len(bars) and bars[b + 1][0] <= t:
            b += 1
        start, _, num, den = bars[b]
        beat = (t - start) / (tpq * 4 / den)
        out.append((b, beat, p % 12, max(d, 1) / tpq, beat in strong_beats((num, den))))
    return out


def infer_chords(notes: Sequence[Sequence[int]], time_signature: Meter = None,
                 per: str = "bar", tpq: int = TPQ) -> str:
    """A progression (text for `chords=`) that fits `notes` best: one chord per bar, or per half bar with
    `per="half"` (in meters whose bar has an even number of beats). A bar without notes keeps the chord before.

    Examples:
        >>> tune = [[0, 480, 69], [480, 480, 72], [960, 480, 76], [1440, 480, 72], [1920, 960, 64], [2880, 480, 68],
        ...         [3360, 480, 64]]
        >>> infer_chords(tune, "4/4"), infer_chords(tune, "4/4", per="half")
        ('Am E', 'Am:2 Am:2 Am:2 E:2')
    """
    ts = main_meter(time_signature)
    halves = per == "half" and ts[0] % 2 == 0
    located = _locate(notes, time_signature, tpq)
    if not located:
        return ""
    n_spans = (max(bar for bar, *_ in located) + 1) * (2 if halves else 1)
    spans: list[list[float]] = [[0.0] * 12 for _ in range(n_spans)]
    for bar, beat, pc, w, strong in located:
        spans[bar * 2 + (beat >= ts[0] / 2) if halves else bar][pc] += w * (2 if strong else 1)
    symbols: list[str] = []
    for weight in spans:
        total = sum(weight)
        if total == 0:
            symbols.append(symbols[-1] if symbols else "")
            continue

        def fit(item, weight=weight, total=total, before=symbols[-1] if symbols else ""):
            symbol, tones, root = item
            cost = SEVENTH_COST * total * (len(tones) - 3) - KEEP_BONUS * total * (symbol == before)
            return sum(weight[pc] for pc in tones) - cost, weight[root]

        symbols.append(max(_CANDIDATES, key=fit)[0])
    first = next(s for s in symbols if s)
    symbols = [s or first for s in symbols]
    return " ".join(f"{s}:{ts[0] // 2}" for s in symbols) if halves else " ".join(symbols)


def chord_tone_ratios(notes: Sequence[Sequence[int]], chords: str | Progression, time_signature: Meter = None,
                      tpq: int = TPQ) -> dict[str, float]:
    """The share of notes whose pitch is a tone of the chord sounding at their onset: of those starting on a strong
    beat (`strong_beat_chord_tone_ratio`) and of all (`chord_tone_ratio`). The progression starts at tick 0 and
    repeats; NaN where there are no such notes.

    Examples:
        >>> chord_tone_ratios([[0, 480, 60], [480, 480, 62]], "C", "3/4")
        {'strong_beat_chord_tone_ratio': 1.0, 'chord_tone_ratio': 0.5}
    """
    ts = main_meter(time_signature)
    progression = chords if isinstance(chords, Progression) else parse_progression(chords, ts)
    hits = {True: [0, 0], False: [0, 0]}
    for bar, beat, pc, _, strong in _locate(notes, time_signature, tpq):
        hits[strong][0] += pc in progression.chord_at(bar, beat).pitch_classes
        hits[strong][1] += 1
    strong_hits, strong_n = hits[True]
    all_hits, all_n = strong_hits + hits[False][0], strong_n + hits[False][1]
    return {"strong_beat_chord_tone_ratio": strong_hits / strong_n if strong_n else float("nan"),
            "chord_tone_ratio": all_hits / all_n if all_n else float("nan")}
