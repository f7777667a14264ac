"""Training stopped mid-run resumes from its last complete checkpoint and ends exactly where an uninterrupted run ends.

The kill is deterministic: a callback added to the Trainer (transformers' own extension point) pauses the job right
after `checkpoint-20` is saved, and the test then sends SIGKILL. Re-running the same command resumes on its own,
skipping a half-written later checkpoint (what a kill during a save leaves behind).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "recipes" / "tiny-debug.yaml")
STEPS, KILL_AT = 40, 20
TOLERANCE = 1e-5


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
