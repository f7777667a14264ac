"""How much generated melodies share with real ones: BLEU over token n-grams, self-BLEU, and copy detection
(longest note n-gram shared with the training data).

Examples:
    >>> from hf_melody.evaluation.similarity import corpus_bleu, self_bleu, novelty
    >>> corpus_bleu([[1, 2, 3, 4, 5]], [[1, 2, 3, 4, 5]])["bleu"]
    1.0
    >>> report = novelty(generated_notes, training_notes)          # doctest: +SKIP
    >>> report["copy_rate"]                                         # doctest: +SKIP
    0.0
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from .statistics import num_bars

SMOOTHING = ("none", "floor", "add-k")
FLOOR_EPSILON = 0.1


# ----------------------------------------------------------------------------------------------------------------
# BLEU
# ----------------------------------------------------------------------------------------------------------------
def _ngrams(seq: Sequence[Hashable], n: int) -> Counter:
    return Counter(tuple(seq[i:i + n]) for i in range(len(seq) - n + 1))


def _closest_length(refs: Sequence[int], length: int) -> int:
    return min(refs, key=lambda r: (abs(r - length), r))


def _bleu_from_counts(matches: list[int], possible: list[int], pred_len: int, ref_len: int, smooth: str
                      ) -> dict[str, Any]:
    precisions = []
    for n, (m, p) in enumerate(zip(matches, possible, strict=True), start=1):
        if p == 0:  # every prediction is shorter than n: this order is left out (effective order)
            continue
        if smooth == "add-k" and n > 1:
            precisions.append((m + 1) / (p + 1))
        elif smooth == "floor" and m == 0:
            precisions.append(FLOOR_EPSILON / p)
        else:
            precisions.append(m / p)
    if not precisions or min(precisions) == 0:
        geo = 0.0
    else:
        geo = math.exp(sum(math.log(p) for p in precisions) / len(precisions))
    if pred_len == 0:
        bp = 0.0
    else:
        bp = 1.0 if pred_len > ref_len else math.exp(1 - ref_len / pred_len)
    return {"bleu": geo * bp, "precisions": precisions, "brevity_penalty": bp, "length_ratio":
            pred_len / ref_len if ref_len else float("nan"), "prediction_length": pred_len,
            "reference_length": ref_len}


def corpus_bleu(predictions: Sequence[Sequence[Hashable]], references: Sequence[Sequence[Hashable]] |
                Sequence[Sequence[Sequence[Hashable]]], max_order: int = 4, smooth: str = "floor"
                ) -> dict[str, Any]:
    """Corpus BLEU (Papineni et al. 2002) over token n-grams, n = 1..`max_order`.

    Each prediction (a generated continuation, as token ids or token strings) is scored against the reference
    (the real continuation of the same prompt), or against several references (a list of sequences per
    prediction). Clipped n-gram matches and candidate n-grams are summed over the corpus, the geometric mean of
    the precisions is multiplied by the brevity penalty `exp(1 - r/c)` (c: total prediction length, r: total
    closest reference length; 1 when c > r).

    Smoothing (`smooth`): `"floor"` (default; Chen & Cherry 2014 method 1) replaces a zero match count by
    0.1, so one missing order does not zero the score and nothing changes when every order matches; `"add-k"`
    adds 1 to matches and counts for n >= 2 (Lin & Och 2004); `"none"` is the plain definition. Orders longer
    than every prediction are left out (effective order), so identical short sequences still score 1.0.

    What it means: how much of the local token patterns (a position + pitch + duration, a bar line ...) of the
    real continuations the model reproduces. What it does not mean: musical quality. Many good continuations of
    a prompt exist and score low; a model that copies common figures scores high. Compare models on the same
    prompts and tokenizer only (BPE ids must be expanded to base tokens first).

    Examples:
        >>> corpus_bleu([[1, 2, 3, 4]], [[1, 2, 3, 4]])["bleu"]
        1.0
        >>> round(corpus_bleu([[1, 2, 3, 4]], [[[1, 2, 3, 5], [9, 2, 3, 4]]])["bleu"], 4)  # no 4-gram: 0.1 ** (1/4)
        0.5623
    """
    if smooth not in SMOOTHING:
        raise ConfigError(f"smooth={smooth!r}; choose one of {SMOOTHING}")
    if len(predictions) != len(references):
        raise ConfigError(f"{len(predictions)} predictions but {len(references)} references; give one reference "
                          "(or one list of references) per prediction")
    matches, possible = [0] * max_order, [0] * max_order
    pred_len = ref_len = 0
    for pred, refs in zip(predictions, references, strict=True):
        refs = [refs] if len(refs) == 0 or not isinstance(refs[0], list | tuple | np.ndarray) else refs
        pred = list(pred)
        refs = [list(r) for r in refs]
        pred_len += len(pred)
        ref_len += _closest_length([len(r) for r in refs], len(pred))
        for n in range(1, max_order + 1):
            counts = _ngrams(pred, n)
            max_ref: Counter = Counter()
            for r in refs:
                max_ref |= _ngrams(r, n)
            matches[n - 1] += sum(min(c, max_ref[g]) for g, c in counts.items())
            possible[n - 1] += max(len(pred) - n + 1, 0)
    return _bleu_from_counts(matches, possible, pred_len, ref_len, smooth)


def self_bleu(predictions: Sequence[Sequence[Hashable]], max_order: int = 4, smooth: str = "floor") -> float:
    """Self-BLEU (Zhu et al. 2018): mean BLEU of each sample against all the other samples as references.

    High values mean the samples repeat each other (low diversity); it says nothing about quality, and grows
    with the number of samples, so compare sets of equal size.

    Examples:
        >>> self_bleu([[1, 2, 3, 4], [1, 2, 3, 4]])
        1.0
    """
    if len(predictions) < 2:
        raise ConfigError("self-BLEU needs at least two samples")
    preds = [list(p) for p in predictions]
    # per n-gram the two largest counts and the sample holding the largest: max over "all others" in O(1)
    top: list[dict[tuple, tuple[int, int, int]]] = []
    per_sample = [[_ngrams(p, n) for n in range(1, max_order + 1)] for p in preds]
    for n in range(max_order):
        best: dict[tuple, tuple[int, int, int]] = {}
        for i, counters in enumerate(per_sample):
            for g, c in counters[n].items():
                m1, owner, m2 = best.get(g, (0, -1, 0))
                best[g] = (c, i, m1) if c > m1 else (m1, owner, max(m2, c))
        top.append(best)
    lengths = [len(p) for p in preds]
    scores = []
    for i, pred in enumerate(preds):
        matches, possible = [], []
        for n in range(max_order):
            m = 0
            for g, c in per_sample[i][n].items():
                m1, owner, m2 = top[n][g]
                m += min(c, m2 if owner == i else m1)
            matches.append(m)
            possible.append(max(len(pred) - n, 0))
        others = lengths[:i] + lengths[i + 1:]
        scores.append(_bleu_from_counts(matches, possible, len(pred), _closest_length(others, len(pred)),
                                        smooth)["bleu"])
    return float(np.mean(scores))


# ----------------------------------------------------------------------------------------------------------------
# novelty: longest note n-gram shared with the training data
# ----------------------------------------------------------------------------------------------------------------
_BASE = np.uint64(0x9E3779B97F4A7C15)


def _events(notes: Sequence[Sequence[int]], transposition_invariant: bool) -> list[int]:
    """Integer codes of (pitch, duration), or of (interval, duration) with a no-match code first."""
    notes = sorted((int(o), int(d), int(p)) for o, d, p in notes)
    if not transposition_invariant:
        return [p * 1_000_003 + d + 1 for _, d, p in notes]
    out = []
    for i, (_, d, p) in enumerate(notes):
        out.append((p - notes[i - 1][2] + 200) * 1_000_003 + d + 1 if i else -(len(out) + 1))
    return out


def _prefix_hashes(codes: np.ndarray) -> np.ndarray:
    """h[0] = 0, h[i+1] = h[i] * B + mix(code_i) (mod 2^64)."""
    mixed = (codes.astype(np.int64).view(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)) ^ np.uint64(0x94D049BB133111EB)
    h = np.zeros(len(codes) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i, x in enumerate(mixed):
            h[i + 1] = h[i] * _BASE + x
    return h


def _window_hashes(h: np.ndarray, length: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return h[length:] - h[:-length] * (_BASE ** np.uint64(length))


class NoteNGramIndex:
    """All note n-grams of a training corpus, for fast "longest shared n-gram" queries (rolling hashes).

    A note is its (pitch, duration) pair, or (interval to the previous note, duration) with
    `transposition_invariant=True`. Hash collisions are possible but have probability about 2^-64 per pair.

    Examples:
        >>> index = NoteNGramIndex([[[0, 480, 60], [480, 480, 62], [960, 480, 64]]])
        >>> index.longest_shared([[0, 240, 55], [240, 480, 60], [720, 480, 62]])
        (2, 0)
    """

    def __init__(self, training_notes: Sequence[Sequence[Sequence[int]]], transposition_invariant: bool = False):
        self.transposition_invariant = transposition_invariant
        codes, owners = [], []
        for k, notes in enumerate(training_notes):
            ev = _events(notes, transposition_invariant)
            codes += ev
            owners += [k] * len(ev)
        self._codes = np.asarray(codes, dtype=np.int64)
        self._owner = np.asarray(owners, dtype=np.int64)
        self._h = _prefix_hashes(self._codes)
        self._sorted: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _table(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted hashes of all training windows of `length` notes (not crossing melodies) and their owners."""
        if length not in self._sorted:
            if length > len(self._codes):
                self._sorted[length] = (np.zeros(0, np.uint64), np.zeros(0, np.int64))
            else:
                hashes = _window_hashes(self._h, length)
                start_owner = self._owner[:len(hashes)]
                valid = start_owner == self._owner[length - 1:]
                if self.transposition_invariant:  # the first event of a melody carries no interval
                    valid &= self._codes[:len(hashes)] > 0
                order = np.argsort(hashes[valid], kind="stable")
                self._sorted[length] = (hashes[valid][order], start_owner[valid][order])
        return self._sorted[length]

    def _find(self, query_h: np.ndarray, query_codes: np.ndarray, length: int) -> int:
        """Owner of a training window equal to some query window of `length`, or -1."""
        hashes, owners = self._table(length)
        if len(hashes) == 0:
            return -1
        q = _window_hashes(query_h, length)
        if self.transposition_invariant:
            q = q[query_codes[:len(q)] > 0]
        pos = np.searchsorted(hashes, q)
        pos = np.minimum(pos, len(hashes) - 1)
        hit = np.nonzero(hashes[pos] == q)[0]
        return int(owners[pos[hit[0]]]) if len(hit) else -1

    def longest_shared(self, notes: Sequence[Sequence[int]]) -> tuple[int, int]:
        """`(length, training index)` of the longest note n-gram of `notes` found in the training data
        (`(0, -1)` when not even one note is shared)."""
        codes = np.asarray(_events(notes, self.transposition_invariant), dtype=np.int64)
        if len(codes) == 0:
            return 0, -1
        h = _prefix_hashes(codes)
        lo, hi, owner = 0, len(codes), -1
        while lo < hi:  # largest length with a match; matches are monotone in length
            mid = (lo + hi + 1) // 2
            found = self._find(h, codes, mid)
            if found >= 0:
                lo, owner = mid, found
            else:
                hi = mid - 1
        return lo, owner


def novelty(generated: Sequence[Sequence[Sequence[int]]], training: Sequence[Sequence[Sequence[int]]] |
            NoteNGramIndex, time_signatures: Sequence[Sequence[Sequence[int]]] | None = None, min_bars: float = 8,
            transposition_invariant: bool = False, training_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """Does each generated melody copy the training data?

    For every generated melody: the longest run of consecutive notes (pitch + duration) that also occurs in
    some training melody. A sample counts as a copy when that run covers at least `min_bars` bars, measured in
    notes as `min_bars x` the sample's own notes per bar (its notes divided by the bars it spans); a sample
    shorter than `min_bars` bars is never a copy.

    Returns `longest_shared` (per sample, in notes), `longest_shared_bars` (the same in bars of the sample),
    `copied` (per sample), `sources` (training index or id of the longest match), `copy_rate` (share of copies),
    and the mean longest run.

    Examples:
        >>> report = novelty([m.notes for m in samples], [m.notes for m in train])     # doctest: +SKIP
        >>> report["copy_rate"], report["mean_longest_shared"]                       # doctest: +SKIP
        (0.0, 6.2)
    """

    index = training if isinstance(training, NoteNGramIndex) else NoteNGramIndex(training, transposition_invariant)
    tss = time_signatures or [None] * len(generated)
    lengths, bars_shared, copied, sources = [], [], [], []
    for notes, ts in zip(generated, tss, strict=True):
        length, owner = index.longest_shared(notes)
        bars = num_bars(notes, ts)
        per_bar = len(notes) / bars if bars else float("inf")
        lengths.append(length)
        bars_shared.append(length / per_bar if per_bar else 0.0)
        copied.append(bool(bars >= min_bars and length >= min_bars * per_bar))
        sources.append(training_ids[owner] if training_ids is not None and owner >= 0 else owner)
    return {
        "longest_shared": lengths,
        "longest_shared_bars": bars_shared,
        "copied": copied,
        "sources": sources,
        "copy_rate": float(np.mean(copied)) if copied else float("nan"),
        "mean_longest_shared": float(np.mean(lengths)) if lengths else float("nan"),
        "max_longest_shared": int(max(lengths)) if lengths else 0,
        "min_bars": min_bars,
    }
