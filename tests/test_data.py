"""Melodies -> DatasetDict: split by melody (no held-out tune reaches training, in any key), augmentation on
train only, packing, the content-keyed cache, streaming, and the data arguments."""

from __future__ import annotations

import json

import pytest

from hf_melody import DataArguments
from hf_melody.data.arguments import DataConfig
from hf_melody.data.dataset import augment, build_dataset, semitone_shifts, split_melodies, tokenize_melodies
from hf_melody.music import PITCH_RANGE


def test_split_is_by_melody_stable_and_seedable(kinder_melodies):
    parts = split_melodies(kinder_melodies, 0.1, 0.1, seed=0)
    ids = {s: {m.id for m in ms} for s, ms in parts.items()}
    assert sum(len(v) for v in ids.values()) == 213
    assert not (ids["train"] & ids["validation"]) and not (ids["train"] & ids["test"])
    assert 5 <= len(ids["validation"]) <= 40 and 5 <= len(ids["test"]) <= 40  # hash split: ~10% each
    # stable: the same id always lands in the same split, whatever else is in the corpus
    assert split_melodies(kinder_melodies[:50], 0.1, 0.1, 0)["test"] == [m for m in parts["test"]
                                                                         if m in kinder_melodies[:50]]
    other = split_melodies(kinder_melodies, 0.1, 0.1, seed=1)
    assert {m.id for m in other["test"]} != ids["test"]


def test_augmentation_stays_in_range(kinder_melodies):
    assert semitone_shifts(5) == list(range(-5, 6))
    assert semitone_shifts([2, -2]) == [-2, 0, 2]
    assert semitone_shifts(0) == [0]
    melodies = kinder_melodies[:20]
    out = list(augment(melodies, semitone_shifts(5)))
    lo, hi = PITCH_RANGE
    fits = [(m.id, s) for m in melodies for s in range(-5, 6)
            if lo <= min(p for *_, p in m.notes) + s and max(p for *_, p in m.notes) + s <= hi]
    source = {m.id: m for m in melodies}
    assert [(o.id, o.notes[0][2] - source[o.id].notes[0][2]) for o in out] == fits  # every shift that fits, once
    assert len(out) > 20 and all(len(o.notes) == len(source[o.id].notes) for o in out)
    assert all(lo <= n[2] <= hi for m in out for n in m.notes)


def test_build_dataset_packs_blocks_and_augments_train_only(tokenizer, kinder_melodies):
    config = DataConfig(max_length=64, augment_semitones=2, validation_ratio=0.1, test_ratio=0.1)
    dsd = build_dataset(kinder_melodies, tokenizer, config, cache=False)
    assert set(dsd) == {"train", "validation", "test"}
    row = dsd["train"][0]
    assert len(row["input_ids"]) == len(row["labels"]) == len(row["attention_mask"]) == 64
    assert row["input_ids"][0] == tokenizer.bos_token_id
    assert row["input_ids"][1] == tokenizer.style_token_id("german-folk")
    parts = split_melodies(kinder_melodies, 0.1, 0.1, 0)
    tokens = {s: sum(sum(r) for r in dsd[s]["attention_mask"]) for s in dsd}
    expected_val = sum(len(tokenizer.encode(m)) + 3 for m in parts["validation"])
    assert tokens["validation"] == expected_val  # every token kept, only the tail block padded
    assert tokens["train"] > 4 * sum(len(tokenizer.encode(m)) + 3 for m in parts["train"])


def test_cache_is_keyed_by_content(tokenizer, kinder_melodies):
    config = DataConfig(max_length=64, augment_semitones=0)
    melodies = kinder_melodies[:30]
    first = build_dataset(melodies, tokenizer, config)
    again = build_dataset(melodies, tokenizer, config)
    assert again["train"]["input_ids"] == first["train"]["input_ids"]
    changed = [m for m in melodies]
    changed[0] = type(changed[0]).from_dict({**changed[0].to_dict(),
                                             "notes": [[o, d, p + 1] for o, d, p in changed[0].notes]})
    assert config.fingerprint(changed, tokenizer) != config.fingerprint(melodies, tokenizer)
    rebuilt = build_dataset(changed, tokenizer, config)
    assert rebuilt["train"]["input_ids"] != first["train"]["input_ids"]  # never served stale
    from hf_melody.data.music21_corpora import cache_dir

    cached = {p.name for p in (cache_dir() / "datasets").iterdir()}
    assert {config.fingerprint(melodies, tokenizer), config.fingerprint(changed, tokenizer)} <= cached


def test_tokenize_melodies_keeps_metadata(tokenizer, kinder_melodies):
    ds = tokenize_melodies(kinder_melodies[:5], tokenizer)
    assert ds[0]["id"] == "essen/kinder0/0" and ds[0]["num_notes"] == len(kinder_melodies[0].notes)
    assert ds[0]["input_ids"][-1] == tokenizer.eos_token_id


def test_streaming_dataset_tokenizes_on_the_fly(tokenizer, kinder_melodies):
    config = DataConfig(max_length=64, augment_semitones=1, validation_ratio=0.1, test_ratio=0.1)
    streamed = build_dataset(lambda: iter(kinder_melodies), tokenizer, config, streaming=True)
    blocks = list(streamed["validation"])
    eager = build_dataset(kinder_melodies, tokenizer, config, cache=False)
    assert [b["input_ids"] for b in blocks] == eager["validation"]["input_ids"]
    first_train = next(iter(streamed["train"]))
    assert len(first_train["input_ids"]) == 64


@pytest.mark.parametrize("bad", [{"max_length": 4}])
def test_tiny_blocks_are_rejected_by_the_recipe_validation(bad):
    from hf_melody import ConfigError
    from hf_melody.training.trainer import parse_args

    with pytest.raises(ConfigError, match="max_length"):
        parse_args(["--max_length", str(bad["max_length"])])


# ---- split by melody ----------------------------------------------------------------------------------------------
def _sequences(ds, bos: int) -> list[tuple[int, ...]]:
    """The melodies of a packed split, cut at BOS (packing concatenates them)."""
    flat = [t for ids, mask in zip(ds["input_ids"], ds["attention_mask"], strict=True)
            for t, keep in zip(ids, mask, strict=True) if keep]
    cuts = [i for i, t in enumerate(flat) if t == bos] + [len(flat)]
    return [tuple(flat[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]


# issue 17: fails when this bug is put back: training built from all melodies (split leakage)
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


# issue 28: fails with the bug "the transposition bound at the top of the pitch range off by one" (a melody that
# fits after a +2 shift dropped), and with the same bug at the bottom
def test_melodies_reaching_the_range_ends_after_a_shift_are_trained_on(tokenizer):
    from hf_melody.data.dataset import melody_style, split_of
    from hf_melody.data.melody import Melody

    lo, hi = PITCH_RANGE
    # no test split: three melodies would leave it empty, and split_melodies would move one there
    train_ids = [f"edge/{k}" for k in range(200) if split_of(f"edge/{k}", 0.1, 0.0, 0) == "train"][:2]
    held_id = next(f"edge/{k}" for k in range(200) if split_of(f"edge/{k}", 0.1, 0.0, 0) == "validation")
    tune = lambda top: [[i * 480, 480, top - d] for i, d in enumerate([0, 2, 4, 5, 7, 9, 7, 5])]  # noqa: E731
    high = Melody(train_ids[0], "edge", tune(hi - 2), [[0, 4, 4]])  # top note 2 below the range's top
    low = Melody(train_ids[1], "edge", [[o, d, p - (hi - 2 - 9 - (lo + 2))] for o, d, p in tune(hi - 2)],
                 [[0, 4, 4]])  # lowest note 2 above the range's bottom
    held = Melody(held_id, "edge", tune(72), [[0, 4, 4]])
    assert max(p for *_, p in high.notes) == hi - 2 and min(p for *_, p in low.notes) == lo + 2
    config = DataConfig(max_length=64, augment_semitones=2, validation_ratio=0.1, test_ratio=0.0, seed=0)
    dsd = build_dataset([high, low, held], tokenizer, config, cache=False)

    def encode(m):
        return tuple(tokenizer.encode(m, bos=True, eos=True, style=melody_style(m)))

    train = _sequences(dsd["train"], tokenizer.bos_token_id)
    expected = [encode(m.transposed(s)) for m in (high, low) for s in range(-2, 3)]
    assert sorted(train) == sorted(expected)  # every shift of both melodies, +2 up to the top, -2 to the bottom
    assert encode(high.transposed(2)) in train and encode(low.transposed(-2)) in train
    assert high.transposed(3) is None and low.transposed(-3) is None
    shifted = [(o.id, o.notes[0][2] - m.notes[0][2]) for m in (high, low) for o in augment([m], range(-3, 4))]
    assert shifted == [(high.id, s) for s in range(-3, 3)] + [(low.id, s) for s in range(-2, 4)]


def test_split_of_is_a_pure_function_of_the_id_hash():
    import hashlib

    from hf_melody.data.dataset import split_of

    for melody_id in ("essen/kinder0/3", "essen/kinder0/4", "x"):
        h = int(hashlib.sha1(f"1:{melody_id}".encode()).hexdigest()[:12], 16) / 16**12
        expected = "test" if h < 0.1 else "validation" if h < 0.2 else "train"
        assert split_of(melody_id, 0.1, 0.1, seed=1) == expected
    assert split_of("essen/kinder0/3", 0.0, 0.0) == "train" and split_of("essen/kinder0/3", 0.0, 1.0) == "test"


def test_data_config_is_the_data_arguments_under_its_old_name(kinder_melodies, tokenizer):
    from hf_melody import DataConfig, build_dataset

    config = DataConfig(max_length=64, augment_semitones=0, validation_ratio=0.1, test_ratio=0.1, seed=3)
    assert isinstance(config, DataArguments) and config.seed == config.split_seed == 3
    assert DataConfig().seed == 0 and DataConfig(dataset="a,b").dataset == ["a", "b"]
    dsd = build_dataset(kinder_melodies[:40], tokenizer, config, cache=False)
    assert set(dsd) <= {"train", "validation", "test"} and len(dsd["train"][0]["input_ids"]) == 64


def test_the_cache_key_of_build_dataset_is_unchanged(kinder_melodies, tokenizer):
    """Same settings -> same key across versions of the code (DataConfig became DataArguments, the package was
    restructured); the key changes only with the cache `format` (2: blocks list the melodies they hold; 3: a split
    asked for is never empty)."""
    import hashlib

    config = DataArguments(max_length=64, augment_semitones=2)
    h = hashlib.sha256()
    h.update(json.dumps({"format": 3, "max_length": 64, "augment_semitones": 2, "validation_ratio": 0.05,
                         "test_ratio": 0.05, "seed": 0, "use_style_tokens": True, "infill_ratio": 0.0},
                        sort_keys=True).encode())
    h.update(json.dumps(tokenizer.miditok.config.to_dict(serialize=True), sort_keys=True, default=str).encode())
    h.update(str(tokenizer.vocab_size).encode())
    for m in kinder_melodies[:3]:
        for part in (m.id.encode("utf-8", "surrogateescape"), json.dumps(m.notes).encode(),
                     json.dumps(m.time_signatures).encode(), m.style.encode()):
            h.update(part)
    assert config.fingerprint(kinder_melodies[:3], tokenizer) == h.hexdigest()[:20]


def test_packed_blocks_list_the_melodies_they_hold(tokenizer, kinder_melodies):
    """Prepared datasets say where their tokens came from (issue 22): each block lists the melodies (id, title,
    style, transposition) whose tokens it holds, in order, and the tokens are exactly theirs."""
    melodies = kinder_melodies[:12]
    config = DataConfig(max_length=64, augment_semitones=1, validation_ratio=0.0, test_ratio=0.0)
    train = build_dataset(melodies, tokenizer, config, cache=False)["train"]
    by_id = {m.id: m for m in melodies}
    flat, owners = [], []
    for row in train:
        assert len(row["melody_ids"]) == len(row["titles"]) == len(row["styles"]) == len(row["transpositions"]) >= 1
        assert all(by_id[i].title == t and by_id[i].style == s
                   for i, t, s in zip(row["melody_ids"], row["titles"], row["styles"], strict=True))
        flat += [t for t, m in zip(row["input_ids"], row["attention_mask"], strict=True) if m]
        owners.append(list(zip(row["melody_ids"], row["transpositions"], strict=True)))
    # the listed melodies, in order and without repeats across block boundaries, give back the packed tokens
    order = []
    for block in owners:
        for owner in block:
            if not order or order[-1] != owner:
                order.append(owner)
    expected = []
    for mid, shift in order:
        seq = tokenizer.encode(by_id[mid], bos=True, eos=True, style="german-folk")
        expected += tokenizer.transpose_ids(seq, shift) if shift else seq
    assert flat == expected[:len(flat)] and len(expected) - len(flat) < 2
