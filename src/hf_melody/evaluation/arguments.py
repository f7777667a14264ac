"""What to evaluate: `EvaluationArguments` and `evaluation_parser`, the parser of `recipes/evaluate.py`,
`hf-melody evaluate` and `hf_melody.evaluate`.

Examples:
    >>> from hf_melody.evaluation.arguments import EvaluationArguments
    >>> EvaluationArguments(models="original,folk-base").models
    ['original', 'folk-base']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..data.arguments import SPLIT_CHOICES, split_list
from ..errors import ConfigError
from ..parser import MelodyArgumentParser


@dataclass
class EvaluationArguments:
    """The keys of `recipes/evaluate.yaml` and the options of `hf-melody evaluate` (the arguments of
    `evaluate_models`).

    Args:
        models: bundled names (`folk-base`, `original`, `deeper-thinner`, `wider-shallower`), folders or Hub ids.
        dataset: corpus spec of the evaluation melodies.
        output_dir: where `results.json` and the plots go (older spellings: `out_dir`, `--out`).
        split: all, train, validation, test or auto.
        ngram_order: context length of the cross-validated n-gram baseline.
        ngram_folds: its folds.
        baseline: reference of the improvement heatmap: `ngram` or one of the models.
        num_samples: sampled melodies for the sample metrics (0 skips them).
        prompt_bars: bars of each real melody given as the prompt of a continuation.
        novelty_dataset: corpus the samples are checked for copies against.
        stride: sliding-window step for long melodies.
        batch_size: windows scored at once.
        max_melodies: at most this many melodies (quick runs).
        seed: seed of folds and sampling.
        device: where the models run.
        fair_pitch: also report `fair_pitch_bits_per_note` (pitch predicted from the past only).
        ppm: also cross-validate IDyOM's PPM as a baseline row.

    Examples:
        >>> EvaluationArguments(models="original,folk-base", num_samples=8).models
        ['original', 'folk-base']
    """

    models: list[str] = field(default_factory=lambda: ["original", "deeper-thinner", "wider-shallower", "folk-base"],
                              metadata={"help": "Bundled names, folders or Hub ids."})
    dataset: str = field(default="essen/kinder0", metadata={"help": "Corpus spec of the evaluation melodies."})
    output_dir: str = field(default="out/eval", metadata={"help": "Output folder (results.json and plots).",
                                                          "aliases": ["--out", "--out_dir", "--out-dir"]})
    split: str = field(default="auto", metadata={"help": "all, train, validation, test or auto (all unless a "
                                                 "model trained on the dataset).", "choices": SPLIT_CHOICES})
    ngram_order: int = field(default=2, metadata={"help": "Context length of the n-gram baseline."})
    ngram_folds: int = field(default=10, metadata={"help": "Cross-validation folds of the baselines."})
    baseline: str = field(default="ngram", metadata={"help": "Reference of the improvement ratios."})
    num_samples: int = field(default=0, metadata={"help": "Sampled melodies per model (0: no sampling metrics)."})
    prompt_bars: int = field(default=4, metadata={"help": "Prompt length of continuation BLEU, in bars."})
    novelty_dataset: list[str] | None = field(default=None, metadata={
        "help": "Corpora to check samples for copies against (space- or comma-separated)."})
    stride: int | None = field(default=None, metadata={"help": "Sliding-window stride (default: half the context)."})
    batch_size: int = field(default=16, metadata={"help": "Windows per forward pass."})
    max_melodies: int | None = field(default=None, metadata={"help": "Use at most this many melodies."})
    seed: int = field(default=0, metadata={"help": "Seed of folds and sampling."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda ... (default: cpu)."})
    fair_pitch: bool = field(default=True, metadata={"help": "Also score pitch from the past only, the note's "
                                                     "onset tokens marginalised (the IDyOM-comparable measure; "
                                                     "about 10 s per 1,000 notes for folk-base on one CPU thread)."})
    ppm: bool = field(default=True, metadata={"help": "Also cross-validate IDyOM's PPM (cpitch both+) as a baseline "
                                              "row (about 50 s for the 8,393 notes of the Kinderlieder; --no_ppm "
                                              "skips it on large datasets)."})

    def __post_init__(self):
        self.models = split_list(self.models)
        self.novelty_dataset = split_list(self.novelty_dataset) or None
        if not self.models:
            raise ConfigError("no models to evaluate; give bundled names, folders or Hub ids")
        if self.split not in SPLIT_CHOICES:
            raise ConfigError(f"split={self.split!r}; choose all, train, validation, test or auto")
        for name, least in (("ngram_order", 0), ("ngram_folds", 2), ("num_samples", 0), ("prompt_bars", 1),
                            ("batch_size", 1)):
            if getattr(self, name) < least:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least {least}")
        for name in ("stride", "max_melodies"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1 (or unset)")

    def to_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `evaluate_models` (`output_dir` is its `out_dir`).

        Examples:
            >>> EvaluationArguments(models=["original"]).to_kwargs()["out_dir"]
            'out/eval'
        """
        kwargs = {name: getattr(self, name) for name in self.__dataclass_fields__}
        kwargs["out_dir"] = kwargs.pop("output_dir")
        return kwargs


def evaluation_parser(prog: str | None = None) -> MelodyArgumentParser:
    """The parser of `recipes/evaluate.py`, `hf-melody evaluate` and `hf_melody.evaluate`.

    Examples:
        >>> [config] = evaluation_parser().parse_args_and_config(["--models", "original", "--out", "out/x"])
        >>> config.output_dir
        'out/x'
    """
    return MelodyArgumentParser(EvaluationArguments, prog=prog,
                                description="Score models (bits per note, pitch bits, perplexity) against n-gram "
                                            "baselines; write results.json and plots.")
