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

__all__ = ["METRICS", "metric_info", "metric_path"]


def metric_path(name: str) -> str:
    """The folder of a metric, for `evaluate.load(metric_path(name))` (works offline: no Hub lookup).

    Example:
        >>> metric_path("novelty").endswith("metrics/novelty")
        True
    """
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; choose one of: {', '.join(METRICS)}")
    return str(Path(__file__).parent / name)


def metric_info(description: str, citation: str, inputs_description: str, features=None):
    """The `evaluate.MetricInfo` every hf_melody metric returns from `_info`.

    `features` defaults to `predictions` as note lists (`[[onset, duration, pitch], ...]` per melody).

    Example:
        >>> metric_info("d", "", "args").features["predictions"].feature.feature.dtype
        'int64'
    """
    import datasets
    import evaluate

    if features is None:
        features = datasets.Features({"predictions": datasets.Sequence(datasets.Sequence(datasets.Value("int64")))})
    return evaluate.MetricInfo(module_type="metric", description=description, citation=citation,
                               inputs_description=inputs_description, features=features)
