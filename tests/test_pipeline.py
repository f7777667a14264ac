"""MelodyPipeline: unconditional and continued generation, reproducibility, MIDI/WAV/PNG output, registration."""

from __future__ import annotations

import pytest
from symusic import Score

from hf_melody import ConfigError, GeneratedMelody, MelodyPipeline, MidiReadError


@pytest.fixture(scope="module")
def pipe(tiny_bundle):
    return MelodyPipeline.from_pretrained(tiny_bundle)


def test_unconditional_generation_respects_max_new_notes(pipe):
    melodies = pipe(seed=0, max_new_notes=12, num_return_sequences=3)
    assert len(melodies) == 3 and all(isinstance(m, GeneratedMelody) for m in melodies)
    assert all(0 < m.num_notes <= 12 for m in melodies)
    assert all(m.token_ids[0] == pipe.melody_tokenizer.bos_token_id for m in melodies)
    assert all(48 <= p <= 84 for m in melodies for _, _, p in m.notes)


def test_same_seed_same_bytes_and_different_seed_differs(pipe):
    a = pipe(seed=3, max_new_notes=16)[0].to_midi_bytes()
    b = pipe(seed=3, max_new_notes=16)[0].to_midi_bytes()
    c = pipe(seed=4, max_new_notes=16)[0].to_midi_bytes()
    assert a == b and a != c


@pytest.fixture(scope="module")
def theme(tmp_path_factory, fixtures_dir):
    """The first 10 notes of a real Kinderlied, as a MIDI file (the tiny model has a 128-token context)."""
    from hf_melody import read_midi

    melody = read_midi(fixtures_dir / "kinder0_5.mid")
    melody.notes = melody.notes[:10]
    path = tmp_path_factory.mktemp("theme") / "theme.mid"
    melody.to_score().dump_midi(str(path))
    return path


def test_continuation_starts_with_the_prompt(pipe, theme):
    from hf_melody import read_midi

    prompt = read_midi(theme)
    [m] = pipe(str(theme), max_new_notes=8, seed=1)
    assert m.num_prompt_notes == len(prompt.notes)
    assert [list(n) for n in m.notes[: len(prompt.notes)]] == prompt.notes
    assert len(prompt.notes) < m.num_notes <= len(prompt.notes) + 8
    # the same prompt as a Score and as token ids gives the same continuation
    ids = pipe.melody_tokenizer.encode(prompt)
    by_score = pipe(Score(str(theme)), max_new_notes=8, seed=1)[0]
    by_ids = pipe(ids, max_new_notes=8, seed=1)[0]
    assert by_score.token_ids == m.token_ids == by_ids.token_ids


def test_batch_of_prompts_and_output_types(pipe, theme):
    prompts = [str(theme), Score(str(theme))]
    out = pipe(prompts, max_new_notes=4, seed=0, output_type="score")
    assert len(out) == 2 and all(isinstance(r[0], Score) for r in out)
    [ids] = pipe(max_new_notes=4, seed=0, output_type="ids")
    assert isinstance(ids, list) and all(isinstance(i, int) for i in ids)
    [midi] = pipe(max_new_notes=4, seed=0, output_type="midi")
    assert midi[:4] == b"MThd"


def test_max_bars_and_time_signature(pipe):
    [m] = pipe(max_bars=2, time_signature="3/4", seed=2)
    assert m.score.time_signatures[0].numerator == 3
    bar = 3 * 480
    assert all(onset < 2 * bar for onset, _, _ in m.notes)


def test_saves_midi_wav_and_png(pipe, tmp_path):
    import wave

    [m] = pipe(seed=0, max_new_notes=16)
    midi = m.save_midi(tmp_path / "a.mid")
    assert Score(str(midi)).note_num() == m.num_notes
    wav = m.save_wav(tmp_path / "a.wav")
    with wave.open(str(wav)) as w:
        assert w.getnchannels() == 2 and w.getframerate() == 22050
        frames = w.readframes(w.getnframes())
    assert w.getnframes() > 22050 * 0.5 and any(frames)  # real, non-silent audio
    png = m.save_piano_roll(tmp_path / "a.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert not list(tmp_path.glob(".*"))  # atomic writes leave no temporary files


def test_transformers_pipeline_factory(tiny_bundle):
    import transformers

    pipe = transformers.pipeline("melody-generation", model=str(tiny_bundle))
    assert isinstance(pipe, MelodyPipeline)
    assert pipe(seed=0, max_new_notes=4)[0].num_notes <= 4


@pytest.mark.parametrize("kwargs, words", [
    ({"temperature": 0}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"num_return_sequences": 0}, "num_return_sequences"),
    ({"style": "polka"}, "unknown style"),
    ({"time_signature": "5/7"}, "not in the vocabulary"),
    ({"colour": "blue"}, "unknown generation option"),
])
def test_bad_options_fail_clearly(pipe, kwargs, words):
    with pytest.raises(ConfigError, match=words):
        pipe(seed=0, max_new_notes=2, **kwargs)


def test_bad_prompts_fail_clearly(pipe, tmp_path, fixtures_dir):
    with pytest.raises(MidiReadError, match="no such file"):
        pipe(str(tmp_path / "missing.mid"))
    with pytest.raises(ConfigError, match="outside the vocabulary"):
        pipe([1, 99999])
    tok = pipe.melody_tokenizer  # one bar longer than half the 128-token context: no whole bar fits
    one_long_bar = tok.encode_base_tokens(["Bar_None", "TimeSig_4/4", *["Position_0", "Pitch_60", "Duration_0.1.4"]
                                           * 40])
    with pytest.raises(ConfigError, match="the last bar of the prompt alone has 122 tokens.*shorter bars"):
        pipe(one_long_bar)


def test_missing_model_is_a_clear_error(tmp_path):
    from hf_melody import ModelLoadError

    with pytest.raises(ModelLoadError, match="not a folder, a bundled checkpoint"):
        MelodyPipeline.from_pretrained("nobody/no-such-melody-model")
    with pytest.raises(ModelLoadError, match="has no config.json"):
        MelodyPipeline.from_pretrained(tmp_path)


# ---- the transformers way in: lists, generators, KeyDataset, dataset columns, batch_size, dicts (issue 22.2) ------
@pytest.fixture(scope="module")
def original():
    return MelodyPipeline.from_pretrained("original")


@pytest.fixture(scope="module")
def prompts(fixtures_dir):
    from pathlib import Path

    return [str(Path(fixtures_dir) / name) for name in ("kinder0_0.mid", "kinder0_5.mid", "bach_bwv66.6.mid")]


def _ids(results):
    return [[m.token_ids for m in melodies] for melodies in results]


def test_every_kind_of_prompt_collection_gives_the_single_calls_in_order(original, prompts):
    from datasets import Dataset
    from transformers.pipelines.pt_utils import KeyDataset

    options = {"num_bars": 2, "seed": 3, "num_return_sequences": 2}
    single = [original(p, **options) for p in prompts]
    assert _ids(original(prompts, batch_size=2, **options)) == _ids(single)
    assert _ids(original((p for p in prompts), batch_size=2, **options)) == _ids(single)
    ds = Dataset.from_dict({"prompt": prompts})
    assert _ids(original(KeyDataset(ds, "prompt"), **options)) == _ids(single)
    assert _ids(original(ds["prompt"], **options)) == _ids(single)
    midi_bytes = [open(p, "rb").read() for p in prompts]  # noqa: SIM115 - read at once
    assert _ids(original(midi_bytes, **options)) == _ids(single)


def test_bad_options_of_a_stream_fail_before_the_first_prompt_is_read(original, prompts):
    def never():
        raise AssertionError("the prompts were read before the options were checked")
        yield

    with pytest.raises(ConfigError, match="temperature"):
        original(never(), temperature=-1)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ConfigError, match="batch_size"):
            original(prompts, batch_size=bad)


def test_dict_outputs_fill_a_dataset(original, prompts):
    import json

    from datasets import Dataset

    from hf_melody import read_midi

    ds = Dataset.from_dict({"prompt": prompts[:2]})
    out = ds.map(lambda row: original(row["prompt"], num_bars=2, seed=0, output_type="dict")[0])
    assert set(out.column_names) >= {"prompt", "midi", "token_ids", "num_notes", "settings"}
    [first] = original(prompts[0], num_bars=2, seed=0)
    assert out[0]["token_ids"] == first.token_ids and out[0]["midi"] == first.to_midi_bytes()
    assert len(read_midi(out[0]["midi"]).notes) == first.num_notes == out[0]["num_notes"]
    assert json.loads(out[0]["settings"])["seed"] == 0


# ---- nothing shared by accident (issue 27): one pipeline called from several threads -----------------------------
@pytest.mark.parametrize("decoder", ["fast", "generate"])
def test_threads_sharing_a_pipeline_get_what_sequential_calls_give(original, decoder):
    import threading

    seeds = [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9, 11]]
    options = {"max_new_notes": 24, "decoder": decoder}
    expected = {s: original(seed=s, **options)[0].token_ids for row in seeds for s in row}
    got, errors, barrier = {}, [], threading.Barrier(len(seeds))

    def work(row):
        try:
            barrier.wait()
            for s in row:
                got[s] = original(seed=s, **options)[0].token_ids
        except BaseException as e:  # re-raised below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(row,)) for row in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    differ = [s for s in expected if got[s] != expected[s]]
    assert not differ, f"{len(differ)}/{len(expected)} melodies differ from their sequential call: seeds {differ}"


# ---- issue 27: prompts longer than the context are continued from their last bars --------------------------------
@pytest.fixture(scope="module")
def long_tune(tmp_path_factory, fixtures_dir):
    """A real Kinderlied (essen kinder0, 10 bars of 2/4) played 12 times: 120 bars, 360 notes, 1,320 tokens, for
    the 512-token `original` model."""
    from hf_melody import read_midi

    melody = read_midi(fixtures_dir / "kinder0_0.mid")
    span = 10 * 2 * 480  # ten bars of 2/4
    assert melody.time_signatures == [[0, 2, 4]] and max(t + d for t, d, _ in melody.notes) <= span
    melody.notes = [[t + k * span, d, p] for k in range(12) for t, d, p in melody.notes]
    path = tmp_path_factory.mktemp("long") / "long_tune.mid"
    melody.to_score().dump_midi(str(path))
    return path, sorted(tuple(n) for n in melody.notes)


def test_a_prompt_longer_than_the_context_is_continued_from_its_last_bars(original, long_tune, caplog):
    import logging

    from hf_melody.generation.prompts import prompt_ids

    path, prompt_notes = long_tune
    tok = original.melody_tokenizer
    caplog.set_level(logging.WARNING, logger="hf_melody.generation.prompts")
    [melody] = original(str(path), seed=0, num_bars=4)
    [line] = [r.getMessage() for r in caplog.records if "continuing from its last" in r.getMessage()]
    assert line == ("the prompt has 1321 tokens, more than the model's 512-token context: continuing from its last "
                    "23 bars (248 tokens); the 97 bars before them are kept in the returned melody")
    # the melody returned holds the whole prompt, note for note, then the continuation: after the prompt's last note
    # (in its last, unfinished bar 120), within 4 new bars
    assert melody.num_prompt_notes == 360 and sorted(melody.notes)[:360] == prompt_notes
    new, prompt_end = sorted(melody.notes)[360:], max(t + d for t, d, _ in prompt_notes)
    assert new and min(t for t, _, _ in new) >= prompt_end and max(t + d for t, d, _ in new) <= 124 * 960
    body = prompt_ids(tok, str(path))
    assert melody.token_ids[:1321] == [tok.bos_token_id, *body], "the whole prompt, in front of the new tokens"
    # the model saw BOS, then whole bars from a Bar token, the 2/4 time signature carried into the first of them
    inputs = original.preprocess({"prompt": str(path)}, config=original._sanitize_parameters()[0]["config"])
    seen = inputs["input_ids"][0].tolist()
    assert len(seen) == 248 and seen[0] == tok.bos_token_id
    assert tok.to_base_tokens(seen[1:3]) == ["Bar_None", "TimeSig_2/4"] and seen[3:] == body[-245:]


def test_recent_bars_carries_the_time_signature_in_force(tokenizer):
    from hf_melody.generation.prompts import recent_bars

    def bar(*meter: str) -> list[str]:
        return ["Bar_None", *meter, "Position_0", "Pitch_60", "Duration_1.0.4"]

    base = [*bar("TimeSig_3/4"), *bar(), *bar("TimeSig_6/8"), *bar(), *bar()]
    body = tokenizer.encode_base_tokens(base)
    kept, dropped = recent_bars(tokenizer, body, room=9)  # the last two bars (8 tokens) + the carried 6/8
    assert dropped == 3 and tokenizer.to_base_tokens(kept) == [*bar("TimeSig_6/8"), *bar()]
    kept, dropped = recent_bars(tokenizer, body, room=100)  # it all fits: unchanged
    assert dropped == 0 and kept == body
