"""One road into decoding (issue 21): one function from a `MelodyGenerationConfig` to processors, rules, limits and
the token cap, one decoder per model, one place that draws a fresh seed, one constructor of a finished melody, and
the same output-folder flags on every command that writes files."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
import torch

import hf_melody.generation.configuration as configuration
from hf_melody import MelodyPipeline
from hf_melody.cli import main
from hf_melody.errors import ConfigError
from hf_melody.generation.configuration import MelodyGenerationConfig
from hf_melody.generation.decoding import MelodyDecoder, generate_ids
from hf_melody.generation.logits_process import decoding_plan
from hf_melody.pipelines.output import GeneratedMelody

TUNE = Path(__file__).parent / "fixtures" / "kinder0_0.mid"
STYLE = "german-folk"


@pytest.fixture(scope="module")
def original():
    return MelodyPipeline.from_pretrained("original")


# ---- one function from a config to decoding ---------------------------------------------------------------------
def test_pipeline_and_generate_ids_decode_the_same_plan(original):
    """The same options give the same processors, rules and limits, hence the same tokens, on both roads."""
    tok = original.melody_tokenizer
    options = {"seed": 13, "key": "D minor", "exact_bars": 2, "temperature": 1.0, "top_k": 0, "top_p": 1.0}
    ids = original(style=STYLE, output_type="ids", **options)[0]
    head = [tok.bos_token_id, tok.style_token_id(STYLE)]
    assert ids[:2] == head
    assert generate_ids(original.model, tok, head, **options) == [*ids[2:], tok.eos_token_id]  # the pipeline trims EOS

    piped = MelodyGenerationConfig(style=STYLE, **options).resolve(original.model)
    direct = MelodyGenerationConfig(do_sample=True, **options)
    plans = [decoding_plan(tok, piped, 2, n_positions=original.model.config.n_positions, allow_style=False),
             decoding_plan(tok, direct, 2, allow_style=False)]
    assert [type(p).__name__ for p in plans[0].processors] == [type(p).__name__ for p in plans[1].processors] \
        == ["REMIGrammarProcessor", "PitchConstraintProcessor", "SeededSampler"]
    assert plans[0].rules == plans[1].rules and plans[0].limits == plans[1].limits
    assert plans[0].limits.exact_bars == 2 and plans[0].token_cap is None
    assert plans[0].grammar not in plans[0].fast_processors()


def test_the_plan_matches_what_the_pipeline_samples(original):
    """Sampling a plan by hand with the model's decoder gives the pipeline's melody, on the fast decoder and on
    `generate` (whose cap is the room left in the context)."""
    tok, model = original.melody_tokenizer, original.model
    config = MelodyGenerationConfig(seed=4, key="G major", num_bars=2).resolve(model)
    [m] = original(seed=4, key="G major", num_bars=2, output_type="ids")
    prompt = [tok.bos_token_id]
    plan = decoding_plan(tok, config, len(prompt), n_positions=model.config.n_positions)
    result = MelodyDecoder.for_model(model, tok).sample([prompt], plan.fast_processors(), plan.rules, plan.limits,
                                                        plan.token_cap)
    assert result.sequences[0] == [*m, tok.eos_token_id]  # the pipeline trims EOS
    slow = MelodyGenerationConfig(seed=4, key="G major", num_bars=2, decoder="generate").resolve(model)
    assert decoding_plan(tok, slow, 1, n_positions=model.config.n_positions).token_cap == \
        model.config.n_positions - 1


def test_exact_bars_is_a_checked_config_option():
    assert MelodyGenerationConfig(exact_bars=0).exact_bars == 0
    with pytest.raises(ConfigError, match="exact_bars"):
        MelodyGenerationConfig(exact_bars=-1)
    with pytest.raises(ConfigError, match="exact_bars needs the grammar"):
        MelodyGenerationConfig(exact_bars=2, constrained=False)
    with pytest.raises(ConfigError, match="exact_bars fixes the bars"):
        MelodyGenerationConfig(exact_bars=2, num_bars=2)
    assert "exact_bars" not in MelodyGenerationConfig(exact_bars=2).settings()  # melodies record what they did
    assert "min_bars" not in MelodyGenerationConfig(exact_bars=2)._default_lengths()


# ---- one decoder per model --------------------------------------------------------------------------------------
def test_one_decoder_per_model(original):
    tok = original.melody_tokenizer
    decoder = MelodyDecoder.for_model(original.model, tok)
    original(seed=0, max_new_notes=4)
    generate_ids(original.model, tok, [tok.bos_token_id], seed=0, exact_bars=1)
    again = MelodyPipeline(model=original.model, melody_tokenizer=tok)
    again(seed=1, max_new_notes=4)
    assert MelodyDecoder.for_model(original.model, tok) is decoder
    assert decoder._lean is not None  # built by the calls above: they sampled with this decoder
    assert decoder.model is original.model


def test_the_decoder_cache_does_not_keep_a_model_alive():
    pipe = MelodyPipeline.from_pretrained("original")
    pipe(seed=0, max_new_notes=3)
    model = weakref.ref(pipe.model)
    decoder = weakref.ref(MelodyDecoder.for_model(pipe.model, pipe.melody_tokenizer))
    del pipe
    gc.collect()
    assert model() is None and decoder() is None


# ---- one place draws a fresh seed -------------------------------------------------------------------------------
def test_every_road_draws_its_seed_from_fresh_seed(original, monkeypatch, tmp_path):
    calls = []

    def counted(count=1):
        calls.append(count)
        return 1234

    monkeypatch.setattr(configuration, "fresh_seed", counted)
    tok = original.melody_tokenizer
    rng = torch.get_rng_state()
    [m] = original(max_new_notes=4)
    assert m.settings["seed"] == 1234 and calls == [1]
    [a, b] = original(num_return_sequences=2, max_new_notes=4)
    assert calls[-1] == 2 and [a.settings["melody_seed"], b.settings["melody_seed"]] == [1234, 1235]
    new = generate_ids(original.model, tok, [tok.bos_token_id], exact_bars=1)
    assert new == generate_ids(original.model, tok, [tok.bos_token_id], exact_bars=1, seed=1234)
    [f] = original.infill(str(TUNE), bars=2)
    assert f.settings["seed"] == 1234
    assert main(["generate", "--model", "original", "--num", "2", "--output-dir", str(tmp_path / "g"),
                 "--formats", "mid", "--max-new-notes", "4"]) == 0
    assert main(["infill", "--model", "original", "--prompt", str(TUNE), "--bars", "2", "--output-dir",
                 str(tmp_path / "i"), "--formats", "mid"]) == 0
    assert calls == [1, 2, 1, 1, 2, 1]  # pipeline, batch, generate_ids, infill, cli generate (--num 2), cli infill
    assert torch.equal(torch.get_rng_state(), rng)  # drawing a seed leaves torch's global RNG alone
    main(["generate", "--model", "original", "--num", "2", "--seed", "1234", "--output-dir", str(tmp_path / "s"),
          "--formats", "mid", "--max-new-notes", "4"])
    assert len(calls) == 6  # a given seed draws nothing
    for name in ("melody_0.mid", "melody_1.mid"):
        assert (tmp_path / "g" / name).read_bytes() == (tmp_path / "s" / name).read_bytes()


def test_fresh_seeds_leave_room_for_every_melody():
    for count in (1, 4, 1000):
        seed = configuration.fresh_seed(count)
        assert 0 <= seed and seed + count - 1 < 2**31 - 1
    assert MelodyGenerationConfig(seed=5).with_seed().seed == 5


# ---- one constructor of a finished melody -----------------------------------------------------------------------
def test_from_ids_is_what_the_pipeline_returns(original):
    tok = original.melody_tokenizer
    [m] = original(str(TUNE), seed=3, key="D minor", num_bars=2)
    again = GeneratedMelody.from_ids(tok, m.token_ids, m.prompt_length, m.num_prompt_notes, m.settings)
    assert again.to_midi_bytes() == m.to_midi_bytes() and again.score.dumps_midi() == m.score.dumps_midi()
    assert (again.token_ids, again.prompt_length, again.num_prompt_notes, again.settings) == \
        (m.token_ids, m.prompt_length, m.num_prompt_notes, m.settings)
    assert again.score.key_signatures[0].tonality == 1 and again.score.tracks[0].name == m.title


def test_from_ids_is_what_infill_returns(original):
    tok = original.melody_tokenizer
    [m] = original.infill(str(TUNE), bars=(2, 3), seed=11, key="G major")
    start, stop = m.settings["bars"][0] - 1, m.settings["bars"][1]
    n_bars = sum(1 for t in m.token_ids if t == tok.bar_token_id)
    again = GeneratedMelody.from_ids(tok, m.token_ids, 0, 0, m.settings, clip_bars=(start, stop, n_bars))
    assert again.to_midi_bytes() == m.to_midi_bytes()


# ---- --output-dir on every command that writes files -----------------------------------------------------------
@pytest.mark.parametrize("flag", ["--output-dir", "--output_dir", "--out"])
def test_generate_takes_every_output_folder_spelling(flag, tiny_bundle, tmp_path):
    out = tmp_path / "gen"
    assert main(["generate", "--model", str(tiny_bundle), "--num", "1", "--seed", "2", "--formats", "mid",
                 "--max-new-notes", "6", flag, str(out)]) == 0
    reference = tmp_path / "reference"
    main(["generate", "--model", str(tiny_bundle), "--num", "1", "--seed", "2", "--formats", "mid",
          "--max-new-notes", "6", "--output-dir", str(reference)])
    assert (out / "melody_0.mid").read_bytes() == (reference / "melody_0.mid").read_bytes()


@pytest.mark.parametrize("flag", ["--output-dir", "--output_dir", "--out"])
def test_infill_takes_every_output_folder_spelling(flag, tmp_path):
    out = tmp_path / "infill"
    assert main(["infill", "--model", "original", "--prompt", str(TUNE), "--bars", "2", "--seed", "0",
                 "--formats", "mid", flag, str(out)]) == 0
    assert [p.name for p in out.iterdir()] == ["infill_0.mid"]


@pytest.mark.parametrize("command", ["generate", "infill"])
def test_help_shows_the_output_folder_spellings(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "--output-dir" in text and "--output_dir" in text and "--out" in text


def test_an_output_folder_that_is_a_file_fails_first(tmp_path, capsys):
    (tmp_path / "x.mid").write_bytes(b"MThd")
    assert main(["generate", "--output_dir", str(tmp_path / "x.mid"), "--num", "1"]) != 0
    assert "--output-dir" in capsys.readouterr().err
