"""Derived viewpoints for pitch: IDyOM's multiple-viewpoint system over the PPM* models of `evaluation.ppm`.

A *viewpoint* (Conklin & Witten 1995; Pearce 2005) maps a melody's pitches, up to and including the note to
predict, to one value: `cpitch` (the MIDI pitch itself), `cpint` (the interval from the previous note), `cpintfref`
(the interval from the tune's tonic, mod 12), `cpintfip` (the interval from the first note), `cpcint` (the interval
mod 12, sign kept), `cpint-size`, `contour`, `cpitch-class`; a *linked* viewpoint (`cpint*cpintfref`) is the tuple of
its components. A viewpoint is undefined where it cannot be computed (`cpint` on the first note, `cpintfref` without
a key); an undefined note is neither predicted nor learnt by that viewpoint's models, as in IDyOM.

Each viewpoint has its own long-term and short-term PPM* over its own values. To predict a note, IDyOM's way
(`mvs/multiple-viewpoint-system.lisp`, `viewpoints/extensions.lisp`):

1. the viewpoint's alphabet is set from the context: the values that each pitch of the cpitch alphabet would take
   as the next note (`set-alphabet-from-context`), and each PPM predicts over that alphabet only;
2. the distribution over those values is converted to one over the pitches (`derived->basic`): a value's
   probability is split equally among the pitches that map to it (`cpintfref` 0 maps to every tonic of the
   alphabet; `cpint` +2 to one pitch), so the result sums to one by construction (IDyOM's renormalisation is a
   no-op);
3. the pitch distributions of the defined viewpoints are combined within the LTM and within the STM
   (entropy-weighted geometric mean, IDyOM's `*viewpoint-bias*` 2), a flat distribution when none is defined, then
   the LTM's with the STM's (bias 7, `ppm.combine`), IDyOM's default order (viewpoints first, then LTM with STM).

Examples:
    >>> system = ViewpointSystem(["cpint", "cpintfref"], alphabet=range(60, 68))
    >>> system = system.fit([([60, 62, 64, 65, 67], 0), ([67, 65, 64, 62, 60], 0)])
    >>> ic, h = system.predict([60, 62, 64], tonic=0, models=("both",))["both"]
    >>> len(ic), round(ic[0], 3)                   # the first note: cpint undefined, cpintfref predicts it
    (3, 2.752)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .ppm import IDYOM_BIAS, IDYOM_LTM, IDYOM_STM, PPM, PPM_MODELS, _advance, _entropy_bits, combine

IDYOM_VIEWPOINT_BIAS = 2.0
"""IDyOM's `*viewpoint-bias*`: the entropy-weighting exponent when viewpoints are combined (geometric)."""


def _interval(history: Sequence[int], pitch: int) -> int | None:
    return pitch - history[-1] if history else None


def _cpcint(history: Sequence[int], pitch: int, tonic: int | None) -> int | None:
    i = _interval(history, pitch)
    return None if i is None else -(-i % 12) if i < 0 else i % 12


def _signed(f: Callable[[int], Hashable]) -> Callable[[Sequence[int], int, int | None], Hashable | None]:
    def value(history: Sequence[int], pitch: int, tonic: int | None) -> Hashable | None:
        i = _interval(history, pitch)
        return None if i is None else f(i)
    return value


PRIMITIVES: dict[str, Callable[[Sequence[int], int, int | None], Hashable | None]] = {
    "cpitch": lambda h, p, t: p,
    "cpitch-class": lambda h, p, t: p % 12,
    "cpint": lambda h, p, t: _interval(h, p),
    "cpint-size": _signed(abs),
    "contour": _signed(lambda i: (i > 0) - (i < 0)),
    "cpcint": _cpcint,
    "cpintfref": lambda h, p, t: None if t is None else (p - t) % 12,
    "cpintfip": lambda h, p, t: p - h[0] if h else None,
}
"""The pitch viewpoints, IDyOM's names: `(history, pitch, tonic pitch class) -> value`, None where undefined."""


@dataclass(frozen=True)
class Viewpoint:
    """One viewpoint: a primitive of `PRIMITIVES` or a link of several (`cpint*cpintfref`: the tuple of values).

    Examples:
        >>> v = Viewpoint.parse("cpint*cpintfref")
        >>> v.value([60, 62], 65, tonic=7), v.value([], 65, tonic=7)
        ((3, 10), None)
    """

    links: tuple[str, ...]

    @classmethod
    def parse(cls, name: str) -> Viewpoint:
        """`cpint`, `cpint*cpintfref` or `cpint x cpintfref` (IDyOM's linked viewpoint)."""
        parts = tuple(p.strip() for p in name.replace(" x ", "*").split("*"))
        unknown = [p for p in parts if p not in PRIMITIVES]
        if unknown or not parts:
            raise ConfigError(f"unknown viewpoint {name!r}; use {', '.join(PRIMITIVES)} or links such as "
                              "'cpint*cpintfref'")
        if len(set(parts)) < len(parts):
            raise ConfigError(f"viewpoint {name!r} links a viewpoint with itself; list each component once")
        return cls(parts)

    @property
    def name(self) -> str:
        return "*".join(self.links)

    def value(self, history: Sequence[int], pitch: int, tonic: int | None = None) -> Hashable | None:
        """The value if `pitch` follows `history` (the earlier pitches of the melody), None where undefined."""
        if len(self.links) == 1:
            return PRIMITIVES[self.links[0]](history, pitch, tonic)
        values = tuple(PRIMITIVES[p](history, pitch, tonic) for p in self.links)
        return None if any(v is None for v in values) else values

    def sequence(self, pitches: Sequence[int], tonic: int | None = None) -> list[Hashable]:
        """The defined values along a melody (undefined notes skipped, as IDyOM's `viewpoint-sequence`)."""
        values = (self.value(pitches[:i], p, tonic) for i, p in enumerate(pitches))
        return [v for v in values if v is not None]

    def universe(self, alphabet: Sequence[int]) -> list[Hashable]:
        """Every value the viewpoint can take over melodies on `alphabet` (the symbols of its PPMs)."""
        def atoms(name: str) -> list[Hashable]:
            f = PRIMITIVES[name]
            found = {f(h, p, t) for h in ([], *([a] for a in alphabet)) for p in alphabet for t in range(12)}
            return sorted(found - {None})
        if len(self.links) == 1:
            return atoms(self.links[0])
        return list(itertools.product(*(atoms(p) for p in self.links)))


def parse_viewpoints(spec: str | Iterable[str]) -> tuple[Viewpoint, ...]:
    """`"cpitch,cpint,cpint*cpintfref"` or a list of names -> the viewpoints, in order.

    Examples:
        >>> [v.name for v in parse_viewpoints("cpint, cpint x cpintfref")]
        ['cpint', 'cpint*cpintfref']
    """
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    if not names:
        raise ConfigError(f"no viewpoints in {spec!r}; give e.g. 'cpitch,cpint,cpintfref'")
    out = tuple(Viewpoint.parse(n) for n in names)
    seen = [v.name for v in out]
    if len(set(seen)) < len(seen):
        raise ConfigError(f"viewpoints {seen} list one twice; give each once")
    return out


_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def tonic_pitch_class(key: str | None) -> int | None:
    """The tonic's pitch class (C = 0) of a key as written in `Melody.key`, e.g. "B- major" -> 10 (music21 writes
    flats as `-`); None for an empty or unreadable key (then `cpintfref` is undefined for the tune).

    Examples:
        >>> tonic_pitch_class("G major"), tonic_pitch_class("f# minor"), tonic_pitch_class("Eb major")
        (7, 6, 3)
    """
    name = (key or "").strip().split(" ")[0]
    if not name or name[0].upper() not in _STEPS:
        return None
    shift = 0
    for c in name[1:]:
        if c not in "#-b":
            return None
        shift += 1 if c == "#" else -1
    return (_STEPS[name[0].upper()] + shift) % 12


def melody_pitches(melody) -> tuple[list[int], int | None]:
    """`(pitches in onset order, tonic pitch class)` of a `Melody`: what `ViewpointSystem` fits and predicts."""
    return [p for _, _, p in sorted(melody.notes)], tonic_pitch_class(getattr(melody, "key", ""))


def to_cpitch(distribution: np.ndarray, values: Sequence[Hashable]) -> np.ndarray:
    """IDyOM's `derived->basic`: a distribution over the viewpoint's context alphabet (`dict.fromkeys(values)`,
    in that order) -> one over the pitches, `values[k]` being the viewpoint's value if pitch `k` came next: each
    value's probability is shared equally by the pitches that map to it.

    Examples:
        >>> to_cpitch(np.array([0.6, 0.4]), [0, 7, 0]).tolist()     # two tonics share 0.6, one dominant
        [0.3, 0.4, 0.3]
    """
    position = {v: i for i, v in enumerate(dict.fromkeys(values))}
    where = np.array([position[v] for v in values])
    if len(position) == len(values):  # one pitch per value: the same distribution, reordered
        return np.asarray(distribution, dtype=float)[where]
    shares = np.bincount(where, minlength=len(position))
    return np.asarray(distribution, dtype=float)[where] / shares[where]


class ViewpointSystem:
    """A multiple-viewpoint system predicting `cpitch`: one LTM and one STM PPM* per viewpoint, IDyOM's defaults.

    `fit` trains the long-term models on `(pitches, tonic)` pairs; `predict` walks one melody note by note and
    returns, for each model asked for (`ppm.PPM_MODELS`: ltm, stm, both, and ltm+ / both+ whose LTMs also learn
    the melody after each note), the information content and entropy in bits of every pitch from its past only.

    Examples:
        >>> s = ViewpointSystem(["cpitch", "cpint"], alphabet=[60, 62, 64])
        >>> ic, h = s.predict([60, 62, 64, 62], models=("stm",))["stm"]         # no LTM needed for the STM
        >>> round(ic[0], 3)
        1.585
    """

    def __init__(self, viewpoints: str | Iterable[str], alphabet: Iterable[int],
                 viewpoint_bias: float = IDYOM_VIEWPOINT_BIAS, bias: float = IDYOM_BIAS, method: str = "geometric",
                 ltm_options: dict[str, Any] | None = None, stm_options: dict[str, Any] | None = None):
        self.viewpoints = parse_viewpoints(viewpoints)
        self.alphabet = tuple(dict.fromkeys(int(a) for a in alphabet))
        if not self.alphabet:
            raise ConfigError("the cpitch alphabet is empty; give the pitches the melodies use")
        self.viewpoint_bias, self.bias, self.method = viewpoint_bias, bias, method
        self.ltm_options = {**IDYOM_LTM, **(ltm_options or {})}
        self.stm_options = {**IDYOM_STM, **(stm_options or {})}
        self._universes = [v.universe(self.alphabet) for v in self.viewpoints]
        self.ltms: list[PPM] | None = None

    def fit(self, melodies: Iterable[tuple[Sequence[int], int | None]]) -> ViewpointSystem:
        """Train one long-term PPM per viewpoint on each melody's defined values (each closed by the sentinel)."""
        melodies = list(melodies)
        self.ltms = [PPM(u, **self.ltm_options).fit(v.sequence(p, t) for p, t in melodies)
                     for v, u in zip(self.viewpoints, self._universes, strict=True)]
        return self

    def _combine(self, dists: list[np.ndarray | None]) -> np.ndarray:
        defined = [d for d in dists if d is not None]
        if not defined:  # every viewpoint undefined here: IDyOM's flat distribution over the pitches
            return np.full(len(self.alphabet), 1.0 / len(self.alphabet))
        return defined[0] if len(defined) == 1 else combine(defined, self.viewpoint_bias, self.method)

    def predict(self, pitches: Sequence[int], tonic: int | None = None,
                models: Sequence[str] = ("both",)) -> dict[str, tuple[list[float], list[float]]]:
        """`{model: (information content, entropy)}` in bits for each pitch of one melody, from its past only.

        `tonic`: the tune's tonic pitch class (`tonic_pitch_class`); without it `cpintfref` is undefined.
        `models`: any of ltm, stm, both, or of ltm+, both+ (those learn: not mixed with the others in one call).
        """
        unknown = [m for m in models if m not in PPM_MODELS]
        if unknown or not models:
            raise ConfigError(f"models={list(models)}; choose from {', '.join(PPM_MODELS)}")
        learns = {m.endswith("+") for m in models}
        if len(learns) > 1:
            raise ConfigError(f"models={list(models)} mix ltm+/both+ with ltm/both; ask for them in two calls")
        learns = learns.pop()
        uses_ltm = any(m != "stm" for m in models)
        uses_stm = any(m in ("stm", "both", "both+") for m in models)
        if uses_ltm and self.ltms is None:
            raise ConfigError("this ViewpointSystem has no long-term models yet; call fit(melodies) first or ask "
                              "for models=('stm',)")
        missing = sorted({p for p in pitches if p not in self.alphabet})
        if missing:
            raise ConfigError(f"pitches {missing[:5]} are not in the cpitch alphabet ({len(self.alphabet)} pitches)")
        stms = [PPM(u, **self.stm_options) for u in self._universes] if uses_stm else []
        for ltm in self.ltms if uses_ltm else []:
            ltm.start()
        index = {p: i for i, p in enumerate(self.alphabet)}
        out = {m: ([], []) for m in models}
        for i, pitch in enumerate(pitches):
            history = pitches[:i]
            ltm_dists: list[np.ndarray | None] = []
            stm_dists: list[np.ndarray | None] = []
            learnt = []
            for k, v in enumerate(self.viewpoints):
                values = [v.value(history, c, tonic) for c in self.alphabet]
                if values[index[pitch]] is None:  # undefined here: no prediction, nothing learnt
                    ltm_dists.append(None)
                    stm_dists.append(None)
                    continue
                context = list(dict.fromkeys(values))
                if uses_ltm:
                    ltm_dists.append(to_cpitch(self.ltms[k].probabilities(alphabet=context), values))
                if uses_stm:
                    stm_dists.append(to_cpitch(stms[k].probabilities(alphabet=context), values))
                learnt.append((k, values[index[pitch]]))
            ltm_d = self._combine(ltm_dists) if uses_ltm else None
            stm_d = self._combine(stm_dists) if uses_stm else None
            for m in models:
                d = ltm_d if m in ("ltm", "ltm+") else stm_d if m == "stm" else combine(
                    [ltm_d, stm_d], self.bias, self.method)
                out[m][0].append(-math.log2(d[index[pitch]]))
                out[m][1].append(_entropy_bits(d))
            for k, symbol in learnt:  # after predicting: the STM (and ltm+) learn, a fixed LTM moves on
                if uses_stm:
                    stms[k].learn(symbol)
                if uses_ltm:
                    if learns:
                        self.ltms[k].learn(symbol)
                    else:
                        _advance(self.ltms[k], symbol)
        if uses_ltm and learns:
            for ltm in self.ltms:
                ltm.end()
        return out
