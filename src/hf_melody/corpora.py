"""Where melodies come from: MIDI folders and the music21 corpora, reduced to monophonic `Melody` records.

Example:
    >>> from hf_melody.corpora import load_melodies
    >>> melodies, report = load_melodies("essen/kinder0")      # doctest: +SKIP
    >>> melodies[0].title, len(melodies[0].notes)              # doctest: +SKIP
    ('SCHLAF KINDLEIN SCHLAF', 30)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import CorpusError, ImplausibleMelodyError, MidiReadError, NoMelodyError

logger = logging.getLogger(__name__)

TPQ = 480
"""Ticks per quarter note of every melody record and of every score we build."""
GRID = TPQ // 4
"""Onsets are quantized to sixteenth notes, the finest position of the tokenizer."""
PITCH_RANGE = (48, 84)
"""Inclusive MIDI pitch range of the melody tokenizer (C3..C6)."""
MIDI_SUFFIXES = (".mid", ".midi")
CONVERTER_VERSION = "1"
"""Bump when the music21 conversion changes, so cached corpora are rebuilt."""

# name -> (music21 corpus sub-folder, style label). `bach-chorales` is handled on its own.
MUSIC21_CORPORA: dict[str, tuple[str, str]] = {
    "essen": ("essenFolksong", "german-folk"),
    "oneills1850": ("oneills1850", "irish"),
    "ryansMammoth": ("ryansMammoth", "american-fiddle"),
    "airdsAirs": ("airdsAirs", "scottish-airs"),
    "bach-chorales": ("bach", "chorale"),
}
FOLK_CORPORA = ("essen", "oneills1850", "ryansMammoth", "airdsAirs")
"""The corpora of the bundled checkpoints (minus the held-out benchmark `essen/kinder0`)."""


@dataclass
class Melody:
    """One monophonic melody.

    Args:
        id: stable identifier, e.g. `essen/kinder0/12` or `midi/<relative path>`.
        source: corpus name or folder it came from.
        notes: `[onset, duration, pitch]` triples in ticks at `TPQ` (480 per quarter), sorted, non-overlapping.
        time_signatures: `[tick, numerator, denominator]` triples; the first one at tick 0.
        title, key, style: metadata (may be empty).
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


# --------------------------------------------------------------------------------------------------------------
# Melody extraction from notes
# --------------------------------------------------------------------------------------------------------------
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


def fit_pitch_range(notes: list[list[int]], where: str) -> list[list[int]]:
    """Shift a melody by whole octaves into `PITCH_RANGE`, or raise `NoMelodyError` if its span is too wide."""
    lo, hi = min(n[2] for n in notes), max(n[2] for n in notes)
    if hi - lo > PITCH_RANGE[1] - PITCH_RANGE[0]:
        raise NoMelodyError(
            f"{where}: melody spans pitches {lo}-{hi}, wider than the tokenizer range {PITCH_RANGE}; "
            "split or simplify the melody"
        )
    shift = 0
    while lo + shift < PITCH_RANGE[0]:
        shift += 12
    while hi + shift > PITCH_RANGE[1]:
        shift -= 12
    if lo + shift < PITCH_RANGE[0]:
        raise NoMelodyError(f"{where}: melody pitches {lo}-{hi} cannot be shifted by octaves into {PITCH_RANGE}; "
                            "transpose it so that it fits, or drop its extreme notes")
    return [[o, d, p + shift] for o, d, p in notes] if shift else notes


# --------------------------------------------------------------------------------------------------------------
# MIDI files
# --------------------------------------------------------------------------------------------------------------
def _track_score(track, span: int | None = None) -> float:
    """Prefer the track that sounds high, plays through the piece, varies its pitch and is mostly one line.

    `span` is the length in ticks of the whole piece (default: the track's own), so that a single long note or a
    few scattered hits do not look "continuous". Pitches count up to the top of the tokenizer range only: a piccolo
    holding one very high note is not a melody.
    """
    notes = track.notes
    if len(notes) == 0:
        return -1.0
    arr = notes.numpy()
    pitches = arr["pitch"]
    start, end = int(arr["time"].min()), int((arr["time"] + arr["duration"]).max())
    line = skyline((n.time, n.duration, n.pitch) for n in notes)
    covered = sum(d for _, d, _ in line)
    continuity = min(1.0, covered / max(1, span or end - start))
    variety = min(1.0, (len({p for _, _, p in line}) - 1) / 6)
    polyphony = 1.0 - len(line) / len(notes)
    register = min(float(pitches.mean()), float(PITCH_RANGE[1]))
    return register + 24.0 * continuity + 12.0 * variety - 12.0 * polyphony


def melody_from_score(score, melody_id: str, source: str, where: str | None = None) -> Melody:
    """Choose the melody track of a `symusic.Score` (drums skipped) and reduce it to one line at `TPQ`.

    Tracks are tried best first (`_track_score`); one whose line is too short or cannot fit the pitch range is
    passed over for the next. Unsupported time signatures are dropped (4/4 applies until the first kept one).

    Raises:
        NoMelodyError: the score has no notes, only drum notes, or a melody outside the pitch range.
    """
    where = where or melody_id
    if score.ticks_per_quarter != TPQ:
        score = score.resample(TPQ, min_dur=1)
    tracks = [t for t in score.tracks if len(t.notes) > 0]
    if not tracks:
        raise NoMelodyError(f"{where}: the file has no notes; give a MIDI file with a melody")
    pitched = [t for t in tracks if not t.is_drum]
    if not pitched:
        raise NoMelodyError(f"{where}: only drum tracks (MIDI channel 10); a melody needs a pitched track")
    arrays = [t.notes.numpy() for t in pitched]
    span = max(int((a["time"] + a["duration"]).max()) for a in arrays) - min(int(a["time"].min()) for a in arrays)
    # the best-scoring track that holds a usable line (at least 2 notes that fit the pitch range by octaves)
    first_error = None
    for best in sorted(pitched, key=lambda t: _track_score(t, span), reverse=True):
        line = skyline((n.time, n.duration, n.pitch) for n in best.notes)
        try:
            if len(line) < 2:
                raise NoMelodyError(f"{where}: the melody has {len(line)} note(s) of non-zero length; at least 2 are "
                                    "needed")
            line = fit_pitch_range(line, where)
            break
        except NoMelodyError as e:
            first_error = first_error or e
    else:
        raise first_error
    first = line[0][0]
    tss = [[int(ts.time), int(ts.numerator), int(ts.denominator)] for ts in score.time_signatures]
    tss = _clean_time_signatures(tss, where)
    # start at the bar that holds the first note
    bar0 = _bar_start(first, tss)
    line = [[o - bar0, d, p] for o, d, p in line]
    check_plausible(line, where)
    current = [[n, d] for t, n, d in tss if t <= bar0][-1:] or [[4, 4]]  # 4/4 until the first (MIDI default)
    tss = [[0, *current[0]]] + [[t - bar0, n, d] for t, n, d in tss if t > bar0]
    return Melody(melody_id, source, line, tss, title=str(best.name or Path(where).stem))


MAX_SPAN_QUARTERS = 1024
"""The longest note or rest inside a melody, in quarter notes (256 bars of 4/4, over 8 minutes at 120 bpm).
Longer is an encoding accident (a huge delta time, a stuck note), not music; the longest rest among music21's
test files is 145."""
MAX_SILENCE = 0.9
"""The largest share of a melody's length that may be long rests (over a bar of 4/4) before it counts as silence."""


def check_plausible(line: list[list[int]], where: str) -> None:
    """`ImplausibleMelodyError` for a line (onset, duration, pitch at `TPQ`) with an absurd note or rest, or one that
    is mostly silence: such files (huge delta times, a 10-hour note) would become thousands of `Rest` tokens."""
    limit, silence = MAX_SPAN_QUARTERS * TPQ, 0
    for i, (onset, dur, _) in enumerate(line):
        gap = line[i + 1][0] - onset - dur if i + 1 < len(line) else 0
        if dur > limit or gap > limit:
            what, length = ("note", dur) if dur > limit else ("rest", gap)
            raise ImplausibleMelodyError(
                f"{where}: implausible MIDI: a {what} of {length / TPQ:,.0f} quarter notes after note {i + 1} "
                f"(the limit is {MAX_SPAN_QUARTERS:,}); fix the delta times or note lengths, or drop the file")
        silence += gap if gap > 4 * TPQ else 0
    span = line[-1][0] + line[-1][1] - line[0][0]
    if span > 0 and silence / span > MAX_SILENCE:
        raise ImplausibleMelodyError(
            f"{where}: implausible MIDI: long rests fill {silence / span:.0%} of the melody (at most "
            f"{MAX_SILENCE:.0%} allowed); remove the long silences, or drop the file")


def _clean_time_signatures(tss: list[list[int]], where: str) -> list[list[int]]:
    """Drop absurd time signatures (the tokenizer would reject them) and keep one per tick."""
    from .tokenizer import TIME_SIGNATURE_RANGE

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
    bar = num * TPQ * 4 // den
    return start + (tick - start) // bar * bar


def _one_line(text: str, limit: int = 160) -> str:
    """`text` on one line (whitespace collapsed), cut to `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _read_varlen(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """A MIDI variable-length quantity (at most 4 bytes) at `pos`; returns (value, next position)."""
    value = 0
    for _ in range(4):
        if pos >= end:
            raise MidiReadError(f"{what} ends inside a length or delta time); re-export it")
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos
    raise MidiReadError(f"{what}: a length or delta time is longer than 4 bytes); re-export it")


def _check_track_events(data: bytes, pos: int, end: int, what: str) -> None:
    """Walk the events of one track chunk `data[pos:end]`; raise `MidiReadError` at the first malformed one.

    symusic 0.5.9 can crash the interpreter (SIGSEGV, SIGABRT) on a channel event whose data bytes have the top bit
    set (found by tests/test_fuzz.py) and trusts events to end inside their chunk, so both are checked here.
    Running status is accepted, also across meta events (common in files found in the wild). About 0.2 s per
    100,000 notes.
    """
    running = 0
    while pos < end:
        if data[pos] < 0x80:  # one-byte delta time: the common case, kept fast
            pos += 1
        else:
            _, pos = _read_varlen(data, pos, end, what)
        if pos >= end:
            raise MidiReadError(f"{what} ends after a delta time, without an event); re-export it")
        status = data[pos]
        if status < 0x80:
            if not running:
                raise MidiReadError(f"{what}: data byte {status:#04x} at byte {pos} without a status byte); "
                                    "re-export it")
            status = running
        else:
            pos += 1
        if status < 0xF0:  # channel message: 1 or 2 data bytes below 0x80
            running = status
            if 0xC0 <= status < 0xE0:
                if pos < end and data[pos] & 0x80:
                    raise MidiReadError(f"{what}: bad data byte after status {status:#04x} at byte {pos}); "
                                        "re-export it")
                pos += 1
            else:
                if pos + 1 < end and (data[pos] | data[pos + 1]) & 0x80:
                    raise MidiReadError(f"{what}: bad data byte after status {status:#04x} at byte {pos}); "
                                        "re-export it")
                pos += 2
        elif status == 0xFF:  # meta event: type, length, data
            length, pos = _read_varlen(data, pos + 1, end, what)
            pos += length
        elif status in (0xF0, 0xF7):  # sysex: length, data
            length, pos = _read_varlen(data, pos, end, what)
            pos += length
        else:
            raise MidiReadError(f"{what}: status byte {status:#04x} at byte {pos - 1} is not allowed in a MIDI "
                                "file); re-export it")
        if pos > end:
            raise MidiReadError(f"{what}: an event runs past the end of its chunk); re-export it")


def _check_midi_structure(data: bytes, where: str) -> None:
    """Walk the chunks of a Standard MIDI File; raise `MidiReadError` on what symusic would misread or crash on.

    symusic trusts chunk lengths (a track chunk claiming more bytes than the file holds crashed the interpreter)
    and divides by the time division, so both are checked here first.
    """
    fix = "re-export or re-download it"
    if len(data) < 14:
        raise MidiReadError(f"{where}: corrupt or truncated MIDI (only {len(data)} bytes; the header alone takes "
                            f"14); {fix}")
    header_len = int.from_bytes(data[4:8], "big")
    fmt, ntracks, division = (int.from_bytes(data[i:i + 2], "big") for i in (8, 10, 12))
    if header_len < 6 or 8 + header_len > len(data):
        raise MidiReadError(f"{where}: corrupt or truncated MIDI (header length {header_len}, expected 6); {fix}")
    if fmt > 2:
        raise MidiReadError(f"{where}: corrupt MIDI (format {fmt}; only 0, 1 and 2 exist); {fix}")
    if division & 0x8000:
        raise MidiReadError(f"{where}: SMPTE time division (frames per second) is not supported; re-export the "
                            "file with ticks per quarter note")
    if division == 0:
        raise MidiReadError(f"{where}: corrupt MIDI (time division of 0 ticks per quarter note); {fix}")
    pos, found = 8 + header_len, 0
    while found < ntracks and pos + 8 <= len(data):
        length = int.from_bytes(data[pos + 4:pos + 8], "big")
        if pos + 8 + length > len(data):
            raise MidiReadError(f"{where}: corrupt or truncated MIDI (chunk {found + 1} at byte {pos} claims "
                                f"{length} bytes, {len(data) - pos - 8} are left); {fix}")
        if data[pos:pos + 4] == b"MTrk":
            found += 1
            _check_track_events(data, pos + 8, pos + 8 + length, f"{where}: corrupt MIDI (track {found}")
        pos += 8 + length
    if found < ntracks:
        raise MidiReadError(f"{where}: corrupt or truncated MIDI (the header announces {ntracks} track(s), "
                            f"{found} found); {fix}")


def display_path(path: str | os.PathLike) -> str:
    """`path` as printable text: bytes that are not UTF-8 (e.g. `bad\\xff.mid` from another system) are shown as
    `\\xff` escapes, so melody ids, reports and messages never hold unencodable characters."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_link_loop(path: Path) -> bool:
    import errno

    try:
        os.stat(path)
    except OSError as e:
        return e.errno == errno.ELOOP
    return False


def read_midi(path: str | os.PathLike, melody_id: str | None = None, source: str = "midi") -> Melody:
    """Read one MIDI file and extract its melody.

    Raises:
        MidiReadError: missing, unreadable, truncated or non-MIDI file.
        NoMelodyError: no notes, drum-only, or melody outside the pitch range.
    """
    from symusic import Score

    path = Path(path)
    shown = display_path(path)
    if not path.is_file():
        if path.is_dir():
            raise MidiReadError(f"{shown}: is a folder, not a MIDI file; give a .mid file (or read the folder with "
                                "iter_midi_folder / load_melodies)")
        if path.is_symlink() and _is_link_loop(path):
            raise MidiReadError(f"{shown}: symbolic link loop (it points to {display_path(os.readlink(path))}, which "
                                "leads back to it); fix or remove the link")
        if path.is_symlink():
            raise MidiReadError(f"{shown}: broken symbolic link to {display_path(os.readlink(path))}; fix or remove "
                                "the link")
        if path.exists():
            raise MidiReadError(f"{shown}: not a regular file; give a .mid file")
        raise MidiReadError(f"{shown}: no such file; check the path")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MidiReadError(f"{shown}: cannot be read ({e.strerror}); check its permissions") from e
    if not data.startswith(b"MThd"):
        raise MidiReadError(f"{shown}: not a MIDI file (no 'MThd' header); give a Standard MIDI File (.mid)")
    _check_midi_structure(data, shown)
    try:
        score = Score.from_midi(data)
    except Exception as e:  # symusic raises RuntimeError/ValueError with C++ messages
        raise MidiReadError(f"{shown}: corrupt or truncated MIDI ({_one_line(e, 120)}); re-export it") from e
    try:
        return melody_from_score(score, melody_id or f"midi/{display_path(path.name)}", source, where=shown)
    except (MidiReadError, NoMelodyError):
        raise
    except Exception as e:  # absurd values that parsed (e.g. times beyond int32 after resampling)
        raise MidiReadError(f"{shown}: corrupt MIDI data ({type(e).__name__}: {_one_line(e, 120)}); "
                            "re-export it") from e


def midi_files(folder: str | os.PathLike) -> list[Path]:
    """All `.mid`/`.midi` files below `folder`, sorted, or a `CorpusError` naming what is wrong."""
    folder = Path(folder)
    if not folder.exists():
        raise CorpusError(f"{folder}: no such folder; give a folder of .mid files or a corpus name ({_names()})")
    if not folder.is_dir():
        raise CorpusError(f"{folder}: not a folder; give a folder of .mid files or a corpus name ({_names()})")
    # broken links are kept so that the folder job reports them instead of silently dropping them
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES
                   and (p.is_file() or (p.is_symlink() and not p.exists())))
    if not files:
        raise CorpusError(f"{folder}: no .mid/.midi files found (searched recursively); add MIDI files to it")
    return files


@dataclass
class SkipReport:
    """What a batch job skipped, and why. Written as JSON beside the output by `save`."""

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
        from .utils import atomic_write_text

        body = {"total": self.total, "kept": self.kept, "reasons": self.reasons(), "skipped": self.skipped}
        return atomic_write_text(path, json.dumps(body, indent=2))


def iter_midi_folder(folder: str | os.PathLike, report: SkipReport | None = None, progress: bool = True
                     ) -> Iterator[Melody]:
    """Yield the melody of every readable MIDI file below `folder`; bad files are skipped into `report`."""
    from tqdm.auto import tqdm

    folder = Path(folder)
    files = midi_files(folder)
    report = report if report is not None else SkipReport()
    for path in tqdm(files, desc=f"reading {folder.name}", unit="file", disable=not progress):
        report.total += 1
        rel = display_path(path.relative_to(folder).as_posix())
        try:
            melody = read_midi(path, melody_id=f"{display_path(folder.name)}/{rel}", source=display_path(folder))
        except (MidiReadError, NoMelodyError) as e:
            report.add(rel, e)
            continue
        report.kept += 1
        yield melody


# --------------------------------------------------------------------------------------------------------------
# music21 corpora
# --------------------------------------------------------------------------------------------------------------
def _names() -> str:
    return ", ".join([*MUSIC21_CORPORA, "essen/<file> e.g. essen/kinder0", "a MIDI folder"])


def _music21_root() -> Path:
    try:
        import music21
    except ImportError as e:
        raise CorpusError(
            "the built-in corpora need music21; install it with `pip install 'hf_melody[corpus]'`"
        ) from e
    return Path(music21.__file__).parent / "corpus"


def music21_files(name: str) -> list[Path]:
    """The files of a music21 corpus spec such as `essen`, `essen/kinder0` or `oneills1850`."""
    base, _, sub = name.partition("/")
    if base not in MUSIC21_CORPORA:
        raise CorpusError(f"unknown corpus {name!r}; choose one of: {_names()}")
    folder = _music21_root() / MUSIC21_CORPORA[base][0]
    pattern = "*.mxl" if base == "bach-chorales" else "*.abc"
    files = sorted(folder.glob(pattern))
    if sub:
        files = [f for f in files if f.stem == sub]
        if not files:
            stems = ", ".join(sorted(f.stem for f in folder.glob(pattern))[:12])
            raise CorpusError(f"corpus {base!r} has no file {sub!r}; files include: {stems}, ...")
    return files


def _m21_melody(score, melody_id: str, source: str, style: str, where: str | None = None) -> Melody:
    """Convert one music21 score (its first part) straight to a `Melody`, without writing MIDI.

    `where` names the tune in error messages (default: `melody_id`).
    """
    from music21 import key as m21key
    from music21 import meter

    where = where or melody_id
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    part = parts[0]
    measures = list(part.getElementsByClass("Measure"))
    shift = float(measures[0].paddingLeft) if measures else 0.0  # anacrusis: align bars properly
    flat = part.stripTies().flatten()
    raw = []
    for n in flat.notes:
        if n.duration.isGrace or n.quarterLength <= 0:
            continue
        pitch = n.pitch.midi if n.isNote else max(p.midi for p in n.pitches)
        onset = round((float(n.offset) + shift) * TPQ)
        raw.append((onset, round(float(n.quarterLength) * TPQ), pitch))
    line = skyline(raw)
    if len(line) < 2:
        raise NoMelodyError(f"{where}: the tune has {len(line)} note(s); at least 2 are needed (fix or remove it)")
    tss = []
    for ts in flat.getElementsByClass(meter.TimeSignature):
        tick = round((float(ts.offset) + shift) * TPQ) if ts.offset > 0 else 0
        tss.append([tick, int(ts.numerator), int(ts.denominator)])
    tss = _clean_time_signatures(tss, where)
    if tss[0][0] != 0:
        tss.insert(0, [0, *tss[0][1:]])
    keys = list(flat.getElementsByClass(m21key.KeySignature))
    key = ""
    if keys:
        k = keys[0]
        key = str(k) if isinstance(k, m21key.Key) else str(k.asKey())
    md = score.metadata
    title = (md.title or "") if md is not None else ""
    line = fit_pitch_range(line, where)
    return Melody(melody_id, source, line, tss, title=title, key=key, style=style)


def _convert_music21_file(args: tuple[str, str, str]) -> tuple[list[dict], list[tuple[str, str, str]]]:
    """Worker: parse one corpus file (possibly many tunes). Returns melodies and (item, error, reason) skips."""
    path, source, style = args
    import copy

    from music21 import converter, meter

    stem = Path(path).stem
    base = source.split("/")[0]
    melodies, skips = [], []
    try:
        parsed = converter.parse(path)
    except Exception as e:  # music21 raises many unrelated types for bad ABC
        reason = f"{path}: music21 could not parse it ({type(e).__name__}: {_one_line(e, 120)}); fix or remove the file"
        return [], [(f"{base}/{stem}", "ParseError", reason)]
    scores = list(parsed.scores) if hasattr(parsed, "scores") and len(parsed.scores) else [parsed]
    for i, score in enumerate(scores):
        mid = f"{base}/{stem}/{i}"
        try:
            # meter changes may reuse one TimeSignature object (see STACK-NOTES): copy duplicates
            seen = set()
            for ts in score.recurse().getElementsByClass(meter.TimeSignature):
                if id(ts) in seen:
                    ts.activeSite.replace(ts, copy.deepcopy(ts))
                seen.add(id(ts))
            melodies.append(_m21_melody(score, mid, base, style, where=f"{path} tune {i} ({mid})").to_dict())
        except NoMelodyError as e:
            skips.append((mid, "NoMelodyError", _one_line(e, 300)))
        except Exception as e:  # noqa: BLE001 - one broken tune must not stop a corpus
            skips.append((mid, type(e).__name__, f"{path} tune {i} ({mid}): conversion failed ({type(e).__name__}: "
                                                 f"{_one_line(e, 120)}); fix or remove the tune"))
    return melodies, skips


def cache_dir() -> Path:
    """Cache folder for converted corpora and prepared datasets (`$HF_MELODY_CACHE`, else ~/.cache/hf_melody)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hf_melody"
    path = Path(os.environ.get("HF_MELODY_CACHE") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_music21_corpus(name: str, num_proc: int | None = None, progress: bool = True,
                        report: SkipReport | None = None) -> list[Melody]:
    """Melodies of a music21 corpus spec (`essen`, `essen/kinder0`, `oneills1850`, ...), cached per file.

    The first conversion parses ABC/MusicXML with music21 (about 0.03-0.1 s a tune, in `num_proc` processes); the
    result is cached as JSON keyed by the file's content hash, so later runs load in well under a second.
    """
    import music21
    from tqdm.auto import tqdm

    base = name.split("/")[0]
    files = music21_files(name)
    style = MUSIC21_CORPORA[base][1]
    report = report if report is not None else SkipReport()
    out_dir = cache_dir() / "corpora" / f"music21-{music21.__version__}-v{CONVERTER_VERSION}"
    out_dir.mkdir(parents=True, exist_ok=True)

    def cache_path(f: Path) -> Path:
        digest = hashlib.sha1(f.read_bytes()).hexdigest()[:16]
        return out_dir / f"{base}-{f.stem}-{digest}.json"

    todo = [f for f in files if not cache_path(f).exists()]
    if todo:
        jobs = [(str(f), name, style) for f in todo]
        num_proc = num_proc or min(len(todo), os.cpu_count() or 1)
        bar = tqdm(total=len(todo), desc=f"converting {name} (music21, cached after)", unit="file",
                   disable=not progress)
        results: Iterable
        if num_proc > 1:
            pool = ProcessPoolExecutor(num_proc)
            results = pool.map(_convert_music21_file, jobs)
        else:
            pool, results = None, map(_convert_music21_file, jobs)
        from .utils import atomic_write_text

        for f, (mels, skips) in zip(todo, results, strict=True):
            atomic_write_text(cache_path(f), json.dumps({"melodies": mels, "skipped": skips}))
            bar.update()
        bar.close()
        if pool is not None:
            pool.shutdown()
    melodies: list[Melody] = []
    for f in files:
        body = json.loads(cache_path(f).read_text())
        for item, err, reason in body["skipped"]:
            report.total += 1
            report.skipped.append({"item": item, "error": err, "reason": reason})
        for d in body["melodies"]:
            report.total += 1
            report.kept += 1
            melodies.append(Melody.from_dict(d))
    return melodies


def load_melodies(spec: str | os.PathLike | list[str], progress: bool = True, num_proc: int | None = None,
                  exclude: Iterable[str] = ()) -> tuple[list[Melody], SkipReport]:
    """Melodies of a dataset spec: a corpus name, `corpus/file`, a MIDI folder, or a list of these.

    `exclude` drops melodies whose id starts with any of the given prefixes (e.g. `essen/kinder0/` to hold the
    benchmark out). Returns the melodies and a `SkipReport` of what was skipped and why.
    """
    specs = [spec] if isinstance(spec, str | os.PathLike) else list(spec)
    if not specs:
        raise CorpusError(f"empty dataset list; give a corpus name ({_names()})")
    report = SkipReport()
    melodies: list[Melody] = []
    for s in specs:
        s = str(s)
        if s.split("/")[0] in MUSIC21_CORPORA and not Path(s).exists():
            melodies += load_music21_corpus(s, num_proc=num_proc, progress=progress, report=report)
        elif Path(s).exists() or "/" in s or os.sep in s:
            melodies += list(iter_midi_folder(s, report, progress=progress))
        else:
            raise CorpusError(f"unknown corpus {s!r}; choose one of: {_names()}")
    excl = tuple(f"{e.rstrip('/')}/" for e in exclude)
    if excl:
        melodies = [m for m in melodies if not m.id.startswith(excl)]
    if not melodies:
        raise CorpusError(f"{specs}: no usable melodies ({report.summary()})")
    return melodies, report
