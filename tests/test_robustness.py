"""Bad inputs, generated here in `tmp_path`: one file gives a typed one-line error, a folder job skips and reports.

Also: odd but valid MIDI (16 tracks, overlaps, absurd meters and tempos, format 2, 100,000 notes), unparsable ABC,
property tests of the tokenizer round trip (hypothesis), and the refusal of pickled weights and remote code.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_melody import CorpusError, MidiReadError, ModelLoadError, NoMelodyError, read_midi
from hf_melody.cli import main as cli_main
from hf_melody.data.corpora import iter_midi_folder
from hf_melody.data.melody import Melody, SkipReport
from hf_melody.data.music21_corpora import _convert_music21_file
from hf_melody.music import PITCH_RANGE, PLACEMENT_RANGE, TIME_SIGNATURE_RANGE, TPQ

S = TPQ // 4  # a sixteenth note, in ticks
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
TUNE = [72, 74, 76, 77, 79, 77, 76, 74, 72, 76, 79, 84, 83, 81, 79, 77]


# --------------------------------------------------------------------------------------------------------------
# building MIDI files
# --------------------------------------------------------------------------------------------------------------
def make_score(tracks, time_signatures=((0, 4, 4),), tempo: float = 120.0):
    """A `symusic.Score` at 480 ticks per quarter; `tracks` is `[(name, program, is_drum, [(onset, dur, pitch)])]`."""
    from symusic import Note, Score, Tempo, TimeSignature, Track

    score = Score(TPQ)
    for tick, num, den in time_signatures:
        score.time_signatures.append(TimeSignature(tick, num, den))
    score.tempos.append(Tempo(0, tempo))
    for name, program, is_drum, notes in tracks:
        track = Track(name=name, program=program, is_drum=is_drum)
        for onset, dur, pitch in notes:
            track.notes.append(Note(onset, dur, pitch, 90))
        score.tracks.append(track)
    return score


def tune_notes(pitches=TUNE, dur: int = TPQ, offset: int = 0) -> list[tuple[int, int, int]]:
    return [(offset + i * dur, dur, p) for i, p in enumerate(pitches)]


def orchestra():
    """16 tracks: the flute has the tune; around it sit traps for a naive melody picker (see each comment)."""
    bar, bars = 4 * TPQ, 8
    tune = TUNE * 2
    tracks = [
        ("Flute", 73, False, tune_notes(tune)),
        ("Piccolo", 72, False, [(0, bar, 103)]),  # one very high held note
        ("Glockenspiel", 9, False, [(b * bar, 60, 96) for b in range(bars)]),  # high, sparse, one pitch
        ("Violin II", 40, False, [(b * bar, bar, p) for b in range(bars) for p in (67, 70, 74)]),  # chords
        ("Viola", 41, False, [(b * bar, bar, p) for b in range(bars) for p in (64, 67, 71)]),
        ("Cello", 42, False, [(b * bar, bar, 48 + b % 2 * 5) for b in range(bars)]),
        ("Contrabass", 43, False, [(b * bar, bar, 36 + b % 2 * 5) for b in range(bars)]),
        ("Horn", 60, False, [(b * bar, S * 2, 60) for b in range(0, bars, 2)]),
        ("Trumpet", 56, False, [(b * bar, S * 2, 67) for b in range(0, bars, 2)]),
        ("Trombone", 57, False, [(b * bar, S * 2, 55) for b in range(0, bars, 2)]),
        ("Harp", 46, False, [(i * S, S, [40, 52, 64, 76, 88][i % 5]) for i in range(bars * 16)]),  # wide arpeggios
        ("Timpani", 47, False, [(b * bar, TPQ, 41) for b in range(bars)]),
        ("Empty", 0, False, []),
        ("Oboe", 68, False, [(o + S * 2, S * 2, p - 9) for o, _, p in tune_notes(tune)]),  # lower countermelody
        ("Drums", 0, True, [(i * S * 2, 60, 42) for i in range(bars * 8)]),
        ("Clarinet", 71, False, [(b * bar, bar, 62) for b in range(bars)]),
    ]
    return make_score(tracks, tempo=100.0)


def write_score(score, path: Path) -> Path:
    score.dump_midi(str(path))
    return path


def smf(tracks: list[bytes], fmt: int = 1, division: int = 480) -> bytes:
    """A Standard MIDI File from raw track event bytes (no end-of-track added)."""
    head = b"MThd" + (6).to_bytes(4, "big") + fmt.to_bytes(2, "big") + len(tracks).to_bytes(2, "big")
    head += division.to_bytes(2, "big")
    return head + b"".join(b"MTrk" + len(t).to_bytes(4, "big") + t for t in tracks)


NOTES_OK = b"\x00\x90\x3c\x50\x83\x60\x80\x3c\x00\x00\x90\x3e\x50\x83\x60\x80\x3e\x00\x00\xff\x2f\x00"


def format2_file(path: Path) -> Path:
    """A format-2 file (independent patterns) written with mido."""
    import mido

    mf = mido.MidiFile(type=2, ticks_per_beat=TPQ)
    for k in range(2):
        track = mido.MidiTrack()
        mf.tracks.append(track)
        for i in range(8):
            track.append(mido.Message("note_on", note=60 + i + 12 * k, velocity=90, time=0))
            track.append(mido.Message("note_off", note=60 + i + 12 * k, velocity=0, time=TPQ))
    mf.save(str(path))
    return path


# name -> (build(path, fixtures_dir), error, words the message must contain)
BAD_FILES = {
    "random_bytes": (lambda p, f: p.write_bytes(random.Random(0).randbytes(512)), MidiReadError, "not a MIDI file"),
    "empty_file": (lambda p, f: p.write_bytes(b""), MidiReadError, "not a MIDI file"),
    "random_after_header": (lambda p, f: p.write_bytes(b"MThd" + random.Random(1).randbytes(300)), MidiReadError,
                            "corrupt"),
    "format_3": (lambda p, f: p.write_bytes(smf([NOTES_OK], fmt=3)), MidiReadError, "format 3"),
    "smpte_division": (lambda p, f: p.write_bytes(smf([NOTES_OK], division=0xE728)), MidiReadError, "SMPTE"),
    "zero_division": (lambda p, f: p.write_bytes(smf([NOTES_OK], division=0)), MidiReadError, "time division"),
    # symusic 0.5.9 does not reject these: it reads the first as a pitch of -59 (see also SYMUSIC_CRASHERS)
    "chunk_longer_than_file": (lambda p, f: p.write_bytes(smf([NOTES_OK])[:18] + b"\xbb\x00\x00\x1a" + NOTES_OK),
                               MidiReadError, "truncated"),
    "pitch_byte_above_127": (lambda p, f: p.write_bytes(smf([b"\x00\x90\xc5\x50\x83\x60\x80\xc5\x00" + NOTES_OK])),
                             MidiReadError, "bad data byte"),
    "running_status_without_status": (lambda p, f: p.write_bytes(smf([b"\x00\x3c\x50" + NOTES_OK])), MidiReadError,
                                      "without a status byte"),
    "zero_notes": (lambda p, f: write_score(make_score([("Empty", 0, False, [])]), p), NoMelodyError, "no notes"),
    "drum_only": (lambda p, f: write_score(make_score([("Kit", 0, True, tune_notes([36, 38] * 8))]), p),
                  NoMelodyError, "only drum tracks"),
    "zero_length_notes": (lambda p, f: write_score(make_score([("Z", 0, False, tune_notes(dur=0))]), p),
                          NoMelodyError, "non-zero length"),
    "one_note": (lambda p, f: write_score(make_score([("One", 0, False, [(0, TPQ, 60)])]), p), NoMelodyError,
                 "at least 2"),
    "range_too_wide": (lambda p, f: write_score(make_score([("Wide", 0, False, tune_notes([30, 100, 30, 100]))]), p),
                       NoMelodyError, "wider than"),
    "folder_named_mid": (lambda p, f: p.mkdir(), MidiReadError, "is a folder"),
    "broken_symlink": (lambda p, f: p.symlink_to(p.with_name("gone.mid")), MidiReadError, "broken symbolic link"),
}


def assert_teaching_error(error: Exception, path: Path, words: str) -> None:
    """One line, names the file, says what is wrong (`words`) and, after a `;`, what to do."""
    message = str(error)
    assert "\n" not in message, message
    assert str(path) in message, message
    assert words.lower() in message.lower(), message
    assert ";" in message.split(str(path), 1)[1], f"no fix suggested: {message}"


# --------------------------------------------------------------------------------------------------------------
# one file: typed errors
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_raises_typed_one_line_error(tmp_path, fixtures_dir, name):
    build, error, words = BAD_FILES[name]
    path = tmp_path / f"{name}.mid"
    build(path, fixtures_dir)
    with pytest.raises(error) as info:
        read_midi(path)
    assert_teaching_error(info.value, path, words)


@pytest.mark.parametrize("fixture", ["kinder0_5.mid", "bach_bwv66.6.mid"])
@pytest.mark.parametrize("cut", [0, 4, 13, 14, 21, 30, 0.25, 0.5, 0.9, -1])
def test_truncated_file_is_a_midi_read_error(tmp_path, fixtures_dir, fixture, cut):
    data = (fixtures_dir / fixture).read_bytes()
    length = int(len(data) * cut) if isinstance(cut, float) else cut % len(data)
    path = tmp_path / f"cut{length}_{fixture}"
    path.write_bytes(data[:length])
    with pytest.raises(MidiReadError) as info:
        read_midi(path)
    assert_teaching_error(info.value, path, "not a MIDI file" if length == 0 else "truncated")


# Fixtures with a few bytes inserted inside a track (chunk lengths left as they were): symusic 0.5.9 dies with a
# segmentation fault on both, killing a whole folder job. Found by tests/test_fuzz.py (seed 4, inputs 365 and 1187).
SYMUSIC_CRASHERS = [
    ("kinder0_5.mid", 360, "eba34984cdfeb24146533301529f99ba1a3c347efb665f7ee8864d0cfb"),
    ("kinder0_0.mid", 173, "7c6c088ca9cebb1d5ee40f9fb7838835"),
]


@pytest.mark.parametrize("fixture, at, inserted", SYMUSIC_CRASHERS, ids=["kinder0_5", "kinder0_0"])
def test_inputs_that_crash_symusic_are_rejected_before_parsing(tmp_path, fixtures_dir, fixture, at, inserted):
    data = (fixtures_dir / fixture).read_bytes()
    path = tmp_path / f"crasher_{fixture}"
    path.write_bytes(data[:at] + bytes.fromhex(inserted) + data[at:])
    with pytest.raises(MidiReadError) as info:
        read_midi(path)
    assert_teaching_error(info.value, path, "bad data byte")


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "tune.mid"
    with pytest.raises(MidiReadError) as info:
        read_midi(path)
    assert_teaching_error(info.value, path, "no such file")


def _read_as_nobody(path: Path) -> dict:
    """`read_midi(path)` in a forked child that has dropped root privileges to `nobody` (root reads a chmod 000 file).

    Forked rather than started fresh: the interpreter may live where `nobody` cannot run it (e.g. under /root).
    """
    import pwd

    read_midi(FIXTURES_FOR_IMPORTS)  # symusic and the MIDI code are imported before the fork
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, read, report, exit without running pytest's clean-up
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            try:
                read_midi(path)
                result = {"type": None, "message": "read without error"}
            except Exception as e:
                result = {"type": type(e).__name__, "message": str(e)}
            os.write(write_end, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return json.loads(text)


FIXTURES_FOR_IMPORTS = Path(__file__).parent / "fixtures" / "kinder0_0.mid"


def test_unreadable_file(fixtures_dir):
    """A chmod 000 file. As root (CI containers), the read runs in a child that drops to the `nobody` user."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="hf_melody_locked_"))
    folder.chmod(0o755)  # traversable by nobody; the file itself is not readable
    path = folder / "locked.mid"
    path.write_bytes((fixtures_dir / "kinder0_0.mid").read_bytes())
    path.chmod(0)
    try:
        if IS_ROOT:
            result = _read_as_nobody(path)
            assert result["type"] == "MidiReadError", result
            error = MidiReadError(result["message"])
        else:
            with pytest.raises(MidiReadError) as info:
                read_midi(path)
            error = info.value
        assert_teaching_error(error, path, "cannot be read")
        assert "Permission denied" in str(error)
    finally:
        path.chmod(0o644)
        path.unlink()
        folder.rmdir()


# --------------------------------------------------------------------------------------------------------------
# one file: odd but valid MIDI gives a sensible melody
# --------------------------------------------------------------------------------------------------------------
def assert_valid_melody(melody: Melody) -> None:
    notes = melody.notes
    assert len(notes) >= 2
    assert all(d > 0 and PITCH_RANGE[0] <= p <= PITCH_RANGE[1] for _, d, p in notes)
    assert all(a[0] + a[1] <= b[0] for a, b in zip(notes, notes[1:], strict=False)), "one line, no overlaps"
    assert melody.time_signatures[0][0] == 0
    assert all(n in TIME_SIGNATURE_RANGE[d] for _, n, d in melody.time_signatures)


def test_sixteen_track_orchestra_takes_the_melody_from_the_flute(tmp_path):
    path = write_score(orchestra(), tmp_path / "orchestra.mid")
    melody = read_midi(path)
    assert_valid_melody(melody)
    assert melody.title == "Flute"
    assert [n[2] for n in melody.notes] == TUNE * 2


def test_overlapping_same_pitch_notes_become_one_line(tmp_path):
    notes = [(i * S * 2, TPQ * 2, 60) for i in range(8)]  # each note rings over the next three
    melody = read_midi(write_score(make_score([("Overlap", 0, False, notes)]), tmp_path / "overlap.mid"))
    assert_valid_melody(melody)
    assert melody.notes == [[i * S * 2, S * 2, 60] for i in range(7)] + [[7 * S * 2, TPQ * 2, 60]]


def test_zero_length_notes_among_real_ones_are_dropped(tmp_path):
    notes = [(o, d if i % 2 else 0, p) for i, (o, d, p) in enumerate(tune_notes())]
    melody = read_midi(write_score(make_score([("Mixed", 0, False, notes)]), tmp_path / "mixed.mid"))
    assert [n[2] for n in melody.notes] == TUNE[1::2]


@pytest.mark.parametrize("time_signatures, tempo, expected", [
    (((0, 1, 64),), 1e6, [[0, 4, 4]]),
    (((0, 99, 4),), 1.0, [[0, 4, 4]]),
    (((0, 1, 64), (8 * TPQ, 3, 4)), 120.0, [[0, 4, 4], [8 * TPQ, 3, 4]]),
    (((0, 3, 4), (6 * TPQ, 13, 8), (9 * TPQ, 2, 4)), 5e5, [[0, 3, 4], [9 * TPQ, 2, 4]]),
], ids=["1-64_fast", "99-4_slow", "1-64_then_3-4", "13-8_dropped"])
def test_absurd_meters_and_tempos_fall_back_to_supported_meters(tmp_path, time_signatures, tempo, expected):
    score = make_score([("T", 0, False, tune_notes())], time_signatures, tempo=tempo)
    melody = read_midi(write_score(score, tmp_path / "absurd.mid"))
    assert_valid_melody(melody)
    assert melody.time_signatures == expected
    assert melody.notes == [list(n) for n in tune_notes()]


def test_format_2_file_gives_the_melody_of_one_pattern(tmp_path):
    melody = read_midi(format2_file(tmp_path / "format2.mid"))
    assert_valid_melody(melody)
    assert [n[2] for n in melody.notes] in ([60 + i for i in range(8)], [72 + i for i in range(8)])


def test_hundred_thousand_notes_are_read_whole(tmp_path):
    """A huge file is read completely (its speed is measured in benchmarks/, not asserted here)."""
    pitches = [48 + (i * 7) % 37 for i in range(100_000)]
    path = write_score(make_score([("Long", 0, False, tune_notes(pitches, dur=S))]), tmp_path / "long.mid")
    melody = read_midi(path)
    assert len(melody.notes) == 100_000 and melody.notes[-1] == [99_999 * S, S, pitches[-1]]


def test_real_world_midi_files_shipped_with_music21():
    """23 MIDI files from music21's own tests (notation programs, OMR, old sequencers): melodies or typed errors."""
    import music21  # a test dependency (the `dev` extra), never skipped
    files = sorted(Path(music21.__file__).parent.rglob("*.mid"))
    assert len(files) >= 20
    melodies = 0
    for path in files:
        try:
            assert_valid_melody(read_midi(path))
            melodies += 1
        except NoMelodyError as e:  # a few are piano pieces wider than the tokenizer range
            assert_teaching_error(e, path, "range")
    assert melodies >= len(files) - 3


# --------------------------------------------------------------------------------------------------------------
# folder jobs: skip, report, finish, leave nothing partial behind
# --------------------------------------------------------------------------------------------------------------
GOOD_FILES = {
    "orchestra.mid": lambda p, f: write_score(orchestra(), p),
    "format2.mid": lambda p, f: format2_file(p),
    "absurd_meter.midi": lambda p, f: write_score(make_score([("T", 0, False, tune_notes())], ((0, 1, 64),), 1e6), p),
    "real/kinder0_0.mid": lambda p, f: p.write_bytes((f / "kinder0_0.mid").read_bytes()),
    "real/bach.MID": lambda p, f: p.write_bytes((f / "bach_bwv66.6_with_drums.mid").read_bytes()),
}


def mixed_folder(root: Path, fixtures_dir: Path) -> tuple[Path, dict[str, str]]:
    """A folder of good and bad files; returns it and {relative path: expected error name} of the bad ones."""
    folder = root / "mixed"
    (folder / "real").mkdir(parents=True)
    bad = {}
    for name, (build, error, _) in BAD_FILES.items():
        path = folder / "bad" / f"{name}.mid"
        path.parent.mkdir(exist_ok=True)
        build(path, fixtures_dir)
        if name != "folder_named_mid":  # a folder is searched, not read
            bad[path.relative_to(folder).as_posix()] = error.__name__
    data = (fixtures_dir / "kinder0_5.mid").read_bytes()
    for cut in (13, 30, len(data) // 2):
        (folder / "bad" / f"cut{cut}.mid").write_bytes(data[:cut])
        bad[f"bad/cut{cut}.mid"] = "MidiReadError"
    (folder / "notes.txt").write_text("not a MIDI suffix: ignored")
    for rel, build in GOOD_FILES.items():
        build(folder / rel, fixtures_dir)
    return folder, bad


def leftovers(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("*") if p.name.endswith((".tmp", ".partial"))]


def test_folder_job_skips_and_reports_every_bad_file(tmp_path, fixtures_dir):
    folder, bad = mixed_folder(tmp_path, fixtures_dir)
    report = SkipReport()
    melodies = list(iter_midi_folder(folder, report, progress=False))
    assert report.total == len(bad) + len(GOOD_FILES) and report.kept == len(GOOD_FILES) == len(melodies)
    assert {s["item"]: s["error"] for s in report.skipped} == bad
    for s in report.skipped:
        assert "\n" not in s["reason"] and str(folder / s["item"]) in s["reason"], s
    assert report.reasons() == {"MidiReadError": sum(e == "MidiReadError" for e in bad.values()),
                                "NoMelodyError": sum(e == "NoMelodyError" for e in bad.values())}
    assert f"{len(GOOD_FILES)} of {report.total} kept" in report.summary()
    for m in melodies:
        assert_valid_melody(m)
    saved = json.loads(report.save(tmp_path / "out" / "skip_report.json").read_text())
    assert saved["total"] == report.total and saved["kept"] == report.kept and len(saved["skipped"]) == len(bad)
    assert not leftovers(tmp_path)


def test_cli_prepare_on_a_mixed_folder_finishes_with_a_json_report(tmp_path, fixtures_dir, capsys):
    folder, bad = mixed_folder(tmp_path, fixtures_dir)
    out = tmp_path / "prepared"
    code = cli_main(["prepare", "--dataset", str(folder), "--out", str(out), "--augment-semitones", "0",
                     "--max-length", "64"])
    stdout = capsys.readouterr().out
    assert code == 0
    report = json.loads((out / "skip_report.json").read_text())
    assert report["total"] == len(bad) + len(GOOD_FILES) and report["kept"] == len(GOOD_FILES)
    assert sum(report["reasons"].values()) == len(bad)
    assert f"{len(GOOD_FILES)} of {report['total']} kept" in stdout and "skipped bad/random_bytes.mid" in stdout
    assert (out / "dataset").is_dir() and (out / "miditok.json").is_file()
    assert not leftovers(out, Path(os.environ["HF_MELODY_CACHE"]))


@pytest.mark.parametrize("case, words", [
    ("empty_folder", "no .mid/.midi files"),
    ("missing_folder", "no such folder"),
    ("unknown_corpus", "unknown corpus 'folksongs'"),
    ("only_bad_files", "no usable melodies"),
])
def test_cli_prepare_fails_in_one_line_and_writes_nothing(tmp_path, fixtures_dir, capsys, case, words):
    target = {"empty_folder": tmp_path / "empty", "missing_folder": tmp_path / "missing",
              "unknown_corpus": "folksongs", "only_bad_files": tmp_path / "bad"}[case]
    if case == "empty_folder":
        target.mkdir()
        (target / "readme.txt").write_text("no MIDI here")
    if case == "only_bad_files":
        target.mkdir()
        for name in ("random_bytes", "drum_only", "broken_symlink"):
            BAD_FILES[name][0](target / f"{name}.mid", fixtures_dir)
    out = tmp_path / "out"
    code = cli_main(["prepare", "--dataset", str(target), "--out", str(out)])
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]  # (a progress bar may come first)
    assert code == 2 and len(errors) == 1, stderr
    err = errors[0]
    assert err.startswith("hf-melody: error:") and words in err, err
    if case == "only_bad_files":
        assert "0 of 3 kept" in err and "MidiReadError: 2" in err and "NoMelodyError: 1" in err
    assert not out.exists() or not any(out.iterdir())


def test_load_melodies_errors_are_typed(tmp_path):
    from hf_melody import load_melodies

    with pytest.raises(CorpusError, match="no such folder"):
        load_melodies(tmp_path / "missing", progress=False)
    with pytest.raises(CorpusError, match="unknown corpus 'nope'"):
        load_melodies("nope", progress=False)
    with pytest.raises(CorpusError, match="empty dataset list"):
        load_melodies([], progress=False)
    (tmp_path / "file.mid").write_bytes(b"MThd")
    with pytest.raises(CorpusError, match="not a folder"):
        load_melodies(tmp_path / "file.mid", progress=False)


# --------------------------------------------------------------------------------------------------------------
# ABC through music21
# --------------------------------------------------------------------------------------------------------------
GOOD_TUNE = "X:1\nT:Good\nM:4/4\nL:1/8\nK:C\nCDEF GABc|cBAG FEDC|\n"


@pytest.mark.parametrize("name, text, kept, error", [
    ("garbage", "this is not abc at all ][[[ \x01\n", 0, "ParseError"),
    ("binary", bytes(range(256)).decode("latin-1"), 0, "ParseError"),
    ("empty", "", 0, "ParseError"),
    ("division_by_zero", "X:1\nT:Bad\nM:4/4\nL:1/0\nK:C\nCDEF|\n", 0, "ParseError"),
    ("tune_without_notes", GOOD_TUNE + "\nX:2\nT:Empty\nM:4/4\nK:C\n", 1, "NoMelodyError"),
], ids=["garbage", "binary", "empty", "division_by_zero", "tune_without_notes"])
def test_unparsable_abc_is_skipped_with_a_reason(tmp_path, name, text, kept, error):
    path = tmp_path / f"{name}.abc"
    path.write_bytes(text.encode("latin-1"))
    melodies, skips = _convert_music21_file((str(path), "mine", "other"))
    assert len(melodies) == kept and len(skips) == 1
    item, err, reason = skips[0]
    assert item.startswith(f"mine/{name}") and err == error
    assert str(path) in reason and "\n" not in reason and ";" in reason, reason


# --------------------------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------------------------
def test_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path):
    from hf_melody.utils import atomic_write_bytes, atomic_write_text

    target = tmp_path / "report.json"
    atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "text is not bytes")  # fails inside the write
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


# --------------------------------------------------------------------------------------------------------------
# property tests: the tokenizer round trip and its valid domain
# --------------------------------------------------------------------------------------------------------------
# The valid domain, found by these tests (miditok REMI with beat_res {(0, 4): 4, (4, 16): 1}): a "beat" is one unit
# of the time signature's denominator, positions and short durations have 1/4-beat resolution, and durations are
# exact up to 4 beats at 1/4-beat steps, then in whole beats up to 16 beats. In sixteenths:
#   x/4:  positions on the 16th grid; durations 1..16, then 20, 24, ..., 64
#   x/8:  16th grid (32nds also exact); durations 1..8, then 10, 12, ..., 32 (16 eighths at most)
#   x/16: 16th grid; durations 1..16
#   x/2:  8th grid only (a 16th in 3/2 is rounded); durations 2, 4, ..., 32, then 40, 48, ..., 128
#   x/1:  quarter grid only; durations 4, 8, ..., 64, then 80, 96, ..., 256
# Rests of any length on the grid are exact; pitches 48..84 (the tokenizer range). Longer notes are clipped.
METERS = [(num, den) for den, nums in TIME_SIGNATURE_RANGE.items() for num in nums]


def grid_of(den: int) -> int:
    """Onset grid (in sixteenths) on which a melody in x/den round-trips exactly."""
    return {1: 4, 2: 2}.get(den, 1)


def durations_of(den: int) -> list[int]:
    """Durations (in sixteenths) that round-trip exactly in x/den."""
    beat = 16 // den
    short = {k * beat // 4 for k in range(1, 17) if k * beat % 4 == 0}
    return sorted(short | {k * beat for k in range(5, 17)})


@st.composite
def melodies(draw, max_notes: int = 40, max_gap: int = 24):
    num, den = draw(st.sampled_from(METERS))
    grid, durations = grid_of(den), durations_of(den)
    t, notes = 0, []
    for _ in range(draw(st.integers(2, max_notes))):
        t += grid * draw(st.integers(0, max_gap) | st.just(0))
        dur = draw(st.sampled_from(durations))
        notes.append([t * S, dur * S, draw(st.integers(*PLACEMENT_RANGE))])
        t += dur
    return Melody("prop/0", "hypothesis", notes, [[0, num, den]])


@settings(max_examples=50, deadline=None)
@given(melody=melodies())
def test_tokenizer_round_trip_is_exact_on_its_domain(tokenizer, melody):
    ids = tokenizer.encode(melody, bos=True, eos=True, style="other")
    score = tokenizer.decode(ids)
    decoded = [[n.time, n.duration, n.pitch] for track in score.tracks for n in track.notes]
    assert decoded == melody.notes
    assert [[ts.time, ts.numerator, ts.denominator] for ts in score.time_signatures][:1] == melody.time_signatures


def test_domain_edges_are_where_the_comment_says(tokenizer):
    """Just outside the domain the round trip is not exact (so the property above is not vacuous)."""
    def round_trips(notes, meter=(4, 4)):
        score = tokenizer.decode(tokenizer.encode(Melody("x", "x", notes, [[0, *meter]])))
        return [[n.time, n.duration, n.pitch] for t in score.tracks for n in t.notes] == notes

    assert round_trips([[0, 16 * S, 60], [16 * S, S, 62]])
    assert not round_trips([[0, 17 * S, 60], [17 * S, S, 62]])  # 4 1/4 beats: neither 1/4-step nor whole beats
    assert not round_trips([[0, 68 * S, 60], [68 * S, S, 62]])  # 17 beats: longer than 16
    assert not round_trips([[0, S, 60], [S, S, 62]], meter=(3, 2))  # a 16th in 3/2
    assert round_trips([[0, 2 * S, 60], [2 * S, 2 * S, 62]], meter=(3, 2))


@settings(max_examples=25, deadline=None)
@given(melody=melodies(max_notes=20))
def test_midi_file_round_trip_through_read_midi(melody, tmp_path_factory):
    """Melody -> .mid -> read_midi gives the same notes and meter (the first note sits in the first bar)."""
    path = tmp_path_factory.mktemp("prop") / "m.mid"
    bar = melody.time_signatures[0][1] * 4 * TPQ // melody.time_signatures[0][2]
    notes = [[o - melody.notes[0][0] + melody.notes[0][0] % bar, d, p] for o, d, p in melody.notes]
    melody = Melody(melody.id, melody.source, notes, melody.time_signatures)
    melody.to_score().dump_midi(str(path))
    again = read_midi(path)
    assert again.notes == melody.notes and again.time_signatures == melody.time_signatures


# --------------------------------------------------------------------------------------------------------------
# loading refuses pickled weights and remote code unless asked
# --------------------------------------------------------------------------------------------------------------
def test_pickled_weights_are_refused_unless_allow_pickle(tmp_path, tokenizer):
    import torch

    from hf_melody import build_model, load_model

    model = build_model("original", tokenizer, n_positions=32, seed=0)
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "pytorch_model.bin"]
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path)
    assert "allow_pickle=True" in str(info.value) and str(tmp_path) in str(info.value)
    assert "\n" not in str(info.value)
    loaded = load_model(tmp_path, allow_pickle=True)
    state = loaded.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_weights_are_a_model_load_error(tmp_path, tokenizer, damage):
    from hf_melody import build_model, load_model

    build_model("original", tokenizer, n_positions=32, seed=0).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"garbage" * 10 if damage == "garbage" else weights.read_bytes()[:500])
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_remote_code_in_a_bundle_is_not_run_by_default(tmp_path, tokenizer):
    from hf_melody import build_model, load_model

    marker = tmp_path / "code_was_run"
    model = build_model("original", tokenizer, n_positions=32, seed=0)
    model.save_pretrained(tmp_path / "bundle")
    config_path = tmp_path / "bundle" / "config.json"
    config = json.loads(config_path.read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    config_path.write_text(json.dumps(config))
    (tmp_path / "bundle" / "evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import GPT2Config, GPT2LMHeadModel\n"
        "class EvilConfig(GPT2Config):\n    pass\n"
        "class EvilModel(GPT2LMHeadModel):\n    config_class = EvilConfig\n")
    loaded = load_model(tmp_path / "bundle")
    assert type(loaded).__name__ == "GPT2LMHeadModel"
    assert not marker.exists(), "the bundle's Python code was executed without trust_remote_code=True"
