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

from ..music import TPQ
from .chords import Progression, parse_chord, parse_progression, parse_time_signature, strong_beats

__all__ = ["INFERRED_QUALITIES", "chord_tone_ratios", "infer_chords"]

INFERRED_QUALITIES = ("", "m", "7", "m7", "maj7", "dim")
"""The chords `infer_chords` chooses among (on each of the 12 roots): triads and the common sevenths."""
SEVENTH_COST = 0.15
"""A seventh (four tones) must cover this share of the span's weight more than the best triad to be chosen."""
KEEP_BONUS = 0.1
"""The chord of the span before gets this share of the span's weight as a bonus: harmony changes only when the
notes ask for it (a half bar of passing notes keeps its chord)."""
_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_CANDIDATES = [(f"{_NAMES[root]}{q}", parse_chord(f"{_NAMES[root]}{q}").pitch_classes)
               for q in INFERRED_QUALITIES for root in range(12)]


def _beat_ticks(ts: tuple[int, int], tpq: int) -> int:
    return tpq * 4 // ts[1]


def _weights(notes: Sequence[Sequence[int]], ts: tuple[int, int], tpq: int) -> list[tuple[int, float, int, bool]]:
    """(start tick, duration weight, pitch class, on a strong beat) of each note."""
    beat = _beat_ticks(ts, tpq)
    bar = ts[0] * beat
    strong = {round(b * beat) for b in strong_beats(ts)}
    return [(int(t), max(int(d), 1) / tpq, int(p) % 12, int(t) % bar in strong) for t, d, p in notes]


def infer_chords(notes: Sequence[Sequence[int]], time_signature: str | tuple[int, int] | None = None,
                 per: str = "bar", tpq: int = TPQ) -> str:
    """A progression (text for `chords=`) that fits `notes` best: one chord per bar, or per half bar with
    `per="half"` (in meters whose bar has an even number of beats). A bar without notes keeps the chord before.

    Examples:
        >>> tune = [[0, 480, 69], [480, 480, 72], [960, 480, 76], [1440, 480, 72], [1920, 960, 64], [2880, 480, 68],
        ...         [3360, 480, 64]]
        >>> infer_chords(tune, "4/4"), infer_chords(tune, "4/4", per="half")
        ('Am E', 'Am:2 Am:2 Am:2 E:2')
    """
    ts = parse_time_signature(time_signature)
    beats = ts[0] // 2 if per == "half" and ts[0] % 2 == 0 else ts[0]
    span_ticks = beats * _beat_ticks(ts, tpq)
    weighted = _weights(notes, ts, tpq)
    if not weighted:
        return ""
    n_spans = max(t for t, *_ in weighted) // span_ticks + 1
    if n_spans % (ts[0] // beats):
        n_spans += 1  # whole bars
    symbols: list[str] = []
    for k in range(n_spans):
        weight = [0.0] * 12
        for t, w, pc, strong in weighted:
            if k * span_ticks <= t < (k + 1) * span_ticks:
                weight[pc] += w * (2 if strong else 1)
        total = sum(weight)
        if total == 0:
            symbols.append(symbols[-1] if symbols else "")
            continue

        def fit(item, weight=weight, total=total, before=symbols[-1] if symbols else ""):
            symbol, tones = item
            cost = SEVENTH_COST * total * (len(tones) - 3) - KEEP_BONUS * total * (symbol == before)
            return sum(weight[pc] for pc in tones) - cost, weight[parse_chord(symbol).root]

        symbols.append(max(_CANDIDATES, key=fit)[0])
    first = next(s for s in symbols if s)
    symbols = [s or first for s in symbols]
    if beats == ts[0]:
        return " ".join(symbols)
    return " ".join(f"{s}:{beats}" for s in symbols)


def chord_tone_ratios(notes: Sequence[Sequence[int]], chords: str | Progression,
                      time_signature: str | tuple[int, int] | None = None, tpq: int = TPQ) -> dict[str, float]:
    """The share of notes whose pitch is a tone of the chord sounding at their onset: of those starting on a strong
    beat (`strong_beat_chord_tone_ratio`) and of all (`chord_tone_ratio`). The progression starts at tick 0 and
    repeats; NaN where there are no such notes.

    Examples:
        >>> chord_tone_ratios([[0, 480, 60], [480, 480, 62]], "C", "3/4")
        {'strong_beat_chord_tone_ratio': 1.0, 'chord_tone_ratio': 0.5}
    """
    progression = chords if isinstance(chords, Progression) else parse_progression(chords, time_signature)
    ts = progression.time_signature
    beat = _beat_ticks(ts, tpq)
    bar = ts[0] * beat
    hits = {True: [0, 0], False: [0, 0]}
    for t, _, pc, strong in _weights(notes, ts, tpq):
        chord = progression.chord_at(t // bar, (t % bar) / beat)
        hits[strong][0] += pc in chord.pitch_classes
        hits[strong][1] += 1
    strong_hits, strong_n = hits[True]
    all_hits, all_n = strong_hits + hits[False][0], strong_n + hits[False][1]
    return {"strong_beat_chord_tone_ratio": strong_hits / strong_n if strong_n else float("nan"),
            "chord_tone_ratio": all_hits / all_n if all_n else float("nan")}
