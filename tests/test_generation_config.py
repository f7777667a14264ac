"""`MelodyGenerationConfig`: one validated dataclass behind the pipeline options, the settings and the CLI flags."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time

import pytest

from conftest import assert_one_line_cli_error, cli
from hf_melody import ConfigError, HFMelodyError, MelodyPipeline
from hf_melody.cli import build_parser, generation_options, main
from hf_melody.generation.checks import MAX_NEW_TOKENS, MAX_NUM_BEAMS, MAX_NUM_RETURN_SEQUENCES
from hf_melody.generation.configuration import SHOWN_SETTINGS, MelodyGenerationConfig
from hf_melody.music import key_signature, parse_key


@pytest.fixture(scope="module")
def pipe(tiny_bundle):
    return MelodyPipeline.from_pretrained(tiny_bundle)


# ---- validation -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "fix"), [
    ({"temperature": 0}, "temperature=0 must be a finite number >= 0.001"),
    ({"top_p": 1.5}, "top_p=1.5 must be in (0, 1]"),
    ({"top_k": -1}, "top_k=-1 must be an integer >= 0"),
    ({"num_bars": 4, "max_bars": 2}, "drop max_bars"),
    ({"min_bars": 9, "max_bars": 4}, "lower min_bars"),
    ({"key": "H major"}, "note name A-G"),
    ({"key": "D minor", "scale": [2]}, "not both"),
    ({"pitch_range": (72, 60)}, "write it as (60, 72)"),
    ({"key_strictness": 2.0}, "add key='D minor'"),
    ({"end_on_tonic": True}, "needs a key"),
    ({"num_bars": 4, "constrained": False}, "drop constrained=False"),
    ({"decoder": "turbo"}, "choose one of"),
    ({"num_beams": 2, "decoder": "fast"}, "need decoder='generate'"),
    ({"output_type": "wav"}, "choose one of"),
    ({"generation_config": {"typical_p": 0.5}}, "not supported by MelodyPipeline"),
], ids=lambda x: "-".join(map(str, x)) if isinstance(x, dict) else None)
def test_bad_options_are_one_line_naming_the_fix(options, fix):
    with pytest.raises(ConfigError) as info:
        MelodyGenerationConfig(**options)
    message = str(info.value)
    assert fix in message and "\n" not in message
    assert next(iter(options)) in message or "drop" in message or "add" in message or "needs" in message


# ---- nothing unbounded (issue 27): caps checked before any work, naming the limit and how to raise it -------------


@pytest.mark.parametrize(("name", "value", "cap", "variable"), [
    ("max_new_tokens", 10**9, MAX_NEW_TOKENS, "HF_MELODY_MAX_NEW_TOKENS"),
    ("num_beams", 10**6, MAX_NUM_BEAMS, "HF_MELODY_MAX_NUM_BEAMS"),
    ("num_return_sequences", 10**6, MAX_NUM_RETURN_SEQUENCES, "HF_MELODY_MAX_NUM_RETURN_SEQUENCES"),
])
def test_caps_name_the_limit_and_how_to_raise_it(pipe, name, value, cap, variable, monkeypatch):
    assert (MAX_NEW_TOKENS, MAX_NUM_BEAMS, MAX_NUM_RETURN_SEQUENCES) == (65_536, 64, 10_000)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        pipe(**{name: value, "seed": 0})
    message = str(info.value)
    assert f"{name}={value}" in message and f"limit of {cap}" in message and variable in message
    assert "\n" not in message and time.perf_counter() - start < 1  # refused before any work
    MelodyGenerationConfig(**{name: cap})  # the cap itself is allowed
    monkeypatch.setenv(variable, str(value))  # the variable raises it
    MelodyGenerationConfig(**{name: value})
    monkeypatch.setenv(variable, "lots")
    with pytest.raises(ConfigError, match=f"{variable}='lots' must be a positive integer"):
        MelodyGenerationConfig(**{name: 2})


def test_caps_hold_on_every_road_into_decoding(pipe, tiny_bundle, tmp_path, fixtures_dir):
    from hf_melody.generation.decoding import generate_ids

    tok = pipe.melody_tokenizer
    with pytest.raises(ConfigError, match="max_new_tokens=1000000000 is over the limit"):
        generate_ids(pipe.model, tok, [tok.bos_token_id], seed=0, max_new_tokens=10**9)
    with pytest.raises(ConfigError, match="num_return_sequences=1000000 is over the limit"):
        pipe.infill(str(fixtures_dir / "kinder0_5.mid"), bars=2, num_return_sequences=10**6)
    with pytest.raises(ConfigError, match="num_beams=1000000 is over the limit"):
        MelodyGenerationConfig(generation_config={"num_beams": 10**6})
    # a bundle whose generation_config.json asks for a million beams: refused before decoding (at load, or by
    # the call's check)
    bundle = tmp_path / "beams"
    shutil.copytree(tiny_bundle, bundle)
    path = bundle / "generation_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "num_beams": 10**6}))
    with pytest.raises(HFMelodyError, match="num_beams") as info:
        MelodyPipeline.from_pretrained(bundle)(seed=0)
    assert "limit of 64" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("argv", "culprit"), [
    (["--num", "0"], "--num=0 must be an integer >= 1"),
    (["--num", "-5"], "--num=-5 must be an integer >= 1"),
    (["--num", "1000000"], "--num=1000000 is over the limit of 10000"),
    (["--num", "3000000000"], "--num=3000000000 is over the limit of 10000"),
    (["--num", "2", "--seed", str(2**63 - 1)], "must stay below 2**63"),
])
@pytest.mark.parametrize("command", ["generate", "infill"])
def test_num_is_checked_before_the_model_loads(command, argv, culprit, tmp_path, fixtures_dir, capsys):
    extra = ["--prompt", str(fixtures_dir / "kinder0_5.mid"), "--bars", "2"] if command == "infill" else []
    code, _, err = cli([command, "--model", str(tmp_path / "no-such-model"), *extra, *argv, "--out",
                        str(tmp_path / "out")], capsys)
    assert_one_line_cli_error(code, err, culprit)
    assert "no-such-model" not in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("options", "fix"), [
    ({"temperature": 1e-320}, "temperature=1e-320 must be a finite number >= 0.001"),
    ({"temperature": float("inf")}, "temperature=inf must be a finite number"),
    ({"temperature": float("nan")}, "temperature=nan must be a finite number"),
    ({"key": "Dm", "key_strictness": float("inf")}, "key_strictness=inf: use 'hard' or a penalty >= 0"),
    ({"key": "Dm", "key_strictness": float("nan")}, "key_strictness=nan: use 'hard' or a penalty >= 0"),
    ({"seed": float("nan")}, "seed=nan must be an integer >= 0"),
    ({"seed": float("inf")}, "seed=inf must be an integer >= 0"),
    ({"seed": 1.5}, "seed=1.5 must be an integer >= 0"),
])
def test_silent_nonsense_is_refused_before_work(pipe, options, fix):
    with pytest.raises(ConfigError) as info:
        pipe(**options)
    assert fix in str(info.value) and "\n" not in str(info.value)


def test_training_max_length_is_capped(monkeypatch):
    from hf_melody.data.arguments import MAX_LENGTH_LIMIT, DataArguments

    assert MAX_LENGTH_LIMIT == 8_192
    with pytest.raises(ConfigError, match="max_length=1000000 is over the limit of 8192.*HF_MELODY_MAX_LENGTH_LIMIT"):
        DataArguments(max_length=10**6)
    with pytest.raises(ConfigError, match="max_length=256.0 must be an integer"):
        DataArguments(max_length=256.0)
    with pytest.raises(ConfigError, match="split_seed=nan must be an integer >= 0"):
        DataArguments(split_seed=float("nan"))
    assert DataArguments(max_length=MAX_LENGTH_LIMIT).max_length == MAX_LENGTH_LIMIT
    monkeypatch.setenv("HF_MELODY_MAX_LENGTH_LIMIT", str(10**6))
    assert DataArguments(max_length=10**6).max_length == 10**6


def test_unknown_options_and_infill_only_options():
    with pytest.raises(ConfigError, match="unknown generation option"):
        MelodyGenerationConfig.from_options({"colour": "blue"})
    with pytest.raises(ConfigError, match="not supported"):
        MelodyGenerationConfig.from_options({"typical_p": 0.5})
    with pytest.raises(ConfigError, match="infill does not take \\['num_bars'\\]"):
        MelodyGenerationConfig.from_options({"num_bars": 2}, infill=True)
    assert set(MelodyGenerationConfig.option_names(infill=True)) < set(MelodyGenerationConfig.option_names())


def test_values_are_normalised_once():
    config = MelodyGenerationConfig(pitch_range=[60, 79], temperature=1, key="Dm", key_strictness=2, num_beams=1,
                                    generation_config={"top_k": 20, "repetition_penalty": 1.2})
    assert config.pitch_range == (60, 79) and config.temperature == 1.0 and config.key_strictness == 2.0
    assert config.num_beams is None and config.top_k == 20 and config.repetition_penalty == 1.2
    assert config.generation_config is None and config.key_name == "D minor"
    assert config.generate_kwargs() == {"repetition_penalty": 1.2}


def test_every_field_is_documented_in_the_pipeline_call():
    doc = MelodyPipeline.__call__.__doc__
    for f in dataclasses.fields(MelodyGenerationConfig):
        assert f.metadata["help"] and f"{f.name}: " in doc, f.name


# ---- settings round trip --------------------------------------------------------------------------------------------


def test_settings_come_from_the_config_and_regenerate_the_melody(pipe, monkeypatch):
    generate = pipe.model.generate
    ran = []
    monkeypatch.setattr(pipe.model, "generate", lambda *a, **k: ran.append(k) or generate(*a, **k))
    config = MelodyGenerationConfig(key="Dm", num_bars=2, seed=3, temperature=0.9, time_signature="3/4")
    [m] = pipe(**config.to_options())
    resolved = config.resolve(pipe.model)
    assert m.settings == {"model": pipe.model_name, **resolved.settings(), "melody_seed": 3}
    assert m.settings["key"] == "D minor" and m.settings["key_strictness"] == "hard"
    assert m.settings["temperature"] == 0.9
    # the decoder recorded is the one that ran: the lean one (no model.generate call), then generate() when asked
    assert m.settings["decoder"] == "fast" and ran == []
    [g] = pipe(**{**config.to_options(), "decoder": "generate"})
    assert g.settings["decoder"] == "generate" and len(ran) == 1 and g.token_ids == m.token_ids
    again = MelodyGenerationConfig.from_settings(m.settings)
    assert pipe(**again.to_options())[0].token_ids == m.token_ids
    # defaults filled in by the model are recorded too: a whole tune of 8-32 bars
    [tune] = pipe(seed=0, max_new_tokens=None)
    assert tune.settings["min_bars"] == 8 and tune.settings["max_bars"] == 32
    assert pipe(**MelodyGenerationConfig.from_settings(tune.settings).to_options())[0].token_ids == tune.token_ids


def test_scale_and_batch_round_trip(pipe):
    melodies = pipe(scale=[0, 2, 4, 7, 9], num_return_sequences=2, seed=5, max_new_notes=6)
    assert melodies[1].settings["key"] == "scale [0, 2, 4, 7, 9]" and melodies[1].settings["melody_seed"] == 6
    again = MelodyGenerationConfig.from_settings(melodies[1].settings)
    assert again.scale == [0, 2, 4, 7, 9] and again.seed == 6
    assert pipe(**again.to_options())[0].token_ids == melodies[1].token_ids


def test_piano_roll_title_shows_the_fields_marked_shown(pipe):
    [m] = pipe(seed=1, key="G major", max_new_notes=4, top_k=10)
    shown = m._shown_settings()
    assert set(shown) <= set(SHOWN_SETTINGS) and {"model", "key", "top_k", "melody_seed"} <= set(shown)
    assert "decoder" not in shown and "seed" not in shown


def test_pipeline_defaults_merge_with_call_options(tiny_bundle):
    pipe = MelodyPipeline.from_pretrained(tiny_bundle, key="A minor", max_new_notes=5)
    [m] = pipe(seed=0)
    assert m.settings["key"] == "A minor" and m.num_notes == 5
    assert pipe(seed=0, key="C major")[0].settings["key"] == "C major"
    with pytest.raises(ConfigError, match="unknown generation option"):
        MelodyPipeline.from_pretrained(tiny_bundle, colour="blue")


def test_infill_options_go_through_the_config(pipe, fixtures_dir):
    with pytest.raises(ConfigError, match="infill does not take"):
        pipe.infill(str(fixtures_dir / "kinder0_5.mid"), bars=2, num_bars=1)
    with pytest.raises(ConfigError, match="num_return_sequences=0"):
        pipe.infill(str(fixtures_dir / "kinder0_5.mid"), bars=2, num_return_sequences=0)
    [m] = pipe.infill(str(fixtures_dir / "kinder0_5.mid"), bars=2, seed=4, key="Dm", temperature=0.8)
    assert m.settings["key"] == "Dm" and m.settings["temperature"] == 0.8 and m.settings["melody_seed"] == 4


# ---- command-line flags ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["generate", "infill"])
def test_both_flag_spellings(command):
    parser = build_parser()
    required = ["--prompt", "x.mid", "--bars", "2"] if command == "infill" else []
    dashed = ["--pitch-range", "60", "72", "--key-strictness", "2.5", "--end-on-tonic", "--no-grammar",
              "--top-k", "5"]
    snake = ["--pitch_range", "60", "72", "--key_strictness", "2.5", "--end_on_tonic", "--no_grammar", "--top_k", "5"]
    a = generation_options(parser.parse_args([command, *required, *dashed]))
    b = generation_options(parser.parse_args([command, *required, *snake]))
    assert a == b == {"top_k": 5, "constrained": False, "key_strictness": 2.5, "pitch_range": (60, 72),
                      "end_on_tonic": True}


@pytest.mark.parametrize("argv", [
    ["generate", "--max-new", "4"],
    ["generate", "--temp", "0.5"],
    ["generate", "--num_bar", "4"],
    ["infill", "--prompt", "x.mid", "--bars", "2", "--temp", "0.5"],
    ["infill", "--prompt", "x.mid", "--bars", "2", "--num-bars", "2"],
])
def test_abbreviations_and_foreign_flags_are_rejected(argv, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_generate_help_lists_every_flag_of_the_config(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = capsys.readouterr().out
    for f in dataclasses.fields(MelodyGenerationConfig):
        if f.metadata.get("cli") is not False:
            flag = f.metadata.get("flag", f.name)
            assert f"--{flag.replace('_', '-')}" in text and f"--{flag.replace('-', '_')}" in text, f.name


def test_snake_case_flags_write_the_same_files(tiny_bundle, tmp_path):
    for name, flags in (("dashed", ["--max-new-notes", "6", "--time-signature", "3/4"]),
                        ("snake", ["--max_new_notes", "6", "--time_signature", "3/4"])):
        assert main(["generate", "--model", str(tiny_bundle), "--num", "1", "--seed", "2", "--formats", "mid",
                     "--out", str(tmp_path / name), *flags]) == 0
    assert (tmp_path / "dashed" / "melody_0.mid").read_bytes() == (tmp_path / "snake" / "melody_0.mid").read_bytes()


def test_bad_flag_values_fail_before_the_model_loads(tmp_path, capsys):
    code = main(["generate", "--model", str(tmp_path / "no-such-model"), "--top-p", "2", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "top_p=2.0 must be in (0, 1]" in err and "no-such-model" not in err


# ---- musical facts in one place -------------------------------------------------------------------------------------


def test_keys_and_signatures_come_from_music():
    from hf_melody.export import render
    from hf_melody.generation import logits_process as generation

    assert generation.parse_key is parse_key and render.key_signature is key_signature
    assert key_signature("F# major") == (6, 0) and key_signature("Eb minor") == (-6, 1)
