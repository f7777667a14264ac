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


@pytest.mark.parametrize("case", ["random-bytes", "text-file", "truncated"])
def test_a_bad_soundfont_is_a_one_line_error(tmp_path, case):
    """Random bytes, a text file, a truncated real soundfont: `SoundfontNotFoundError` naming the file and the fix,
    not the synthesizer's C++ error (issue 27)."""
    import os

    from hf_melody import SoundfontNotFoundError
    from hf_melody.export.render import find_soundfont, render_audio
    from hf_melody.tokenizer import MelodyTokenizer

    bad = tmp_path / "bad.sf2"
    if case == "random-bytes":
        bad.write_bytes(os.urandom(4096))
    elif case == "text-file":
        bad.write_text("root:x:0:0:root:/root:/bin/bash\n" * 50)
    else:
        try:
            real = find_soundfont()
        except SoundfontNotFoundError:
            pytest.skip("no system soundfont to truncate (make soundfont installs one)")
        bad.write_bytes(real.read_bytes()[:100_000])
    score = MelodyTokenizer().decode([])
    match = "truncated" if case == "truncated" else "not a SoundFont"
    with pytest.raises(SoundfontNotFoundError, match=match):
        render_audio(score, soundfont=bad)


def test_a_cache_path_that_is_a_file_is_a_one_line_error(tmp_path, monkeypatch):
    from hf_melody import ConfigError
    from hf_melody.data.music21_corpora import cache_dir

    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("HF_MELODY_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="is a file, not a folder; point HF_MELODY_CACHE at a folder"):
        cache_dir()
    monkeypatch.setenv("HF_MELODY_CACHE", str(tmp_path / "ok"))
    assert cache_dir().is_dir()


# ---- files a musician can trust (issue 23): pickups, metadata, tempo ------------------------------------------------

# essen/kinder0 tunes: (index, meter, pickup in quarters or 0, whether the last bar completes the pickup); 34 and
# 33 have a pickup and end on a whole bar, which stays whole (no note is moved to make it complete the pickup)
_CORPUS_TUNES = [(28, "2/4", 0.5, True), (0, "2/4", 0, False), (23, "3/4", 1, True), (14, "3/4", 0, False),
                 (76, "4/4", 1, True), (34, "4/4", 1, False), (8, "4/4", 0, False), (182, "6/8", 0.5, True),
                 (33, "6/8", 0.5, False), (5, "6/8", 0, False)]


def _bar_quarters(meter: str) -> Fraction:
    num, den = meter.split("/")
    return Fraction(4 * int(num), int(den))


@pytest.fixture(scope="module")
def corpus_tunes():
    from hf_melody import load_melodies

    melodies, _ = load_melodies("essen/kinder0", progress=False)
    return {i: melodies[i] for i, *_ in _CORPUS_TUNES}


@pytest.fixture(scope="module")
def folk_melodies():
    """folk-base's first two default melodies: #0 has an eighth-note pickup in 2/4, #1 none."""
    return MelodyPipeline.from_pretrained("folk-base")(seed=0, num_return_sequences=2)


def _check_files(score, meter: str, pickup: Fraction, tmp_path, title: str, composer: str, tempo: float):
    """Every file of `score` read back with music21: notes from time 0, the pickup bar, the bars, the metadata."""
    music21 = pytest.importorskip("music21")
    from hf_melody.export.notation import save_abc, save_musicxml
    from hf_melody.export.render import pickup_ticks, save_midi, with_metadata

    tpq = score.ticks_per_quarter
    assert Fraction(pickup_ticks(score)[1], tpq) == pickup
    bar = _bar_quarters(meter)
    grid = _notes(score)
    lead_in = grid[0][0] if pickup else Fraction(0)
    want = [(float(o - lead_in), float(d), p) for o, d, p in grid]
    grid_end = max(o + d for o, d, _ in grid)
    n_bars = -(-grid_end // bar)  # the model's bars: bar 0 holds the pickup
    last_bar = grid_end - (n_bars - 1) * bar
    completes = bool(pickup) and last_bar == bar - pickup
    # MIDI: the first note at time 0, a pickup bar's time signature, then the meter
    mid = Score(str(save_midi(score, tmp_path / "t.mid", title=title, tempo_qpm=tempo)))
    assert [(float(o), float(d), p) for o, d, p in _notes(mid)] == want
    assert round(mid.tempos[0].qpm) == round(tempo) and mid.tracks[0].name == title
    signatures = [(Fraction(t.time, tpq), f"{t.numerator}/{t.denominator}") for t in mid.time_signatures]
    if pickup:
        assert signatures[0][0] == 0 and _bar_quarters(signatures[0][1]) == pickup
        assert signatures[1] == (pickup, meter)
    else:
        assert signatures[0] == (0, meter)
        assert mid.dumps_midi() == with_metadata(score, title=title, tempo_qpm=tempo, pickup=False).dumps_midi()
    parsed_midi = music21.converter.parse(str(tmp_path / "t.mid")).parts[0].getElementsByClass("Measure")
    assert parsed_midi[0].duration.quarterLength == (pickup or bar)  # a MIDI import's bars fall on the tune's
    assert parsed_midi[1 if pickup else 0].timeSignature.ratioString == meter
    # MusicXML and ABC: a pickup measure 0, the same bars, the final bar whole or completing the pickup
    xml_path = save_musicxml(score, tmp_path / "t.musicxml", title=title, tempo_qpm=tempo, composer=composer)
    xml_text = xml_path.read_text()
    assert (f"<creator type=\"composer\">{composer}</creator>" in xml_text and "<part-name>Melody</part-name>"
            in xml_text and "Music21" not in xml_text)
    assert ('<measure implicit="yes" number="0">' in xml_text) == bool(pickup)
    abc_path = save_abc(score, tmp_path / "t.abc", title=title, tempo_qpm=tempo, composer=composer)
    abc_text = abc_path.read_text()
    assert f"T:{title}\nC:{composer}\nM:{meter}\nL:1/8\nQ:1/4={round(tempo)}\n" in abc_text
    for parsed in (music21.converter.parse(str(xml_path)), music21.converter.parse(abc_text, format="abc")):
        assert parsed.metadata.composer == composer and parsed.metadata.bestTitle == title
        got = [(float(n.offset), float(n.quarterLength), n.pitch.midi) for n in parsed.flatten().stripTies().notes]
        assert got == want
        assert parsed.flatten().getElementsByClass("MetronomeMark").first().number == round(tempo)
        measures = list(parsed.parts[0].getElementsByClass("Measure"))
        assert len(measures) == n_bars
        assert measures[0].duration.quarterLength == (pickup or bar)
        assert measures[0].paddingLeft == (bar - pickup if pickup else 0)
        assert measures[-1].duration.quarterLength == (bar - pickup if completes else bar)
        assert all(m.duration.quarterLength == bar for m in measures[1:-1])
    return completes


@pytest.mark.parametrize("index, meter, pickup, completes", _CORPUS_TUNES)
def test_corpus_tunes_with_and_without_pickups_read_back_in_every_format(corpus_tunes, index, meter, pickup,
                                                                        completes, tmp_path):
    tune = corpus_tunes[index]
    assert tune.meter == meter and len(tune.time_signatures) == 1
    assert _check_files(tune.to_score(), meter, Fraction(pickup), tmp_path, f"kinder0 {index}", "trad., essen",
                        96.0) == completes


def test_generated_melodies_with_and_without_a_pickup_read_back(folk_melodies, tmp_path):
    with_pickup, without = folk_melodies
    for melody, pickup in ((with_pickup, Fraction(1, 2)), (without, Fraction(0))):
        assert melody.composer == "hf_melody folk-base"
        _check_files(melody.score, "2/4", pickup, tmp_path, melody.title, melody.composer, 120.0)
    # the melody's own files: MIDI from time 0, the notes as the model wrote them
    back = Score.from_midi(with_pickup.to_midi_bytes())
    assert back.tracks[0].notes[0].time == 0
    lead_in = with_pickup.score.tracks[0].notes[0].time
    assert lead_in == 720 and _notes(back) == [(o - Fraction(lead_in, 480), d, p) for o, d, p in
                                               _notes(with_pickup.score)]
    [png] = with_pickup.save(tmp_path / "roll", ("png",))  # the piano roll counts the pickup as bar 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_audio_starts_at_the_pickup(folk_melodies, tmp_path):
    import numpy as np

    from hf_melody.export.render import render_audio

    with_pickup = folk_melodies[0]
    audio = np.asarray(render_audio(with_pickup.score, sample_rate=8000))
    first = int(np.argmax(np.abs(audio).max(axis=0) > 1e-3))
    assert first < 8000 * 0.05  # sound within 50 ms, not after 0.75 s of silence
    slow = np.asarray(render_audio(with_pickup.score, sample_rate=8000, tempo_qpm=60))
    assert slow.shape[1] > 1.8 * audio.shape[1]  # half the tempo, twice as long


def test_tempo_is_an_option_recorded_and_written(tiny_bundle, tmp_path):
    pipe = MelodyPipeline.from_pretrained(tiny_bundle)
    [plain] = pipe(seed=4, num_bars=4)
    [slow] = pipe(seed=4, num_bars=4, tempo_qpm=84)
    assert slow.settings["tempo_qpm"] == 84.0 and slow.token_ids == plain.token_ids  # changes no note
    assert round(Score.from_midi(slow.to_midi_bytes()).tempos[0].qpm) == 84
    assert round(Score.from_midi(plain.to_midi_bytes()).tempos[0].qpm) == 120
    paths = plain.save(tmp_path / "p", ("mid", "abc"), tempo_qpm=66)
    assert round(Score(str(paths[0])).tempos[0].qpm) == 66 and "Q:1/4=66" in paths[1].read_text()
    with pytest.raises(ConfigError, match="tempo_qpm"):
        pipe(seed=4, num_bars=4, tempo_qpm=0)
    assert main(["generate", "--model", str(tiny_bundle), "--num", "1", "--seed", "4", "--num-bars", "4",
                 "--tempo", "72", "--formats", "mid", "--out", str(tmp_path / "cli")]) == 0
    cli = Score(str(tmp_path / "cli" / "melody_0.mid"))
    assert round(cli.tempos[0].qpm) == 72 and _notes(cli) == _notes(Score.from_midi(plain.to_midi_bytes()))


def test_a_file_with_a_pickup_is_read_back_as_the_model_wrote_it(folk_melodies):
    from hf_melody.generation.prompts import prompt_ids

    pipe = MelodyPipeline.from_pretrained("folk-base")
    for melody in folk_melodies:  # continuing a saved melody sees the same tokens as continuing the melody itself
        assert prompt_ids(pipe.melody_tokenizer, melody.to_midi_bytes()) == prompt_ids(pipe.melody_tokenizer,
                                                                                      melody.score)


# ---- keys, instrument, composer, the engraved score (issue 23) -----------------------------------------------------
@pytest.mark.parametrize("index, meter, pickup, completes", _CORPUS_TUNES)
def test_the_key_heard_in_a_tune_is_written_in_every_format(corpus_tunes, index, meter, pickup, completes, tmp_path):
    """No key asked: MIDI, MusicXML and ABC carry the key `estimate_key` hears, and MusicXML and ABC agree with it
    on every note's spelling (no note spelled outside the key when its pitch class is in the key's scale)."""
    music21 = pytest.importorskip("music21")
    from hf_melody.export.notation import save_abc, save_musicxml
    from hf_melody.export.render import save_midi
    from hf_melody.music import estimate_key, parse_key, spell_pitch

    tune = corpus_tunes[index]
    score = tune.to_score()
    heard = estimate_key(tune.notes)
    sharps, minor = key_signature(heard)
    mid = Score(str(save_midi(score, tmp_path / "t.mid")))
    assert [(k.time, k.key, k.tonality) for k in mid.key_signatures] == [(0, sharps, minor)]
    xml = music21.converter.parse(str(save_musicxml(score, tmp_path / "t.musicxml")))
    abc = music21.converter.parse(save_abc(score, tmp_path / "t.abc").read_text(), format="abc")
    scale = parse_key(heard).pitch_classes
    for parsed in (xml, abc, music21.converter.parse(str(tmp_path / "t.mid"))):
        [signature] = parsed.flatten().getElementsByClass("KeySignature")
        assert signature.sharps == sharps
    for parsed in (xml, abc):
        notes = parsed.flatten().stripTies().notes
        assert [n.pitch.midi for n in notes] == [p for _, _, p in tune.notes]
        spelled = [(n.pitch.step, int(n.pitch.alter)) for n in notes]
        assert spelled == [spell_pitch(p, heard)[:2] for _, _, p in tune.notes]
        in_key = [s for s, (_, _, p) in zip(spelled, tune.notes, strict=True) if p % 12 in scale]
        altered = {p.step: int(p.alter) for p in music21.key.KeySignature(sharps).alteredPitches}
        assert all(alter == altered.get(step, 0) for step, alter in in_key)


def test_estimate_key_and_spelling():
    from hf_melody.music import estimate_key, spell_pitch

    scale_d = [(i * 480, 480, p) for i, p in enumerate([62, 64, 66, 67, 69, 71, 73, 74])]
    assert estimate_key(scale_d) == "D major" and estimate_key([]) is None
    a_minor = [(i * 480, 480, p) for i, p in enumerate([69, 71, 72, 74, 76, 72, 71, 68, 69])]
    assert estimate_key(a_minor) == "A minor"
    assert estimate_key([(n[0], n[1], n[2] + 5) for n in a_minor]) == "D minor"  # transposed, heard transposed
    assert spell_pitch(61, "D minor") == ("C", 1, 4) and spell_pitch(70, "F major") == ("B", -1, 4)
    assert spell_pitch(59, "Gb major") == ("C", -1, 4) and spell_pitch(63, "A minor") == ("D", 1, 4)


def test_a_generated_melody_without_a_key_is_written_in_the_key_it_is_heard_in(folk_melodies, tmp_path):
    music21 = pytest.importorskip("music21")
    from hf_melody.music import estimate_key

    melody = folk_melodies[0]
    assert melody.key is None and melody.written_key == estimate_key(melody.notes) == "Eb major"
    back = Score.from_midi(melody.to_midi_bytes())
    assert [(k.key, k.tonality) for k in back.key_signatures] == [(-3, 0)]
    abc = melody.save_abc(tmp_path / "m.abc").read_text()
    assert "\nK:Eb\n" in abc and "_" not in abc.split("K:Eb", 1)[1]  # Bb and Eb from the signature, no flats written
    xml = music21.converter.parse(str(melody.save_musicxml(tmp_path / "m.musicxml")))
    assert xml.flatten().getElementsByClass("KeySignature").first().sharps == -3
    assert {n.pitch.name for n in xml.flatten().notes} <= {"E-", "F", "G", "A-", "B-", "C", "D"}


def test_composer_and_title_are_in_the_midi(folk_melodies):
    mido = pytest.importorskip("mido")
    import io

    melody = folk_melodies[1]
    events = [m for track in mido.MidiFile(file=io.BytesIO(melody.to_midi_bytes())).tracks for m in track]
    assert any(m.type == "text" and m.text == "Composer: hf_melody folk-base" for m in events)
    assert [m.name for m in events if m.type == "track_name"] == [melody.title]
    assert _notes(Score.from_midi(melody.to_midi_bytes())) == _notes(melody.score)  # the text event moves nothing


def test_program_is_an_option_written_into_midi_musicxml_and_audio(tiny_bundle, tmp_path, capsys):
    import numpy as np

    from hf_melody.export.render import render_audio
    from hf_melody.music import GM_PROGRAMS, program_number

    pipe = MelodyPipeline.from_pretrained(tiny_bundle)
    [piano] = pipe(seed=4, num_bars=4)
    [flute] = pipe(seed=4, num_bars=4, program="Flute")
    assert flute.token_ids == piano.token_ids and flute.settings["program"] == 73 == program_number("flute")
    assert GM_PROGRAMS[flute.program] == "flute" and piano.program is None
    assert Score.from_midi(flute.to_midi_bytes()).tracks[0].program == 73
    assert Score.from_midi(piano.to_midi_bytes()).tracks[0].program == 0
    if pytest.importorskip("music21"):
        text = flute.save_musicxml(tmp_path / "f.musicxml").read_text()
        assert "<midi-program>74</midi-program>" in text and "<instrument-name>Flute</instrument-name>" in text
    a, b = (np.asarray(render_audio(m.score, sample_rate=8000)) for m in (piano, flute))
    assert a.shape[1] > 8000 and not np.allclose(a[:, :8000], b[:, :8000])  # another instrument sounds
    for bad in ("kazoo", 128, -1, True):
        with pytest.raises(ConfigError, match="program"):
            pipe(seed=4, num_bars=4, program=bad)
    assert main(["generate", "--model", str(tiny_bundle), "--num", "1", "--seed", "4", "--num-bars", "4",
                 "--program", "violin", "--formats", "mid", "--out", str(tmp_path / "cli")]) == 0
    assert Score(str(tmp_path / "cli" / "melody_0.mid")).tracks[0].program == 40
    assert main(["generate", "--model", str(tiny_bundle), "--program", "kazoo", "--out", str(tmp_path / "x")]) == 2
    assert "kazoo" in capsys.readouterr().err


def test_the_engraved_score_is_an_svg_of_the_tune(folk_melodies, tmp_path, monkeypatch):
    pytest.importorskip("verovio")
    pytest.importorskip("music21")
    melody = folk_melodies[0]
    [path] = melody.save(tmp_path / "m", ("svg",))
    svg = path.read_text()
    assert svg.startswith("<svg") and "Verovio" in svg
    assert svg.count('class="note"') == melody.num_notes  # every note engraved once (ties aside: none here)
    assert melody.title in svg  # the page head (verovio shows the title, not the composer)
    assert svg.count('class="accid"') == svg.count('class="accid" />')  # Eb major: no accidental drawn on a note
    html = melody._repr_html_()
    assert html.index("<audio") < html.index("data:image/svg+xml;base64,") < html.index("data:image/png")
    monkeypatch.setitem(sys.modules, "verovio", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'hf_melody\[score\]'"):
        melody.save_svg(tmp_path / "x.svg")
    assert "no score:" in melody._repr_html_() and not (tmp_path / "x.svg").exists()
