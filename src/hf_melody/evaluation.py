"""Comparing melody models: likelihood (from `likelihood`), baselines (from `baselines`), sampled-melody metrics,
and the comparison of several models in one `results.json` with plots (`evaluation_plots`).

Example:
    >>> from hf_melody.evaluation import evaluate_models, score_melodies
    >>> from hf_melody import load_melodies, load_model, load_tokenizer
    >>> melodies, _ = load_melodies("essen/kinder0")                                        # doctest: +SKIP
    >>> score_melodies(load_model("folk-base"), load_tokenizer("folk-base"), melodies).bits_per_note  # doctest: +SKIP
    5.1
    >>> evaluate_models(["original", "folk-base"], "essen/kinder0", out_dir="out/eval")    # doctest: +SKIP
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

from .arguments import EvaluationArguments
from .baselines import (  # noqa: F401  (re-exported: the baselines are part of the evaluation API)
    NGramNoteModel,
    WittenBellNGram,
    cross_validate_ngram,
    kfold,
    majority_token_baseline,
)
from .corpora import Melody
from .errors import ConfigError, HFMelodyError
from .likelihood import (  # noqa: F401  (re-exported)
    LikelihoodResult,
    melodies_from_notes,
    notes_of_score,
    pitch_token_ids,
    score_melodies,
)
from .parser import evaluation_parser

logger = logging.getLogger(__name__)

IDYOM_KINDER_PITCH_BITS = 2.106
"""IDyOM's pitch prediction on the Kinderlieder (Pearce 2005), bits per note."""
ORDER2_KINDER_PITCH_BITS = 2.62
"""An order-2 n-gram on the same data (approximate, from the same literature)."""


# ----------------------------------------------------------------------------------------------------------------
# sampling-based metrics
# ----------------------------------------------------------------------------------------------------------------
def _generate(model, tokenizer, prompt: list[int], max_new_tokens: int, max_new_notes: int | None, seed: int
              ) -> list[int]:
    import torch
    from transformers import StoppingCriteriaList

    from .generation import MusicalLengthCriteria, token_counts

    torch.manual_seed(seed)
    criteria = StoppingCriteriaList()
    if max_new_notes is not None:
        criteria.append(MusicalLengthCriteria(tokenizer, len(prompt), max_new_notes=max_new_notes))
    x = torch.tensor([prompt], device=next(model.parameters()).device)
    out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=True, temperature=1.0, top_k=0,
                         top_p=1.0, max_new_tokens=max_new_tokens, stopping_criteria=criteria,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)[0].tolist()
    new, notes = [], 0
    pitch_counts, _ = token_counts(tokenizer)
    for i in out[len(prompt):]:
        if i in (tokenizer.eos_token_id, tokenizer.pad_token_id):
            break
        notes += int(pitch_counts[i])
        if max_new_notes is not None and notes > max_new_notes:
            break
        new.append(i)
    return new


def sample_metrics(model, tokenizer, melodies: Sequence[Melody], num_samples: int = 32, prompt_bars: int = 4,
                   use_style_tokens: bool = True, training_notes: Sequence | None = None, seed: int = 0,
                   progress: bool = False) -> dict[str, Any]:
    """Metrics of sampled melodies (temperature 1, no truncation).

    - `continuation_bleu`: for up to `num_samples` melodies, the first `prompt_bars` bars are the prompt; the
      model continues for as many notes as the real continuation has; corpus BLEU over base REMI tokens
      (plain REMI tokenizers only: BPE ids cannot be cut at a bar line).
    - `self_bleu` and `music_statistics` (`compare_sets` against `melodies`) of `num_samples` unconditional
      samples from `MelodyPipeline` with its defaults (BOS + style token, grammar on, whole tunes).
    - `novelty` of those samples against `training_notes`, when given.

    Example:
        >>> sample_metrics(model, tok, melodies, num_samples=16)["continuation_bleu"]["bleu"]   # doctest: +SKIP
        0.21
    """
    from tqdm.auto import tqdm

    from .data import melody_style
    from .music_stats import compare_sets
    from .similarity import corpus_bleu, novelty, self_bleu

    model.eval()
    n_pos = int(model.config.n_positions)
    preds, refs = [], []
    # BPE ids cannot be cut at a bar line, so continuation BLEU is only measured for plain REMI tokenizers
    prompts = [] if tokenizer.is_bpe else melodies[:num_samples]
    for k, m in enumerate(tqdm(prompts, desc="continuations", disable=not progress)):
        ids = tokenizer.encode(m, bos=True, eos=True, style=melody_style(m) if use_style_tokens else None)
        base = tokenizer.to_base_tokens(ids)
        bar_pos = [i for i, t in enumerate(base) if t.startswith("Bar_")]
        if len(bar_pos) <= prompt_bars + 1 or bar_pos[prompt_bars] >= n_pos - 8:
            continue
        cut = bar_pos[prompt_bars]
        reference = ids[cut:-1]
        ref_notes = sum(t.startswith("Pitch_") for t in base[cut:])
        gen = _generate(model, tokenizer, ids[:cut], n_pos - cut, ref_notes, seed + k)
        preds.append(tokenizer.to_base_tokens(gen))
        refs.append(tokenizer.to_base_tokens(reference))
    out: dict[str, Any] = {"num_prompts": len(preds), "prompt_bars": prompt_bars}
    out["continuation_bleu"] = corpus_bleu(preds, refs) if preds else None

    # unconditional samples go through the pipeline, as users get them: grammar on, whole tunes that end by themselves
    from .pipeline import MelodyPipeline

    samples, sample_ts, sample_tokens = [], [], []
    style = melody_style(melodies[0]) if use_style_tokens else None
    if num_samples:
        pipe = MelodyPipeline(model=model, melody_tokenizer=tokenizer)
        for melody in pipe(num_return_sequences=num_samples, seed=seed + 10_000, style=style):
            notes, tss = notes_of_score(melody.score)
            if notes:
                samples.append(notes)
                sample_ts.append(tss)
                sample_tokens.append(tokenizer.to_base_tokens(melody.token_ids))
    out["num_samples"] = len(samples)
    out["self_bleu"] = self_bleu(sample_tokens) if len(sample_tokens) > 1 else None
    if samples:
        stats = compare_sets(samples, [m.notes for m in melodies], sample_ts, [m.time_signatures for m in melodies])
        stats.pop("per_melody")
        out["music_statistics"] = stats
        if training_notes is not None:
            nov = novelty(samples, training_notes, sample_ts)
            out["novelty"] = {k: nov[k] for k in ("copy_rate", "mean_longest_shared", "max_longest_shared")}
    return out


# ----------------------------------------------------------------------------------------------------------------
# comparing models
# ----------------------------------------------------------------------------------------------------------------
def bundle_training_files(name: str) -> tuple[dict, dict]:
    """`(training_info.json, training_log.json)` of a bundle (name, folder or Hub id), each `{}` when absent."""
    from .bundle import TRAINING_INFO, TRAINING_LOG, resolve_file

    out = []
    for filename in (TRAINING_INFO, TRAINING_LOG):
        try:
            out.append(json.loads(Path(resolve_file(name, filename)).read_text()))
        except (HFMelodyError, OSError, ValueError):
            out.append({})
    return out[0], out[1]


def trained_on(info: dict, dataset: str) -> bool:
    """Whether a model's training data (its `training_info.json`: `dataset` minus `exclude`) overlaps `dataset`.

    Example:
        >>> trained_on({"dataset": ["essen", "oneills1850"], "exclude": ["essen/kinder0"]}, "essen/kinder0")
        False
    """
    spec = dataset.rstrip("/") + "/"
    for d in info.get("dataset", []):
        d = str(d).rstrip("/") + "/"
        if spec.startswith(d) or d.startswith(spec):
            excluded = any(spec.startswith(str(e).rstrip("/") + "/") for e in info.get("exclude", []) or [])
            if not excluded:
                return True
    return False


def overfitting_curve(log: dict) -> list[dict[str, float]]:
    """Validation minus training loss at each evaluation step of a `training_log.json` (the training loss
    interpolated at that step)."""
    import numpy as np

    train = [(h["step"], h["loss"]) for h in log.get("train", []) if "step" in h]
    evals = [(h["step"], h["eval_loss"]) for h in log.get("eval", []) if "step" in h]
    if not train or not evals:
        return []
    steps, losses = zip(*train, strict=True)
    return [{"step": s, "gap": float(e - np.interp(s, steps, losses))} for s, e in evals]


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


def evaluate_models(models: Sequence[str], dataset: str = "essen/kinder0", out_dir: str | os.PathLike = "out/eval",
                    split: str = "auto", ngram_order: int = 2, ngram_folds: int = 10, baseline: str = "ngram",
                    num_samples: int = 0, prompt_bars: int = 4, novelty_dataset: str | list[str] | None = None,
                    stride: int | None = None, batch_size: int = 16, max_melodies: int | None = None,
                    seed: int = 0, device: str | None = None, progress: bool = True,
                    fair_pitch: bool = True) -> dict[str, Any]:
    """Score several model bundles on one dataset; write `results.json` and plots into `out_dir`.

    Args:
        models: bundled checkpoint names (`folk-base`, `original`, ...), folders or Hub ids (HF cache). Models
            that cannot be loaded are skipped and listed under `skipped`.
        dataset: corpus spec of the evaluation melodies.
        split: `"all"`, `"train"`, `"validation"`, `"test"` (by `hf_melody.data.split_of`, default ratios) or
            `"auto"`: all melodies when no model's `training_info.json` lists the dataset among its (not
            excluded) training data, else the test split.
        ngram_order, ngram_folds: the n-gram baseline (`baselines.NGramNoteModel`) and the majority-token /
            unigram baseline, both cross-validated over the evaluation melodies (each scored by a baseline
            that never saw it).
        baseline: `"ngram"` or a model name: the reference of the improvement ratios.
        num_samples: > 0 adds sampled-melody metrics (see `sample_metrics`); `novelty_dataset` is the
            corpus that samples are checked for copies against (e.g. the models' training corpora).
        stride, batch_size, device: likelihood scoring settings; `max_melodies` caps the melodies (quick runs).
        fair_pitch: also score each note's pitch from the past only (`fair_pitch_bits_per_note`, the note's
            own onset tokens marginalised; see `hf_melody.fair_pitch`): the measure comparable with IDyOM and
            the n-gram, whose pitch models never see the note's onset. Much slower than plain scoring: one
            forward pass per explored onset path (about 10 s per 1,000 notes for folk-base on one CPU thread).

    Returns the results dict (also in `out_dir/results.json`).

    Example:
        >>> evaluate_models(["original", "deeper-thinner"], "essen/kinder0", "out/eval")   # doctest: +SKIP
    """
    from .corpora import load_melodies
    from .data import melody_style, split_of
    from .hub import load_model, load_tokenizer
    from .modeling import num_parameters
    from .tokenizer import MelodyTokenizer
    from .utils import atomic_write_text

    if not models:
        raise ConfigError("no models to evaluate; give bundled names, folders or Hub ids")
    out_dir = Path(out_dir)
    melodies, _ = load_melodies(dataset, progress=progress)
    infos = {name: bundle_training_files(name) for name in models}
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
    notes = [m.notes for m in melodies]
    results: dict[str, Any] = {"dataset": dataset, "split": split, "num_melodies": len(melodies),
                               "num_notes": sum(len(n) for n in notes), "models": {}, "baselines": {},
                               "skipped": {}, "settings": {"ngram_order": ngram_order, "ngram_folds": ngram_folds,
                                                           "num_samples": num_samples, "seed": seed}}
    # 1. baselines (cross-validated over the evaluation melodies)
    ngram = cross_validate_ngram(notes, ngram_order, ngram_folds, seed)
    results["baselines"]["ngram"] = {k: ngram[k] for k in ("pitch_bits_per_note", "bits_per_note", "order")}
    base_tok = MelodyTokenizer()
    targets = [base_tok.encode(m, bos=True, eos=True, style=melody_style(m))[2:] for m in melodies]
    maj_parts = []
    for train, test in kfold(list(range(len(melodies))), ngram_folds, seed):
        maj_parts.append(majority_token_baseline([targets[i] for i in train], [targets[i] for i in test],
                                                 base_tok.vocab_size, sum(len(notes[i]) for i in test)))
    tokens = sum(p["num_tokens"] for p in maj_parts)
    nats = sum(p["loss"] * p["num_tokens"] for p in maj_parts)
    results["baselines"]["majority"] = {
        "accuracy": sum(p["accuracy"] * p["num_tokens"] for p in maj_parts) / tokens,
        "loss": nats / tokens, "perplexity": math.exp(nats / tokens),
        "bits_per_note": nats / math.log(2) / results["num_notes"]}
    training_notes = None
    if num_samples and novelty_dataset:
        training_notes = [m.notes for m in load_melodies(novelty_dataset, progress=progress)[0]]

    # 2. models
    logs = {}
    for name in models:
        try:
            model, tok = load_model(name), load_tokenizer(name)
        except HFMelodyError as e:
            logger.warning("skipping %s: %s", name, e)
            results["skipped"][name] = str(e)
            continue
        if device:
            model = model.to(device)
        r = score_melodies(model, tok, melodies, pitch_bits=not tok.is_bpe, stride=stride, batch_size=batch_size,
                           progress=progress, fair_pitch=fair_pitch and not tok.is_bpe).to_dict()
        info, log = infos[name]
        logs[name] = log
        gaps = overfitting_curve(log)
        r.update({"num_parameters": num_parameters(model), "is_bpe": tok.is_bpe, "vocab_size": tok.vocab_size,
                  "n_positions": int(model.config.n_positions), "final_train_loss": info.get("final_train_loss"),
                  "final_eval_loss": info.get("final_eval_loss"), "generalization_gap": gaps[-1]["gap"] if gaps
                  else None, "trained_on_dataset": trained_on(info, dataset)})
        if split == "all" and r["trained_on_dataset"]:
            logger.warning("%s was trained on %s: its scores on split=all include its training melodies", name,
                           dataset)
        if num_samples:
            r["samples"] = sample_metrics(model, tok, melodies, num_samples, prompt_bars,
                                          training_notes=training_notes, seed=seed, progress=progress)
        results["models"][name] = r
    if not results["models"]:
        raise HFMelodyError(f"none of the models could be loaded: {results['skipped']}")
    if baseline != "ngram" and baseline not in results["models"]:
        raise ConfigError(f"baseline={baseline!r} is neither 'ngram' nor one of the models {list(results['models'])}")
    results["improvement"] = {"baseline": baseline, "ratios": improvement_ratios(results, baseline)}

    # 3. plots and results.json
    from .evaluation_plots import plot_all

    results["plots"] = [str(p) for p in plot_all(results, logs, out_dir)]
    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=1, default=float))
    return results


# ----------------------------------------------------------------------------------------------------------------
# configuration (recipes/evaluate.py, `hf-melody evaluate`)
# ----------------------------------------------------------------------------------------------------------------
def parse_evaluation_args(args: list[str] | None = None) -> EvaluationArguments:
    """`--config recipes/evaluate.yaml` (defaults) plus command-line overrides; unknown keys are a `ConfigError`.

    Example:
        >>> parse_evaluation_args(["--models", "original", "--out", "out/x"]).output_dir
        'out/x'
    """
    [parsed] = evaluation_parser().parse_args_and_config(args)
    return parsed


def results_table(results: dict[str, Any]) -> str:
    """A Markdown table of the models and baselines of `results` (bits per note, pitch bits, perplexity).

    Example:
        >>> print(results_table(evaluate_models(["original"], "essen/kinder0")))    # doctest: +SKIP
    """
    def fmt(x: Any) -> str:
        return f"{x:.3f}" if isinstance(x, int | float) and x == x else "-"

    rows = ["| model | bits/note | pitch bits/note (onset known) | pitch bits/note (past only) | token perplexity "
            "| token accuracy | parameters |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results["models"].items():
        rows.append(f"| {name} | {fmt(r['bits_per_note'])} | {fmt(r['pitch_bits_per_note'])} | "
                    f"{fmt(r.get('fair_pitch_bits_per_note'))} | {fmt(r['token_perplexity'])} | "
                    f"{fmt(r['token_accuracy'])} | {r['num_parameters']:,} |")
    ng, maj = results["baselines"]["ngram"], results["baselines"]["majority"]
    rows.append(f"| n-gram (order {ng['order']}, {results['settings']['ngram_folds']}-fold) | "
                f"{fmt(ng['bits_per_note'])} | - | {fmt(ng['pitch_bits_per_note'])} | - | - | - |")
    rows.append(f"| unigram / majority token | {fmt(maj['bits_per_note'])} | - | - | {fmt(maj['perplexity'])} | "
                f"{fmt(maj['accuracy'])} | - |")
    return "\n".join(rows)


def evaluate(config: EvaluationArguments | str | os.PathLike | dict | None = None, *, progress: bool = True,
             **overrides) -> dict[str, Any]:
    """Compare models as `recipes/evaluate.py` does: from a YAML path, a dict or an `EvaluationArguments`, with
    keyword overrides of its keys; writes `results.json` and the plots into `output_dir` and returns the results.

    Example:
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
