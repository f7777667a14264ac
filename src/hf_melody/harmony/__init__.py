"""Harmony: chord symbols and progressions (`chords`), chords inferred from a melody and the chord-tone ratios
(`inference`), and the logits processor that keeps a melody on a progression (`logits_process`).
"""

from .chords import (
    QUALITIES,
    Chord,
    ChordSpan,
    Progression,
    check_chord_options,
    chord_events,
    parse_chord,
    parse_progression,
    strong_beats,
)
from .inference import (
    chord_tone_ratios,
    infer_chords,
)
from .logits_process import (
    ChordProcessor,
    bar_scale,
)

__all__ = [
    "QUALITIES",
    "Chord",
    "ChordProcessor",
    "ChordSpan",
    "Progression",
    "bar_scale",
    "check_chord_options",
    "chord_events",
    "chord_tone_ratios",
    "infer_chords",
    "parse_chord",
    "parse_progression",
    "strong_beats",
]
