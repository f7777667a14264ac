"""Baselines a neural melody model must beat: smoothed n-gram models over notes and the majority token.

The n-gram baseline predicts each note from the previous `order` notes with interpolated Witten-Bell
smoothing (the PPM escape method C, blended), one model per attribute as in IDyOM's viewpoints:
pitch, duration, and the inter-onset interval (time from this note's onset to the next one, with an END symbol
after the last note, so a melody's probability includes where it stops, like a model's EOS token).

Examples:
    >>> from hf_melody.evaluation.baselines import NGramNoteModel
    >>> model = NGramNoteModel(order=2).fit([m.notes for m in train])            # doctest: +SKIP
    >>> model.evaluate([m.notes for m in test])["pitch_bits_per_note"]          # doctest: +SKIP
    2.61
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..music import PITCH_RANGE

IDYOM_KINDER_PITCH_BITS = 2.106
"""IDyOM's pitch prediction on the Kinderlieder (Pearce 2005), bits per note."""
ORDER2_KINDER_PITCH_BITS = 2.62
"""An order-2 n-gram on the same data (approximate, from the same literature)."""
PITCH_ALPHABET = tuple(range(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
"""The pitch range of the melody tokenizer: every pitch has probability > 0."""
END = "END"
OTHER = "OTHER"
"""Stands for any duration / interval value never seen in training (one symbol for all of them)."""


class WittenBellNGram:
    """An interpolated Witten-Bell n-gram model over a finite alphabet.

    `P(w | h) = (c(h, w) + T(h) * P(w | h')) / (c(h) + T(h))`, where `c(h)` counts the symbols seen after
    context `h`, `T(h)` how many distinct ones, and `h'` is `h` without its oldest symbol; contexts never seen
    back off to `h'` entirely, and below the empty context is the uniform distribution over the alphabet. At the
    start of a sequence the available (shorter) context is used. Every symbol of the alphabet keeps a
    probability above zero and the probabilities sum to one.

    Examples:
        >>> m = WittenBellNGram(order=1, alphabet="ABC").fit(["ABAB"])
        >>> m.prob("A", ())                    # (2 + 2 * 1/3) / (4 + 2)
        0.4444444444444444
    """

    def __init__(self, order: int, alphabet: Iterable[Hashable]):
        if order < 0:
            raise ConfigError(f"order={order}; an n-gram order is 0 (unigram) or more")
        self.order = order
        self.alphabet = tuple(dict.fromkeys(alphabet))
        if not self.alphabet:
            raise ConfigError("the alphabet is empty")
        self._symbols = set(self.alphabet)
        self.counts: dict[tuple, Counter] = defaultdict(Counter)

    def fit(self, sequences: Iterable[Sequence[Hashable]]) -> WittenBellNGram:
        """Count every symbol after each of its contexts of length 0..order (adds to earlier counts)."""
        for seq in sequences:
            seq = list(seq)
            for i, w in enumerate(seq):
                if w not in self._symbols:
                    raise ConfigError(f"symbol {w!r} is not in the alphabet of this model")
                for k in range(min(self.order, i) + 1):
                    self.counts[tuple(seq[i - k:i])][w] += 1
        return self

    def prob(self, symbol: Hashable, context: Sequence[Hashable]) -> float:
        """P(symbol | the last `order` symbols of `context`)."""
        context = tuple(context)[-self.order:] if self.order else ()
        p = 1.0 / len(self.alphabet)
        for k in range(len(context) + 1):  # from the empty context up to the full one
            counts = self.counts.get(context[len(context) - k:])
            if not counts:
                continue
            total, types = sum(counts.values()), len(counts)
            p = (counts[symbol] + types * p) / (total + types)
        return p

    def bits(self, seq: Sequence[Hashable]) -> list[float]:
        """-log2 P of each symbol of `seq` given the symbols before it."""
        seq = list(seq)
        return [-math.log2(self.prob(w, seq[max(0, i - self.order):i])) for i, w in enumerate(seq)]


def _sorted_notes(notes: Sequence[Sequence[int]]) -> list[tuple[int, int, int]]:
    return sorted((int(o), int(d), int(p)) for o, d, p in notes)


def note_viewpoints(notes: Sequence[Sequence[int]]) -> dict[str, list]:
    """The three symbol sequences of a melody: `pitch`, `duration` and `ioi` (one longer: ends with END).

    The first inter-onset interval is the onset of the first note (a pickup's offset from tick 0).

    Examples:
        >>> note_viewpoints([[0, 480, 60], [480, 240, 62], [960, 480, 64]])["ioi"]
        [0, 480, 480, 'END']
    """
    notes = _sorted_notes(notes)
    onsets = [o for o, _, _ in notes]
    return {
        "pitch": [p for _, _, p in notes],
        "duration": [d for _, d, _ in notes],
        "ioi": [onsets[0], *np.diff(onsets).tolist(), END] if notes else [END],
    }


class NGramNoteModel:
    """Order-k n-gram baseline over notes: pitch, duration and inter-onset interval each predicted from their own
    last `order` values (interpolated Witten-Bell), assumed independent given those contexts.

    `pitch_bits_per_note` is the pitch model's information content per note (the quantity IDyOM reports);
    `bits_per_note` adds duration and timing bits and the END symbol, the counterpart of a token model's total
    bits per note. Durations and intervals never seen in training share one `OTHER` symbol.

    Examples:
        >>> model = NGramNoteModel(order=1).fit([[[0, 480, 60], [480, 480, 62]]])
        >>> round(model.evaluate([[[0, 480, 60], [480, 480, 62]]])["pitch_bits_per_note"], 3)
        1.293
    """

    def __init__(self, order: int = 2):
        self.order = order
        self.models: dict[str, WittenBellNGram] = {}

    def fit(self, melodies: Sequence[Sequence[Sequence[int]]]) -> NGramNoteModel:
        """Train on note lists (`[onset, duration, pitch]` triples)."""
        views = [note_viewpoints(n) for n in melodies if len(n)]
        if not views:
            raise ConfigError("no melodies with notes to fit the n-gram baseline on")
        durations = sorted({d for v in views for d in v["duration"]})
        iois = sorted({i for v in views for i in v["ioi"] if i != END})
        pitches = sorted(set(PITCH_ALPHABET) | {p for v in views for p in v["pitch"]})
        self.models = {
            "pitch": WittenBellNGram(self.order, pitches).fit(v["pitch"] for v in views),
            "duration": WittenBellNGram(self.order, [*durations, OTHER]).fit(v["duration"] for v in views),
            "ioi": WittenBellNGram(self.order, [*iois, END, OTHER]).fit(v["ioi"] for v in views),
        }
        return self

    def _known(self, name: str, seq: list) -> list:
        symbols = self.models[name]._symbols
        return [s if s in symbols else OTHER for s in seq]

    def melody_bits(self, notes: Sequence[Sequence[int]]) -> dict[str, float]:
        """Total bits of one melody: `pitch`, `duration`, `ioi` (END included) and `total`, plus `num_notes`."""
        if not self.models:
            raise ConfigError("fit the n-gram model before scoring melodies")
        views = note_viewpoints(notes)
        pitch_symbols = self.models["pitch"]._symbols
        bad = [p for p in views["pitch"] if p not in pitch_symbols]
        if bad:
            raise ConfigError(f"pitches {bad[:5]} are outside the model's alphabet "
                              f"({min(pitch_symbols)}..{max(pitch_symbols)})")
        out = {name: float(sum(self.models[name].bits(self._known(name, views[name]) if name != "pitch"
                                                      else views[name])))
               for name in ("pitch", "duration", "ioi")}
        out["total"] = out["pitch"] + out["duration"] + out["ioi"]
        out["num_notes"] = len(views["pitch"])
        return out

    def evaluate(self, melodies: Sequence[Sequence[Sequence[int]]]) -> dict[str, Any]:
        """Bits per note over a set of melodies (all notes pooled) and the per-melody values."""
        per = [self.melody_bits(n) for n in melodies if len(n)]
        notes = sum(p["num_notes"] for p in per)
        if not notes:
            raise ConfigError("no notes to evaluate")
        return {
            "pitch_bits_per_note": sum(p["pitch"] for p in per) / notes,
            "bits_per_note": sum(p["total"] for p in per) / notes,
            "duration_bits_per_note": sum(p["duration"] for p in per) / notes,
            "ioi_bits_per_note": sum(p["ioi"] for p in per) / notes,
            "num_notes": notes,
            "num_melodies": len(per),
            "per_melody": per,
        }


def kfold(items: Sequence, folds: int = 10, seed: int = 0) -> list[tuple[list, list]]:
    """`folds` (train, test) pairs: a seeded shuffle cut into near-equal test parts, each item tested once.

    Examples:
        >>> [len(test) for _, test in kfold(list(range(213)), folds=10)]
        [22, 22, 22, 21, 21, 21, 21, 21, 21, 21]
    """
    if not 2 <= folds <= len(items):
        raise ConfigError(f"folds={folds}; use 2..{len(items)} (the number of items)")
    order = np.random.default_rng(seed).permutation(len(items))
    parts = np.array_split(order, folds)
    out = []
    for part in parts:
        test_idx = set(part.tolist())
        out.append(([items[i] for i in order if i not in test_idx], [items[i] for i in sorted(test_idx)]))
    return out


def cross_validate_ngram(melodies: Sequence[Sequence[Sequence[int]]], order: int = 2, folds: int = 10,
                         seed: int = 0) -> dict[str, Any]:
    """k-fold cross-validated n-gram baseline: every melody is scored by a model that never saw it.

    Returns the pooled `pitch_bits_per_note` and `bits_per_note` and the per-fold values.

    Examples:
        >>> cv = cross_validate_ngram([m.notes for m in kinder], order=2)    # doctest: +SKIP
        >>> round(cv["pitch_bits_per_note"], 2)                               # doctest: +SKIP
        2.6
    """
    fold_results, pitch_bits, total_bits, notes = [], 0.0, 0.0, 0
    for train, test in kfold(list(melodies), folds, seed):
        r = NGramNoteModel(order).fit(train).evaluate(test)
        fold_results.append({k: r[k] for k in ("pitch_bits_per_note", "bits_per_note", "num_notes")})
        pitch_bits += r["pitch_bits_per_note"] * r["num_notes"]
        total_bits += r["bits_per_note"] * r["num_notes"]
        notes += r["num_notes"]
    return {"pitch_bits_per_note": pitch_bits / notes, "bits_per_note": total_bits / notes, "order": order,
            "folds": fold_results, "num_notes": notes}


def majority_token_baseline(train_targets: Sequence[Sequence[int]], eval_targets: Sequence[Sequence[int]],
                            vocab_size: int, num_notes: int | None = None) -> dict[str, float]:
    """The majority-token baseline and its probabilistic twin, the add-one unigram model.

    `accuracy` is the share of evaluation tokens equal to the most frequent training token (what always
    predicting it scores); `loss`/`perplexity` are those of the Laplace-smoothed unigram distribution over the
    vocabulary, and `bits_per_note` its total bits divided by `num_notes` when given. Pass the scored tokens only
    (what follows BOS and the style token).

    Examples:
        >>> majority_token_baseline([[5, 5, 6]], [[5, 6]], vocab_size=10)["accuracy"]
        0.5
    """
    counts = np.bincount(np.concatenate([np.asarray(t, dtype=np.int64) for t in train_targets]),
                         minlength=vocab_size).astype(float)
    probs = (counts + 1) / (counts.sum() + vocab_size)
    targets = np.concatenate([np.asarray(t, dtype=np.int64) for t in eval_targets])
    nll = -np.log(probs[targets])
    out = {
        "majority_token": int(counts.argmax()),
        "accuracy": float((targets == counts.argmax()).mean()),
        "loss": float(nll.mean()),
        "perplexity": float(math.exp(nll.mean())),
        "num_tokens": int(len(targets)),
    }
    if num_notes:
        out["bits_per_note"] = float(nll.sum() / math.log(2) / num_notes)
    return out
