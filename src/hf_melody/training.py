"""Training: config dataclasses, the YAML + command-line parser, and `train()` around the transformers Trainer.

Example:
    >>> from hf_melody.training import parse_args, train
    >>> model_args, data_args, training_args = parse_args(
    ...     ["--config", "recipes/tiny-debug.yaml", "--max_steps", "20"])         # doctest: +SKIP
    >>> train(model_args, data_args, training_args)                             # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainingArguments

from .bundle import TRAINING_LOG
from .errors import ConfigError
from .runs import (
    BundleCheckpointCallback,
    check_output_dir,
    check_same_run,
    clear_output_dir,
    finished_step,
    run_fingerprint,
    whole_run_train_loss,
)

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    """Which model to train.

    Args:
        preset: GPT-2 preset (`original`, `deeper-thinner`, `wider-shallower`, `small`, `base`).
        n_positions: context length of the model; defaults to `max_length`.
        dropout: dropout of embeddings, attention and residuals.
        init_from: a bundle (name, folder or Hub id) to fine-tune instead of a fresh model; its tokenizer is kept.
        activation_function: MLP activation of a fresh model (`gelu`: exact GELU, ~1.2x faster steps on CPU than
            GPT-2's `gelu_new`).
    """

    preset: str = field(default="original", metadata={"help": "GPT-2 preset: original, deeper-thinner, "
                                                      "wider-shallower, small or base."})
    n_positions: int | None = field(default=None, metadata={"help": "Model context length (default: max_length)."})
    dropout: float = field(default=0.1, metadata={"help": "Dropout probability (0 doubles CPU speed)."})
    init_from: str | None = field(default=None, metadata={"help": "Fine-tune this bundle (name, folder or Hub id) "
                                                          "instead of training a fresh model."})
    activation_function: str = field(default="gelu", metadata={"help": "MLP activation of a fresh model: gelu "
                                                               "(exact, fastest on CPU), gelu_new (GPT-2's), relu, "
                                                               "silu or gelu_pytorch_tanh."})


@dataclass
class DataArguments:
    """Where melodies come from and how they become training blocks.

    Args:
        dataset: corpus name (`essen`, `essen/kinder0`, `oneills1850`, ...), MIDI folder, or a comma-separated list.
        exclude: melody-id prefixes to hold out (e.g. `essen/kinder0`), comma-separated.
        max_length: tokens per training block.
        augment_semitones: transpose training melodies by -k..k semitones (0 turns augmentation off).
        bpe_vocab_size: train BPE to this vocabulary size (unset: plain REMI).
        infill_ratio: share of training melodies in the fill-in-the-middle form (`hf_melody.infill`).
    """

    dataset: str = field(default="essen", metadata={"help": "Corpus name, 'corpus/file', MIDI folder, or a "
                                                    "comma-separated list of these."})
    exclude: str | None = field(default=None, metadata={"help": "Comma-separated melody-id prefixes to hold out, "
                                                        "e.g. essen/kinder0."})
    max_length: int = field(default=256, metadata={"help": "Tokens per packed training block."})
    augment_semitones: int = field(default=5, metadata={"help": "Transpose training melodies by -k..k semitones."})
    bpe_vocab_size: int | None = field(default=None, metadata={"help": "Train BPE to this vocabulary size."})
    validation_ratio: float = field(default=0.05, metadata={"help": "Share of melodies held out for validation."})
    test_ratio: float = field(default=0.05, metadata={"help": "Share of melodies held out for testing."})
    use_style_tokens: bool = field(default=True, metadata={"help": "Prefix each melody with its style token."})
    num_proc: int | None = field(default=None, metadata={"help": "Processes for corpus conversion and tokenizing."})
    streaming: bool = field(default=False, metadata={"help": "Tokenize on the fly (IterableDataset); needs "
                                                     "max_steps."})
    infill_ratio: float = field(default=0.0, metadata={"help": "Share of training melodies written in the "
                                                       "fill-in-the-middle form that teaches infilling (0.2 in the "
                                                       "bundled recipes)."})

    def dataset_list(self) -> list[str]:
        return [s.strip() for s in self.dataset.split(",") if s.strip()]

    def exclude_list(self) -> list[str]:
        return [s.strip() for s in (self.exclude or "").split(",") if s.strip()]


@dataclass
class MelodyTrainingArguments(TrainingArguments):
    """transformers `TrainingArguments` with defaults for small melody models (see its docs for every field)."""

    output_dir: str = field(default="out/melody-model", metadata={"help": "Where the bundle is written."})
    learning_rate: float = field(default=3e-3, metadata={"help": "Peak learning rate."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Blocks per device per step."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Blocks per device in evaluation."})
    eval_strategy: str = field(default="steps", metadata={"help": "When to evaluate: no, steps or epoch."})
    eval_steps: float | None = field(default=100, metadata={"help": "Evaluate every this many steps."})
    logging_steps: float = field(default=25, metadata={"help": "Log the training loss every this many steps."})
    save_steps: float = field(default=200, metadata={"help": "Checkpoint every this many steps."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule."})
    warmup_steps: float = field(default=0.05, metadata={"help": "Warm-up steps (a float < 1 is a ratio)."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    ddp_find_unused_parameters: bool | None = field(default=False, metadata={"help": "DDP setting."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace a different run found in "
                                                               "output_dir instead of refusing to start."})
    early_stopping_patience: int | None = field(default=None, metadata={
        "help": "Stop when the validation loss has not improved for this many evaluations, and keep the best "
                "checkpoint (needs load_best_model_at_end: true and save_steps equal to eval_steps)."})


def make_parser():
    """The `HfArgumentParser` of `recipes/train.py` and `hf-melody train` (all three dataclasses)."""
    from transformers import HfArgumentParser

    return HfArgumentParser((ModelArguments, DataArguments, MelodyTrainingArguments))


def _field_names(parser) -> set[str]:
    return {f.name for dtype in parser.dataclass_types for f in dataclasses.fields(dtype)}


def _did_you_mean(name: str, known: set[str], prefix: str = "") -> str:
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


_LIST_KEYS = ("dataset", "exclude", "novelty_dataset")
"""String keys that a YAML may give as a list (the parsers join them with commas)."""


def _check_yaml_value(path: Path, key: str, value: Any, action) -> None:
    """Convert `value` the way the command line would (`action.type`, `action.choices`); `ConfigError` if it fails."""
    if value is None or action is None or action.type is None:
        return
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and key not in _LIST_KEYS and action.nargs not in ("+", "*"):
        raise ConfigError(f"{path}: {key}: got a list {value!r}, expected a single value; write `{key}: <value>`")
    if isinstance(value, dict):
        return  # dict-valued TrainingArguments fields (e.g. accelerator_config) are checked by transformers
    import argparse

    kind = getattr(action.type, "__name__", "")
    example = {"int": "a whole number, e.g. 1000", "float": "a number, e.g. 0.001",
               "string_to_bool": "true or false"}.get(kind, "a valid value")
    for item in items:
        if isinstance(item, bool) and action.type in (int, float):
            raise ConfigError(f"{path}: {key}: got {item!r}; write {example}")
        try:
            converted = action.type(item if isinstance(item, str) else str(item))
        except (TypeError, ValueError, argparse.ArgumentTypeError) as e:
            raise ConfigError(f"{path}: {key}: {item!r} is not valid ({_one_line(e)}); write {example}") from e
        if action.choices is not None and converted not in action.choices:
            choices = ", ".join(str(c) for c in action.choices)
            raise ConfigError(f"{path}: {key}: {item!r} is not one of: {choices}")


def _one_line(text: Any, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_yaml_config(path: str | os.PathLike, parser=None) -> dict[str, Any]:
    """Read a recipe YAML; unknown keys and values of the wrong type are a `ConfigError` naming the key and the fix.

    Example:
        >>> load_yaml_config("recipes/tiny-debug.yaml")["preset"]          # doctest: +SKIP
        'original'
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such recipe file; see recipes/ for examples")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where} ({_one_line(problem)}); fix the syntax") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read as a UTF-8 text file ({_one_line(e)})") from e
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys to values, got {type(values).__name__}")
    parser = parser or make_parser()
    known = _field_names(parser)
    actions = {a.dest: a for a in parser._actions}
    hints: dict[str, str] = {}  # the declared types (the parser has rewritten `field.type` for argparse)
    for dtype in parser.dataclass_types:
        for cls in reversed(dtype.__mro__):
            hints.update({name: str(hint) for name, hint in vars(cls).get("__annotations__", {}).items()})
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{path}: unknown key {key!r}{_did_you_mean(str(key), known)}")
        if isinstance(value, dict) and "dict" not in hints.get(key, ""):
            raise ConfigError(f"{path}: {key}: got a mapping {_one_line(value, 60)}, expected a single value; write "
                              f"`{key}: <value>`")
        if value is None and not any(t in hints.get(key, "None") for t in ("None", "Optional")):
            raise ConfigError(f"{path}: {key}: got null (an empty value); give a value or remove the line to use "
                              "the default")
        _check_yaml_value(path, key, value, actions.get(key))
    return values


def parse_args(args: list[str] | None = None):
    """Parse `--config recipe.yaml` (defaults) plus command-line overrides into the three argument objects.

    Unknown keys (in the YAML or on the command line), wrong types and impossible values raise `ConfigError`
    before any work starts.
    """
    parser = make_parser()

    def fail(message: str):  # argparse would print usage and exit; one typed line instead
        raise ConfigError(f"{_one_line(message)}; run with --help to see every option")

    parser.error = fail
    args = list(sys.argv[1:] if args is None else args)
    config_path = None
    for i, arg in enumerate(args):
        if arg.startswith("--config="):
            config_path = arg.partition("=")[2]
            del args[i]
            break
        if arg == "--config":
            if i + 1 >= len(args):
                raise ConfigError("--config needs a path to a recipe YAML, e.g. --config recipes/original.yaml")
            config_path = args[i + 1]
            del args[i:i + 2]
            break
    if config_path:
        values = load_yaml_config(config_path, parser)
        # lists in YAML (dataset, exclude) are comma-separated strings on the command line
        for key in ("dataset", "exclude"):
            if isinstance(values.get(key), list):
                values[key] = ",".join(values[key])
        parser.set_defaults(**values)
    if not _has_accelerator():
        # Without it, DDP on CPU (accelerate launch --multi_gpu / torchrun) silently runs as 1-process copies.
        parser.set_defaults(use_cpu=True)
    try:
        model_args, data_args, training_args, rest = parser.parse_args_into_dataclasses(
            args=args, return_remaining_strings=True)
    except ConfigError:
        raise
    except SystemExit as e:  # argparse exits on type errors; say it in one line instead
        raise ConfigError(f"invalid arguments {args}; run with --help to see every option") from e
    except (ValueError, TypeError) as e:
        source = f" (from {config_path} and the command line)" if config_path else ""
        raise ConfigError(f"invalid training arguments{source}: {_one_line(e, 300)}") from e
    if rest:
        flags = [r for r in rest if r.startswith("--")]
        hint = _did_you_mean(flags[0].lstrip("-").partition("=")[0], _field_names(parser), "--") if flags else ""
        raise ConfigError(f"unknown arguments {rest}" + (hint or "; run with --help to see every option"))
    training_args = _bf16_fallback(training_args)
    validate(model_args, data_args, training_args)
    return model_args, data_args, training_args


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


def _has_accelerator() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps and mps.is_available())


def validate(model_args: ModelArguments, data_args: DataArguments, training_args) -> None:
    """Reject impossible values before any work starts."""
    from .modeling import PRESETS

    if model_args.init_from is None and model_args.preset not in PRESETS:
        raise ConfigError(f"preset {model_args.preset!r} does not exist; choose one of: {', '.join(PRESETS)}")
    if training_args.max_steps == 0 or training_args.max_steps < -1:
        raise ConfigError(f"max_steps={training_args.max_steps}; give a positive number (or -1 to use epochs)")
    if training_args.num_train_epochs <= 0 and training_args.max_steps == -1:
        raise ConfigError("num_train_epochs must be positive when max_steps is not set")
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(training_args, name) < 1:
            raise ConfigError(f"{name}={getattr(training_args, name)} must be at least 1")
    for name in ("logging_steps", "save_steps", "eval_steps"):
        value = getattr(training_args, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{name}={value} must be positive (a float below 1 is a ratio of the total steps)")
    if data_args.num_proc is not None and data_args.num_proc < 1:
        raise ConfigError(f"num_proc={data_args.num_proc} must be at least 1 (or unset)")
    if data_args.max_length < 8:
        raise ConfigError(f"max_length={data_args.max_length} is too small; use at least 8 (256 is usual)")
    n_pos = model_args.n_positions or data_args.max_length
    if data_args.max_length > n_pos:
        raise ConfigError(f"max_length={data_args.max_length} is larger than the model's n_positions={n_pos}; "
                          f"lower max_length or raise n_positions")
    patience = getattr(training_args, "early_stopping_patience", None)
    if patience is not None:
        if patience < 1:
            raise ConfigError(f"early_stopping_patience={patience} must be at least 1 (or unset)")
        if training_args.eval_strategy == "no" or not training_args.load_best_model_at_end:
            raise ConfigError("early_stopping_patience needs evaluations and the best model: set eval_strategy: "
                              "steps, load_best_model_at_end: true and metric_for_best_model: eval_loss")
    if not 0 <= data_args.infill_ratio < 1:
        raise ConfigError(f"infill_ratio={data_args.infill_ratio} must be in [0, 1) (0.2 is the bundled recipes')")
    from transformers.activations import ACT2FN

    if model_args.activation_function not in ACT2FN:
        raise ConfigError(f"activation_function={model_args.activation_function!r} is not known to transformers; "
                          "use gelu, gelu_new, relu or silu")
    if not 0 <= model_args.dropout < 1:
        raise ConfigError(f"dropout={model_args.dropout} must be in [0, 1)")
    if data_args.augment_semitones < 0 or data_args.augment_semitones > 12:
        raise ConfigError(f"augment_semitones={data_args.augment_semitones}; use 0..12 (5 is the classic recipe)")
    if not (0 <= data_args.validation_ratio < 1 and 0 <= data_args.test_ratio < 1
            and data_args.validation_ratio + data_args.test_ratio < 1):
        raise ConfigError("validation_ratio and test_ratio must be in [0, 1) and sum to less than 1")
    if training_args.learning_rate <= 0:
        raise ConfigError(f"learning_rate={training_args.learning_rate} must be positive")
    if data_args.streaming and training_args.max_steps <= 0:
        raise ConfigError("streaming datasets have no length: set max_steps")
    if not data_args.dataset_list():
        raise ConfigError("dataset is empty; give a corpus name such as essen, or a MIDI folder")
    from .corpora import MUSIC21_CORPORA

    for spec in data_args.dataset_list():
        if spec.split("/")[0] not in MUSIC21_CORPORA and not Path(spec).exists():
            raise ConfigError(f"dataset {spec!r} is neither a corpus ({', '.join(MUSIC21_CORPORA)}) nor an existing "
                              "MIDI folder; fix the name or the path")
    if data_args.bpe_vocab_size is not None and model_args.init_from is None:
        from .tokenizer import MelodyTokenizer

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


def early_stopping(training_args) -> list[TrainerCallback]:
    """The `EarlyStoppingCallback` that `early_stopping_patience` asks for (none when it is unset)."""
    from transformers import EarlyStoppingCallback

    patience = getattr(training_args, "early_stopping_patience", None)
    return [EarlyStoppingCallback(early_stopping_patience=patience)] if patience else []


class JsonLogCallback(TrainerCallback):
    """Writes the Trainer's log history (train loss, validation loss) to `training_log.json` as it grows."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero:
            write_training_log(args.output_dir, state.log_history)


def write_training_log(output_dir: str | os.PathLike, history: list[dict]) -> Path:
    """Save `history` split into train and eval records (atomically)."""
    from .utils import atomic_write_text

    train = [h for h in history if "loss" in h]
    evals = [h for h in history if "eval_loss" in h]
    body = {"train": train, "eval": evals, "history": history}
    return atomic_write_text(Path(output_dir) / TRAINING_LOG, json.dumps(body, indent=1))


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest `checkpoint-<step>` folder of `output_dir` that was written completely, or None.

    The Trainer writes `trainer_state.json` last; a job killed while saving leaves a checkpoint without it, and
    resuming from that one would fail. Such folders are skipped (with a warning).
    """
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

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


def train(model_args: ModelArguments, data_args: DataArguments, training_args) -> dict[str, Any]:
    """Run one training job: data -> model -> Trainer -> bundle in `training_args.output_dir`.

    Returns the final metrics (train loss, eval loss and perplexity). Resumes from the last checkpoint in
    `output_dir` when one exists (or from `resume_from_checkpoint`).
    """
    from transformers import Trainer, default_data_collator, set_seed

    from .data import DataConfig, build_dataset, dataset_stats
    from .hub import load_model, load_tokenizer, save_bundle
    from .modeling import build_model, num_parameters
    from .tokenizer import MelodyTokenizer

    # 1. seed and logging
    set_seed(training_args.seed)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
                        if training_args.should_log else logging.WARNING)

    # 2. output folder, Hub access and resume detection: refuse what would fail later, before any work
    check_output_dir(training_args.output_dir)
    tokenizer = load_tokenizer(model_args.init_from) if model_args.init_from else MelodyTokenizer()
    run = run_fingerprint(model_args, data_args, training_args, tokenizer)
    hub_repo = None
    if training_args.push_to_hub and training_args.should_save:
        from .hub import check_hub_access

        hub_repo = check_hub_access(training_args.hub_model_id or Path(training_args.output_dir).name,
                                    token=training_args.hub_token)
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

    # 3. data (the main process converts and caches; the others then read the cache)
    from .corpora import load_melodies

    config = DataConfig(max_length=data_args.max_length, augment_semitones=data_args.augment_semitones,
                        validation_ratio=data_args.validation_ratio, test_ratio=data_args.test_ratio,
                        seed=training_args.data_seed or 0, use_style_tokens=data_args.use_style_tokens,
                        infill_ratio=data_args.infill_ratio)
    from .prepared import block_length, find_prepared, load_prepared

    prepared = find_prepared(data_args.dataset_list())
    with training_args.main_process_first(desc="dataset preparation"):
        if prepared is not None:  # a folder written by `hf-melody prepare`: its blocks and its tokenizer
            dsd, tokenizer = load_prepared(prepared, tokenizer if model_args.init_from else None,
                                           data_args.bpe_vocab_size, data_args.streaming)
            data_args.max_length = block_length(dsd)
            report_summary = f"prepared dataset {prepared}"
        elif data_args.streaming:
            from .corpora import iter_midi_folder

            sources = data_args.dataset_list()

            def melodies():  # re-read the folders lazily on every pass
                for s in sources:
                    yield from (iter_midi_folder(s, progress=False) if Path(s).is_dir()
                                else load_melodies(s, progress=False)[0])

            dsd = build_dataset(melodies, tokenizer, config, streaming=True)
            report_summary = "streaming"
        else:
            melodies, report = load_melodies(data_args.dataset_list(), num_proc=data_args.num_proc,
                                             exclude=data_args.exclude_list(),
                                             progress=training_args.should_log)
            report_summary = report.summary()
            if data_args.bpe_vocab_size and not tokenizer.is_bpe:
                from .data import split_melodies

                train_mels = split_melodies(melodies, config.validation_ratio, config.test_ratio, config.seed)
                tokenizer.train_bpe(data_args.bpe_vocab_size, train_mels["train"])
            dsd = build_dataset(melodies, tokenizer, config, num_proc=data_args.num_proc)
            logger.info("data: %s; blocks/tokens %s", report_summary, dataset_stats(dsd))

    # 4. model
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
    checkpoint = training_args.resume_from_checkpoint or last_checkpoint
    finished = finished_step(checkpoint, training_args.max_steps)
    if finished is not None:  # the run already reached its end: take the weights, train no further step
        logger.info("%s is at step %d, the end of the run: nothing left to train", checkpoint, finished)
        model = load_model(checkpoint)
    from .hub import default_generation_config

    model.generation_config = default_generation_config(tokenizer)  # so that every checkpoint-N carries it
    model.config.hf_melody = {"library": "hf_melody", "task": "melody-generation", "tokenizer_file": "miditok.json"}
    logger.info("model: %s, %d parameters", model_args.init_from or model_args.preset, num_parameters(model))

    # 5. trainer
    eval_ds = dsd.get("validation")
    if eval_ds is None and training_args.eval_strategy != "no":
        raise ConfigError("the validation split is empty; add melodies or raise validation_ratio")
    import copy

    trainer_args = copy.copy(training_args)
    trainer_args.push_to_hub = False  # the finished bundle is pushed in step 9, after the check in step 2
    info_so_far = {"preset": model_args.init_from or model_args.preset, "dataset": data_args.dataset_list(),
                   "exclude": data_args.exclude_list(), "run": run}
    trainer = Trainer(model=model, args=trainer_args, train_dataset=dsd["train"], eval_dataset=eval_ds,
                      data_collator=default_data_collator,
                      callbacks=[JsonLogCallback(), BundleCheckpointCallback(tokenizer, info_so_far),
                                 *early_stopping(training_args)])

    # 6. train (on resume, the Trainer restores the log history of the checkpoint: losses cover the whole run)
    if finished is None:
        result = trainer.train(resume_from_checkpoint=checkpoint)
        metrics = dict(result.metrics)
    else:
        from transformers import TrainerState

        trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
        metrics = {}
    metrics["train_loss"] = whole_run_train_loss(trainer.state.log_history) or metrics.get("train_loss")

    # 7. evaluate
    if eval_ds is not None:
        eval_metrics = trainer.evaluate()
        eval_metrics["eval_perplexity"] = math.exp(min(eval_metrics["eval_loss"], 50))
        metrics.update(eval_metrics)

    # 8. save the bundle + card (main process only)
    if trainer.is_world_process_zero():
        write_training_log(training_args.output_dir, trainer.state.log_history)
        info = {
            **info_so_far,
            "load_name": hub_repo or str(training_args.output_dir),
            "max_steps": trainer.state.global_step,
            "data_report": report_summary,
            "command": " ".join(sys.argv) if sys.argv else "",
            "final_eval_loss": metrics.get("eval_loss"),
            "final_train_loss": metrics.get("train_loss"),
            "num_parameters": num_parameters(model),
            "world_size": training_args.world_size,
            "global_batch_size": training_args.per_device_train_batch_size * training_args.world_size
            * training_args.gradient_accumulation_steps,
        }
        save_bundle(trainer.model, tokenizer, training_args.output_dir, training_info=info)
    trainer.accelerator.wait_for_everyone()

    # 9. push
    if training_args.push_to_hub and trainer.is_world_process_zero():
        from .hub import push_bundle_to_hub

        push_bundle_to_hub(training_args.output_dir, hub_repo, private=bool(training_args.hub_private_repo),
                           token=training_args.hub_token)
    return metrics
