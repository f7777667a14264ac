"""Baselines with hand-computed values, the sliding window, and the whole model comparison on a tiny bundle."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hf_melody.errors import ConfigError
from hf_melody.evaluation.baselines import NGramNoteModel, WittenBellNGram, kfold, majority_token_baseline
from hf_melody.music import PITCH_RANGE

RECIPES = Path(__file__).parents[1] / "recipes"


# ---- n-gram baselines -------------------------------------------------------------------------------------------
def test_witten_bell_by_hand():
    m = WittenBellNGram(order=1, alphabet="ABC").fit(["ABAB"])
    p_a = (2 + 2 * (1 / 3)) / (4 + 2)  # unigram: 4 symbols, 2 types, uniform 1/3 below
    assert m.prob("A", "") == pytest.approx(4 / 9) == pytest.approx(p_a)
    assert m.prob("B", "A") == pytest.approx((2 + 1 * (4 / 9)) / (2 + 1))  # after A: B twice, one type
    assert m.prob("C", "") == pytest.approx(2 * (1 / 3) / 6)  # never seen: only the escape mass
    assert m.prob("C", "A") == pytest.approx((0 + 1 * (1 / 9)) / 3)
    assert m.bits("AB") == pytest.approx([-math.log2(4 / 9), -math.log2(22 / 27)])
    for context in ("", "A", "B", "C", "AB"):
        assert sum(m.prob(w, context) for w in "ABC") == pytest.approx(1.0)


def test_ngram_note_model_by_hand():
    melody = [[0, 480, 60], [480, 480, 62]]
    r = NGramNoteModel(order=1).fit([melody]).evaluate([melody])
    n_pitches = PITCH_RANGE[1] - PITCH_RANGE[0] + 1  # the tokenizer's pitches; 2 seen, 2 types
    p60 = (1 + 2 / n_pitches) / 4
    pitch = -math.log2(p60) - math.log2((1 + p60) / 2)
    dur = -math.log2(5 / 6) - math.log2((1 + 5 / 6) / 2)  # alphabet {480, OTHER}
    p_ioi = (1 + 3 / 4) / 6  # iois 0, 480, END seen once each; alphabet {0, 480, END, OTHER}
    ioi = -math.log2(p_ioi) - 2 * math.log2((1 + p_ioi) / 2)
    assert r["pitch_bits_per_note"] == pytest.approx(pitch / 2)
    assert r["bits_per_note"] == pytest.approx((pitch + dur + ioi) / 2)
    assert r["num_notes"] == 2


def test_ngram_baseline_on_kinderlieder_is_in_the_literature_range(kinder_melodies):
    (train, test), *_ = kfold([m.notes for m in kinder_melodies], folds=10)
    r = NGramNoteModel(order=2).fit(train).evaluate(test)
    assert 2.2 < r["pitch_bits_per_note"] < 3.2  # order-2 literature value ~2.62, IDyOM 2.106
    assert r["bits_per_note"] > r["pitch_bits_per_note"]


def test_majority_token_baseline_by_hand():
    r = majority_token_baseline([[5, 5, 6]], [[5, 6]], vocab_size=10, num_notes=1)
    assert r["majority_token"] == 5 and r["accuracy"] == 0.5
    loss = -(math.log(3 / 13) + math.log(2 / 13)) / 2  # add-one: (2+1)/13, (1+1)/13
    assert r["loss"] == pytest.approx(loss)
    assert r["perplexity"] == pytest.approx(math.exp(loss))
    assert r["bits_per_note"] == pytest.approx(2 * loss / math.log(2))


def test_kfold_covers_every_item_once():
    folds = kfold(list(range(213)), folds=10, seed=3)
    tested = [i for _, test in folds for i in test]
    assert sorted(tested) == list(range(213))
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 213
    with pytest.raises(ConfigError):
        kfold([1, 2], folds=3)


# ---- likelihood -------------------------------------------------------------------------------------------------
def test_sliding_windows_score_every_target_once():
    from hf_melody.evaluation.likelihood import _windows

    windows = _windows(300, first_target=2, n_positions=128, stride=64)
    targets = [t for begin, end, first in windows for t in range(first, end)]
    assert targets == list(range(2, 300))
    for begin, end, first in windows:
        assert end - begin <= 128 and first > begin
        if begin:
            assert first - begin >= 128 - 64  # at least n_positions - stride tokens of context
    assert _windows(50, 2, 128, 64) == [(0, 50, 2)]


def test_trained_on_reads_dataset_and_exclude():
    from hf_melody.evaluation import trained_on

    folk = {"dataset": ["essen", "oneills1850"], "exclude": ["essen/kinder0"]}
    assert not trained_on(folk, "essen/kinder0")
    assert trained_on(folk, "essen/han1") and trained_on(folk, "essen")
    assert trained_on({"dataset": ["essen/kinder0"]}, "essen/kinder0")
    assert not trained_on({}, "essen/kinder0")


# ---- comparing models -------------------------------------------------------------------------------------------
def test_evaluate_models_writes_results_and_plots(tiny_bundle, tmp_path):
    from hf_melody.evaluation import evaluate_models, results_table

    out = tmp_path / "eval"
    r = evaluate_models([str(tiny_bundle), "no-such-model"], "essen/kinder0", out, ngram_folds=3,
                        num_samples=2, prompt_bars=2, progress=False)
    assert r["split"] == "test"  # the tiny bundle trained on essen/kinder0: only its held-out melodies
    assert json.loads((out / "results.json").read_text())["num_melodies"] == r["num_melodies"] >= 3
    assert "no-such-model" in r["skipped"]
    m = r["models"][str(tiny_bundle)]
    assert m["trained_on_dataset"] is True
    # trained: far better than the uniform distribution over the vocabulary
    assert m["token_perplexity"] < 0.5 * m["vocab_size"]
    assert 0 < m["pitch_bits_per_note"] < m["bits_per_note"]
    # with the grammar's renormalisation a note costs less (the mass on impossible tokens comes back), never more
    assert 0 < m["grammar_bits_per_note"] < m["bits_per_note"]
    # the gap by hand from the bundle's training log: the last validation loss minus the training loss at that
    # step (linearly between the logged training losses around it)
    log = json.loads((tiny_bundle / "training_log.json").read_text())
    step, eval_loss = [(h["step"], h["eval_loss"]) for h in log["eval"] if "step" in h][-1]
    train = [(h["step"], h["loss"]) for h in log["train"] if "step" in h]
    (s0, l0), (s1, l1) = next(((a, b) for a, b in zip(train, train[1:], strict=False) if a[0] <= step <= b[0]),
                              (train[-1], train[-1]))
    at_step = l0 if s1 == s0 else l0 + (l1 - l0) * (step - s0) / (s1 - s0)
    assert m["generalization_gap"] == pytest.approx(eval_loss - at_step, abs=1e-9)
    # the fair (past-only) pitch measure is reported beside the onset-known one
    assert 0 < m["fair_pitch_bits_per_note"] < m["bits_per_note"] and 0.9 < m["fair_pitch_explored_mass"] <= 1
    assert set(r["improvement"]["ratios"][str(tiny_bundle)]) == {"bits_per_note", "pitch_bits_per_note",
                                                                 "fair_pitch_bits_per_note", "token_perplexity",
                                                                 "token_accuracy"}
    assert r["improvement"]["ratios"][str(tiny_bundle)]["fair_pitch_bits_per_note"] == pytest.approx(
        r["baselines"]["ngram"]["pitch_bits_per_note"] / m["fair_pitch_bits_per_note"])
    assert m["samples"]["num_samples"] >= 1 and 0 <= m["samples"]["music_statistics"]["mean_overlap"] <= 1
    assert {Path(p).name for p in r["plots"]} == {"loss_curves.png", "overfitting.png", "scores.png",
                                                 "improvement_heatmap.png"}
    assert all(Path(p).stat().st_size > 1000 for p in r["plots"])
    table = results_table(r)
    assert "n-gram (order 2, 3-fold)" in table and "pitch bits/note (past only)" in table
    assert f"{m['fair_pitch_bits_per_note']:.3f}" in table and f"{m['grammar_bits_per_note']:.3f}" in table
    # IDyOM's PPM beside the n-gram, cross-validated on the same folds: the same figure as cross_validate_ppm
    from hf_melody.evaluation.compare import _evaluation_melodies
    from hf_melody.evaluation.ppm import cross_validate_ppm
    from hf_melody.evaluation.training_record import bundle_training_files

    infos = {str(tiny_bundle): bundle_training_files(str(tiny_bundle))}
    melodies, _ = _evaluation_melodies("essen/kinder0", "auto", infos, None, 3, False)
    assert len(melodies) == r["num_melodies"]
    ppm = r["baselines"]["ppm"]["pitch_bits_per_note"]
    by_hand = cross_validate_ppm(melodies, 3, 0, models=("both+",), stm_options={"exclusion_rule": "idyom"})
    assert ppm == pytest.approx(by_hand["both+"]["pitch_bits_per_note"]) and 1.0 < ppm < 6.0
    assert "PPM, IDyOM's both+" in table and f"{ppm:.3f}" in table


def test_cli_evaluate(tiny_bundle, tmp_path, capsys):
    from hf_melody.cli import main

    code = main(["evaluate", "--models", str(tiny_bundle), "--dataset", "essen/kinder0", "--out",
                 str(tmp_path), "--split", "all", "--max-melodies", "12", "--config",
                 str(RECIPES / "evaluate.yaml"), "--num-samples", "0", "--no_ppm"])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["split"] == "all" and results["num_melodies"] == 12
    assert list(results["models"]) == [str(tiny_bundle)]
    # --no_ppm: the n-gram baseline only (PPM's cross-validation is the slow one on large datasets)
    assert set(results["baselines"]) == {"ngram", "majority"} and results["settings"]["ppm"] is False
    out = capsys.readouterr().out
    assert "bits/note" in out and "n-gram (order" in out and "PPM" not in out


def test_evaluate_recipe_parses_and_rejects_unknown_keys(tmp_path):
    from hf_melody.evaluation import parse_evaluation_args

    args = parse_evaluation_args(["--config", str(RECIPES / "evaluate.yaml"), "--ngram_order", "3"])
    assert args.models == ["original", "deeper-thinner", "wider-shallower", "folk-base"]
    assert args.dataset == "essen/kinder0" and args.ngram_order == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("modles: [original]\n")
    with pytest.raises(ConfigError, match="models"):
        parse_evaluation_args(["--config", str(bad)])
