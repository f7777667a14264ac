"""Data in the Hugging Face way (issue 22 point 1): MIDI bytes, `datasets.Dataset`/`DatasetDict` columns of MIDI
bytes, file paths or ABC text, parquet/jsonl/csv files, `save_to_disk` and dataset-repository folders, Hub ids, and
ABC files and folders; bad rows skipped and reported; renamed columns from Python and from a recipe."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hf_melody import CorpusError, DataArguments, MidiReadError, load_melodies, read_midi
from hf_melody.data.music21_corpora import music21_files

FIXTURES = Path(__file__).parent / "fixtures"
TUNES = [FIXTURES / "kinder0_0.mid", FIXTURES / "kinder0_5.mid", FIXTURES / "bach_bwv66.6.mid"]


def _kinder_abc_head(n: int) -> str:
    """The first `n` tunes of the Kinderlieder ABC file shipped in music21's corpus, as text."""
    text = music21_files("essen/kinder0")[0].read_text(encoding="latin-1")
    starts = [i for i in range(len(text)) if text.startswith("X:", i) and (i == 0 or text[i - 1] == "\n")]
    return text[starts[0]:starts[n]]


def test_read_midi_takes_the_bytes_of_a_file():
    from_path = read_midi(TUNES[0])
    from_bytes = read_midi(TUNES[0].read_bytes(), melody_id="mine/0")
    assert from_bytes.notes == from_path.notes and from_bytes.time_signatures == from_path.time_signatures
    assert from_bytes.id == "mine/0"
    with pytest.raises(MidiReadError, match="not a MIDI file"):
        read_midi(b"RIFF....", melody_id="mine/1")


def test_a_dataset_of_midi_bytes_keeps_ids_titles_and_styles_and_skips_bad_rows():
    from datasets import Dataset

    ds = Dataset.from_dict({
        "midi": [p.read_bytes() for p in TUNES] + [b"not midi"],
        "id": ["hansel", "fuchs", "bach", "broken"],
        "title": ["Hänschen klein", "Fuchs", "BWV 66.6", ""],
        "style": ["german-folk", "german-folk", "chorale", ""],
    })
    melodies, report = load_melodies(ds, progress=False)
    assert [m.id for m in melodies] == ["dataset/hansel", "dataset/fuchs", "dataset/bach"]
    assert [m.title for m in melodies][:2] == ["Hänschen klein", "Fuchs"] and melodies[2].style == "chorale"
    assert melodies[0].notes == read_midi(TUNES[0]).notes
    assert report.total == 4 and report.kept == 3
    assert report.skipped[0]["item"] == "dataset/broken" and report.skipped[0]["error"] == "MidiReadError"


def test_table_files_and_saved_folders(tmp_path):
    from datasets import Dataset, DatasetDict

    ds = Dataset.from_dict({"blob": [p.read_bytes() for p in TUNES], "tune": ["a", "b", "c"]})
    ds.to_parquet(str(tmp_path / "tunes.parquet"))
    melodies, _ = load_melodies(tmp_path / "tunes.parquet", progress=False, columns={"midi": "blob", "id": "tune"})
    assert [m.id for m in melodies] == ["tunes/a", "tunes/b", "tunes/c"]
    paths = Dataset.from_dict({"path": [str(p) for p in TUNES]})
    paths.to_json(str(tmp_path / "paths.jsonl"))
    from_paths, _ = load_melodies(str(tmp_path / "paths.jsonl"), progress=False)
    assert [m.notes for m in from_paths] == [m.notes for m in melodies]
    DatasetDict({"train": ds.select([0, 1]), "test": ds.select([2])}).save_to_disk(str(tmp_path / "saved"))
    saved, _ = load_melodies(tmp_path / "saved", progress=False, columns={"midi": "blob", "id": "tune"})
    assert sorted(m.id for m in saved) == ["saved/test/c", "saved/train/a", "saved/train/b"]


def test_a_dataset_repository_folder_loads_like_a_hub_dataset(tmp_path):
    from datasets import Dataset

    repo = tmp_path / "my-tunes"
    (repo / "data").mkdir(parents=True)
    Dataset.from_dict({"midi": [p.read_bytes() for p in TUNES[:2]]}).to_parquet(str(repo / "data" / "train.parquet"))
    (repo / "README.md").write_text("---\nlicense: cc0-1.0\n---\n# my tunes\n")
    melodies, report = load_melodies(repo, progress=False)
    assert [m.id for m in melodies] == ["my-tunes/train/0", "my-tunes/train/1"] and report.kept == 2


def test_a_hub_id_that_is_not_in_the_cache_fails_at_once_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(CorpusError, match="not a loadable Hub dataset.*offline"):
        load_melodies("no-such-org/no-such-tunes", progress=False)


def test_abc_files_folders_and_columns_read_like_the_corpus(tmp_path):
    pytest.importorskip("music21")
    text = _kinder_abc_head(3)
    corpus = load_melodies("essen/kinder0", progress=False)[0][:3]
    (tmp_path / "abc").mkdir()
    (tmp_path / "abc" / "kinder.abc").write_text(text)
    from_file, report = load_melodies(tmp_path / "abc" / "kinder.abc", progress=False)
    assert [m.notes for m in from_file] == [m.notes for m in corpus]
    assert [m.time_signatures for m in from_file] == [m.time_signatures for m in corpus]
    assert [m.title for m in from_file] == [m.title for m in corpus] and report.kept == 3
    shutil.copy(TUNES[0], tmp_path / "abc" / "extra.mid")  # a folder may mix ABC and MIDI
    from_folder, _ = load_melodies(tmp_path / "abc", progress=False)
    assert [m.id for m in from_folder] == ["abc/kinder/0", "abc/kinder/1", "abc/kinder/2", "abc/extra.mid"]
    from datasets import Dataset

    ds = Dataset.from_dict({"abc": [text, "X:1\nK:C\n"], "id": ["three", "empty"]})
    from_column, report = load_melodies(ds, progress=False)
    assert [m.notes for m in from_column] == [m.notes for m in corpus]
    assert [m.id for m in from_column] == ["dataset/three/0", "dataset/three/1", "dataset/three/2"]
    assert report.skipped and report.skipped[0]["item"].startswith("dataset/empty")


def test_columns_are_checked_before_reading(tmp_path):
    from datasets import Dataset

    ds = Dataset.from_dict({"blob": [TUNES[0].read_bytes()]})
    with pytest.raises(CorpusError, match="no melody column; name one midi .*columns=\\{'midi': 'blob'\\}"):
        load_melodies(ds, progress=False)
    with pytest.raises(CorpusError, match="no column 'bytes'"):
        load_melodies(ds, progress=False, columns={"midi": "bytes"})
    with pytest.raises(CorpusError, match="unknown column role"):
        load_melodies(ds, progress=False, columns={"audio": "blob"})
    assert DataArguments(dataset_columns=["midi=blob", "id=tune"]).column_map == {"midi": "blob", "id": "tune"}
    from hf_melody import ConfigError

    with pytest.raises(ConfigError, match="not role=column"):
        DataArguments(dataset_columns=["midi"])


def test_prepare_from_a_parquet_file_with_renamed_columns(tmp_path, capsys):
    from datasets import Dataset, load_from_disk

    from hf_melody.cli import main

    Dataset.from_dict({"blob": [p.read_bytes() for p in TUNES] * 4}).to_parquet(str(tmp_path / "t.parquet"))
    out = tmp_path / "prepared"
    assert main(["prepare", "--dataset", str(tmp_path / "t.parquet"), "--dataset_columns", "midi=blob",
                 "--output-dir", str(out), "--max-length", "64", "--augment-semitones", "0"]) == 0
    dsd = load_from_disk(str(out / "dataset"))
    assert sum(len(split) for split in dsd.values()) > 0 and "input_ids" in dsd["train"].column_names
