"""The one parser and the Python entry points: `hf_melody.train` / `hf_melody.evaluate` on the real fixture MIDI
folder, both flag spellings, no abbreviations, did-you-mean for unknown keys, and the dataclasses' own checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hf_melody
from hf_melody import ConfigError, DataArguments, EvaluationArguments, MelodyTrainingArguments, ModelArguments
from hf_melody.data.arguments import prepare_parser
from hf_melody.evaluation.arguments import evaluation_parser
from hf_melody.training.arguments import training_parser

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "recipes" / "tiny-debug.yaml")
FIXTURES = Path(__file__).parent / "fixtures"


def tiny_run(output_dir: Path) -> dict:
    """Three steps of the smallest preset on the four fixture MIDI files (no evaluation, no checkpoints)."""
    return {"dataset": str(FIXTURES), "preset": "original", "dropout": 0.0, "max_length": 64, "augment_semitones": 1,
            "validation_ratio": 0.0, "test_ratio": 0.0, "output_dir": str(output_dir), "max_steps": 3,
            "per_device_train_batch_size": 4, "eval_strategy": "no", "save_strategy": "no", "logging_steps": 1,
            "disable_tqdm": True, "report_to": "none"}


@pytest.fixture(scope="module")
def python_bundle(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("python_train") / "bundle"
    return out, hf_melody.train(tiny_run(out))


# ---- Python entry points -----------------------------------------------------------------------------------------
def test_train_from_a_dict_writes_a_loadable_bundle(python_bundle):
    out, metrics = python_bundle
    assert metrics["train_loss"] > 0 and "eval_loss" not in metrics  # eval_strategy: no
    info = json.loads((out / "training_info.json").read_text())
    assert info["max_steps"] == 3 and info["dataset"] == [str(FIXTURES)]
    [melody] = hf_melody.MelodyPipeline.from_pretrained(out)(seed=0, max_new_notes=8)
    assert 1 <= melody.num_notes <= 8


def test_train_from_a_yaml_path_with_keyword_overrides(tmp_path):
    import yaml

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**tiny_run(tmp_path / "unused"), "max_steps": 50}))
    metrics = hf_melody.train(str(recipe), output_dir=str(tmp_path / "run"), max_steps=2)
    assert json.loads((tmp_path / "run" / "training_info.json").read_text())["max_steps"] == 2
    assert metrics["train_loss"] > 0 and not (tmp_path / "unused").exists()


def test_train_from_the_dataclasses_runs_the_file_system_checks_first(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="nor an existing MIDI folder"):
        hf_melody.train(ModelArguments(), DataArguments(dataset=[str(tmp_path / "missing")]),
                        MelodyTrainingArguments(output_dir=str(out), max_steps=2))
    with pytest.raises(ConfigError, match="n_positions=32"):
        hf_melody.train(ModelArguments(n_positions=32), DataArguments(dataset=[str(FIXTURES)], max_length=64),
                        MelodyTrainingArguments(output_dir=str(out), max_steps=2))
    assert not out.exists()


def test_train_rejects_unknown_keys_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'max_stesp'; did you mean max_steps\?"):
        hf_melody.train({**tiny_run(tmp_path / "run"), "max_stesp": 3})
    with pytest.raises(ConfigError, match="did you mean learning_rate"):
        hf_melody.train(TINY, learning_rat=0.1)
    assert not (tmp_path / "run").exists()


def test_evaluate_from_a_dict_and_from_the_dataclass(python_bundle, tmp_path):
    out, _ = python_bundle
    config = {"models": [str(out)], "dataset": str(FIXTURES), "split": "all", "ngram_folds": 2, "num_samples": 1,
              "prompt_bars": 1, "fair_pitch": False, "output_dir": str(tmp_path / "eval")}
    results = hf_melody.evaluate(config, progress=False)
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["num_melodies"] == results["num_melodies"]
    assert results["models"][str(out)]["samples"]["num_samples"] == 1
    again = hf_melody.evaluate(EvaluationArguments(**config), progress=False, output_dir=str(tmp_path / "again"))
    assert again["models"][str(out)]["bits_per_note"] == results["models"][str(out)]["bits_per_note"]
    with pytest.raises(ConfigError, match="did you mean num_samples"):
        hf_melody.evaluate(config, num_sample=3)


def test_continuations_do_not_depend_on_the_global_rng(python_bundle):
    import torch

    from hf_melody import load_melodies, load_model, load_tokenizer
    from hf_melody.evaluation import sample_metrics

    out, _ = python_bundle
    model, tok = load_model(out), load_tokenizer(out)
    melodies, _ = load_melodies(str(FIXTURES), progress=False)
    torch.manual_seed(1)
    first = sample_metrics(model, tok, melodies, num_samples=2, prompt_bars=1, seed=5)
    torch.manual_seed(2)
    second = sample_metrics(model, tok, melodies, num_samples=2, prompt_bars=1, seed=5)
    assert first["num_prompts"] >= 1 and first == second
    assert first["sample_temperature"] == model.generation_config.temperature  # the bundle's default


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


def test_data_config_is_the_data_arguments_under_its_old_name(kinder_melodies, tokenizer):
    from hf_melody import DataConfig, build_dataset

    config = DataConfig(max_length=64, augment_semitones=0, validation_ratio=0.1, test_ratio=0.1, seed=3)
    assert isinstance(config, DataArguments) and config.seed == config.split_seed == 3
    assert DataConfig().seed == 0 and DataConfig(dataset="a,b").dataset == ["a", "b"]
    dsd = build_dataset(kinder_melodies[:40], tokenizer, config, cache=False)
    assert set(dsd) <= {"train", "validation", "test"} and len(dsd["train"][0]["input_ids"]) == 64


def test_the_cache_key_of_build_dataset_is_unchanged(kinder_melodies, tokenizer):
    """Caches written before DataConfig became DataArguments are still found (same settings -> same key)."""
    import hashlib

    config = DataArguments(max_length=64, augment_semitones=2)
    h = hashlib.sha256()
    h.update(json.dumps({"max_length": 64, "augment_semitones": 2, "validation_ratio": 0.05, "test_ratio": 0.05,
                         "seed": 0, "use_style_tokens": True, "infill_ratio": 0.0}, sort_keys=True).encode())
    h.update(json.dumps(tokenizer.miditok.config.to_dict(serialize=True), sort_keys=True, default=str).encode())
    h.update(str(tokenizer.vocab_size).encode())
    for m in kinder_melodies[:3]:
        for part in (m.id.encode("utf-8", "surrogateescape"), json.dumps(m.notes).encode(),
                     json.dumps(m.time_signatures).encode(), m.style.encode()):
            h.update(part)
    assert config.fingerprint(kinder_melodies[:3], tokenizer) == h.hexdigest()[:20]


def test_max_train_minutes_stops_training_after_the_step_that_passes_it(tmp_path):
    out = tmp_path / "run"
    hf_melody.train({**tiny_run(out), "max_steps": 50, "max_train_minutes": 1e-6})
    log = json.loads((out / "training_log.json").read_text())
    assert [entry["step"] for entry in log["train"]] == [1]  # the first step already passes the limit
    with pytest.raises(ConfigError, match="max_train_minutes=0"):
        MelodyTrainingArguments(output_dir=str(out), max_train_minutes=0)
