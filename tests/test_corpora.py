"""Melody sources beside MIDI files: music21 corpora (cached, with their metadata), corpus names and folders
given to `load_melodies`, exclusions and transposition, unparsable ABC, and the `Melody` record's dict round trip."""

from __future__ import annotations

import time

import pytest

from hf_melody import CorpusError, load_melodies
from hf_melody.data.melody import Melody
from hf_melody.data.music21_corpora import _convert_music21_file, music21_files


def test_empty_missing_folder_and_unknown_corpus(tmp_path):
    with pytest.raises(CorpusError, match="no .mid/.midi files"):
        load_melodies(tmp_path, progress=False)
    with pytest.raises(CorpusError, match="no such folder"):
        load_melodies(tmp_path / "missing", progress=False)
    with pytest.raises(CorpusError, match="unknown corpus 'esen'"):
        load_melodies("esen", progress=False)
    with pytest.raises(CorpusError, match="has no file 'kinder9'"):
        music21_files("essen/kinder9")


def test_music21_corpus_is_cached_and_keeps_metadata(kinder_melodies):
    assert len(kinder_melodies) == 213
    assert sum(len(m.notes) for m in kinder_melodies) == 8393  # the IDyOM Kinderlieder set
    first = kinder_melodies[0]
    assert first.title == "SCHLAF KINDLEIN SCHLAF" and first.key == "F major" and first.style == "german-folk"
    assert first.id == "essen/kinder0/0"
    start = time.perf_counter()
    again, _ = load_melodies("essen/kinder0", progress=False)
    assert time.perf_counter() - start < 2.0
    assert [m.notes for m in again] == [m.notes for m in kinder_melodies]


def test_exclude_and_transpose(kinder_melodies):
    m = kinder_melodies[0]
    up = m.transposed(2)
    assert [n[2] for n in up.notes] == [n[2] + 2 for n in m.notes]
    assert m.transposed(40) is None
    with pytest.raises(CorpusError, match="no usable melodies"):
        load_melodies("essen/kinder0", exclude=["essen/kinder0"], progress=False)


def test_melody_round_trips_through_dict():
    m = Melody("x/1", "x", [[0, 240, 60], [240, 240, 62]], [[0, 3, 4]], title="t", key="C major", style="irish")
    assert Melody.from_dict(m.to_dict()) == m
    score = m.to_score()
    assert [(n.time, n.duration, n.pitch) for n in score.tracks[0].notes] == [(0, 240, 60), (240, 240, 62)]


def test_load_melodies_errors_are_typed(tmp_path):
    from hf_melody import load_melodies

    with pytest.raises(CorpusError, match="no such folder"):
        load_melodies(tmp_path / "missing", progress=False)
    with pytest.raises(CorpusError, match="unknown corpus 'nope'"):
        load_melodies("nope", progress=False)
    with pytest.raises(CorpusError, match="empty dataset list"):
        load_melodies([], progress=False)
    (tmp_path / "file.mid").write_bytes(b"MThd")  # one file is a spec too (issue 22); a corrupt one is reported
    with pytest.raises(CorpusError, match=r"no usable melodies \(0 of 1 kept, 1 skipped \(MidiReadError: 1\)\)"):
        load_melodies(tmp_path / "file.mid", progress=False)


# --------------------------------------------------------------------------------------------------------------
# ABC through music21
# --------------------------------------------------------------------------------------------------------------
GOOD_TUNE = "X:1\nT:Good\nM:4/4\nL:1/8\nK:C\nCDEF GABc|cBAG FEDC|\n"


@pytest.mark.parametrize("name, text, kept, error", [
    ("garbage", "this is not abc at all ][[[ \x01\n", 0, "ParseError"),
    ("binary", bytes(range(256)).decode("latin-1"), 0, "ParseError"),
    ("empty", "", 0, "ParseError"),
    ("division_by_zero", "X:1\nT:Bad\nM:4/4\nL:1/0\nK:C\nCDEF|\n", 0, "ParseError"),
    ("tune_without_notes", GOOD_TUNE + "\nX:2\nT:Empty\nM:4/4\nK:C\n", 1, "NoMelodyError"),
], ids=["garbage", "binary", "empty", "division_by_zero", "tune_without_notes"])
def test_unparsable_abc_is_skipped_with_a_reason(tmp_path, name, text, kept, error):
    path = tmp_path / f"{name}.abc"
    path.write_bytes(text.encode("latin-1"))
    melodies, skips = _convert_music21_file((str(path), "mine", "other"))
    assert len(melodies) == kept and len(skips) == 1
    item, err, reason = skips[0]
    assert item.startswith(f"mine/{name}") and err == error
    assert str(path) in reason and "\n" not in reason and ";" in reason, reason
