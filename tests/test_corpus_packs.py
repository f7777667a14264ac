"""The packaged corpus conversions: identical to music21's, used without the user doing anything, and rebuilt when
stale or corrupt."""

from __future__ import annotations

import gzip
import json

import pytest

from hf_melody import load_melodies
from hf_melody.data.melody import SkipReport
from hf_melody.data.music21_corpora import (
    FOLK_CORPORA,
    MUSIC21_CORPORA,
    PACK_DIR,
    _convert_music21_file,
    load_music21_corpus,
    music21_files,
    read_pack,
)
from hf_melody.music import PITCH_RANGE, PLACEMENT_RANGE

ALL = [*FOLK_CORPORA, "bach-chorales"]


def smallest_file(corpus: str):
    return min(music21_files(corpus), key=lambda f: f.stat().st_size)


def fresh_conversion(corpus: str, path) -> tuple[list[dict], list]:
    """What music21 gives today for one file, with the pack's layout (no source/style per melody)."""
    mels, skips = _convert_music21_file((str(path), corpus, MUSIC21_CORPORA[corpus][1]))
    return [{k: v for k, v in m.items() if k not in ("source", "style")} for m in mels], [list(s) for s in skips]


@pytest.mark.parametrize("corpus", ALL)
def test_every_corpus_has_a_pack_matching_the_installed_music21_files(corpus):
    pack = read_pack(corpus)
    assert pack is not None, f"no pack for {corpus}: run `hf-melody corpora --rebuild`"
    files = music21_files(corpus)
    assert sorted(pack["files"]) == sorted(f.stem for f in files)
    import hashlib

    for f in files:
        assert pack["files"][f.stem]["sha1"] == hashlib.sha1(f.read_bytes()).hexdigest(), f


@pytest.mark.parametrize("corpus", ALL)
def test_pack_equals_music21_conversion_on_a_file_of_every_corpus(corpus):
    path = smallest_file(corpus)
    mels, skips = fresh_conversion(corpus, path)
    entry = read_pack(corpus)["files"][path.stem]
    assert len(mels) >= 1
    assert entry["melodies"] == mels  # ids, notes, time signatures, keys, titles: all equal
    assert [list(s) for s in entry["skipped"]] == skips


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ALL)
def test_pack_equals_music21_conversion_on_every_file(corpus):
    pack = read_pack(corpus)
    for path in music21_files(corpus):
        mels, skips = fresh_conversion(corpus, path)
        assert pack["files"][path.stem]["melodies"] == mels, path
        assert [list(s) for s in pack["files"][path.stem]["skipped"]] == skips, path


def test_loading_the_four_folk_corpora_uses_the_packs_and_keeps_wide_tunes(monkeypatch):
    import hf_melody.data.music21_corpora as m21

    def no_conversion(*args, **kwargs):  # the packs must serve everything
        raise AssertionError("music21 conversion ran although the packs match")

    monkeypatch.setattr(m21, "_convert_files", no_conversion)
    melodies, report = load_melodies(list(FOLK_CORPORA), progress=False)
    # 12,762 tunes in all. The old conversion (into 48..84 only) kept 12,740: it dropped 2 tunes without notes and 20
    # that 48..84 cannot hold by octaves. The wider tokenizer range keeps those 20, and the 12,740 keep their octave.
    assert report.total == 12762 and report.kept == len(melodies) == 12760
    assert [s["item"] for s in report.skipped] == ["airdsAirs/book6/2", "airdsAirs/book6/174"]
    assert all("0 note(s)" in s["reason"] for s in report.skipped)
    ids = [m.id for m in melodies]
    assert len(set(ids)) == len(ids)
    spans = [(min(p for *_, p in m.notes), max(p for *_, p in m.notes)) for m in melodies]
    assert all(PITCH_RANGE[0] <= lo and hi <= PITCH_RANGE[1] for lo, hi in spans)
    assert sum(PLACEMENT_RANGE[0] <= lo and hi <= PLACEMENT_RANGE[1] for lo, hi in spans) == 12740


def test_a_stale_pack_entry_is_converted_again_with_music21(tmp_path, monkeypatch):
    """A pack built from other music21 files (another SHA-1) is not trusted for that file."""
    import hf_melody.data.music21_corpora as m21

    body = json.loads(gzip.decompress((PACK_DIR / "essen.json.gz").read_bytes()))
    body["files"]["kinder0"]["sha1"] = "0" * 40
    body["files"]["kinder0"]["melodies"] = body["files"]["kinder0"]["melodies"][:3]  # would be wrong if used
    (tmp_path / "essen.json.gz").write_bytes(gzip.compress(json.dumps(body).encode()))
    monkeypatch.setattr(m21, "PACK_DIR", tmp_path)
    m21.read_pack.cache_clear()
    try:
        melodies = load_music21_corpus("essen/kinder0", progress=False)
    finally:
        m21.read_pack.cache_clear()
    assert len(melodies) == 213


def test_a_corrupt_pack_falls_back_to_music21(tmp_path, monkeypatch, caplog):
    import hf_melody.data.music21_corpora as m21

    (tmp_path / "essen.json.gz").write_bytes(b"\x1f\x8b not really gzip")
    monkeypatch.setattr(m21, "PACK_DIR", tmp_path)
    m21.read_pack.cache_clear()
    try:
        assert m21.read_pack("essen") is None
        assert "corrupt" in caplog.text
        melodies = load_music21_corpus("essen/kinder0", progress=False)
    finally:
        m21.read_pack.cache_clear()
    assert len(melodies) == 213


def test_a_corrupt_conversion_cache_is_rebuilt(tmp_path, monkeypatch):
    import hf_melody.data.music21_corpora as m21

    monkeypatch.setattr(m21, "PACK_DIR", tmp_path)  # no packs: go through the cache
    m21.read_pack.cache_clear()
    try:
        first = load_music21_corpus("essen/kinder0", progress=False)
        [cached] = (m21.cache_dir() / "corpora").glob("*/essen-kinder0-*.json")
        cached.write_text('{"melodies": [')  # truncated by a crash
        report = SkipReport()
        again = load_music21_corpus("essen/kinder0", progress=False, report=report)
    finally:
        m21.read_pack.cache_clear()
    assert [m.to_dict() for m in again] == [m.to_dict() for m in first]
    assert report.kept == 213
    assert json.loads(cached.read_text())["melodies"]


def test_packs_work_without_music21(monkeypatch):
    """Training on the corpora needs no music21 install: the packs are used as they are."""
    import hf_melody.data.music21_corpora as m21
    from hf_melody.errors import CorpusError

    def missing(name):
        raise CorpusError("the built-in corpora need music21; install it with `pip install 'hf_melody[corpus]'`")

    monkeypatch.setattr(m21, "music21_files", missing)
    melodies = load_music21_corpus("essen/kinder0", progress=False)
    assert len(melodies) == 213 and melodies[0].id == "essen/kinder0/0"
