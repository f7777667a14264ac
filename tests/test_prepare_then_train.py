"""`hf-melody prepare` then `hf-melody train --dataset <that folder>`: the prepared blocks and tokenizer are used."""

from __future__ import annotations

import json

import pytest
from datasets import load_from_disk

from hf_melody import ConfigError, MelodyPipeline
from hf_melody.cli import main
from hf_melody.data.prepared import find_prepared, is_prepared


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, fixtures_dir):
    out = tmp_path_factory.mktemp("prepared")
    midi = tmp_path_factory.mktemp("midi")
    for f in fixtures_dir.glob("kinder0_*.mid"):
        (midi / f.name).write_bytes(f.read_bytes())
    assert main(["prepare", "--dataset", f"essen/kinder0,{midi}", "--out", str(out), "--max-length", "64",
                 "--augment-semitones", "0"]) == 0
    return out


def test_train_accepts_a_prepared_folder(prepared, tmp_path, capsys):
    assert is_prepared(prepared) and is_prepared(prepared / "dataset")
    assert find_prepared([str(prepared / "dataset")]) == prepared
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(prepared), "--preset", "original", "--output_dir", str(run),
                 "--max_steps", "4", "--eval_steps", "2", "--save_strategy", "no", "--disable_tqdm", "true",
                 "--per_device_train_batch_size", "4", "--report_to", "none"]) == 0
    # the model fits the prepared blocks and speaks the prepared vocabulary
    config = json.loads((run / "config.json").read_text())
    blocks = load_from_disk(str(prepared / "dataset"))
    assert config["n_positions"] >= len(blocks["train"][0]["input_ids"])
    assert (run / "miditok.json").read_text() == (prepared / "miditok.json").read_text()
    info = json.loads((run / "training_info.json").read_text())
    assert str(prepared) in info["data_report"]
    assert MelodyPipeline.from_pretrained(run)(seed=0, max_new_notes=4)[0].num_notes <= 4


def test_a_prepared_folder_cannot_be_mixed_or_re_tokenized(prepared, tmp_path, capsys):
    with pytest.raises(ConfigError, match="already tokenized"):
        find_prepared([str(prepared), "essen/kinder0"])
    assert main(["train", "--dataset", str(prepared), "--bpe_vocab_size", "400", "--output_dir",
                 str(tmp_path / "r"), "--max_steps", "1"]) == 2
    assert "already tokenized" in capsys.readouterr().err
