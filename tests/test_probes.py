"""The bad-input, fault and safety probes of issue 13 that used to crash or pass silently, kept as regression tests.

Each probe crafts real inputs (MIDI bytes, file names, bundles, output folders, previous runs) in `tmp_path`, runs
the public API or the `hf-melody` command as a user would, and asserts the typed error and that its one-line
message names the culprit and a fix, or the correct behaviour. Rows 6 and 7 (non-finite temperature, huge seeds)
live with the generation options. The atomic-save kill test (row 13) is in `tests/test_atomic_bundle.py`.

    pytest tests/test_probes.py -v          # one test id per probe
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from hf_melody.cli import main as cli_main
from hf_melody.data.corpora import iter_midi_folder, read_midi
from hf_melody.errors import ConfigError, ImplausibleMelodyError, MidiReadError, ModelLoadError
from hf_melody.music import TPQ
from test_resume import melody_folder
from test_robustness import TUNE, assert_teaching_error, make_score, smf, tune_notes, write_score

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "recipes" / "tiny-debug.yaml")
BAD_NAME = b"bad\xff\xfename.mid"  # not UTF-8: what a file copied from an old Windows or Mac system may be called
SHOWN_BAD_NAME = "bad\\xff\\xfename.mid"  # how messages, ids and reports show it

PROBES: dict[str, Callable] = {}


def probe(name: str):
    """Register a probe: `f(request, tmp_path)` raises AssertionError if hf_melody misbehaves."""
    def register(f):
        PROBES[name] = f
        return f
    return register


# --------------------------------------------------------------------------------------------------------------
# shared inputs
# --------------------------------------------------------------------------------------------------------------
def vlq(n: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [n & 0x7F]
    while n := n >> 7:
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def note_events(pitches, first_delta: int = 0, dur: int = TPQ) -> bytes:
    body = b""
    for i, p in enumerate(pitches):
        body += vlq(first_delta if i == 0 else 0) + bytes([0x90, p, 80]) + vlq(dur) + bytes([0x80, p, 0])
    return body


def run_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", TINY, "--dataset", str(data), "--output_dir", str(out), "--max_steps", "4",
            "--save_steps", "2", "--logging_steps", "1", "--eval_strategy", "no", "--max_length", "64",
            "--per_device_train_batch_size", "8", "--augment_semitones", "0", "--validation_ratio", "0.1",
            "--test_ratio", "0", "--disable_tqdm", "true", "--report_to", "none", *extra]


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory):
    """A finished 4-step run (checkpoints at 2 and 4) and its data folder; probes copy it before changing it."""
    from hf_melody.training.trainer import parse_args, train

    root = tmp_path_factory.mktemp("previous")
    data = melody_folder(root / "data", n=24)
    train(*parse_args(run_args(data, root / "run")))
    return data, root / "run"


def copy_run(request, tmp_path) -> tuple[Path, Path]:
    data, run = request.getfixturevalue("previous_run")
    shutil.copytree(run, tmp_path / "run")
    return data, tmp_path / "run"


def refuse_data_loading(monkeypatch) -> None:
    """A tripwire: the probe fails if training reaches data loading (the refusal must come before any work)."""
    import hf_melody.data.corpora

    def tripwire(*args, **kwargs):
        raise AssertionError("data loading started before the refusal")

    monkeypatch.setattr(hf_melody.data.corpora, "load_melodies", tripwire)


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


def edit_config(bundle: Path, **changes) -> Path:
    path = bundle / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, **changes}))
    return path


# --------------------------------------------------------------------------------------------------------------
# row 1: implausible MIDI is skipped and reported
# --------------------------------------------------------------------------------------------------------------
@probe("01-huge-delta-time")
def _(request, tmp_path):
    path = tmp_path / "huge_delta.mid"
    events = note_events([60, 62]) + note_events(TUNE[:8], first_delta=0x0FFFFFFF) + b"\x00\xff\x2f\x00"
    path.write_bytes(smf([events]))
    with pytest.raises(ImplausibleMelodyError) as info:
        read_midi(path)
    assert_teaching_error(info.value, path, "rest of")


@probe("01-ten-hour-note")
def _(request, tmp_path):
    ten_hours = 10 * 3600 * 2 * TPQ  # at 120 quarter notes a minute
    notes = [(0, ten_hours, 60)] + tune_notes(TUNE[:8], offset=ten_hours)
    path = write_score(make_score([("Stuck", 0, False, notes)]), tmp_path / "ten_hours.mid")
    with pytest.raises(ImplausibleMelodyError) as info:
        read_midi(path)
    assert_teaching_error(info.value, path, "a note of 72,000 quarter notes")


@probe("01-mostly-silence")
def _(request, tmp_path):
    notes = tune_notes(TUNE[:8]) + tune_notes(TUNE[:8], offset=(8 + 900) * TPQ)  # 900 quarters of rest
    path = write_score(make_score([("Gappy", 0, False, notes)]), tmp_path / "silence.mid")
    with pytest.raises(ImplausibleMelodyError) as info:
        read_midi(path)
    assert_teaching_error(info.value, path, "long rests fill")


@probe("01-folder-job-skips-and-reports")
def _(request, tmp_path):
    folder = melody_folder(tmp_path / "midi", n=3)
    events = note_events([60, 62]) + note_events(TUNE[:8], first_delta=0x0FFFFFFF) + b"\x00\xff\x2f\x00"
    (folder / "huge_delta.mid").write_bytes(smf([events]))
    from hf_melody.data.melody import SkipReport

    report = SkipReport()
    kept = list(iter_midi_folder(folder, report, progress=False))
    assert len(kept) == 3 and report.reasons() == {"ImplausibleMelodyError": 1}
    assert report.skipped[0]["item"] == "huge_delta.mid" and "huge_delta.mid" in report.skipped[0]["reason"]


# --------------------------------------------------------------------------------------------------------------
# row 2: any file name
# --------------------------------------------------------------------------------------------------------------
def bad_name_folder(tmp_path: Path) -> tuple[Path, Path]:
    folder = melody_folder(tmp_path / "midi", n=6)
    bad = Path(os.fsdecode(os.fsencode(folder) + b"/" + BAD_NAME))
    shutil.copy(folder / "walk_00.mid", bad)
    return folder, bad


@probe("02-non-utf8-name-prepare")
def _(request, tmp_path):
    capsys = request.getfixturevalue("capsys")
    folder, _ = bad_name_folder(tmp_path)
    (Path(os.fsdecode(os.fsencode(folder) + b"/empty\xff.mid"))).write_bytes(b"")
    code, out, err = cli(["prepare", "--dataset", str(folder), "--out", str(tmp_path / "data"),
                          "--augment-semitones", "0"], capsys)
    assert code == 0, err
    assert "7 of 8 kept" in out and "skipped empty\\xff.mid" in out
    report = json.loads((tmp_path / "data" / "skip_report.json").read_text())
    assert report["skipped"][0]["item"] == "empty\\xff.mid"


@probe("02-non-utf8-name-train-data")
def _(request, tmp_path):
    from hf_melody import MelodyTokenizer, load_melodies
    from hf_melody.data.arguments import DataConfig
    from hf_melody.data.dataset import build_dataset

    folder, _ = bad_name_folder(tmp_path)
    melodies, report = load_melodies([str(folder)], progress=False)
    assert report.kept == 7 and f"midi/{SHOWN_BAD_NAME}" in {m.id for m in melodies}
    dsd = build_dataset(melodies, MelodyTokenizer(), DataConfig(max_length=64, augment_semitones=0))
    assert dsd["train"].num_rows > 0


@probe("02-non-utf8-name-read-error")
def _(request, tmp_path):
    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/" + BAD_NAME))
    path.write_bytes(b"not midi")
    with pytest.raises(MidiReadError) as info:
        read_midi(path)
    message = str(info.value)
    assert SHOWN_BAD_NAME in message and "not a MIDI file" in message
    message.encode("utf-8")  # printable anywhere


@probe("02-non-utf8-name-generate-prompt")
def _(request, tmp_path):
    capsys = request.getfixturevalue("capsys")
    _, bad = bad_name_folder(tmp_path)
    code, out, err = cli(["generate", "--prompt", str(bad), "--num", "1", "--max-new-notes", "4", "--seed", "0",
                          "--formats", "mid,png", "--out", str(tmp_path / "gen")], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == ["melody_0.mid", "melody_0.png"]


# --------------------------------------------------------------------------------------------------------------
# row 3: --output_dir is an existing file
# --------------------------------------------------------------------------------------------------------------
@probe("03-output-dir-is-a-file")
def _(request, tmp_path):
    from hf_melody.training.trainer import parse_args

    data = melody_folder(tmp_path / "data", n=3)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError) as info:
        parse_args(run_args(data, tmp_path / "notes.txt"))
    assert "notes.txt is a file" in str(info.value) and "--output_dir" in str(info.value)
    with pytest.raises(ConfigError, match="notes.txt is a file"):
        parse_args(run_args(data, tmp_path / "notes.txt" / "run"))
    assert (tmp_path / "notes.txt").read_text() == "mine"


@probe("03-output-dir-is-a-file-cli")
def _(request, tmp_path):
    capsys = request.getfixturevalue("capsys")
    data = melody_folder(tmp_path / "data", n=3)
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = cli(["train", *run_args(data, tmp_path / "notes.txt")], capsys)
    assert_one_line_cli_error(code, err, "notes.txt is a file")


# --------------------------------------------------------------------------------------------------------------
# rows 4, 5, 14: an output folder that holds a run
# --------------------------------------------------------------------------------------------------------------
@probe("04-other-preset-in-output-dir")
def _(request, tmp_path):
    from hf_melody.training.trainer import parse_args, train

    data, run = copy_run(request, tmp_path)
    refuse_data_loading(request.getfixturevalue("monkeypatch"))
    with pytest.raises(ConfigError) as info:
        train(*parse_args(run_args(data, run, "--preset", "wider-shallower")))
    message = str(info.value)
    assert str(run) in message and "'original'" in message and "'wider-shallower'" in message
    assert "--overwrite_output_dir true" in message


@probe("04-other-preset-in-an-older-folder")
def _(request, tmp_path):
    """A folder from before run fingerprints (no training_info.json anywhere): the checkpoint's shape decides."""
    from hf_melody.training.trainer import parse_args, train

    data, run = copy_run(request, tmp_path)
    for info in run.rglob("training_info.json"):
        info.unlink()
    refuse_data_loading(request.getfixturevalue("monkeypatch"))
    with pytest.raises(ConfigError) as info:
        train(*parse_args(run_args(data, run, "--preset", "wider-shallower")))
    assert "checkpoint-4/config.json has n_embd=32" in str(info.value)


@probe("04-same-run-in-an-older-folder-resumes")
def _(request, tmp_path):
    """No false refusal: a folder from before run fingerprints, recorded with a relative data path, resumes."""
    from hf_melody.training.trainer import parse_args, train

    data, run = copy_run(request, tmp_path)
    for path in run.rglob("training_info.json"):
        info = json.loads(path.read_text())
        info.pop("run", None)
        info["dataset"] = [os.path.relpath(data, tmp_path)]
        path.write_text(json.dumps(info))
    request.getfixturevalue("monkeypatch").chdir(tmp_path)
    train(*parse_args(run_args(data, run, "--max_steps", "6")))
    log = json.loads((run / "training_log.json").read_text())
    assert [e["step"] for e in log["train"]] == [1, 2, 3, 4, 5, 6]


@probe("05-other-dataset-in-output-dir")
def _(request, tmp_path):
    from hf_melody.training.trainer import parse_args, train

    data, run = copy_run(request, tmp_path)
    other = melody_folder(tmp_path / "other", n=24, seed=1)
    with request.getfixturevalue("monkeypatch").context() as mp:
        refuse_data_loading(mp)
        with pytest.raises(ConfigError) as info:
            train(*parse_args(run_args(other, run)))
    message = str(info.value)
    assert "dataset=" in message and str(other) in message and str(data) in message

    # the user's explicit choice: replace the old run
    from safetensors.torch import load_file

    old = load_file(str(run / "model.safetensors"))
    train(*parse_args(run_args(other, run, "--overwrite_output_dir", "true")))
    info = json.loads((run / "training_info.json").read_text())
    assert info["dataset"] == [str(other)] and info["run"]["dataset"] == [str(other)]
    new = load_file(str(run / "model.safetensors"))
    assert any((old[k] != new[k]).any() for k in old), "the weights must come from the new run"


@probe("05-explicit-resume-is-the-users-choice")
def _(request, tmp_path):
    """`--resume_from_checkpoint` names the checkpoint to continue: no refusal, even with other data."""
    from hf_melody.training.trainer import parse_args, train

    data, run = copy_run(request, tmp_path)
    other = melody_folder(tmp_path / "other", n=24, seed=1)
    train(*parse_args(run_args(other, run, "--resume_from_checkpoint", str(run / "checkpoint-2"), "--max_steps",
                               "6")))
    info = json.loads((run / "training_info.json").read_text())
    assert info["max_steps"] == 6 and info["dataset"] == [str(other)]


@probe("14-rerun-at-max-steps")
def _(request, tmp_path):
    import transformers

    from hf_melody.training.trainer import parse_args, train

    data, run = copy_run(request, tmp_path)
    before = json.loads((run / "training_info.json").read_text())
    steps = []

    class CountSteps(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps.append(state.global_step)

    init = transformers.Trainer.__init__

    def init_with_counter(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(CountSteps())

    request.getfixturevalue("monkeypatch").setattr(transformers.Trainer, "__init__", init_with_counter)
    train(*parse_args(run_args(data, run)))
    assert steps == [], f"trained steps {steps} past the end of a finished 4-step run"
    info = json.loads((run / "training_info.json").read_text())
    assert info["max_steps"] == 4 and not (run / "checkpoint-5").exists()
    log = json.loads((run / "training_log.json").read_text())
    assert [e["step"] for e in log["train"]] == [1, 2, 3, 4], "the losses must cover the whole run"
    mean = sum(e["loss"] for e in log["train"]) / 4
    assert info["final_train_loss"] == pytest.approx(mean) == pytest.approx(before["final_train_loss"])


# --------------------------------------------------------------------------------------------------------------
# rows 8, 9: generate and prepare options
# --------------------------------------------------------------------------------------------------------------
@probe("08-unknown-format")
def _(request, tmp_path):
    code, _, err = cli(["generate", "--formats", "xyz", "--out", str(tmp_path / "gen")],
                       request.getfixturevalue("capsys"))
    assert_one_line_cli_error(code, err, "'xyz'", "mid,wav,flac")
    assert not (tmp_path / "gen").exists()


@probe("08-empty-formats")
def _(request, tmp_path):
    code, _, err = cli(["generate", "--formats", ",", "--out", str(tmp_path / "gen")],
                       request.getfixturevalue("capsys"))
    assert_one_line_cli_error(code, err, "--formats", "no format given")


@probe("09-generate-out-is-a-file")
def _(request, tmp_path):
    (tmp_path / "out.mid").write_bytes(b"MThd")
    code, _, err = cli(["generate", "--out", str(tmp_path / "out.mid"), "--num", "1"],
                       request.getfixturevalue("capsys"))
    assert_one_line_cli_error(code, err, "--out", "out.mid is a file")
    assert (tmp_path / "out.mid").read_bytes() == b"MThd"


@probe("09-prepare-out-is-a-file")
def _(request, tmp_path):
    data = melody_folder(tmp_path / "midi", n=3)
    (tmp_path / "data").write_text("mine")
    code, _, err = cli(["prepare", "--dataset", str(data), "--out", str(tmp_path / "data")],
                       request.getfixturevalue("capsys"))
    assert_one_line_cli_error(code, err, "--out", "data is a file")
    assert (tmp_path / "data").read_text() == "mine"


# --------------------------------------------------------------------------------------------------------------
# rows 10, 11, 12: bundles that must not load
# --------------------------------------------------------------------------------------------------------------
class _RunsCode:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@probe("10-malicious-pickle-with-allow-pickle")
def _(request, tmp_path):
    import torch

    from hf_melody import load_model

    bundle = gpt2_bundle(tmp_path)
    (bundle / "model.safetensors").unlink()
    marker = tmp_path / "code_was_run"
    torch.save({"transformer.wte.weight": _RunsCode(str(marker))}, bundle / "pytorch_model.bin")
    with pytest.raises(ModelLoadError) as info:
        load_model(bundle, allow_pickle=True)
    message = str(info.value)
    assert str(bundle) in message and "model.safetensors" in message and "\n" not in message
    assert not marker.exists(), "the pickle's code ran"


@probe("11-config-vocab-size-mismatch")
def _(request, tmp_path):
    from hf_melody import MelodyTokenizer, load_model

    bundle = gpt2_bundle(tmp_path)
    wrong = MelodyTokenizer().vocab_size + 37
    config = edit_config(bundle, vocab_size=wrong)
    with pytest.raises(ModelLoadError) as info:
        load_model(bundle)
    message = str(info.value)
    assert str(config) in message and f"vocab_size is {wrong}" in message and "miditok.json" in message
    assert "\n" not in message and ";" in message


@probe("12-config-model-type-bert")
def _(request, tmp_path):
    from hf_melody import MelodyPipeline, load_model

    bundle = gpt2_bundle(tmp_path)
    config = edit_config(bundle, model_type="bert", architectures=["BertLMHeadModel"])
    for load in (load_model, MelodyPipeline.from_pretrained):
        with pytest.raises(ModelLoadError) as info:
            load(bundle)
        message = str(info.value)
        assert str(config) in message and "'bert'" in message and '"gpt2"' in message and "\n" not in message


# --------------------------------------------------------------------------------------------------------------
# row 13 (a fast companion of tests/test_atomic_bundle.py): a re-save that fails leaves the good bundle
# --------------------------------------------------------------------------------------------------------------
@probe("13-failed-resave-keeps-the-old-bundle")
def _(request, tmp_path):
    import transformers.modeling_utils

    from hf_melody import MelodyTokenizer, build_model, load_model, save_bundle

    bundle = gpt2_bundle(tmp_path)
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    tok = MelodyTokenizer()

    def disk_full(tensors, filename, metadata=None):  # half the weights reach the disk, then it is full
        Path(filename).write_bytes(b"\0" * 100)
        raise OSError(28, "No space left on device")

    with request.getfixturevalue("monkeypatch").context() as mp:
        mp.setattr(transformers.modeling_utils, "safe_save_file", disk_full)
        with pytest.raises(OSError, match="No space left"):
            save_bundle(build_model("original", tok, n_positions=32, seed=1), tok, bundle)
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["bundle"], "no temporary folder left behind"
    load_model(bundle)


# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PROBES))
def test_probe(name, request, tmp_path):
    PROBES[name](request, tmp_path)


# --------------------------------------------------------------------------------------------------------------
# categories that already passed in issue 13's probe run: kept here so that they cannot regress
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["file-loop", "folder-loop"])
def test_passing_symlink_loops_are_reported_not_followed(tmp_path, case):
    from hf_melody.data.melody import SkipReport

    folder = melody_folder(tmp_path / "midi", n=2)
    if case == "file-loop":
        (folder / "a.mid").symlink_to("b.mid")
        (folder / "b.mid").symlink_to("a.mid")
    else:
        (folder / "sub").mkdir()
        (folder / "sub" / "up").symlink_to("..")
    report = SkipReport()
    kept = list(iter_midi_folder(folder, report, progress=False))
    assert len(kept) == 2
    if case == "file-loop":
        assert sorted(s["item"] for s in report.skipped) == ["a.mid", "b.mid"]
        for s in report.skipped:
            assert s["error"] == "MidiReadError" and "symbolic link loop" in s["reason"] and s["item"] in s["reason"]
    else:
        assert report.skipped == []


def test_passing_five_thousand_tracks(tmp_path):
    tracks = [("Melody", 73, False, tune_notes(TUNE))] + [(f"t{i}", 0, False, [(i % 16 * TPQ, TPQ, 48 + i % 12)])
                                                          for i in range(4999)]
    path = write_score(make_score(tracks), tmp_path / "tracks5000.mid")
    melody = read_midi(path)
    assert [p for _, _, p in melody.notes] == TUNE


@pytest.mark.parametrize("name", ["../etc", "org/../x", "..", "a/b/c/..", "../../tmp"])
def test_passing_hub_ids_with_dot_dot_are_refused(name):
    from hf_melody import MelodyPipeline

    with pytest.raises(ModelLoadError) as info:
        MelodyPipeline.from_pretrained(name)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_passing_same_seed_same_bytes(tmp_path, capsys):
    for run in ("a", "b"):
        code, _, err = cli(["generate", "--num", "2", "--seed", "7", "--max-new-notes", "12", "--formats", "mid",
                            "--out", str(tmp_path / run)], capsys)
        assert code == 0, err
    for i in range(2):
        assert (tmp_path / "a" / f"melody_{i}.mid").read_bytes() == (tmp_path / "b" / f"melody_{i}.mid").read_bytes()


def test_passing_concurrent_prepare_on_one_cache(tmp_path):
    """Two `hf-melody prepare` processes on the same data and the same cache at once: both finish, same blocks."""
    import subprocess
    import sys

    data = melody_folder(tmp_path / "midi", n=24)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_MELODY_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-m", "hf_melody.cli", "prepare", "--dataset", str(data), "--out",
                               str(tmp_path / f"out{i}"), "--augment-semitones", "1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-2000:] for r in results]
    from datasets import load_from_disk

    a, b = (load_from_disk(str(tmp_path / f"out{i}" / "dataset")) for i in range(2))
    assert a["train"]["input_ids"] == b["train"]["input_ids"] and a["train"].num_rows > 0
