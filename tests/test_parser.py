"""The one parser: every recipe parses, flags override YAML, both flag spellings, no abbreviations, did-you-mean
for unknown keys, bad configs fail before any work saying the fix, old names still work, every field is a documented
flag, and the dataclasses' own checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from hf_melody import ConfigError, DataArguments, EvaluationArguments, MelodyTrainingArguments, ModelArguments
from hf_melody.data.arguments import prepare_parser
from hf_melody.evaluation.arguments import evaluation_parser
from hf_melody.parser import load_yaml_config
from hf_melody.training.arguments import training_parser
from hf_melody.training.trainer import parse_args

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


# ---- flags: both spellings, no abbreviations, did-you-mean -------------------------------------------------------
@pytest.mark.parametrize("flags", [["--output_dir", "out/a", "--max_steps", "7"], ["--output-dir", "out/a",
                                                                                   "--max-steps", "7"],
                                   ["--output-dir=out/a", "--max_steps=7"]], ids=["underscore", "dash", "equals"])
def test_both_flag_spellings(flags):
    _, _, training_args = training_parser().parse_args_and_config(["--config", TINY, *flags])
    assert training_args.output_dir == "out/a" and training_args.max_steps == 7


@pytest.mark.parametrize("parser, flag, hint", [
    (training_parser, "--max_step", "--max_steps"),
    (training_parser, "--learning", "--learning_rate"),
    (evaluation_parser, "--num_sample", "--num_samples"),
    (prepare_parser, "--max-len", "--max-length"),
], ids=["max_step", "learning", "num_sample", "max-len"])
def test_abbreviations_are_refused_with_the_full_name(parser, flag, hint):
    with pytest.raises(ConfigError) as info:
        parser().parse_args_and_config([flag, "3"])
    assert f"unknown arguments ['{flag}', '3']; did you mean {hint}?" in str(info.value)
    assert "\n" not in str(info.value)


def test_config_flag_forms_and_mistakes(tmp_path):
    _, _, a = training_parser().parse_args_and_config([f"--config={TINY}"])
    _, _, b = training_parser().parse_args_and_config(["--config", TINY])
    assert a.max_steps == b.max_steps == 60
    with pytest.raises(ConfigError, match="given twice"):
        training_parser().parse_args_and_config(["--config", TINY, f"--config={TINY}"])
    with pytest.raises(ConfigError, match="needs a path"):
        training_parser().parse_args_and_config(["--config", "--max_steps", "3"])


def test_unknown_yaml_keys_of_an_evaluation_recipe(tmp_path):
    bad = tmp_path / "eval.yaml"
    bad.write_text("models: [original]\nnum_sampels: 4\n")
    with pytest.raises(ConfigError, match=r"eval.yaml: unknown key 'num_sampels'; did you mean num_samples\?"):
        evaluation_parser().parse_args_and_config(["--config", str(bad)])


def test_old_names_and_comma_lists_still_work(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("models: original,folk-base\nout_dir: out/old\nnovelty_dataset: essen,oneills1850\n")
    [config] = evaluation_parser().parse_args_and_config(["--config", str(old), "--no-fair-pitch"])
    assert config.models == ["original", "folk-base"] and config.output_dir == "out/old"
    assert config.novelty_dataset == ["essen", "oneills1850"] and config.fair_pitch is False
    [config] = evaluation_parser().parse_args_and_config(["--out", "out/x", "--models", "a", "b,c"])
    assert config.output_dir == "out/x" and config.models == ["a", "b", "c"]
    _, data, _ = training_parser().parse_args_and_config(["--dataset", "essen/kinder0,oneills1850", "--exclude",
                                                          "essen/kinder0/3"])
    assert data.dataset == ["essen/kinder0", "oneills1850"] and data.exclude == ["essen/kinder0/3"]
    data, prep = prepare_parser().parse_args_and_config(["--dataset", "essen", "--out", "out/p", "--max-length",
                                                         "64"])
    assert prep.output_dir == "out/p" and data.max_length == 64


@pytest.mark.parametrize("command", ["train", "evaluate", "prepare"])
def test_every_field_is_a_documented_flag(command, capsys):
    from hf_melody.cli import main

    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    parser = {"train": training_parser, "evaluate": evaluation_parser, "prepare": prepare_parser}[command]()
    for name in parser.field_names:
        assert f"--{name}" in text, name
    assert "--config" in text and ("--max-length" in text or command == "evaluate")


# ---- the dataclasses check themselves ---------------------------------------------------------------------------
@pytest.mark.parametrize("make, words", [
    (lambda: ModelArguments(preset="gigantic"), "preset 'gigantic' does not exist"),
    (lambda: ModelArguments(dropout=1.5), "dropout=1.5"),
    (lambda: ModelArguments(activation_function="swish2"), "activation_function='swish2'"),
    (lambda: DataArguments(max_length=4), "max_length=4"),
    (lambda: DataArguments(dataset=" , "), "dataset is empty"),
    (lambda: DataArguments(augment_semitones=40), "augment_semitones=40"),
    (lambda: DataArguments(validation_ratio=0.6, test_ratio=0.5), "sum to less than 1"),
    (lambda: DataArguments(infill_ratio=1.0), "infill_ratio=1.0"),
    (lambda: MelodyTrainingArguments(learning_rate=0), "learning_rate=0"),
    (lambda: MelodyTrainingArguments(max_steps=0), "max_steps=0"),
    (lambda: MelodyTrainingArguments(early_stopping_patience=2), "load_best_model_at_end"),
    (lambda: EvaluationArguments(split="holdout"), "split='holdout'"),
    (lambda: EvaluationArguments(models=[]), "no models"),
    (lambda: EvaluationArguments(ngram_folds=1), "ngram_folds=1"),
], ids=["preset", "dropout", "activation", "max_length", "dataset", "augment", "ratios", "infill", "lr",
        "max_steps", "patience", "split", "models", "folds"])
def test_post_init_checks_fire_for_python_callers(make, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        make()


# ---- recipes shipped in the package (issue 22 point 4) --------------------------------------------------------------


def test_the_repository_recipes_are_the_packaged_ones():
    from hf_melody.parser import RECIPES_DIR, accelerate_configs, bundled_recipes

    assert {p.stem for p in RECIPES} == set(bundled_recipes())
    assert all(p.resolve() == (RECIPES_DIR / p.name).resolve() for p in RECIPES)
    assert {"cpu", "cpu-2proc", "gpu", "multi-gpu"} <= set(accelerate_configs())
    assert (ROOT / "recipes" / "accelerate_configs").resolve() == (RECIPES_DIR / "accelerate_configs").resolve()


@pytest.mark.parametrize("spelling", ["tiny-debug", "tiny-debug.yaml", "recipes/tiny-debug.yaml"])
def test_a_recipe_is_found_by_name_from_any_folder(spelling, tmp_path, monkeypatch):
    from hf_melody.parser import RECIPES_DIR

    monkeypatch.chdir(tmp_path)  # no recipes/ here: the packaged file is used
    model_args, data_args, training_args = parse_args(["--config", spelling, "--max_steps", "3"])
    assert training_args.max_steps == 3
    assert model_args.preset == load_yaml_config(RECIPES_DIR / "tiny-debug.yaml")["preset"]
    assert data_args.dataset == ["essen/kinder0"]


def test_a_recipe_path_wins_over_the_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny-debug.yaml").write_text("preset: wider-shallower\nmax_steps: 4\n")
    model_args, _, training_args = parse_args(["--config", "tiny-debug.yaml"])
    assert (model_args.preset, training_args.max_steps) == ("wider-shallower", 4)


def test_an_unknown_recipe_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no shipped recipe of that name.*tiny-debug"):
        parse_args(["--config", "tiny-debgu"])
    with pytest.raises(ConfigError, match="no such recipe file"):
        parse_args(["--config", "elsewhere/tiny-debug.yaml"])  # a folder that is not recipes/: never guessed


def test_recipes_command_lists_recipes_and_prints_paths(capsys):
    from hf_melody.cli import main
    from hf_melody.parser import RECIPES_DIR

    assert main(["recipes"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{p.stem} " in listed for p in RECIPES) and "cpu-2proc" in listed
    assert main(["recipes", "--path", "cpu-2proc"]) == 0
    assert Path(capsys.readouterr().out.strip()) == RECIPES_DIR / "accelerate_configs" / "cpu-2proc.yaml"
    assert main(["recipes", "--path", "nope"]) == 2
    assert "choose from" in capsys.readouterr().err


def test_version_flag(capsys):
    from importlib.metadata import version

    from hf_melody.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"hf-melody {version('hf_melody')}"
