"""Export: MIDI, audio and piano-roll rendering (`render`), notation (`notation`: MusicXML, ABC, the engraved
SVG score), the chords in those files (`chords`: markers, chord track, chord symbols) and the notebook display
(`display`).
"""

from .chords import (
    CHORD_PROGRAM,
    ChordEvent,
    voicing,
    with_chords,
)
from .display import (
    melody_html,
)
from .notation import (
    abc_text,
    musicxml_bytes,
    save_abc,
    save_musicxml,
    save_svg,
    svg_text,
    to_music21,
)
from .render import (
    AUDIO_FORMATS,
    DEFAULT_TEMPO_QPM,
    FORMATS,
    SOUNDFONT_CANDIDATES,
    SOUNDFONT_ENV,
    audio_bytes,
    check_formats,
    find_soundfont,
    midi_bytes,
    piano_roll_figure,
    piano_roll_png,
    render_audio,
    save_audio,
    save_midi,
    save_piano_roll,
    save_wav,
    with_metadata,
)

__all__ = [
    "AUDIO_FORMATS",
    "CHORD_PROGRAM",
    "DEFAULT_TEMPO_QPM",
    "FORMATS",
    "SOUNDFONT_CANDIDATES",
    "SOUNDFONT_ENV",
    "ChordEvent",
    "abc_text",
    "audio_bytes",
    "check_formats",
    "find_soundfont",
    "melody_html",
    "midi_bytes",
    "musicxml_bytes",
    "piano_roll_figure",
    "piano_roll_png",
    "render_audio",
    "save_abc",
    "save_audio",
    "save_midi",
    "save_musicxml",
    "save_piano_roll",
    "save_svg",
    "save_wav",
    "svg_text",
    "to_music21",
    "voicing",
    "with_chords",
    "with_metadata",
]
