"""Training runs and their output folders: a stopped run resumes from its last complete checkpoint and ends
exactly where an uninterrupted one ends (SIGKILL included), a finished run is not trained past its end, and a folder
that is a file or holds another run (other preset, other data) is refused before any work, unless the user chooses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import assert_one_line_cli_error, cli, melody_folder, probe_registry, run_args
from hf_melody import ConfigError
from hf_melody.training.trainer import last_complete_checkpoint

ROOT = Path(__file__).parents[1]


TINY = str(ROOT / "recipes" / "tiny-debug.yaml")


STEPS, KILL_AT = 40, 20


TOLERANCE = 1e-5


def train_args(data: Path, out: Path) -> list[str]:
    return ["--config", TINY, "--dataset", str(data), "--output_dir", str(out), "--max_steps", str(STEPS),
            "--save_steps", "10", "--logging_steps", "10", "--dropout", "0", "--eval_strategy", "no",
            "--max_length", "64", "--per_device_train_batch_size", "8", "--augment_semitones", "1",
            "--validation_ratio", "0.1", "--test_ratio", "0", "--disable_tqdm", "true"]


def final_state(out: Path) -> tuple[float, dict]:
    """Last logged training loss and the final weights of a finished run."""
    from safetensors.torch import load_file

    log = json.loads((out / "training_log.json").read_text())
    assert [e["step"] for e in log["train"]] == [10, 20, 30, 40], log["train"]
    return log["train"][-1]["loss"], load_file(str(out / "model.safetensors"))


def assert_same_end(a: Path, b: Path) -> None:
    loss_a, weights_a = final_state(a)
    loss_b, weights_b = final_state(b)
    assert abs(loss_a - loss_b) <= TOLERANCE, (loss_a, loss_b)
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        diff = (weights_a[name] - weights_b[name]).abs().max().item()
        assert diff <= TOLERANCE, f"{name} differs by {diff}"


def half_written_checkpoint(out: Path, step: int) -> None:
    """What a job killed while saving leaves behind: a checkpoint folder without `trainer_state.json`."""
    broken = out / f"checkpoint-{step}"
    broken.mkdir()
    shutil.copy(out / f"checkpoint-{KILL_AT}" / "config.json", broken / "config.json")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, here and in the subprocesses: on a busy 2-core machine a tiny model trains ~30x faster
    (thread oversubscription), and every run does the same floating-point reductions."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted run (in this process) and its data folder."""
    from hf_melody.training.trainer import parse_args, train

    root = tmp_path_factory.mktemp("resume")
    data = melody_folder(root / "data")
    out = root / "uninterrupted"
    train(*parse_args(train_args(data, out)))
    return data, out


def add_callback(monkeypatch, callback) -> None:
    """Give every Trainer built from now on `callback` (transformers' own extension point; undone after the test)."""
    import transformers

    init = transformers.Trainer.__init__

    def init_with_callback(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(callback)

    monkeypatch.setattr(transformers.Trainer, "__init__", init_with_callback)


def test_stopped_run_resumes_to_the_same_end(reference_run, tmp_path, monkeypatch, caplog):
    """Fast variant (in process): stop after checkpoint-20, leave a half-written checkpoint-30, run again."""
    import logging

    import transformers

    from hf_melody.training.trainer import parse_args, train

    data, reference = reference_run
    out = tmp_path / "stopped"

    class StopAfterSave(transformers.TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == KILL_AT:
                control.should_training_stop = True

    class CountSteps(transformers.TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            CountSteps.steps += 1

    add_callback(monkeypatch, StopAfterSave())
    train(*parse_args(train_args(data, out)))
    monkeypatch.undo()
    assert json.loads((out / "training_log.json").read_text())["train"][-1]["step"] == KILL_AT
    half_written_checkpoint(out, 30)

    add_callback(monkeypatch, CountSteps())
    caplog.set_level(logging.INFO, logger="hf_melody.training.trainer")
    train(*parse_args(train_args(data, out)))
    assert f"resuming from {out / f'checkpoint-{KILL_AT}'}" in caplog.text
    assert "checkpoint-30 has no trainer_state.json" in caplog.text
    assert CountSteps.steps == STEPS - KILL_AT, "the second run must only do the steps that were missing"
    assert_same_end(reference, out)
    # the recorded losses cover the whole run, not only the resumed steps
    info, reference_info = (json.loads((d / "training_info.json").read_text()) for d in (out, reference))
    assert info["max_steps"] == STEPS
    assert abs(info["final_train_loss"] - reference_info["final_train_loss"]) <= TOLERANCE


def test_rerun_of_a_finished_run_trains_no_step_past_the_end(reference_run, tmp_path, monkeypatch):
    """Issue 13, row 14: the last checkpoint is at max_steps; running the command again must not train step 41."""
    import transformers

    from hf_melody.training.trainer import parse_args, train

    data, reference = reference_run
    out = tmp_path / "finished"
    shutil.copytree(reference, out)
    before = json.loads((out / "training_info.json").read_text())
    steps = []

    class CountSteps(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps.append(state.global_step)

    add_callback(monkeypatch, CountSteps())
    train(*parse_args(train_args(data, out)))
    assert steps == [], f"trained {steps} after the run had ended at step {STEPS}"
    info = json.loads((out / "training_info.json").read_text())
    assert info["max_steps"] == STEPS and not (out / f"checkpoint-{STEPS + 1}").exists()
    assert info["final_train_loss"] == before["final_train_loss"]
    log = json.loads((out / "training_log.json").read_text())
    assert [e["step"] for e in log["train"]] == [10, 20, 30, 40]
    mean = sum(e["loss"] for e in log["train"]) / 4  # each log covers 10 steps
    assert info["final_train_loss"] == pytest.approx(mean, rel=1e-12)
    assert_same_end(reference, out)


def test_every_checkpoint_is_a_loadable_bundle(reference_run):
    """Issue 11: `checkpoint-N/` holds miditok.json, the generation config and the run record beside the weights."""
    from hf_melody import MelodyPipeline

    _, reference = reference_run
    checkpoints = sorted(reference.glob("checkpoint-*"))
    assert [p.name for p in checkpoints] == ["checkpoint-30", "checkpoint-40"]  # save_total_limit 2
    for checkpoint in checkpoints:
        assert {"miditok.json", "generation_config.json", "training_info.json"} <= {p.name for p in
                                                                                   checkpoint.iterdir()}
        info = json.loads((checkpoint / "training_info.json").read_text())
        assert info["max_steps"] == int(checkpoint.name.split("-")[1]) and info["run"]["dataset"]
        generation = json.loads((checkpoint / "generation_config.json").read_text())
        assert generation["do_sample"] is True
        [melody] = MelodyPipeline.from_pretrained(checkpoint)(seed=0, max_new_notes=6)
        assert melody.num_notes == 6


PAUSE_RUNNER = """
import os, runpy, sys, time
from pathlib import Path

import transformers


class PauseAfterSave(transformers.TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == {step}:
            Path({marker!r}).write_text(str(os.getpid()))
            time.sleep(600)  # until the test kills us


init = transformers.Trainer.__init__


def init_with_pause(self, *args, **kwargs):
    init(self, *args, **kwargs)
    self.add_callback(PauseAfterSave())


transformers.Trainer.__init__ = init_with_pause
sys.argv = [{script!r}, *sys.argv[1:]]
runpy.run_path({script!r}, run_name="__main__")
"""


def test_sigkilled_recipe_resumes_to_the_same_end(reference_run, tmp_path):
    """`recipes/train.py` in a subprocess, SIGKILLed after checkpoint-20, then the same command again."""
    data, reference = reference_run
    out = tmp_path / "killed"
    marker = tmp_path / "paused"
    runner = PAUSE_RUNNER.format(step=KILL_AT, marker=str(marker), script=str(ROOT / "recipes" / "train.py"))
    args = train_args(data, out)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", runner, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), f"no checkpoint-{KILL_AT}: exit {proc.poll()}; {proc.stdout.read()[-3000:]}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert (out / f"checkpoint-{KILL_AT}" / "trainer_state.json").is_file()
    assert not (out / "model.safetensors").exists(), "the killed job must not have written its final bundle"
    half_written_checkpoint(out, 30)

    again = subprocess.run([sys.executable, str(ROOT / "recipes" / "train.py"), *args], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from {out / f'checkpoint-{KILL_AT}'}" in again.stderr, again.stderr[-3000:]
    assert "checkpoint-30 has no trainer_state.json" in again.stderr
    assert_same_end(reference, out)


def test_last_complete_checkpoint_skips_half_written_ones(tmp_path):
    assert last_complete_checkpoint(tmp_path) is None
    for step in (10, 20, 100):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-20" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")  # 100 was cut short


PROBES, probe = probe_registry()  # this file's probes: @probe(name) registers f(request, tmp_path)


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
@pytest.mark.parametrize("name", list(PROBES))
def test_probe(name, request, tmp_path):
    PROBES[name](request, tmp_path)


# ---- nothing shared by accident (issue 27): one training run per output_dir -------------------------------------
def test_a_second_run_into_a_held_output_dir_fails_at_once_naming_the_holder(tmp_path, fixtures_dir):
    import hf_melody
    from hf_melody.training.runs import LOCK_FILE, lock_output_dir

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from hf_melody.training.runs import lock_output_dir; "
         f"lock = lock_output_dir({str(out)!r}); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.perf_counter()
        with pytest.raises(ConfigError) as info:
            hf_melody.train({"dataset": str(fixtures_dir), "preset": "original", "max_length": 64,
                             "output_dir": str(out), "max_steps": 3, "report_to": "none"})
        message = str(info.value)
        assert f"pid {holder.pid}" in message and "in use by another training run" in message
        assert "choose another --output_dir" in message and "\n" not in message
        assert time.perf_counter() - start < 10 and not (out / "training_info.json").exists()
        with pytest.raises(ConfigError, match=f"pid {holder.pid}"):
            lock_output_dir(out)
    finally:
        holder.communicate("")  # the holder exits: its lock goes with it
    lock = lock_output_dir(out)
    assert f"pid {os.getpid()}" in (out / LOCK_FILE).read_text()
    with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):  # a real second attempt in this process, too
        lock_output_dir(out)
    lock.close()
    lock_output_dir(out).close()


# ---- faults told plainly (issue 27): a checkpoint save onto a full disk --------------------------------------------
# RLIMIT_FSIZE (set from a callback once step 30 is done, SIGXFSZ ignored) makes the writes of checkpoint-30 fail with
# EFBIG part-way, exactly where ENOSPC would fail them on a full disk: the same write(2) calls, torch.save's "unexpected
# pos" and all. A tmpfs of a fixed size would give ENOSPC itself but needs root.
FULL_DISK_RUNNER = """
import resource, signal, sys

import transformers

from hf_melody.cli import main


class FullDiskAt(transformers.TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == {step}:  # the weights (~160 kB) fit, the optimizer state (~320 kB) does not
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


init = transformers.Trainer.__init__


def init_with_full_disk(self, *args, **kwargs):
    init(self, *args, **kwargs)
    self.add_callback(FullDiskAt())


transformers.Trainer.__init__ = init_with_full_disk
sys.exit(main(["train", *sys.argv[1:]]))
"""


def test_a_checkpoint_save_onto_a_full_disk_is_told_in_one_line_and_leaves_no_half_checkpoint(reference_run, tmp_path):
    data, reference = reference_run
    out = tmp_path / "full"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", FULL_DISK_RUNNER.format(step=30, limit=200_000),
                           *train_args(data, out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert last.startswith("hf-melody: error: ") and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert str(out / "checkpoint-30") in last and "disk is full" in last and "free space" in last, last
    # nothing half-written: checkpoint-30 does not exist at all (not even without trainer_state.json), no staging
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == ["checkpoint-10", "checkpoint-20"]
    assert not (out / "model.safetensors").exists()
    from hf_melody.utils import current_umask  # and the finished checkpoints carry the usual permissions

    assert {p.stat().st_mode & 0o777 for p in (out / "checkpoint-20").iterdir()} == {0o666 & ~current_umask()}
    # room again: the same command resumes from checkpoint-20 and ends exactly where the uninterrupted run ends
    again = subprocess.run([sys.executable, str(ROOT / "recipes" / "train.py"), *train_args(data, out)], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from {out / 'checkpoint-20'}" in again.stderr
    assert_same_end(reference, out)


def test_staging_folders_of_a_crashed_save_are_removed_before_the_next_run(tmp_path):
    from hf_melody.training.checkpoints import remove_unfinished_checkpoints, staging_root

    (tmp_path / "checkpoint-10").mkdir()
    stale = staging_root(tmp_path, 20) / "checkpoint-20"
    stale.mkdir(parents=True)
    (stale / "trainer_state.json").write_text("{}")  # even a complete-looking one: it was never renamed into place
    assert last_complete_checkpoint(tmp_path) is None
    assert remove_unfinished_checkpoints(tmp_path) == [staging_root(tmp_path, 20)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10"]


def test_a_non_utf8_output_dir_is_refused_before_training_and_again_at_once(tmp_path, capsys, fixtures_dir):
    """Before: it trained, then failed writing the card (no bundle), and a rerun trained all over again."""
    import hf_melody
    from hf_melody import MelodyTokenizer, OutputError, build_model, save_bundle

    out = Path(os.fsdecode(os.fsencode(tmp_path) + b"/run-\xff"))
    for _ in range(2):  # a rerun is refused the same way: nothing was started, so nothing is repeated
        code, _, err = cli(["train", *run_args(fixtures_dir, out)], capsys)
        assert_one_line_cli_error(code, err, "output_dir=", "run-\\xff", "not valid UTF-8", "--output_dir")
        assert sorted(tmp_path.iterdir()) == [], "refused before anything was written"
    with pytest.raises(OutputError, match="byte 0xff"):
        hf_melody.train({"dataset": str(fixtures_dir), "preset": "original", "output_dir": out, "max_steps": 2})
    tok = MelodyTokenizer()
    with pytest.raises(OutputError, match="save_directory="):  # saving a bundle there: refused before writing
        save_bundle(build_model("original", tok, n_positions=32, seed=0), tok, out)
    assert sorted(tmp_path.iterdir()) == []
