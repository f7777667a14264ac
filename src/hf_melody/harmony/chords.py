"""Chord symbols and progressions: `parse_chord("F#m7")`, `parse_progression("C:2 G:2 | Am F", "4/4")`.

Symbols are the ones lead sheets use: a root A-G with `#` or `b`, then one of `QUALITIES` (`""` major, `m`, `7`,
`maj7`, `m7`, `dim`, `aug`, `sus2`, `sus4`, `6`, `9`), then an optional bass after a slash (`C/E`, `C/Bb`).
A progression is symbols separated by spaces or `|`; a symbol lasts to the next bar line (one per bar when every
symbol starts a bar), or `:n` beats (`C:2`, halves allowed: `C:1.5`), where a beat is the time signature's
denominator (a 6/8 bar has 6 of them). A `|` must fall on a bar line.

Examples:
    >>> from hf_melody.harmony.chords import parse_chord, parse_progression
    >>> sorted(parse_chord("G7").pitch_classes), parse_chord("C/E").bass
    ([2, 5, 7, 11], 4)
    >>> [(s.chord.symbol, s.start, s.beats) for s in parse_progression("C:2 G:2 | Am F", "4/4").spans]
    [('C', 0.0, 2.0), ('G', 2.0, 2.0), ('Am', 4.0, 4.0), ('F', 8.0, 4.0)]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..music import MODES

if TYPE_CHECKING:
    from ..export.chords import ChordEvent

__all__ = ["QUALITIES", "Chord", "ChordSpan", "Progression", "check_chord_options", "chord_events", "parse_chord",
           "parse_progression", "parse_time_signature", "strong_beats"]

QUALITIES: dict[str, tuple[tuple[int, ...], str]] = {
    "": ((0, 4, 7), "major"),
    "m": ((0, 3, 7), "minor"),
    "7": ((0, 4, 7, 10), "mixolydian"),
    "maj7": ((0, 4, 7, 11), "major"),
    "m7": ((0, 3, 7, 10), "dorian"),
    "dim": ((0, 3, 6), "locrian"),
    "aug": ((0, 4, 8), "whole tone"),
    "sus2": ((0, 2, 7), "major"),
    "sus4": ((0, 5, 7), "mixolydian"),
    "6": ((0, 4, 7, 9), "major"),
    "9": ((0, 4, 7, 10, 2), "mixolydian"),
}
"""Quality suffix -> (chord tones in semitones above the root, the scale of its other notes). The scales are
the usual chord-scale choices of a lead sheet: a minor triad is taken as aeolian, m7 as dorian (ii7), 7/9/sus4 as
mixolydian (V7), dim as locrian (vii), aug as the whole-tone scale."""
_SCALES = {**{name: steps for name, steps in MODES.items()}, "whole tone": (0, 2, 4, 6, 8, 10)}
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SYMBOL = re.compile(r"^([A-G])([#b]?)([^/]*)(?:/([A-G])([#b]?))?$")
_ACCEPTED = ("root A-G with # or b, then one of: major (C), " + ", ".join(f"C{q}" for q in QUALITIES if q)
             + ", and slash chords (C/E)")


@dataclass(frozen=True)
class Chord:
    """One chord symbol: its root, bass, quality, chord tones and the scale of its other notes (pitch classes,
    0 = C).

    Examples:
        >>> chord = parse_chord("Am7")
        >>> chord.root, chord.quality, sorted(chord.pitch_classes), sorted(chord.scale)   # A dorian
        (9, 'm7', [0, 4, 7, 9], [0, 2, 4, 6, 7, 9, 11])
    """

    symbol: str
    root: int
    bass: int
    quality: str
    pitch_classes: frozenset[int]
    scale: frozenset[int]


@dataclass(frozen=True)
class ChordSpan:
    """A chord and where it sounds: `start` and `beats` in beats of the meter (its denominator) from the start of
    the progression."""

    chord: Chord
    start: float
    beats: float


@dataclass(frozen=True)
class Progression:
    """A progression laid out in a meter: its spans, its length in bars (the last chord lasts to the bar line) and
    the chord at any beat (a progression shorter than the melody repeats).

    Examples:
        >>> p = parse_progression("C G Am F", "3/4")
        >>> p.num_bars, p.chord_at(bar=5, beat=0.0).symbol
        (4, 'G')
    """

    text: str
    time_signature: tuple[int, int]
    spans: tuple[ChordSpan, ...]
    num_bars: int

    @property
    def bar_beats(self) -> int:
        return self.time_signature[0]

    def chord_at(self, bar: int, beat: float) -> Chord:
        """The chord sounding at `beat` (from the start of bar `bar`, 0-based, counted from the first chord)."""
        total = self.num_bars * self.bar_beats
        where = (bar * self.bar_beats + beat) % total
        for span in self.spans:
            if where < span.start + span.beats:
                return span.chord
        return self.spans[-1].chord

    def bar_chords(self, bar: int) -> list[str]:
        """The symbols sounding in bar `bar` (0-based), in order.

        Examples:
            >>> parse_progression("C:2 G:2 | Am F", "4/4").bar_chords(0)
            ['C', 'G']
        """
        total = self.num_bars * self.bar_beats
        lo = (bar % self.num_bars) * self.bar_beats
        return [s.chord.symbol for s in self.spans if s.start < lo + self.bar_beats and s.start + s.beats > lo
                and s.start < total]


def _pitch_class(letter: str, accidental: str) -> int:
    return (_LETTERS[letter] + {"#": 1, "b": -1, "": 0}[accidental]) % 12


def parse_chord(symbol: str) -> Chord:
    """A `Chord` from a lead-sheet symbol ("C", "F#m", "Bb7", "Cmaj7", "Dm7", "Bdim", "Caug", "Dsus4", "C6",
    "G9", "C/E"); `ConfigError` naming the symbol and what is accepted.

    Examples:
        >>> sorted(parse_chord("Bb7").pitch_classes)
        [2, 5, 8, 10]
        >>> parse_chord("Cmin7b5")
        Traceback (most recent call last):
        hf_melody.errors.ConfigError: unknown chord 'Cmin7b5'; write a root A-G with # or b, then one of: major (C), Cm, C7, Cmaj7, Cm7, Cdim, Caug, Csus2, Csus4, C6, C9, and slash chords (C/E)
    """  # noqa: E501 - a doctest's output is one line
    match = _SYMBOL.match(symbol.strip()) if isinstance(symbol, str) else None
    if match is None or match.group(3) not in QUALITIES:
        raise ConfigError(f"unknown chord {symbol!r}; write a {_ACCEPTED}")
    letter, accidental, quality, bass_letter, bass_accidental = match.groups()
    root = _pitch_class(letter, accidental)
    steps, scale_name = QUALITIES[quality]
    tones = {(root + s) % 12 for s in steps}
    scale = {(root + s) % 12 for s in _SCALES[scale_name]}
    bass = _pitch_class(bass_letter, bass_accidental) if bass_letter else root
    if bass not in tones:  # C/Bb: the bass sounds with the chord, so it is a chord tone too
        tones.add(bass)
        scale = (scale - {(bass + 1) % 12, (bass - 1) % 12}) | {bass}
    return Chord(symbol.strip(), root, bass, quality, frozenset(tones), frozenset(scale | tones))


def parse_time_signature(time_signature: str | tuple[int, int] | None) -> tuple[int, int]:
    """`(numerator, denominator)` of "3/4" (or a pair; None: 4/4).

    Examples:
        >>> parse_time_signature("6/8")
        (6, 8)
    """
    if time_signature is None:
        return (4, 4)
    if isinstance(time_signature, tuple | list) and len(time_signature) == 2:
        return int(time_signature[0]), int(time_signature[1])
    num, _, den = str(time_signature).partition("/")
    try:
        return int(num), int(den)
    except ValueError:
        raise ConfigError(f"time_signature={time_signature!r}: write it like '3/4'") from None


def strong_beats(time_signature: str | tuple[int, int] | None) -> tuple[float, ...]:
    """The strong beats of a bar, in beats from its start: beat 1 and the middle of the bar in simple duple and
    quadruple meters (numerator 2 or 4: 2/4, 4/4, 2/2, 4/8), beat 1 alone in every other meter (3/4, 3/8, 5/4 and the
    compound meters 6/8, 9/8, 12/8).

    Why: a duple or quadruple bar falls into two equal halves, each opening with an accent that harmony lands on
    (in 4/4 beat 3 is the secondary stress, and chords often change there). A triple bar has no middle beat, and a
    compound bar's inner dotted beats (beat 4 of 6/8) carry the melody's running eighths, which in jigs and
    siciliane are as often passing as chord tones; holding them to chord tones would strip that motion, so only the
    downbeat is held.

    Examples:
        >>> strong_beats("4/4"), strong_beats("3/4"), strong_beats("6/8")
        ((0.0, 2.0), (0.0,), (0.0,))
    """
    num, _ = parse_time_signature(time_signature)
    return (0.0, num / 2) if num in (2, 4) else (0.0,)


def _beats(symbol: str, text: str) -> float:
    try:
        beats = float(text)
    except ValueError:
        beats = math.nan
    if not (math.isfinite(beats) and beats > 0 and (2 * beats).is_integer()):
        raise ConfigError(f"chord {symbol!r}: the duration {text!r} is not a positive number of beats in halves; "
                          "write e.g. C:2 or C:1.5")
    return beats


def parse_progression(text: str, time_signature: str | tuple[int, int] | None = None) -> Progression:
    """The chords of `text` laid out in `time_signature` (default 4/4); `ConfigError` for an empty progression, an
    unknown symbol, a bad duration or a `|` inside a bar.

    Examples:
        >>> parse_progression("Am Dm | E7 Am", "6/8").num_bars
        4
        >>> parse_progression("C:3 | G", "4/4")
        Traceback (most recent call last):
        hf_melody.errors.ConfigError: chords 'C:3 | G': the '|' after 3 beats falls inside bar 1 of 4/4 (4 beats a bar); make the chords before it fill the bar
    """  # noqa: E501 - a doctest's output is one line
    if not isinstance(text, str) or not text.replace("|", " ").split():
        raise ConfigError(f"chords={text!r} holds no chord; give symbols separated by spaces or '|', e.g. 'C G Am F'")
    ts = parse_time_signature(time_signature)
    bar = ts[0]
    spans, beat = [], 0.0
    for bar_text in text.split("|"):
        if spans and beat % bar:
            raise ConfigError(f"chords {text!r}: the '|' after {beat:g} beats falls inside bar {int(beat // bar) + 1} "
                              f"of {ts[0]}/{ts[1]} ({bar} beats a bar); make the chords before it fill the bar")
        for word in bar_text.split():
            symbol, sep, length = word.partition(":")
            chord = parse_chord(symbol)
            beats = _beats(symbol, length) if sep else bar - beat % bar
            spans.append(ChordSpan(chord, beat, beats))
            beat += beats
    num_bars = math.ceil(beat / bar)
    last = spans[-1]
    spans[-1] = ChordSpan(last.chord, last.start, num_bars * bar - last.start)  # the last chord fills its bar
    return Progression(text, ts, tuple(spans), num_bars)


def check_chord_options(chords, strictness, chromatic_passing: bool = False, time_signature=None,
                        constrained: bool = True) -> None:
    """The checks of the chord options of `MelodyGenerationConfig` (`ConfigError` naming the fix).

    Examples:
        >>> check_chord_options("C G", 2.5)
        >>> check_chord_options(None, "hard")
        Traceback (most recent call last):
        hf_melody.errors.ConfigError: chord_strictness applies to chords; add chords='C G Am F'
    """
    if chords is None:
        if strictness is not None or chromatic_passing:
            name = "chord_strictness" if strictness is not None else "chromatic_passing"
            raise ConfigError(f"{name} applies to chords; add chords='C G Am F'")
        return
    parse_progression(chords, time_signature)
    if not constrained:
        raise ConfigError("chords need the grammar (it tracks the bars and beats); drop constrained=False")
    if strictness is None or strictness == "hard":
        return
    if isinstance(strictness, bool) or not isinstance(strictness, int | float) or not math.isfinite(strictness) \
            or strictness < 0:
        raise ConfigError(f"chord_strictness={strictness!r} is neither 'hard' nor a penalty >= 0; use e.g. 3.0")
    if chromatic_passing:
        raise ConfigError("chromatic_passing loosens hard chords, and a soft chord_strictness forbids no note; drop "
                          "one of them")


def chord_events(score, chords: str, first_bar: int = 0) -> list[ChordEvent]:
    """The chords of progression `chords` placed over `score` (a `symusic.Score` on the model's grid: bar 0 starts
    at tick 0) as `hf_melody.export.chords.ChordEvent`s, for the files (`midi_bytes(..., chords=events)`, the
    MusicXML, ABC, audio and piano roll). The progression is laid out in each bar's meter and repeats; bar
    `first_bar` (0-based) gets its first chord, the bars before it none (a continued prompt's bars); a chord
    lasting over bar lines is one event within one pass of the progression. The events cover the bars holding
    the score's notes.

    Examples:
        >>> [(e.time, e.duration, e.symbol) for e in chord_events(score, "C:2 G:2 | Am")]  # 4/4  # doctest: +SKIP
        [(0, 960, 'C'), (960, 960, 'G'), (1920, 1920, 'Am')]
    """
    from ..export.chords import ChordEvent
    from ..music import bar_start_ticks

    tpq = score.ticks_per_quarter
    end = max((n.time + n.duration for t in score.tracks for n in t.notes), default=0)
    starts = bar_start_ticks(score)
    tss = sorted((int(t.time), int(t.numerator), int(t.denominator)) for t in score.time_signatures)
    layouts: dict[tuple[int, int], Progression] = {}
    events: list[list] = []  # [time, end, chord, (pass, span)]
    for bar, (lo, hi) in enumerate(zip(starts, starts[1:], strict=False)):
        if lo >= end:
            break
        if bar < first_bar:
            continue
        ts = next(((n, d) for t, n, d in reversed(tss) if t <= lo), (4, 4))
        if ts not in layouts:
            try:
                layouts[ts] = parse_progression(chords, ts)
            except ConfigError:  # a '|' inside a bar of this meter counts as a space
                layouts[ts] = parse_progression(chords.replace("|", " "), ts)
        prog, beat = layouts[ts], tpq * 4 / ts[1]
        n, where = divmod(bar - first_bar, prog.num_bars)
        b0 = where * prog.bar_beats
        for i, span in enumerate(prog.spans):
            s, e = max(span.start, b0), min(span.start + span.beats, b0 + prog.bar_beats)
            if s >= e:
                continue
            t0, t1 = lo + round((s - b0) * beat), min(hi, lo + round((e - b0) * beat))
            if events and events[-1][3] == (n, i) and events[-1][1] == t0:
                events[-1][1] = t1
            else:
                events.append([t0, t1, span.chord, (n, i)])
    return [ChordEvent(t0, t1 - t0, chord) for t0, t1, chord, _ in events]
