"""Infilling at generation time: which bars to regenerate (`parse_bars`, `check_bars`), the gap's new ids from the
decoder (`infill_ids`) and the clipping of the new notes to their bars (the training format is
`hf_melody.data.infill_format`; `MelodyPipeline.infill` puts them together).

Examples:
    >>> from hf_melody.generation.infill import parse_bars
    >>> parse_bars("5-6")
    (5, 6)
"""

from __future__ import annotations

from collections.abc import Sequence

from ..data.infill_format import head_length, split_bars
from ..errors import ConfigError
from ..music import bar_start_ticks
from ..tokenizer import MelodyTokenizer
from .decoding import generate_ids


def parse_bars(text: str) -> tuple[int, int]:
    """The bars of a command-line or demo field, 1-based: `"5-6"` -> `(5, 6)`, `"5"` -> `(5, 5)`; `ConfigError`
    for anything else.

    Examples:
        >>> parse_bars("5-6"), parse_bars("3")
        ((5, 6), (3, 3))
    """
    first, sep, last = text.partition("-")
    try:
        return (int(first), int(last) if sep else int(first))
    except ValueError:
        raise ConfigError(f"bars {text!r}: give a bar or a range of bars, e.g. 5 or 5-6") from None


def check_bars(bars: tuple[int, int] | Sequence[int] | int, n_bars: int) -> tuple[int, int]:
    """`bars` (1-based, inclusive: `(5, 6)` or `5`) checked against a melody of `n_bars` bars; 0-based `(start, stop)`.

    Raises:
        ConfigError: not two increasing bar numbers inside the melody.

    Examples:
        >>> check_bars((5, 6), n_bars=8), check_bars(3, n_bars=8)
        ((4, 6), (2, 3))
    """
    if isinstance(bars, int) and not isinstance(bars, bool):
        bars = (bars, bars)
    try:
        first, last = (int(b) for b in bars)
        if any(isinstance(b, bool) or int(b) != b for b in bars):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"bars={bars!r}: give the first and last bar to regenerate, e.g. bars=(5, 6)") from None
    if not 1 <= first <= last <= n_bars:
        raise ConfigError(f"bars={first}-{last} is not inside this {n_bars}-bar melody; choose bars within 1..{n_bars} "
                          "(first <= last)")
    return first - 1, last


def infill_ids(model, tokenizer: MelodyTokenizer, ids: Sequence[int], bars, *, seed: int | None = None,
               **options) -> tuple[list[int], tuple[int, int]]:
    """Token ids of the melody `ids` (BOS [style] bars [EOS]) with `bars` (1-based, inclusive) regenerated.

    The model sees the bars before and after the gap (`Infill ... InfillSuffix ... InfillMiddle`) and writes exactly
    the missing number of bars (`exact_bars`), then the pieces are put back in order. `options` are those of
    `hf_melody.generation.decoding.generate_ids` (temperature, top_k, top_p, key, pitch_range, constrained, ...).
    Returns the new ids and the 0-based `(start, stop)` bar span.
    """
    ids = [int(i) for i in ids if int(i) != tokenizer.pad_token_id]
    head_n = head_length(ids, tokenizer)
    head = ids[:head_n] or [tokenizer.bos_token_id]
    if head[0] != tokenizer.bos_token_id:
        head = [tokenizer.bos_token_id, *head]
    end = len(ids) - 1 if ids and ids[-1] == tokenizer.eos_token_id else len(ids)
    bars_ids = split_bars(ids[head_n:end], tokenizer.bar_token_id)
    start, stop = check_bars(bars, len(bars_ids))
    marks = tokenizer.infill_token_ids
    prefix = [t for bar in bars_ids[:start] for t in bar]
    suffix = [t for bar in bars_ids[stop:] for t in bar]
    # the first missing bar's `Bar TimeSig` goes into the prompt: the new bars keep the meter of the old ones, so
    # the suffix stays where it was (a meter change inside the gap is not kept)
    opening = bars_ids[start][:2]
    prompt = [*head, marks["Infill"], *prefix, marks["InfillSuffix"], *suffix, marks["InfillMiddle"], *opening]
    # chords: the gap's bars get the chords they have in the whole melody (the progression starts at bar 1)
    new = generate_ids(model, tokenizer, prompt, seed=seed, exact_bars=stop - start - 1, first_chord=start, **options)
    middle = opening + [t for t in new if t not in (tokenizer.eos_token_id, tokenizer.pad_token_id)]
    return [*head, *prefix, *middle, *suffix, tokenizer.eos_token_id], (start, stop)


def clip_to_bars(score, start: int, stop: int, n_bars: int):
    """Cut notes that start in bars `start..stop-1` so they end by the start of bar `stop` (no spill into the rest)."""
    edges = bar_start_ticks(score, n_bars)
    lo, hi = edges[start], edges[stop]
    for track in score.tracks:
        for note in track.notes:
            if lo <= note.time < hi and note.time + note.duration > hi:
                note.duration = hi - note.time
    return score


