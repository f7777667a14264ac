"""The `hf-melody` command and the bundled checkpoints (loaded offline by name): generate and its flags, prompts
with any file name, one-line errors naming the fix (unknown or empty formats, an output that is a file), same seed
same bytes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_one_line_cli_error, bad_name_folder, cli, probe_registry
from hf_melody.bundle import CHECKPOINTS_DIR, bundled_checkpoints
from hf_melody.cli import main

BUNDLED = ["folk-base", "original", "deeper-thinner", "wider-shallower"]


def test_generate_writes_midi_wav_and_png(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["generate", "--model", str(tiny_bundle), "--num", "2", "--out", str(out), "--seed", "0",
                 "--max-new-notes", "12"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["melody_0.mid", "melody_0.png", "melody_0.wav", "melody_1.mid", "melody_1.png", "melody_1.wav"]
    assert "wrote 6 files" in capsys.readouterr().out
    again = tmp_path / "again"
    main(["generate", "--model", str(tiny_bundle), "--num", "2", "--out", str(again), "--seed", "0",
          "--max-new-notes", "12", "--formats", "mid"])
    assert (again / "melody_1.mid").read_bytes() == (out / "melody_1.mid").read_bytes()


def test_constraint_flags(tiny_bundle, tmp_path):
    from symusic import Score

    out = tmp_path / "dminor"
    assert main(["generate", "--model", str(tiny_bundle), "--num", "2", "--out", str(out), "--seed", "0",
                 "--key", "D minor", "--pitch-range", "60", "72", "--num-bars", "4", "--formats", "mid"]) == 0
    d_minor = {2, 4, 5, 7, 9, 10, 0}  # D natural minor
    files = sorted(out.glob("*.mid"))
    assert [f.name for f in files] == ["melody_0.mid", "melody_1.mid"]  # --num 2
    for f in files:
        pitches = [n.pitch for n in Score(str(f)).tracks[0].notes]
        assert pitches and all(60 <= p <= 72 for p in pitches)
        assert all(p % 12 in d_minor for p in pitches)


def test_errors_are_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hf_melody.cli", "generate", "--model", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("hf-melody: error: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_explains_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in ("generate", "prepare", "train", "evaluate", "models", "cards"):
        assert command in text


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_checkpoint_loads_offline_and_generates(name):
    from hf_melody import MelodyPipeline

    assert name in bundled_checkpoints()
    info = json.loads((CHECKPOINTS_DIR / name / "training_info.json").read_text())
    assert "essen/kinder0" in info["exclude"], "the Kinderlieder benchmark must stay held out"
    log = json.loads((CHECKPOINTS_DIR / name / "training_log.json").read_text())
    assert log["eval"][-1]["eval_loss"] < log["eval"][0]["eval_loss"]
    [melody] = MelodyPipeline.from_pretrained(name)(seed=0, max_new_notes=24)
    assert 1 <= melody.num_notes <= 24  # a model may end a tune early (EOS)
    assert not any(Path(CHECKPOINTS_DIR / name).glob("*.bin"))


PROBES, probe = probe_registry()  # this file's probes: @probe(name) registers f(request, tmp_path)


@probe("02-non-utf8-name-generate-prompt")
def _(request, tmp_path):
    capsys = request.getfixturevalue("capsys")
    _, bad = bad_name_folder(tmp_path)
    code, out, err = cli(["generate", "--prompt", str(bad), "--num", "1", "--max-new-notes", "4", "--seed", "0",
                          "--formats", "mid,png", "--out", str(tmp_path / "gen")], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == ["melody_0.mid", "melody_0.png"]


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


# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PROBES))
def test_probe(name, request, tmp_path):
    PROBES[name](request, tmp_path)


def test_passing_same_seed_same_bytes(tmp_path, capsys):
    for run in ("a", "b"):
        code, _, err = cli(["generate", "--num", "2", "--seed", "7", "--max-new-notes", "12", "--formats", "mid",
                            "--out", str(tmp_path / run)], capsys)
        assert code == 0, err
    for i in range(2):
        assert (tmp_path / "a" / f"melody_{i}.mid").read_bytes() == (tmp_path / "b" / f"melody_{i}.mid").read_bytes()
