"""The local `evaluate` modules: each loads offline by path, gives hand-computable values on known cases (BLEU
clips repeated n-grams), and each module folder is a publishable Space (metadata README, app.py, requirements.txt,
full MetricInfo)."""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import evaluate
import pytest
import yaml

from hf_melody import ConfigError
from hf_melody.evaluation.similarity import corpus_bleu, self_bleu
from hf_melody.metrics import CODEBASE, HOMEPAGE, METRICS, metric_info, metric_path

C_MAJOR_2_BARS = [[i * 480, 480, p] for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]


@pytest.fixture(scope="module")
def uniform_bundle(tmp_path_factory, tokenizer):
    """A bundle whose every next-token distribution is uniform: zero (tied) embeddings give zero logits."""
    import torch

    from hf_melody import build_model, save_bundle

    model = build_model("original", tokenizer, n_positions=64, dropout=0.0, seed=0)
    with torch.no_grad():
        model.transformer.wte.weight.zero_()
    return save_bundle(model, tokenizer, tmp_path_factory.mktemp("uniform"), card=False)


@pytest.mark.parametrize("name", METRICS)
def test_every_metric_loads_offline_by_path(name):
    module = evaluate.load(metric_path(name))
    assert isinstance(module, evaluate.Metric)
    assert module.name == name


def test_metric_path_rejects_unknown_names():
    with pytest.raises(ConfigError, match="melody_bleu"):
        metric_path("bleu")


# ---- melody_perplexity ------------------------------------------------------------------------------------------
def test_perplexity_of_a_uniform_model_is_exact(uniform_bundle, tokenizer, kinder_melodies):
    # melodies longer than the 64-token context go through the sliding window; uniform scores stay exact
    melodies = kinder_melodies[:6]
    ppl = evaluate.load(metric_path("melody_perplexity"))
    r = ppl.compute(predictions=[m.notes for m in melodies], time_signatures=[m.time_signatures for m in melodies],
                    styles="german-folk", model_id=str(uniform_bundle), per_melody=True)
    v = tokenizer.vocab_size
    encoded = [tokenizer.encode(m, bos=True, eos=True, style="german-folk") for m in melodies]
    num_tokens = sum(len(ids) - 2 for ids in encoded)  # BOS and the style token are given, EOS is scored
    num_notes = sum(len(m.notes) for m in melodies)
    assert max(len(ids) for ids in encoded) > 64
    assert r["num_tokens"] == num_tokens and r["num_notes"] == num_notes
    assert r["token_perplexity"] == pytest.approx(v, rel=1e-5)
    assert r["bits_per_note"] == pytest.approx(num_tokens * math.log2(v) / num_notes, rel=1e-5)
    assert r["pitch_bits_per_note"] == pytest.approx(math.log2(v), rel=1e-5)
    assert [p["num_notes"] for p in r["per_melody"]] == [len(m.notes) for m in melodies]


def test_pitch_bits_refuse_bpe_tokenizers(kinder_melodies):
    from hf_melody import MelodyTokenizer, build_model
    from hf_melody.evaluation.likelihood import score_melodies

    tok = MelodyTokenizer()
    tok.train_bpe(tok.vocab_size + 40, kinder_melodies[:30])
    model = build_model("original", tok, n_positions=256, dropout=0.0, seed=0)
    with pytest.raises(ConfigError, match="pitch_bits=False"):
        score_melodies(model, tok, kinder_melodies[:2])
    r = score_melodies(model, tok, kinder_melodies[:2], pitch_bits=False)
    assert r.pitch_bits_per_note is None
    assert r.num_notes == sum(len(m.notes) for m in kinder_melodies[:2])  # notes are counted through BPE tokens


# ---- melody_bleu ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bleu():
    return evaluate.load(metric_path("melody_bleu"))


def test_bleu_of_identical_sequences_is_one(bleu):
    seqs = [["Bar_None", "Position_0", "Pitch_60", "Duration_1.0.4"], [1, 2, 3, 4, 5]]
    r = bleu.compute(predictions=[seqs[0]], references=[seqs[0]])
    assert r["bleu"] == 1.0 and r["brevity_penalty"] == 1.0
    assert bleu.compute(predictions=[seqs[1]], references=[seqs[1]], self_bleu=False)["bleu"] == 1.0


def test_bleu_hand_computed(bleu):
    # 1-grams 3/4, 2-grams 2/3, 3-grams 1/2, 4-grams 0/1 (floored to 0.1/1)
    r = bleu.compute(predictions=[[1, 2, 3, 4]], references=[[1, 2, 3, 5]])
    assert r["precisions"] == pytest.approx([3 / 4, 2 / 3, 1 / 2, 0.1])
    assert r["bleu"] == pytest.approx((3 / 4 * 2 / 3 * 1 / 2 * 0.1) ** 0.25)
    assert bleu.compute(predictions=[[1, 2, 3, 4]], references=[[1, 2, 3, 5]], smooth="none")["bleu"] == 0.0
    # too short: brevity penalty exp(1 - 4/2); orders 3 and 4 are left out
    short = bleu.compute(predictions=[[1, 2]], references=[[1, 2, 3, 4]])
    assert short["bleu"] == pytest.approx(math.exp(-1))
    # several references per prediction
    multi = bleu.compute(predictions=[[1, 2, 3, 4]], references=[[[9, 9], [1, 2, 3, 4]]])
    assert multi["bleu"] == 1.0


def test_self_bleu_measures_repetition(bleu):
    same = bleu.compute(predictions=[[1, 2, 3, 4]] * 3, references=[[1, 2, 3, 4]] * 3, self_bleu=True)
    assert same["self_bleu"] == 1.0
    apart = bleu.compute(predictions=[[1, 2, 3, 4], [5, 6, 7, 8]], references=[[1], [5]], self_bleu=True)
    assert apart["self_bleu"] == pytest.approx((0.1 / 4 * 0.1 / 3 * 0.1 / 2 * 0.1) ** 0.25)
    assert apart["self_bleu"] < 0.1


# ---- music_statistics -------------------------------------------------------------------------------------------
def test_music_statistics_of_a_scale():
    stats = evaluate.load(metric_path("music_statistics"))
    r = stats.compute(predictions=[C_MAJOR_2_BARS], time_signatures=[[[0, 4, 4]]], per_melody=True)
    m = r["per_melody"][0]
    assert m["pitch_class_entropy"] == pytest.approx(2.75)  # C twice, six classes once: 2/8*2 + 6/8*3 bits
    assert m["scale_consistency"] == 1.0 and m["in_key_ratio"] == 1.0 and m["key"] == "C major"
    assert m["groove_consistency"] == 1.0 and m["empty_beat_rate"] == 0.0
    assert m["pitch_range"] == 12 and m["mean_abs_interval"] == pytest.approx(12 / 7)
    assert m["note_length_hist"][2] == 1.0  # every note a quarter
    assert r["mean"]["pitch_range"] == 12


def test_music_statistics_rhythm_features():
    from hf_melody.evaluation.statistics import empty_beat_rate, groove_consistency

    two_beats = [[0, 480, 60], [1440, 480, 62]]  # beats 1 and 4 of a 4/4 bar: 2 and 3 are silent
    assert empty_beat_rate(two_beats, [[0, 4, 4]]) == 0.5
    assert empty_beat_rate([[0, 480, 60], [960, 480, 62]], [[0, 4, 4]]) == pytest.approx(1 / 3)  # up to the end
    assert empty_beat_rate([[0, 240, 60], [720, 240, 62]], [[0, 6, 8]]) == pytest.approx(1 / 2)  # 8th-note beats
    # bar 1 onsets on beats 1,3; bar 2 on beats 1,2,3,4: 2 of 16 grid steps differ
    groove = [[0, 480, 60], [960, 480, 60], [1920, 480, 60], [2400, 480, 60], [2880, 480, 60], [3360, 480, 60]]
    assert groove_consistency(groove, [[0, 4, 4]]) == pytest.approx(1 - 2 / 16)


def test_overlap_of_same_and_disjoint_sets(kinder_melodies):
    from hf_melody.evaluation.statistics import overlap_area

    assert overlap_area([1.0, 2.0, 4.0], [1.0, 2.0, 4.0]) == pytest.approx(1.0, abs=1e-3)  # grid tails cut
    assert overlap_area([0.0, 0.5, 1.0], [50.0, 50.5, 51.0]) < 1e-6
    stats = evaluate.load(metric_path("music_statistics"))
    real = [m.notes for m in kinder_melodies[:20]]
    same = stats.compute(predictions=real, reference_notes=real)
    wild = [[[i * 480, 480, 48 + (i * 17) % 37] for i in range(32)] for _ in range(5)]  # leaps all over
    far = stats.compute(predictions=wild, reference_notes=real)
    assert same["overlap"]["mean_abs_interval"] > 0.6
    assert far["overlap"]["mean_abs_interval"] < 0.05
    assert same["mean_overlap"] > far["mean_overlap"]


# ---- novelty ----------------------------------------------------------------------------------------------------
def test_novelty_detects_a_copied_melody(kinder_melodies):
    from hf_melody.evaluation.statistics import num_bars

    nov = evaluate.load(metric_path("novelty"))
    copied = next(m for m in kinder_melodies if num_bars(m.notes, m.time_signatures) >= 10)
    r = nov.compute(predictions=[copied.notes], time_signatures=[copied.time_signatures],
                    training_dataset="essen/kinder0")
    assert r["longest_shared"] == [len(copied.notes)]
    assert r["copied"] == [True] and r["copy_rate"] == 1.0
    assert r["sources"][0].startswith("essen/kinder0/")


def test_novelty_of_unseen_material_is_low(kinder_melodies):
    nov = evaluate.load(metric_path("novelty"))
    train = [m.notes for m in kinder_melodies]
    odd = [[[i * 130, 130, 60 + i % 5] for i in range(40)]]  # a duration no Kinderlied uses
    r = nov.compute(predictions=odd, training_notes=train)
    assert r["longest_shared"] == [0] and r["copy_rate"] == 0.0
    # a transposed copy: found only when matching intervals
    m = next(m for m in kinder_melodies if len(m.notes) > 30)
    up = [[o, d, p + 1] for o, d, p in m.notes]
    plain = nov.compute(predictions=[up], training_notes=train)["longest_shared"][0]
    invariant = nov.compute(predictions=[up], training_notes=train, transposition_invariant=True)
    assert invariant["longest_shared"][0] == len(m.notes) - 1 > plain


# ---- BLEU -------------------------------------------------------------------------------------------------------
# issue 17: fails when this bug is put back: BLEU n-gram counts not clipped
def test_bleu_clips_repeated_ngrams():
    # the prediction repeats 7 four times; the reference holds one 7: one unigram match, not four
    r = corpus_bleu([[7, 7, 7, 7]], [[7, 1, 2, 3]])
    expected = [1 / 4, 0.1 / 3, 0.1 / 2, 0.1 / 1]  # orders 2-4 have no match: floored to 0.1 / count
    assert r["precisions"] == pytest.approx(expected)
    assert r["bleu"] == pytest.approx(math.prod(expected) ** 0.25)
    # two references: clipped by the largest count in any one reference (2), not their sum (3)
    two = corpus_bleu([[7, 7, 7, 7]], [[[7, 7, 1, 2], [7, 3, 4, 5]]], max_order=1)
    assert two["precisions"] == pytest.approx([2 / 4])
    # self-BLEU clips the same way: each sample against the other
    assert self_bleu([[7, 7, 7, 7], [7, 1, 2, 3]]) == pytest.approx(math.prod(expected) ** 0.25)


@pytest.mark.parametrize("name", METRICS)
def test_metric_folder_has_the_files_of_a_space(name):
    folder = Path(metric_path(name))
    text = (folder / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and {"evaluate", "metric"} <= set(meta["tags"])
    assert meta["title"] and meta["description"]
    module = evaluate.load(metric_path(name))
    assert module.citation.strip() and module.citation.strip() in text  # the card cites what the module cites
    assert module.homepage == HOMEPAGE and module.codebase_urls == [CODEBASE]
    assert module.reference_urls and all(u.startswith("https://") for u in module.reference_urls)
    requirements = (folder / "requirements.txt").read_text()
    assert "evaluate" in requirements and "hf_melody" in requirements and "gradio" in requirements


@pytest.mark.parametrize("name", METRICS)
def test_space_app_computes_its_example(name):
    gr = pytest.importorskip("gradio")
    from hf_melody.metrics.space import EXAMPLES, compute, metric_script

    app = runpy.run_path(str(Path(metric_path(name)) / "app.py"), run_name="space")
    assert isinstance(app["demo"], gr.Blocks)
    module = evaluate.load(str(metric_script(metric_path(name))))
    result = compute(module, json.dumps(EXAMPLES[name]))
    assert result and all(v is not None for v in result.values())
    with pytest.raises(ConfigError, match="not valid JSON"):
        compute(module, "{predictions: [")


def test_a_metric_without_citation_is_refused():
    with pytest.raises(ConfigError, match="citation"):
        metric_info("d", " ", "args")
