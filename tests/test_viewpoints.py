"""Derived viewpoints and the multiple-viewpoint PPM (`hf_melody.evaluation.viewpoints`), checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hf_melody.data.melody import Melody
from hf_melody.errors import ConfigError
from hf_melody.evaluation.ppm import IDYOM_LTM, PPM, cpitch_predictions, cross_validate_ppm
from hf_melody.evaluation.viewpoints import (
    Viewpoint,
    ViewpointSystem,
    melody_pitches,
    parse_viewpoints,
    to_cpitch,
    tonic_pitch_class,
)

# ---- the viewpoint values


@pytest.mark.parametrize(("name", "history", "pitch", "expected"), [
    ("cpitch", [], 67, 67),
    ("cpint", [], 67, None),                 # undefined on the first note
    ("cpint", [60, 62], 59, -3),
    ("cpint-size", [62], 59, 3),
    ("contour", [62], 59, -1),
    ("contour", [62], 62, 0),
    ("cpcint", [60], 74, 2),                 # a ninth up: 2, sign kept
    ("cpcint", [74], 60, -2),
    ("cpcint", [72], 60, 0),
    ("cpintfref", [], 71, 4),                # B over a G tonic: the major third
    ("cpintfip", [60, 65], 67, 7),
    ("cpitch-class", [], 67, 7),
    ("cpint*cpintfref", [69], 71, (2, 4)),
    ("cpint*cpintfref", [], 71, None),       # a link is undefined where one component is
], ids=lambda x: str(x))
def test_viewpoint_values(name, history, pitch, expected):
    assert Viewpoint.parse(name).value(history, pitch, tonic=7) == expected


def test_cpintfref_without_a_key_is_undefined():
    assert Viewpoint.parse("cpintfref").value([], 60, tonic=None) is None
    assert Viewpoint.parse("cpint").sequence([60, 62, 59]) == [2, -3]   # undefined notes skipped


def test_names_and_keys():
    assert [v.name for v in parse_viewpoints("cpitch, cpint x cpintfref,cpint*cpcint")] == [
        "cpitch", "cpint*cpintfref", "cpint*cpcint"]
    assert [tonic_pitch_class(k) for k in ("C major", "B- major", "f# minor", "Eb major", "", "H dur")] == [
        0, 10, 6, 3, None, None]
    m = Melody("t/1", "t", [[480, 480, 64], [0, 480, 62]], key="G major")
    assert melody_pitches(m) == ([62, 64], 7)
    for bad in ("cpitchh", "cpint*cpint", "cpint,cpint", ""):
        with pytest.raises(ConfigError):
            parse_viewpoints(bad)


def test_universe_covers_every_value():
    alphabet = [60, 62, 67]
    assert Viewpoint.parse("cpint").universe(alphabet) == [-7, -5, -2, 0, 2, 5, 7]
    assert Viewpoint.parse("cpintfref").universe(alphabet) == list(range(12))
    assert len(Viewpoint.parse("cpint*cpintfref").universe(alphabet)) == 7 * 12


# ---- from a viewpoint's distribution to one over the pitches


def test_to_cpitch_splits_a_value_among_its_pitches():
    # alphabet 60 62 67 72 over a C tonic: cpintfref 0 2 7 0; context alphabet [0, 2, 7]
    p = to_cpitch(np.array([0.5, 0.3, 0.2]), [0, 2, 7, 0])
    assert p.tolist() == pytest.approx([0.25, 0.3, 0.2, 0.25])
    assert to_cpitch(np.array([0.1, 0.9]), ["a", "b"]).tolist() == [0.1, 0.9]   # one pitch per value: as is


def test_ppm_predicts_over_the_context_alphabet_by_hand():
    # cpint LTM trained on 60 62 64 62 -> intervals [2, 2, -2] (+ the sentinel); root counts 2:2, -2:1
    system = ViewpointSystem(["cpint"], alphabet=[60, 62, 64, 66]).fit([([60, 62, 64, 62], None)])
    ic, _ = system.predict([62, 64], models=("ltm",))["ltm"]
    assert ic[0] == pytest.approx(2.0)  # cpint undefined on the first note: flat over the 4 pitches
    # second note after 62: context alphabet = the intervals to 60 62 64 66 = [-2, 0, 2, 4]
    # order 0, escape C: n = 3, T = 2, w = 3/5: 2 gets 3/5 * 2/3, -2 gets 3/5 * 1/3; escape 2/5
    # order -1 over the context alphabet: 1 / (4 + 1 - 2) = 1/3, times 2/5 to each of the four
    # P(cpint = 2) = (2/5 + 2/15) / (3/5 + 4 * 2/15) = 8/17, and 64 is the only pitch 2 above 62
    assert ic[1] == pytest.approx(-math.log2(8 / 17))
    ltm = system.ltms[0]
    assert ltm.probabilities([], alphabet=[-2, 0, 2, 4]).tolist() == pytest.approx([5 / 17, 2 / 17, 8 / 17, 2 / 17])
    with pytest.raises(ConfigError):
        ltm.probabilities([], alphabet=[99])


def test_cpintfref_stm_first_note_by_hand():
    # empty STM: uniform over the context alphabet [0, 2, 7]; the tonics 60 and 72 share 1/3
    system = ViewpointSystem(["cpintfref"], alphabet=[60, 62, 67, 72])
    ic, h = system.predict([60], tonic=0, models=("stm",))["stm"]
    assert ic[0] == pytest.approx(math.log2(6))
    assert h[0] == pytest.approx(2 * (1 / 6) * math.log2(6) + 2 * (1 / 3) * math.log2(3))


# ---- combining viewpoints


def test_viewpoint_combination_weights_by_hand():
    # first note, STM only: cpitch is flat (1/4 each), cpintfref gives 1/6 1/3 1/3 1/6 (above)
    alphabet = [60, 62, 67, 72]
    flat, fref = np.full(4, 0.25), np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6])
    h_max = math.log2(4)
    w = np.array([(-(d * np.log2(d)).sum() / h_max) ** -2.0 for d in (flat, fref)])  # IDyOM's viewpoint bias 2
    w /= w.sum()
    expected = flat ** w[0] * fref ** w[1]
    expected /= expected.sum()
    ic, _ = ViewpointSystem(["cpitch", "cpintfref"], alphabet).predict([62], tonic=0, models=("stm",))["stm"]
    assert ic[0] == pytest.approx(-math.log2(expected[1]))
    assert w[1] > w[0]  # the lower-entropy viewpoint weighs more


def test_cpitch_alone_is_the_single_viewpoint_ppm():
    train = [[60, 62, 64, 65, 67, 65, 64, 62, 60], [67, 65, 64, 62, 60, 62, 64]]
    alphabet = list(range(58, 70))
    system = ViewpointSystem(["cpitch"], alphabet).fit([(p, None) for p in train])
    single = PPM(alphabet, **IDYOM_LTM).fit(train)
    melody = [60, 64, 62, 60, 67, 65, 64, 62]
    got = system.predict(melody, models=("ltm", "stm", "both"))
    for name, kwargs in (("ltm", {"stm": False}), ("stm", {"ltm": None}), ("both", {})):
        assert got[name] == cpitch_predictions(melody, **{"ltm": single, **kwargs}, alphabet=alphabet)
    plus_single = cpitch_predictions(melody, ltm=single, alphabet=alphabet, ltm_learns=True)
    assert system.predict(melody, models=("both+",))["both+"] == plus_single


def test_derived_viewpoints_never_look_ahead():
    names, train = ["cpint", "cpintfref", "cpint*cpintfref"], [([60, 62, 64, 65, 67], 0), ([67, 64, 60], 0)]
    a = [60, 62, 64, 62, 60, 62, 64]
    b = [60, 62, 64, 62, 60, 69, 60]
    for models in (("stm", "both"), ("both+",)):  # fresh systems: both+ changes its LTM
        x = ViewpointSystem(names, range(58, 72)).fit(train).predict(a, tonic=0, models=models)
        y = ViewpointSystem(names, range(58, 72)).fit(train).predict(b, tonic=0, models=models)
        for name in models:
            assert x[name][0][:5] == y[name][0][:5] and x[name][1][:5] == y[name][1][:5]
            assert x[name][0][5] != y[name][0][5]
    system = ViewpointSystem(names, range(58, 72)).fit(train)
    before = [n.count for n in system.ltms[0].root.children.values()]
    system.predict(a, tonic=0, models=("both",))  # a fixed LTM only moves along the melody
    assert [n.count for n in system.ltms[0].root.children.values()] == before


def test_system_errors():
    system = ViewpointSystem("cpint", alphabet=[60, 62])
    with pytest.raises(ConfigError, match="fit"):
        system.predict([60, 62], models=("both",))
    with pytest.raises(ConfigError, match="mix"):
        system.fit([([60, 62], None)]).predict([60], models=("ltm", "both+"))
    with pytest.raises(ConfigError, match="alphabet"):
        system.predict([61], models=("stm",))
    with pytest.raises(ConfigError):
        system.predict([60], models=("nope",))


# ---- through the cross-validation and the analysis


def _toy_melodies():
    return [Melody(f"t/{i}", "t", [[k * 480, 480, 60 + (k * (i + 1)) % 7] for k in range(12)], key="C major")
            for i in range(6)]


def test_cross_validate_with_viewpoints():
    cv = cross_validate_ppm(_toy_melodies(), folds=3, models=("ltm", "stm", "both", "both+"),
                            viewpoints="cpitch,cpint,cpintfref,cpint*cpintfref")
    assert cv["viewpoints"] == ["cpitch", "cpint", "cpintfref", "cpint*cpintfref"]
    assert cv["both"]["num_notes"] == 72 and len(cv["both+"]["per_fold"]) == 3
    plain = cross_validate_ppm(_toy_melodies(), folds=3, models=("both",))
    single = cross_validate_ppm(_toy_melodies(), folds=3, models=("both",), viewpoints="cpitch")
    assert single["both"]["per_note"] == plain["both"]["per_note"]


def test_analyze_ppm_with_viewpoints():
    from hf_melody.evaluation.analysis import analyze

    df = analyze("ppm", _toy_melodies()[:3], ppm_model="both", ppm_viewpoints="cpint,cpintfref")
    assert len(df) == 36 and (df["cpitch.information.content"] > 0).all()
    with pytest.raises(ConfigError, match="model='ppm'"):
        analyze("original", _toy_melodies()[:1], ppm_viewpoints="cpint")


# ---- IDyOM's own update-exclusion counts (ppm.EXCLUSION_RULES)


def _abab(rule):
    # learnt a b a b with update exclusion: root a (2, excluded 2), root b (2, excluded 1: found at order 1),
    # a->b (2, 2), b->a (1, 1), ab->a (1, 1), ba->b, aba->b (1, 1)
    m = PPM("abc", escape="c", update_exclusion=True, exclusion_rule=rule)
    m.start()
    for s in "abab":
        m.learn(s)
    assert (m.root.children["b"].count, m.root.children["b"].excluded) == (2, 1)
    return m


def test_exclusion_rules_below_a_selected_context_by_hand():
    # after "abab" the matching contexts are "", "b", "ab"; "b" and "ab" are deterministic: "b" is selected
    # textbook: full counts at "b" and below: b: a 1/2; root {a2 b2}, n = 2 (a excluded), w 1/2: a, b += 1/4;
    #   order -1: 1/4 * 1/(3 + 1 - 2) = 1/8 each -> 7/8, 3/8, 1/8 over 11/8
    assert _abab("textbook").predict() == pytest.approx({"a": 7 / 11, "b": 3 / 11, "c": 1 / 11})
    # idyom: full counts at "b" only; the root's update-excluded {a2 b1}: n = 1, w = 1/3: a += 1/2 * 1/3 * 2,
    #   b += 1/2 * 1/3; escape 1/3, order -1 1/3 * 1/2 each -> 1, 1/3, 1/6 over 3/2
    assert _abab("idyom").predict() == pytest.approx({"a": 2 / 3, "b": 2 / 9, "c": 1 / 9})


def test_idyom_rule_selects_nothing_when_the_longest_match_is_deterministic():
    # history "a": contexts "", "a"; "a" (only b followed it) is the longest match itself
    # textbook: full counts: a->b w 2/3; root {a2 b2} n = 2, w 1/2: +1/6 each; order -1 +1/12 -> 1/5 11/15 1/15
    assert _abab("textbook").predict(["a"]) == pytest.approx({"a": 1 / 5, "b": 11 / 15, "c": 1 / 15})
    # idyom: not a selection, so update-excluded counts everywhere: root {a2 b1}: a += 1/3 * 1/2 * 2/2,
    #   b += 1/3 * 1/2 * 1/2; order -1 + 1/12 each -> 3/14 10/14 1/14
    assert _abab("idyom").predict(["a"]) == pytest.approx({"a": 3 / 14, "b": 10 / 14, "c": 1 / 14})
    with pytest.raises(ConfigError, match="exclusion_rule"):
        PPM("ab", exclusion_rule="nope")


def test_the_rule_leaves_a_model_without_update_exclusion_alone():
    for history in (None, ["a"], ["b", "a"]):
        plain, idyom = (PPM("abc", exclusion_rule=r).fit(["abab", "abc"]) for r in ("textbook", "idyom"))
        if history is None:
            for m in (plain, idyom):
                m.start()
                m.learn("a")
        assert plain.predict(history) == idyom.predict(history)
