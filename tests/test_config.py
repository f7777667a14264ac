"""Recipes and flags: every recipe parses, flags override YAML, and bad configs fail before any work, saying the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from hf_melody import ConfigError
from hf_melody.parser import load_yaml_config
from hf_melody.training.trainer import last_complete_checkpoint, parse_args

ROOT = Path(__file__).parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
TINY = str(ROOT / "recipes" / "tiny-debug.yaml")


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_parses(recipe, tmp_path):
    import yaml

    if "models" in yaml.safe_load(recipe.read_text()):  # an evaluation recipe (recipes/evaluate.py)
        from hf_melody.evaluation import parse_evaluation_args

        assert parse_evaluation_args(["--config", str(recipe)]).models
        return
    values = load_yaml_config(recipe)
    extra = []
    if str(values.get("dataset", "")).startswith("path/to/"):  # a placeholder the user must replace
        assert_config_error(["--config", str(recipe)], f"dataset {values['dataset']!r}", "fix the name or the path")
        extra = ["--dataset", str(tmp_path)]
        values["dataset"] = str(tmp_path)
    model_args, data_args, training_args = parse_args(["--config", str(recipe), *extra])
    assert training_args.output_dir == values["output_dir"]
    if "max_steps" in values:
        assert training_args.max_steps == values["max_steps"]
    if "preset" in values:
        assert model_args.preset == values["preset"]
    dataset = values.get("dataset")
    if dataset is not None:
        assert data_args.dataset == (dataset if isinstance(dataset, list) else [dataset])


def test_there_are_recipes_and_accelerate_configs_are_not_among_them():
    assert len(RECIPES) >= 5 and all(p.parent.name == "recipes" for p in RECIPES)


def test_flags_override_yaml():
    model_args, data_args, training_args = parse_args([
        "--config", TINY, "--max_steps", "7", "--learning_rate", "0.02", "--dataset", "essen/kinder0,oneills1850",
        "--dropout", "0.25", "--preset", "deeper-thinner", "--max_length", "64", "--save_steps", "3"])
    assert training_args.max_steps == 7 and training_args.learning_rate == 0.02 and training_args.save_steps == 3
    assert data_args.dataset == ["essen/kinder0", "oneills1850"] and data_args.max_length == 64
    assert model_args.dropout == 0.25 and model_args.preset == "deeper-thinner"
    # keys not overridden keep their YAML values
    assert training_args.per_device_train_batch_size == 16 and data_args.augment_semitones == 2


def test_flags_may_come_before_the_config_and_use_equals():
    _, _, training_args = parse_args(["--max_steps", "9", f"--config={TINY}"])
    assert training_args.max_steps == 9 and training_args.learning_rate == 0.01


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def assert_config_error(args: list[str], *words: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_args(args)
    message = str(info.value)
    assert "\n" not in message, message
    for w in words:
        assert w in message, f"{w!r} not in {message!r}"
    return message


@pytest.mark.parametrize("text, words", [
    ("max_stesp: 10\n", ["unknown key 'max_stesp'", "did you mean max_steps?"]),
    ("learning_rat: 0.1\n", ["unknown key 'learning_rat'", "did you mean learning_rate?"]),
    ("presett: small\n", ["unknown key 'presett'", "did you mean preset?"]),
    ("max_steps: abc\n", ["max_steps: 'abc' is not valid", "whole number"]),
    ("max_steps: 1.5\n", ["max_steps: 1.5 is not valid", "whole number"]),
    ("max_steps: [1, 2]\n", ["max_steps: got a list", "single value"]),
    ("max_steps: true\n", ["max_steps: got True", "whole number"]),
    ("learning_rate: fast\n", ["learning_rate: 'fast' is not valid", "a number"]),
    ("bf16: maybe\n", ["bf16: 'maybe' is not valid", "true or false"]),
    ("save_strategy: sometimes\n", ["save_strategy: 'sometimes' is not one of", "steps"]),
    ("- a list\n- not a mapping\n", ["a recipe is a mapping"]),
    ("max_steps: [1, 2\ndropout: 0\n", ["not valid YAML at line 2", "fix the syntax"]),
    ("max_steps: 10\n\tdropout: 0\n", ["not valid YAML at line 2"]),
], ids=["typo-steps", "typo-lr", "typo-preset", "int-abc", "int-float", "int-list", "int-bool", "float-word",
        "bool-word", "choice", "not-a-mapping", "unclosed-list", "tab"])
def test_bad_yaml_names_the_file_the_key_and_the_fix(tmp_path, text, words):
    path = write(tmp_path, text)
    message = assert_config_error(["--config", path], *words)
    assert message.startswith(path)


IMPOSSIBLE = [
    (["--max_steps", "-5"], ["max_steps=-5", "positive"]),
    (["--max_steps", "0"], ["max_steps=0", "positive"]),
    (["--preset", "gigantic"], ["preset 'gigantic' does not exist", "original"]),
    (["--max_length", "512", "--n_positions", "256"], ["max_length=512", "n_positions=256", "lower max_length"]),
    (["--learning_rate", "0"], ["learning_rate=0", "positive"]),
    (["--learning_rate", "-0.001"], ["learning_rate=-0.001", "positive"]),
    (["--dropout", "1.5"], ["dropout=1.5"]),
    (["--augment_semitones", "40"], ["augment_semitones=40", "0..12"]),
    (["--validation_ratio", "0.6", "--test_ratio", "0.5"], ["validation_ratio", "less than 1"]),
    (["--per_device_train_batch_size", "0"], ["per_device_train_batch_size=0", "at least 1"]),
    (["--save_steps", "-10"], ["save_steps=-10", "positive"]),
    (["--max_length", "4"], ["max_length=4", "at least 8"]),
    (["--num_proc", "0"], ["num_proc=0"]),
    (["--bpe_vocab_size", "100"], ["bpe_vocab_size=100", "larger than the base vocabulary"]),
    (["--dataset", "esen"], ["dataset 'esen'", "essen", "fix the name"]),
    (["--dataset", "/no/such/folder"], ["'/no/such/folder'", "nor an existing MIDI folder"]),
    (["--resume_from_checkpoint", "/no/checkpoint-5"], ["no such checkpoint folder", "omit it"]),
    (["--max_steps", "abc"], ["--max_steps", "invalid int value: 'abc'", "--help"]),
    (["--optim", "sgdx"], ["invalid choice: 'sgdx'"]),
    (["--max_stesp", "3"], ["unknown arguments", "did you mean --max_steps?"]),
    (["--eval_strategy", "sometimes"], ["sometimes", "steps"]),
]


@pytest.mark.parametrize("overrides, words", IMPOSSIBLE, ids=[" ".join(o).replace("--", "") for o, _ in IMPOSSIBLE])
def test_impossible_values_fail_before_any_work(overrides, words):
    assert_config_error(["--config", TINY, *overrides], *words)


def test_missing_and_unreadable_recipe_files(tmp_path):
    assert_config_error(["--config", str(tmp_path / "nope.yaml")], "nope.yaml: no such recipe file")
    assert_config_error(["--config", str(tmp_path)], "no such recipe file")
    assert_config_error(["--config"], "--config needs a path")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00max_steps")
    assert_config_error(["--config", str(binary)], "binary.yaml")


def test_empty_recipe_means_defaults(tmp_path):
    _, data_args, training_args = parse_args(["--config", write(tmp_path, "# nothing\n")])
    assert data_args.dataset == ["essen"] and training_args.learning_rate == 3e-3


def test_yaml_lists_are_datasets(tmp_path):
    path = write(tmp_path, "dataset: [essen/kinder0, oneills1850]\nexclude: [essen/kinder0/3]\n")
    _, data_args, _ = parse_args(["--config", path])
    assert data_args.dataset == ["essen/kinder0", "oneills1850"] and data_args.exclude == [
        "essen/kinder0/3"]


def test_failing_config_does_no_work(tmp_path):
    """Nothing is written (no output_dir, no cache) when the config is rejected."""
    out = tmp_path / "run"
    assert_config_error(["--config", TINY, "--output_dir", str(out), "--learning_rate", "0"], "learning_rate")
    assert not out.exists()


def test_last_complete_checkpoint_skips_half_written_ones(tmp_path):
    assert last_complete_checkpoint(tmp_path) is None
    for step in (10, 20, 100):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-20" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")  # 100 was cut short
