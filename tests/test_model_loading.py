"""Loading a bundle safely: pickled weights refused unless allowed (and never running code), corrupt weights,
remote code, a config that does not fit the tokenizer or is not GPT-2, and Hub ids with `..`, each a typed one-line
`ModelLoadError`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import gpt2_bundle, probe_registry
from hf_melody import ModelLoadError


# --------------------------------------------------------------------------------------------------------------
# loading refuses pickled weights and remote code unless asked
# --------------------------------------------------------------------------------------------------------------
def test_pickled_weights_are_refused_unless_allow_pickle(tmp_path, tokenizer):
    import torch

    from hf_melody import build_model, load_model

    model = build_model("original", tokenizer, n_positions=32, seed=0)
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "pytorch_model.bin"]
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path)
    assert "allow_pickle=True" in str(info.value) and str(tmp_path) in str(info.value)
    assert "\n" not in str(info.value)
    loaded = load_model(tmp_path, allow_pickle=True)
    state = loaded.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_weights_are_a_model_load_error(tmp_path, tokenizer, damage):
    from hf_melody import build_model, load_model

    build_model("original", tokenizer, n_positions=32, seed=0).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"garbage" * 10 if damage == "garbage" else weights.read_bytes()[:500])
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_remote_code_in_a_bundle_is_not_run_by_default(tmp_path, tokenizer):
    from hf_melody import build_model, load_model

    marker = tmp_path / "code_was_run"
    model = build_model("original", tokenizer, n_positions=32, seed=0)
    model.save_pretrained(tmp_path / "bundle")
    config_path = tmp_path / "bundle" / "config.json"
    config = json.loads(config_path.read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    config_path.write_text(json.dumps(config))
    (tmp_path / "bundle" / "evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import GPT2Config, GPT2LMHeadModel\n"
        "class EvilConfig(GPT2Config):\n    pass\n"
        "class EvilModel(GPT2LMHeadModel):\n    config_class = EvilConfig\n")
    loaded = load_model(tmp_path / "bundle")
    assert type(loaded).__name__ == "GPT2LMHeadModel"
    assert not marker.exists(), "the bundle's Python code was executed without trust_remote_code=True"


PROBES, probe = probe_registry()  # this file's probes: @probe(name) registers f(request, tmp_path)


def edit_config(bundle: Path, **changes) -> Path:
    path = bundle / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, **changes}))
    return path


# --------------------------------------------------------------------------------------------------------------
# rows 10, 11, 12: bundles that must not load
# --------------------------------------------------------------------------------------------------------------
class _RunsCode:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@probe("10-malicious-pickle-with-allow-pickle")
def _(request, tmp_path):
    import torch

    from hf_melody import load_model

    bundle = gpt2_bundle(tmp_path)
    (bundle / "model.safetensors").unlink()
    marker = tmp_path / "code_was_run"
    torch.save({"transformer.wte.weight": _RunsCode(str(marker))}, bundle / "pytorch_model.bin")
    with pytest.raises(ModelLoadError) as info:
        load_model(bundle, allow_pickle=True)
    message = str(info.value)
    assert str(bundle) in message and "model.safetensors" in message and "\n" not in message
    assert not marker.exists(), "the pickle's code ran"


@probe("11-config-vocab-size-mismatch")
def _(request, tmp_path):
    from hf_melody import MelodyTokenizer, load_model

    bundle = gpt2_bundle(tmp_path)
    wrong = MelodyTokenizer().vocab_size + 37
    config = edit_config(bundle, vocab_size=wrong)
    with pytest.raises(ModelLoadError) as info:
        load_model(bundle)
    message = str(info.value)
    assert str(config) in message and f"vocab_size is {wrong}" in message and "miditok.json" in message
    assert "\n" not in message and ";" in message


@probe("12-config-model-type-bert")
def _(request, tmp_path):
    from hf_melody import MelodyPipeline, load_model

    bundle = gpt2_bundle(tmp_path)
    config = edit_config(bundle, model_type="bert", architectures=["BertLMHeadModel"])
    for load in (load_model, MelodyPipeline.from_pretrained):
        with pytest.raises(ModelLoadError) as info:
            load(bundle)
        message = str(info.value)
        assert str(config) in message and "'bert'" in message and '"gpt2"' in message and "\n" not in message


# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PROBES))
def test_probe(name, request, tmp_path):
    PROBES[name](request, tmp_path)


@pytest.mark.parametrize("name", ["../etc", "org/../x", "..", "a/b/c/..", "../../tmp"])
def test_passing_hub_ids_with_dot_dot_are_refused(name):
    from hf_melody import MelodyPipeline

    with pytest.raises(ModelLoadError) as info:
        MelodyPipeline.from_pretrained(name)
    assert name in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------------------------
# issue 27: bundle files checked for types and sizes before anything is built from them
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("changes", "words"), [
    ({"n_head": 0}, ["n_head is 0", "from 1 to 64"]),
    ({"n_positions": "512"}, ["n_positions is '512'", "an integer"]),
    ({"n_layer": 10**5}, ["n_layer is 100000", "from 1 to 48", "MODEL_LIMITS"]),
    ({"n_embd": True}, ["n_embd is True"]),
    ({"vocab_size": 10**9}, ["vocab_size is 1000000000", "65536"]),
    ({"n_head": 5}, ["n_embd=", "not a multiple of n_head=5"]),
    ({"layer_norm_epsilon": "tiny"}, ["layer_norm_epsilon is 'tiny'"]),
])
def test_config_json_is_checked_before_the_model_is_built(tmp_path, changes, words):
    import time

    from hf_melody import MelodyPipeline, load_model

    bundle = gpt2_bundle(tmp_path)
    config = edit_config(bundle, **changes)
    for load in (load_model, MelodyPipeline.from_pretrained):
        start = time.perf_counter()
        with pytest.raises(ModelLoadError) as info:
            load(bundle)
        message = str(info.value)
        assert str(config) in message and "\n" not in message and time.perf_counter() - start < 5
        assert all(w in message for w in words), message
        assert "config.json" in message.split(";")[-1] or "restore" in message


def test_deep_or_huge_json_files_are_model_load_errors(tmp_path, monkeypatch):
    from hf_melody import MelodyPipeline, MelodyTokenizer, bundle

    folder = gpt2_bundle(tmp_path)
    (folder / "config.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ModelLoadError, match="config.json: JSON nested too deep to read; re-save the bundle"):
        MelodyPipeline.from_pretrained(folder)
    (folder / "miditok.json").write_text('{"config": ' * 200_000 + "{}" + "}" * 200_000)
    with pytest.raises(ModelLoadError, match="miditok.json: JSON nested too deep"):
        MelodyTokenizer.from_pretrained(folder)
    monkeypatch.setattr(bundle, "MAX_JSON_BYTES", 100)
    with pytest.raises(ModelLoadError, match=r"miditok.json: [\d,]+ bytes, over the 100 .*MAX_JSON_BYTES"):
        MelodyTokenizer.from_pretrained(folder)


@pytest.mark.parametrize(("changes", "words"), [
    ({"do_sample": "false"}, ["do_sample is 'false'", "true or false"]),
    ({"temperature": "0.8"}, ["temperature is '0.8'", "a finite number"]),
    ({"num_beams": 2.5}, ["num_beams is 2.5", "an integer"]),
    ({"top_k": True}, ["top_k is True"]),
])
def test_generation_config_json_types_are_checked(tmp_path, changes, words):
    from hf_melody import MelodyPipeline

    folder = gpt2_bundle(tmp_path)
    path = folder / "generation_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
    with pytest.raises(ModelLoadError) as info:
        MelodyPipeline.from_pretrained(folder)
    message = str(info.value)
    assert str(path) in message and "\n" not in message and all(w in message for w in words), message


@pytest.mark.parametrize(("changes", "words"), [
    ({"beat_res": {"0_4": 10**6}}, ["beat_res '0_4': 1000000", "MAX_BEAT_RES_TOKENS"]),
    ({"beat_res": {"0_10000000": 4}}, ["over 4096 time steps"]),
    ({"beat_res": {"4_0": 4}}, ["beat_res entry '4_0'"]),
    ({"beat_res": {"0_4": "4"}}, ["beat_res entry '0_4': '4'"]),
    ({"pitch_range": [0, 1000]}, ["pitch_range is [0, 1000]"]),
    ({"num_velocities": 10**7}, ["num_velocities is 10000000"]),
])
def test_miditok_json_is_checked_before_miditok_builds(tmp_path, changes, words):
    import time

    from hf_melody import MelodyPipeline, MelodyTokenizer

    folder = gpt2_bundle(tmp_path)
    path = folder / "miditok.json"
    data = json.loads(path.read_text())
    data["config"].update(changes)
    path.write_text(json.dumps(data))
    for load in (MelodyTokenizer.from_pretrained, MelodyPipeline.from_pretrained):
        start = time.perf_counter()
        with pytest.raises(ModelLoadError) as info:
            load(folder)
        message = str(info.value)
        assert str(path) in message and "\n" not in message and all(w in message for w in words), message
        assert "restore the bundle's own miditok.json" in message and time.perf_counter() - start < 5
