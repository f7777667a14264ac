"""Fill-in-the-middle for melodies, the training format (regenerating bars at generation time is
`hf_melody.generation.infill`).

A training melody `BOS Style <bar 1> ... <bar n> EOS` is sometimes (`DataConfig.infill_ratio`) rewritten as

    BOS Style Infill <bars before> InfillSuffix <bars after> InfillMiddle <the missing bars> EOS

so one causal GPT-2 learns both to continue and to fill a gap knowing what comes after it. Every REMI bar opens
with `Bar TimeSig`, and positions count from the bar line, so the bars can be cut and moved as they are.

Examples:
    >>> from hf_melody import MelodyTokenizer
    >>> from hf_melody.data.infill_format import infill_example, split_bars
    >>> tok = MelodyTokenizer()
    >>> ids = tok.encode(melody, bos=True, eos=True, style="german-folk")    # doctest: +SKIP
    >>> infill_example(ids, tok, start=2, stop=4)                             # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ..tokenizer import MelodyTokenizer

MAX_INFILL_BARS = 4
"""The longest gap of the training format (the model can still be asked for more, with less skill)."""


def split_bars(body: Sequence[int], bar_id: int) -> list[list[int]]:
    """Cut token ids (no BOS/style/EOS) into bars, each starting at a `Bar` token; tokens before the first bar line
    (none in our REMI) are kept with the first bar.

    Examples:
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
