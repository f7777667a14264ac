"""Prediction by partial match (PPM*) for pitch, as IDyOM builds its `cpitch` model on it.

IDyOM (Pearce 2005) predicts each note's chromatic pitch with two PPM models and combines them:

- a **long-term model** (LTM) trained on a corpus (in cross-validation: the other folds); `ltm+` also keeps
  learning from the melodies it predicts, after predicting each note;
- a **short-term model** (STM) that starts empty for each melody and learns from it note by note, always after
  predicting the note (it never looks ahead);
- their **combination**: each model's distribution is weighted by its relative entropy raised to `-bias`
  (`w = (H / H_max) ** -bias`, `H_max = log2 |alphabet|`, IDyOM's bias 7) and the distributions are combined
  geometrically (IDyOM's default) or arithmetically.

Each PPM model blends (interpolates) the estimates of every context from the selected one down to order 0 and the
uniform order -1 model, IDyOM's way: at each order the escape weight is `n / (n + T)` where `n` counts the symbols
seen after the context, minus the counts of those seen after the higher-order context (exclusion), and `T` is the
number of distinct symbols seen there (escape method C) or the number seen exactly once plus one (method X); the
order -1 model gives `1 / (|A| + 1 - symbols seen at order 0)`; the blend is normalised to sum to one. Unbounded
order (PPM*): the shortest deterministic context matching the history (one symbol ever followed it) when there is
one, else the longest matching context. Update exclusion (IDyOM's STM default): a symbol's count is raised only in
the contexts of the order it was found at and above (everywhere when it is new); predictions from a deterministic
context use the full counts. IDyOM's defaults: LTM escape C without update exclusion, STM escape X with update
exclusion, both order-unbounded and blended. Sequences end with a sentinel symbol, as in IDyOM's suffix trees (it
makes a context that ended a melody non-deterministic; it is never predicted). Derived viewpoints (intervals, scale
degree, linked viewpoints) predict `cpitch` through one such model each: `evaluation.viewpoints`.

Examples:
    >>> m = PPM("abcdr").fit(["abracadabra"])
    >>> round(sum(m.distribution("abr").values()), 6)
    1.0
    >>> ic, h = cpitch_predictions([60, 62, 64, 62, 60], ltm=None, alphabet=range(60, 66))
    >>> len(ic), round(ic[0], 3)                        # the first note: uniform over the 6 pitches
    (5, 2.585)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError

SENTINEL = "$end"
"""Ends every training sequence, as IDyOM's `$`: counted, never predicted."""
IDYOM_LTM = {"escape": "c", "update_exclusion": False}
IDYOM_STM = {"escape": "x", "update_exclusion": True}
IDYOM_BIAS = 7.0
"""IDyOM's `*ltm-stm-bias*` (geometric combination)."""
PPM_MODELS = ("ltm", "ltm+", "stm", "both", "both+")
"""IDyOM's `:models`: `both` = LTM + STM; `+`: the LTM also learns from the melodies it predicts."""
EXCLUSION_RULES = ("textbook", "idyom")
"""Which counts a PPM* with update exclusion reads. `textbook`: full counts at a selected deterministic context and
every order below it. `idyom`: IDyOM's `ppm-star.lisp` (`get-distribution` / `compute-mixture`): full counts at the
selected deterministic context only, and only when it is shorter than the longest match; update-excluded counts at
every other order, order -1 included. The two differ only for models with update exclusion (IDyOM's STM)."""
IDYOM_STM_CODE = {**IDYOM_STM, "exclusion_rule": "idyom"}
"""IDyOM's STM as its code computes it (`exclusion_rule="idyom"`)."""


class _Node:
    __slots__ = ("count", "excluded", "children")

    def __init__(self):
        self.count = 0        # times this string occurred (full count)
        self.excluded = 0     # its update-excluded count
        self.children: dict[Hashable, _Node] = {}


class PPM:
    """A PPM* model over a finite alphabet: counts of every context (a trie), IDyOM's blending and escapes.

    `fit` adds whole sequences; `start()` / `predict()` / `learn(symbol)` walk one sequence note by note (the
    short-term model and `ltm+`). `order_bound=None` is PPM*; an integer bounds the context length.

    Examples:
        >>> m = PPM("abc", escape="c")
        >>> m.start(); m.learn("a"); m.learn("b")
        >>> round(m.predict()["a"], 4)       # hand-computed in tests/test_analysis.py
        0.4
    """

    def __init__(self, alphabet: Iterable[Hashable], escape: str = "c", update_exclusion: bool = False,
                 order_bound: int | None = None, exclusion_rule: str = "textbook"):
        self.alphabet = tuple(dict.fromkeys(alphabet))
        if not self.alphabet:
            raise ConfigError("the PPM alphabet is empty")
        if escape not in ("c", "x"):
            raise ConfigError(f"escape={escape!r}; IDyOM's escapes here are 'c' and 'x'")
        if order_bound is not None and order_bound < 0:
            raise ConfigError(f"order_bound={order_bound}; use None (PPM*) or an order >= 0")
        if exclusion_rule not in EXCLUSION_RULES:
            raise ConfigError(f"exclusion_rule={exclusion_rule!r}; use one of {', '.join(EXCLUSION_RULES)}")
        self.escape, self.update_exclusion, self.order_bound = escape, update_exclusion, order_bound
        self.exclusion_rule = exclusion_rule
        self._index = {s: i for i, s in enumerate(self.alphabet)}
        self.root = _Node()
        self._active: list[_Node] = [self.root]  # nodes of the current sequence's suffixes, shortest first

    # ---- learning
    def start(self) -> None:
        """Begin a new sequence: the history is empty."""
        self._active = [self.root]

    def learn(self, symbol: Hashable) -> None:
        """Add `symbol` after the current history (every suffix's count), then extend the history by it."""
        if symbol not in self._index and symbol != SENTINEL:
            raise ConfigError(f"symbol {symbol!r} is not in the PPM alphabet")
        active = self._active if self.order_bound is None else self._active[:self.order_bound + 1]
        found = [n.children.get(symbol) for n in active]
        # update exclusion: the highest order at which the symbol had been seen; counts go up from there
        seen = [k for k, c in enumerate(found) if c is not None and c.count > 0]
        top = seen[-1] if seen else 0
        children = []
        for k, (node, child) in enumerate(zip(active, found, strict=True)):
            if child is None:
                child = node.children[symbol] = _Node()
            child.count += 1
            if k >= top:
                child.excluded += 1
            children.append(child)
        self._active = [self.root, *children]

    def end(self) -> None:
        """Close the current sequence with the sentinel (as IDyOM does after each training melody)."""
        self.learn(SENTINEL)
        self.start()

    def fit(self, sequences: Iterable[Sequence[Hashable]]) -> PPM:
        """Add whole sequences (each closed by the sentinel)."""
        for seq in sequences:
            self.start()
            for s in seq:
                self.learn(s)
            self.end()
        return self

    # ---- prediction
    def _matching(self, history: Sequence[Hashable] | None) -> list[_Node]:
        """Nodes of the contexts matching the history's suffixes, shortest (order 0) first."""
        if history is None:
            return [n for n in self._active if n.children or n is self.root]
        nodes, node = [self.root], self.root
        hist = list(history)
        for k in range(1, len(hist) + 1):  # node of hist[-k:], walked from the root
            node = self.root
            for s in hist[-k:]:
                node = node.children.get(s)
                if node is None:
                    return nodes
            nodes.append(node)
        return nodes

    def predict(self, history: Sequence[Hashable] | None = None) -> dict[Hashable, float]:
        """P(next symbol | history) over the alphabet (default history: the current sequence)."""
        probs = self.probabilities(history)
        return dict(zip(self.alphabet, probs.tolist(), strict=True))

    distribution = predict

    def probabilities(self, history: Sequence[Hashable] | None = None,
                      alphabet: Sequence[Hashable] | None = None) -> np.ndarray:
        """`predict` as an array in alphabet order. `alphabet`: predict over these symbols only (a subset of the
        model's, in this order), as IDyOM sets a derived viewpoint's alphabet from the context before each note:
        counts of other symbols are ignored and the order -1 model is uniform over the subset."""
        index = self._index if alphabet is None else self._subset(alphabet)
        nodes = self._matching(history)
        if self.order_bound is not None:
            nodes = nodes[:self.order_bound + 1]
        # PPM*: the shortest deterministic context above order 0, else the longest one
        selected = len(nodes) - 1
        deterministic = [k for k in range(1, len(nodes)) if self._types(nodes[k], False, sentinel=True) == 1]
        use_excluded = below = self.update_exclusion
        if self.exclusion_rule == "idyom":  # ppm-star.lisp: full counts at the selected state only, and only
            if self.order_bound is None and deterministic and deterministic[0] < selected:  # below the top
                selected, use_excluded = deterministic[0], False
        elif self.order_bound is None and deterministic:
            selected, use_excluded = deterministic[0], False
            below = False
        a = len(index)
        dist = np.zeros(a)
        escape, excluded = 1.0, set()
        for k in range(selected, -1, -1):
            counts = self._counts(nodes[k], use_excluded if k == selected else below, index)
            if counts:
                n = sum(c for s, c in counts.items() if s not in excluded)
                types = len(counts) if self.escape == "c" else sum(c == 1 for c in counts.values()) + 1
                w = n / (n + types) if n + types > 0 else 0.0
                if n > 0:
                    for s, c in counts.items():
                        dist[index[s]] += escape * w * c / n
                escape *= 1.0 - w
                excluded = set(counts)
        root_types = len(self._counts(self.root, use_excluded if selected == 0 else below, index))
        dist += escape / (a + 1 - root_types)
        return dist / dist.sum()

    def _subset(self, alphabet: Sequence[Hashable]) -> dict[Hashable, int]:
        unknown = [s for s in alphabet if s not in self._index]
        if unknown:
            raise ConfigError(f"symbols {unknown[:5]} are not in the PPM alphabet; build the PPM over a superset")
        return {s: i for i, s in enumerate(alphabet)}

    def _counts(self, node: _Node, use_excluded: bool, index: dict[Hashable, int] | None = None) -> dict[Hashable, int]:
        index = self._index if index is None else index
        out = {}
        for s, child in node.children.items():
            if s in index:
                c = child.excluded if use_excluded else child.count
                if c > 0:
                    out[s] = c
        return out

    def _types(self, node: _Node, use_excluded: bool, sentinel: bool = False) -> int:
        return sum(1 for s, c in node.children.items() if c.count > 0 and (s in self._index or sentinel))


def _entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def combine(dists: Sequence[np.ndarray], bias: float = IDYOM_BIAS, method: str = "geometric") -> np.ndarray:
    """IDyOM's entropy-weighted combination: weight `(H / H_max) ** -bias` per distribution, then a weighted
    geometric (normalised product of powers) or arithmetic mean.

    Examples:
        >>> combine([np.array([0.5, 0.5]), np.array([0.9, 0.1])], bias=0.0, method="arithmetic").round(2).tolist()
        [0.7, 0.3]
    """
    if method not in ("geometric", "arithmetic"):
        raise ConfigError(f"method={method!r}; use 'geometric' or 'arithmetic'")
    h_max = math.log2(len(dists[0])) or 1.0
    weights = np.array([max(_entropy_bits(d) / h_max, 1e-12) ** -bias for d in dists])
    weights /= weights.sum()
    if method == "arithmetic":
        out = sum(w * d for w, d in zip(weights, dists, strict=True))
    else:
        out = np.exp(sum(w * np.log(np.maximum(d, 1e-300)) for w, d in zip(weights, dists, strict=True)))
    return out / out.sum()


def cpitch_predictions(pitches: Sequence[int], ltm: PPM | None = None, stm: bool = True,
                       alphabet: Iterable[int] | None = None, ltm_learns: bool = False, bias: float = IDYOM_BIAS,
                       method: str = "geometric", stm_options: dict[str, Any] | None = None,
                       ltm_dists: Sequence[np.ndarray] | None = None) -> tuple[list[float], list[float]]:
    """`(information content, entropy)` in bits of each pitch of one melody, from its past only.

    `ltm`: a trained long-term model (None: none); `stm`: also a short-term model that learns this melody as it
    goes (after each note is predicted); both: combined by `combine`. `ltm_learns` (IDyOM's `ltm+`): the LTM
    learns each note after predicting it (kept for the next melodies). `ltm_dists`: distributions of another
    long-term predictor (e.g. a neural model, one array over `alphabet` per note) to combine with the STM instead.

    Examples:
        >>> ic, h = cpitch_predictions([60, 60, 60], alphabet=[60, 62])
        >>> [round(x, 3) for x in ic]
        [1.0, 0.585, 0.585]
    """
    alphabet = tuple(ltm.alphabet if ltm is not None else alphabet if alphabet is not None else sorted(set(pitches)))
    if ltm is None and not stm and ltm_dists is None:
        raise ConfigError("no model to predict with: give an LTM, stm=True, or both")
    index = {p: i for i, p in enumerate(alphabet)}
    missing = sorted({p for p in pitches if p not in index})
    if missing:
        raise ConfigError(f"pitches {missing[:5]} are not in the PPM alphabet ({len(alphabet)} pitches)")
    short = PPM(alphabet, **{**IDYOM_STM, **(stm_options or {})}) if stm else None
    if ltm is not None:
        ltm.start()
    ics, hs = [], []
    for i, p in enumerate(pitches):
        dists = []
        if ltm is not None:
            dists.append(ltm.probabilities())
        if ltm_dists is not None:
            dists.append(np.asarray(ltm_dists[i], dtype=float))
        if short is not None:
            dists.append(short.probabilities())
        d = dists[0] if len(dists) == 1 else combine(dists, bias, method)
        ics.append(-math.log2(d[index[p]]))
        hs.append(_entropy_bits(d))
        if short is not None:
            short.learn(p)
        if ltm is not None:
            if ltm_learns:
                ltm.learn(p)
            else:
                _advance(ltm, p)
    if ltm is not None and ltm_learns:
        ltm.end()
    return ics, hs


def _advance(model: PPM, symbol: Hashable) -> None:
    """Extend a fixed model's history by `symbol` without counting it (the contexts that exist stay matched)."""
    model._active = [model.root, *(c for n in model._active if (c := n.children.get(symbol)) is not None)]


def ppm_alphabet(melodies) -> list[int]:
    """IDyOM's cpitch alphabet: every pitch that occurs in the melodies (training and test sets together)."""
    return sorted({int(p) for m in melodies for _, _, p in m.notes})


def cross_validate_ppm(melodies, folds: int = 10, seed: int = 0, models: Sequence[str] = ("ltm", "stm", "both"),
                       bias: float = IDYOM_BIAS, method: str = "geometric",
                       viewpoints: str | Sequence[str] | None = None,
                       stm_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """k-fold cross-validated PPM cpitch models on IDyOM's protocol (the folds of `baselines.kfold`; the LTM is
    trained on the other folds; the alphabet is every pitch of the corpus). Returns, per model, the pooled
    `pitch_bits_per_note` and the per-fold values, and `per_note` (melody id, IC) for each model.
    `viewpoints` (e.g. `"cpint,cpintfref"`): predict through those viewpoints (`evaluation.viewpoints`, a
    multiple-viewpoint system, the tonic from each melody's key) instead of the single `cpitch` PPM.
    `stm_options`: override IDyOM's STM settings, e.g. `{"exclusion_rule": "idyom"}` (`EXCLUSION_RULES`).

    Examples:
        >>> cv = cross_validate_ppm(kinder, models=("ltm", "stm", "both"))          # doctest: +SKIP
        >>> round(cv["both"]["pitch_bits_per_note"], 2)                            # doctest: +SKIP
        >>> cross_validate_ppm(kinder, models=("both+",), viewpoints="cpint,cpintfref")   # doctest: +SKIP
    """
    from .baselines import kfold
    from .viewpoints import ViewpointSystem, melody_pitches

    unknown = set(models) - set(PPM_MODELS)
    if unknown:
        raise ConfigError(f"unknown PPM models {sorted(unknown)}; choose from {', '.join(PPM_MODELS)}")
    alphabet = ppm_alphabet(melodies)
    out: dict[str, Any] = {"alphabet_size": len(alphabet), "folds": folds, "seed": seed, "bias": bias,
                           "combination": method, "stm": {**IDYOM_STM, **(stm_options or {})}}
    if viewpoints is not None:
        out["viewpoints"] = [v.name for v in ViewpointSystem(viewpoints, alphabet).viewpoints]
    for name in models:
        fold_bits, total, notes, per_note = [], 0.0, 0, []
        for train, test in kfold(list(melodies), folds, seed):
            ltm = system = None
            if viewpoints is not None:
                system = ViewpointSystem(viewpoints, alphabet, bias=bias, method=method, stm_options=stm_options)
                if name != "stm":
                    system.fit(melody_pitches(m) for m in train)
            elif name != "stm":
                ltm = PPM(alphabet, **IDYOM_LTM).fit([[p for _, _, p in m.notes] for m in train])
            bits = 0.0
            n = 0
            for m in test:
                pitches = [p for _, _, p in sorted(m.notes)]
                if system is not None:
                    ic = system.predict(pitches, melody_pitches(m)[1], models=(name,))[name][0]
                else:
                    ic, _ = cpitch_predictions(pitches, ltm=ltm, stm=name in ("stm", "both", "both+"),
                                               alphabet=alphabet, ltm_learns=name.endswith("+"), bias=bias,
                                               method=method, stm_options=stm_options)
                bits += sum(ic)
                n += len(ic)
                per_note += [(m.id, k, x) for k, x in enumerate(ic)]
            fold_bits.append(bits / n)
            total += bits
            notes += n
        out[name] = {"pitch_bits_per_note": total / notes, "per_fold": fold_bits, "num_notes": notes,
                     "per_note": per_note}
    return out
