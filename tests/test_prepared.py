"""Prepared folders: `hf-melody prepare` on real and mixed folders (a JSON skip report, one-line failures that
write nothing, any file name, two processes on one cache), then `hf-melody train --dataset <that folder>`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from datasets import load_from_disk

from conftest import (
    BAD_FILES,
    GOOD_FILES,
    assert_one_line_cli_error,
    bad_name_folder,
    cli,
    leftovers,
    melody_folder,
    mixed_folder,
    probe_registry,
)
from hf_melody import ConfigError, MelodyPipeline
from hf_melody.cli import main
from hf_melody.cli import main as cli_main
from hf_melody.data.prepared import find_prepared, is_prepared


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, fixtures_dir):
    out = tmp_path_factory.mktemp("prepared")
    midi = tmp_path_factory.mktemp("midi")
    for f in fixtures_dir.glob("kinder0_*.mid"):
        (midi / f.name).write_bytes(f.read_bytes())
    assert main(["prepare", "--dataset", f"essen/kinder0,{midi}", "--out", str(out), "--max-length", "64",
                 "--augment-semitones", "0"]) == 0
    return out


def test_train_accepts_a_prepared_folder(prepared, tmp_path, capsys):
    assert is_prepared(prepared) and is_prepared(prepared / "dataset")
    assert find_prepared([str(prepared / "dataset")]) == prepared
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(prepared), "--preset", "original", "--output_dir", str(run),
                 "--max_steps", "4", "--eval_steps", "2", "--save_strategy", "no", "--disable_tqdm", "true",
                 "--per_device_train_batch_size", "4", "--report_to", "none"]) == 0
    # the model fits the prepared blocks and speaks the prepared vocabulary
    config = json.loads((run / "config.json").read_text())
    blocks = load_from_disk(str(prepared / "dataset"))
    assert config["n_positions"] >= len(blocks["train"][0]["input_ids"])
    assert (run / "miditok.json").read_text() == (prepared / "miditok.json").read_text()
    info = json.loads((run / "training_info.json").read_text())
    assert str(prepared) in info["data_report"]
    assert MelodyPipeline.from_pretrained(run)(seed=0, max_new_notes=4)[0].num_notes <= 4


def test_a_prepared_folder_cannot_be_mixed_or_re_tokenized(prepared, tmp_path, capsys):
    with pytest.raises(ConfigError, match="already tokenized"):
        find_prepared([str(prepared), "essen/kinder0"])
    assert main(["train", "--dataset", str(prepared), "--bpe_vocab_size", "400", "--output_dir",
                 str(tmp_path / "r"), "--max_steps", "1"]) == 2
    assert "already tokenized" in capsys.readouterr().err


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


ROOT = Path(__file__).parents[1]


PROBES, probe = probe_registry()  # this file's probes: @probe(name) registers f(request, tmp_path)


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


@probe("09-prepare-out-is-a-file")
def _(request, tmp_path):
    data = melody_folder(tmp_path / "midi", n=3)
    (tmp_path / "data").write_text("mine")
    code, _, err = cli(["prepare", "--dataset", str(data), "--out", str(tmp_path / "data")],
                       request.getfixturevalue("capsys"))
    assert_one_line_cli_error(code, err, "--out", "data is a file")
    assert (tmp_path / "data").read_text() == "mine"


# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PROBES))
def test_probe(name, request, tmp_path):
    PROBES[name](request, tmp_path)


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
