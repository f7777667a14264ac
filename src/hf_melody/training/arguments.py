"""What to train and how: `ModelArguments` and `MelodyTrainingArguments` (with `DataArguments` from
`hf_melody.data.arguments`), and `training_parser`, the parser of `recipes/train.py`, `hf-melody train` and
`hf_melody.train`.

Examples:
    >>> from hf_melody.training.arguments import ModelArguments
    >>> ModelArguments(preset="deeper-thinner").preset
    'deeper-thinner'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..data.arguments import DataArguments
from ..errors import ConfigError
from ..modeling.presets import PRESETS
from ..parser import MelodyArgumentParser


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

    Examples:
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
class MelodyTrainingArguments(TrainingArguments):
    """transformers `TrainingArguments` with defaults for small melody models (see its docs for every field), plus
    `early_stopping_patience`, `max_train_minutes` (with `fit_schedule_to_budget`), `evals_per_run` and
    `log_melodies`.

    Examples:
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
    fit_schedule_to_budget: bool = field(default=True, metadata={
        "help": "With max_train_minutes: time the first steps, size warmup and cosine decay to the steps that fit the "
                "budget, and stop (evaluated and saved) at that horizon, decayed (hf_melody.training.schedule)."})
    decay_share: float = field(default=1.0, metadata={
        "help": "With the schedule sized to the budget: the share of the steps after warmup over which the learning "
                "rate decays to 0 (1: cosine over all of them; 0.3: held at the peak, then decayed over the last "
                "three tenths of them, warmup-stable-decay)."})
    evals_per_run: int | None = field(default=None, metadata={
        "help": "Evaluate and save about this many times per run: the interval becomes the run's steps (the "
                "budget's horizon, else the planned steps) divided by this, replacing eval_steps and save_steps. "
                "Unset: eval_steps and save_steps as given."})
    log_melodies: int = field(default=0, metadata={
        "help": "At each evaluation, sample this many 4-bar melodies and log their piano roll and audio to the "
                "trackers of report_to (tensorboard, wandb, trackio); 0: off. Bits per note are always logged."})

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
        if not 0 <= self.log_melodies <= 16:
            raise ConfigError(f"log_melodies={self.log_melodies}; use 0 (off) to 16 melodies per evaluation")
        if self.max_train_minutes is not None and not self.max_train_minutes > 0:
            raise ConfigError(f"max_train_minutes={self.max_train_minutes} must be positive (or unset)")
        if not 0 < self.decay_share <= 1:
            raise ConfigError(f"decay_share={self.decay_share} must be in (0, 1]: the share of the run after warmup "
                              "that decays (1: all of it)")
        if self.evals_per_run is not None and self.evals_per_run < 1:
            raise ConfigError(f"evals_per_run={self.evals_per_run} must be at least 1 (or unset to keep eval_steps)")
        patience = self.early_stopping_patience
        if patience is not None:
            if patience < 1:
                raise ConfigError(f"early_stopping_patience={patience} must be at least 1 (or unset)")
            if self.eval_strategy == "no" or not self.load_best_model_at_end:
                raise ConfigError("early_stopping_patience needs evaluations and the best model: set eval_strategy: "
                                  "steps, load_best_model_at_end: true and metric_for_best_model: eval_loss")


TRAINING_ARGUMENTS = (ModelArguments, DataArguments, MelodyTrainingArguments)
"""The dataclasses of a training recipe, in the order `train()` takes them."""


def _has_accelerator() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps and mps.is_available())


def training_parser(prog: str | None = None) -> MelodyArgumentParser:
    """The parser of `recipes/train.py`, `hf-melody train` and `hf_melody.train` (model, data, training).

    On a machine without an accelerator `use_cpu` defaults to true: without it, DDP on CPU (`accelerate launch
    --multi_gpu`, `torchrun`) silently runs as one-process copies.

    Examples:
        >>> model_args, data_args, training_args = training_parser().parse_config({"max_steps": 10})  # doctest: +SKIP
    """
    parser = MelodyArgumentParser(TRAINING_ARGUMENTS, prog=prog, description="Train a GPT-2 melody model.")
    if not _has_accelerator():
        parser.set_defaults(use_cpu=True)
    return parser
