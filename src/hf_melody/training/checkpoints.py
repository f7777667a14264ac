"""Checkpoints written atomically: the Trainer saves `checkpoint-N` into a hidden sibling folder, which is renamed
into place only once everything (weights, optimizer, scheduler, RNG states, `trainer_state.json`, the bundle's
`miditok.json`) is written. A crash, a kill or a full disk leaves no half-written `checkpoint-N` for resume to pick;
a full disk is told in one line (`DiskFullError`).

Examples:
    >>> from hf_melody.training.checkpoints import AtomicCheckpointTrainer
    >>> trainer = AtomicCheckpointTrainer(model=model, args=args, train_dataset=ds)        # doctest: +SKIP
    >>> trainer.train()            # out/checkpoint-10 appears whole, or not at all            # doctest: +SKIP
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

from transformers import Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

from ..utils import disk_full_told_plainly, give_usual_permissions, publish_folder
from .callbacks import BundleCheckpointCallback

STAGING_SUFFIX = ".saving"
"""`<output_dir>/.checkpoint-N.saving/checkpoint-N` is where checkpoint N is written before its rename. The name
is the same in every process of a distributed run (each writes its RNG state there)."""


def staging_root(run_dir: str | os.PathLike, step: int) -> Path:
    """The hidden folder of `run_dir` that checkpoint `step` is written in before it is renamed into place.

    Examples:
        >>> staging_root("out", 10).name
        '.checkpoint-10.saving'
    """
    return Path(run_dir) / f".{PREFIX_CHECKPOINT_DIR}-{step}{STAGING_SUFFIX}"


def remove_unfinished_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Delete the staging folders of checkpoints that were never finished (a crash or a full disk mid-save); the
    run's `output_dir` lock guarantees that no live run is writing them. Returns what was removed.

    Examples:
        >>> remove_unfinished_checkpoints("out/my-run")                                       # doctest: +SKIP
        [PosixPath('out/my-run/.checkpoint-20.saving')]
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    stale = sorted(p for p in folder.glob(f".{PREFIX_CHECKPOINT_DIR}-*{STAGING_SUFFIX}") if p.is_dir())
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


class AtomicCheckpointTrainer(Trainer):
    """A `transformers.Trainer` whose checkpoints appear whole or not at all.

    `_save_checkpoint` lets the Trainer write everything into `staging_root(output_dir, step)`, runs the `on_save`
    callbacks there (so `BundleCheckpointCallback`'s tokenizer and `training_info.json` are inside before the
    rename), then renames the folder to `output_dir/checkpoint-N` and rotates old checkpoints
    (`save_total_limit`). A write that fails for lack of room raises `DiskFullError` naming the checkpoint, and the
    staging folder is removed.

    Examples:
        >>> trainer = AtomicCheckpointTrainer(model=model, args=args, train_dataset=ds)    # doctest: +SKIP
    """

    _staging: Path | None = None

    def _get_output_dir(self, trial) -> str:
        if self._staging is not None:  # the Trainer's own save code writes checkpoint-N under this folder
            return str(self._staging)
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        run_dir = Path(super()._get_output_dir(trial))
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging, final = staging_root(run_dir, self.state.global_step), run_dir / name
        try:
            with disk_full_told_plainly(final):
                if self.args.should_save:
                    shutil.rmtree(staging, ignore_errors=True)
                    staging.mkdir(parents=True)
                self.accelerator.wait_for_everyone()
                self._staging = staging
                try:
                    super()._save_checkpoint(model, trial)
                finally:
                    self._staging = None
                self.accelerator.wait_for_everyone()  # every process has written its part (RNG states)
                if self.args.should_save:
                    self._finish(staging / name, final)
        except BaseException:
            if self.args.should_save:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        if self.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)
            rotate_checkpoints(output_dir=str(run_dir), save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)
        self.accelerator.wait_for_everyone()

    def _finish(self, written: Path, final: Path) -> None:
        """Point the state at the final folder, add the bundle files of the `on_save` callbacks, rename."""
        best = self.state.best_model_checkpoint
        if best is not None and Path(best) == written:  # this checkpoint is the best: the Trainer saw it staged
            self.state.best_model_checkpoint = str(final)
            self.state.save_to_json(str(written / "trainer_state.json"))
        staged_args = copy.copy(self.args)
        staged_args.output_dir = str(written.parent)  # the callbacks find checkpoint-N here, before the rename
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, BundleCheckpointCallback):
                callback.on_save(staged_args, self.state, self.control)
        give_usual_permissions([written, *written.rglob("*")])  # safetensors writes 0600 files
        publish_folder(written, final)
