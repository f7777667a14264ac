"""The chords in the files: chord events placed in a score's ticks, the block-chord track and the chord markers of
the MIDI (and audio), and the chord symbols of notation (music21 `ChordSymbol` -> MusicXML `<harmony>`, ABC `"Am"`).

`hf_melody.harmony.chord_events` lays a progression out over a score; the export functions take its events
(`chords=`), so this layer needs no chord parser. `GeneratedMelody` does both for the chords it was generated over.

The pickup rule: with chords a melody whose first note starts late in bar 0 is a *late entry over the first chord*,
not a pickup: the chords sound from time 0, so every file keeps a full first bar (rests before the first note) and
the first chord on it (`with_metadata(..., pickup=False)`). Without chords nothing changes.

Examples:
    >>> from hf_melody.harmony import chord_events
    >>> events = chord_events(score, "C G Am F")                                           # doctest: +SKIP
    >>> with_chords(score, events, chord_track=True).tracks[1].name                        # doctest: +SKIP
    'Chords'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..harmony.chords import Chord

__all__ = ["CHORD_PROGRAM", "CHORD_TRACK_NAME", "CHORD_VELOCITY", "ChordEvent", "chord_symbol", "voicing",
           "with_chords"]

CHORD_PROGRAM = 48
"""General MIDI program of the block-chord track: 48, String Ensemble 1 (a pad under the melody's piano)."""
CHORD_VELOCITY = 56
"""The chord track's velocity: softer than the melody's notes (miditok decodes them at 100)."""
CHORD_TRACK_NAME = "Chords"
_KINDS = {"": "major", "m": "minor", "7": "dominant-seventh", "maj7": "major-seventh", "m7": "minor-seventh",
          "dim": "diminished", "aug": "augmented", "sus2": "suspended-second", "sus4": "suspended-fourth",
          "6": "major-sixth", "9": "dominant-ninth"}
"""`hf_melody.harmony.QUALITIES` -> MusicXML `<kind>` (music21's `chordKind`)."""


@dataclass(frozen=True)
class ChordEvent:
    """A chord sounding from tick `time` for `duration` ticks (`chord`: a `hf_melody.harmony.Chord`)."""

    time: int
    duration: int
    chord: Chord

    @property
    def symbol(self) -> str:
        return self.chord.symbol


def voicing(chord: Chord) -> list[int]:
    """The block chord's MIDI pitches: the bass in the octave below C3 (36-47) and every chord tone once in
    C3-B3 (48-59), a close voicing under the melody's range.

    Examples:
        >>> from hf_melody.harmony import parse_chord
        >>> voicing(parse_chord("C/E")), voicing(parse_chord("G7"))
        ([40, 48, 52, 55], [43, 50, 53, 55, 59])
    """
    return [36 + chord.bass, *sorted(48 + pc for pc in chord.pitch_classes)]


def with_chords(score, chords: Sequence[ChordEvent], chord_track: bool = False, program: int = CHORD_PROGRAM):
    """A copy of `score` with a marker meta event (FF 06) naming each chord where it starts, and with
    `chord_track` a second track ("Chords", GM `program`, velocity `CHORD_VELOCITY`) of the block chords
    (`voicing`). Apply it last: `with_metadata` names and re-programs every track.

    Examples:
        >>> with_chords(score, chord_events(score, "Dm7 G7"), chord_track=True).markers     # doctest: +SKIP
    """
    from symusic import Note, TextMeta, Track

    out = score.copy()
    for event in chords:
        out.markers.append(TextMeta(int(event.time), event.symbol))
    if chord_track and chords:
        track = Track(name=CHORD_TRACK_NAME, program=int(program))
        for event in chords:
            for pitch in voicing(event.chord):
                track.notes.append(Note(int(event.time), int(event.duration), pitch, CHORD_VELOCITY))
        out.tracks.append(track)
    return out


def chord_symbol(m21, chord: Chord):
    """The music21 `harmony.ChordSymbol` of `chord`, root and bass spelled as its symbol writes them (Bb, F#),
    written to MusicXML as `<harmony>` with `<root>`, `<kind text="...">` (the symbol's own suffix) and `<bass>`;
    `editorial.symbol` keeps the symbol as written, for ABC.

    Examples:
        >>> import music21
        >>> from hf_melody.harmony import parse_chord
        >>> chord_symbol(music21, parse_chord("Bb7/D")).figure
        'B-7/D'
    """
    symbol = chord.symbol
    root = symbol[0] + ("-" if symbol[1:2] == "b" else "#" if symbol[1:2] == "#" else "")
    _, slash, bass = symbol.partition("/")
    bass = (bass[0] + {"b": "-", "#": "#"}.get(bass[1:2], "")) if slash else None
    cs = m21.harmony.ChordSymbol(root=root, bass=bass, kind=_KINDS[chord.quality])
    cs.chordKindStr = chord.quality  # <kind text="maj7">: what engravers print (verovio: "Cmaj7", not "CMaj7")
    cs.writeAsChord = False
    cs.editorial.symbol = chord.symbol  # as the user wrote it ("Caug", "Csus4"; music21's figures: "C+", "Csus")
    return cs
