"""Tests written against bugs that once survived the suite (issue 17): each fails when its bug is put back.

| bug put back                                           | test                                                 |
|--------------------------------------------------------|------------------------------------------------------|
| pitch mask on the input tokens instead of the targets  | test_likelihood::test_pitch_bits_are_the_pitch_...   |
| BLEU n-gram counts not clipped                         | test_bleu_clips_repeated_ngrams                      |
| training built from all melodies (split leakage)       | test_no_validation_or_test_melody_reaches_training   |
| pitch-range mask `p <= hi + 1`                         | test_pitch_range_alone_allows_exactly_its_bounds     |
| plain `path.write_bytes` instead of an atomic write     | test_write_failing_after_open_keeps_the_old_file     |
| `to_score` / decoding keeps only the first meter       | test_meter_changes_survive_the_round_trip            |
"""

from __future__ import annotations

import math
import resource
import signal

import pytest
import torch

from hf_melody.evaluation.similarity import corpus_bleu, self_bleu


# ---- BLEU -------------------------------------------------------------------------------------------------------
def test_bleu_clips_repeated_ngrams():
    # the prediction repeats 7 four times; the reference holds one 7: one unigram match, not four
    r = corpus_bleu([[7, 7, 7, 7]], [[7, 1, 2, 3]])
    expected = [1 / 4, 0.1 / 3, 0.1 / 2, 0.1 / 1]  # orders 2-4 have no match: floored to 0.1 / count
    assert r["precisions"] == pytest.approx(expected)
    assert r["bleu"] == pytest.approx(math.prod(expected) ** 0.25)
    # two references: clipped by the largest count in any one reference (2), not their sum (3)
    two = corpus_bleu([[7, 7, 7, 7]], [[[7, 7, 1, 2], [7, 3, 4, 5]]], max_order=1)
    assert two["precisions"] == pytest.approx([2 / 4])
    # self-BLEU clips the same way: each sample against the other
    assert self_bleu([[7, 7, 7, 7], [7, 1, 2, 3]]) == pytest.approx(math.prod(expected) ** 0.25)


# ---- split by melody ----------------------------------------------------------------------------------------------
def _sequences(ds, bos: int) -> list[tuple[int, ...]]:
    """The melodies of a packed split, cut at BOS (packing concatenates them)."""
    flat = [t for ids, mask in zip(ds["input_ids"], ds["attention_mask"], strict=True)
            for t, keep in zip(ids, mask, strict=True) if keep]
    cuts = [i for i, t in enumerate(flat) if t == bos] + [len(flat)]
    return [tuple(flat[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]


def test_no_validation_or_test_melody_reaches_training(tokenizer, kinder_melodies):
    from hf_melody.data.arguments import DataConfig
    from hf_melody.data.dataset import augment, build_dataset, semitone_shifts, split_melodies

    config = DataConfig(max_length=128, augment_semitones=2, validation_ratio=0.1, test_ratio=0.1, seed=0)
    dsd = build_dataset(kinder_melodies, tokenizer, config, cache=False)
    parts = split_melodies(kinder_melodies, 0.1, 0.1, seed=0)
    ids = {s: {m.id for m in ms} for s, ms in parts.items()}
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"] and sum(map(len, ids.values())) == len(kinder_melodies)

    def encode(m):
        return tuple(tokenizer.encode(m, bos=True, eos=True, style="german-folk"))

    shifts = semitone_shifts(config.augment_semitones)
    train = _sequences(dsd["train"], tokenizer.bos_token_id)
    augmented_train = list(augment(parts["train"], shifts))
    assert {m.id for m in augmented_train} == ids["train"]  # augmentation adds keys, never other melodies
    assert sorted(train) == sorted(encode(m) for m in augmented_train)  # exactly the train melodies, each once
    held_out = {encode(t) for m in parts["validation"] + parts["test"] for t in augment([m], shifts)}
    assert held_out and not held_out & set(train)  # no held-out tune, in any transposition, is trained on
    for split in ("validation", "test"):
        assert sorted(_sequences(dsd[split], tokenizer.bos_token_id)) == sorted(encode(m) for m in parts[split])


def test_split_of_is_a_pure_function_of_the_id_hash():
    import hashlib

    from hf_melody.data.dataset import split_of

    for melody_id in ("essen/kinder0/3", "essen/kinder0/4", "x"):
        h = int(hashlib.sha1(f"1:{melody_id}".encode()).hexdigest()[:12], 16) / 16**12
        expected = "test" if h < 0.1 else "validation" if h < 0.2 else "train"
        assert split_of(melody_id, 0.1, 0.1, seed=1) == expected
    assert split_of("essen/kinder0/3", 0.0, 0.0) == "train" and split_of("essen/kinder0/3", 0.0, 1.0) == "test"


# ---- pitch range ----------------------------------------------------------------------------------------------------
def _allowed_pitches(processor, tokenizer) -> set[int]:
    pitch_of = {i: int(t.split("_")[1]) for t, i in tokenizer.base_vocab.items() if t.startswith("Pitch_")}
    scores = processor(torch.zeros((1, 1), dtype=torch.long), torch.zeros((1, tokenizer.vocab_size)))
    return {p for i, p in pitch_of.items() if torch.isfinite(scores[0, i])}


@pytest.mark.parametrize("bounds", [(60, 72), (55, 56), (61, 61)], ids=lambda b: f"{b[0]}-{b[1]}")
def test_pitch_range_alone_allows_exactly_its_bounds(tokenizer, bounds):
    from hf_melody.generation.logits_process import (
        MelodyConstraints,
        PitchConstraintProcessor,
        melody_logits_processors,
    )

    lo, hi = bounds
    assert _allowed_pitches(PitchConstraintProcessor(tokenizer, bounds), tokenizer) == set(range(lo, hi + 1))
    constraints = MelodyConstraints.build(tokenizer, pitch_range=bounds)
    procs = [p for p in melody_logits_processors(tokenizer, constraints) if isinstance(p, PitchConstraintProcessor)]
    assert len(procs) == 1 and _allowed_pitches(procs[0], tokenizer) == set(range(lo, hi + 1))


# ---- atomic writes ---------------------------------------------------------------------------------------------------
def test_write_failing_after_open_keeps_the_old_file(tmp_path):
    from hf_melody.utils import atomic_write_bytes, atomic_write_text

    target = tmp_path / "results.json"
    atomic_write_text(target, "old")
    # a file-size limit makes the write itself fail once the file is open and partly written (EFBIG)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, limit[1]))
    try:
        with pytest.raises(OSError):
            atomic_write_bytes(target, b"x" * 100_000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, previous)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # the temporary file is gone too
    atomic_write_bytes(target, b"x" * 100_000)  # and without the limit the same write succeeds
    assert target.stat().st_size == 100_000


# ---- meter changes in the round trip ------------------------------------------------------------------------------
def _meters_remi_can_hold(time_signatures: list[list[int]]) -> list[list[int]]:
    """The changes REMI keeps: a new meter on a bar line of the previous one (repeats of a meter are dropped)."""
    out = [list(time_signatures[0])]
    for tick, num, den in time_signatures[1:]:
        start, n, d = out[-1]
        if (tick - start) % (num_ticks := n * 4 * 480 // d) == 0 and num_ticks and (num, den) != (n, d):
            out.append([tick, num, den])
    return out


def test_meter_changes_survive_the_round_trip(tokenizer, kinder_melodies):
    from hf_melody.evaluation.likelihood import notes_of_score

    changing = [m for m in kinder_melodies if len(m.time_signatures) > 1]
    assert len(changing) == 10
    exact = 0
    for m in changing:
        assert [[t.time, t.numerator, t.denominator] for t in m.to_score().time_signatures] == m.time_signatures
        notes, meters = notes_of_score(tokenizer.decode(tokenizer.encode(m, bos=True, eos=True, style="german-folk")))
        assert notes == m.notes, m.id
        assert meters == _meters_remi_can_hold(m.time_signatures), m.id
        exact += meters == m.time_signatures
    # 8 change meter on bar lines and come back whole; kinder0/100 repeats 2/4 mid-bar and kinder0/152 has a
    # 1/4 bar starting mid-bar: REMI (a meter per bar) cannot hold those two changes
    assert exact == 8
