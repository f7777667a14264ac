"""Output folders of training runs: what run a folder holds, refusing another one, exact resume, checkpoint bundles.

Examples:
    >>> from hf_melody.training.runs import check_same_run, run_fingerprint
    >>> run = run_fingerprint(model_args, data_args, training_args, tokenizer)     # doctest: +SKIP
    >>> check_same_run("out/my-run", run, checkpoint=None)  # ConfigError: another run   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

from ..bundle import TRAINING_INFO, TRAINING_LOG
from ..data.arguments import DataArguments
from ..errors import ConfigError
from ..modeling.presets import PRESETS
from ..utils import LOCK_FILE as LOCK_FILE  # where training's lock file is named, as before
from ..utils import check_utf8_path, lock_folder
from .arguments import ModelArguments


def check_output_dir(output_dir: str | os.PathLike) -> None:
    """`ConfigError` if `output_dir` (or a parent of it) is an existing file rather than a folder; `OutputError` if
    its name is not UTF-8 (the card could not be written at the end: refused before training instead)."""
    check_utf8_path(output_dir, "output_dir", "rename it or choose another --output_dir (a UTF-8 name)")
    path = Path(output_dir)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            raise ConfigError(f"output_dir={str(output_dir)!r}: {p} is a file, not a folder; choose another "
                              "--output_dir")
        if p.exists():
            return


def lock_output_dir(output_dir: str | os.PathLike) -> IO | None:
    """Take the run's lock on `output_dir` (created if missing; `hf_melody.utils.lock_folder`, file `LOCK_FILE`)
    at once, or raise `ConfigError` naming the run that holds it: two runs writing one folder would mix their
    checkpoints. Close the returned file to release it (None where the system has no `fcntl`: no lock).

    Examples:
        >>> lock = lock_output_dir("out/my-run")                                          # doctest: +SKIP
        >>> lock_output_dir("out/my-run")               # while it is held                # doctest: +SKIP
        Traceback (most recent call last):
        hf_melody.errors.ConfigError: output_dir='out/my-run' is in use by another training run (pid 4242 ...); ...
    """
    return lock_folder(output_dir, f"output_dir={str(output_dir)!r} is in use by another training run",
                       "wait for it to finish or choose another --output_dir", error=ConfigError)


def run_fingerprint(model_args: ModelArguments, data_args: DataArguments, training_args, tokenizer) -> dict:
    """What makes two runs the same run: model, tokenizer and data settings (not the number of steps).

    Recorded as `run` in `training_info.json` (of the bundle and of every checkpoint) and compared before resuming.
    """
    import hashlib

    vocab = sorted(tokenizer.miditok.vocab.items()) if hasattr(tokenizer, "miditok") else []
    return {
        "model": model_args.init_from or model_args.preset,
        "n_positions": model_args.n_positions or data_args.max_length,
        "tokenizer": hashlib.sha1(json.dumps(vocab).encode()).hexdigest()[:16],
        "vocab_size": tokenizer.vocab_size,
        "bpe_vocab_size": data_args.bpe_vocab_size,
        "dataset": _absolute(data_args.dataset),
        "exclude": data_args.exclude,
        "max_length": data_args.max_length,
        "augment_semitones": data_args.augment_semitones,
        "validation_ratio": data_args.validation_ratio,
        "test_ratio": data_args.test_ratio,
        "use_style_tokens": data_args.use_style_tokens,
        "data_seed": data_args.split_seed if data_args.split_seed is not None else training_args.data_seed or 0,
    }


def _absolute(specs: list[str]) -> list[str]:
    """Dataset specs with folders made absolute, so that the same folder compares equal from any working dir."""
    return [str(Path(d).resolve()) if Path(d).exists() else d for d in specs]


def _recorded_run(output_dir: Path, checkpoint: str | None) -> tuple[dict | None, Path | None]:
    """The run fingerprint recorded in `output_dir` (bundle first, then its last checkpoint), with its file."""
    for folder in (output_dir, Path(checkpoint) if checkpoint else None):
        path = folder / TRAINING_INFO if folder else None
        if path is not None and path.is_file():
            try:
                info = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(info, dict):
                return info, path
    return None, None


def check_same_run(output_dir: str | os.PathLike, run: dict, checkpoint: str | None) -> None:
    """`ConfigError` if `output_dir` holds a run other than `run` (another preset, tokenizer, data or config).

    Older folders without a recorded fingerprint are compared on what they do record: the preset and datasets of
    `training_info.json`, and the model shape of the checkpoint's `config.json`.
    """
    output_dir = Path(output_dir)
    info, path = _recorded_run(output_dir, checkpoint)
    fix = "pass --overwrite_output_dir true to replace it, or choose another --output_dir"
    if info is not None:
        before = info.get("run") or {k: info[k] for k in ("dataset", "exclude") if k in info}
        if "run" not in info and "preset" in info:
            before["model"] = info["preset"]
        if isinstance(before.get("dataset"), list):
            before["dataset"] = _absolute([str(d) for d in before["dataset"]])
        for key, value in before.items():
            if key in run and run[key] != value:
                raise ConfigError(f"{output_dir} holds another run ({path.name} records {key}={value!r}, this run "
                                  f"has {key}={run[key]!r}); {fix}")
    if checkpoint and (Path(checkpoint) / "config.json").is_file() and not (info and "run" in info):
        config = json.loads((Path(checkpoint) / "config.json").read_text())
        # the shape a preset gives (a fine-tuned bundle keeps the shape of the bundle it started from)
        want = {**PRESETS[run["model"]], "n_positions": run["n_positions"]} if run["model"] in PRESETS else {}
        want["vocab_size"] = run["bpe_vocab_size"] or run["vocab_size"]
        for key, value in want.items():
            if config.get(key) != value:
                raise ConfigError(f"{output_dir} holds another run ({Path(checkpoint).name}/config.json has "
                                  f"{key}={config.get(key)!r}, this run needs {value!r}); {fix}")


def clear_output_dir(output_dir: str | os.PathLike) -> None:
    """Remove the checkpoints, log and run record of a previous run (for `--overwrite_output_dir true`)."""
    import shutil

    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    folder = Path(output_dir)
    for p in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        if p.is_dir():
            shutil.rmtree(p)
    for name in (TRAINING_LOG, TRAINING_INFO):
        (folder / name).unlink(missing_ok=True)


def whole_run_train_loss(history: list[dict]) -> float | None:
    """Mean training loss over every step of the run (all sessions): logged losses weighted by the steps each
    covers. `None` if nothing was logged."""
    total, steps, last = 0.0, 0, 0
    for h in sorted((h for h in history if "loss" in h and "step" in h), key=lambda h: h["step"]):
        width = h["step"] - last
        if width > 0:
            total, steps, last = total + h["loss"] * width, steps + width, h["step"]
    return total / steps if steps else None


def run_outcome(state, callbacks, minutes: float | None = None, load_best: bool = False) -> dict:
    """How a finished run ended and which checkpoint its bundle holds (`training_info.json`'s `outcome`, a row of
    the model card): the end of the schedule sized to the budget, the time cap, early stopping or the planned steps;
    the best checkpoint (step, validation loss, out of how many evaluations) when `load_best`.

    Examples:
        >>> run_outcome(trainer.state, trainer.callback_handler.callbacks, 15, True)["summary"]  # doctest: +SKIP
        'the end of the schedule sized to max_train_minutes=15 at step 180 (learning rate decayed); kept step 165...'
    """
    import re

    from transformers import EarlyStoppingCallback

    from .callbacks import TimeLimitCallback
    from .schedule import BudgetScheduleCallback

    step = int(state.global_step)
    ended, why = "steps", f"the planned {step} steps"
    for cb in callbacks:  # in the order the reasons win when several apply at the same step
        if isinstance(cb, EarlyStoppingCallback) and \
                getattr(cb, "early_stopping_patience_counter", 0) >= cb.early_stopping_patience:
            ended, why = "early_stopping", (f"early stopping at step {step} ({cb.early_stopping_patience} "
                                            "evaluations without a better validation loss)")
    for kind, cls, text in (("time_limit", TimeLimitCallback, "the time cap max_train_minutes={m:g} at step {s}"),
                            ("horizon", BudgetScheduleCallback,
                             "the end of the schedule sized to max_train_minutes={m:g} at step {s} (learning rate "
                             "decayed)")):
        for cb in callbacks:
            if isinstance(cb, cls) and getattr(cb, "stopped_at", None) is not None:
                ended, why = kind, text.format(m=minutes or 0, s=cb.stopped_at)
    evals = {h["step"]: h["eval_loss"] for h in state.log_history if "eval_loss" in h and "step" in h}
    record: dict = {"ended": ended, "step": step, "evaluations": len(evals)}
    best = re.search(r"checkpoint-(\d+)$", str(state.best_model_checkpoint or ""))
    if load_best and best and state.best_metric is not None:
        record.update(kept_step=int(best.group(1)), best_eval_loss=round(float(state.best_metric), 4))
        kept = (f"kept step {record['kept_step']}, validation loss {record['best_eval_loss']:.4f}, the best of "
                f"{len(evals)} evaluations")
    else:
        kept = f"kept step {step}" + (f" ({len(evals)} evaluations)" if evals else "")
    record["summary"] = f"{why}; {kept}"
    return record


def finished_step(checkpoint: str | None, max_steps: int) -> int | None:
    """The step of `checkpoint` if it already reached the end of the run (`max_steps`, or the planned steps of an
    epoch-based run), else None: resuming from it must not train a step past the end."""
    state_path = Path(checkpoint) / "trainer_state.json" if checkpoint else None
    if state_path is None or not state_path.is_file():
        return None
    state = json.loads(state_path.read_text())
    step, planned = int(state.get("global_step", 0)), int(state.get("max_steps") or 0)
    end = max_steps if max_steps > 0 else planned
    return step if end > 0 and step >= end else None


