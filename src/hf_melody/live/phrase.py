"""Phrases in beats: the notes a player plays (quantised to the model's sixteenth-note grid), their key, and the
prompt ids that make the model continue them from the next bar line.

Examples:
    >>> call = [PhraseNote(0.0, 1.0, 60), PhraseNote(1.0, 1.0, 64), PhraseNote(2.0, 2.0, 67)]
    >>> call_key(call), phrase_bars(call, "4/4")
    ('C major', 1)
    >>> ids = continuation_ids(tok, call, num_bars=1, time_signature="4/4")   # ends with Bar, TimeSig  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..data.melody import Melody, skyline
from ..music import GRID, PITCH_RANGE, TPQ
from ..tokenizer import MelodyTokenizer

__all__ = ["GRID_BEATS", "PhraseNote", "bar_of", "beats_per_bar", "call_key", "continuation_ids", "phrase_bars",
           "quantise"]

GRID_BEATS = GRID / TPQ
"""The model's grid in beats (a sixteenth note: 0.25)."""


@dataclass(frozen=True)
class PhraseNote:
    """One note of a phrase: onset and duration in beats (quarter notes), MIDI pitch, velocity."""

    onset: float
    duration: float
    pitch: int
    velocity: int = 80

    @property
    def end(self) -> float:
        return self.onset + self.duration


def beats_per_bar(time_signature: str) -> float:
    """`"6/8"` -> 3.0 beats (quarter notes) a bar.

    Examples:
        >>> beats_per_bar("3/4"), beats_per_bar("6/8")
        (3.0, 3.0)
    """
    num, den = (int(x) for x in time_signature.split("/"))
    return num * 4.0 / den


def quantise(beats: float) -> float:
    """`beats` rounded to the model's grid (`GRID_BEATS`).

    Examples:
        >>> quantise(1.13), quantise(0.9)
        (1.25, 1.0)
    """
    return round(beats / GRID_BEATS) * GRID_BEATS


def phrase_bars(notes: Sequence[PhraseNote], time_signature: str) -> int:
    """How many bars from bar 0 the phrase covers (to the bar of its last onset or sounding end)."""
    if not notes:
        return 0
    bpb = beats_per_bar(time_signature)
    last = max(max(n.onset for n in notes), max(n.end for n in notes) - 1e-6)
    return int(last // bpb) + 1


def call_key(notes: Sequence[PhraseNote]) -> str:
    """The key of a phrase (Krumhansl-Schmuckler on its duration-weighted pitch classes), e.g. "D minor"."""
    from ..evaluation.statistics import estimate_key, key_name  # evaluation loads on first use

    tonic, mode, _ = estimate_key([[round(n.onset * TPQ), max(1, round(n.duration * TPQ)), n.pitch] for n in notes])
    return key_name(tonic, mode)


def _fold(pitch: int) -> int:
    lo, hi = PITCH_RANGE
    while pitch < lo:
        pitch += 12
    while pitch > hi:
        pitch -= 12
    return pitch


def continuation_ids(tokenizer: MelodyTokenizer, notes: Sequence[PhraseNote], num_bars: int,
                     time_signature: str, downbeat: bool = False) -> list[int]:
    """Prompt ids for the `num_bars` bars of `notes` (beats from bar 0) followed by the opening of the next bar,
    so a continuation of exactly one bar (`num_bars=1`) is the bar after the phrase; with `downbeat`, its first
    note is on the bar line (the prompt ends with `Position_0`). Pitches outside the tokenizer's range move by
    octaves; overlapping notes become one line (the highest wins)."""
    tok = tokenizer
    num, den = (int(x) for x in time_signature.split("/"))
    line = skyline([(round(n.onset * TPQ), round(n.duration * TPQ), _fold(n.pitch)) for n in notes])
    bar_id, *opening = tok.encode_base_tokens(["Bar_None", f"TimeSig_{time_signature}"])
    ids = tok.encode(Melody("live/phrase", "live", line, [[0, num, den]])) if line else []
    missing = num_bars - sum(1 for i in ids if i == bar_id)  # trailing empty bars are not encoded
    ids += [bar_id, *opening] * max(1, missing + 1)
    return ids + (tok.encode_base_tokens(["Position_0"]) if downbeat else [])


def bar_of(beat: float, time_signature: str) -> int:
    """The bar (0-based) that `beat` falls in."""
    return math.floor(beat / beats_per_bar(time_signature) + 1e-9)
