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
