"""Evaluating melody models: likelihood of real melodies, baselines, sampled-melody metrics, and the comparison of
several models in one `results.json` with plots.

    likelihood       perplexity, bits per note, pitch bits (onset known), dynamic evaluation
    fair_pitch       pitch bits from the past only (the note's onset tokens marginalised; IDyOM-comparable)
    analysis         expectation analysis: information content and entropy of every note (IDyOM's columns)
    ppm              IDyOM's PPM* pitch model: long-term, short-term and their entropy-weighted combination
    viewpoints       derived pitch viewpoints (cpint, cpintfref, linked): IDyOM's multiple-viewpoint PPM
    baselines        cross-validated n-gram and majority-token baselines, literature reference values
    similarity       BLEU, self-BLEU and novelty (longest note sequences shared with a corpus)
    statistics       music statistics of melody sets (pitch-class entropy, groove, scale consistency, ...)
    sampling         metrics of sampled melodies (continuation BLEU, self-BLEU, statistics, novelty)
    training_record  what a bundle's training files say (its data, its loss curves)
    plots            loss curves, overfitting, bits per note and improvement heatmap (matplotlib)
    compare          evaluate_models / evaluate and the results table

Examples:
    >>> import hf_melody
    >>> from hf_melody.evaluation import results_table, score_melodies
    >>> results = hf_melody.evaluate({"models": ["original", "folk-base"]})                           # doctest: +SKIP
    >>> print(results_table(results))                                                                   # doctest: +SKIP
    >>> melodies, _ = hf_melody.load_melodies("essen/kinder0")                                          # doctest: +SKIP
    >>> score_melodies(hf_melody.load_model("folk-base"), hf_melody.load_tokenizer("folk-base"), melodies)
    ... # doctest: +SKIP
"""

from .arguments import EvaluationArguments
from .baselines import (
    IDYOM_KINDER_PITCH_BITS,
    ORDER2_KINDER_PITCH_BITS,
    NGramNoteModel,
    WittenBellNGram,
    cross_validate_ngram,
    kfold,
    majority_token_baseline,
)
from .compare import evaluate, evaluate_models, improvement_ratios, parse_evaluation_args, results_table
from .likelihood import LikelihoodResult, melodies_from_notes, notes_of_score, pitch_token_ids, score_melodies
from .sampling import sample_metrics
from .training_record import bundle_training_files, overfitting_curve, trained_on

__all__ = [
    "IDYOM_KINDER_PITCH_BITS",
    "ORDER2_KINDER_PITCH_BITS",
    "EvaluationArguments",
    "LikelihoodResult",
    "NGramNoteModel",
    "WittenBellNGram",
    "bundle_training_files",
    "cross_validate_ngram",
    "evaluate",
    "evaluate_models",
    "improvement_ratios",
    "kfold",
    "majority_token_baseline",
    "melodies_from_notes",
    "notes_of_score",
    "overfitting_curve",
    "parse_evaluation_args",
    "pitch_token_ids",
    "results_table",
    "sample_metrics",
    "score_melodies",
    "trained_on",
]
