"""bfloat16 autocast training on CPU: same losses as fp32 on a tiny model, and a clean fallback without CPU support."""

from __future__ import annotations

import math
from pathlib import Path

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
