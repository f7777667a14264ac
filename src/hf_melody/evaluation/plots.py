"""Plots of a model comparison (matplotlib, Agg backend): loss curves, overfitting, bits per note, improvement heatmap.

Examples:
    >>> from hf_melody.evaluation.plots import plot_all
    >>> plot_all(results, logs, "out/eval")          # doctest: +SKIP
    [PosixPath('out/eval/loss_curves.png'), ...]
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .baselines import IDYOM_KINDER_PITCH_BITS, ORDER2_KINDER_PITCH_BITS
from .training_record import overfitting_curve


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_loss_curves(logs: dict[str, dict], path: str | os.PathLike) -> Path | None:
    """Training (dashed) and validation (solid) loss against step, one colour per model."""
    logs = {n: log for n, log in logs.items() if log.get("train") or log.get("eval")}
    if not logs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for k, (name, log) in enumerate(logs.items()):
        color = f"C{k % 10}"
        train = [(h["step"], h["loss"]) for h in log.get("train", []) if "step" in h]
        evals = [(h["step"], h["eval_loss"]) for h in log.get("eval", []) if "step" in h]
        if train:
            ax.plot(*zip(*train, strict=True), "--", color=color, alpha=0.7, label=f"{name} train")
        if evals:
            ax.plot(*zip(*evals, strict=True), "-o", color=color, ms=3, label=f"{name} validation")
    ax.set(xlabel="step", ylabel="loss (nats per token)", title="Loss curves")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def plot_overfitting(logs: dict[str, dict], path: str | os.PathLike) -> Path | None:
    """Validation minus training loss over training (above 0: the model fits training data better)."""
    curves = {n: overfitting_curve(log) for n, log in logs.items()}
    curves = {n: c for n, c in curves.items() if c}
    if not curves:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, curve in curves.items():
        ax.plot([c["step"] for c in curve], [c["gap"] for c in curve], "-o", ms=3, label=name)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xlabel="step", ylabel="validation - training loss", title="Overfitting (generalisation gap)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def plot_scores(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Bars: token perplexity (models), bits per note and the two pitch measures (models and baselines).

    "pitch bits, onset known" scores the Pitch token after the note's own Position/Rest/Bar tokens; "pitch bits,
    past only" marginalises them (the measure of IDyOM and the n-gram, whose reference lines it carries).
    """
    plt = _pyplot()
    models = results["models"]
    base = results["baselines"]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    panels = [
        ("token_perplexity", "token perplexity", {"majority (unigram)": base["majority"]["perplexity"]}),
        ("bits_per_note", "bits per note (all tokens)", {f"order-{base['ngram']['order']} n-gram":
                                                          base["ngram"]["bits_per_note"],
                                                          "unigram tokens": base["majority"]["bits_per_note"]}),
        ("pitch_bits_per_note", "pitch bits per note, onset known", {}),
        ("fair_pitch_bits_per_note", "pitch bits per note, past only", {f"order-{base['ngram']['order']} n-gram":
                                                                        base["ngram"]["pitch_bits_per_note"]}),
    ]
    for ax, (key, title, extra) in zip(axes, panels, strict=True):
        names = [n for n, r in models.items() if r.get(key) is not None] + list(extra)
        values = [models[n][key] for n in names[:len(names) - len(extra)]] + list(extra.values())
        colors = ["C0"] * (len(names) - len(extra)) + ["0.6"] * len(extra)
        bars = ax.bar(range(len(names)), values, color=colors)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        if key == "fair_pitch_bits_per_note" and results["dataset"].rstrip("/") == "essen/kinder0":
            ax.axhline(IDYOM_KINDER_PITCH_BITS, color="C3", ls="--", lw=1, label=f"IDyOM {IDYOM_KINDER_PITCH_BITS}")
            ax.axhline(ORDER2_KINDER_PITCH_BITS, color="C2", ls=":", lw=1,
                       label=f"order-2 (lit.) {ORDER2_KINDER_PITCH_BITS}")
            ax.legend(fontsize=7)
    fig.suptitle(f"{results['dataset']} ({results['split']}, {results['num_melodies']} melodies)")
    return _save(fig, Path(path))


def plot_improvement(results: dict[str, Any], path: str | os.PathLike) -> Path | None:
    """Heatmap of `results["improvement"]["ratios"]` (models x metrics; > 1 is better than the baseline)."""
    ratios = results["improvement"]["ratios"]
    metrics = sorted({m for row in ratios.values() for m in row})
    if not ratios or not metrics:
        return None
    import numpy as np

    plt = _pyplot()
    names = list(ratios)
    grid = np.array([[ratios[n].get(m, math.nan) for m in metrics] for n in names], dtype=float)
    fig, ax = plt.subplots(figsize=(1.8 * len(metrics) + 2, 0.5 * len(names) + 1.8))
    spread = max(0.05, float(np.nanmax(np.abs(np.log(grid))))) if np.isfinite(grid).any() else 1.0
    im = ax.imshow(np.log(grid), cmap="RdYlGn", vmin=-spread, vmax=spread, aspect="auto")
    for i in range(len(names)):
        for j in range(len(metrics)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}x", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(metrics)), metrics, rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    fig.colorbar(im, ax=ax, label="log ratio")
    b = results["improvement"]["baseline"]
    ref = "the n-gram (bits) and the majority token (token metrics)" if b == "ngram" else b
    ax.set_title(f"Improvement over {ref}; >1 is better", fontsize=9)
    return _save(fig, Path(path))


def plot_all(results: dict[str, Any], logs: dict[str, dict], out_dir: str | os.PathLike) -> list[Path]:
    """Every plot of a comparison into `out_dir`; returns the files written."""
    out_dir = Path(out_dir)
    written = [
        plot_loss_curves(logs, out_dir / "loss_curves.png"),
        plot_overfitting(logs, out_dir / "overfitting.png"),
        plot_scores(results, out_dir / "scores.png"),
        plot_improvement(results, out_dir / "improvement_heatmap.png"),
    ]
    return [p for p in written if p is not None]
