"""Music statistics of melodies (pitch, rhythm, tonality) and how close two sets of melodies are in each of them.

Every statistic works on plain note lists, `[onset, duration, pitch]` in ticks at `music.TPQ` (480) per quarter, so
generated and real melodies are measured the same way whatever tokenizer produced them.

Examples:
    >>> from hf_melody.evaluation.statistics import melody_statistics, compare_sets
    >>> stats = melody_statistics([[0, 480, 60], [480, 480, 62], [960, 960, 64]], [[0, 4, 4]])
    >>> stats["pitch_range"], stats["in_key_ratio"]
    (4, 1.0)
    >>> report = compare_sets(generated_notes, reference_notes)          # doctest: +SKIP
    >>> report["overlap"]["pitch_range"]                                # doctest: +SKIP
    0.81
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..harmony.inference import chord_tone_ratios, infer_chords
from ..music import GRID, MODES, NOTE_NAMES, TPQ, bar_ticks

NoteList = Sequence[Sequence[int]]
TimeSignatures = Sequence[Sequence[int]]

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)

NOTE_LENGTH_CLASSES: tuple[tuple[str, int], ...] = (
    ("whole", 4 * TPQ), ("half", 2 * TPQ), ("quarter", TPQ), ("8th", TPQ // 2), ("16th", TPQ // 4),
    ("dotted half", 3 * TPQ), ("dotted quarter", 3 * TPQ // 2), ("dotted 8th", 3 * TPQ // 4),
    ("dotted 16th", 3 * TPQ // 8), ("half triplet", 4 * TPQ // 3), ("quarter triplet", 2 * TPQ // 3),
    ("8th triplet", TPQ // 3),
)
"""The 12 note-length classes of Yang & Lerch (2020); a duration counts for the class nearest to it."""

SCALAR_FEATURES = ("pitch_class_entropy", "scale_consistency", "groove_consistency", "empty_beat_rate",
                   "pitch_range", "mean_abs_interval", "in_key_ratio")
CHORD_FEATURES = ("strong_beat_chord_tone_ratio", "chord_tone_ratio")
"""With `chords=` (a progression, or "infer" for the melody's own best-fit chords): the share of notes on a chord
tone, of those on a strong beat and of all (`hf_melody.harmony.inference.chord_tone_ratios`)."""
VECTOR_FEATURES = ("note_length_hist",)
FEATURES = SCALAR_FEATURES + VECTOR_FEATURES


# ----------------------------------------------------------------------------------------------------------------
# bars and beats
# ----------------------------------------------------------------------------------------------------------------
def _ts_list(time_signatures: TimeSignatures | None) -> list[tuple[int, int, int]]:
    tss = sorted((int(t), int(n), int(d)) for t, n, d in (time_signatures or [[0, 4, 4]]))
    if tss[0][0] > 0:
        tss.insert(0, (0, tss[0][1], tss[0][2]))
    return tss


def bar_starts(time_signatures: TimeSignatures | None, end: int, tpq: int = TPQ) -> list[tuple[int, int]]:
    """`(start_tick, length_ticks)` of every bar up to `end` (time-signature changes are taken at bar lines).

    Examples:
        >>> bar_starts([[0, 3, 4]], end=2000)
        [(0, 1440), (1440, 1440)]
    """
    tss = _ts_list(time_signatures)
    bars = []
    tick = 0
    i = 0
    while tick < end:
        while i + 1 < len(tss) and tss[i + 1][0] <= tick:
            i += 1
        _, num, den = tss[i]
        length = max(1, bar_ticks(num, den, tpq))
        bars.append((tick, length))
        tick += length
    return bars


def num_bars(notes: NoteList, time_signatures: TimeSignatures | None = None) -> int:
    """How many bars a melody spans (from tick 0 to the end of its last note)."""
    if not notes:
        return 0
    return len(bar_starts(time_signatures, max(o + d for o, d, _ in notes)))


# ----------------------------------------------------------------------------------------------------------------
# key
# ----------------------------------------------------------------------------------------------------------------
def pitch_class_histogram(notes: NoteList, weight_by_duration: bool = False) -> np.ndarray:
    """12 counts (or total durations) of the pitch classes C..B."""
    hist = np.zeros(12)
    for _, dur, pitch in notes:
        hist[int(pitch) % 12] += dur if weight_by_duration else 1
    return hist


def estimate_key(notes: NoteList) -> tuple[int, str, float]:
    """Krumhansl-Schmuckler key finding: `(tonic pitch class, "major" | "minor", correlation)`.

    Correlates the duration-weighted pitch-class distribution with the 24 rotated Krumhansl-Kessler profiles
    and returns the best one (ties go to the first: C major before C# major ... before minor keys).

    Examples:
        >>> estimate_key([[0, 480, 60], [480, 480, 64], [960, 480, 67], [1440, 960, 60]])[:2]
        (0, 'major')
    """
    hist = pitch_class_histogram(notes, weight_by_duration=True)
    if not hist.any():
        return 0, "major", float("nan")
    best = (0, "major", -2.0)
    for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            p = np.roll(np.asarray(profile), tonic)
            if hist.std() == 0:
                r = 0.0
            else:
                r = float(np.corrcoef(hist, p)[0, 1])
            if r > best[2]:
                best = (tonic, mode, r)
    return best


def key_name(tonic: int, mode: str) -> str:
    """`(9, "minor")` -> `"A minor"`."""
    return f"{NOTE_NAMES[tonic % 12]} {mode}"


def _scale(tonic: int, mode: str) -> set[int]:
    # major or natural minor, as in MusPy's scale consistency; the same scales decide the in-key ratio
    return {(tonic + s) % 12 for s in MODES["major" if mode == "major" else "minor"]}


# ----------------------------------------------------------------------------------------------------------------
# single statistics
# ----------------------------------------------------------------------------------------------------------------
def pitch_class_entropy(notes: NoteList) -> float:
    """Shannon entropy (bits) of the pitch-class histogram by note count: 0 for one pitch class, log2(12) max."""
    hist = pitch_class_histogram(notes)
    total = hist.sum()
    if total == 0:
        return float("nan")
    p = hist[hist > 0] / total
    return float(-(p * np.log2(p)).sum())


def scale_consistency(notes: NoteList) -> float:
    """Largest share of notes inside one of the 24 major / natural-minor scales (MusPy's definition)."""
    if not notes:
        return float("nan")
    pcs = [int(p) % 12 for _, _, p in notes]
    best = 0
    for mode in ("major", "minor"):
        for tonic in range(12):
            scale = _scale(tonic, mode)
            best = max(best, sum(pc in scale for pc in pcs))
    return best / len(pcs)


def in_key_ratio(notes: NoteList) -> float:
    """Share of notes inside the scale of the Krumhansl-Schmuckler key of the melody itself."""
    if not notes:
        return float("nan")
    tonic, mode, _ = estimate_key(notes)
    scale = _scale(tonic, mode)
    return sum(int(p) % 12 in scale for _, _, p in notes) / len(notes)


def groove_consistency(notes: NoteList, time_signatures: TimeSignatures | None = None) -> float:
    """1 - mean Hamming distance between the onset patterns (16th grid) of neighbouring bars, divided by the
    bar's grid length (Wu & Yang 2020, as in MusPy). Pairs of bars of different lengths are skipped; NaN when
    fewer than two bars.
    """
    if not notes:
        return float("nan")
    bars = bar_starts(time_signatures, max(o + d for o, d, _ in notes))
    patterns = []
    for start, length in bars:
        steps = max(1, length // GRID)
        pat = np.zeros(steps, dtype=bool)
        for onset, _, _ in notes:
            if start <= onset < start + length:
                pat[min(steps - 1, (onset - start) // GRID)] = True
        patterns.append(pat)
    dists = [np.logical_xor(a, b).sum() / len(a) for a, b in zip(patterns, patterns[1:], strict=False)
             if len(a) == len(b)]
    return float(1 - np.mean(dists)) if dists else float("nan")


def empty_beat_rate(notes: NoteList, time_signatures: TimeSignatures | None = None) -> float:
    """Share of beats in which no note sounds (beats of the time signature: quarters in 4/4, eighths in 6/8),
    from tick 0 to the end of the last note."""
    if not notes:
        return float("nan")
    end = max(o + d for o, d, _ in notes)
    beats = []
    for start, length in bar_starts(time_signatures, end):
        tss = [ts for ts in _ts_list(time_signatures) if ts[0] <= start]
        beat = max(1, bar_ticks(1, tss[-1][2]))
        beats += [(b, min(b + beat, start + length)) for b in range(start, start + length, beat) if b < end]
    if not beats:
        return float("nan")
    empty = sum(not any(o < b_end and o + d > b_start for o, d, _ in notes) for b_start, b_end in beats)
    return empty / len(beats)


def pitch_range(notes: NoteList) -> int:
    """Highest minus lowest pitch in semitones (0 for an empty melody)."""
    if not notes:
        return 0
    pitches = [int(p) for _, _, p in notes]
    return max(pitches) - min(pitches)


def mean_abs_interval(notes: NoteList) -> float:
    """Mean absolute interval in semitones between consecutive notes (NaN below two notes)."""
    pitches = [int(p) for _, _, p in notes]
    if len(pitches) < 2:
        return float("nan")
    return float(np.mean(np.abs(np.diff(pitches))))


def note_length_histogram(notes: NoteList) -> np.ndarray:
    """Normalised 12-bin histogram over `NOTE_LENGTH_CLASSES` (each duration goes to the nearest class)."""
    lengths = np.array([length for _, length in NOTE_LENGTH_CLASSES])
    hist = np.zeros(len(lengths))
    for _, dur, _ in notes:
        hist[int(np.argmin(np.abs(lengths - dur)))] += 1
    return hist / hist.sum() if hist.sum() else hist


def chord_statistics(notes: NoteList, time_signatures: TimeSignatures | None = None, chords: str = "infer"
                     ) -> dict[str, Any]:
    """`CHORD_FEATURES` of a melody over `chords` (the progression from bar 0, repeated), or over the chords inferred
    from the melody itself (`chords="infer"`: per bar, `harmony.inference.infer_chords`), with the chords used.

    Examples:
        >>> chord_statistics([[0, 480, 60], [480, 480, 62], [960, 960, 64]], [[0, 4, 4]], chords="C")
        {'strong_beat_chord_tone_ratio': 1.0, 'chord_tone_ratio': 0.6666666666666666, 'chords': 'C'}
    """
    tss = [list(t) for t in time_signatures] if time_signatures else None
    used = infer_chords(notes, tss) if chords == "infer" else chords
    if not used:
        return {**dict.fromkeys(CHORD_FEATURES, float("nan")), "chords": used}
    return {**chord_tone_ratios(notes, used, tss), "chords": used}


def melody_statistics(notes: NoteList, time_signatures: TimeSignatures | None = None,
                      chords: str | None = None) -> dict[str, Any]:
    """All statistics of one melody, plus its estimated key, note count and bar count; with `chords` (a
    progression or "infer") also `chord_statistics`.

    Examples:
        >>> s = melody_statistics([[0, 480, 60], [480, 480, 64], [960, 960, 67]], [[0, 4, 4]])
        >>> s["key"], s["mean_abs_interval"], s["empty_beat_rate"]
        ('C major', 3.5, 0.0)
    """
    notes = sorted((int(o), int(d), int(p)) for o, d, p in notes)
    tonic, mode, _ = estimate_key(notes)
    bars = num_bars(notes, time_signatures)
    return {
        "pitch_class_entropy": pitch_class_entropy(notes),
        "scale_consistency": scale_consistency(notes),
        "groove_consistency": groove_consistency(notes, time_signatures),
        "empty_beat_rate": empty_beat_rate(notes, time_signatures),
        "pitch_range": pitch_range(notes),
        "mean_abs_interval": mean_abs_interval(notes),
        "in_key_ratio": in_key_ratio(notes),
        "note_length_hist": note_length_histogram(notes).tolist(),
        "key": key_name(tonic, mode),
        "num_notes": len(notes),
        "num_bars": bars,
        "notes_per_bar": len(notes) / bars if bars else float("nan"),
        **(chord_statistics(notes, time_signatures, chords) if chords is not None else {}),
    }


# ----------------------------------------------------------------------------------------------------------------
# comparing two sets (Yang & Lerch 2020)
# ----------------------------------------------------------------------------------------------------------------
def _kde(samples: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    z = (grid[:, None] - samples[None, :]) / bandwidth
    return np.exp(-0.5 * z * z).sum(1) / (len(samples) * bandwidth * math.sqrt(2 * math.pi))


def _scott_bandwidth(x: np.ndarray, spread: float) -> float:
    std = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
    bw = std * len(x) ** (-1 / 5)
    return bw if bw > 0 else max(spread * 1e-2, 1e-3)


def overlap_area(a: Sequence[float], b: Sequence[float], grid_size: int = 1024) -> float:
    """Overlapping area of two Gaussian kernel density estimates (Scott's bandwidth), in [0, 1].

    Degenerate samples (all values equal) get a small bandwidth instead of none.

    Examples:
        >>> round(overlap_area([0.0, 1.0, 2.0], [0.0, 1.0, 2.0]), 3)
        1.0
        >>> overlap_area([0.0, 0.1], [100.0, 100.1]) < 1e-6
        True
    """
    a = np.asarray([x for x in a if not math.isnan(x)], dtype=float)
    b = np.asarray([x for x in b if not math.isnan(x)], dtype=float)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    spread = hi - lo
    bw_a, bw_b = _scott_bandwidth(a, spread), _scott_bandwidth(b, spread)
    pad = 4 * max(bw_a, bw_b)
    grid = np.linspace(lo - pad, hi + pad, grid_size)
    pa, pb = _kde(a, grid, bw_a), _kde(b, grid, bw_b)
    return float(min(1.0, np.trapezoid(np.minimum(pa, pb), grid)))


def _distances(x: np.ndarray, y: np.ndarray | None, max_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Euclidean distances within `x` (all pairs i<j) or between `x` and `y` (all pairs), subsampled."""
    if y is None:
        i, j = np.triu_indices(len(x), k=1)
        xa, xb = x[i], x[j]
    else:
        i, j = np.meshgrid(np.arange(len(x)), np.arange(len(y)), indexing="ij")
        xa, xb = x[i.ravel()], y[j.ravel()]
    if len(xa) > max_pairs:
        keep = rng.choice(len(xa), max_pairs, replace=False)
        xa, xb = xa[keep], xb[keep]
    return np.linalg.norm((xa - xb).reshape(len(xa), -1), axis=1)


def _feature_matrix(stats: Sequence[dict[str, Any]], feature: str) -> np.ndarray:
    rows = [np.atleast_1d(np.asarray(s[feature], dtype=float)) for s in stats]
    rows = [r for r in rows if not np.isnan(r).any()]
    return np.stack(rows) if rows else np.zeros((0, 1))


def _summary(values: np.ndarray) -> dict[str, Any]:
    if len(values) == 0:
        return {"mean": float("nan"), "std": float("nan")}
    if values.shape[1] == 1:
        return {"mean": float(values.mean()), "std": float(values.std())}
    return {"mean": values.mean(0).round(6).tolist(), "std": values.std(0).round(6).tolist()}


def summarize(stats: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and standard deviation of every feature over melodies' statistics (NaN values left out).

    Examples:
        >>> summarize([melody_statistics([[0, 480, 60], [480, 480, 64]])])["pitch_range"]
        {'mean': 4.0, 'std': 0.0}
    """
    return {feature: _summary(_feature_matrix(stats, feature)) for feature in FEATURES}


def compare_sets(generated: Sequence[NoteList], reference: Sequence[NoteList],
                 generated_time_signatures: Sequence[TimeSignatures] | None = None,
                 reference_time_signatures: Sequence[TimeSignatures] | None = None,
                 max_pairs: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """Statistics of two melody sets and, for every feature, how much they overlap.

    Follows Yang & Lerch (2020): for each feature, the intra-set distances of the reference (all pairs of
    reference melodies) and the inter-set distances (every generated melody against every reference melody)
    are smoothed by Gaussian KDEs; `overlap[feature]` is the area both densities share (1 = the generated
    melodies are as close to the references as the references are to each other; 0 = nothing in common). The
    distance is `|a - b|` for scalar features and the Euclidean distance for the note-length histogram. Pair
    lists longer than `max_pairs` are subsampled with `seed`. `intra_overlap[feature]` compares the intra-set
    distances of both sets (similar diversity).

    Returns a dict with `generated` and `reference` (mean and std of each feature), `overlap`,
    `intra_overlap`, `mean_overlap` (over the features with a value) and `per_melody` (the generated
    melodies' statistics).

    Examples:
        >>> report = compare_sets([m.notes for m in samples], [m.notes for m in real])    # doctest: +SKIP
        >>> report["mean_overlap"]                                                      # doctest: +SKIP
        0.74
    """
    rng = np.random.default_rng(seed)
    gen_ts = generated_time_signatures or [None] * len(generated)
    ref_ts = reference_time_signatures or [None] * len(reference)
    gen_stats = [melody_statistics(n, t) for n, t in zip(generated, gen_ts, strict=True) if len(n)]
    ref_stats = [melody_statistics(n, t) for n, t in zip(reference, ref_ts, strict=True) if len(n)]
    out: dict[str, Any] = {"generated": {}, "reference": {}, "overlap": {}, "intra_overlap": {}}
    for feature in FEATURES:
        g, r = _feature_matrix(gen_stats, feature), _feature_matrix(ref_stats, feature)
        out["generated"][feature] = _summary(g)
        out["reference"][feature] = _summary(r)
        if len(r) < 2 or len(g) < 1:
            out["overlap"][feature] = float("nan")
            out["intra_overlap"][feature] = float("nan")
            continue
        intra_ref = _distances(r, None, max_pairs, rng)
        inter = _distances(g, r, max_pairs, rng)
        out["overlap"][feature] = overlap_area(intra_ref, inter)
        out["intra_overlap"][feature] = (overlap_area(intra_ref, _distances(g, None, max_pairs, rng))
                                         if len(g) > 1 else float("nan"))
    values = [v for v in out["overlap"].values() if not math.isnan(v)]
    out["mean_overlap"] = float(np.mean(values)) if values else float("nan")
    out["per_melody"] = gen_stats
    return out
