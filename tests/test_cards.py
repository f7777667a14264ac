"""The numbers on the bundled model cards are re-measured from the bundled weights, not copied from results.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "model_cards" / "eval" / "results.json"


def card_metrics(text: str) -> dict[str, float]:
    """`type: value` pairs of the card's model-index metadata."""
    return {k: float(v) for k, v in re.findall(r"- type: (\w+)\n\s+value: ([0-9.]+)\n", text)}


@pytest.mark.parametrize("name", ["folk-base", "original", "deeper-thinner", "wider-shallower"])
def test_card_numbers_are_what_the_weights_score(name, kinder_melodies):
    from hf_melody import load_model, load_tokenizer
    from hf_melody.bundle import CHECKPOINTS_DIR
    from hf_melody.data.dataset import split_of
    from hf_melody.evaluation.likelihood import score_melodies

    results = json.loads(RESULTS.read_text())
    assert results["dataset"] == "essen/kinder0"
    melodies = [m for m in kinder_melodies if results["split"] == "all" or split_of(m.id) == results["split"]]
    assert len(melodies) == results["num_melodies"]
    card = card_metrics((CHECKPOINTS_DIR / name / "README.md").read_text())
    assert {"bits_per_note", "pitch_bits_per_note", "token_perplexity"} <= set(card)
    r = score_melodies(load_model(name), load_tokenizer(name), melodies)
    assert r.num_notes == results["num_notes"]
    for metric in ("bits_per_note", "pitch_bits_per_note", "token_perplexity"):
        assert card[metric] == pytest.approx(getattr(r, metric), abs=1e-4), metric
