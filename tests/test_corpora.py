"""Melody sources: MIDI files and folders, music21 corpora, melody extraction."""

from __future__ import annotations

import json
import time

import pytest

from hf_melody import CorpusError, MidiReadError, NoMelodyError, load_melodies, read_midi
from hf_melody.data.corpora import iter_midi_folder
from hf_melody.data.melody import Melody, SkipReport, skyline
from hf_melody.data.music21_corpora import music21_files
from hf_melody.music import TPQ


def test_read_real_midi_matches_music21_conversion(fixtures_dir, kinder_melodies):
    """kinder0_0.mid was exported by music21 from essen/kinder0 tune 0: both paths give the same melody."""
    from_midi = read_midi(fixtures_dir / "kinder0_0.mid")
    from_abc = kinder_melodies[0]
    assert [n[2] for n in from_midi.notes] == [n[2] for n in from_abc.notes]
    assert [n[:2] for n in from_midi.notes] == [n[:2] for n in from_abc.notes]
    assert from_midi.meter == from_abc.meter == "2/4"


@pytest.mark.parametrize("name", ["bach_bwv66.6.mid", "bach_bwv66.6_with_drums.mid"])
def test_polyphonic_file_yields_the_soprano(fixtures_dir, name):
    from symusic import Score

    melody = read_midi(fixtures_dir / name)
    score = Score(str(fixtures_dir / "bach_bwv66.6.mid")).resample(TPQ, min_dur=1)
    soprano = [n.pitch for n in score.tracks[0].notes]
    assert [n[2] for n in melody.notes] == soprano
    onsets = [n[0] for n in melody.notes]
    assert onsets == sorted(set(onsets)), "one line: strictly increasing onsets"
    assert all(a[0] + a[1] <= b[0] for a, b in zip(melody.notes, melody.notes[1:], strict=False))


def test_skyline_keeps_highest_and_cuts_overlaps():
    notes = [(0, 480, 60), (0, 480, 67), (240, 480, 64), (960, 0, 70)]
    assert skyline(notes) == [[0, 240, 67], [240, 480, 64]]


@pytest.mark.parametrize("content, error, words", [
    (b"not a midi file at all", MidiReadError, "not a MIDI file"),
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02", MidiReadError, "corrupt or truncated"),
])
def test_bad_files_raise_typed_one_line_errors(tmp_path, content, error, words):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(error) as info:
        read_midi(path)
    message = str(info.value)
    assert str(path) in message and words in message and "\n" not in message


def test_missing_file_and_drum_only(tmp_path):
    from symusic import Note, Score, Track

    with pytest.raises(MidiReadError, match="no such file"):
        read_midi(tmp_path / "nope.mid")
    score = Score(TPQ)
    drums = Track(program=0, is_drum=True)
    drums.notes.append(Note(0, 240, 36, 100))
    score.tracks.append(drums)
    score.dump_midi(str(tmp_path / "drums.mid"))
    with pytest.raises(NoMelodyError, match="only drum tracks"):
        read_midi(tmp_path / "drums.mid")


def test_folder_job_skips_bad_files_and_reports(tmp_path, fixtures_dir):
    import shutil

    for f in ("kinder0_0.mid", "kinder0_5.mid", "bach_bwv66.6.mid"):
        shutil.copy(fixtures_dir / f, tmp_path / f)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "junk.mid").write_bytes(b"\x00" * 100)
    (tmp_path / "sub" / "half.midi").write_bytes((fixtures_dir / "kinder0_5.mid").read_bytes()[:60])
    report = SkipReport()
    melodies = list(iter_midi_folder(tmp_path, report, progress=False))
    assert len(melodies) == 3 and report.total == 5 and report.kept == 3
    assert {s["item"] for s in report.skipped} == {"sub/junk.mid", "sub/half.midi"}
    saved = json.loads(report.save(tmp_path / "out" / "report.json").read_text())
    assert saved["reasons"] == {"MidiReadError": 2}


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
