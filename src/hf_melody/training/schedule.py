"""A learning-rate schedule sized to the time budget: when `max_train_minutes` binds before the epochs (or
`max_steps`) do, the speed of the first steps sets how many steps fit, and warmup, cosine decay and the evaluation
interval are sized to that horizon, so the run ends decayed instead of being cut off mid-schedule (issue 29).

How: `BudgetTrainer` builds a `LambdaLR` around a `BudgetSchedule` (the learning-rate factor of each step, with a
horizon that can be reset); `BudgetScheduleCallback` times the first `MEASURE_STEPS` steps, sets the horizon to
the steps that fit in the rest of the budget (rank 0 decides, every rank takes its number), refines it at every
logging step and after each evaluation (whose cost it then includes), evaluates and saves at the horizon and stops
there. The schedule's fields
are saved in the checkpoint's `scheduler.pt`, so a resumed run keeps its horizon. What was done goes into the run's
`training_info.json` and model card (`schedule`).

Examples:
    >>> from hf_melody.training.schedule import BudgetSchedule
    >>> schedule = BudgetSchedule(horizon=100, warmup=0.1)
    >>> schedule(0), schedule(10), round(schedule(55), 2), schedule(100)
    (0.0, 1.0, 0.5, 0.0)
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any

from transformers import TrainerCallback

from .checkpoints import AtomicCheckpointTrainer

logger = logging.getLogger(__name__)

MEASURE_STEPS = 10
"""Steps timed before the horizon is first set (they run on the warmup ramp of the planned run)."""
SAFETY = 0.95
"""Share of the remaining budget the horizon fills: the rest is for the final evaluation and save."""
MIN_INTERVAL = 5
"""The shortest evaluation/save interval `evals_per_run` sets: a run of a few dozen steps (a slow machine, a tiny
folder) would otherwise evaluate and checkpoint after every step and spend its budget on that."""
SHAPES = ("cosine", "linear")
"""`lr_scheduler_type`s the budget schedule reproduces; others keep the Trainer's own schedule."""


@dataclasses.dataclass
class BudgetSchedule:
    """The learning-rate factor of a step: linear warmup, then cosine (or linear) decay to 0 at `horizon`, 0 after.

    `warmup` below 1 is a share of the horizon (so it moves with it), else a number of steps. `decay` is the share
    of the steps after warmup that decay: 1 decays over all of them; below 1 the rate holds at the peak first and
    decays over the last `decay` of them (warmup-stable-decay). Every field is plain data, so
    `LambdaLR.state_dict()` saves it with the checkpoint and a resumed run gets the same horizon back.

    Examples:
        >>> schedule = BudgetSchedule(horizon=1000, warmup=0.05)
        >>> schedule.warmup_steps, schedule(1000)
        (50, 0.0)
        >>> schedule.horizon = 200                                   # the budget fits 200 steps: decay by then
        >>> schedule.warmup_steps, round(schedule(105), 2)
        (10, 0.5)
        >>> held = BudgetSchedule(horizon=200, warmup=10, decay=0.5)  # the peak until step 105, then decay
        >>> held(100), round(held(152), 1), held(200)
        (1.0, 0.5, 0.0)
    """

    horizon: int
    warmup: float = 0.05
    shape: str = "cosine"
    decay: float = 1.0
    """Share of the steps after warmup over which the rate decays (the rest hold the peak, before them)."""
    planned: int | None = None
    """The steps the epochs or `max_steps` plan (the horizon never exceeds them)."""
    fitted: bool = False
    """Whether the horizon was measured (False: still the planned run)."""
    steps_per_second: float | None = None
    eval_steps: int | None = None
    """The evaluation and save interval scaled to the horizon (None: the arguments' own)."""

    @property
    def warmup_steps(self) -> int:
        return int(self.warmup) if self.warmup >= 1 else round(self.warmup * self.horizon)

    @property
    def decay_start(self) -> int:
        """The step the decay begins (the end of warmup unless `decay` < 1)."""
        warmup = self.warmup_steps
        return warmup + round((1.0 - self.decay) * max(0, self.horizon - warmup))

    def __call__(self, step: int) -> float:
        warmup = self.warmup_steps
        if step < warmup:
            return step / max(1, warmup)
        start = self.decay_start
        if step < start:
            return 1.0
        progress = min(1.0, (step - start) / max(1, self.horizon - start))
        return 1.0 - progress if self.shape == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))


class BudgetTrainer(AtomicCheckpointTrainer):
    """A `Trainer` whose learning-rate scheduler is a `LambdaLR` over `budget_schedule` (sized by the callback), with
    the atomic checkpoints of `AtomicCheckpointTrainer`.

    Examples:
        >>> trainer = BudgetTrainer(model=model, args=args, train_dataset=ds, budget_schedule=BudgetSchedule(1),
        ...                         callbacks=[BudgetScheduleCallback(minutes=15)])      # doctest: +SKIP
    """

    def __init__(self, *args, budget_schedule: BudgetSchedule, **kwargs):
        super().__init__(*args, **kwargs)
        self.budget_schedule = budget_schedule

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None:
            from torch.optim.lr_scheduler import LambdaLR

            s = self.budget_schedule
            s.planned = s.horizon = num_training_steps  # the planned run, until the first steps are timed
            s.warmup = float(self.args.warmup_steps or 0)
            s.decay = float(getattr(self.args, "decay_share", 1.0))
            self.lr_scheduler = LambdaLR(optimizer or self.optimizer, s)
            self._created_lr_scheduler = True  # the Trainer's own flag: rebuilt on a second train() call
        return self.lr_scheduler


def budget_schedule(training_args) -> BudgetSchedule | None:
    """The schedule to size, or None where the Trainer's own fits: no `max_train_minutes`, the option off, or an
    `lr_scheduler_type` other than cosine/linear.

    Examples:
        >>> budget_schedule(MelodyTrainingArguments(max_train_minutes=4)).shape        # doctest: +SKIP
        'cosine'
    """
    shape = str(getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type))
    if not getattr(training_args, "max_train_minutes", None) or not getattr(training_args, "fit_schedule_to_budget",
                                                                            False):
        if getattr(training_args, "decay_share", 1.0) < 1:
            logger.warning("decay_share=%g applies to the schedule sized to max_train_minutes only (with "
                           "fit_schedule_to_budget); this run uses the Trainer's own %s", training_args.decay_share,
                           shape)
        return None
    if shape not in SHAPES:
        logger.info("lr_scheduler_type=%s: the schedule is not sized to max_train_minutes (only %s are)", shape,
                    " and ".join(SHAPES))
        return None
    return BudgetSchedule(horizon=1, shape=shape)


def interval(steps: int, evals_per_run: int) -> int:
    """The evaluation/save interval of a run of `steps` steps: `evals_per_run` evaluations, at least `MIN_INTERVAL`
    steps apart (never more than the run).

    Examples:
        >>> interval(600, 12), interval(16, 12), interval(3, 12)
        (50, 5, 3)
    """
    return max(1, min(steps, max(MIN_INTERVAL, steps // evals_per_run)))


def _agree(value: int, device) -> int:
    """Rank 0's `value` on every rank (DDP), so that all ranks step the same learning rate."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return value
    import torch

    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.broadcast(t, src=0)
    return int(t.item())


class BudgetScheduleCallback(TrainerCallback):
    """Sizes a `BudgetTrainer`'s schedule to `minutes` (see the module), scales the evaluation/save interval to the
    run (`evals_per_run`), and writes what it did into `info["schedule"]` (the run's `training_info.json`).

    Without a `BudgetSchedule` (no time budget) it only scales the interval to the planned steps, so a folder of 20
    melodies is evaluated as often per run as one of 5,000.

    Examples:
        >>> BudgetScheduleCallback(minutes=4, evals_per_run=20).evals_per_run
        20
    """

    def __init__(self, minutes: float | None = None, evals_per_run: int | None = None,
                 info: dict[str, Any] | None = None, measure_steps: int = MEASURE_STEPS):
        self.minutes, self.evals_per_run, self.measure_steps = minutes, evals_per_run, measure_steps
        self.info = info if info is not None else {}
        self.schedule: BudgetSchedule | None = None
        self.fitting = False
        self.stopped_at: int | None = None  # the step it ended the run at (the horizon), if it did

    # -- the Trainer's events --------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        fns = getattr(lr_scheduler, "lr_lambdas", None) or [None]
        self.schedule = fns[0] if isinstance(fns[0], BudgetSchedule) else None
        self.start, self.start_step = time.monotonic(), state.global_step
        self.end = self.start + 60 * self.minutes if self.minutes else None
        s = self.schedule
        self.fitting = s is not None and not s.fitted  # a resumed run keeps the horizon its checkpoint saved
        if s is not None and s.fitted:
            logger.info("resumed: the learning-rate schedule keeps its horizon of %d steps", s.horizon)
            self._scale_intervals(state, s.eval_steps)
        elif s is None and self.evals_per_run:
            self._scale_intervals(state, interval(state.max_steps, self.evals_per_run))
        self._record(state)

    def on_step_end(self, args, state, control, **kwargs):
        s = self.schedule
        if s is None:
            return
        if self.fitting and not s.fitted and state.global_step - self.start_step >= self.measure_steps:
            self._fit(args, state)
        elif self.fitting and s.fitted and state.global_step < s.horizon and \
                state.global_step % max(1, int(state.logging_steps or 1)) == 0:
            self._fit(args, state)  # the machine's speed moves (other jobs): follow it, not only at evaluations
        if s.fitted and s.horizon <= state.global_step < state.max_steps and not control.should_training_stop:
            logger.info("step %d: the end of the schedule sized to max_train_minutes=%g: stopping", state.global_step,
                        self.minutes)
            control.should_training_stop = True
            self.stopped_at = state.global_step
            control.should_log = True
            if args.eval_strategy != "no":
                control.should_evaluate = True
            if args.save_strategy != "no":
                control.should_save = True

    def on_evaluate(self, args, state, control, **kwargs):
        if self.fitting and self.schedule is not None and self.schedule.fitted and \
                state.global_step < self.schedule.horizon:
            self._fit(args, state)  # the rate now includes what evaluations (and saves) cost

    def on_train_end(self, args, state, control, **kwargs):
        self.fitting = False
        self._record(state)

    # -- sizing ----------------------------------------------------------------------------------------------------
    def _fit(self, args, state) -> None:
        s = self.schedule
        now = time.monotonic()
        rate = (state.global_step - self.start_step) / max(now - self.start, 1e-9)
        horizon = state.global_step + int(rate * max(0.0, self.end - now) * SAFETY)
        horizon = _agree(max(state.global_step + 1, min(s.planned or horizon, horizon)), args.device)
        first = not s.fitted
        s.horizon, s.fitted, s.steps_per_second = horizon, True, round(rate, 3)
        if first:
            logger.info("%.2f steps/s over the first %d steps: %d steps fit in max_train_minutes=%g (planned %d); "
                        "warmup %d steps, decay to step %d", rate, self.measure_steps, horizon, self.minutes,
                        s.planned or 0, s.warmup_steps, horizon)
            if self.evals_per_run:
                s.eval_steps = interval(horizon, self.evals_per_run)
                self._scale_intervals(state, s.eval_steps)
        self._record(state)

    def _scale_intervals(self, state, interval: int | None) -> None:
        if interval:
            state.eval_steps = state.save_steps = interval
            state.logging_steps = min(state.logging_steps, interval)

    def _record(self, state) -> None:
        s = self.schedule
        planned = s.planned if s is not None else state.max_steps
        record: dict[str, Any] = {"planned_steps": planned, "eval_steps": state.eval_steps,
                                  "save_steps": state.save_steps}
        if s is None:
            record["summary"] = f"the Trainer's own over {planned} steps; evaluation every {state.eval_steps} steps"
        else:
            record.update(max_train_minutes=self.minutes, horizon_steps=s.horizon, warmup_steps=s.warmup_steps,
                          steps_per_second=s.steps_per_second, shape=s.shape, fitted=s.fitted)
            held = ""
            if s.decay < 1:
                record.update(decay_share=s.decay, decay_start=s.decay_start)
                held = f", the peak held to step {s.decay_start}"
            record["summary"] = (
                f"{s.shape} sized to max_train_minutes={self.minutes:g}: {s.steps_per_second} steps/s measured, "
                f"warmup {s.warmup_steps}{held} and decay to step {s.horizon} (of {planned} planned); evaluation "
                f"every {state.eval_steps} steps" if s.fitted else
                f"{s.shape} over the {planned} planned steps (the budget was never measured)")
        self.info["schedule"] = record
