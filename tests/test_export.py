"""Export (render, notation, display): the files musicians open, MIDI meta events, MusicXML and ABC, compressed
audio, unknown formats refused, and a melody displaying itself in a notebook."""

from __future__ import annotations

import base64
import sys
from fractions import Fraction

import pytest
from symusic import Score

from hf_melody import ConfigError, MelodyPipeline
from hf_melody.cli import main
from hf_melody.errors import MissingDependencyError
from hf_melody.export.render import FORMATS, check_formats
from hf_melody.music import key_signature


@pytest.fixture(scope="module")
def melody(tiny_bundle):
    return MelodyPipeline.from_pretrained(tiny_bundle)(seed=4, key="D minor", num_bars=4)[0]


def _notes(score) -> list[tuple[Fraction, Fraction, int]]:
    tpq = score.ticks_per_quarter
    return [(Fraction(n.time, tpq), Fraction(n.duration, tpq), n.pitch) for n in score.tracks[0].notes]


@pytest.mark.parametrize("key, expected", [("C major", (0, 0)), ("D minor", (-1, 1)), ("A major", (3, 0)),
                                           ("Bb major", (-2, 0)), ("F# minor", (3, 1)), ("E dorian", (2, 0)),
                                           ("Gb major", (-6, 0)), ("F# major", (6, 0))])
def test_key_signatures_of_key_names(key, expected):
    assert key_signature(key) == expected


def test_midi_carries_key_time_signature_tempo_and_title(melody, tmp_path):
    back = Score(str(melody.save_midi(tmp_path / "m.mid", tempo_qpm=96)))
    assert [(k.key, k.tonality) for k in back.key_signatures] == [(-1, 1)]
    assert len(back.time_signatures) >= 1 and round(back.tempos[0].qpm) == 96
    assert back.tracks[0].name == melody.title and "seed 4" in melody.title
    assert _notes(back) == _notes(melody.score)
    assert Score.from_midi(melody.to_midi_bytes()).key_signatures[0].key == -1


def test_musicxml_and_abc_read_back_with_the_same_notes(melody, tmp_path):
    music21 = pytest.importorskip("music21")
    xml = music21.converter.parse(str(melody.save_musicxml(tmp_path / "m.musicxml")))
    abc_path = melody.save_abc(tmp_path / "m.abc")
    text = abc_path.read_text()
    assert "K:Dm" in text and f"T:{melody.title}" in text and "L:1/8" in text
    abc = music21.converter.parse(text, format="abc")
    want = [(float(o), float(d), p) for o, d, p in _notes(melody.score)]
    for parsed in (xml, abc):
        got = [(float(n.offset), float(n.quarterLength), n.pitch.midi) for n in parsed.flatten().stripTies().notes]
        assert got == want
    assert xml.flatten().getElementsByClass("KeySignature").first().sharps == -1


def test_notation_without_music21_is_a_clear_error(melody, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "music21", None)
    with pytest.raises(MissingDependencyError, match=r"hf_melody\[corpus\]"):
        melody.save_musicxml(tmp_path / "m.musicxml")


@pytest.mark.parametrize("fmt", ["flac", "ogg", "mp3"])
def test_compressed_audio_matches_the_wav(melody, tmp_path, fmt):
    soundfile = pytest.importorskip("soundfile")
    wav, rate = soundfile.read(melody.save_wav(tmp_path / "m.wav"))
    other, other_rate = soundfile.read(melody.save_audio(tmp_path / f"m.{fmt}"))
    assert other_rate == rate and abs(other.shape[0] - wav.shape[0]) < rate  # codecs may pad a frame or two
    assert other.shape[1] == 2 and abs(other).max() > 0.01
    if fmt == "flac":  # lossless
        assert (other == wav).all()
    assert (tmp_path / f"m.{fmt}").stat().st_size < (tmp_path / "m.wav").stat().st_size


def test_every_format_is_written_and_unknown_ones_are_refused(melody, tmp_path, capsys, tiny_bundle):
    pytest.importorskip("music21")
    pytest.importorskip("soundfile")
    paths = melody.save(tmp_path / "all", FORMATS)
    assert sorted(p.suffix[1:] for p in paths) == sorted(FORMATS) and all(p.stat().st_size > 0 for p in paths)
    assert check_formats(["MIDI", ".xml", "wav"]) == ["mid", "musicxml", "wav"]
    with pytest.raises(ConfigError, match="unknown file format.*mp4"):
        check_formats(["mid", "mp4"])
    assert main(["generate", "--model", str(tiny_bundle), "--formats", "mp4", "--out", str(tmp_path / "x")]) == 2
    assert "mp4" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_cli_progress_bar_covers_generation(tiny_bundle, tmp_path, capsys):
    assert main(["generate", "--model", str(tiny_bundle), "--num", "3", "--seed", "1", "--out", str(tmp_path),
                 "--max-new-notes", "6", "--formats", "mid,abc"]) == 0
    err = capsys.readouterr().err
    assert "generating" in err and "3/3" in err
    # one melody at a time equals the batch call (melody i has seed + i)
    batch = MelodyPipeline.from_pretrained(tiny_bundle)(seed=1, num_return_sequences=3, max_new_notes=6)
    assert [_notes(Score(str(tmp_path / f"melody_{i}.mid"))) for i in range(3)] == [_notes(m.score) for m in batch]


def test_melody_displays_itself_in_a_notebook(melody):
    html = melody._repr_html_()
    audio = html.split('data:audio/wav;base64,', 1)[1].split('"', 1)[0]
    assert base64.b64decode(audio)[:4] == b"RIFF"
    png = html.split("data:image/png;base64,", 1)[1].split('"', 1)[0]
    assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<audio controls" in html and len(repr(melody)) < 200
    assert len(base64.b64decode(audio)) > 1000  # a real rendering, not an empty header
