"""Fuzzing the configuration surface (hypothesis, slow suite): command-line arguments and recipe YAML values.

Property: `parse_args` either returns the three argument objects or raises `ConfigError` (one line); `hf-melody
generate --formats` either gives a list of known formats or `ConfigError`. Nothing else: no argparse `SystemExit`,
no transformers `ValueError`, no traceback. Every example is counted and a failing example fails its test at once
(hypothesis then shrinks it to the smallest failing input); the report lists tried / passed and the failures.

    pytest -m slow tests/test_parser_fuzz.py
    HF_MELODY_FUZZ_EXAMPLES=300 HF_MELODY_FUZZ_REPORT=fuzz.json pytest -m slow tests/test_parser_fuzz.py
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_melody.errors import ConfigError

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("HF_MELODY_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
COUNTS: dict[str, Counter] = {}
FAILURES: dict[str, list[str]] = {}

# our fields plus the TrainingArguments a recipe usually sets
FIELDS = ["preset", "n_positions", "dropout", "init_from", "dataset", "exclude", "max_length", "augment_semitones",
          "bpe_vocab_size", "validation_ratio", "test_ratio", "use_style_tokens", "num_proc", "streaming",
          "output_dir", "learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size",
          "eval_strategy", "eval_steps", "logging_steps", "save_steps", "save_total_limit", "lr_scheduler_type",
          "warmup_steps", "weight_decay", "max_steps", "num_train_epochs", "gradient_accumulation_steps", "seed",
          "data_seed", "resume_from_checkpoint", "overwrite_output_dir", "report_to", "fp16", "disable_tqdm"]

SCALARS = (st.integers(-2**70, 2**70) | st.integers(-3, 600) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from(["true", "false", "", "nan", "inf", "-1", "0", "1e9", "essen", "original", "no", "steps",
                              "cosine", "none", "/", "out/x"])
           | st.text(max_size=12))
YAML_VALUES = st.recursive(st.none() | st.booleans() | SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=2), max_leaves=6)


def record(name: str, attempt) -> None:
    """Run one example; count it, and keep any exception other than `ConfigError` as a failure."""
    counts = COUNTS.setdefault(name, Counter())
    counts["tried"] += 1
    try:
        attempt()
    except ConfigError as e:
        assert "\n" not in str(e), str(e)
        counts["config_error"] += 1
    except Exception as e:  # the property is broken: recorded for the report, and this example fails its test
        FAILURES.setdefault(name, []).append(f"{type(e).__name__}: {str(e)[:200]}")
        raise
    counts["passed"] += 1


def cli_value(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value if isinstance(value, str) else json.dumps(value)


@FUZZ
@given(args=st.lists(st.tuples(st.sampled_from(FIELDS) | st.text(min_size=1, max_size=8), SCALARS), max_size=5),
       dangling=st.booleans())
def test_fuzz_command_line(args, dangling, tmp_path_factory):
    from hf_melody.training.trainer import parse_args

    argv = [x for name, value in args for x in (f"--{name}", cli_value(value))]
    if dangling and argv:
        argv = argv[:-1]  # a flag without its value
    record("command line", lambda: parse_args(argv))


@FUZZ
@given(values=st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), YAML_VALUES, max_size=5))
def test_fuzz_recipe_yaml(values, tmp_path_factory):
    import yaml

    from hf_melody.training.trainer import parse_args

    path = tmp_path_factory.mktemp("yaml") / "recipe.yaml"
    path.write_text(yaml.safe_dump(values, allow_unicode=True))
    record("recipe YAML values", lambda: parse_args(["--config", str(path)]))


@FUZZ
@given(text=st.text(max_size=120))
def test_fuzz_recipe_yaml_text(text, tmp_path_factory):
    from hf_melody.training.trainer import parse_args

    path = tmp_path_factory.mktemp("yaml") / "recipe.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    record("recipe YAML text", lambda: parse_args(["--config", str(path)]))


@FUZZ
@given(text=st.text(max_size=30))
def test_fuzz_generate_formats(text):
    from hf_melody.cli import parse_formats
    from hf_melody.export.render import FORMATS

    def attempt():
        assert set(parse_formats(text)) <= set(FORMATS)

    record("generate --formats", attempt)


def test_fuzz_report():
    """Runs after the fuzz tests (file order): writes the counts and fails if any example broke the property."""
    report = {name: {**counts, "failures": FAILURES.get(name, [])[:5]} for name, counts in COUNTS.items()}
    if os.environ.get("HF_MELODY_FUZZ_REPORT"):
        Path(os.environ["HF_MELODY_FUZZ_REPORT"]).write_text(json.dumps(report, indent=1))
    assert COUNTS, "run the whole file: the fuzz tests above fill the counts"
    assert not FAILURES, json.dumps(report, indent=1)
