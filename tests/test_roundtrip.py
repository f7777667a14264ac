"""Pipeline save/push/load round trips like transformers: one bundle layout, no code copied, bundled names offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers

from hf_melody import ConfigError, MelodyPipeline, ModelLoadError
from hf_melody.bundle import CHECKPOINTS_DIR, DEFAULT_MODEL

BUNDLE_FILES = {"model.safetensors", "config.json", "generation_config.json", "miditok.json", "README.md"}


def test_save_pretrained_writes_the_training_bundle_and_reloads_both_ways(tiny_bundle, tmp_path):
    pipe = MelodyPipeline.from_pretrained(tiny_bundle)
    out = pipe.save_pretrained(tmp_path / "saved")
    files = {p.name for p in out.iterdir()}
    assert BUNDLE_FILES <= files
    assert not [f for f in files if f.endswith(".py")], files  # no code copied
    config = json.loads((out / "config.json").read_text())
    assert "custom_pipelines" not in config and config["hf_melody"]["task"] == "melody-generation"
    # the card is carried over truthfully from the loaded bundle's training_info.json
    assert json.loads((out / "training_info.json").read_text()) == json.loads(
        (tiny_bundle / "training_info.json").read_text())
    assert (out / "README.md").read_text().startswith("---\nlibrary_name: hf_melody\n")

    expected = pipe(seed=3, max_new_notes=8)[0].token_ids
    assert MelodyPipeline.from_pretrained(out)(seed=3, max_new_notes=8)[0].token_ids == expected
    via_factory = transformers.pipeline("melody-generation", model=str(out))  # no trust_remote_code
    assert isinstance(via_factory, MelodyPipeline)
    assert via_factory(seed=3, max_new_notes=8)[0].token_ids == expected


def test_save_pretrained_refuses_a_file_and_unknown_options(tiny_bundle, tmp_path):
    pipe = MelodyPipeline.from_pretrained(tiny_bundle)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        pipe.save_pretrained(tmp_path / "f")
    with pytest.raises(ConfigError, match="max_shard_size"):
        pipe.save_pretrained(tmp_path / "d", max_shard_size="1GB")


def test_push_to_hub_uploads_the_same_bundle(tiny_bundle, monkeypatch):
    import huggingface_hub

    pipe = MelodyPipeline.from_pretrained(tiny_bundle)
    sent: dict = {}

    def upload_folder(self, folder_path, **kw):  # the network boundary: record what would be uploaded
        sent["files"] = {p.name for p in Path(folder_path).iterdir()}
        sent["config"] = json.loads((Path(folder_path) / "config.json").read_text())
        sent.update(kw)
        return type("Info", (), {"commit_url": "https://hub/commit/1"})()

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: sent.update(repo=repo_id))
    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", lambda self, *a, **kw: {"name": "me"}, raising=False)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    assert pipe.push_to_hub("me/melodies", private=True) == "https://hub/commit/1"
    assert sent["repo"] == "me/melodies" and sent["repo_id"] == "me/melodies"
    assert BUNDLE_FILES <= sent["files"] and not [f for f in sent["files"] if f.endswith(".py")]
    assert "custom_pipelines" not in sent["config"]


def test_bundled_names_and_the_task_default_load_offline():
    by_name = transformers.pipeline("melody-generation", model=DEFAULT_MODEL)
    default = transformers.pipeline("melody-generation")
    assert isinstance(by_name, MelodyPipeline) and isinstance(default, MelodyPipeline)
    assert by_name.model_name == default.model_name == DEFAULT_MODEL
    assert Path(default.model.name_or_path).resolve() == (CHECKPOINTS_DIR / DEFAULT_MODEL).resolve()
    a = by_name(seed=0, max_new_notes=6)[0].token_ids
    assert a == default(seed=0, max_new_notes=6)[0].token_ids
    assert a == MelodyPipeline.from_pretrained(DEFAULT_MODEL)(seed=0, max_new_notes=6)[0].token_ids


def test_from_pretrained_takes_hub_options(tiny_bundle, tmp_path):
    from test_hub import _hub_cache_snapshot

    _hub_cache_snapshot(tiny_bundle, "hf-melody-tests/rev")
    pipe = MelodyPipeline.from_pretrained("hf-melody-tests/rev", revision="main", token=False,
                                          local_files_only=True)
    assert pipe.melody_tokenizer.vocab_size == pipe.model.config.vocab_size
    # a cache_dir that does not hold the repo is really used (the lookup fails there, with our message)
    with pytest.raises(ModelLoadError, match="not a folder, a bundled checkpoint"):
        MelodyPipeline.from_pretrained("hf-melody-tests/rev", cache_dir=tmp_path / "empty-cache")
    # bundled names ignore Hub options that do not apply to a local folder
    assert MelodyPipeline.from_pretrained(DEFAULT_MODEL, revision="main").model_name == DEFAULT_MODEL


def test_every_checkpoint_is_a_loadable_bundle(tmp_path):
    from hf_melody.training.trainer import parse_args, train

    config = str(Path(__file__).parents[1] / "recipes" / "tiny-debug.yaml")
    train(*parse_args(["--config", config, "--output_dir", str(tmp_path), "--max_steps", "4", "--save_steps", "2",
                       "--eval_steps", "2", "--disable_tqdm", "true"]))
    checkpoints = sorted(tmp_path.glob("checkpoint-*"))
    assert [c.name for c in checkpoints] == ["checkpoint-2", "checkpoint-4"]
    for checkpoint in checkpoints:
        assert {"miditok.json", "generation_config.json", "config.json"} <= {p.name for p in checkpoint.iterdir()}
        assert MelodyPipeline.from_pretrained(checkpoint)(seed=0, max_new_notes=3)[0].num_notes <= 3
        assert isinstance(transformers.pipeline("melody-generation", model=str(checkpoint)), MelodyPipeline)
