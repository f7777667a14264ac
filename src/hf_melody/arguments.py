"""The configuration of training, evaluation and data preparation: one dataclass per concern, each field with its
help, and checks in `__post_init__` so a bad value fails the same way from Python, a YAML recipe or a flag.

The recipes, `hf-melody train|evaluate|prepare` and `hf_melody.train` / `hf_melody.evaluate` all fill these through
`MelodyArgumentParser` (in `hf_melody.parser`).

Example:
    >>> from hf_melody.arguments import DataArguments
    >>> DataArguments(dataset="essen/kinder0,oneills1850", exclude="essen/kinder0/3").dataset
    ['essen/kinder0', 'oneills1850']
    >>> DataArguments(max_length=4)
    Traceback (most recent call last):
    ...
    hf_melody.errors.ConfigError: max_length=4 is too small; use at least 8 (256 is usual)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from .errors import ConfigError
from .melody import Melody
from .modeling import PRESETS

SPLIT_CHOICES = ("all", "train", "validation", "test", "auto")


def split_list(value: str | Iterable[str] | None) -> list[str]:
    """A list-valued field from a list, a comma-separated string (older recipes and flags) or None.

    Example:
        >>> split_list(["essen/kinder0,oneills1850", " airdsAirs "])
        ['essen/kinder0', 'oneills1850', 'airdsAirs']
    """
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


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

    Example:
        >>> ModelArguments(preset="deeper-thinner", dropout=0.0).preset
        'deeper-thinner'
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

    def __post_init__(self):
        from transformers.activations import ACT2FN  # heavy (~1 s): only when the model is configured

        if self.init_from is None and self.preset not in PRESETS:
            raise ConfigError(f"preset {self.preset!r} does not exist; choose one of: {', '.join(PRESETS)}")
        if self.n_positions is not None and self.n_positions < 8:
            raise ConfigError(f"n_positions={self.n_positions} is too small; use at least 8 (or unset it)")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")
        if self.activation_function not in ACT2FN:
            raise ConfigError(f"activation_function={self.activation_function!r} is not known to transformers; "
                              "use gelu, gelu_new, relu or silu")


@dataclass
class DataArguments:
    """Where melodies come from and how they become training blocks (the data keys of a recipe, and the settings
    of `build_dataset`).

    Args:
        dataset: corpus names (`essen`, `essen/kinder0`, `oneills1850`, ...) and MIDI folders; a comma-separated
            string is split.
        exclude: melody-id prefixes to hold out (e.g. `essen/kinder0`); a comma-separated string is split.
        max_length: tokens per training block.
        augment_semitones: transpose training melodies by -k..k semitones (0 turns augmentation off); from Python
            also a list of shifts.
        bpe_vocab_size: train BPE to this vocabulary size (unset: plain REMI).
        validation_ratio, test_ratio: shares of melodies held out, split by a hash of each melody's id.
        split_seed: seed of that hash (unset: the training arguments' `data_seed`, else 0).
        use_style_tokens: prefix each melody with its style token.
        num_proc: processes for corpus conversion and tokenizing.
        streaming: tokenize on the fly (an `IterableDataset`); needs `max_steps`.
        infill_ratio: share of training melodies in the fill-in-the-middle form (`hf_melody.infill`).

    Example:
        >>> from hf_melody import MelodyTokenizer, build_dataset
        >>> data = DataArguments(max_length=128, augment_semitones=2)
        >>> build_dataset(melodies, MelodyTokenizer(), data)                      # doctest: +SKIP
    """

    dataset: list[str] = field(default_factory=lambda: ["essen"], metadata={
        "help": "Corpus names ('essen', 'essen/kinder0', 'oneills1850', ...) and MIDI folders (space- or "
                "comma-separated)."})
    exclude: list[str] = field(default_factory=list, metadata={
        "help": "Melody-id prefixes to hold out, e.g. essen/kinder0 (space- or comma-separated)."})
    max_length: int = field(default=256, metadata={"help": "Tokens per packed training block."})
    augment_semitones: int = field(default=5, metadata={"help": "Transpose training melodies by -k..k semitones "
                                                        "(0: no augmentation)."})
    bpe_vocab_size: int | None = field(default=None, metadata={"help": "Train BPE to this vocabulary size."})
    validation_ratio: float = field(default=0.05, metadata={"help": "Share of melodies held out for validation."})
    test_ratio: float = field(default=0.05, metadata={"help": "Share of melodies held out for testing."})
    split_seed: int | None = field(default=None, metadata={"help": "Seed of the split by melody id (default: "
                                                           "data_seed, else 0)."})
    use_style_tokens: bool = field(default=True, metadata={"help": "Prefix each melody with its style token."})
    num_proc: int | None = field(default=None, metadata={"help": "Processes for corpus conversion and tokenizing."})
    streaming: bool = field(default=False, metadata={"help": "Tokenize on the fly (IterableDataset); needs "
                                                     "max_steps."})
    infill_ratio: float = field(default=0.0, metadata={"help": "Share of training melodies written in the "
                                                       "fill-in-the-middle form that teaches infilling (0.2 in the "
                                                       "bundled recipes)."})

    def __post_init__(self):
        self.dataset = split_list(self.dataset)
        self.exclude = split_list(self.exclude)
        if not self.dataset:
            raise ConfigError("dataset is empty; give a corpus name such as essen, or a MIDI folder")
        if self.max_length < 8:
            raise ConfigError(f"max_length={self.max_length} is too small; use at least 8 (256 is usual)")
        if self.augment_semitones is None:
            self.augment_semitones = 0
        shifts = self.augment_semitones  # k (-k..k) or, from Python, a list of shifts
        in_range = 0 <= shifts <= 12 if isinstance(shifts, int) else all(abs(int(s)) <= 12 for s in shifts)
        if not in_range:
            raise ConfigError(f"augment_semitones={shifts}; use 0..12 (5 is the classic recipe)")
        if not (0 <= self.validation_ratio < 1 and 0 <= self.test_ratio < 1
                and self.validation_ratio + self.test_ratio < 1):
            raise ConfigError("validation_ratio and test_ratio must be in [0, 1) and sum to less than 1")
        if self.num_proc is not None and self.num_proc < 1:
            raise ConfigError(f"num_proc={self.num_proc} must be at least 1 (or unset)")
        if not 0 <= self.infill_ratio < 1:
            raise ConfigError(f"infill_ratio={self.infill_ratio} must be in [0, 1) (0.2 is the bundled recipes')")
        if self.bpe_vocab_size is not None and self.bpe_vocab_size < 1:
            raise ConfigError(f"bpe_vocab_size={self.bpe_vocab_size} must be positive (or unset: no BPE)")

    @property
    def seed(self) -> int:
        """The seed of the split by melody id in effect (`split_seed`, 0 when unset)."""
        return self.split_seed or 0

    def fingerprint(self, melodies: Sequence[Melody], tokenizer) -> str:
        """A hash of the melodies, the tokenizer and the settings that shape the packed blocks (the cache key of
        `build_dataset`)."""
        shaping = {"max_length": self.max_length, "augment_semitones": self.augment_semitones,
                   "validation_ratio": self.validation_ratio, "test_ratio": self.test_ratio, "seed": self.seed,
                   "use_style_tokens": self.use_style_tokens, "infill_ratio": self.infill_ratio}
        h = hashlib.sha256()
        h.update(json.dumps(shaping, sort_keys=True).encode())
        h.update(json.dumps(tokenizer.miditok.config.to_dict(serialize=True), sort_keys=True,
                            default=str).encode())
        h.update(str(tokenizer.vocab_size).encode())
        for m in melodies:
            h.update(m.id.encode("utf-8", "surrogateescape"))
            h.update(json.dumps(m.notes).encode())
            h.update(json.dumps(m.time_signatures).encode())
            h.update(m.style.encode())
        return h.hexdigest()[:20]


class DataConfig(DataArguments):
    """`DataArguments` under the name `build_dataset` callers have always used; takes the split seed as `seed`.

    Example:
        >>> DataConfig(max_length=128, augment_semitones=2, seed=1).seed
        1
    """

    def __init__(self, *args, seed: int | None = None, **kwargs):
        if seed is not None:
            kwargs["split_seed"] = seed
        super().__init__(*args, **kwargs)


@dataclass
class MelodyTrainingArguments(TrainingArguments):
    """transformers `TrainingArguments` with defaults for small melody models (see its docs for every field), plus
    `early_stopping_patience` and `max_train_minutes`.

    Example:
        >>> MelodyTrainingArguments(output_dir="out/x", max_steps=100).learning_rate
        0.003
    """

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
    max_train_minutes: float | None = field(default=None, metadata={
        "help": "Stop training after this many minutes of wall time (checked after each step; with "
                "load_best_model_at_end the best checkpoint so far is kept). Unset: no time limit."})

    def __post_init__(self):
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"max_steps={self.max_steps}; give a positive number (or -1 to use epochs)")
        if self.num_train_epochs <= 0 and self.max_steps == -1:
            raise ConfigError("num_train_epochs must be positive when max_steps is not set")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1")
        for name in ("logging_steps", "save_steps", "eval_steps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name}={value} must be positive (a float below 1 is a ratio of the total steps)")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate={self.learning_rate} must be positive")
        super().__post_init__()
        if self.max_train_minutes is not None and not self.max_train_minutes > 0:
            raise ConfigError(f"max_train_minutes={self.max_train_minutes} must be positive (or unset)")
        patience = self.early_stopping_patience
        if patience is not None:
            if patience < 1:
                raise ConfigError(f"early_stopping_patience={patience} must be at least 1 (or unset)")
            if self.eval_strategy == "no" or not self.load_best_model_at_end:
                raise ConfigError("early_stopping_patience needs evaluations and the best model: set eval_strategy: "
                                  "steps, load_best_model_at_end: true and metric_for_best_model: eval_loss")


@dataclass
class PrepareArguments:
    """Where `hf-melody prepare` writes the packed dataset (`dataset/`), its `miditok.json` and the skip report.

    Example:
        >>> PrepareArguments(output_dir="out/data").output_dir
        'out/data'
    """

    output_dir: str = field(default="out/data", metadata={"help": "Output folder.", "aliases": ["--out"]})


@dataclass
class EvaluationArguments:
    """The keys of `recipes/evaluate.yaml` and the options of `hf-melody evaluate` (the arguments of
    `evaluate_models`).

    Args:
        models: bundled names (`folk-base`, `original`, `deeper-thinner`, `wider-shallower`), folders or Hub ids.
        dataset: corpus spec of the evaluation melodies.
        output_dir: where `results.json` and the plots go (older spellings: `out_dir`, `--out`).
        split: all, train, validation, test or auto.
        ngram_order, ngram_folds: the cross-validated n-gram baseline.
        baseline: reference of the improvement heatmap: `ngram` or one of the models.
        num_samples, prompt_bars, novelty_dataset: sampled-melody metrics (0 samples skips them).
        stride, batch_size, max_melodies, seed, device: scoring settings.
        fair_pitch: also report `fair_pitch_bits_per_note` (pitch predicted from the past only).

    Example:
        >>> EvaluationArguments(models="original,folk-base", num_samples=8).models
        ['original', 'folk-base']
    """

    models: list[str] = field(default_factory=lambda: ["original", "deeper-thinner", "wider-shallower", "folk-base"],
                              metadata={"help": "Bundled names, folders or Hub ids."})
    dataset: str = field(default="essen/kinder0", metadata={"help": "Corpus spec of the evaluation melodies."})
    output_dir: str = field(default="out/eval", metadata={"help": "Output folder (results.json and plots).",
                                                          "aliases": ["--out", "--out_dir", "--out-dir"]})
    split: str = field(default="auto", metadata={"help": "all, train, validation, test or auto (all unless a "
                                                 "model trained on the dataset).", "choices": SPLIT_CHOICES})
    ngram_order: int = field(default=2, metadata={"help": "Context length of the n-gram baseline."})
    ngram_folds: int = field(default=10, metadata={"help": "Cross-validation folds of the baselines."})
    baseline: str = field(default="ngram", metadata={"help": "Reference of the improvement ratios."})
    num_samples: int = field(default=0, metadata={"help": "Sampled melodies per model (0: no sampling metrics)."})
    prompt_bars: int = field(default=4, metadata={"help": "Prompt length of continuation BLEU, in bars."})
    novelty_dataset: list[str] | None = field(default=None, metadata={
        "help": "Corpora to check samples for copies against (space- or comma-separated)."})
    stride: int | None = field(default=None, metadata={"help": "Sliding-window stride (default: half the context)."})
    batch_size: int = field(default=16, metadata={"help": "Windows per forward pass."})
    max_melodies: int | None = field(default=None, metadata={"help": "Use at most this many melodies."})
    seed: int = field(default=0, metadata={"help": "Seed of folds and sampling."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda ... (default: cpu)."})
    fair_pitch: bool = field(default=True, metadata={"help": "Also score pitch from the past only, the note's "
                                                     "onset tokens marginalised (the IDyOM-comparable measure; "
                                                     "about 10 s per 1,000 notes for folk-base on one CPU thread)."})

    def __post_init__(self):
        self.models = split_list(self.models)
        self.novelty_dataset = split_list(self.novelty_dataset) or None
        if not self.models:
            raise ConfigError("no models to evaluate; give bundled names, folders or Hub ids")
        if self.split not in SPLIT_CHOICES:
            raise ConfigError(f"split={self.split!r}; choose all, train, validation, test or auto")
        for name, least in (("ngram_order", 0), ("ngram_folds", 2), ("num_samples", 0), ("prompt_bars", 1),
                            ("batch_size", 1)):
            if getattr(self, name) < least:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least {least}")
        for name in ("stride", "max_melodies"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1 (or unset)")

    def to_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `evaluate_models` (`output_dir` is its `out_dir`).

        Example:
            >>> EvaluationArguments(models=["original"]).to_kwargs()["out_dir"]
            'out/eval'
        """
        kwargs = {name: getattr(self, name) for name in self.__dataclass_fields__}
        kwargs["out_dir"] = kwargs.pop("output_dir")
        return kwargs
