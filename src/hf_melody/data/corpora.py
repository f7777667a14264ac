"""Where melodies come from: MIDI folders and the music21 corpora, reduced to monophonic `Melody` records.

Examples:
    >>> from hf_melody.data.corpora import load_melodies
    >>> melodies, report = load_melodies("essen/kinder0")      # doctest: +SKIP
    >>> melodies[0].title, len(melodies[0].notes)              # doctest: +SKIP
    ('SCHLAF KINDLEIN SCHLAF', 30)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, CorpusError, ImplausibleMelodyError, MidiReadError, NoMelodyError
from ..music import PLACEMENT_RANGE, TPQ
from .abc import ABC_SUFFIXES, abc_files, iter_abc_files
from .hf_datasets import is_dataset, load_hub_dataset, looks_like_hub_id, melodies_from_dataset, open_dataset
from .melody import Melody, SkipReport, _bar_start, _clean_time_signatures, _one_line, fit_pitch_range, skyline
from .music21_corpora import (
    MUSIC21_CORPORA,
    corpus_names,
    load_music21_corpus,
)

logger = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi")
MAX_MIDI_BYTES = 16 * 2**20
"""The largest MIDI file `read_midi` reads (16 MiB: a whole symphony is under 1 MiB, a melody a few KiB). Checked
from the file's size before a byte is read, so a huge or sparse file costs nothing; raise it with the
`HF_MELODY_MAX_MIDI_MB` environment variable."""


def max_midi_bytes() -> int:
    """`MAX_MIDI_BYTES`, or `HF_MELODY_MAX_MIDI_MB` (in MiB) when it is set.

    Examples:
        >>> max_midi_bytes()
        16777216
    """
    text = os.environ.get("HF_MELODY_MAX_MIDI_MB", "").strip()
    if not text:
        return MAX_MIDI_BYTES
    try:
        mb = float(text)
    except ValueError:
        mb = -1.0
    if not 0 < mb < 2**20:
        raise ConfigError(f"HF_MELODY_MAX_MIDI_MB={text!r} must be a positive number of MiB (the largest MIDI file "
                          f"read; default {MAX_MIDI_BYTES // 2**20})")
    return int(mb * 2**20)


def _check_size(size: int, shown: str) -> None:
    limit = max_midi_bytes()
    if size > limit:
        raise MidiReadError(f"{shown}: {size / 2**20:,.1f} MiB, over the {limit / 2**20:g} MiB limit for a MIDI "
                            "file; give the melody alone, or set HF_MELODY_MAX_MIDI_MB to raise the limit")

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
    register = min(float(pitches.mean()), float(PLACEMENT_RANGE[1]))
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
    set (found by tests/test_midi_fuzz.py) and trusts events to end inside their chunk, so both are checked here.
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


def read_midi(path: str | os.PathLike | bytes, melody_id: str | None = None, source: str = "midi") -> Melody:
    """Read one MIDI file (a path, or the file's bytes, e.g. from a dataset column) and extract its melody.

    Raises:
        MidiReadError: missing, unreadable, truncated or non-MIDI file.
        NoMelodyError: no notes, drum-only, or melody outside the pitch range.

    Examples:
        >>> melody = read_midi("tests/fixtures/kinder0_0.mid")
        >>> melody.id, melody.meter, melody.notes[:2]
        ('midi/kinder0_0.mid', '2/4', [[0, 480, 69], [480, 240, 67]])
    """
    if isinstance(path, bytes | bytearray) and (path.startswith(b"MThd") or not os.path.exists(path)):
        shown = melody_id or "MIDI bytes"
        _check_size(len(path), shown)
        return _melody_from_midi_bytes(bytes(path), melody_id or "midi/bytes", source, shown)
    path = Path(os.fsdecode(path))
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
        _check_size(path.stat().st_size, shown)  # before reading: a 10 GB sparse file is refused at once
        with open(path, "rb") as f:
            if f.read(4) != b"MThd":
                raise MidiReadError(f"{shown}: not a MIDI file (no 'MThd' header); give a Standard MIDI File (.mid)")
            data = b"MThd" + f.read()
    except OSError as e:
        raise MidiReadError(f"{shown}: cannot be read ({e.strerror}); check its permissions") from e
    return _melody_from_midi_bytes(data, melody_id or f"midi/{display_path(path.name)}", source, shown)


def _melody_from_midi_bytes(data: bytes, melody_id: str, source: str, shown: str) -> Melody:
    """The melody of a Standard MIDI File's bytes; `shown` names it in errors."""
    from symusic import Score

    if not data.startswith(b"MThd"):
        raise MidiReadError(f"{shown}: not a MIDI file (no 'MThd' header); give a Standard MIDI File (.mid)")
    _check_midi_structure(data, shown)
    try:
        score = Score.from_midi(data)
    except Exception as e:  # symusic raises RuntimeError/ValueError with C++ messages
        raise MidiReadError(f"{shown}: corrupt or truncated MIDI ({_one_line(e, 120)}); re-export it") from e
    try:
        return melody_from_score(score, melody_id, source, where=shown)
    except (MidiReadError, NoMelodyError):
        raise
    except Exception as e:  # absurd values that parsed (e.g. times beyond int32 after resampling)
        raise MidiReadError(f"{shown}: corrupt MIDI data ({type(e).__name__}: {_one_line(e, 120)}); "
                            "re-export it") from e


def midi_files(folder: str | os.PathLike) -> list[Path]:
    """All `.mid`/`.midi` files below `folder`, sorted, or a `CorpusError` naming what is wrong."""
    folder = Path(folder)
    if not folder.exists():
        raise CorpusError(f"{folder}: no such folder; give a folder of .mid files or a corpus name ({corpus_names()})")
    if not folder.is_dir():
        raise CorpusError(f"{folder}: not a folder; give a folder of .mid files or a corpus name ({corpus_names()})")
    # broken links are kept so that the folder job reports them instead of silently dropping them
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES
                   and (p.is_file() or (p.is_symlink() and not p.exists())))
    if not files:
        raise CorpusError(f"{folder}: no .mid/.midi files found (searched recursively); add MIDI files to it")
    return files


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


def load_melodies(spec: Any, progress: bool = True, num_proc: int | None = None, exclude: Iterable[str] = (),
                  columns: Mapping[str, str] | None = None) -> tuple[list[Melody], SkipReport]:
    """Melodies of a dataset spec, or of a list of specs: a corpus name or `corpus/file`, a folder of MIDI and/or
    ABC files, one `.mid`/`.abc` file, a `datasets.Dataset`/`DatasetDict`, a parquet/arrow/jsonl/csv file, a
    `save_to_disk` or dataset-repository folder, or a Hub dataset id (`org/name`, through `datasets.load_dataset`).

    `columns` renames the columns of dataset inputs (`{"midi": "file_bytes", "id": "tune"}`; see
    `hf_melody.data.hf_datasets`). `exclude` drops melodies whose id is, or starts with, any of the given prefixes
    (e.g. `essen/kinder0` to hold the benchmark out). Returns the melodies and a `SkipReport` of what was skipped
    and why (bad files and bad rows are skipped, never fatal).

    Examples:
        >>> melodies, report = load_melodies("essen/kinder0", progress=False)
        >>> len(melodies), melodies[0].style, report.summary()
        (213, 'german-folk', '213 of 213 kept, 0 skipped')
    """
    specs = [spec] if isinstance(spec, str | os.PathLike) or is_dataset(spec) else list(spec)
    if not specs:
        raise CorpusError(f"empty dataset list; give a corpus name ({corpus_names()})")
    report = SkipReport()
    melodies: list[Melody] = []
    for s in specs:
        melodies += _spec_melodies(s, report, progress, num_proc, columns)
    exact = {e.rstrip("/") for e in exclude}
    excl = tuple(f"{e}/" for e in exact)
    if excl:  # a prefix drops a whole file or folder (`essen/kinder0`), an id drops one tune (`essen/erk10/21`)
        melodies = [m for m in melodies if m.id not in exact and not m.id.startswith(excl)]
    if not melodies:
        shown = [s if isinstance(s, str | os.PathLike) else type(s).__name__ for s in specs]
        raise CorpusError(f"{shown}: no usable melodies ({report.summary()})")
    return melodies, report


def _spec_melodies(spec: Any, report: SkipReport, progress: bool, num_proc: int | None,
                   columns: Mapping[str, str] | None) -> list[Melody]:
    """The melodies of one spec of `load_melodies`, in the order its kinds are tried."""
    if is_dataset(spec):
        return melodies_from_dataset(spec, "dataset", report, columns, progress)
    s, path = str(spec), Path(spec)
    if s.split("/")[0] in MUSIC21_CORPORA and not path.exists():
        return load_music21_corpus(s, num_proc=num_proc, progress=progress, report=report)
    table = open_dataset(path)
    if table is not None:
        return melodies_from_dataset(table, display_path(path.stem if path.is_file() else path.name), report, columns,
                                     progress)
    if path.is_file() and path.suffix.lower() in ABC_SUFFIXES:
        return list(iter_abc_files([path], path, report, progress))
    if path.is_file() and path.suffix.lower() in MIDI_SUFFIXES:
        report.total += 1
        try:
            melody = read_midi(path, melody_id=f"midi/{display_path(path.name)}", source=display_path(path.parent))
        except (MidiReadError, NoMelodyError) as e:
            report.add(display_path(path.name), e)
            return []
        report.kept += 1
        return [melody]
    if path.is_dir() and (abc := abc_files(path)):
        has_midi = any(p.suffix.lower() in MIDI_SUFFIXES for p in path.rglob("*"))
        return list(iter_abc_files(abc, path, report, progress)) + (
            list(iter_midi_folder(path, report, progress=progress)) if has_midi else [])
    if looks_like_hub_id(s):
        return melodies_from_dataset(load_hub_dataset(s), s, report, columns, progress)
    if path.exists() or "/" in s or os.sep in s:
        return list(iter_midi_folder(s, report, progress=progress))
    raise CorpusError(f"unknown corpus {s!r}; choose one of: {corpus_names()}")
