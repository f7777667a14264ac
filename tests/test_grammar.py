"""The REMI grammar: it follows real melodies and the decoder, masks after a time signature, gives zero syntax
errors on sampled melodies (plain and BPE vocabularies) where the unconstrained model does not, and its tables
accept and reject exactly what it does."""

from __future__ import annotations

import pytest
import torch

from conftest import assert_valid
from hf_melody import MelodyPipeline, MelodyTokenizer, build_model
from hf_melody.generation.logits_process import melody_logits_processors
from hf_melody.grammar.remi import REMIGrammar
from hf_melody.grammar.state import GrammarRules, LengthLimits
from hf_melody.grammar.tables import GrammarTables

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models on one torch thread


@pytest.fixture(scope="module")
def pipe(tiny_bundle) -> MelodyPipeline:
    return MelodyPipeline.from_pretrained(tiny_bundle)


@pytest.fixture(scope="module")
def bpe_tokenizer(kinder_melodies) -> MelodyTokenizer:
    tok = MelodyTokenizer()
    tok.train_bpe(300, kinder_melodies)
    assert tok.is_bpe
    return tok


def sample_batch(model, tok: MelodyTokenizer, n: int, first_seed: int = 0, constrained: bool = True) -> list[list[int]]:
    """`n` unconditional samples in one batched `generate` (one seeded generator per row)."""
    ids = torch.full((n, 1), tok.bos_token_id)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                         max_new_tokens=model.config.n_positions - 1, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id,
                         logits_processor=melody_logits_processors(tok, constrained=constrained,
                                                                   seed=range(first_seed, first_seed + n)))
    return out.tolist()


# ---- the grammar ----------------------------------------------------------------------------------------------------


def test_grammar_follows_real_melodies_and_the_decoder(tokenizer, kinder_melodies):
    """Every Kinderlied is legal except at meter changes (never generated), and the tracker's notes are exactly
    what miditok decodes, meter changes included."""
    grammar = REMIGrammar.for_tokenizer(tokenizer)
    illegal = []
    for m in kinder_melodies:
        ids = tokenizer.encode(m, bos=True, eos=True, style="german-folk")
        state = grammar.initial_state()
        grammar.feed(state, ids[:1])
        try:
            grammar.feed(state, ids[1:], GrammarRules())
        except ValueError as e:
            illegal.append(str(e))
        tracked = grammar.feed(grammar.initial_state(), ids)
        decoded = sorted((n.time, n.duration, n.pitch) for n in tokenizer.decode(ids).tracks[0].notes)
        assert decoded == [(n.onset * 30, n.duration * 30, n.pitch) for n in tracked], m.id
    assert len(illegal) < 10 and all("'TimeSig_" in e for e in illegal), illegal


def test_grammar_masks_after_a_time_signature(tokenizer):
    """A half note at the start of a 3/4 bar: the next note starts at or after its end (a gap is a rest), or the bar
    ends, or the melody ends; nothing that overlaps the note or leaves the bar."""
    grammar = REMIGrammar.for_tokenizer(tokenizer)
    state = grammar.initial_state()
    grammar.feed(state, tokenizer.encode_base_tokens(["Bar_None", "TimeSig_3/4", "Position_0", "Pitch_60",
                                                      "Duration_2.0.4"]))
    allowed = {tokenizer.miditok[i] for i in grammar.allowed_ids(state, GrammarRules())}
    assert allowed == {"Position_8", "Position_9", "Position_10", "Position_11", "Bar_None", "EOS_None"}
    grammar.feed(state, tokenizer.encode_base_tokens(["Bar_None"]))  # the next bar: its meter comes first
    allowed = {tokenizer.miditok[i] for i in grammar.allowed_ids(state, GrammarRules())}
    assert allowed == {"TimeSig_3/4"}


def test_grammar_gives_zero_errors_on_100_samples(pipe):
    tok = pipe.melody_tokenizer
    assert_valid(tok, sample_batch(pipe.model, tok, 100))


def test_unconstrained_samples_do_have_errors(pipe):
    """The check above has teeth: the same model without the grammar makes syntax errors."""
    tok = pipe.melody_tokenizer
    errors = [tok.tokens_errors([i for i in s if i != tok.pad_token_id]) for s in sample_batch(
        pipe.model, tok, 30, constrained=False)]
    assert sum(e > 0 for e in errors) > 0


def test_bpe_grammar_gives_zero_errors_with_an_untrained_model(bpe_tokenizer):
    model = build_model("original", bpe_tokenizer, n_positions=96, dropout=0.0, seed=0).eval()
    sequences = sample_batch(model, bpe_tokenizer, 100)
    assert_valid(bpe_tokenizer, sequences)
    grammar = REMIGrammar.for_tokenizer(bpe_tokenizer)
    merged = {i for s in sequences for i in s if len(grammar.expansions[i]) > 1}
    assert len(merged) > 20  # merged tokens were actually sampled, not masked away


@pytest.mark.slow
def test_grammar_gives_zero_errors_on_1000_samples(pipe):
    tok = pipe.melody_tokenizer
    for start in range(0, 1000, 200):
        assert_valid(tok, sample_batch(pipe.model, tok, 200, first_seed=start))


@pytest.mark.slow
def test_bpe_grammar_gives_zero_errors_on_1000_samples(bpe_tokenizer):
    model = build_model("original", bpe_tokenizer, n_positions=128, dropout=0.0, seed=1).eval()
    for start in range(0, 1000, 200):
        assert_valid(bpe_tokenizer, sample_batch(model, bpe_tokenizer, 200, first_seed=start))


@pytest.mark.parametrize(("rules", "limits"), [
    (GrammarRules(), LengthLimits()),
    (GrammarRules(tonic=7, exact_end=True), LengthLimits(num_bars=6, max_new_notes=30, min_bars=2)),
], ids=["plain", "tonic-6-bars-30-notes"])
def test_tables_accept_and_reject_exactly_what_the_grammar_does(tokenizer, kinder_melodies, rules, limits):
    """At every token of every Kinderlied: the tables' mask is the grammar's mask, and a token is legal in one
    exactly when it is legal in the other (the walk stops at the first illegal token: meter changes, limits)."""
    grammar = REMIGrammar.for_tokenizer(tokenizer)
    tables = GrammarTables(grammar, rules)
    checked = rejected = 0
    for melody in kinder_melodies:
        ids = tokenizer.encode(melody, bos=True, eos=True, style="german-folk")
        s = grammar.prompt_state(ids[:1])
        end_bar, max_notes, _, _ = grammar.length_limits(s, limits)
        sid, bar, notes = tables.state_id(s), s.bar, s.notes
        for t in ids[1:]:
            row = tables.row(sid, None if end_bar is None else end_bar - bar,
                             None if max_notes is None else max_notes - notes)
            mask = tables.masks[row]
            assert torch.equal(mask, grammar.allowed_mask(s, rules)), (melody.id, s)
            checked += 1
            try:
                grammar.feed(s, [t], rules)
                legal = True
            except ValueError:
                legal = False
            assert bool(mask[t]) == legal
            if not legal:
                rejected += 1
                break
            nxt = tables.transitions(sid)[t]
            bar, notes = bar + tables.bars_added[sid][t], notes + tables.notes_added[sid][t]
            sid = nxt
            assert tables.key(s) == tables.key(tables.representatives[sid]) and (bar, notes) == (s.bar, s.notes)
    assert checked > 10_000 and rejected > 0


# ---- exact length limits --------------------------------------------------------------------------------------------
def _bar_ends(tok: MelodyTokenizer, meter: tuple[int, int], n_bars: int) -> tuple[list[int], list[int]]:
    """BOS and `n_bars` bars of one whole-bar note each in `meter`, and where each bar ends (before the next Bar)."""
    from hf_melody.data.melody import Melody
    from hf_melody.music import TPQ

    num, den = meter
    bar = num * TPQ * 4 // den
    m = Melody("bars/0", "test", [[b * bar, bar, 60 + b % 5] for b in range(n_bars)], [[0, num, den]])
    ids = tok.encode(m, bos=True, eos=False)
    starts = [i for i, t in enumerate(ids) if t == tok.bar_token_id]
    assert len(starts) == n_bars
    return ids, starts[1:] + [len(ids)]


# issue 28: fails with the bug "min_bars one bar too many in the grammar's length limits" (and max_bars off by one)
@pytest.mark.parametrize("meter", [(4, 4), (3, 4), (6, 8), (2, 2), (5, 8)], ids=lambda m: f"{m[0]}-{m[1]}")
@pytest.mark.parametrize(("min_bars", "max_bars"), [(1, 3), (2, 2), (4, 6)])
def test_min_and_max_bars_are_exact(tokenizer, meter, min_bars, max_bars):
    """After n whole bars: EOS is legal exactly when n >= min_bars and a new Bar exactly when n < max_bars, on both
    roads (the `generate` grammar processor and the lean decoder's tables), built from the config by `decoding_plan`."""
    from hf_melody.generation.configuration import MelodyGenerationConfig
    from hf_melody.generation.decoding import _GrammarRun
    from hf_melody.generation.logits_process import decoding_plan

    tok = tokenizer
    ids, ends = _bar_ends(tok, meter, max_bars)
    config = MelodyGenerationConfig(min_bars=min_bars, max_bars=max_bars, seed=0)
    for n, end in enumerate(ends, start=1):
        plan = decoding_plan(tok, config, 1)
        zeros = torch.zeros((1, tok.vocab_size))
        plan.grammar(torch.tensor([ids[:1]]), zeros)  # the prompt: BOS
        slow = plan.grammar(torch.tensor([ids[:end]]), zeros)[0]
        run = _GrammarRun(plan.grammar.grammar, plan.rules, plan.limits, [ids[:1]], None, 1)
        for t in ids[1:end]:
            run.advance([t], [False])
        fast = run.scores(zeros, end)[0]
        for scores in (slow, fast):
            assert bool(torch.isfinite(scores[tok.eos_token_id])) == (n >= min_bars), (n, "EOS")
            assert bool(torch.isfinite(scores[tok.bar_token_id])) == (n < max_bars), (n, "Bar")
