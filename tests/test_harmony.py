"""Chords: symbols and progressions, the chord-tone metrics, and melodies generated over a progression (hard and soft,
with a key, batches, streams, both decoders, infilling and the command line)."""

from __future__ import annotations

import statistics

import pytest

from conftest import assert_one_line_cli_error, cli
from hf_melody import ConfigError, MelodyPipeline, parse_chord, parse_progression
from hf_melody.grammar.remi import REMIGrammar
from hf_melody.harmony.chords import strong_beats
from hf_melody.harmony.inference import chord_tone_ratios, infer_chords
from hf_melody.music import parse_key

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models on one torch thread

POP = "C G Am F"
POP_TONES = [{0, 4, 7}, {7, 11, 2}, {9, 0, 4}, {5, 9, 0}]
"""The chord tones of POP's bars, written out by hand."""
STRONG_TICKS = {"2/4": (0, 1), "3/4": (0,), "4/4": (0, 2), "6/8": (0,)}
"""Strong beats by hand, in beats of the denominator: beat 1, and the middle of duple and quadruple bars."""


@pytest.fixture(scope="module")
def pipe() -> MelodyPipeline:
    return MelodyPipeline.from_pretrained("original")


def tracked(pipe, ids):
    """The notes of token ids as the decoder places them (tokenizer ticks, bar index, meter)."""
    grammar = REMIGrammar.for_tokenizer(pipe.melody_tokenizer)
    return grammar, grammar.feed(grammar.initial_state(), ids)


def strong_notes(pipe, melody, tones=POP_TONES):
    """(pitch class, chord tones of its bar) of every note that starts on a strong beat."""
    grammar, notes = tracked(pipe, melody.token_ids)
    out = []
    for n in notes:
        beat = grammar.ticks_per_beat(n.time_signature)
        tick = (n.onset - n.bar * grammar.ticks_per_bar(n.time_signature))
        if tick in [b * beat for b in STRONG_TICKS[f"{n.time_signature[0]}/{n.time_signature[1]}"]]:
            out.append((n.pitch % 12, tones[n.bar % len(tones)]))
    return out


# ---- symbols and progressions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("symbol", "tones"), [
    ("C", {0, 4, 7}), ("Am", {9, 0, 4}), ("G7", {7, 11, 2, 5}), ("Cmaj7", {0, 4, 7, 11}), ("Dm7", {2, 5, 9, 0}),
    ("Bdim", {11, 2, 5}), ("Caug", {0, 4, 8}), ("Dsus2", {2, 4, 9}), ("Dsus4", {2, 7, 9}), ("C6", {0, 4, 7, 9}),
    ("G9", {7, 11, 2, 5, 9}), ("F#m", {6, 9, 1}), ("Bb7", {10, 2, 5, 8}), ("Ebmaj7", {3, 7, 10, 2}),
    ("C/E", {0, 4, 7}), ("C/Bb", {0, 4, 7, 10}), ("Am/G", {9, 0, 4, 7}),
])
def test_every_chord_type_parses_to_its_pitch_classes(symbol, tones):
    chord = parse_chord(symbol)
    assert chord.pitch_classes == tones
    assert chord.pitch_classes <= chord.scale  # the chord's scale holds its tones
    assert len(chord.scale) >= 6


def test_roots_bass_and_scales():
    assert (parse_chord("C/E").root, parse_chord("C/E").bass) == (0, 4)
    assert parse_chord("F#m").root == 6 and parse_chord("Bb7").root == 10
    assert sorted(parse_chord("G7").scale) == [0, 2, 4, 5, 7, 9, 11]       # G mixolydian
    assert 10 in parse_chord("C/Bb").scale and 11 not in parse_chord("C/Bb").scale  # the bass Bb replaces B


@pytest.mark.parametrize(("text", "words"), [
    ("C H7", ["'H7'", "Cmaj7", "C/E"]), ("C Cmin", ["'Cmin'"]), ("C:0 G", ["'0'", "C:2"]), ("C:x", ["'x'"]),
    ("C:1.3", ["'1.3'"]), ("", ["no chord"]), (" | ", ["no chord"]), ("C:3 | G", ["inside bar 1", "4/4"]),
])
def test_bad_progressions_name_the_culprit(text, words):
    with pytest.raises(ConfigError) as caught:
        parse_progression(text, "4/4")
    message = str(caught.value)
    assert "\n" not in message and ";" in message
    for word in words:
        assert word in message, (word, message)


def test_progression_layout_durations_bars_and_repeats():
    p = parse_progression("C:2 G:2 | Am F", "4/4")
    assert [(s.chord.symbol, s.start, s.beats) for s in p.spans] == [("C", 0, 2), ("G", 2, 2), ("Am", 4, 4),
                                                                      ("F", 8, 4)]
    assert p.num_bars == 3 and p.bar_chords(0) == ["C", "G"] and p.bar_chords(3) == ["C", "G"]  # it repeats
    assert p.chord_at(0, 1.5).symbol == "C" and p.chord_at(0, 2).symbol == "G" and p.chord_at(5, 0).symbol == "F"
    waltz = parse_progression("C G:1.5 D7", "3/4")      # D7 lasts to the bar line after it
    assert waltz.num_bars == 2 and waltz.chord_at(1, 1).symbol == "G" and waltz.chord_at(1, 1.5).symbol == "D7"
    assert parse_progression("Am|Dm |E7", "6/8").num_bars == 3
    assert strong_beats("2/4") == (0, 1) and strong_beats("12/8") == (0,) and strong_beats("5/4") == (0,)


def test_inferred_chords_fit_real_tunes(kinder_melodies):
    ratios = []
    for melody in kinder_melodies[:30]:
        notes = [list(n) for n in melody.notes]
        meters = [list(t) for t in melody.time_signatures]
        chords = infer_chords(notes, meters)
        assert len(chords.split()) >= 1
        ratios.append(chord_tone_ratios(notes, chords, meters))
    strong = statistics.mean(r["strong_beat_chord_tone_ratio"] for r in ratios if r["strong_beat_chord_tone_ratio"]
                             == r["strong_beat_chord_tone_ratio"])
    overall = statistics.mean(r["chord_tone_ratio"] for r in ratios)
    assert strong > overall > 0.5  # real tunes sit on their chords, most of all on strong beats
    wrong = statistics.mean(chord_tone_ratios([list(n) for n in m.notes], "F#", [list(t) for t in m.time_signatures])
                            ["chord_tone_ratio"] for m in kinder_melodies[:30])
    assert wrong < overall - 0.3  # a chord the tunes do not outline fits far worse


# ---- generation over chords ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("meter", ["2/4", "3/4", "4/4", "6/8"])
def test_hard_chords_put_chord_tones_on_every_strong_beat(pipe, meter):
    hits, total = 0, 0
    for seed in range(20):
        [m] = pipe(chords=POP, chord_strictness="hard", time_signature=meter, seed=seed)
        assert m.settings["num_bars"] == 4 and m.settings["chords"] == POP  # num_bars defaults to the progression's
        notes = strong_notes(pipe, m)
        assert all(pc in tones for pc, tones in notes), (seed, notes)
        grammar, every = tracked(pipe, m.token_ids)
        for n in every:  # the others lie in the chord's scale
            assert n.pitch % 12 in parse_chord(POP.split()[n.bar % 4]).scale
        hits, total = hits + len(notes), total + len(every)
    assert hits >= 20 * 2  # a strong-beat note in most bars (held notes cross some): the rule was exercised


def _ratios(pipe, seeds, **options):
    values = []
    for seed in seeds:
        [m] = pipe(seed=seed, num_bars=4, time_signature="4/4", **options)
        _, notes = tracked(pipe, m.token_ids)
        tpq = REMIGrammar.for_tokenizer(pipe.melody_tokenizer).ticks_per_quarter
        values.append(chord_tone_ratios([[n.onset, n.duration, n.pitch] for n in notes], POP, "4/4", tpq=tpq))
    return {k: statistics.mean(v[k] for v in values) for k in values[0]}


def test_a_soft_bias_raises_the_chord_tone_ratio(pipe):
    seeds = range(20)
    free = _ratios(pipe, seeds)
    soft = _ratios(pipe, seeds, chords=POP, chord_strictness=3.0)
    hard = _ratios(pipe, seeds, chords=POP)
    assert soft["chord_tone_ratio"] > free["chord_tone_ratio"] + 0.1
    assert soft["strong_beat_chord_tone_ratio"] > free["strong_beat_chord_tone_ratio"]
    assert hard["strong_beat_chord_tone_ratio"] == 1.0 > free["strong_beat_chord_tone_ratio"]


def test_a_chord_outside_the_key_wins_on_its_bar(pipe):
    tones = [set(parse_chord(c).pitch_classes) for c in "Am Dm E7 Am".split()]
    a_minor = parse_key("A minor").pitch_classes
    sharps = 0
    for seed in range(20):
        [m] = pipe(chords="Am Dm E7 Am", key="A minor", time_signature="4/4", seed=seed)
        assert all(pc in t for pc, t in strong_notes(pipe, m, tones))
        _, notes = tracked(pipe, m.token_ids)
        for n in notes:
            if n.bar % 4 == 2:  # E7: G# replaces G
                assert n.pitch % 12 != 7
                sharps += n.pitch % 12 == 8
            else:
                assert n.pitch % 12 in a_minor
    assert sharps > 0  # the key's hard mask did not block the chord's G#


def test_end_on_tonic_wins_over_a_last_chord_without_it(pipe):
    for seed in range(5):
        [m] = pipe(chords="C F G G7", key="C major", end_on_tonic=True, seed=seed, time_signature="4/4")
        assert m.notes[-1][2] % 12 == 0  # G7 holds no C: the tonic still ends the tune, no dead end
        assert m.settings["num_bars"] == 4


def test_batches_streams_and_both_decoders_give_the_single_call(pipe):
    options = {"chords": "Dm7 G7 Cmaj7 Cmaj7", "seed": 4, "time_signature": "3/4"}
    batch = pipe(num_return_sequences=3, **options)
    singles = [pipe(**{**options, "seed": 4 + i})[0] for i in range(3)]
    assert [m.token_ids for m in batch] == [m.token_ids for m in singles]
    assert pipe(**options, decoder="generate")[0].token_ids == singles[0].token_ids
    streamed = list(pipe.stream(**options))
    assert [(round(n.onset * 480), round(n.duration * 480), n.pitch) for n in streamed] == singles[0].notes
    listed = pipe([None, None], **options)  # a list of prompts
    assert [r[0].token_ids for r in listed] == [singles[0].token_ids] * 2


def test_the_lean_decoder_keeps_each_row_of_a_batch_on_the_chords(pipe):
    from hf_melody.generation.configuration import MelodyGenerationConfig
    from hf_melody.generation.decoding import MelodyDecoder
    from hf_melody.generation.logits_process import decoding_plan

    tok = pipe.melody_tokenizer
    prompt = [tok.bos_token_id, *tok.encode_base_tokens(["Bar_None", "TimeSig_4/4"])]
    config = MelodyGenerationConfig(chords=POP, seed=0, num_bars=8, decoder="fast").resolve(pipe.model)
    plan = decoding_plan(tok, config, len(prompt))
    processors = plan.fast_processors()
    processors[-1].__init__(list(range(6)))  # one seed per row
    result = MelodyDecoder.for_model(pipe.model, tok).sample([prompt] * 6, processors, plan.rules, plan.limits)
    assert len({tuple(s) for s in result.sequences}) > 1  # the rows differ
    for ids in result.sequences:
        grammar, notes = tracked(pipe, ids)
        for n in notes:
            tick = n.onset - n.bar * grammar.ticks_per_bar(n.time_signature)
            if tick in (0, 2 * grammar.ticks_per_beat(n.time_signature)):
                assert n.pitch % 12 in POP_TONES[n.bar % 4]


def test_infilling_keeps_the_gap_on_its_own_chords(pipe, fixtures_dir):
    tones = [{0, 4, 7}, {7, 11, 2}, {5, 9, 0}, {7, 11, 2}]
    for seed in range(5):
        [m] = pipe.infill(fixtures_dir / "kinder0_0.mid", bars=(2, 3), chords="C G F G", seed=seed)
        grammar, notes = tracked(pipe, m.token_ids)
        for n in notes:
            tick = n.onset - n.bar * grammar.ticks_per_bar(n.time_signature)
            if n.bar in (1, 2) and tick in [b * grammar.ticks_per_beat(n.time_signature)
                                            for b in strong_beats(n.time_signature)]:
                assert n.pitch % 12 in tones[n.bar % 4], (seed, n)


def test_bad_chords_fail_before_any_work(pipe):
    with pytest.raises(ConfigError, match="'H7'"):
        pipe(chords="C H7")
    with pytest.raises(ConfigError, match="chord_strictness"):
        pipe(chord_strictness=2.0)
    with pytest.raises(ConfigError, match="chord_strictness"):
        pipe(chords=POP, chord_strictness=-1)
    with pytest.raises(ConfigError, match="grammar"):
        pipe(chords=POP, constrained=False)
    with pytest.raises(ConfigError, match="'G' has no tone"):
        pipe(chords="C G", pitch_range=(60, 61))


def test_cli_chords(pipe, tmp_path, capsys):
    code, _, err = cli(["generate", "--model", "original", "--chords", POP, "--chord-strictness", "hard", "--seed",
                        "2", "--num", "1", "--formats", "mid", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert (tmp_path / "melody_0.mid").read_bytes() == pipe(chords=POP, seed=2)[0].to_midi_bytes()
    code, _, err = cli(["generate", "--model", "original", "--chords", "C Xm", "--out", str(tmp_path / "bad")],
                       capsys)
    assert_one_line_cli_error(code, err, "'Xm'")


def test_music_statistics_reports_chord_tone_ratios_and_the_real_tune_reference(pipe, kinder_melodies):
    import evaluate

    from hf_melody.metrics import metric_path

    generated = [pipe(chords=POP, seed=s, time_signature="4/4")[0] for s in range(4)]
    predictions = [[list(n) for n in m.notes] for m in generated]
    refs = kinder_melodies[:20]
    metric = evaluate.load(metric_path("music_statistics"))
    result = metric.compute(predictions=predictions, chords=POP, reference_notes=[[list(n) for n in m.notes]
                                                                                  for m in refs],
                            reference_time_signatures=[[list(t) for t in m.time_signatures] for m in refs])
    assert result["chords"]["strong_beat_chord_tone_ratio"] == 1.0  # no pickup in these: bar 0 is the first chord
    reference = result["reference_chords"]
    assert 0.5 < reference["chord_tone_ratio"] < reference["strong_beat_chord_tone_ratio"] <= 1.0
    free = metric.compute(predictions=predictions, chords="F#")["chords"]
    assert free["chord_tone_ratio"] < result["chords"]["chord_tone_ratio"]


# ---- the chords in every file (issue 25, point 4) -------------------------------------------------------------------

FILE_CASES = {
    # progression: [(bar, beat, symbol, root, bass, chord tones, MusicXML kind)], written out by hand
    "C G Am F": [(0, 0, "C", "C", "C", {0, 4, 7}, "major"), (1, 0, "G", "G", "G", {7, 11, 2}, "major"),
                 (2, 0, "Am", "A", "A", {9, 0, 4}, "minor"), (3, 0, "F", "F", "F", {5, 9, 0}, "major")],
    "Dm7 G7 Cmaj7 C/E": [(0, 0, "Dm7", "D", "D", {2, 5, 9, 0}, "minor-seventh"),
                         (1, 0, "G7", "G", "G", {7, 11, 2, 5}, "dominant-seventh"),
                         (2, 0, "Cmaj7", "C", "C", {0, 4, 7, 11}, "major-seventh"),
                         (3, 0, "C/E", "C", "E", {0, 4, 7}, "major")],
    "C:2 G:2 | Am F": [(0, 0, "C", "C", "C", {0, 4, 7}, "major"), (0, 2, "G", "G", "G", {7, 11, 2}, "major"),
                       (1, 0, "Am", "A", "A", {9, 0, 4}, "minor"), (2, 0, "F", "F", "F", {5, 9, 0}, "major")],
}
LATE = {"4/4": 0, "3/4": 9}
"""A seed of `original` whose melody over the chords starts late in bar 0 (1440 ticks in 4/4, 960 in 3/4)."""


def _chord_symbols(path):
    """(offset in quarters from the start, figure's root, bass, kind, pitch classes) of each ChordSymbol in a file
    read back by music21."""
    from music21 import converter, harmony

    flat = converter.parse(str(path)).flatten()
    return [(float(cs.offset), cs.root().name, cs.bass().name, cs.chordKind, {p.pitchClass for p in cs.pitches})
            for cs in flat.getElementsByClass(harmony.ChordSymbol)]


@pytest.mark.parametrize("chords, meter", [("C G Am F", "4/4"), ("C G Am F", "3/4"), ("Dm7 G7 Cmaj7 C/E", "4/4"),
                                           ("Dm7 G7 Cmaj7 C/E", "3/4"), ("C:2 G:2 | Am F", "4/4")],
                         ids=["pop-4/4", "pop-3/4", "jazz-4/4", "jazz-3/4", "durations-4/4"])
@pytest.mark.parametrize("seed", ["on-the-bar", "late"])
def test_the_chords_are_in_every_file(pipe, tmp_path, chords, meter, seed):
    import mido
    from symusic import Score

    from hf_melody.export.render import piano_roll_figure

    seed = LATE[meter] if seed == "late" else 1
    m = pipe(seed=seed, chords=chords, time_signature=meter)[0]
    expected = FILE_CASES[chords]
    bar, tpq = int(meter[0]) * 480, 480
    ticks = [b * bar + beat * tpq for b, beat, *_ in expected]
    paths = m.save(tmp_path / "song", ("mid", "musicxml", "abc", "png"), chord_track=True)
    assert [p.suffix for p in paths] == [".mid", ".musicxml", ".abc", ".png"]

    # MIDI: a marker at each chord change, a second track of block chords with the chord tones of each bar
    score = Score(str(paths[0]))
    assert [(int(t.time), t.text) for t in score.markers] == [(t, e[2]) for t, e in zip(ticks, expected, strict=True)]
    assert [msg.text for msg in mido.MidiFile(paths[0]).tracks[0] if msg.type == "marker"] == [e[2] for e in expected]
    melody, chord_track = score.tracks
    assert chord_track.name == "Chords" and chord_track.program == 48 and melody.program == 0
    starts = sorted({int(n.time) for n in chord_track.notes})
    assert starts == ticks
    for t, end, (*_, bass, tones, _) in zip(ticks, [*ticks[1:], len(FILE_CASES[chords]) and None], expected,
                                            strict=True):
        block = [n for n in chord_track.notes if n.time == t]
        assert {n.pitch % 12 for n in block} == tones
        assert min(block, key=lambda n: n.pitch).pitch % 12 == {"C": 0, "E": 4, "D": 2, "G": 7, "A": 9, "F": 5}[bass]
        assert all(36 <= n.pitch < 60 and n.velocity < 100 for n in block)
        if end is not None:
            assert {n.time + n.duration for n in block} == {end}  # it sounds until the next chord
    assert [(n.time, n.duration, n.pitch) for n in melody.notes] == [
        (n.time, n.duration, n.pitch) for n in Score.from_midi(m.to_midi_bytes()).tracks[0].notes]
    assert len(Score.from_midi(m.to_midi_bytes()).tracks) == 1  # without the chord track: markers only
    assert len(Score.from_midi(m.to_midi_bytes()).markers) == len(expected)

    # MusicXML: <harmony> with root, kind and bass, at each chord's offset; ABC: "Am" where the chord changes
    xml = paths[1].read_text()
    assert xml.count("<harmony") == len(expected)
    if "C/E" in chords:
        assert "<bass-step>E</bass-step>" in xml and '<kind text="maj7">major-seventh</kind>' in xml
    want = [(t / tpq, root, bass, kind, tones) for t, (_, _, _, root, bass, tones, kind) in zip(ticks, expected,
                                                                                                strict=True)]
    assert _chord_symbols(paths[1]) == want
    abc = paths[2].read_text()
    assert [w.split('"')[0] for w in abc.split('"')[1::2]] == [e[2] for e in expected]
    assert _chord_symbols(paths[2]) == want

    # the piano roll: each symbol at the top, where its chord starts (in bars)
    fig = piano_roll_figure(m.score, chords=m.chord_events)
    shown = [(t.get_text(), round(t.get_position()[0] - 0.03, 3)) for t in fig.axes[0].texts
             if t.get_gid() == "chord"]
    assert shown == [(e[2], round(t / bar, 3)) for t, e in zip(ticks, expected, strict=True)]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_with_chords_a_late_first_note_enters_over_the_first_chord(pipe, tmp_path):
    """The pickup rule: without chords, a melody whose first note starts late in bar 0 is a pickup (the files start
    on it, under a short first time signature); with chords the chord sounds from time 0, so the files keep the full
    first bar and put the first chord on it, and "C G Am F" is bar 1, 2, 3, 4 as the songwriter wrote it."""
    from music21 import converter, stream
    from symusic import Score

    from hf_melody import GeneratedMelody
    from hf_melody.export.render import piano_roll_figure, pickup_ticks

    m = pipe(seed=LATE["4/4"], chords=POP, time_signature="4/4")[0]
    assert m.notes[0][0] == 1440  # the model's grid: the first note on beat 4 of bar 0
    plain = GeneratedMelody(m.score, m.token_ids, settings={k: v for k, v in m.settings.items() if k != "chords"})
    assert pickup_ticks(m.score) == (1440, 480)  # what the files make of it without chords

    without = Score.from_midi(plain.to_midi_bytes())
    assert (without.time_signatures[0].numerator, without.time_signatures[0].denominator) == (1, 4)
    assert without.tracks[0].notes[0].time == 0
    with_chords = Score.from_midi(m.to_midi_bytes(chord_track=True))
    assert [(t.time, t.numerator, t.denominator) for t in with_chords.time_signatures] == [(0, 4, 4)]
    assert with_chords.tracks[0].notes[0].time == 1440 and with_chords.markers[0].time == 0
    assert with_chords.tracks[1].notes[0].time == 0

    m.save(tmp_path / "late", ("musicxml", "abc"))
    for path in (tmp_path / "late.musicxml", tmp_path / "late.abc"):
        part = converter.parse(str(path)).parts[0]
        first = part.getElementsByClass(stream.Measure).first()
        assert first.duration.quarterLength == 4 and first.paddingLeft == 0, path
        notes = [el for el in first.notesAndRests if "ChordSymbol" not in el.classes]
        assert notes[0].isRest and notes[-1].offset == 3, path  # the late entry: rests, then the note on beat 4
        assert [cs.figure for cs in first.getElementsByClass("ChordSymbol")] == ["C"], path
    assert (tmp_path / "late.abc").read_text().splitlines()[-1].startswith('"C"z')
    fig = piano_roll_figure(m.score, chords=m.chord_events)
    assert fig.axes[0].get_xlim()[0] == 0  # no pickup sliver before bar 1
    assert [t.get_text() for t in fig.axes[0].texts] == POP.split()


def test_the_audio_plays_the_chord_track(pipe, tmp_path):
    import numpy as np
    import soundfile

    from hf_melody.export.render import find_soundfont

    try:
        find_soundfont()
    except Exception:
        pytest.skip("no system soundfont (make soundfont installs one)")
    m = pipe(seed=1, chords="Dm7 G7 Cmaj7 C/E", time_signature="3/4")[0]
    m.save(tmp_path / "solo", ("wav",))
    m.save(tmp_path / "band", ("wav",), chord_track=True)
    solo, rate = soundfile.read(tmp_path / "solo.wav")
    band, _ = soundfile.read(tmp_path / "band.wav")
    assert rate == 22050 and np.abs(band).max() > 0.01
    n = min(len(solo), len(band))
    assert np.abs(band[:n] - solo[:n]).mean() > 1e-3  # the chords are heard
    # the chords sound in a lower register: more energy below 250 Hz with them than without
    low = [np.abs(np.fft.rfft(x[:n].mean(axis=1)))[: int(250 * n / rate)].sum() for x in (solo, band)]
    assert low[1] > 1.5 * low[0]
    with pytest.raises(ConfigError, match="chord_track"):
        pipe(seed=1)[0].save(tmp_path / "none", ("wav",), chord_track=True)


def test_chord_events_layout():
    from symusic import Note, Score, TimeSignature, Track

    from hf_melody.harmony import chord_events

    score = Score(480)
    score.time_signatures.append(TimeSignature(0, 4, 4))
    score.tracks.append(Track())
    score.tracks[0].notes.append(Note(0, 4 * 1920 - 1, 60, 100))  # four bars
    assert [(e.time, e.duration, e.symbol) for e in chord_events(score, "C:2 G:2 | Am")] == [
        (0, 960, "C"), (960, 960, "G"), (1920, 1920, "Am"), (3840, 960, "C"), (4800, 960, "G"), (5760, 1920, "Am")]
    assert [(e.time, e.duration, e.symbol) for e in chord_events(score, "C:8 G")] == [
        (0, 3840, "C"), (3840, 1920, "G"), (5760, 1920, "C")]  # one event over bar lines, again on the repeat
    assert [(e.time, e.symbol) for e in chord_events(score, POP, first_bar=2)] == [(3840, "C"), (5760, "G")]


def test_cli_chord_track(pipe, tmp_path, capsys):
    from symusic import Score

    code, _, err = cli(["generate", "--model", "original", "--chords", POP, "--chord-track", "--seed", "3",
                        "--num", "1", "--formats", "mid,abc", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    data = (tmp_path / "melody_0.mid").read_bytes()
    assert data == pipe(chords=POP, seed=3)[0].to_midi_bytes(chord_track=True)
    assert [t.name for t in Score.from_midi(data).tracks][1] == "Chords"
    assert '"Am"' in (tmp_path / "melody_0.abc").read_text()
    code, _, err = cli(["generate", "--model", "original", "--chord-track", "--out", str(tmp_path / "bad")], capsys)
    assert_one_line_cli_error(code, err, "--chords")


@pytest.mark.parametrize("task", ["continue", "infill"])
def test_the_files_put_the_chords_where_the_generation_had_them(pipe, fixtures_dir, task):
    """The export's chords and the `ChordProcessor`'s agree: every generated note on a strong beat is a tone of the
    chord the files write over it (a continuation's chords start on its first generated bar, an infill's bar b has
    chord b)."""
    from hf_melody.music import bar_start_ticks

    prompt = fixtures_dir / "kinder0_0.mid"
    checked = 0
    for seed in range(4):
        if task == "continue":
            m = pipe(prompt, chords=POP, seed=seed, max_new_notes=12)[0]
            new = sorted(m.notes)[m.num_prompt_notes:]
        else:
            [m] = pipe.infill(prompt, bars=(2, 3), chords="C G F G", seed=seed)
            starts = bar_start_ticks(m.score)
            new = [n for n in m.notes if starts[1] <= n[0] < starts[3]]
        events = m.chord_events
        ts = m.score.time_signatures[0]
        beat = 480 * 4 // ts.denominator
        starts = bar_start_ticks(m.score)
        if task == "continue":
            assert events[0].time in starts and events[0].time > 0  # not over the prompt's first bar
        for onset, _, pitch in new:
            bar = max(i for i, s in enumerate(starts) if s <= onset)
            if any(onset - starts[bar] == round(b * beat) for b in strong_beats((ts.numerator, ts.denominator))):
                [event] = [e for e in events if e.time <= onset < e.time + e.duration]
                assert pitch % 12 in event.chord.pitch_classes, (task, seed, onset, pitch, event.symbol)
                checked += 1
    assert checked >= 4


def test_verovio_engraves_the_chord_symbols(pipe):
    """verovio reads the MusicXML `<harmony>` as MEI `<harm>` and prints each symbol above the staff."""
    import re

    from hf_melody.export.notation import svg_text

    m = pipe(seed=1, chords="Dm7 G7 Cmaj7 C/E", time_signature="4/4")[0]
    svg = svg_text(m.score, chords=m.chord_events)
    shown = [re.sub(r"<[^>]+>|\s", "", g) for g in re.findall(r'class="harm">(.*?)</g>', svg, re.S)]
    assert shown == ["Dm7", "G7", "Cmaj7", "C/E"]
    assert 'class="harm"' not in svg_text(m.score)


@pytest.mark.parametrize("chords, key", [("C G Am F", "C major"), ("Am Dm E7 Am", "A minor"),
                                         ("D A Bm G", "D major"), ("Bb F Gm Eb", "Bb major")])
def test_files_over_chords_are_written_in_the_key_of_the_harmony(pipe, chords, key, tmp_path):
    """With no key asked the files carry the key heard in the melody *and* its chords (the notes alone may sit in
    another key sharing the scale), in every format."""
    from music21 import converter
    from music21 import key as m21key
    from symusic import Score

    for seed in range(3):
        m = pipe(seed=seed, chords=chords, chord_strictness="hard")[0]
        assert m.written_key == key, (seed, m.written_key)
    want = m21key.Key(*key.split()).sharps
    for path in (m.save_abc(tmp_path / "t.abc"), m.save_musicxml(tmp_path / "t.musicxml")):
        sig = converter.parse(str(path)).recurse().getElementsByClass("KeySignature").first()
        assert sig.sharps == want, path
    assert [k.key for k in Score(str(m.save_midi(tmp_path / "t.mid"))).key_signatures] == [want]
