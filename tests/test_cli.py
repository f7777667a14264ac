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
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert not (tmp_path / "out").exists(), "a run that failed before writing leaves no empty output folder"
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


# ---- issue 27: one run at a time into an output folder; a full disk told in one line ----------------------------
GENERATE = ["-m", "hf_melody.cli", "generate", "--model", "original", "--num", "2", "--seed", "0",
            "--max-new-notes", "6", "--formats", "mid"]


def test_generate_into_a_folder_another_run_is_writing_is_refused_at_once(tmp_path):
    out = tmp_path / "gen"
    holder = subprocess.Popen(  # a process holding the folder exactly as a running `generate` holds it
        [sys.executable, "-c", "import sys; from pathlib import Path; from hf_melody.cli import lock_out_folder\n"
         f"with lock_out_folder(Path({str(out)!r})):\n    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run([sys.executable, *GENERATE, "--output-dir", str(out)], capture_output=True,
                                text=True, timeout=300)
        assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr[-2000:]
        line = second.stderr.strip()
        assert line == (f"hf-melody: error: --output-dir {out} is in use by another hf-melody run (pid {holder.pid}); "
                        "wait for it to finish or choose another --output-dir"), line
        assert list(out.iterdir()) == [], "the refused run wrote nothing"
    finally:
        holder.communicate("")  # the holder exits: the lock goes with it
    again = subprocess.run([sys.executable, *GENERATE, "--output-dir", str(out)], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["melody_0.mid", "melody_1.mid"], "the lock leaves no file"


FULL_DISK_GENERATE = r'''
import resource, signal, sys

from hf_melody.cli import main

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk ENOSPC
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
sys.exit(main(sys.argv[1:]))
'''


def test_generate_onto_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path):
    out = tmp_path / "gen"
    # a MIDI file (~100 bytes) fits under 4 kB, the piano roll PNG (~20 kB) does not
    proc = subprocess.run([sys.executable, "-c", FULL_DISK_GENERATE, *GENERATE[2:-1], "mid,png", "--output-dir",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line == (f"hf-melody: error: {out / 'melody_0.png'}: File too large (EFBIG); free space there or write "
                    "elsewhere (--output-dir / --output_dir)"), line
    assert sorted(p.name for p in out.iterdir()) == ["melody_0.mid"], "complete files only, no temporary left"
