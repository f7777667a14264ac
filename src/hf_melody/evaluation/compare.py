"""Comparing models: score several bundles on one dataset against cross-validated baselines, write
`results.json` and the plots, and summarise them as a table. `evaluate()` is the entry point of
`recipes/evaluate.py`, `hf-melody evaluate` and `hf_melody.evaluate`.

Examples:
    >>> import hf_melody
    >>> results = hf_melody.evaluate({"models": ["original", "folk-base"], "output_dir": "out/eval"})  # doctest: +SKIP
    >>> print(results_table(results))                                                                 # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data.corpora import load_melodies
from ..data.dataset import melody_style, split_of
from ..data.melody import Melody
from ..errors import ConfigError, HFMelodyError
from ..hub import load_model, load_tokenizer
from ..modeling.presets import num_parameters
from ..parser import ConfigSource
from ..tokenizer import MelodyTokenizer
from ..utils import atomic_write_text
from .arguments import EvaluationArguments, evaluation_parser
from .baselines import cross_validate_ngram, kfold, majority_token_baseline
from .likelihood import score_melodies
from .plots import plot_all
from .ppm import cross_validate_ppm
from .sampling import sample_metrics
from .training_record import bundle_training_files, overfitting_curve, trained_on

logger = logging.getLogger(__name__)


def evaluate(config: EvaluationArguments | ConfigSource = None, *, progress: bool = True,
             **overrides) -> dict[str, Any]:
    """Compare models as `recipes/evaluate.py` does: from a YAML path, a dict or an `EvaluationArguments`, with
    keyword overrides of its keys; writes `results.json` and the plots into `output_dir` and returns the results.

    Examples:
        >>> import hf_melody
        >>> results = hf_melody.evaluate("recipes/evaluate.yaml", models=["original"], num_samples=0)  # doctest: +SKIP
        >>> results = hf_melody.evaluate({"models": ["out/my-model"], "dataset": "essen/kinder0"})    # doctest: +SKIP
    """
    if isinstance(config, EvaluationArguments):
        overrides = evaluation_parser().check_config(overrides, "keyword arguments")
        config = dataclasses.replace(config, **overrides) if overrides else config
    else:
        [config] = evaluation_parser().parse_config(config, **overrides)
    return evaluate_models(**config.to_kwargs(), progress=progress)


def evaluate_models(models: Sequence[str], dataset: str = "essen/kinder0", out_dir: str | os.PathLike = "out/eval",
                    split: str = "auto", ngram_order: int = 2, ngram_folds: int = 10, baseline: str = "ngram",
                    num_samples: int = 0, prompt_bars: int = 4, novelty_dataset: str | list[str] | None = None,
                    stride: int | None = None, batch_size: int = 16, max_melodies: int | None = None,
                    seed: int = 0, device: str | None = None, progress: bool = True,
                    fair_pitch: bool = True, ppm: bool = True) -> dict[str, Any]:
    """Score several model bundles on one dataset; write `results.json` and plots into `out_dir`.

    Args:
        models: bundled checkpoint names (`folk-base`, `original`, ...), folders or Hub ids (HF cache). Models
            that cannot be loaded are skipped and listed under `skipped`.
        dataset: corpus spec of the evaluation melodies.
        split: `"all"`, `"train"`, `"validation"`, `"test"` (by `hf_melody.data.dataset.split_of`, default ratios) or
            `"auto"`: all melodies when no model's `training_info.json` lists the dataset among its (not
            excluded) training data, else the test split.
        ngram_order: context length of the n-gram baseline (`NGramNoteModel`).
        ngram_folds: folds of the cross-validation of the n-gram and the majority-token / unigram baselines over
            the evaluation melodies (each scored by a baseline that never saw it).
        baseline: `"ngram"` or a model name: the reference of the improvement ratios.
        num_samples: > 0 adds sampled-melody metrics (see `sample_metrics`); `novelty_dataset` is the
            corpus that samples are checked for copies against (e.g. the models' training corpora).
        stride: step of the sliding window for melodies longer than the context (default: half of it).
        batch_size: windows scored at once.
        max_melodies: at most this many evaluation melodies (quick runs).
        seed: seed of the baselines' folds and of sampling.
        device: where the models run (default: where they are).
        progress: progress bars.
        fair_pitch: also score each note's pitch from the past only (`fair_pitch_bits_per_note`, the note's
            own onset tokens marginalised; see `hf_melody.evaluation.fair_pitch`): the measure comparable with IDyOM and
            the n-gram, whose pitch models never see the note's onset. Much slower than plain scoring: one
            forward pass per explored onset path (about 10 s per 1,000 notes for folk-base on one CPU thread).
        ppm: also cross-validate IDyOM's PPM (cpitch `both+`, IDyOM's counts: the configuration that reproduces
            its published Kinderlieder figure) as a baseline row, `ngram_folds` folds (about 50 s for the 8,393
            notes of the Kinderlieder on one loaded CPU thread; `False` skips it on large datasets).

    Returns the results dict (also in `out_dir/results.json`).

    Examples:
        >>> evaluate_models(["original", "deeper-thinner"], "essen/kinder0", "out/eval")   # doctest: +SKIP
    """
    # 1. check the options and pick the melodies: before any scoring, so a typo costs nothing; the split depends on
    #    what the models were trained on (their training_info.json), so a model never scores its own training tunes
    if not models:
        raise ConfigError("no models to evaluate; give bundled names, folders or Hub ids")
    if baseline != "ngram" and baseline not in models:
        raise ConfigError(f"baseline={baseline!r} is neither 'ngram' nor one of the models {list(models)}")
    infos = {name: bundle_training_files(name) for name in models}
    melodies, split = _evaluation_melodies(dataset, split, infos, max_melodies, ngram_folds, progress)
    notes = [m.notes for m in melodies]
    results: dict[str, Any] = {"dataset": dataset, "split": split, "num_melodies": len(melodies),
                               "num_notes": sum(len(n) for n in notes), "models": {}, "baselines": {},
                               "skipped": {}, "settings": {"ngram_order": ngram_order, "ngram_folds": ngram_folds,
                                                           "num_samples": num_samples, "seed": seed, "ppm": ppm}}
    # 2. baselines, cross-validated over the evaluation melodies: each melody is scored by a baseline that never
    #    saw it, the same footing as the models on held-out tunes
    results["baselines"] = _baselines(melodies, ngram_order, ngram_folds, seed, ppm=ppm)
    training_notes = None
    if num_samples and novelty_dataset:
        training_notes = [m.notes for m in load_melodies(novelty_dataset, progress=progress)[0]]

    # 3. models, one at a time (only one in memory); one that cannot be loaded is skipped and listed, not fatal
    logs = {}
    for name in models:
        try:
            model, tok = load_model(name), load_tokenizer(name)
        except HFMelodyError as e:
            logger.warning("skipping %s: %s", name, e)
            results["skipped"][name] = str(e)
            continue
        model = model.to(device) if device else model
        info, logs[name] = infos[name]
        results["models"][name] = _score_model(
            name, model, tok, melodies, info, logs[name], dataset, split, stride=stride, batch_size=batch_size,
            fair_pitch=fair_pitch, num_samples=num_samples, prompt_bars=prompt_bars, training_notes=training_notes,
            seed=seed, progress=progress)
    if not results["models"]:
        raise HFMelodyError(f"none of the models could be loaded: {results['skipped']}")
    if baseline != "ngram" and baseline not in results["models"]:
        raise ConfigError(f"baseline={baseline!r} is neither 'ngram' nor one of the models {list(results['models'])}")
    results["improvement"] = {"baseline": baseline, "ratios": improvement_ratios(results, baseline)}

    # 4. plots and results.json, written atomically so a crashed run never leaves half a results file
    results["plots"] = [str(p) for p in plot_all(results, logs, Path(out_dir))]
    atomic_write_text(Path(out_dir) / "results.json", json.dumps(results, indent=1, default=float))
    return results


def _evaluation_melodies(dataset: str, split: str, infos: dict[str, tuple[dict, dict]], max_melodies: int | None,
                         ngram_folds: int, progress: bool) -> tuple[list[Melody], str]:
    """The melodies of `split` (`auto` resolved: the test split when a model trained on `dataset`, else all)."""
    melodies, _ = load_melodies(dataset, progress=progress)
    if split == "auto":
        seen = [n for n, (info, _) in infos.items() if trained_on(info, dataset)]
        split = "test" if seen else "all"
        logger.info("split=auto -> %s%s", split, f" ({', '.join(seen)} trained on {dataset})" if seen else "")
    if split != "all":
        if split not in ("train", "validation", "test"):
            raise ConfigError(f"split={split!r}; choose all, train, validation, test or auto")
        melodies = [m for m in melodies if split_of(m.id) == split]
    melodies = melodies[:max_melodies] if max_melodies else melodies
    if len(melodies) < max(2, ngram_folds):
        raise ConfigError(f"{len(melodies)} melodies in split {split!r} of {dataset}; need at least "
                          f"{max(2, ngram_folds)} (lower ngram_folds or use split='all')")
    return melodies, split


def _baselines(melodies: Sequence[Melody], ngram_order: int, ngram_folds: int, seed: int,
               ppm: bool = True) -> dict[str, dict]:
    """The n-gram, majority-token and (with `ppm`) PPM baselines, each melody scored by a fold that never saw it."""
    notes = [m.notes for m in melodies]
    ngram = cross_validate_ngram(notes, ngram_order, ngram_folds, seed)
    base_tok = MelodyTokenizer()
    targets = [base_tok.encode(m, bos=True, eos=True, style=melody_style(m))[2:] for m in melodies]
    parts = []
    for train, test in kfold(list(range(len(melodies))), ngram_folds, seed):
        parts.append(majority_token_baseline([targets[i] for i in train], [targets[i] for i in test],
                                             base_tok.vocab_size, sum(len(notes[i]) for i in test)))
    tokens = sum(p["num_tokens"] for p in parts)
    nats = sum(p["loss"] * p["num_tokens"] for p in parts)
    majority = {"accuracy": sum(p["accuracy"] * p["num_tokens"] for p in parts) / tokens, "loss": nats / tokens,
                "perplexity": math.exp(nats / tokens), "bits_per_note": nats / math.log(2) / sum(map(len, notes))}
    # IDyOM's cpitch model as it reproduces the published Kinderlieder figure (RESULTS.md 19b): LTM+STM with the
    # LTM learning the test melodies too (`both+`), the STM reading update-excluded counts as IDyOM's code does
    baselines = {"ngram": {k: ngram[k] for k in ("pitch_bits_per_note", "bits_per_note", "order")},
                 "majority": majority}
    if ppm:
        cv = cross_validate_ppm(melodies, ngram_folds, seed, models=("both+",),
                                stm_options={"exclusion_rule": "idyom"})
        baselines["ppm"] = {"pitch_bits_per_note": cv["both+"]["pitch_bits_per_note"],
                            "model": "both+ (cpitch, IDyOM counts)"}
    return baselines


def _score_model(name: str, model, tok, melodies: Sequence[Melody], info: dict, log: dict, dataset: str, split: str,
                 *, stride: int | None, batch_size: int, fair_pitch: bool, num_samples: int, prompt_bars: int,
                 training_notes: list | None, seed: int, progress: bool) -> dict[str, Any]:
    """One model's entry of `results["models"]`: likelihood scores, model facts and (with `num_samples`) sample
    metrics."""
    r = score_melodies(model, tok, melodies, pitch_bits=not tok.is_bpe, stride=stride, batch_size=batch_size,
                       progress=progress, fair_pitch=fair_pitch and not tok.is_bpe, grammar_bits=True).to_dict()
    r.update(_model_facts(model, tok, info, log, dataset))
    if split == "all" and r["trained_on_dataset"]:
        logger.warning("%s was trained on %s: its scores on split=all include its training melodies", name, dataset)
    if num_samples:
        r["samples"] = sample_metrics(model, tok, melodies, num_samples, prompt_bars, training_notes=training_notes,
                                      seed=seed, progress=progress)
    return r


def _model_facts(model, tok, info: dict, log: dict, dataset: str) -> dict[str, Any]:
    """Size, vocabulary and training facts of one model, beside its scores."""
    gaps = overfitting_curve(log)
    return {"num_parameters": num_parameters(model), "is_bpe": tok.is_bpe, "vocab_size": tok.vocab_size,
            "n_positions": int(model.config.n_positions), "final_train_loss": info.get("final_train_loss"),
            "final_eval_loss": info.get("final_eval_loss"), "generalization_gap": gaps[-1]["gap"] if gaps else None,
            "trained_on_dataset": trained_on(info, dataset)}


def improvement_ratios(results: dict[str, Any], baseline: str = "ngram") -> dict[str, dict[str, float]]:
    """Models x metrics: how many times better than the baseline (> 1 is better).

    `baseline_value / model_value` for bits and perplexity, `model_value / baseline_value` for accuracy.
    `baseline` is `"ngram"` or the name of a model in `results["models"]`; token metrics of the n-gram
    baseline come from the majority / unigram baseline (the n-gram has no tokens).
    """
    base = results["models"].get(baseline)
    b = results["baselines"]
    ref = {
        "bits_per_note": (base or b["ngram"])["bits_per_note"],
        "pitch_bits_per_note": (base or b["ngram"]).get("pitch_bits_per_note"),
        # the n-gram's pitch model sees past notes only: its pitch bits are already the fair measure
        "fair_pitch_bits_per_note": (base.get("fair_pitch_bits_per_note") if base
                                     else b["ngram"].get("pitch_bits_per_note")),
        "token_perplexity": (base or {}).get("token_perplexity", b["majority"]["perplexity"]),
        "token_accuracy": (base or {}).get("token_accuracy", b["majority"]["accuracy"]),
    }
    out = {}
    for name, r in results["models"].items():
        row = {}
        for metric, rv in ref.items():
            mv = r.get(metric)
            if mv is None or rv is None or not mv or not rv:
                continue
            row[metric] = mv / rv if metric == "token_accuracy" else rv / mv
        out[name] = row
    return out


def parse_evaluation_args(args: list[str] | None = None) -> EvaluationArguments:
    """`--config recipes/evaluate.yaml` (defaults) plus command-line overrides; unknown keys are a `ConfigError`.

    Examples:
        >>> parse_evaluation_args(["--models", "original", "--out", "out/x"]).output_dir
        'out/x'
    """
    [parsed] = evaluation_parser().parse_args_and_config(args)
    return parsed


def results_table(results: dict[str, Any]) -> str:
    """A Markdown table of the models and baselines of `results` (bits per note, pitch bits, perplexity).

    Examples:
        >>> print(results_table(evaluate_models(["original"], "essen/kinder0")))    # doctest: +SKIP
    """
    def fmt(x: Any) -> str:
        return f"{x:.3f}" if isinstance(x, int | float) and x == x else "-"

    rows = ["| model | bits/note | bits/note (grammar) | pitch bits/note (onset known) | pitch bits/note (past only) "
            "| token perplexity | token accuracy | parameters |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results["models"].items():
        rows.append(f"| {name} | {fmt(r['bits_per_note'])} | {fmt(r.get('grammar_bits_per_note'))} | "
                    f"{fmt(r['pitch_bits_per_note'])} | {fmt(r.get('fair_pitch_bits_per_note'))} | "
                    f"{fmt(r['token_perplexity'])} | {fmt(r['token_accuracy'])} | {r['num_parameters']:,} |")
    ng, maj = results["baselines"]["ngram"], results["baselines"]["majority"]
    rows.append(f"| n-gram (order {ng['order']}, {results['settings']['ngram_folds']}-fold) | "
                f"{fmt(ng['bits_per_note'])} | - | - | {fmt(ng['pitch_bits_per_note'])} | - | - | - |")
    ppm = results["baselines"].get("ppm")
    if ppm:
        rows.append(f"| PPM, IDyOM's {ppm['model']} ({results['settings']['ngram_folds']}-fold) | - | - | - | "
                    f"{fmt(ppm['pitch_bits_per_note'])} | - | - | - |")
    rows.append(f"| unigram / majority token | {fmt(maj['bits_per_note'])} | - | - | - | {fmt(maj['perplexity'])} | "
                f"{fmt(maj['accuracy'])} | - |")
    return "\n".join(rows)
