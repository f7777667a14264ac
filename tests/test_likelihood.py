"""Likelihood scoring checked against computations done by hand: pitch bits, the fair pitch measure, dynamic scoring."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from hf_melody import build_model
from hf_melody.errors import ConfigError
from hf_melody.evaluation.fair_pitch import fair_pitch_logprobs, onset_starts, onset_token_ids, pitch_marginal
from hf_melody.evaluation.likelihood import DynamicEvaluation, score_melodies


@pytest.fixture(scope="module")
def random_model(tokenizer):
    """A seeded untrained `original` GPT-2: its predictions are far from uniform, which the checks need."""
    model = build_model("original", tokenizer, n_positions=256, dropout=0.0, seed=3)
    with torch.no_grad():  # sharpen the output so that the tokens after a pitch differ clearly from the pitch
        model.lm_head.weight.mul_(40.0)
    return model.eval()


def log_probs(model, ids: list[int]) -> torch.Tensor:
    """log P(ids[t] | ids[:t]) for t = 1..len-1, by one plain forward pass."""
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1].double(), -1)
    return logp.gather(-1, torch.tensor(ids[1:]).unsqueeze(-1)).squeeze(-1)


def test_pitch_bits_are_the_pitch_targets_log_probs(random_model, tokenizer, kinder_melodies):
    melodies = kinder_melodies[:3]
    r = score_melodies(random_model, tokenizer, melodies)
    pitch_ids = {i for t, i in tokenizer.base_vocab.items() if t.startswith("Pitch_")}
    bits, tokens_bits, notes = 0.0, 0.0, 0
    for m in melodies:
        ids = tokenizer.encode(m, bos=True, eos=True, style="german-folk")
        lp = log_probs(random_model, ids)
        targets = ids[1:]
        bits -= sum(float(lp[t]) for t in range(1, len(targets)) if targets[t] in pitch_ids) / math.log(2)
        tokens_bits -= float(lp[1:].sum()) / math.log(2)
        notes += len(m.notes)
    assert r.num_notes == notes
    assert r.pitch_bits_per_note == pytest.approx(bits / notes, rel=1e-5)
    assert r.bits_per_note == pytest.approx(tokens_bits / notes, rel=1e-5)


# issue 28: fails with the bug "bits_per_note_melody_mean divided by tokens instead of notes"
def test_melody_mean_is_each_melodys_bits_per_note_averaged(random_model, tokenizer, kinder_melodies):
    melodies = kinder_melodies[3:7]
    r = score_melodies(random_model, tokenizer, melodies)
    by_hand = []
    for m, entry in zip(melodies, r.per_melody, strict=True):  # by hand: one plain forward pass per melody
        ids = tokenizer.encode(m, bos=True, eos=True, style="german-folk")
        bits = -float(log_probs(random_model, ids)[1:].sum()) / math.log(2)
        assert entry["num_notes"] == len(m.notes) and entry["num_tokens"] == len(ids) - 2
        assert entry["bits"] == pytest.approx(bits, rel=1e-5)
        by_hand.append(bits / len(m.notes))
    assert r.bits_per_note_melody_mean == pytest.approx(sum(by_hand) / len(by_hand), rel=1e-5)
    # the mean of ratios is not the ratio of sums (the melodies differ in length)
    assert r.bits_per_note_melody_mean != pytest.approx(r.bits_per_note, rel=1e-4)


def brute_force_pitch_log_probs(model, tokenizer, context: list[int], max_len: int) -> torch.Tensor:
    """log P(pitch | context) summed over every onset path of at most `max_len` tokens, one sequence per path."""
    onset = onset_token_ids(tokenizer)
    pitches = [i for _, i in sorted((int(t.split("_")[1]), i) for t, i in tokenizer.base_vocab.items()
                                    if t.startswith("Pitch_"))]
    terms = []
    with torch.no_grad():
        for n in range(max_len + 1):
            paths = list(itertools.product(onset, repeat=n))
            for b in range(0, len(paths), 2048):
                chunk = torch.tensor([context + list(q) for q in paths[b:b + 2048]])
                logp = torch.log_softmax(model(input_ids=chunk).logits.double(), -1)
                rows = torch.arange(len(chunk))
                path_lp = sum((logp[rows, len(context) - 1 + t, chunk[:, len(context) + t]] for t in range(n)),
                              torch.zeros(len(chunk), dtype=torch.float64))
                terms.append(path_lp.unsqueeze(-1) + logp[:, -1, pitches])
    joint = torch.logsumexp(torch.cat(terms), dim=0)
    return joint - torch.logsumexp(joint, dim=0)


def test_fair_pitch_matches_brute_force_enumeration(random_model, tokenizer, kinder_melodies):
    ids = tokenizer.encode(kinder_melodies[0], bos=True, eos=True, style="german-folk")[:14]
    onset = set(onset_token_ids(tokenizer))
    pitch_col = {i: c for c, (_, i) in enumerate(sorted((int(t.split("_")[1]), i) for t, i in
                                                       tokenizer.base_vocab.items() if t.startswith("Pitch_")))}
    positions = [j for j, t in enumerate(ids) if t in pitch_col][:2]
    pairs = fair_pitch_logprobs(random_model, tokenizer, ids, positions, min_path_prob=0.0, max_onset_tokens=2,
                                batch_size=2048)
    assert len(pairs) == 2
    for (lp, explored), j, s in zip(pairs, positions, onset_starts(ids, positions, onset), strict=True):
        assert s < j and all(t in onset for t in ids[s:j])  # the note's onset tokens are the ones marginalised
        expected = brute_force_pitch_log_probs(random_model, tokenizer, ids[:s], max_len=2)
        assert lp == pytest.approx(float(expected[pitch_col[ids[j]]]), abs=1e-5)  # float32 logits
        assert 0.0 < explored < 1.0 and lp <= 0.0


def test_fair_pitch_measure_on_a_trained_model(tiny_bundle, kinder_melodies):
    from hf_melody import load_model, load_tokenizer

    model, tok = load_model(tiny_bundle), load_tokenizer(tiny_bundle)
    melodies = kinder_melodies[:4]
    r = score_melodies(model, tok, melodies, fair_pitch=True)
    assert r.fair_pitch_bits_per_note >= 0.0 and r.pitch_bits_per_note >= 0.0
    assert 0.9 < r.fair_pitch_explored_mass <= 1.0 + 1e-9
    assert r.fair_pitch_bits_per_note == pytest.approx(
        sum(p["fair_pitch_bits"] for p in r.per_melody) / sum(len(m.notes) for m in melodies))
    dist = pitch_marginal(model, tok, tok.encode(melodies[0], bos=True, style="german-folk"))
    assert len(dist) == sum(t.startswith("Pitch_") for t in tok.base_vocab)
    assert sum(dist.values()) == pytest.approx(1.0, abs=1e-9) and min(dist.values()) > 0.0
    # the marginal is the fair measure's distribution for a note right after that context
    ids = tok.encode(melodies[1], bos=True, eos=True, style="german-folk")
    j = next(j for j, t in enumerate(ids) if tok.to_base_tokens([t])[0].startswith("Pitch_"))
    (lp, _), = fair_pitch_logprobs(model, tok, ids, [j])
    pitch = int(tok.to_base_tokens([ids[j]])[0].split("_")[1])
    assert lp == pytest.approx(math.log(pitch_marginal(model, tok, ids[:2])[pitch]), abs=1e-6)  # cached vs not


def test_fair_pitch_refuses_bad_settings(random_model, tokenizer, kinder_melodies):
    from hf_melody.errors import ConfigError

    ids = tokenizer.encode(kinder_melodies[0], bos=True, eos=True, style="german-folk")
    with pytest.raises(ConfigError, match="min_path_prob"):
        fair_pitch_logprobs(random_model, tokenizer, ids, min_path_prob=1.5)
    with pytest.raises(ConfigError, match="pitch_bits"):
        score_melodies(random_model, tokenizer, kinder_melodies[:1], pitch_bits=False, fair_pitch=True)
    with pytest.raises(ConfigError, match="steps"):
        DynamicEvaluation(steps=0)


def test_dynamic_evaluation_never_looks_ahead(random_model, tokenizer, kinder_melodies):
    melody = kinder_melodies[0]
    changed = melody.__class__.from_dict(melody.to_dict())
    k = len(melody.notes) // 2
    changed.notes = [list(n) for n in melody.notes[:k]] + [[o, d, p + 2] for o, d, p in melody.notes[k:]]
    dynamic = DynamicEvaluation(steps=2, lr=0.05)
    before = {k: v.clone() for k, v in random_model.state_dict().items()}
    a, b = (score_melodies(random_model, tokenizer, [m], dynamic=dynamic, fair_pitch=True).per_melody[0]
            for m in (melody, changed))
    ids_a = tokenizer.encode(melody, bos=True, eos=True, style="german-folk")
    ids_b = tokenizer.encode(changed, bos=True, eos=True, style="german-folk")
    first_change = next(t for t, (x, y) in enumerate(zip(ids_a, ids_b, strict=True)) if x != y) - 2
    assert first_change > 10
    assert a["token_bits"][:first_change] == b["token_bits"][:first_change]
    assert a["token_bits"][first_change:] != b["token_bits"][first_change:]
    static = score_melodies(random_model, tokenizer, [melody]).per_melody[0]
    assert static["token_bits"][:5] == pytest.approx(a["token_bits"][:5], abs=1e-5)  # nothing learnt yet
    assert static["bits"] != pytest.approx(a["bits"], rel=1e-3)  # ... but later the copy has learnt
    assert all(torch.equal(v, before[k]) for k, v in random_model.state_dict().items())  # the caller's model


def test_card_shows_both_pitch_measures(tiny_bundle):
    from hf_melody.cards import FAIR_PITCH_NOTE, render_model_card

    results = {"bits_per_note": 4.5, "pitch_bits_per_note": 2.25, "fair_pitch_bits_per_note": 2.375,
               "token_perplexity": 2.5, "token_accuracy": 0.6}
    card = render_model_card(tiny_bundle, {"preset": "original"}, results, name="tiny")
    assert "| pitch_bits_per_note | 2.25 |" in card and "| fair_pitch_bits_per_note | 2.375 |" in card
    assert "- type: fair_pitch_bits_per_note\n      value: 2.375\n" in card
    assert FAIR_PITCH_NOTE.strip() in card
    without = render_model_card(tiny_bundle, {"preset": "original"}, {"bits_per_note": 4.5}, name="tiny")
    assert "fair_pitch" not in without


def test_dynamic_evaluation_of_melodies_longer_than_the_context(tokenizer, kinder_melodies):
    model = build_model("original", tokenizer, n_positions=32, dropout=0.0, seed=1).eval()
    melody = max(kinder_melodies[:20], key=lambda m: len(m.notes))
    ids = tokenizer.encode(melody, bos=True, eos=True, style="german-folk")
    assert len(ids) > 4 * 32
    r = score_melodies(model, tokenizer, [melody], dynamic=DynamicEvaluation(steps=1, lr=1e-3))
    bits = r.per_melody[0]["token_bits"]
    assert len(bits) == len(ids) - 2 and all(0 < b < 50 for b in bits)
    static = score_melodies(model, tokenizer, [melody]).per_melody[0]["token_bits"]
    first_bar_end = next(j for j in range(3, len(ids)) if tokenizer.to_base_tokens([ids[j]])[0] == "Bar_None") - 2
    assert static[:first_bar_end] == pytest.approx(bits[:first_bar_end], abs=1e-5)


def test_cli_evaluate_can_skip_the_fair_measure(tiny_bundle, tmp_path):
    from hf_melody.cli import main

    assert main(["evaluate", "--models", str(tiny_bundle), "--out", str(tmp_path), "--split", "all",
                 "--max-melodies", "10", "--no-fair-pitch"]) == 0
    model = json.loads((tmp_path / "results.json").read_text())["models"][str(tiny_bundle)]
    assert model["fair_pitch_bits_per_note"] is None and model["pitch_bits_per_note"] > 0


def test_fair_pitch_with_and_without_the_kv_cache_agree(random_model, tokenizer, kinder_melodies):
    from hf_melody.evaluation.fair_pitch import _marginals

    ids = tokenizer.encode(kinder_melodies[5], bos=True, eos=True, style="german-folk")[:60]
    positions = [j for j, t in enumerate(ids) if tokenizer.to_base_tokens([t])[0].startswith("Pitch_")]
    contexts = [ids[:s] for s in onset_starts(ids, positions, set(onset_token_ids(tokenizer)))]
    assert len(contexts) >= 10
    plain, plain_mass = _marginals(random_model, tokenizer, contexts, 1e-3, 4, 32, "cpu")
    cached, cached_mass = _marginals(random_model, tokenizer, contexts, 1e-3, 4, 32, "cpu", shared=ids)
    assert torch.allclose(plain, cached, atol=1e-4) and plain_mass == pytest.approx(cached_mass, abs=1e-4)


def grammar_log_probs(model, tokenizer, ids: list[int]) -> list[float]:
    """log P(ids[t] | ids[:t], t legal) for t = 2..len-1 by hand: one forward pass, the grammar stepped token by
    token, each distribution renormalised over the legal tokens."""
    from hf_melody.grammar.remi import REMIGrammar
    from hf_melody.grammar.state import GrammarRules

    grammar = REMIGrammar.for_tokenizer(tokenizer)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
    state, out = grammar.prompt_state(ids[:2]), []
    for t in range(2, len(ids)):
        legal = grammar.allowed_ids(state, GrammarRules(allow_style=False))
        out.append(float(logp[t - 1, ids[t]] - torch.logsumexp(logp[t - 1, legal], -1)))
        grammar.feed(state, [ids[t]])
    return out


def test_grammar_bits_renormalise_over_the_legal_tokens(random_model, tokenizer, kinder_melodies):
    melodies = kinder_melodies[:3]
    r = score_melodies(random_model, tokenizer, melodies, grammar_bits=True)
    bits = -sum(sum(grammar_log_probs(random_model, tokenizer,
                                      tokenizer.encode(m, bos=True, eos=True, style="german-folk")))
                for m in melodies) / math.log(2)
    assert r.grammar_bits_per_note == pytest.approx(bits / r.num_notes, rel=1e-5)
    # an untrained model spreads mass over impossible tokens: the grammar takes a real share of it back
    assert r.grammar_bits_per_note < 0.9 * r.bits_per_note
    assert score_melodies(random_model, tokenizer, melodies).grammar_bits_per_note is None


def test_grammar_bits_through_sliding_windows(tokenizer, kinder_melodies):
    model = build_model("original", tokenizer, n_positions=32, dropout=0.0, seed=1).eval()
    melody = max(kinder_melodies[:20], key=lambda m: len(m.notes))
    ids = tokenizer.encode(melody, bos=True, eos=True, style="german-folk")
    assert len(ids) > 4 * 32
    r = score_melodies(model, tokenizer, [melody], grammar_bits=True, stride=8, batch_size=3)
    # by hand: each target from its own window, renormalised over what the grammar allows after the whole past
    from hf_melody.evaluation.likelihood import _windows
    from hf_melody.grammar.remi import REMIGrammar
    from hf_melody.grammar.state import GrammarRules

    grammar = REMIGrammar.for_tokenizer(tokenizer)
    legal, state = {}, grammar.prompt_state(ids[:2])
    for t in range(2, len(ids)):
        legal[t] = grammar.allowed_ids(state, GrammarRules(allow_style=False))
        grammar.feed(state, [ids[t]])
    bits = 0.0
    for begin, end, first in _windows(len(ids), 2, 32, 8):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids[begin:end]])).logits[0].double(), -1)
        for t in range(first, end):
            row = logp[t - begin - 1]
            bits -= float(row[ids[t]] - torch.logsumexp(row[legal[t]], -1)) / math.log(2)
    assert r.grammar_bits_per_note == pytest.approx(bits / len(melody.notes), rel=1e-5)
    assert r.grammar_bits_per_note < r.bits_per_note
    with pytest.raises(ConfigError, match="grammar_bits"):
        score_melodies(model, tokenizer, [melody], grammar_bits=True, dynamic=DynamicEvaluation())
