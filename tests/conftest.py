"""Shared test set-up: offline, isolated caches, real fixtures, and a tiny seeded model trained in-session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="hf_melody_tests_"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["HF_HOME"] = str(_TMP / "hf_home")
os.environ["HF_DATASETS_CACHE"] = str(_TMP / "hf_datasets")
os.environ["MPLCONFIGDIR"] = str(_TMP / "mpl")
os.environ["MPLBACKEND"] = "Agg"
os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
os.environ["HF_MELODY_CACHE"] = str(_TMP / "hf_melody_cache")
os.environ.setdefault("MUSIC21_TMP", str(_TMP))
# One thread: tiny models gain little from two, and a busy 2-core machine slows 10x under oversubscription.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import random  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hf_melody import MelodyTokenizer, MidiReadError, NoMelodyError  # noqa: E402
from hf_melody.cli import main as cli_main  # noqa: E402
from hf_melody.data.melody import Melody  # noqa: E402
from hf_melody.grammar.remi import REMIGrammar  # noqa: E402
from hf_melody.grammar.state import GrammarRules  # noqa: E402
from hf_melody.music import PLACEMENT_RANGE, TIME_SIGNATURE_RANGE, TPQ  # noqa: E402

torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"
TINY = str(Path(__file__).parents[1] / "recipes" / "tiny-debug.yaml")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def tokenizer():
    from hf_melody import MelodyTokenizer

    return MelodyTokenizer()


@pytest.fixture(scope="session")
def kinder_melodies():
    """The 213 Kinderlieder of essen/kinder0 (real data from the music21 wheel)."""
    from hf_melody import load_melodies

    melodies, report = load_melodies("essen/kinder0", progress=False)
    assert report.kept == 213
    return melodies


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A 2-layer `original` model trained for 80 steps on essen/kinder0 through the real recipe code path."""
    from hf_melody.training.trainer import parse_args, train

    out = tmp_path_factory.mktemp("tiny_bundle")
    args = ["--config", str(Path(__file__).parents[1] / "recipes" / "tiny-debug.yaml"),
            "--output_dir", str(out), "--max_steps", "80", "--save_strategy", "no", "--eval_steps", "40",
            "--disable_tqdm", "true"]
    train(*parse_args(args))
    return out


# --------------------------------------------------------------------------------------------------------------
# inputs that several test files build: MIDI scores and bytes, melody folders, bundles, CLI runs
# --------------------------------------------------------------------------------------------------------------
def assert_valid(tok: MelodyTokenizer, sequences: list[list[int]]) -> None:
    """0 miditok token errors, legal under the strict grammar, and the grammar's notes are the decoder's notes."""
    grammar = REMIGrammar.for_tokenizer(tok)
    for seq in sequences:
        body = [i for i in seq if i != tok.pad_token_id]
        assert tok.tokens_errors(body) == 0.0, tok.to_base_tokens(body)
        state = grammar.initial_state()
        grammar.feed(state, body[:1])
        tracked = grammar.feed(state, body[1:], GrammarRules())  # raises on an illegal token
        decoded = tok.decode(body)
        notes = sorted((n.time, n.duration, n.pitch) for t in decoded.tracks for n in t.notes)
        scale = 480 // grammar.ticks_per_quarter
        assert notes == [(n.onset * scale, n.duration * scale, n.pitch) for n in tracked]


BAD_NAME = b"bad\xff\xfename.mid"  # not UTF-8: what a file copied from an old Windows or Mac system may be called


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli_main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_cli_error(code: int, err: str, *culprits: str) -> None:
    assert code == 2, err
    line = err.strip()
    assert line.startswith("hf-melody: error:") and "\n" not in line, err
    for culprit in culprits:
        assert culprit in line, (culprit, line)
    assert ";" in line, f"no fix suggested: {line}"


def gpt2_bundle(tmp_path: Path) -> Path:
    from hf_melody import MelodyTokenizer, build_model, save_bundle

    tok = MelodyTokenizer()
    return save_bundle(build_model("original", tok, n_positions=32, seed=0), tok, tmp_path / "bundle")


# --------------------------------------------------------------------------------------------------------------
# row 2: any file name
# --------------------------------------------------------------------------------------------------------------
def bad_name_folder(tmp_path: Path) -> tuple[Path, Path]:
    folder = melody_folder(tmp_path / "midi", n=6)
    bad = Path(os.fsdecode(os.fsencode(folder) + b"/" + BAD_NAME))
    shutil.copy(folder / "walk_00.mid", bad)
    return folder, bad


def melody_folder(folder: Path, n: int = 48, seed: int = 0) -> Path:
    """`n` seeded random-walk melodies as MIDI files (fast to read, no corpus conversion needed)."""
    from hf_melody.data.melody import Melody
    from hf_melody.music import TPQ

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pitch, t, notes = rng.randint(60, 72), 0, []
        for _ in range(rng.randint(16, 40)):
            dur = rng.choice([1, 2, 2, 4]) * TPQ // 2
            notes.append([t, dur, pitch])
            t += dur
            pitch = min(84, max(48, pitch + rng.choice([-2, -1, 0, 1, 2, 3])))
        Melody(f"walk/{i}", "walk", notes, [[0, 4, 4]]).to_score().dump_midi(str(folder / f"walk_{i:02d}.mid"))
    return folder


S = TPQ // 4  # a sixteenth note, in ticks


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


def run_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", TINY, "--dataset", str(data), "--output_dir", str(out), "--max_steps", "4",
            "--save_steps", "2", "--logging_steps", "1", "--eval_strategy", "no", "--max_length", "64",
            "--per_device_train_batch_size", "8", "--augment_semitones", "0", "--validation_ratio", "0.1",
            "--test_ratio", "0", "--disable_tqdm", "true", "--report_to", "none", *extra]


def probe_registry():
    """A table of probes for one test file: `PROBES, probe = probe_registry()`; `@probe(name)` registers
    `f(request, tmp_path)`, which raises AssertionError if hf_melody misbehaves, and `test_probe` runs each."""
    probes: dict = {}

    def probe(name: str):
        def register(f):
            probes[name] = f
            return f
        return register

    return probes, probe


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and two threads fighting a busy CPU make generation 10x slower
    (used module-wide: `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
