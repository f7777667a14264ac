"""Infilling: the fill-in-the-middle training format and `MelodyPipeline.infill` on real Kinderlieder."""

from __future__ import annotations

import pytest

from hf_melody.data.infill_format import head_length, infill_example, random_infill_example, split_bars
from hf_melody.errors import ConfigError
from hf_melody.generation.infill import check_bars, clip_to_bars
from hf_melody.music import bar_start_ticks


@pytest.fixture(scope="module")
def by_meter(kinder_melodies):
    """One real Kinderlied per meter (2/4, 3/4, 6/8), each at least 6 bars long, plus one that changes meter."""
    out = {}
    for m in kinder_melodies:
        if len(m.time_signatures) == 1 and m.meter not in out and m.notes[-1][0] > 6 * 1920:
            out[m.meter] = m
    out["change"] = next(m for m in kinder_melodies if len(m.time_signatures) > 1)
    return out


def framed(tokenizer, melody):
    return tokenizer.encode(melody, bos=True, eos=True, style="german-folk")


def test_split_bars_cuts_at_every_bar_line(tokenizer, by_meter):
    ids = framed(tokenizer, by_meter["3/4"])
    bars = split_bars(ids[head_length(ids, tokenizer):-1], tokenizer.bar_token_id)
    assert all(b[0] == tokenizer.bar_token_id and tokenizer.bar_token_id not in b[1:] for b in bars)
    assert sum(len(b) for b in bars) == len(ids) - 3
    assert len(bars) == len(bar_start_ticks(tokenizer.decode(ids), len(bars))) - 1


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_infill_example_moves_the_gap_after_the_suffix(tokenizer, by_meter, where):
    ids = framed(tokenizer, by_meter["2/4"])
    bars = split_bars(ids[2:-1], tokenizer.bar_token_id)
    start, stop = {"first": (0, 2), "middle": (2, 4), "last": (len(bars) - 1, len(bars))}[where]
    fim = infill_example(ids, tokenizer, start, stop)
    marks = tokenizer.infill_token_ids
    flat = lambda bs: [t for b in bs for t in b]  # noqa: E731
    assert fim == [*ids[:2], marks["Infill"], *flat(bars[:start]), marks["InfillSuffix"], *flat(bars[stop:]),
                   marks["InfillMiddle"], *flat(bars[start:stop]), tokenizer.eos_token_id]


def test_random_infill_examples_are_seeded_and_cover_first_and_last_bars(tokenizer, kinder_melodies):
    mark = tokenizer.infill_token_ids["Infill"]
    firsts = lasts = forms = 0
    for m in kinder_melodies:
        ids = framed(tokenizer, m)
        a = random_infill_example(ids, tokenizer, m.id, 0.5)
        assert a == random_infill_example(ids, tokenizer, m.id, 0.5)  # the same on every run
        if mark not in a:
            assert a == ids
            continue
        forms += 1
        assert sorted(a) == sorted([*ids, *tokenizer.infill_token_ids.values()])  # same tokens, moved
        prefix = a[3:a.index(tokenizer.infill_token_ids["InfillSuffix"])]
        suffix_end = a.index(tokenizer.infill_token_ids["InfillMiddle"])
        firsts += not prefix
        lasts += suffix_end == a.index(tokenizer.infill_token_ids["InfillSuffix"]) + 1
    assert 0.35 * len(kinder_melodies) < forms < 0.65 * len(kinder_melodies)
    assert firsts > 0 and lasts > 0
    assert random_infill_example(framed(tokenizer, kinder_melodies[0]), tokenizer, "x", 0.0) == \
        framed(tokenizer, kinder_melodies[0])


@pytest.mark.parametrize(("bars", "n_bars", "expected"), [((5, 6), 8, (4, 6)), (1, 8, (0, 1)), ((8, 8), 8, (7, 8)),
                                                          ([1, 8], 8, (0, 8))])
def test_check_bars_accepts_bars_inside_the_melody(bars, n_bars, expected):
    assert check_bars(bars, n_bars) == expected


@pytest.mark.parametrize("bars", [(0, 2), (7, 9), (6, 5), (1.5, 2), "5-6", None, (True, 2), (1, 2, 3)])
def test_check_bars_refuses_bad_ranges_with_a_typed_error(bars):
    with pytest.raises(ConfigError, match="bars"):
        check_bars(bars, 8)


def test_bar_start_ticks_follow_meter_changes(tokenizer, by_meter):
    from hf_melody.music import bar_ticks

    m = by_meter["change"]
    ids = framed(tokenizer, m)
    n_bars = sum(t == tokenizer.bar_token_id for t in ids)
    edges = bar_start_ticks(tokenizer.decode(ids), n_bars)
    for tick, num, den in m.time_signatures:
        assert tick in edges  # every meter change falls on a bar line
        i = edges.index(tick)
        if i + 1 < len(edges):
            assert edges[i + 1] - edges[i] == bar_ticks(num, den)


def test_clip_to_bars_cuts_a_note_that_spills_into_the_next_bar(tokenizer):
    from hf_melody.data.melody import Melody

    m = Melody("x", "x", [[0, 480, 60], [1440, 960, 62], [1920, 480, 64]], [[0, 4, 4]])  # 4/4: bar 0 ends at 1920
    score = clip_to_bars(m.to_score(), 0, 1, 2)
    assert [(n.time, n.duration) for n in score.tracks[0].notes] == [(0, 480), (1440, 480), (1920, 480)]


# ---- the pipeline ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipe(tiny_bundle):
    from hf_melody import MelodyPipeline

    return MelodyPipeline.from_pretrained(tiny_bundle)


def kept_and_new(tokenizer, original, result, start, stop):
    """Notes of `original` and `result` (onset, duration, pitch) outside and inside bars start..stop-1."""
    ids = framed(tokenizer, original)
    n_bars = sum(t == tokenizer.bar_token_id for t in ids)
    edges = bar_start_ticks(tokenizer.decode(ids), n_bars)
    lo, hi = edges[start], edges[stop]

    def notes(score):
        return [(n.time, n.duration, n.pitch) for n in score.tracks[0].notes]

    orig, new = notes(tokenizer.decode(ids)), notes(result.score)
    outside = lambda ns: [n for n in ns if not lo <= n[0] < hi]  # noqa: E731
    inside = [n for n in new if lo <= n[0] < hi]
    return outside(orig), outside(new), inside, (lo, hi)


@pytest.mark.parametrize("meter", ["2/4", "3/4", "6/8"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_infill_regenerates_exactly_the_chosen_bars(pipe, by_meter, meter, where):
    tok = pipe.melody_tokenizer
    m = by_meter[meter]
    n_bars = sum(t == tok.bar_token_id for t in framed(tok, m))
    first, last = {"first": (1, 2), "middle": (3, 4), "last": (n_bars, n_bars)}[where]
    [result] = pipe.infill(m, bars=(first, last), seed=0, style="german-folk")
    before, after, inside, (lo, hi) = kept_and_new(tok, m, result, first - 1, last)
    assert after == before  # every note outside the regenerated bars is kept as it was
    assert all(lo <= t and t + d <= hi for t, d, _ in inside)  # the new notes fill their bars, no spill
    assert sum(t == tok.bar_token_id for t in result.token_ids) == n_bars
    assert [(ts.numerator, ts.denominator) for ts in result.score.time_signatures][:1] == \
        [tuple(m.time_signatures[0][1:])]
    # the recorded bars are where the melody changed: every note outside them is kept too
    recorded = result.settings["bars"]
    before, after, _, _ = kept_and_new(tok, m, result, recorded[0] - 1, recorded[1])
    assert after == before and len(recorded) == 2


def test_infill_candidates_are_seeded_and_reproducible(pipe, by_meter):
    m = by_meter["2/4"]
    three = pipe.infill(m, bars=(3, 4), num_return_sequences=3, seed=10)
    again = pipe.infill(m, bars=(3, 4), seed=11)
    assert again[0].token_ids == three[1].token_ids
    # each candidate's record (bars, melody_seed) regenerates it alone
    for r in three:
        [alone] = pipe.infill(m, bars=tuple(r.settings["bars"]), seed=r.settings["melody_seed"])
        assert alone.token_ids == r.token_ids
    assert len({tuple(r.token_ids) for r in three}) > 1  # and the seeds differ
    assert len({tuple(r.token_ids) for r in three}) > 1


def test_infill_applies_key_and_pitch_range(pipe, by_meter):
    tok = pipe.melody_tokenizer
    m = by_meter["3/4"]
    for seed in range(3):
        [result] = pipe.infill(m, bars=(2, 3), seed=seed, key="C major", pitch_range=(60, 72))
        _, _, inside, _ = kept_and_new(tok, m, result, 1, 3)
        assert inside and all(60 <= p <= 72 and p % 12 in (0, 2, 4, 5, 7, 9, 11) for _, _, p in inside)


def test_infill_refuses_bars_outside_the_melody(pipe, by_meter):
    with pytest.raises(ConfigError, match="not inside this"):
        pipe.infill(by_meter["2/4"], bars=(40, 41), seed=0)


def test_infill_from_a_midi_file_and_the_cli(tmp_path, fixtures_dir, tiny_bundle):
    from hf_melody.cli import main

    assert main(["infill", "--prompt", str(fixtures_dir / "kinder0_5.mid"), "--bars", "2-3", "--model",
                 str(tiny_bundle), "--num", "2", "--seed", "1", "--out", str(tmp_path), "--formats", "mid"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["infill_0.mid", "infill_1.mid"]
    assert main(["infill", "--prompt", str(fixtures_dir / "kinder0_5.mid"), "--bars", "two", "--model",
                 str(tiny_bundle), "--out", str(tmp_path)]) == 2


def test_infill_takes_the_files_tempo_and_instrument(pipe, by_meter, tmp_path):
    """`tempo_qpm` and `program` shape the files of an infill (they are not sampling options): the same notes as
    without them, the tempo and instrument in the MIDI."""
    from symusic import Score

    m = by_meter["3/4"]
    [plain] = pipe.infill(m, bars=(2, 3), seed=4)
    [dressed] = pipe.infill(m, bars=(2, 3), seed=4, tempo_qpm=90, program="flute")
    assert dressed.token_ids == plain.token_ids
    score = Score(str(dressed.save_midi(tmp_path / "infill.mid")))
    assert round(score.tempos[0].qpm) == 90 and score.tracks[0].program == 73
