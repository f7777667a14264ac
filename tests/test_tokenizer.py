"""The melody REMI tokenizer: exact round trips on real melodies, save/load, BPE."""

from __future__ import annotations

import pytest

from hf_melody import ConfigError, MelodyTokenizer


@pytest.mark.parametrize("index", [0, 1, 17, 100, 212], ids=lambda i: f"kinder0-{i}")
def test_round_trip_is_exact(tokenizer, kinder_melodies, index):
    melody = kinder_melodies[index]
    score = tokenizer.decode(tokenizer.encode(melody, bos=True, eos=True, style="german-folk"))
    assert [(n.time, n.duration, n.pitch) for n in score.tracks[0].notes] == [tuple(n) for n in melody.notes]


def test_all_kinderlieder_round_trip(tokenizer, kinder_melodies):
    bad = [m.id for m in kinder_melodies
           if [tuple(n) for n in m.notes] != [(n.time, n.duration, n.pitch)
                                               for n in tokenizer.decode(tokenizer.encode(m)).tracks[0].notes]]
    assert bad == []


def test_vocabulary_and_special_ids(tokenizer):
    # the exact size is counted from the config in test_vocabulary.py
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert "TimeSig_3/2" in tokenizer.base_vocab and "TimeSig_6/8" in tokenizer.base_vocab
    ids = tokenizer.encode_base_tokens(["Bar_None", "TimeSig_3/4"])
    assert tokenizer.to_base_tokens(ids) == ["Bar_None", "TimeSig_3/4"]
    with pytest.raises(ConfigError, match="unknown style"):
        tokenizer.style_token_id("polka")


def test_save_and_load_uses_its_own_file_name(tmp_path, tokenizer):
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "miditok.json").is_file() and not (tmp_path / "tokenizer.json").exists()
    again = MelodyTokenizer.from_pretrained(tmp_path)
    assert again.base_vocab == tokenizer.base_vocab


def test_bpe_compresses_and_round_trips(tmp_path, kinder_melodies):
    tok = MelodyTokenizer()
    with pytest.raises(ConfigError, match="must be larger than the base vocabulary"):
        tok.train_bpe(100, kinder_melodies[:10])
    tok.train_bpe(300, kinder_melodies[:150])
    assert tok.is_bpe and tok.vocab_size == 300
    plain = MelodyTokenizer()
    held_out = kinder_melodies[150:]
    n_bpe = sum(len(tok.encode(m)) for m in held_out)
    n_plain = sum(len(plain.encode(m)) for m in held_out)
    assert n_bpe < 0.7 * n_plain
    m = held_out[0]
    assert [(n.time, n.duration, n.pitch) for n in tok.decode(tok.encode(m)).tracks[0].notes] == [
        tuple(n) for n in m.notes]
    tok.save_pretrained(tmp_path)
    again = MelodyTokenizer.from_pretrained(tmp_path)
    assert again.is_bpe and again.encode(m) == tok.encode(m)
