"""Score -> sheet music: a music21 stream, MusicXML (MuseScore, Finale, Sibelius, Dorico), ABC (folk musicians) and
an engraved score as SVG (verovio, from the MusicXML).

music21 (the `corpus` extra) spells the notes in the key, makes bars, rests and ties; ABC text is written from that
stream here, since music21 reads ABC but does not write it. With `chords=` (`hf_melody.harmony.chord_events`) each
chord is a `harmony.ChordSymbol` at its offset in its measure: `<harmony>` (root, kind, bass) in MusicXML, engraved
above the staff by verovio, and `"Am"` in ABC before the note or rest that starts at or spans the change.

Examples:
    >>> from hf_melody.export.notation import save_musicxml, save_abc
    >>> save_musicxml(score, "tune.musicxml", key="D minor", title="My tune")    # doctest: +SKIP
    >>> print(abc_text(score, key="D minor", title="My tune"))                    # doctest: +SKIP
    >>> save_svg(score, "tune.svg", title="My tune")                              # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from ..errors import HFMelodyError, MissingDependencyError
from ..music import key_name_of_signature, spell_pitch
from ..utils import atomic_write_bytes, atomic_write_text
from .chords import ChordEvent, chord_symbol
from .render import DEFAULT_TEMPO_QPM, with_metadata

PART_NAME = "Melody"
"""The part name of the MusicXML (and the ABC voice)."""
COMPOSER = "hf_melody"
"""The composer named when none is given (`GeneratedMelody` gives "hf_melody <model>")."""


def _music21():
    try:
        import music21
    except ImportError as e:
        raise MissingDependencyError("MusicXML and ABC export need music21: pip install 'hf_melody[corpus]'") from e
    return music21


def to_music21(score, key: str | None = None, title: str | None = None, tempo_qpm: float | None = None,
               composer: str | None = None, program: int | str | None = None,
               chords: Sequence[ChordEvent] | None = None):
    """The melody as a `music21.stream.Score` with measures, key and time signatures, tempo, title, composer, part
    name, instrument (`program`, when given), rests and ties; the notes spelled in the key (`key`, else the score's
    key signature, else the key heard in the notes: `hf_melody.music.estimate_key`, `spell_pitch`).

    A pickup (`hf_melody.export.render.pickup_ticks`) is measure 0, as short as the pickup (`paddingLeft`, written
    `implicit="yes"` in MusicXML, unnumbered). The final bar is filled with rests to a whole bar, unless the notes
    end where it completes the pickup: then it is that short (`paddingRight`). ABC follows the same stream.

    `chords` (`hf_melody.harmony.chord_events`): a `ChordSymbol` at each chord's offset in its measure; the melody
    then has no pickup (a late first note enters over the first chord in a full first bar).

    Examples:
        >>> to_music21(score, key="G major").show("text")                               # doctest: +SKIP
        >>> to_music21(score, chords=chord_events(score, "C G Am F"))                  # doctest: +SKIP
    """
    from ..music import bar_ticks
    from .render import pickup_ticks

    m21 = _music21()
    score = with_metadata(score, key=key, title=title, tempo_qpm=tempo_qpm, program=program,
                          pickup=not chords)  # as files write it
    tpq = score.ticks_per_quarter
    _, pickup = pickup_ticks(score) if not chords else (0, 0)
    tss = sorted(score.time_signatures, key=lambda t: t.time)
    if pickup:  # lay the notes out in full bars of the meter, the pickup at the end of the first one
        tss = tss[1:]
        lead_in = bar_ticks(tss[0].numerator, tss[0].denominator, tpq) - pickup
    else:
        lead_in = 0

    def at(tick: int) -> Fraction:  # a meta event's offset (those at the start stay at 0)
        return Fraction(tick + lead_in, tpq) if tick > 0 else Fraction(0)

    part = m21.stream.Part()
    part.partName = PART_NAME
    for i, ts in enumerate(tss):
        part.insert(at(ts.time) if i else 0, m21.meter.TimeSignature(f"{ts.numerator}/{ts.denominator}"))
    spelling = key
    for ks in score.key_signatures:
        sig = m21.key.KeySignature(ks.key)
        part.insert(at(ks.time), sig.asKey("minor" if ks.tonality else "major"))
        spelling = key if key is not None and ks.time == 0 else key_name_of_signature(ks.key, bool(ks.tonality))
    if program is not None:
        part.insert(0, m21.instrument.instrumentFromMidiProgram(score.tracks[0].program if score.tracks else 0))
    part.insert(0, m21.tempo.MetronomeMark(number=round(score.tempos[0].qpm, 2)))
    for track in score.tracks[:1]:
        for n in track.notes:
            note = m21.note.Note(n.pitch, quarterLength=Fraction(n.duration, tpq))
            if spelling is not None:  # C# (not Db) in D minor, Bb (not A#) in F major
                letter, alter, octave = spell_pitch(n.pitch, spelling)
                note.pitch = m21.pitch.Pitch(f"{letter}{'#' * alter if alter > 0 else '-' * -alter}{octave}")
            part.insert(Fraction(n.time + lead_in, tpq), note)
    part.makeRests(fillGaps=True, inPlace=True)
    part.makeMeasures(inPlace=True)
    part.makeTies(inPlace=True)
    measures = list(part.getElementsByClass(m21.stream.Measure))
    if measures:
        _finish_bars(m21, measures, Fraction(lead_in, tpq), Fraction(pickup, tpq))
        _insert_chords(m21, measures, chords or (), tpq)
    out = m21.stream.Score()
    out.metadata = m21.metadata.Metadata()
    out.metadata.title = title or (score.tracks[0].name if score.tracks else "") or "hf_melody"
    out.metadata.composer = composer or COMPOSER
    out.insert(0, part)
    return out


def _insert_chords(m21, measures, chords: Sequence[ChordEvent], tpq: int) -> None:
    """Each chord's `ChordSymbol` into the measure it starts in, at its offset there."""
    for event in chords:
        offset = Fraction(event.time, tpq)
        measure = next((m for m in reversed(measures) if Fraction(m.offset) <= offset), measures[0])
        measure.insert(offset - Fraction(measure.offset), chord_symbol(m21, event.chord))


def _finish_bars(m21, measures, lead_in: Fraction, pickup: Fraction) -> None:
    """Measure 0 as the pickup (its leading rests dropped), the final bar whole or completing the pickup."""
    first, last = measures[0], measures[-1]
    bar = Fraction(first.barDuration.quarterLength)
    end = max((Fraction(el.offset) + Fraction(el.quarterLength) for el in last.notes), default=Fraction(0))
    if pickup:
        for el in list(first.notesAndRests):
            if el.offset < lead_in:
                first.remove(el)
            else:
                el.offset = el.offset - lead_in
        first.paddingLeft = float(lead_in)
        first.number = 0
        first.showNumber = m21.stream.enums.ShowNumber.NEVER
        for i, m in enumerate(measures[1:], 1):
            m.number = i
    for el in list(last.notesAndRests):  # the rests after the last note are rewritten below
        if el.isRest and el.offset >= end:
            last.remove(el)
    if last is first:
        return
    if pickup and end == bar - pickup:
        last.paddingRight = float(pickup)
    elif end < bar:
        last.insert(float(end), m21.note.Rest(quarterLength=bar - end))


def musicxml_bytes(score, key: str | None = None, title: str | None = None, tempo_qpm: float | None = None,
                   composer: str | None = None, program: int | str | None = None,
                   chords: Sequence[ChordEvent] | None = None) -> bytes:
    """The melody as an uncompressed MusicXML document (`program`: its General MIDI instrument; `chords`: a
    `<harmony>` element at each chord change).

    Examples:
        >>> b"<harmony" in musicxml_bytes(score, chords=chord_events(score, "C G"))         # doctest: +SKIP
        True
    """
    import tempfile

    stream = to_music21(score, key, title, tempo_qpm, composer, program, chords)
    with tempfile.TemporaryDirectory(prefix="hf_melody-xml-") as tmp:
        path = stream.write("musicxml", fp=Path(tmp) / "melody.musicxml")
        return Path(path).read_bytes()


def save_musicxml(score, path: str | os.PathLike, key: str | None = None, title: str | None = None,
                  tempo_qpm: float | None = None, composer: str | None = None,
                  program: int | str | None = None, chords: Sequence[ChordEvent] | None = None) -> Path:
    """Write the melody as MusicXML (opens in MuseScore and other notation programs), with `chords` as
    `<harmony>` chord symbols."""
    return atomic_write_bytes(path, musicxml_bytes(score, key, title, tempo_qpm, composer, program, chords))


def _abc_unit(stream) -> Fraction:
    """ABC's unit note length `L:` in quarter notes: an eighth, as folk ABC writes, unless most notes are shorter."""
    lengths = [Fraction(n.quarterLength) for n in stream.flatten().getElementsByClass("GeneralNote")
               if not n.isRest and "ChordSymbol" not in n.classes]
    short = sum(1 for q in lengths if q < Fraction(1, 2))
    return Fraction(1, 4) if lengths and short * 2 > len(lengths) else Fraction(1, 2)


def _abc_length(quarter_length, unit: Fraction) -> str:
    units = Fraction(quarter_length).limit_denominator(96) / unit
    if units == 1:
        return ""
    if units.denominator == 1:
        return str(units.numerator)
    if units.numerator == 1 and units.denominator in (2, 4, 8):
        return "/" * {2: 1, 4: 2, 8: 3}[units.denominator]
    return f"{units.numerator}/{units.denominator}"


def _abc_pitch(pitch, accidental: int | None) -> str:
    marks = {None: "", -2: "__", -1: "_", 0: "=", 1: "^", 2: "^^"}[accidental]
    octave = pitch.octave
    letter = pitch.step if octave <= 4 else pitch.step.lower()
    return marks + letter + ("," * (4 - octave) if octave < 4 else "'" * (octave - 5) if octave > 5 else "")


def abc_text(score, key: str | None = None, title: str | None = None, tempo_qpm: float | None = None,
             bars_per_line: int = 4, composer: str | None = None, chords: Sequence[ChordEvent] | None = None) -> str:
    """The melody as an ABC tune (one voice, L:1/8 unless most notes are shorter, then L:1/16; a pickup as a short
    first bar, the bars as `to_music21` makes them), accidentals written on every note that leaves the key
    signature (and on its return within the bar), so strict and lenient ABC readers agree. `chords`: each symbol
    in quotes (`"Am"`) before the note or rest that starts at the chord change; a note or rest across a change is
    split there (a note into two tied ones), since ABC puts a symbol only before a note (`"C""G"c8` would stack both
    at its start).

    Examples:
        >>> abc_text(score, key="D minor").splitlines()[:3]                              # doctest: +SKIP
        ['X:1', 'T:hf_melody', 'M:4/4']
    """
    m21 = _music21()
    stream = to_music21(score, key, title, tempo_qpm, composer, chords=chords)
    part = stream.parts[0]
    unit = _abc_unit(stream)
    first_ts = part.recurse().getElementsByClass(m21.meter.TimeSignature).first()
    first_key = part.recurse().getElementsByClass(m21.key.KeySignature).first()
    sharps, minor = (first_key.sharps, getattr(first_key, "mode", "") == "minor") if first_key else (0, False)
    key_name = key_name_of_signature(sharps, minor)
    altered = {}  # the key signature's alteration of each letter
    for p in (m21.key.KeySignature(sharps).alteredPitches if sharps else []):
        altered[p.step] = int(p.accidental.alter)
    mark = part.recurse().getElementsByClass(m21.tempo.MetronomeMark).first()
    qpm = mark.number if mark is not None else (tempo_qpm or DEFAULT_TEMPO_QPM)
    lines = ["X:1", f"T:{stream.metadata.title}", f"C:{stream.metadata.composer}",
             f"M:{first_ts.ratioString if first_ts else '4/4'}", f"L:1/{int(4 / unit)}", f"Q:1/4={round(qpm)}",
             f"K:{key_name}"]
    body, line = [], []
    measures = list(part.getElementsByClass(m21.stream.Measure))
    for i, measure in enumerate(measures):
        state: dict[str, int] = {}  # accidentals last until the bar line
        tokens = []
        symbols = sorted((Fraction(cs.offset), cs.editorial.get("symbol", cs.figure.replace("-", "b")))
                         for cs in measure.getElementsByClass(m21.harmony.ChordSymbol))
        elements = [el for el in measure.notesAndRests if "ChordSymbol" not in el.classes]
        for j, el in enumerate(elements):
            start, stop = Fraction(el.offset), Fraction(el.offset) + Fraction(el.quarterLength)
            last = j == len(elements) - 1
            # a chord changing inside a note or rest splits it there (tied: the same sound), so each symbol stands
            # before the note that starts with its chord; one before the first note goes on the first one
            cuts = sorted({start, *(t for t, _ in symbols if start < t < stop), stop})
            for k, (lo, hi) in enumerate(zip(cuts, cuts[1:], strict=False)):
                here = [(t, s) for t, s in symbols if t < hi or (last and k == len(cuts) - 2)]
                symbols = symbols[len(here):]
                quoted = "".join(f'"{s}"' for _, s in here)
                length = _abc_length(hi - lo, unit)
                if el.isRest:
                    tokens.append(quoted + "z" + length)
                    continue
                p = el.pitch
                alter = int(p.accidental.alter) if p.accidental is not None else 0
                slot = f"{p.step}{p.octave}"
                in_key = altered.get(p.step, 0)
                # explicit on every altered note (readers differ on whether accidentals last the bar) and on the
                # return
                mark = alter if alter != in_key or alter != state.get(slot, in_key) else None
                state[slot] = alter
                tied = hi < stop or (el.tie is not None and el.tie.type in ("start", "continue"))
                tokens.append(quoted + _abc_pitch(p, mark) + length + ("-" if tied else ""))
        line.append(" ".join(tokens))
        if (i + 1) % bars_per_line == 0 or i == len(measures) - 1:
            body.append(" | ".join(line) + (" |]" if i == len(measures) - 1 else " |"))
            line = []
    return "\n".join(lines + body) + "\n"


def save_abc(score, path: str | os.PathLike, key: str | None = None, title: str | None = None,
             tempo_qpm: float | None = None, composer: str | None = None,
             chords: Sequence[ChordEvent] | None = None) -> Path:
    """Write the melody as an ABC tune (a `.abc` file that abcjs, EasyABC or music21 read; `chords` as `"Am"`)."""
    return atomic_write_text(path, abc_text(score, key, title, tempo_qpm, composer=composer, chords=chords))


def svg_text(score, key: str | None = None, title: str | None = None, tempo_qpm: float | None = None,
             composer: str | None = None, program: int | str | None = None, width: int = 2100,
             chords: Sequence[ChordEvent] | None = None) -> str:
    """The melody engraved as one SVG page (title, composer, staves broken to `width`, in verovio's units of a
    tenth of a millimetre at scale 40) by verovio from its MusicXML; needs verovio and music21 (the `score` extra).

    Examples:
        >>> svg_text(score, title="My tune")[:4]                                          # doctest: +SKIP
        '<svg'
    """
    try:
        import verovio
    except ImportError as e:
        raise MissingDependencyError("the engraved score (SVG) needs verovio: pip install 'hf_melody[score]'") from e
    xml = musicxml_bytes(score, key, title, tempo_qpm, composer, program, chords).decode()
    verovio.enableLog(verovio.LOG_OFF)
    toolkit = verovio.toolkit()
    toolkit.setOptions({"pageWidth": width, "pageHeight": 60000, "adjustPageHeight": True, "scale": 40,
                        "footer": "none", "breaks": "auto"})
    if not toolkit.loadData(xml):
        raise HFMelodyError("verovio could not read the MusicXML of this melody; save it as .musicxml instead")
    return toolkit.renderToSVG(1)


def save_svg(score, path: str | os.PathLike, key: str | None = None, title: str | None = None,
             tempo_qpm: float | None = None, composer: str | None = None,
             program: int | str | None = None, chords: Sequence[ChordEvent] | None = None) -> Path:
    """Write the engraved score as an SVG image (`svg_text`; browsers and notebooks show it)."""
    return atomic_write_text(path, svg_text(score, key, title, tempo_qpm, composer, program, chords=chords))
