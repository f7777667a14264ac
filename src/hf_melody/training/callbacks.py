"""Trainer callbacks of a training run: early stopping and the wall-time cap (`stopping_callbacks`), the JSON
training log, and the bundle written next to every checkpoint (`BundleCheckpointCallback`).

Examples:
    >>> from hf_melody.training.callbacks import TimeLimitCallback
    >>> TimeLimitCallback(minutes=15).minutes
    15
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback

from ..bundle import TRAINING_INFO, TRAINING_LOG
from ..utils import atomic_write_text

logger = logging.getLogger(__name__)

def stopping_callbacks(training_args) -> list[TrainerCallback]:
    """The stopping callbacks the arguments ask for: `EarlyStoppingCallback` for `early_stopping_patience`,
    `TimeLimitCallback` for `max_train_minutes` (none when both are unset)."""
    patience = getattr(training_args, "early_stopping_patience", None)
    minutes = getattr(training_args, "max_train_minutes", None)
    return ([EarlyStoppingCallback(early_stopping_patience=patience)] if patience else []) + (
        [TimeLimitCallback(minutes)] if minutes else [])


class TimeLimitCallback(TrainerCallback):
    """Stops training once `minutes` of wall time have passed since training began (checked after each step).

    Examples:
        >>> Trainer(..., callbacks=[TimeLimitCallback(15)])                  # doctest: +SKIP
    """

    def __init__(self, minutes: float):
        self.minutes = minutes
        self.end: float | None = None
        self.stopped_at: int | None = None  # the step it stopped the run at, if it did

    def on_train_begin(self, args, state, control, **kwargs):
        self.end = time.monotonic() + 60 * self.minutes

    def on_step_end(self, args, state, control, **kwargs):
        if self.end is None or control.should_training_stop:
            return
        over = time.monotonic() > self.end
        if _world_size() > 1:  # every rank stops at the same step (a rank left alone would wait forever)
            import torch
            import torch.distributed as dist

            flag = torch.tensor([int(over)])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            over = bool(flag.item())
        if over:
            logger.info("max_train_minutes=%g reached at step %d: stopping", self.minutes, state.global_step)
            control.should_training_stop = True
            self.stopped_at = state.global_step


def _world_size() -> int:
    """Processes of the running distributed job (1 without one)."""
    try:
        import torch.distributed as dist
    except ImportError:  # a torch build without distributed support
        return 1
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class JsonLogCallback(TrainerCallback):
    """Writes the Trainer's log history (train loss, validation loss) to `training_log.json` as it grows."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero:
            write_training_log(args.output_dir, state.log_history)


def write_training_log(output_dir: str | os.PathLike, history: list[dict]) -> Path:
    """Save `history` split into train and eval records (atomically)."""
    train = [h for h in history if "loss" in h]
    evals = [h for h in history if "eval_loss" in h]
    body = {"train": train, "eval": evals, "history": history}
    return atomic_write_text(Path(output_dir) / TRAINING_LOG, json.dumps(body, indent=1))


class BundleCheckpointCallback(TrainerCallback):
    """Makes every `checkpoint-N` a loadable bundle: writes `miditok.json` and `training_info.json` beside the
    weights, config and generation config that the Trainer saves."""

    def __init__(self, tokenizer, info: dict[str, Any]):
        self.tokenizer, self.info = tokenizer, info

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if folder.is_dir():
            self.tokenizer.save_pretrained(folder)
            info = {**self.info, "max_steps": state.global_step}
            atomic_write_text(folder / TRAINING_INFO, json.dumps(info, indent=2, default=str))
