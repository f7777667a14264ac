"""Local `evaluate` modules of hf_melody, loadable offline by path.

Example:
    >>> import evaluate
    >>> from hf_melody.metrics import metric_path
    >>> bleu = evaluate.load(metric_path("melody_bleu"))                       # doctest: +SKIP
    >>> bleu.compute(predictions=[[1, 2, 3]], references=[[1, 2, 3]])["bleu"]  # doctest: +SKIP
    1.0
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

METRICS = ("melody_perplexity", "melody_bleu", "music_statistics", "novelty")
"""Every module folder; each holds `<name>/<name>.py` (evaluate requires the script to share the folder's name)."""

__all__ = ["METRICS", "metric_path"]


def metric_path(name: str) -> str:
    """The folder of a metric, for `evaluate.load(metric_path(name))` (works offline: no Hub lookup).

    Example:
        >>> metric_path("novelty").endswith("metrics/novelty")
        True
    """
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; choose one of: {', '.join(METRICS)}")
    return str(Path(__file__).parent / name)
