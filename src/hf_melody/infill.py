"""Fill-in-the-middle for melodies: the training format, and regenerating chosen bars of a tune.

A training melody `BOS Style <bar 1> ... <bar n> EOS` is sometimes (`DataConfig.infill_ratio`) rewritten as

    BOS Style Infill <bars before> InfillSuffix <bars after> InfillMiddle <the missing bars> EOS

so one causal GPT-2 learns both to continue and to fill a gap knowing what comes after it. Every REMI bar opens
with `Bar TimeSig`, and positions count from the bar line, so the bars can be cut and moved as they are.

Example:
    >>> from hf_melody import MelodyTokenizer
    >>> from hf_melody.infill import infill_example, split_bars
    >>> tok = MelodyTokenizer()
    >>> ids = tok.encode(melody, bos=True, eos=True, style="german-folk")    # doctest: +SKIP
    >>> infill_example(ids, tok, start=2, stop=4)                             # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from .decoding import generate_ids
from .errors import ConfigError
from .generation_options import MelodyGenerationConfig
from .music import bar_start_ticks
from .output import GeneratedMelody
from .prompts import prompt_ids
from .render import with_metadata
from .tokenizer import MelodyTokenizer

MAX_INFILL_BARS = 4
"""The longest gap of the training format (the model can still be asked for more, with less skill)."""


def split_bars(body: Sequence[int], bar_id: int) -> list[list[int]]:
    """Cut token ids (no BOS/style/EOS) into bars, each starting at a `Bar` token; tokens before the first bar line
    (none in our REMI) are kept with the first bar.

    Example:
        >>> bar = tok.base_vocab["Bar_None"]
        >>> split_bars([bar, 20, 21, bar, 22], bar) == [[bar, 20, 21], [bar, 22]]
        True
    """
    bars: list[list[int]] = []
    for t in body:
        if t == bar_id or not bars:
            bars.append([])
        bars[-1].append(int(t))
    return bars


def head_length(ids: Sequence[int], tokenizer: MelodyTokenizer) -> int:
    """How many leading ids are BOS and style tokens."""
    n = 0
    specials = {tokenizer.bos_token_id, *tokenizer.style_token_ids}
    while n < len(ids) and ids[n] in specials:
        n += 1
    return n


def infill_example(ids: Sequence[int], tokenizer: MelodyTokenizer, start: int, stop: int) -> list[int]:
    """The fill-in-the-middle form of a framed melody `ids` (BOS [style] bars EOS) with bars `start..stop-1`
    (0-based) as the missing middle."""
    ids = list(ids)
    head = head_length(ids, tokenizer)
    end = len(ids) - 1 if ids and ids[-1] == tokenizer.eos_token_id else len(ids)
    bars = split_bars(ids[head:end], tokenizer.bar_token_id)
    if not 0 <= start < stop <= len(bars):
        raise ValueError(f"bars {start}..{stop - 1} are not inside a melody of {len(bars)} bars")
    flat = [t for bar in bars[:start] for t in bar]
    suffix = [t for bar in bars[stop:] for t in bar]
    middle = [t for bar in bars[start:stop] for t in bar]
    t = tokenizer.infill_token_ids
    return ids[:head] + [t["Infill"], *flat, t["InfillSuffix"], *suffix, t["InfillMiddle"], *middle,
                         tokenizer.eos_token_id]


def random_infill_example(ids: Sequence[int], tokenizer: MelodyTokenizer, key: str, ratio: float,
                          max_bars: int = MAX_INFILL_BARS) -> list[int]:
    """With probability `ratio` (decided by a hash of `key`, so it is the same on every run), the infill form of
    `ids` with a random gap of 1..`max_bars` bars anywhere in the tune (first and last bars included); else `ids`.

    Melodies of fewer than two bars stay as they are.
    """
    if ratio <= 0 or tokenizer.is_bpe:  # BPE may merge the Bar token away: bars cannot be cut reliably
        return list(ids)
    h = hashlib.sha1(key.encode("utf-8", "surrogateescape")).digest()
    if int.from_bytes(h[:4], "big") / 2**32 >= ratio:
        return list(ids)
    head = head_length(ids, tokenizer)
    n_bars = sum(1 for t in ids[head:] if t == tokenizer.bar_token_id)
    if n_bars < 2:
        return list(ids)
    width = 1 + int.from_bytes(h[4:8], "big") % min(max_bars, n_bars - 1)
    start = int.from_bytes(h[8:12], "big") % (n_bars - width + 1)
    return infill_example(ids, tokenizer, start, start + width)


def parse_bars(text: str) -> tuple[int, int]:
    """The bars of a command-line or demo field, 1-based: `"5-6"` -> `(5, 6)`, `"5"` -> `(5, 5)`; `ConfigError`
    for anything else.

    Example:
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

    Example:
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
    `hf_melody.decoding.generate_ids` (temperature, top_k, top_p, key, pitch_range, constrained, ...). Returns the new
    ids and the 0-based `(start, stop)` bar span.
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
    new = generate_ids(model, tokenizer, prompt, seed=seed, exact_bars=stop - start - 1, **options)
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


def infill_melodies(pipe, melody, bars, config: MelodyGenerationConfig) -> list[GeneratedMelody]:
    """`MelodyPipeline.infill`: `config.num_return_sequences` versions of `melody` with `bars` regenerated.

    `melody` is a MIDI path, a `symusic.Score`, a `Melody` record or token ids; `bars` is 1-based and inclusive
    (`(5, 6)`, or `5` for one bar). Candidate `i` uses seed `config.seed + i`; the other infill options of `config`
    (temperature, top_k, top_p, key, pitch_range, constrained, ...) go to `hf_melody.decoding.generate_ids`.
    Returns `GeneratedMelody` objects whose `settings` record the bars, the seed and the options given.

    Example:
        >>> config = MelodyGenerationConfig.from_options({"seed": 0, "key": "G major"}, infill=True)  # doctest: +SKIP
        >>> [new] = infill_melodies(pipe, "tune.mid", (5, 6), config)                               # doctest: +SKIP
    """
    tok = pipe.melody_tokenizer
    body = tok.encode(melody) if hasattr(melody, "to_score") else prompt_ids(tok, melody)
    if not body:
        raise ConfigError("infill needs a melody with at least one bar; give a MIDI file, a Score or token ids")
    head = [tok.bos_token_id] + ([tok.style_token_id(config.style)] if config.style is not None else [])
    ids = head + [i for i in body if i not in (tok.bos_token_id, tok.eos_token_id)]
    n = config.num_return_sequences
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**31 - 1 - n)
    n_bars = sum(1 for t in ids if t == tok.bar_token_id)
    check_bars(bars, n_bars)  # one clear error before any sampling
    given = {k: v for k, v in config.to_options().items() if k not in ("num_return_sequences", "seed", "style")}
    results = []
    for i in range(n):
        new_ids, (start, stop) = infill_ids(pipe.model, tok, ids, bars, seed=seed + i, **given)
        score = clip_to_bars(tok.decode(new_ids), start, stop, n_bars)
        settings = {"model": getattr(pipe, "model_name", pipe.model.name_or_path), "task": "infill",
                    "bars": [start + 1, stop], "seed": seed, "melody_seed": seed + i, "style": config.style, **given}
        result = GeneratedMelody(score, new_ids, 0, 0, settings)
        result.score = with_metadata(score, key=result.key, title=result.title)
        results.append(result)
    return results
