"""Expectation analysis (`hf_melody.evaluation.analysis`) and the IDyOM-style PPM (`hf_melody.evaluation.ppm`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hf_melody.data.melody import Melody
from hf_melody.errors import ConfigError
from hf_melody.evaluation.analysis import CPITCH_COLUMNS, ID_COLUMNS, REMI_COLUMNS, analyze, write_analysis
from hf_melody.evaluation.ppm import PPM, combine, cpitch_predictions, cross_validate_ppm


def _melodies():
    a = [[i * 480, 480, p] for i, p in enumerate([60, 62, 64, 65, 67, 65, 64, 62, 60, 60])]
    b = [[240 + i * 240, 240, p] for i, p in enumerate([67, 69, 67, 65, 64, 62, 60])]  # a pickup, 3/4
    return [Melody("toy/0", "toy", a, [[0, 4, 4]], title="scale", style="german-folk"),
            Melody("toy/1", "toy", b, [[0, 3, 4]], title="waltz", style="german-folk")]


@pytest.fixture(scope="module")
def original():
    from hf_melody.hub import load_model, load_tokenizer

    return load_model("original"), load_tokenizer("original")


@pytest.fixture(scope="module")
def frame(original):
    return analyze(original, _melodies(), dataset_id="toy")


# ---- the column contract and agreement with score_melodies


def test_columns_one_row_per_note(frame):
    for col in (*ID_COLUMNS, *CPITCH_COLUMNS, *REMI_COLUMNS):
        assert col in frame.columns, col
    assert len(frame) == 17
    assert list(frame["note.id"][:3]) == [1, 2, 3]
    assert set(frame["dataset.id"]) == {"toy"}
    first = frame[frame["melody.id"] == "toy/1"].iloc[0]
    assert first["onset"] == 0.5 and first["onset.seconds"] == 0.25 and first["metrical.position"] == 0.5
    assert frame["cpitch.probability"].to_numpy() == pytest.approx(2.0 ** -frame["cpitch.information.content"])
    assert (frame["cpitch.entropy"] >= 0).all() and (frame["cpitch.entropy"] <= math.log2(49) + 1e-9).all()


def test_means_equal_score_melodies(original, frame):
    from hf_melody.evaluation.likelihood import score_melodies

    r = score_melodies(*original, _melodies(), fair_pitch=True)
    assert frame["cpitch.information.content"].mean() == pytest.approx(r.fair_pitch_bits_per_note, abs=1e-9)
    assert frame["information.content"].sum() / len(frame) == pytest.approx(r.bits_per_note, abs=1e-9)
    assert frame["cpitch.onset_known.information.content"].mean() == pytest.approx(r.pitch_bits_per_note, abs=1e-6)


def test_write_csv_parquet_plots(frame, tmp_path):
    import pandas as pd

    paths = write_analysis(frame, tmp_path)
    names = {p.name for p in paths}
    assert {"notes.csv", "profile_0.png", "ic_by_metrical_position.png"} <= names
    back = pd.read_csv(tmp_path / "notes.csv")
    assert list(back.columns) == list(frame.columns) and len(back) == len(frame)


def test_analyze_ppm_and_style(original):
    df = analyze("ppm", _melodies(), ppm_model="stm")
    assert len(df) == 17 and "onset.information.content" not in df
    assert df["cpitch.information.content"].iloc[0] == pytest.approx(math.log2(6))  # 6 pitches in the alphabet
    styled = analyze(original, _melodies()[:1], style="chorale")
    assert len(styled) == 10
    with pytest.raises(ConfigError):
        analyze("ppm", _melodies(), ppm_model="nope")


def test_cli_analyze(tmp_path, monkeypatch, capsys):
    from hf_melody import cli

    folder = tmp_path / "mid"
    folder.mkdir()
    for m in _melodies():
        m.to_score().dump_midi(folder / f"{m.id.split('/')[1]}.mid")
    assert cli.main(["analyze", "--model", "ppm", "--ppm-model", "stm", "--dataset", str(folder), "--output-dir",
                     str(tmp_path / "out"), "--no-plots"]) == 0
    assert "17 notes" in capsys.readouterr().out
    assert (tmp_path / "out" / "notes.csv").is_file()


# ---- PPM by hand


def test_ppm_escape_c_by_hand():
    # after "ab" only order 0 matches: counts a:1 b:1, n=2, T=2, weight 1/2; order -1: 1/(3+1-2) = 1/2
    # unnormalised: a = 1/2 * 1/2 + 1/2 * 1/2 = 1/2, b = 1/2, c = 1/4 -> normalised 0.4, 0.4, 0.2 (IDyOM's blend)
    m = PPM("abc")
    m.start()
    m.learn("a")
    m.learn("b")
    assert m.predict() == pytest.approx({"a": 0.4, "b": 0.4, "c": 0.2})


def test_ppm_exclusion_and_star_by_hand():
    m = PPM("abc").fit(["abab"])  # contexts: ""->a2 b2; a->b2; b->a1 $1; ab->a1 $1; ba->b1; aba->b1
    # history "ba": the shortest deterministic context is "a" (only b followed it): orders 1, 0, -1 blended
    # order 1 ("a"): n=2, T=1, w=2/3: b += 2/3; escape 1/3
    # order 0 (excluding b): n = 2 (a's count only), T=2, w=1/2: a += 1/3 * 1/2 * 2/2, b += 1/3 * 1/2 * 2/2
    # order -1: 1/3 * 1/2 * 1/(3 + 1 - 2) = 1/12 to every symbol
    raw = {"a": 1 / 6 + 1 / 12, "b": 2 / 3 + 1 / 6 + 1 / 12, "c": 1 / 12}
    total = sum(raw.values())
    assert m.predict(list("ba")) == pytest.approx({k: v / total for k, v in raw.items()})


def test_ppm_escape_x_and_update_exclusion():
    plain = PPM("ab", escape="c").fit(["aab"])
    ux = PPM("ab", escape="x", update_exclusion=True).fit(["aab"])
    for model in (plain, ux):
        assert sum(model.predict([]).values()) == pytest.approx(1.0)
    # "aab" with update exclusion: each symbol is new at every order above 0, so every order counts it
    assert ux.root.children["a"].excluded == 2 and ux.root.children["b"].excluded == 1
    m = PPM("ab", update_exclusion=True).fit(["abab"])
    # the second b (after "aba") is found at order 1 ("a" -> b): only orders >= 1 count it, so its order-0
    # update-excluded count stays 1 while the full count is 2
    assert m.root.children["b"].count == 2 and m.root.children["b"].excluded == 1


def test_stm_never_looks_ahead():
    a = cpitch_predictions([60, 62, 64, 62, 60, 62, 64], alphabet=range(58, 70))
    b = cpitch_predictions([60, 62, 64, 62, 60, 67, 60], alphabet=range(58, 70))
    assert a[0][:5] == b[0][:5] and a[1][:5] == b[1][:5]
    assert a[0][5] != b[0][5]


def test_ltm_stm_combination():
    ltm = PPM(range(60, 65)).fit([[60, 62, 64, 62, 60]] * 3)
    ic_ltm, _ = cpitch_predictions([60, 62, 64], ltm=ltm, stm=False)
    ic_both, h_both = cpitch_predictions([60, 62, 64], ltm=PPM(range(60, 65)).fit([[60, 62, 64, 62, 60]] * 3))
    assert len(ic_ltm) == len(ic_both) == 3 and all(h >= 0 for h in h_both)
    # a confident distribution (low entropy) dominates the geometric combination with IDyOM's bias
    sharp, flat = np.array([0.97, 0.01, 0.01, 0.01]), np.full(4, 0.25)
    assert combine([sharp, flat])[0] > 0.9
    assert combine([sharp, flat], bias=0.0, method="arithmetic")[0] == pytest.approx((0.97 + 0.25) / 2)


def test_cross_validate_ppm_small():
    ms = [Melody(f"t/{i}", "t", [[k * 480, 480, 60 + (k * (i + 1)) % 7] for k in range(12)]) for i in range(6)]
    cv = cross_validate_ppm(ms, folds=3, models=("ltm", "stm", "both"))
    assert cv["stm"]["num_notes"] == 72 and len(cv["both"]["per_fold"]) == 3
    assert all(cv[k]["pitch_bits_per_note"] > 0 for k in ("ltm", "stm", "both"))
