"""The lean decoder: same tokens as `generate`, length control, a sliding window past the context, raw-prompt
generation with an exact bar budget, and generation options."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from transformers import GenerationConfig, GPT2LMHeadModel

from hf_melody import ConfigError, MelodyPipeline, MelodyTokenizer, build_model
from hf_melody.generation.decoding import MelodyDecoder, generate_ids
from hf_melody.generation.logits_process import melody_logits_processors
from hf_melody.grammar.remi import REMIGrammar
from hf_melody.grammar.state import GrammarRules, LengthLimits
from hf_melody.modeling.lean_gpt2 import LeanGPT2
from hf_melody.music import parse_key
from hf_melody.tokenizer import melody_tokenizer_config


@pytest.fixture(scope="module")
def pipe(tiny_bundle) -> MelodyPipeline:
    return MelodyPipeline.from_pretrained(tiny_bundle)


@pytest.fixture(scope="module")
def short_pipe(pipe) -> MelodyPipeline:
    """The trained tiny model cut to a 32-token context (its first 32 position embeddings)."""
    config = pipe.model.config.to_dict()
    config["n_positions"] = 32
    model = GPT2LMHeadModel(type(pipe.model.config).from_dict(config)).eval()
    state = pipe.model.state_dict()
    state["transformer.wpe.weight"] = state["transformer.wpe.weight"][:32]
    model.load_state_dict(state)
    return MelodyPipeline(model=model, melody_tokenizer=pipe.melody_tokenizer, device=-1)


def generate_calls(model, monkeypatch) -> list[dict]:
    """The keyword arguments of every `model.generate` call from now on (the real `generate` still runs)."""
    calls, generate = [], model.generate

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return generate(*args, **kwargs)

    monkeypatch.setattr(model, "generate", counted)
    return calls


def bar_ticks(melody) -> int:
    ts = melody.score.time_signatures[0]
    return ts.numerator * 480 * 4 // ts.denominator


def bars_of(melody) -> float:
    return melody.score.end() / bar_ticks(melody)


# ---- the lean forward and the tables --------------------------------------------------------------------------------


def test_lean_forward_matches_transformers(pipe):
    model = pipe.model
    ids = torch.tensor([[1, 20, 30, 40, 50, 60], [1, 21, 31, 41, 51, 61]])
    with torch.no_grad():
        reference = model(ids).logits
        lean = LeanGPT2(model)
        got = [lean.prefill(ids[:, :3])]
        got += [lean.step(ids[:, i]) for i in range(3, ids.shape[1])]
    for i, logits in enumerate(got):
        torch.testing.assert_close(logits, reference[:, 2 + i], atol=1e-5, rtol=1e-5)


# ---- same tokens on both decoders -----------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {"constrained": False},
    {},
    {"key": "D minor", "pitch_range": (60, 79), "temperature": 0.8, "top_k": 12, "top_p": 0.9},
    {"key": "G major", "end_on_tonic": True, "num_bars": 4, "time_signature": "3/4"},
    {"scale": [0, 2, 4, 7, 9], "key_strictness": 2.0, "min_new_notes": 12},
    {"constrained": False, "min_bars": 3, "max_new_notes": 30},
    {"do_sample": False, "key": "C major"},
], ids=["free", "grammar", "key-range-sampling", "bars-tonic", "soft-scale-min", "free-min", "greedy"])
def test_fast_and_generate_decoders_give_identical_tokens(pipe, options, monkeypatch):
    calls = generate_calls(pipe.model, monkeypatch)
    for seed in range(3):
        fast = pipe(seed=seed, max_new_tokens=100, decoder="fast", **options)[0]
        assert len(calls) == seed  # the lean decoder ran, not model.generate
        reference = pipe(seed=seed, max_new_tokens=100, decoder="generate", **options)[0]
        assert len(calls) == seed + 1
        assert fast.token_ids == reference.token_ids
        assert fast.settings["decoder"] == "fast" and reference.settings["decoder"] == "generate"


def test_stream_uses_the_fast_decoder_and_matches_the_reference(pipe):
    options = {"seed": 6, "key": "A minor", "max_new_tokens": 90}
    notes = list(pipe.stream(**options))
    [m] = pipe(decoder="generate", **options)
    assert [(round(n.onset * 480), round(n.duration * 480), n.pitch) for n in notes] == m.notes


# ---- length control -------------------------------------------------------------------------------------------------


def test_min_length_is_honoured(pipe):
    for decoder in ("fast", "generate"):
        for m in pipe(seed=0, num_return_sequences=3, min_new_notes=20, max_new_tokens=110, decoder=decoder):
            assert m.num_notes >= 20
    for m in pipe(seed=1, num_return_sequences=3, min_bars=6, max_bars=10, time_signature="4/4"):
        assert 5 < bars_of(m) <= 10
    for m in pipe(seed=2, num_return_sequences=3, constrained=False, min_new_notes=15, max_new_notes=40):
        assert 15 <= m.num_notes <= 40


def test_default_call_is_a_complete_tune(pipe):
    for m in pipe(seed=3, num_return_sequences=4, time_signature="4/4"):
        assert 7 < bars_of(m) <= 32
        assert m.settings["min_bars"] == 8 and m.settings["max_bars"] == 32


def test_max_new_notes_gives_that_many_notes(pipe):
    for m in pipe(seed=4, num_return_sequences=2, max_new_notes=25):
        assert m.num_notes == 25
    assert all(m.num_notes <= 25 for m in pipe(seed=4, num_return_sequences=2, max_new_notes=25, min_new_notes=0))


def test_sliding_window_goes_past_the_context(short_pipe):
    """A 32-token model writes 12 exact bars with no padding (notes up to the last bar, no silence of 2 bars;
    the old path filled the bars left with rests once its context was full) and 60 exact notes."""
    for m in short_pipe(seed=0, num_return_sequences=2, num_bars=12, time_signature="4/4", key="C major"):
        assert m.score.end() == 12 * bar_ticks(m) and len(m.token_ids) > 3 * 32
        onsets = [t for t, _, _ in m.notes] + [m.score.end()]
        gaps = [b - a for a, b in zip(onsets, onsets[1:], strict=False)]
        assert onsets[-2] >= 11 * bar_ticks(m) and max(gaps) <= 2 * bar_ticks(m)
        assert all(p % 12 in parse_key("C major").pitch_classes for _, _, p in m.notes)
    [m] = short_pipe(seed=1, max_new_notes=60)
    assert m.num_notes == 60
    tok = short_pipe.melody_tokenizer
    result = MelodyDecoder(short_pipe.model, tok).sample(
        [[tok.bos_token_id]], melody_logits_processors(tok, constrained=False, seed=[0]), GrammarRules(),
        LengthLimits(num_bars=10))
    assert result.windows >= 2 and result.ended == [True]


def recorded_windows(pipe, monkeypatch) -> list[list[int]]:
    """Every input the pipeline's lean decoder prefills (the prompt, then each slid window), row 0, as it runs."""
    lean = MelodyDecoder.for_model(pipe.model, pipe.melody_tokenizer).lean()
    windows, prefill = [], lean.prefill

    def recording(ids):
        windows.append(ids[0].tolist())
        return prefill(ids)

    monkeypatch.setattr(lean, "prefill", recording)
    return windows


def assert_windows_keep_the_head(windows: list[list[int]], ids: list[int], head: int) -> None:
    """Each slid window is the sequence's first `head` tokens and then its most recent ones, 24 in all."""
    assert len(windows) >= 3, "the window never slid twice"
    for w in windows[1:]:
        assert w[:head] == ids[:head] and len(w) == 24
        tail = w[head:]
        assert any(ids[n - len(tail):n] == tail for n in range(len(tail) + head, len(ids) + 1)), w


# issue 28: fails with the bug "the window keeps BOS but drops the style token" and with the real bug it found
# (the kept head taken from the prompt, so a style token the model wrote itself was dropped at every slide)
def test_window_heads_keep_bos_and_the_style_token(short_pipe, monkeypatch):
    tok = short_pipe.melody_tokenizer
    windows = recorded_windows(short_pipe, monkeypatch)
    styles = set(REMIGrammar.for_tokenizer(tok).segment_ids) - {tok.bos_token_id}
    # the style token given in the prompt
    [m] = short_pipe(seed=0, style="german-folk", max_new_notes=40)
    assert windows[0] == m.token_ids[:2] and m.token_ids[1] in styles
    assert_windows_keep_the_head(windows, m.token_ids, 2)
    # the style token the model wrote after a prompt of only BOS (no style, no time signature: it may)
    for seed in range(30):
        windows.clear()
        [m] = short_pipe(seed=seed, max_new_notes=40)
        if m.token_ids[1] in styles:
            break
    else:
        pytest.fail("the model wrote no style token of its own in 30 seeds")
    assert windows[0] == [tok.bos_token_id]
    assert_windows_keep_the_head(windows, m.token_ids, 2)
    # no style token at all: only BOS is kept
    windows.clear()
    [m] = short_pipe(seed=0, time_signature="4/4", max_new_notes=40)
    assert m.token_ids[1] not in styles
    assert_windows_keep_the_head(windows, m.token_ids, 1)


def test_generate_decoder_refuses_what_it_cannot_fit(short_pipe):
    with pytest.raises(ConfigError, match="context"):
        short_pipe(seed=0, num_bars=12, decoder="generate")


# issue 28: fails with the bug "the lean decoder's cached weights are not rebuilt after load_state_dict"
def test_a_reused_decoder_follows_weights_changed_in_place(tiny_bundle):
    pipe = MelodyPipeline.from_pretrained(tiny_bundle)  # its own copy: the weights are changed below
    tok, model = pipe.melody_tokenizer, pipe.model
    options = {"seed": 0, "key": "D minor", "max_new_tokens": 60}
    decoder = MelodyDecoder.for_model(model, tok)
    before = pipe(decoder="fast", **options)[0].token_ids  # builds the decoder's lean weights
    torch.manual_seed(1)
    other = GPT2LMHeadModel(model.config).state_dict()
    model.load_state_dict(other)
    fast = pipe(decoder="fast", **options)[0].token_ids
    assert MelodyDecoder.for_model(model, tok) is decoder  # the same decoder, reused
    assert fast == pipe(decoder="generate", **options)[0].token_ids and fast != before
    with torch.no_grad():  # an in-place update of one tensor, as an optimizer step makes
        model.lm_head.weight.mul_(3.0)
    assert pipe(decoder="fast", **options)[0].token_ids == pipe(decoder="generate", **options)[0].token_ids


# ---- raw prompts with an exact bar budget (for infilling) -----------------------------------------------------------


@pytest.fixture(scope="module")
def infill_tokenizer() -> MelodyTokenizer:
    from miditok import REMI

    config = melody_tokenizer_config()
    config.special_tokens = [*config.special_tokens, "Infill_None", "InfillSuffix_None", "InfillMiddle_None"]
    return MelodyTokenizer(REMI(config))


def test_generate_ids_exact_bars_after_unknown_special_tokens(infill_tokenizer):
    tok = infill_tokenizer
    model = build_model("original", tok, n_positions=64, dropout=0.0, seed=0).eval()
    prompt = [tok.bos_token_id, *tok.encode_base_tokens(["Bar_None", "TimeSig_4/4", "Position_0", "Pitch_60",
                                                          "Duration_2.0.4", "Infill_None", "InfillMiddle_None"])]
    specials = set(tok.miditok.special_tokens_ids)
    grammar = REMIGrammar.for_tokenizer(tok)
    for k in (1, 3, 9):  # 9 bars do not fit in 64 tokens: the window slides
        new = generate_ids(model, tok, prompt, seed=k, exact_bars=k, key="C major", top_k=20)
        # k bars after the segment marker (Bar tokens, or bar lines a rest runs over), then EOS
        end = grammar.prompt_state(prompt + new)
        assert end.bar == k - 1 and new[-1] == tok.eos_token_id
        assert not specials & set(new[:-1])
        assert tok.tokens_errors(new[:-1]) == 0.0
        assert all(p % 12 in parse_key("C major").pitch_classes for _, _, p in (
            (n.time, n.duration, n.pitch) for n in tok.decode(new).tracks[0].notes))
        assert generate_ids(model, tok, prompt, seed=k, exact_bars=k, key="C major", top_k=20) == new
    with pytest.raises(ConfigError, match="exact_bars"):
        generate_ids(model, tok, prompt, exact_bars=-1)


# ---- generation options ---------------------------------------------------------------------------------------------


def test_generate_options_pass_through(pipe, tiny_bundle, tmp_path, monkeypatch):
    tok = pipe.melody_tokenizer
    calls = generate_calls(pipe.model, monkeypatch)
    greedy = pipe(seed=0, do_sample=False, max_new_notes=12)[0].token_ids
    assert pipe(seed=1, do_sample=False, max_new_notes=12)[0].token_ids == greedy
    config = GenerationConfig(do_sample=False, repetition_penalty=1.3, no_repeat_ngram_size=6)
    for m in (pipe(seed=0, max_new_notes=12, repetition_penalty=1.3, no_repeat_ngram_size=6, do_sample=False)[0],
              pipe(seed=0, max_new_notes=12, generation_config=config)[0]):
        assert calls[-1]["repetition_penalty"] == 1.3 and calls[-1]["no_repeat_ngram_size"] == 6  # what generate got
        assert m.settings["decoder"] == "generate" and m.settings["repetition_penalty"] == 1.3
        assert tok.tokens_errors(m.token_ids) == 0.0 and m.num_notes == 12
    assert pipe(seed=0, max_new_notes=12, generation_config={"do_sample": False})[0].token_ids == greedy
    beams = pipe(seed=0, max_new_notes=10, num_beams=3)[0]
    assert tok.tokens_errors(beams.token_ids) == 0.0 and beams.num_notes == 10
    # the bundle's generation_config.json is honoured, do_sample=false included
    bundle = tmp_path / "greedy"
    shutil.copytree(tiny_bundle, bundle)
    gen = json.loads((bundle / "generation_config.json").read_text())
    (bundle / "generation_config.json").write_text(json.dumps({**gen, "do_sample": False}))
    assert MelodyPipeline.from_pretrained(bundle)(seed=5, max_new_notes=12)[0].token_ids == greedy


@pytest.mark.parametrize(("options", "match"), [
    ({"temperature": math.nan}, "finite"),
    ({"temperature": math.inf}, "finite"),
    ({"top_p": math.nan}, "top_p"),
    ({"seed": 2**64}, "2\\*\\*63"),
    ({"seed": 2**63 - 1, "num_return_sequences": 2}, "2\\*\\*63"),
    ({"seed": 1.5}, "seed"),
    ({"max_new_notes": math.nan}, "max_new_notes"),
    ({"typical_p": 0.5}, "not supported"),
    ({"generation_config": {"min_p": 0.1}}, "min_p"),
    ({"num_beams": 2, "decoder": "fast"}, "decoder='generate'"),
    ({"decoder": "turbo"}, "decoder"),
    ({"min_new_notes": 10, "max_new_notes": 5}, "min_new_notes"),
    ({"min_bars": 9, "max_bars": 4}, "min_bars"),
    ({"bogus": 1}, "unknown generation option"),
])
def test_bad_generation_options_raise_before_any_work(pipe, options, match):
    with pytest.raises(ConfigError, match=match):
        pipe(**options)
    if "num_return_sequences" not in options:
        with pytest.raises(ConfigError, match=match):
            pipe.stream(**options)


def test_fast_decoder_matches_generate_with_a_bpe_vocabulary(kinder_melodies):
    """Merged tokens (several notes or bars in one id) move the tables' counters like the grammar's."""
    tok = MelodyTokenizer()
    tok.train_bpe(300, kinder_melodies[:100])
    model = build_model("original", tok, n_positions=96, dropout=0.0, seed=0).eval()
    bpe_pipe = MelodyPipeline(model=model, melody_tokenizer=tok, device=-1)
    grammar = REMIGrammar.for_tokenizer(tok)
    merged = 0
    for seed, options in enumerate([{}, {"key": "A minor", "num_bars": 3, "time_signature": "3/4"},
                                    {"max_new_notes": 20}]):
        fast = bpe_pipe(seed=seed, max_new_tokens=80, decoder="fast", **options)[0]
        reference = bpe_pipe(seed=seed, max_new_tokens=80, decoder="generate", **options)[0]
        assert fast.token_ids == reference.token_ids and tok.tokens_errors(fast.token_ids) == 0.0
        merged += sum(len(grammar.expansions[i]) > 1 for i in fast.token_ids)
    assert merged > 0


def test_minimums_raise_the_default_cap_and_warn_when_other_limits_leave_no_room(pipe, caplog):
    [m] = pipe(seed=0, min_bars=34, time_signature="4/4")
    assert m.settings["max_bars"] == 34 and bars_of(m) > 33
    with caplog.at_level("WARNING", logger="hf_melody"):
        [m] = pipe(seed=0, min_bars=8, max_new_notes=3, time_signature="4/4")
    assert m.num_notes == 3 and "ended before min_bars=8" in caplog.text


def test_pipeline_generate_ids_is_the_function(pipe):
    tok = pipe.melody_tokenizer
    new = pipe.generate_ids([tok.bos_token_id], exact_bars=2, seed=3)
    assert new == generate_ids(pipe.model, tok, [tok.bos_token_id], exact_bars=2, seed=3)
    end = REMIGrammar.for_tokenizer(tok).prompt_state([tok.bos_token_id, *new])
    assert new[-1] == tok.eos_token_id and end.bar == 1
