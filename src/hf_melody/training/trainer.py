"""Training: `train()` runs one job around the transformers Trainer, from a recipe, a dict or the argument
dataclasses, in plain phases: seed and logging -> resume detection -> data -> model -> trainer -> train -> evaluate
-> save the bundle and its card -> push.

Examples:
    >>> import hf_melody
    >>> metrics = hf_melody.train("recipes/tiny-debug.yaml", max_steps=20)                # doctest: +SKIP
    >>> metrics = hf_melody.train({"dataset": "path/to/midi", "max_steps": 300})           # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerState, default_data_collator, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..data.arguments import DataArguments
from ..data.corpora import iter_midi_folder, load_melodies
from ..data.dataset import build_dataset, dataset_stats, split_melodies, split_summary
from ..data.hf_datasets import looks_like_hub_id
from ..data.music21_corpora import MUSIC21_CORPORA
from ..data.prepared import block_length, find_prepared, load_prepared
from ..errors import ConfigError
from ..hub import (
    check_hub_access,
    default_generation_config,
    load_model,
    load_tokenizer,
    push_bundle_to_hub,
    save_bundle,
)
from ..modeling.presets import build_model, num_parameters
from ..parser import ConfigSource
from ..tokenizer import MelodyTokenizer
from .arguments import MelodyTrainingArguments, ModelArguments, training_parser
from .callbacks import BundleCheckpointCallback, JsonLogCallback, stopping_callbacks, write_training_log
from .checkpoints import AtomicCheckpointTrainer, remove_unfinished_checkpoints
from .runs import (
    LOCK_FILE,
    check_output_dir,
    check_same_run,
    clear_output_dir,
    finished_step,
    lock_output_dir,
    run_fingerprint,
    run_outcome,
    whole_run_train_loss,
)
from .schedule import BudgetScheduleCallback, BudgetTrainer, budget_schedule
from .tracking import MelodyTrackingCallback, tokens_per_note

logger = logging.getLogger(__name__)

TrainingConfig = tuple[ModelArguments, DataArguments, MelodyTrainingArguments]


def parse_args(args: list[str] | None = None) -> TrainingConfig:
    """Parse `--config recipe.yaml` (defaults) plus command-line overrides into the three argument objects.

    Unknown keys (in the YAML or on the command line), abbreviations, wrong types and impossible values raise
    `ConfigError` before any work starts.

    Examples:
        >>> model_args, data_args, training_args = parse_args(["--config", "recipes/tiny-debug.yaml"])  # doctest: +SKIP
    """
    model_args, data_args, training_args = training_parser().parse_args_and_config(args)
    training_args = _bf16_fallback(training_args)
    validate(model_args, data_args, training_args)
    return model_args, data_args, training_args


def load_training_config(*config, **overrides) -> TrainingConfig:
    """The three argument objects from a YAML path, a dict, or the dataclasses themselves (checked alike).

    Examples:
        >>> model_args, data_args, training_args = load_training_config("recipes/tiny-debug.yaml", max_steps=5)
        ... # doctest: +SKIP
    """
    if len(config) == 1 and isinstance(config[0], tuple | list):
        config = tuple(config[0])
    if len(config) == 3:
        if overrides:
            raise ConfigError(f"keyword overrides ({', '.join(overrides)}) go with a YAML path or a dict; with the "
                              "dataclasses, set the fields instead")
        return _checked_types(config)
    if len(config) > 1:
        raise ConfigError(f"train() takes one config (a YAML path or a dict) or the three argument dataclasses, "
                          f"got {len(config)} arguments")
    source: ConfigSource = config[0] if config else None
    return training_parser().parse_config(source, **overrides)


def _checked_types(config) -> TrainingConfig:
    for value, cls in zip(config, (ModelArguments, DataArguments, MelodyTrainingArguments), strict=True):
        if not isinstance(value, cls):
            raise ConfigError(f"train(model_args, data_args, training_args): got a {type(value).__name__} where a "
                              f"{cls.__name__} goes")
    return tuple(config)


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere bf16 autocast is slower than fp32."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def _bf16_fallback(training_args):
    """`training_args` with bf16 off when it was asked for on a CPU without native bfloat16 (logged, not fatal)."""
    if training_args.bf16 and training_args.use_cpu and not cpu_supports_bf16():
        logger.warning("bf16 was requested but this CPU has no native bfloat16 (AVX512-BF16/AMX): training in fp32")
        return dataclasses.replace(training_args, bf16=False)
    return training_args


def validate(model_args: ModelArguments, data_args: DataArguments, training_args) -> None:
    """The checks that span the three objects or need the file system (each object checks itself on creation).

    Examples:
        >>> validate(ModelArguments(n_positions=128), DataArguments(max_length=256), MelodyTrainingArguments())
        Traceback (most recent call last):
        ...
        hf_melody.errors.ConfigError: max_length=256 is larger than the model's n_positions=128; lower max_length \
or raise n_positions
    """
    model_args.__post_init__()  # again: a caller may have changed a field since
    data_args.__post_init__()
    n_pos = model_args.n_positions or data_args.max_length
    if data_args.max_length > n_pos:
        raise ConfigError(f"max_length={data_args.max_length} is larger than the model's n_positions={n_pos}; "
                          f"lower max_length or raise n_positions")
    if data_args.streaming and training_args.max_steps <= 0:
        raise ConfigError("streaming datasets have no length: set max_steps")
    for spec in data_args.dataset:
        if spec.split("/")[0] not in MUSIC21_CORPORA and not Path(spec).exists() and not looks_like_hub_id(spec):
            raise ConfigError(f"dataset {spec!r} is neither a corpus ({', '.join(MUSIC21_CORPORA)}) nor an "
                              "existing MIDI folder or data file, nor a Hub dataset id (org/name); fix the name or "
                              "the path")
    if data_args.bpe_vocab_size is not None and model_args.init_from is None:
        base = MelodyTokenizer().vocab_size
        if data_args.bpe_vocab_size <= base:
            raise ConfigError(f"bpe_vocab_size={data_args.bpe_vocab_size} must be larger than the base vocabulary "
                              f"({base}); raise it (e.g. 500) or remove it to train without BPE")
    check_output_dir(training_args.output_dir)
    resume = training_args.resume_from_checkpoint
    if resume is not None and not Path(resume).is_dir():
        raise ConfigError(f"resume_from_checkpoint={resume!r}: no such checkpoint folder; omit it to resume "
                          "automatically from the last checkpoint in output_dir")


def set_dropout(model, p: float) -> None:
    """Use dropout `p` in a loaded GPT-2 (its modules were built with the probability of its own training)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    for key in ("resid_pdrop", "embd_pdrop", "attn_pdrop"):
        setattr(model.config, key, p)










def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest `checkpoint-<step>` folder of `output_dir` that was written completely, or None.

    The Trainer writes `trainer_state.json` last; a job killed while saving leaves a checkpoint without it, and
    resuming from that one would fail. Such folders are skipped (with a warning).
    """
    folder = Path(output_dir)
    steps = []
    for p in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        step = p.name[len(PREFIX_CHECKPOINT_DIR) + 1:]
        if p.is_dir() and step.isdigit():
            steps.append((int(step), p))
    for _, p in sorted(steps, reverse=True):
        if (p / "trainer_state.json").is_file():
            return str(p)
        logger.warning("%s has no trainer_state.json (the job stopped while saving it); not resuming from it", p)
    return None


def train(*config, **overrides) -> dict[str, Any]:
    """Run one training job: data -> model -> Trainer -> bundle (model, `miditok.json`, card) in `output_dir`.

    `config` is a recipe YAML path, a dict of recipe keys, or the three argument objects (`ModelArguments`,
    `DataArguments`, `MelodyTrainingArguments`); keyword arguments override keys of a path or dict. Every form
    goes through the same checks as `recipes/train.py`. Resumes from the last complete checkpoint in `output_dir`
    (or `resume_from_checkpoint`) and refuses an `output_dir` that holds another run.

    Returns the final metrics: `train_loss`, `eval_loss`, `eval_perplexity`, and the Trainer's.

    Examples:
        >>> import hf_melody
        >>> metrics = hf_melody.train("recipes/tiny-debug.yaml", output_dir="out/tiny", max_steps=20)  # doctest: +SKIP
        >>> metrics["eval_loss"]                                                   # doctest: +SKIP
        3.1
        >>> hf_melody.train({"dataset": "path/to/midi", "preset": "original", "max_steps": 300})  # doctest: +SKIP
    """
    model_args, data_args, training_args = load_training_config(*config, **overrides)
    # 1. seed, logging, and the checks that need the file system
    data_args, training_args = _setup(model_args, data_args, training_args)
    # 2. the folder's lock (one run at a time), Hub access and resume detection: refuse what would fail later,
    #    before any work
    hub_repo = None
    if training_args.push_to_hub and training_args.should_save:
        hub_repo = check_hub_access(training_args.hub_model_id or Path(training_args.output_dir).name,
                                    token=training_args.hub_token)
    created = not os.path.exists(training_args.output_dir)
    lock = lock_output_dir(training_args.output_dir) if training_args.should_save else None
    if lock is not None:  # ours alone now: a checkpoint a crashed save left unfinished goes
        remove_unfinished_checkpoints(training_args.output_dir)
    try:
        return _train(model_args, data_args, training_args, hub_repo)
    finally:
        if lock is not None:
            lock.close()
            if created and os.listdir(training_args.output_dir) == [LOCK_FILE]:  # refused before any work
                shutil.rmtree(training_args.output_dir, ignore_errors=True)


def _train(model_args: ModelArguments, data_args: DataArguments, training_args, hub_repo) -> dict[str, Any]:
    tokenizer = load_tokenizer(model_args.init_from) if model_args.init_from else MelodyTokenizer()
    run = run_fingerprint(model_args, data_args, training_args, tokenizer)
    last_checkpoint = _detect_resume(training_args, run)
    # 3. data (the main process converts and caches; the others then read the cache)
    dsd, tokenizer, data_report = _load_data(model_args, data_args, training_args, tokenizer)
    # 4. model
    checkpoint = training_args.resume_from_checkpoint or last_checkpoint
    model, finished = _build_model(model_args, data_args, training_args, tokenizer, checkpoint)
    # 5. trainer
    info = {"preset": model_args.init_from or model_args.preset, "dataset": data_args.dataset,
            "exclude": data_args.exclude, "run": run}
    trainer = _build_trainer(model, tokenizer, dsd, training_args, info)
    # 6. train (on resume, the Trainer restores the log history of the checkpoint: losses cover the whole run)
    metrics = _run_training(trainer, checkpoint, finished)
    # 7. evaluate
    if trainer.eval_dataset is not None:
        eval_metrics = trainer.evaluate()
        eval_metrics["eval_perplexity"] = math.exp(min(eval_metrics["eval_loss"], 50))
        metrics.update(eval_metrics)
    # 8. save the bundle + card (main process only)
    if trainer.is_world_process_zero():
        info.update(load_name=hub_repo or str(training_args.output_dir), data_report=data_report)
        _save(trainer, tokenizer, training_args, info, metrics)
    trainer.accelerator.wait_for_everyone()
    # 9. push
    if training_args.push_to_hub and trainer.is_world_process_zero():
        push_bundle_to_hub(training_args.output_dir, hub_repo, private=bool(training_args.hub_private_repo),
                           token=training_args.hub_token)
    return metrics


def _setup(model_args: ModelArguments, data_args: DataArguments, training_args):
    """Seed and logging; bf16 off where the CPU lacks it; the split seed resolved; `validate`."""
    set_seed(training_args.seed)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
                        if training_args.should_log else logging.WARNING)
    training_args = _bf16_fallback(training_args)
    if data_args.split_seed is None:  # the split follows data_seed unless split_seed says otherwise
        data_args = dataclasses.replace(data_args, split_seed=training_args.data_seed or 0)
    validate(model_args, data_args, training_args)
    return data_args, training_args


def _detect_resume(training_args, run: dict) -> str | None:
    """The last complete checkpoint or None; `ConfigError` for another run in `output_dir`."""
    last_checkpoint = None
    if os.path.isdir(training_args.output_dir) and training_args.resume_from_checkpoint is None:
        if training_args.overwrite_output_dir:
            if training_args.should_save:
                clear_output_dir(training_args.output_dir)
        else:
            last_checkpoint = last_complete_checkpoint(training_args.output_dir)
            check_same_run(training_args.output_dir, run, last_checkpoint)
            if last_checkpoint:
                logger.info("resuming from %s", last_checkpoint)
    return last_checkpoint


def _load_data(model_args: ModelArguments, data_args: DataArguments, training_args, tokenizer):
    """`(packed DatasetDict, tokenizer, one-line data report)`: a prepared folder, a stream, or melodies read,
    split, augmented, tokenized (BPE trained first when asked) and packed."""
    prepared = find_prepared(data_args.dataset)
    with training_args.main_process_first(desc="dataset preparation"):
        if prepared is not None:  # a folder written by `hf-melody prepare`: its blocks and its tokenizer
            dsd, tokenizer = load_prepared(prepared, tokenizer if model_args.init_from else None,
                                           data_args.bpe_vocab_size, data_args.streaming)
            data_args.max_length = block_length(dsd)
            return dsd, tokenizer, f"prepared dataset {prepared}"
        if data_args.streaming:
            sources = data_args.dataset

            def melodies():  # re-read the folders lazily on every pass
                for s in sources:
                    yield from (iter_midi_folder(s, progress=False) if Path(s).is_dir()
                                else load_melodies(s, progress=False)[0])

            return build_dataset(melodies, tokenizer, data_args, streaming=True), tokenizer, "streaming"
        melodies, report = load_melodies(data_args.dataset, num_proc=data_args.num_proc, exclude=data_args.exclude,
                                         columns=data_args.column_map,
                                         progress=training_args.should_log)
        parts = split_melodies(melodies, data_args.validation_ratio, data_args.test_ratio, data_args.seed)
        if data_args.bpe_vocab_size and not tokenizer.is_bpe:
            tokenizer.train_bpe(data_args.bpe_vocab_size, parts["train"])
        dsd = build_dataset(melodies, tokenizer, data_args, num_proc=data_args.num_proc)
        logger.info("data: %s; blocks/tokens %s", report.summary(), dataset_stats(dsd))
        return dsd, tokenizer, f"{report.summary()}; split {split_summary(parts)}"


def _build_model(model_args: ModelArguments, data_args: DataArguments, training_args, tokenizer,
                 checkpoint: str | None):
    """`(model, finished step or None)`: a fresh preset or the `init_from` bundle; the checkpoint's weights when
    it already reached the end of the run."""
    if model_args.init_from:
        model = load_model(model_args.init_from)
        if model.config.n_positions < data_args.max_length:
            raise ConfigError(f"max_length={data_args.max_length} exceeds {model_args.init_from}'s "
                              f"n_positions={model.config.n_positions}")
        set_dropout(model, model_args.dropout)
    else:
        model = build_model(model_args.preset, tokenizer, model_args.n_positions or data_args.max_length,
                            model_args.dropout, seed=training_args.seed,
                            activation_function=model_args.activation_function)
    finished = finished_step(checkpoint, training_args.max_steps)
    if finished is not None:  # the run already reached its end: take the weights, train no further step
        logger.info("%s is at step %d, the end of the run: nothing left to train", checkpoint, finished)
        model = load_model(checkpoint)
    model.generation_config = default_generation_config(tokenizer)  # so that every checkpoint-N carries it
    model.config.hf_melody = {"library": "hf_melody", "task": "melody-generation", "tokenizer_file": "miditok.json"}
    logger.info("model: %s, %d parameters", model_args.init_from or model_args.preset, num_parameters(model))
    return model, finished


def _build_trainer(model, tokenizer, dsd, training_args, info: dict[str, Any]) -> Trainer:
    """The Trainer with the JSON log, bundle checkpoints and early stopping; it never pushes (step 9 does)."""
    eval_ds = dsd.get("validation")
    if eval_ds is None and training_args.eval_strategy != "no":
        raise ConfigError("the validation split is empty; add melodies or raise validation_ratio")
    trainer_args = copy.copy(training_args)
    trainer_args.push_to_hub = False  # the finished bundle is pushed after the access check of step 2
    # the learning-rate schedule sized to max_train_minutes, the evaluation interval to the run (issue 29); both
    # trainers write checkpoint-N atomically (issue 27)
    schedule = budget_schedule(training_args)
    trainer_cls, extra = (BudgetTrainer, {"budget_schedule": schedule}) if schedule else (AtomicCheckpointTrainer, {})
    sizing = BudgetScheduleCallback(training_args.max_train_minutes, training_args.evals_per_run, info)
    trainer = trainer_cls(model=model, args=trainer_args, train_dataset=dsd["train"], eval_dataset=eval_ds,
                          data_collator=default_data_collator, **extra,
                          callbacks=[JsonLogCallback(), sizing, BundleCheckpointCallback(tokenizer, info),
                                     *stopping_callbacks(training_args)])
    # first, so that the trackers' callbacks find eval_bits_per_note in the same log
    tracking = MelodyTrackingCallback(
        tokenizer, tokens_per_note(eval_ds, tokenizer),
        training_args.log_melodies, seed=training_args.seed)
    tracking.trackers = list(trainer.callback_handler.callbacks)
    trainer.callback_handler.callbacks.insert(0, tracking)
    return trainer


def _run_training(trainer: Trainer, checkpoint: str | None, finished: int | None) -> dict[str, Any]:
    """Train (resuming from `checkpoint`), or only restore the state of a finished one; the metrics."""
    if finished is None:
        metrics = dict(trainer.train(resume_from_checkpoint=checkpoint).metrics)
    else:
        trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
        metrics = {}
    metrics["train_loss"] = whole_run_train_loss(trainer.state.log_history) or metrics.get("train_loss")
    return metrics


def _save(trainer: Trainer, tokenizer, training_args, info: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Write the log and the bundle (weights, tokenizer, `training_info.json`, model card) into `output_dir`."""
    write_training_log(training_args.output_dir, trainer.state.log_history)
    info.update({
        "max_steps": trainer.state.global_step,
        "outcome": run_outcome(trainer.state, trainer.callback_handler.callbacks, training_args.max_train_minutes,
                               bool(training_args.load_best_model_at_end)),
        "command": " ".join(sys.argv) if sys.argv else "",
        "final_eval_loss": metrics.get("eval_loss"),
        "final_train_loss": metrics.get("train_loss"),
        "num_parameters": num_parameters(trainer.model),
        "world_size": training_args.world_size,
        "global_batch_size": training_args.per_device_train_batch_size * training_args.world_size
        * training_args.gradient_accumulation_steps,
    })
    save_bundle(trainer.model, tokenizer, training_args.output_dir, training_info=info)
