"""The learning-rate schedule sized to the time budget (issue 29): a short real run with a budget of seconds ends
decayed at its measured horizon, resumes with the same horizon, works on two gloo processes; small folders get a
validation split and an evaluation interval sized to the run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hf_melody
from hf_melody import ConfigError, MelodyTrainingArguments
from hf_melody.data.dataset import split_melodies
from hf_melody.data.melody import Melody
from hf_melody.training.schedule import MEASURE_STEPS, BudgetSchedule, budget_schedule, interval

ROOT = Path(__file__).parents[1]
TINY = ROOT / "recipes" / "tiny-debug.yaml"

pytestmark = pytest.mark.usefixtures("one_thread")


def budget_run(out: Path, minutes: float, **overrides) -> dict:
    """tiny-debug (the `original` preset on the Kinderlieder) for as many epochs as `minutes` allow."""
    return hf_melody.train(str(TINY), **{"output_dir": str(out), "max_steps": -1, "num_train_epochs": 1000,
                                         "max_train_minutes": minutes, "evals_per_run": 5, "save_strategy": "no",
                                         "disable_tqdm": True, **overrides})


def lrs(out: Path) -> list[tuple[int, float]]:
    log = json.loads((out / "training_log.json").read_text())
    return [(h["step"], h["learning_rate"]) for h in log["train"] if "learning_rate" in h]


@pytest.fixture(scope="module")
def budget_bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("budget") / "run"
    budget_run(out, minutes=0.1)
    return out


def test_a_run_with_a_budget_of_seconds_ends_with_a_decayed_learning_rate(budget_bundle):
    info = json.loads((budget_bundle / "training_info.json").read_text())
    schedule = info["schedule"]
    assert schedule["fitted"] and schedule["steps_per_second"] > 0
    horizon = schedule["horizon_steps"]
    assert MEASURE_STEPS < horizon < schedule["planned_steps"]  # the budget bound the run, not the 1000 epochs
    logged = lrs(budget_bundle)
    peak = max(lr for _, lr in logged)
    assert peak > 0.5 * 0.01  # warmed up to (near) the recipe's learning rate of 0.01
    assert logged[-1][1] < 0.1 * peak  # ...and decayed by the end
    assert info["max_steps"] <= horizon  # stopped at the horizon (or the time cap just before it)
    # the evaluation interval was sized to the horizon (evals_per_run=5, not tiny-debug's eval_steps=20), and the
    # run evaluated at its end
    steps = sorted({e["step"] for e in json.loads((budget_bundle / "training_log.json").read_text())["eval"]})
    assert all(step % schedule["eval_steps"] == 0 for step in steps[:-1]) and 4 <= len(steps) <= 12
    assert steps[-1] == info["max_steps"]
    card = (budget_bundle / "README.md").read_text()
    assert f"decay to step {horizon}" in card and "sized to max_train_minutes=0.1" in card
    # the card and training_info.json say how the run ended: at the horizon (or the time cap just before it)
    outcome = info["outcome"]
    assert outcome["ended"] in ("horizon", "time_limit") and outcome["step"] == info["max_steps"]
    assert outcome["evaluations"] == len(steps) and f"| ended | {outcome['summary']} |" in card


def test_a_budget_run_can_hold_the_peak_and_decay_at_the_end(tmp_path):
    """decay_share=0.4: a real budget run holds the recipe's peak learning rate until its last 40% (after warmup),
    then decays by the horizon; the card names the step the decay began."""
    out = tmp_path / "wsd"
    budget_run(out, minutes=0.1, decay_share=0.4, logging_steps=2)
    schedule = json.loads((out / "training_info.json").read_text())["schedule"]
    assert schedule["fitted"] and schedule["decay_share"] == 0.4
    start, horizon = schedule["decay_start"], schedule["horizon_steps"]
    assert schedule["warmup_steps"] < start < horizon
    logged = dict(lrs(out))
    # after the timed first steps (which run on the planned schedule's warmup) and before the decay: the peak (the
    # horizon is refit as the machine's pace moves, and the decay's start with it, so a step logged while the
    # horizon was shorter may already have been decaying: most, not all, sit at the peak)
    held = [lr for step, lr in logged.items() if max(schedule["warmup_steps"], MEASURE_STEPS) < step < start]
    at_peak = [lr == pytest.approx(0.01) for lr in held]  # tiny-debug's learning rate
    assert held and sum(at_peak) >= len(held) / 2  # (the warmup, a share of the horizon, moves with it too)
    assert logged[max(logged)] < 0.1 * 0.01  # decayed by the end
    assert f"the peak held to step {start}" in (out / "README.md").read_text()


def test_the_schedule_factor_warms_up_decays_and_follows_its_horizon():
    s = BudgetSchedule(horizon=100, warmup=0.1)
    factors = [s(i) for i in range(101)]
    assert factors[0] == 0 and factors[10] == 1 and factors[100] == 0 and s(150) == 0
    assert all(a <= b for a, b in zip(factors[:11], factors[1:11], strict=False))  # warmup rises
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))  # decay falls
    s.horizon = 40  # the budget fits fewer steps: the warmup (a share) and the decay shrink with it
    assert s.warmup_steps == 4 and s(40) == 0 and 0 < s(20) < 1
    assert BudgetSchedule(horizon=40, warmup=8, shape="linear")(24) == 0.5  # a step count stays fixed
    # warmup-stable-decay: the peak holds until the last `decay` share of the steps after warmup, which decays
    held = BudgetSchedule(horizon=110, warmup=10, decay=0.3, shape="linear")
    assert held.decay_start == 80 and [held(i) for i in (10, 79, 80, 95, 110)] == [1, 1, 1, 0.5, 0]
    held.horizon = 60  # the budget shrinks: the held part and the decay shrink with it
    assert held.decay_start == 45 and held(60) == 0
    # evals_per_run's interval: never below MIN_INTERVAL steps (a 16-step run must not evaluate every step)
    assert (interval(600, 12), interval(16, 12), interval(3, 12)) == (50, 5, 3)


def test_the_budget_schedule_is_used_only_where_it_applies(tmp_path):
    def args(**kw):
        return MelodyTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **kw)

    assert budget_schedule(args(max_train_minutes=4)).shape == "cosine"
    assert budget_schedule(args(max_train_minutes=4, lr_scheduler_type="linear")).shape == "linear"
    assert budget_schedule(args()) is None  # no time budget: the Trainer's own schedule is already sized
    assert budget_schedule(args(max_train_minutes=4, fit_schedule_to_budget=False)) is None
    assert budget_schedule(args(max_train_minutes=4, lr_scheduler_type="constant")) is None
    with pytest.raises(ConfigError, match="evals_per_run=0"):
        args(evals_per_run=0)


def test_a_resumed_run_keeps_the_horizon_it_measured(tmp_path):
    import shutil

    import torch

    out = tmp_path / "run"
    budget_run(out, minutes=0.1, save_strategy="steps")
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert len(checkpoints) == 2  # save_total_limit
    # the checkpoint before the last holds the schedule's fields in the scheduler state: a run resumed from it
    # (as after a kill) restores that horizon instead of measuring again
    saved = torch.load(checkpoints[0] / "scheduler.pt", weights_only=False)["lr_lambdas"][0]
    assert saved["fitted"] and saved["horizon"] > int(checkpoints[0].name.split("-")[1])
    shutil.rmtree(checkpoints[1])
    budget_run(out, minutes=1.0, save_strategy="steps")
    resumed = json.loads((out / "training_info.json").read_text())["schedule"]
    assert resumed["horizon_steps"] == saved["horizon"]  # the longer budget of the second call did not move it
    assert lrs(out)[-1][1] < 0.1 * max(lr for _, lr in lrs(out))


# ---- small folders ----------------------------------------------------------------------------------------------
def test_a_split_asked_for_is_never_empty_and_always_the_same():
    melodies = [Melody(f"mine/{i}", "mine", [[0, 480, 60], [480, 480, 62]]) for i in range(20)]
    plain = {s: [m.id for m in ms] for s, ms in split_melodies(melodies, 0.0001, 0.0001, seed=3).items()}
    assert len(plain["validation"]) == 1 and len(plain["test"]) == 1 and len(plain["train"]) == 18
    again = {s: [m.id for m in ms] for s, ms in split_melodies(melodies[::-1], 0.0001, 0.0001, seed=3).items()}
    assert {s: sorted(v) for s, v in plain.items()} == {s: sorted(v) for s, v in again.items()}
    assert not split_melodies(melodies, 0.0, 0.0)["validation"]  # a split not asked for stays empty
    assert split_melodies(melodies[:1], 0.0001, 0.0)["train"] == melodies[:1]  # one melody: training keeps it


def test_twenty_melodies_train_with_a_validation_split_and_a_sized_interval(tmp_path, kinder_melodies):
    folder = tmp_path / "midi"
    folder.mkdir()
    for m in kinder_melodies[:20]:
        m.to_score().dump_midi(str(folder / f"{m.id.split('/')[-1]}.mid"))
    out = tmp_path / "twenty"
    hf_melody.train(str(TINY), dataset=str(folder), output_dir=str(out), validation_ratio=0.02, test_ratio=0.0,
                    max_steps=-1, num_train_epochs=4, evals_per_run=4, save_strategy="no", disable_tqdm=True)
    info = json.loads((out / "training_info.json").read_text())
    assert "split 19 train / 1 validation / 0 test melodies" in info["data_report"]
    evals = json.loads((out / "training_log.json").read_text())["eval"]
    planned = info["schedule"]["planned_steps"]
    assert info["schedule"]["eval_steps"] == interval(planned, 4) < 20  # not the recipe's fixed 20
    assert len(evals) >= 4 and all(e["eval_loss"] > 0 for e in evals)
    assert "1 validation" in (out / "README.md").read_text()
    assert info["outcome"]["ended"] == "steps" and info["outcome"]["step"] == planned  # the 4 epochs ran out


def test_a_run_ended_by_early_stopping_keeps_and_names_its_best_checkpoint(tmp_path):
    """A learning rate far too high makes the validation loss stop improving: early stopping ends the run, the
    bundle holds the best checkpoint, and the card says so (step, validation loss, evaluations)."""
    out = tmp_path / "stopped"
    hf_melody.train(str(TINY), output_dir=str(out), max_steps=60, learning_rate=0.5, eval_steps=2, save_steps=2,
                    load_best_model_at_end=True, metric_for_best_model="eval_loss", early_stopping_patience=1,
                    disable_tqdm=True)
    info = json.loads((out / "training_info.json").read_text())
    outcome = info["outcome"]
    evals = {e["step"]: e["eval_loss"] for e in json.loads((out / "training_log.json").read_text())["eval"]}
    assert outcome["ended"] == "early_stopping" and outcome["step"] < 60
    assert outcome["kept_step"] == min((s for s in evals if s <= outcome["step"]), key=evals.get)
    assert outcome["best_eval_loss"] == round(min(evals.values()), 4)
    assert "early stopping at step" in (out / "README.md").read_text()


# ---- two processes ----------------------------------------------------------------------------------------------
def train_two_processes(out: Path, *options: str) -> subprocess.CompletedProcess:
    """`recipes/train.py` on the tiny recipe under `accelerate launch` with two gloo CPU processes, no epoch limit."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "recipes/accelerate_configs/cpu-2proc.yaml"), "--num_cpu_threads_per_process", "1",
           str(ROOT / "recipes/train.py"), "--config", str(TINY), "--output_dir", str(out), "--max_steps", "-1",
           "--num_train_epochs", "1000", *options, "--save_strategy", "no", "--per_device_train_batch_size", "8",
           "--disable_tqdm", "true"]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_two_gloo_processes_agree_on_the_horizon(tmp_path):
    """Both ranks step the same schedule (rank 0's horizon, broadcast) and the run ends decayed."""
    out = tmp_path / "ddp"
    proc = train_two_processes(out, "--max_train_minutes", "0.15", "--evals_per_run", "4")
    info = json.loads((out / "training_info.json").read_text())
    assert info["world_size"] == 2 and info["schedule"]["fitted"]
    assert info["max_steps"] <= info["schedule"]["horizon_steps"]
    logged = lrs(out)
    assert logged[-1][1] < 0.1 * max(lr for _, lr in logged)
    # a rank whose horizon differed would have stopped at another step: the collective calls would then hang
    assert "end of the schedule" in proc.stderr


@pytest.mark.slow
def test_two_gloo_processes_stop_together_at_the_time_cap(tmp_path):
    """With the schedule not fitted, `max_train_minutes` alone stops the run: the ranks agree on the step (the
    decision is all-reduced), so neither waits forever in a collective call of a step the other never takes."""
    out = tmp_path / "ddp-cap"
    proc = train_two_processes(out, "--max_train_minutes", "0.1", "--fit_schedule_to_budget", "false")
    # rank 0 logs the stop (the other rank logs warnings only); the exit within the timeout is the agreement
    assert len(re.findall(r"max_train_minutes=0\.1 reached at step \d+", proc.stderr)) == 1
    info = json.loads((out / "training_info.json").read_text())
    assert info["world_size"] == 2 and not info["schedule"].get("fitted")
