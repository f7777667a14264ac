"""What a bundle's training files say: its training data (`trained_on`) and its loss curves (`overfitting_curve`).

Examples:
    >>> from hf_melody.evaluation.training_record import bundle_training_files, trained_on
    >>> info, log = bundle_training_files("folk-base")
    >>> trained_on(info, "essen/kinder0")          # the Kinderlieder are held out of every bundled checkpoint
    False
"""

from __future__ import annotations

import json
from pathlib import Path

from ..bundle import TRAINING_INFO, TRAINING_LOG, resolve_file
from ..errors import HFMelodyError


def bundle_training_files(name: str) -> tuple[dict, dict]:
    """`(training_info.json, training_log.json)` of a bundle (name, folder or Hub id), each `{}` when absent."""
    out = []
    for filename in (TRAINING_INFO, TRAINING_LOG):
        try:
            out.append(json.loads(Path(resolve_file(name, filename)).read_text()))
        except (HFMelodyError, OSError, ValueError):
            out.append({})
    return out[0], out[1]


def trained_on(info: dict, dataset: str) -> bool:
    """Whether a model's training data (its `training_info.json`: `dataset` minus `exclude`) overlaps `dataset`.

    Examples:
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
