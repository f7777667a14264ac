"""The tokenizer's vocabulary, counted from its configuration, and one pitch range shared by every part."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_vocabulary_size_follows_from_the_config(tokenizer):
    config = tokenizer.miditok.config
    lo, hi = config.pitch_range  # miditok includes both ends
    max_beats = max(n for d, nums in config.time_signature_range.items() for n in nums)
    expected = {
        "special": len(config.special_tokens),
        "Pitch": hi - lo + 1,
        "Bar": 1,
        "Position": max_beats * max(config.beat_res.values()),
        "Duration": sum((b - a) * res for (a, b), res in config.beat_res.items()),
        "Rest": sum((b - a) * res for (a, b), res in config.beat_res_rest.items()) if config.use_rests else 0,
        "TimeSig": sum(len(nums) for nums in config.time_signature_range.values()),
    }
    expected = {k: v for k, v in expected.items() if v}
    specials = set(config.special_tokens)
    counts = Counter("special" if t in specials else t.split("_")[0] for t in tokenizer.base_vocab)
    assert counts == expected
    assert tokenizer.vocab_size == sum(expected.values())
    assert sorted(int(t.split("_")[1]) for t in tokenizer.base_vocab if t.startswith("Pitch_")) == list(
        range(lo, hi + 1))


def _tokenizer_pitches(tokenizer) -> tuple[int, int]:
    pitches = [int(t.split("_")[1]) for t in tokenizer.base_vocab if t.startswith("Pitch_")]
    return min(pitches), max(pitches)


def test_one_pitch_range_everywhere(tokenizer, capsys):
    from hf_melody import music as corpora
    from hf_melody.cli import main
    from hf_melody.evaluation import baselines

    lo, hi = _tokenizer_pitches(tokenizer)
    assert tuple(corpora.PITCH_RANGE) == (lo, hi)
    assert (min(baselines.PITCH_ALPHABET), max(baselines.PITCH_ALPHABET)) == (lo, hi)
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert re.search(rf"within {lo}\.\.{hi}\b", " ".join(capsys.readouterr().out.split()))
    # the card template reads the range from the bundle's tokenizer; the rendered cards show it
    template = (ROOT / "src/hf_melody/templates/model_card.md.j2").read_text()
    assert "MIDI {{ pitch_range[0] }}–{{ pitch_range[1] }}" in template and not re.search(r"MIDI \d", template)
    cards = sorted((ROOT / "src/hf_melody/checkpoints").glob("*/README.md"))
    assert len(cards) == 4
    for card in cards:
        assert f"MIDI {lo}–{hi}" in card.read_text(), card
