"""Local `evaluate` modules of hf_melody, loadable offline by path.

Examples:
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

__all__ = ["CODEBASE", "HOMEPAGE", "METRICS", "metric_info", "metric_path"]

HOMEPAGE = "https://github.com/hf-melody/hf_melody"
CODEBASE = "https://github.com/hf-melody/hf_melody/tree/main/src/hf_melody/metrics"


def metric_path(name: str) -> str:
    """The folder of a metric, for `evaluate.load(metric_path(name))` (works offline: no Hub lookup).

    Examples:
        >>> metric_path("novelty").endswith("metrics/novelty")
        True
    """
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; choose one of: {', '.join(METRICS)}")
    return str(Path(__file__).parent / name)


def metric_info(description: str, citation: str, inputs_description: str, features=None,
                reference_urls: tuple[str, ...] = ()):
    """The `evaluate.MetricInfo` every hf_melody metric returns from `_info`: description, citation, inputs,
    homepage and codebase (the metric's folder in this repository), and reference URLs.

    `features` defaults to `predictions` as note lists (`[[onset, duration, pitch], ...]` per melody).

    Examples:
        >>> metric_info("d", "@misc{x}", "args").features["predictions"].feature.feature.dtype
        'int64'
    """
    if not citation.strip():
        raise ConfigError("a metric needs a citation: the paper whose method it implements")
    import datasets
    import evaluate

    if features is None:
        features = datasets.Features({"predictions": datasets.Sequence(datasets.Sequence(datasets.Value("int64")))})
    return evaluate.MetricInfo(module_type="metric", description=description, citation=citation,
                               inputs_description=inputs_description, features=features, homepage=HOMEPAGE,
                               codebase_urls=[CODEBASE], reference_urls=list(reference_urls))
