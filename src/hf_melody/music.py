"""Musical facts every module shares: ticks per quarter, the pitch range, supported meters, bar lengths.

Written once here; the tokenizer, the corpora, the baselines, the CLI help and the cards read them from this module.

Example:
    >>> from hf_melody.music import PITCH_RANGE, bar_ticks
    >>> bar_ticks(6, 8)
    1440
"""

from __future__ import annotations

TPQ = 480
"""Ticks per quarter note of every melody record and of every score we build."""
GRID = TPQ // 4
"""Onsets are quantized to sixteenth notes, the finest position of the tokenizer."""

PITCH_RANGE: tuple[int, int] = (43, 91)
"""Inclusive MIDI pitch range of the melody tokenizer (G2..G6): every tune of the folk corpora fits by octaves (the
widest need 44..88), with room to transpose."""
PLACEMENT_RANGE: tuple[int, int] = (48, 84)
"""Melodies are first placed by whole octaves into C3..C6, the register of the folk corpora; only a tune that
cannot fit there uses the wider `PITCH_RANGE` (so the corpora's tunes keep the octave they always had)."""

TIME_SIGNATURE_RANGE: dict[int, list[int]] = {
    1: [3, 4],
    2: [2, 3, 4, 6],
    4: list(range(1, 13)),
    8: list(range(1, 13)),
    16: [3, 5, 6, 7, 9, 12],
}
"""Supported meters, denominator -> numerators. Wider than miditok's default: the folk corpora use 3/2, 4/2, 6/4,
3/1 ... (see STACK-NOTES)."""


def bar_ticks(numerator: int, denominator: int, tpq: int = TPQ) -> int:
    """Length of one bar of `numerator/denominator` in ticks (`tpq` per quarter note)."""
    return numerator * tpq * 4 // denominator


NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Pitch-class names, sharps and flats as folk tunes most often spell them."""


def note_name(pitch: int) -> str:
    """`60` -> `"C4"` (scientific pitch notation, MIDI 60 = middle C)."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"
