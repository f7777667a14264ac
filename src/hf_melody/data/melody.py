"""The `Melody` record and the helpers that make one line of notes: skyline, octave placement, meters, skip reports.

Examples:
    >>> from hf_melody.data.melody import Melody, skyline
    >>> skyline([(0, 480, 60), (0, 480, 64), (480, 240, 62)])
    [[0, 480, 64], [480, 240, 62]]
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NoMelodyError
from ..music import GRID, PITCH_RANGE, PLACEMENT_RANGE, TIME_SIGNATURE_RANGE, TPQ, bar_ticks
from ..utils import atomic_write_text

logger = logging.getLogger(__name__)


@dataclass
class Melody:
    """One monophonic melody.

    Args:
        id: stable identifier, e.g. `essen/kinder0/12` or `midi/<relative path>`.
        source: corpus name or folder it came from.
        notes: `[onset, duration, pitch]` triples in ticks at `TPQ` (480 per quarter), sorted, non-overlapping.
        time_signatures: `[tick, numerator, denominator]` triples; the first one at tick 0.
        title: the tune's title (may be empty).
        key: its key as written in the source, e.g. "G major" (may be empty).
        style: its style, e.g. "german-folk" (may be empty: `other`).

    Examples:
        >>> melody = Melody("mine/1", "mine", [[0, 480, 60], [480, 480, 64]], [[0, 3, 4]], style="german-folk")
        >>> melody.meter, len(melody.notes)
        ('3/4', 2)
    """

    id: str
    source: str
    notes: list[list[int]]
    time_signatures: list[list[int]] = field(default_factory=lambda: [[0, 4, 4]])
    title: str = ""
    key: str = ""
    style: str = ""

    @property
    def meter(self) -> str:
        num, den = self.time_signatures[0][1:] if self.time_signatures else (4, 4)
        return f"{num}/{den}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Melody:
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in keys})

    def transposed(self, semitones: int) -> Melody | None:
        """The melody shifted by `semitones`, or None when that leaves the pitch range."""
        pitches = [n[2] + semitones for n in self.notes]
        if min(pitches) < PITCH_RANGE[0] or max(pitches) > PITCH_RANGE[1]:
            return None
        notes = [[o, d, p] for (o, d, _), p in zip(self.notes, pitches, strict=True)]
        return Melody(self.id, self.source, notes, self.time_signatures, self.title, self.key, self.style)

    def to_score(self, tempo_qpm: float = 120.0):
        """A one-track `symusic.Score` (piano, 480 ticks per quarter) of this melody."""
        from symusic import Note, Score, Tempo, TimeSignature, Track

        score = Score(TPQ)
        for tick, num, den in self.time_signatures:
            score.time_signatures.append(TimeSignature(tick, num, den))
        score.tempos.append(Tempo(0, tempo_qpm))
        track = Track(name=self.title or "melody", program=0, is_drum=False)
        for onset, dur, pitch in self.notes:
            track.notes.append(Note(onset, dur, pitch, 90))
        score.tracks.append(track)
        return score


def skyline(notes: Iterable[tuple[int, int, int]], grid: int = GRID) -> list[list[int]]:
    """Reduce possibly polyphonic `(onset, duration, pitch)` notes (ticks at TPQ) to one line.

    Onsets are quantized to `grid`; of notes starting together the highest wins; a note is cut where the next
    one starts; zero-length notes are dropped.
    """
    by_onset: dict[int, tuple[int, int]] = {}
    for onset, dur, pitch in notes:
        if dur <= 0:
            continue
        q = round(onset / grid) * grid
        end = max(q + grid, round((onset + dur) / grid) * grid)
        if q not in by_onset or pitch > by_onset[q][1]:
            by_onset[q] = (end - q, pitch)
    onsets = sorted(by_onset)
    line = []
    for i, q in enumerate(onsets):
        dur, pitch = by_onset[q]
        if i + 1 < len(onsets):
            dur = min(dur, onsets[i + 1] - q)
        line.append([q, dur, pitch])
    return line


def _octave_shift(lo: int, hi: int, bounds: tuple[int, int]) -> int | None:
    """The whole-octave shift that moves pitches `lo..hi` inside `bounds` (inclusive), or None."""
    shift = 0
    while lo + shift < bounds[0]:
        shift += 12
    while hi + shift > bounds[1]:
        shift -= 12
    return shift if lo + shift >= bounds[0] else None


def fit_pitch_range(notes: list[list[int]], where: str) -> list[list[int]]:
    """Shift a melody by whole octaves into the tokenizer's range, or raise `NoMelodyError`.

    The melody is placed into `PLACEMENT_RANGE` (C3..C6) when it fits there, else into the wider `PITCH_RANGE`.
    """
    lo, hi = min(n[2] for n in notes), max(n[2] for n in notes)
    if hi - lo > PITCH_RANGE[1] - PITCH_RANGE[0]:
        raise NoMelodyError(
            f"{where}: melody spans pitches {lo}-{hi}, wider than the tokenizer range {PITCH_RANGE}; "
            "split or simplify the melody"
        )
    shift = _octave_shift(lo, hi, PLACEMENT_RANGE)
    if shift is None:
        shift = _octave_shift(lo, hi, PITCH_RANGE)
    if shift is None:
        raise NoMelodyError(f"{where}: melody pitches {lo}-{hi} cannot be shifted by octaves into {PITCH_RANGE}; "
                            "transpose it so that it fits, or drop its extreme notes")
    return [[o, d, p + shift] for o, d, p in notes] if shift else notes


def _clean_time_signatures(tss: list[list[int]], where: str) -> list[list[int]]:
    """Drop absurd time signatures (the tokenizer would reject them) and keep one per tick."""
    out: dict[int, list[int]] = {}
    for t, num, den in sorted(tss):
        if den in TIME_SIGNATURE_RANGE and num in TIME_SIGNATURE_RANGE[den]:
            out[t] = [t, num, den]
        else:
            logger.debug("%s: time signature %d/%d at tick %d is not supported; ignored", where, num, den, t)
    return list(out.values()) or [[0, 4, 4]]


def _bar_start(tick: int, tss: list[list[int]]) -> int:
    """Tick of the start of the bar that contains `tick`."""
    start, num, den = 0, 4, 4
    for t, n, d in tss:
        if t > tick:
            break
        start, num, den = t, n, d
    bar = bar_ticks(num, den)
    return start + (tick - start) // bar * bar


def _one_line(text: str, limit: int = 160) -> str:
    """`text` on one line (whitespace collapsed), cut to `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."



@dataclass
class SkipReport:
    """What a batch job skipped, and why. Written as JSON beside the output by `save`.

    Examples:
        >>> melodies, report = load_melodies("path/to/midi")                      # doctest: +SKIP
        >>> report.summary(), report.reasons()                                    # doctest: +SKIP
        ('118 of 120 kept, 2 skipped (MidiReadError: 1, NoMelodyError: 1)', {...})
        >>> report.save("out/skip_report.json")                                   # doctest: +SKIP
    """

    total: int = 0
    kept: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)

    def add(self, item: str, error: Exception) -> None:
        self.skipped.append({"item": item, "error": type(error).__name__, "reason": str(error)})
        logger.warning("skipped %s", error)

    def reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.skipped:
            counts[s["error"]] = counts.get(s["error"], 0) + 1
        return counts

    def summary(self) -> str:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.reasons().items()))
        return f"{self.kept} of {self.total} kept, {len(self.skipped)} skipped" + (f" ({reasons})" if reasons else "")

    def save(self, path: str | os.PathLike) -> Path:
        body = {"total": self.total, "kept": self.kept, "reasons": self.reasons(), "skipped": self.skipped}
        return atomic_write_text(path, json.dumps(body, indent=2))
