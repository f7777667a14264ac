"""Training: presets, the real recipe path lowers loss and writes a complete bundle, 2-process DDP on CPU,
bfloat16 autocast, the time limit, fine-tuning recipes, and the Python entry points `hf_melody.train` /
`hf_melody.evaluate` on the real fixture MIDI folder."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import hf_melody
from hf_melody import (
    PRESETS,
    ConfigError,
    DataArguments,
    EvaluationArguments,
    MelodyPipeline,
    MelodyTrainingArguments,
    ModelArguments,
    build_model,
    load_model,
)
from hf_melody.modeling.presets import num_parameters

ROOT = Path(__file__).parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models on one torch thread


@pytest.mark.parametrize("preset, low, high", [
    ("original", 20_000, 45_000), ("deeper-thinner", 20_000, 45_000), ("wider-shallower", 20_000, 50_000),
    ("small", 700_000, 1_200_000), ("base", 4_000_000, 6_000_000),
])
def test_preset_sizes(tokenizer, preset, low, high):
    model = build_model(preset, tokenizer, n_positions=256)
    assert low <= num_parameters(model) <= high
    cfg = model.config
    assert (cfg.n_embd, cfg.n_head, cfg.n_layer) == tuple(PRESETS[preset][k] for k in ("n_embd", "n_head", "n_layer"))
    assert cfg.vocab_size == tokenizer.vocab_size and cfg.bos_token_id == tokenizer.bos_token_id


def test_unknown_preset(tokenizer):
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        build_model("huge", tokenizer)


def test_recipe_training_lowers_loss_and_writes_bundle(tiny_bundle):
    files = {p.name for p in tiny_bundle.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "miditok.json", "training_log.json",
            "training_info.json", "README.md"} <= files
    assert "pytorch_model.bin" not in files
    # tokenizer.json is the Hugging Face view of the vocabulary (AutoTokenizer), never miditok's file
    assert json.loads((tiny_bundle / "tokenizer.json").read_text())["model"]["type"] == "WordLevel"
    log = json.loads((tiny_bundle / "training_log.json").read_text())
    evals = [e["eval_loss"] for e in log["eval"]]
    assert len(evals) >= 2 and evals[-1] < evals[0] - 0.1
    vocab = json.loads((tiny_bundle / "config.json").read_text())["vocab_size"]
    assert evals[-1] < 0.5 * math.log(vocab)  # far below a uniform guess (ln 176 = 5.2 nats)
    assert log["train"][-1]["loss"] < log["train"][0]["loss"] - 0.5
    info = json.loads((tiny_bundle / "training_info.json").read_text())
    assert info["dataset"] == ["essen/kinder0"] and info["max_steps"] == 80


def test_training_changes_every_parameter(tiny_bundle, tokenizer):
    trained = load_model(tiny_bundle)
    fresh = build_model("original", tokenizer, n_positions=trained.config.n_positions, seed=0)
    for (name, a), (_, b) in zip(trained.named_parameters(), fresh.named_parameters(), strict=True):
        assert not torch.equal(a, b), f"{name} did not change"


def test_two_cpu_processes_train_with_gloo(tmp_path):
    """`accelerate launch` with two CPU processes (DDP over gloo) trains and writes one bundle."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "recipes/accelerate_configs/cpu-2proc.yaml"), "--num_cpu_threads_per_process", "1",
           str(ROOT / "recipes/train.py"), "--config", str(ROOT / "recipes/tiny-debug.yaml"),
           "--output_dir", str(out), "--max_steps", "12", "--eval_steps", "6", "--save_strategy", "no",
           "--per_device_train_batch_size", "8", "--disable_tqdm", "true"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = json.loads((out / "training_log.json").read_text())
    evals = [e["eval_loss"] for e in log["eval"]]
    vocab = json.loads((out / "config.json").read_text())["vocab_size"]
    # a real improvement: 3.85 -> 3.54 nats in one process with the same 16-block global batch
    assert len(evals) >= 2 and evals[-1] < evals[0] - 0.1 and evals[-1] < math.log(vocab) - 1.0
    info = json.loads((out / "training_info.json").read_text())
    assert info["max_steps"] == 12 and info["world_size"] == 2 and info["global_batch_size"] == 16
    assert (out / "model.safetensors").is_file()


SMALL = Path(__file__).parents[1] / "recipes" / "small.yaml"


def train_losses(tmp_path, bf16: bool, kinder_melodies, tokenizer) -> list[float]:
    from transformers import Trainer, TrainerCallback, default_data_collator

    from hf_melody.data.arguments import DataConfig
    from hf_melody.data.dataset import build_dataset
    from hf_melody.modeling.presets import build_model
    from hf_melody.training.arguments import MelodyTrainingArguments

    class Losses(TrainerCallback):
        def __init__(self):
            self.values: list[float] = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.values.append(float(logs["loss"]))

    ds = build_dataset(kinder_melodies[:60], tokenizer, DataConfig(max_length=64, augment_semitones=1), cache=False)
    model = build_model("original", tokenizer, n_positions=64, dropout=0.0, seed=0)
    losses = Losses()
    args = MelodyTrainingArguments(output_dir=str(tmp_path / ("bf16" if bf16 else "fp32")), max_steps=40,
                                   per_device_train_batch_size=16, learning_rate=5e-3, lr_scheduler_type="constant",
                                   warmup_steps=0, eval_strategy="no", save_strategy="no", logging_steps=10,
                                   use_cpu=True, bf16=bf16, report_to="none", disable_tqdm=True, seed=0,
                                   dataloader_num_workers=0)
    Trainer(model=model, args=args, train_dataset=ds["train"], data_collator=default_data_collator,
            callbacks=[losses]).train()
    return losses.values


def test_bf16_and_fp32_training_give_the_same_losses(tmp_path, kinder_melodies, tokenizer):
    from hf_melody.training.trainer import cpu_supports_bf16

    fp32 = train_losses(tmp_path, False, kinder_melodies, tokenizer)
    bf16 = train_losses(tmp_path, cpu_supports_bf16(), kinder_melodies, tokenizer)
    assert len(fp32) == len(bf16) == 4
    assert fp32[-1] < fp32[0] - 0.5  # it learns: the comparison is not between two flat lines
    for a, b in zip(fp32, bf16, strict=True):
        assert math.isclose(a, b, rel_tol=0.03), (fp32, bf16)  # bf16 matmuls round to ~3 significant digits


def test_bf16_falls_back_to_fp32_on_a_cpu_without_it(monkeypatch, caplog):
    import hf_melody.training.trainer as training

    monkeypatch.setattr(training, "cpu_supports_bf16", lambda: False)
    _, _, args = training.parse_args(["--config", str(SMALL), "--output_dir", "out/x", "--max_steps", "1"])
    assert args.bf16 is False and "no native bfloat16" in caplog.text
    monkeypatch.setattr(training, "cpu_supports_bf16", lambda: True)
    _, _, args = training.parse_args(["--config", str(SMALL), "--output_dir", "out/x", "--max_steps", "1"])
    assert args.bf16 is True


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


def test_max_train_minutes_stops_training_after_the_step_that_passes_it(tmp_path):
    out = tmp_path / "run"
    hf_melody.train({**tiny_run(out), "max_steps": 50, "max_train_minutes": 1e-6})
    log = json.loads((out / "training_log.json").read_text())
    assert [entry["step"] for entry in log["train"]] == [1]  # the first step already passes the limit
    with pytest.raises(ConfigError, match="max_train_minutes=0"):
        MelodyTrainingArguments(output_dir=str(out), max_train_minutes=0)


# ---- the fine-tuning recipe --------------------------------------------------------------------------------------


def test_finetune_style_recipe_parses(tmp_path):
    from hf_melody.training.trainer import parse_args

    model_args, data_args, training_args = parse_args(["--config", str(ROOT / "recipes" / "finetune_style.yaml"),
                                                       "--dataset", str(tmp_path)])
    assert model_args.init_from == "folk-base" and data_args.use_style_tokens
    assert training_args.learning_rate < 0.002 and training_args.max_train_minutes == 15


@pytest.mark.slow
def test_finetune_style_recipe_runs(tiny_bundle, kinder_melodies, tmp_path):
    """The recipe end to end on a MIDI folder, starting from the tiny bundle (folk-base may not be there)."""
    from hf_melody.training.trainer import parse_args, train

    folder = tmp_path / "midi"
    folder.mkdir()
    for m in kinder_melodies[:30]:
        m.to_score().dump_midi(str(folder / f"{m.id.split('/')[-1]}.mid"))
    out = tmp_path / "styled"
    train(*parse_args(["--config", str(ROOT / "recipes" / "finetune_style.yaml"), "--dataset", str(folder),
                       "--init_from", str(tiny_bundle), "--max_length", "128", "--output_dir", str(out),
                       "--max_steps", "10", "--eval_steps", "5", "--save_steps", "5", "--disable_tqdm", "true"]))
    styled = MelodyPipeline.from_pretrained(out)
    [m] = styled(style="other", seed=0)
    assert m.token_ids[1] == styled.melody_tokenizer.style_token_id("other") and m.num_notes > 0


# ---- tracking that shows music (issue 22 point 6) -----------------------------------------------------------------
def _kinder_folder(tmp_path: Path) -> Path:
    """40 Kinderlieder as MIDI files: enough for a validation split that evaluates."""
    from hf_melody.data.corpora import load_melodies

    folder = tmp_path / "midi"
    folder.mkdir()
    for m in load_melodies("essen/kinder0", progress=False)[0][:40]:
        m.to_score().dump_midi(str(folder / f"{m.id.split('/')[-1]}.mid"))
    return folder


def test_tensorboard_gets_bits_per_note_and_sampled_melodies(tmp_path, monkeypatch):
    """A real run reporting to TensorBoard: the event files hold eval/bits_per_note (= eval loss in bits times the
    validation split's tokens per note) and, with log_melodies, a piano roll and audio per sampled melody."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from hf_melody.training.tracking import tokens_per_note

    out = tmp_path / "run"
    melodies_dir = _kinder_folder(tmp_path)
    run = {**tiny_run(out), "dataset": str(melodies_dir), "validation_ratio": 0.2, "max_steps": 4,
           "eval_strategy": "steps", "eval_steps": 2, "report_to": "tensorboard", "log_melodies": 2}
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))  # transformers 5: where TensorBoard writes
    hf_melody.train(run)
    evals = json.loads((out / "training_log.json").read_text())["eval"]
    assert [h["step"] for h in evals] == [2, 4, 4] and all("eval_bits_per_note" in h for h in evals)
    ratio = evals[0]["eval_bits_per_note"] / (evals[0]["eval_loss"] / math.log(2))
    assert 2 < ratio < 6  # REMI: Position, Pitch, Duration per note plus bar lines
    events = EventAccumulator(str(next((tmp_path / "tb").rglob("events.out.tfevents*")).parent),
                              size_guidance={"images": 0, "audio": 0}).Reload()
    tags = events.Tags()
    assert "eval/bits_per_note" in tags["scalars"]
    scalars = events.Scalars("eval/bits_per_note")
    assert [e.step for e in scalars] == [h["step"] for h in evals]
    assert [e.value for e in scalars] == pytest.approx([h["eval_bits_per_note"] for h in evals], rel=1e-5)
    assert {"melodies/piano_roll_0", "melodies/piano_roll_1"} <= set(tags["images"])
    assert {"melodies/audio_0", "melodies/audio_1"} <= set(tags["audio"])
    image = events.Images("melodies/piano_roll_0")[0]
    assert image.width > 200 and image.height > 100 and image.step == 2
    assert tokens_per_note(None, None) is None


def test_wandb_offline_gets_the_sampled_melodies(tmp_path, monkeypatch):
    """The same run reporting to Weights & Biases offline: the run folder holds the piano rolls and the audio."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    melodies_dir = _kinder_folder(tmp_path)
    hf_melody.train({**tiny_run(tmp_path / "run"), "dataset": str(melodies_dir), "validation_ratio": 0.2,
                     "max_steps": 2, "eval_strategy": "steps", "eval_steps": 2, "report_to": "wandb",
                     "log_melodies": 2})
    [run] = (tmp_path / "wandb" / "wandb").glob("offline-run-*")
    images = list((run / "files" / "media" / "images" / "melodies").glob("piano_roll_*.png"))
    audio = list((run / "files" / "media" / "audio" / "melodies").glob("audio_*.wav"))
    assert len(images) >= 2 and len(audio) >= 2
    assert all(p.stat().st_size > 1000 for p in images + audio)


def test_trackio_gets_the_sampled_melodies(tmp_path, monkeypatch):
    """And to trackio (local SQLite and media folder): a piano roll and the audio of each sampled melody."""
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))  # read when trackio is first imported
    trackio = pytest.importorskip("trackio")

    root = Path(trackio.TRACKIO_DIR) / "media"  # tmp_path unless another test imported trackio first
    before = set(root.rglob("*")) if root.exists() else set()
    melodies_dir = _kinder_folder(tmp_path)
    hf_melody.train({**tiny_run(tmp_path / "run"), "dataset": str(melodies_dir), "validation_ratio": 0.2,
                     "max_steps": 2, "eval_strategy": "steps", "eval_steps": 2, "report_to": "trackio",
                     "log_melodies": 2})
    trackio.finish()  # now, inside the test (its exit hook would print after pytest's summary)
    media = set(root.rglob("*")) - before
    assert len([p for p in media if p.suffix == ".png"]) >= 2 and len([p for p in media if p.suffix == ".wav"]) >= 2
