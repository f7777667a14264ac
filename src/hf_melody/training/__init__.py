"""Training: the `train()` entry point (`trainer`), its arguments and parser (`arguments`), run folders (`runs`),
Trainer callbacks (`callbacks`), atomic checkpoints (`checkpoints`) and the learning-rate schedule sized to the
time budget (`schedule`).
"""

# names hf_melody 0.1 users imported from the old `hf_melody.training` module
from ..data.arguments import DataArguments
from ..parser import load_yaml_config
from .arguments import (
    TRAINING_ARGUMENTS,
    MelodyTrainingArguments,
    ModelArguments,
    training_parser,
)
from .callbacks import (
    BundleCheckpointCallback,
    JsonLogCallback,
    TimeLimitCallback,
    stopping_callbacks,
    write_training_log,
)
from .runs import (
    check_output_dir,
    check_same_run,
    clear_output_dir,
    finished_step,
    run_fingerprint,
    whole_run_train_loss,
)
from .schedule import BudgetSchedule, BudgetScheduleCallback, BudgetTrainer, budget_schedule
from .trainer import (
    TrainingConfig,
    cpu_supports_bf16,
    last_complete_checkpoint,
    load_training_config,
    parse_args,
    set_dropout,
    train,
    validate,
)

__all__ = [
    "DataArguments",
    "load_yaml_config",
    "BudgetSchedule",
    "BudgetScheduleCallback",
    "BudgetTrainer",
    "BundleCheckpointCallback",
    "JsonLogCallback",
    "MelodyTrainingArguments",
    "ModelArguments",
    "TRAINING_ARGUMENTS",
    "TimeLimitCallback",
    "TrainingConfig",
    "budget_schedule",
    "check_output_dir",
    "check_same_run",
    "clear_output_dir",
    "cpu_supports_bf16",
    "finished_step",
    "last_complete_checkpoint",
    "load_training_config",
    "parse_args",
    "run_fingerprint",
    "set_dropout",
    "stopping_callbacks",
    "train",
    "training_parser",
    "validate",
    "whole_run_train_loss",
    "write_training_log",
]
