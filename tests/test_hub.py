"""The bundle: save/push/load round trips like transformers (one bundle layout, no code copied, bundled names
offline), folder and Hub-cache loading, model cards, push_to_hub up to the upload call."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import transformers

from hf_melody import (
    ConfigError,
    HFMelodyError,
    MelodyPipeline,
    ModelLoadError,
    load_model,
    push_bundle_to_hub,
    save_bundle,
)
from hf_melody.bundle import CHECKPOINTS_DIR, DEFAULT_MODEL
from hf_melody.hub import load_tokenizer


def _hub_cache_snapshot(bundle: Path, repo_id: str) -> Path:
    """Lay a bundle out the way huggingface_hub caches a downloaded repo."""
    cache = Path(os.environ["HF_HOME"]) / "hub"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    sha = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True, exist_ok=True)
    for f in bundle.iterdir():
        if f.is_file():
            shutil.copy(f, snapshot / f.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(sha)
    return snapshot


def test_bundle_round_trips_through_a_folder(tiny_bundle, tmp_path):
    model, tok = load_model(tiny_bundle), load_tokenizer(tiny_bundle)
    save_bundle(model, tok, tmp_path / "copy", training_info={"preset": "original", "num_parameters": 1})
    files = {p.name for p in (tmp_path / "copy").iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "miditok.json", "README.md"} <= files
    assert not {f for f in files if f.endswith((".bin", ".pt", ".pkl"))}
    a = MelodyPipeline.from_pretrained(tiny_bundle)(seed=5, max_new_notes=10)[0]
    b = MelodyPipeline.from_pretrained(tmp_path / "copy")(seed=5, max_new_notes=10)[0]
    assert a.token_ids == b.token_ids


def test_bundle_loads_by_hub_id_from_the_offline_cache(tiny_bundle):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    _hub_cache_snapshot(tiny_bundle, "hf-melody-tests/tiny")
    pipe = MelodyPipeline.from_pretrained("hf-melody-tests/tiny")
    local = MelodyPipeline.from_pretrained(tiny_bundle)
    assert pipe(seed=1, max_new_notes=6)[0].token_ids == local(seed=1, max_new_notes=6)[0].token_ids
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE is set"):
        MelodyPipeline.from_pretrained("hf-melody-tests/absent")


def test_model_card_has_hub_metadata_and_a_runnable_quick_start(tiny_bundle):
    card = (tiny_bundle / "README.md").read_text()
    # `other`: a pipeline tag the Hub knows (melody-generation is none)
    assert card.startswith("---\nlibrary_name: hf_melody\npipeline_tag: other\n")
    info = json.loads((tiny_bundle / "training_info.json").read_text())
    assert f"{info['final_eval_loss']:.4f}" in card and "essen/kinder0" in card
    snippet = card.split("```python\n", 1)[1].split("```", 1)[0]
    snippet = snippet.replace(f'"{tiny_bundle.name}"', repr(str(tiny_bundle)))
    cwd = os.getcwd()
    os.chdir(tiny_bundle.parent)
    try:
        exec(compile(snippet, "card-snippet", "exec"), {})
    finally:
        os.chdir(cwd)
    assert (tiny_bundle.parent / "melody.mid").read_bytes()[:4] == b"MThd"


def test_push_to_hub_fails_clearly_offline_and_uploads_the_bundle(tiny_bundle, tmp_path, monkeypatch):
    with pytest.raises(HFMelodyError, match="HF_HUB_OFFLINE is set"):
        push_bundle_to_hub(tiny_bundle, "me/melody")
    with pytest.raises(HFMelodyError, match="missing config.json; save the bundle"):
        push_bundle_to_hub(tmp_path, "me/melody")
    # online path, exercised up to the upload call (no network here): record what would be sent
    import huggingface_hub

    calls = {}
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, private=False, exist_ok=False: calls.update(repo=repo_id,
                                                                                         private=private))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder",
                        lambda self, **kw: calls.update(kw) or type("Info", (), {"commit_url": "url"})())
    assert push_bundle_to_hub(tiny_bundle, "me/melody", private=True) == "url"
    assert calls["repo"] == "me/melody" and calls["private"] is True
    assert calls["folder_path"] == str(tiny_bundle) and "*.safetensors" in calls["allow_patterns"]
    assert not any(p.endswith(".bin") for p in calls["allow_patterns"])


@pytest.mark.parametrize("name", ["folk-base", "original", "deeper-thinner", "wider-shallower"])
def test_bundled_cards_match_results_and_their_snippet_runs(name, tmp_path):
    root = Path(__file__).parents[1]
    card = (root / "model_cards" / f"{name}.md").read_text()
    results = json.loads((root / "model_cards" / "eval" / "results.json").read_text())["models"][name]
    for metric in ("bits_per_note", "pitch_bits_per_note", "token_perplexity"):
        assert f"- type: {metric}\n      value: {round(results[metric], 4)}\n" in card
    from hf_melody.bundle import CHECKPOINTS_DIR

    assert (CHECKPOINTS_DIR / name / "README.md").read_text() == card
    snippet = card.split("```python\n", 1)[1].split("```", 1)[0]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(snippet, f"{name}-card", "exec"), {})
    finally:
        os.chdir(cwd)
    assert (tmp_path / "melody.mid").read_bytes()[:4] == b"MThd"


def test_a_tokenizer_of_another_model_is_refused(tiny_bundle, kinder_melodies):
    from hf_melody import MelodyTokenizer

    tok = MelodyTokenizer()
    tok.train_bpe(250, kinder_melodies[:40])
    with pytest.raises(ModelLoadError, match="does not belong to this model"):
        MelodyPipeline(load_model(tiny_bundle), melody_tokenizer=tok)


# --------------------------------------------------------------------------------------------------------------
# `--push_to_hub` from training: checked before any work, card of the run, pushed with the run's token
# --------------------------------------------------------------------------------------------------------------
def _push_run_args(tmp_path: Path, *extra: str) -> list[str]:
    from conftest import melody_folder, run_args

    data = tmp_path / "data"
    if not data.exists():
        melody_folder(data, n=24)
    return ["train", *run_args(data, tmp_path / "run", "--push_to_hub", "true", *extra)]


def _tripwire_on_data(monkeypatch) -> None:
    import hf_melody.data.corpora

    def tripwire(*args, **kwargs):
        raise AssertionError("data loading started before the Hub check")

    monkeypatch.setattr(hf_melody.data.corpora, "load_melodies", tripwire)


def _cli(argv, capsys):
    from hf_melody.cli import main

    code = main(argv)
    return code, capsys.readouterr().err.strip()


def test_push_to_hub_offline_fails_in_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    _tripwire_on_data(monkeypatch)
    code, err = _cli(_push_run_args(tmp_path), capsys)
    assert code == 2 and err.count("\n") == 0, err
    assert "--push_to_hub to run: HF_HUB_OFFLINE is set" in err and "hf auth login" in err
    assert not (tmp_path / "run").exists()


def test_push_to_hub_without_network_or_login_fails_in_one_line(tmp_path, monkeypatch, capsys):
    """The real `whoami` call against an address where nothing listens (the network is absent)."""
    from huggingface_hub import constants

    _tripwire_on_data(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    code, err = _cli(_push_run_args(tmp_path), capsys)
    assert code == 2 and "not logged in" in err and "--hub_token" in err and "\n" not in err, err
    code, err = _cli(_push_run_args(tmp_path, "--hub_token", "hf_not_a_real_token"), capsys)
    assert code == 2 and "cannot reach the Hugging Face Hub" in err and "\n" not in err, err
    assert not (tmp_path / "run").exists()


def test_push_to_hub_after_training_uploads_a_truthful_bundle(tmp_path, monkeypatch, capsys):
    """Everything up to the upload call runs for real; the Hub's three endpoints record what they were sent."""
    import huggingface_hub

    calls = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", lambda self, *a, **k: calls.append(
        ("whoami", self.token)) or {"name": "me", "orgs": [{"name": "lab"}]})
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(
        ("create_repo", self.token, repo_id, kw.get("private"))))

    def upload_folder(self, folder_path, repo_id, **kw):
        from huggingface_hub.utils import filter_repo_objects

        files = [p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file()]
        sent = set(filter_repo_objects(files, allow_patterns=kw["allow_patterns"],
                                       ignore_patterns=kw["ignore_patterns"]))
        assert {"model.safetensors", "config.json", "generation_config.json", "miditok.json", "README.md",
                "training_info.json"} <= sent, sent
        assert not [f for f in sent if f.startswith("checkpoint-")], sent
        calls.append(("upload_folder", self.token, repo_id))
        calls.append(("card", (Path(folder_path) / "README.md").read_text()))
        return type("Info", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/0"})()

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    with pytest.raises(HFMelodyError, match="cannot write to 'someone-else'; set --hub_model_id to me/x"):
        from hf_melody.training.trainer import parse_args, train

        train(*parse_args(_push_run_args(tmp_path, "--hub_token", "hf_tok", "--hub_model_id", "someone-else/x")[1:]))
    calls.clear()
    code, err = _cli(_push_run_args(tmp_path, "--hub_token", "hf_tok", "--hub_model_id", "tiny-push"), capsys)
    assert code == 0, err
    assert [c[:3] for c in calls[:3]] == [("whoami", "hf_tok"), ("create_repo", "hf_tok", "me/tiny-push"),
                                          ("upload_folder", "hf_tok", "me/tiny-push")]
    card = calls[3][1]
    info = json.loads((tmp_path / "run" / "training_info.json").read_text())
    assert 'MelodyPipeline.from_pretrained("me/tiny-push")' in card
    assert f"| steps | {info['max_steps']} |" in card and info["max_steps"] == 4
    assert f"| data | {tmp_path / 'data'} |" in card and f"Trained only on {tmp_path / 'data'}" in card
    assert f"| final train loss | {info['final_train_loss']:.4f} |" in card
    assert "folk tunes and chorales" not in card


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


def test_shipped_and_saved_bundles_turn_the_kv_cache_on(tmp_path):
    """`use_cache: true` in every bundle (transformers' `generate` recomputes every step without it); saving does
    not change the setting of the model being trained."""
    import json

    from hf_melody import MelodyTokenizer, build_model
    from hf_melody.bundle import CHECKPOINTS_DIR, bundled_checkpoints

    configs = [json.loads((CHECKPOINTS_DIR / n / "config.json").read_text()) for n in bundled_checkpoints()]
    assert len(configs) == 4 and all(c["use_cache"] is True for c in configs)
    tok = MelodyTokenizer()
    model = build_model("original", tok)
    model.config.use_cache = False  # as during training
    save_bundle(model, tok, tmp_path / "b")
    assert json.loads((tmp_path / "b" / "config.json").read_text())["use_cache"] is True
    assert model.config.use_cache is False
