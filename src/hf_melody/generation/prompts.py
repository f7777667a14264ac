"""Prompts of a `MelodyPipeline` call: MIDI paths, scores or token ids -> the model's input ids.

Examples:
    >>> from hf_melody.generation.prompts import prompt_ids, start_inputs
    >>> body = prompt_ids(tok, "theme.mid")                                             # doctest: +SKIP
    >>> start_inputs(tok, body, style="irish", time_signature=None, n_positions=256)   # doctest: +SKIP
    {'input_ids': tensor([[1, 4, ...]]), 'num_prompt_notes': 12, 'time_signature': None, 'style': 'irish', ...}
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from ..data.corpora import melody_from_score, read_midi
from ..errors import ConfigError, MidiReadError
from ..tokenizer import MelodyTokenizer

__all__ = ["PROMPT_SHARE", "check_start", "is_token_ids", "prompt_ids", "recent_bars", "start_inputs"]

logger = logging.getLogger(__name__)


def is_token_ids(x: Any) -> bool:
    """Whether `x` is one prompt of token ids (a 1-d tensor or a non-empty list of ints), not a list of prompts.

    Examples:
        >>> is_token_ids([1, 4, 12]), is_token_ids(["a.mid", "b.mid"])
        (True, False)
    """
    if isinstance(x, torch.Tensor):
        return x.dim() == 1
    return isinstance(x, list | tuple) and len(x) > 0 and all(isinstance(i, int) for i in x)


def prompt_ids(tokenizer: MelodyTokenizer, prompt: Any) -> list[int]:
    """The token ids of a prompt without BOS/EOS/PAD: a MIDI path or the bytes of a MIDI file, a `symusic.Score`,
    token ids, or None (empty).

    Examples:
        >>> prompt_ids(tok, "theme.mid")[:2] == tok.encode_base_tokens(["Bar_None", "TimeSig_4/4"])   # doctest: +SKIP
        True
    """
    tok = tokenizer
    if prompt is None:
        return []
    if is_token_ids(prompt):
        ids = [int(i) for i in (prompt.tolist() if isinstance(prompt, torch.Tensor) else prompt)]
        bad = [i for i in ids if not 0 <= i < tok.vocab_size]
        if bad:
            raise ConfigError(f"prompt token ids {bad[:5]} are outside the vocabulary (0..{tok.vocab_size - 1})")
        return [i for i in ids if i not in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)]
    if isinstance(prompt, str | os.PathLike | bytes | bytearray):
        melody = read_midi(prompt) if isinstance(prompt, str | os.PathLike) else read_midi(bytes(prompt),
                                                                                           melody_id="prompt")
    elif hasattr(prompt, "tracks") and hasattr(prompt, "ticks_per_quarter"):
        melody = melody_from_score(prompt, "prompt", "prompt", where="prompt score")
    else:
        raise MidiReadError(f"cannot use a {type(prompt).__name__} as a prompt; give a MIDI path, a "
                            "MIDI file's bytes, a symusic.Score or a list of token ids")
    return tok.encode(_in_the_model_grid(melody))


def _in_the_model_grid(melody):
    """A melody whose file writes a pickup from time 0 under a short first time signature (as hf_melody's own
    files do, `hf_melody.export.render.with_metadata`) laid out as the corpora and the model write one: a first
    bar of the meter whose notes start after silence. Other melodies are returned as they are."""
    import dataclasses

    from ..export.render import pickup_ticks
    from ..music import bar_ticks

    lead_in, pickup = pickup_ticks(melody.to_score())
    if not pickup or lead_in:
        return melody
    (_, *_), (_, num, den), *rest = melody.time_signatures
    shift = bar_ticks(num, den) - pickup
    return dataclasses.replace(melody, notes=[[t + shift, d, p] for t, d, p in melody.notes],
                               time_signatures=[[0, num, den], *([t + shift, n, d] for t, n, d in rest)])


def check_start(tokenizer: MelodyTokenizer, style: str | None, time_signature: str | None) -> None:
    """`ConfigError` if `style` or `time_signature` has no token in the vocabulary (checked before any work).

    Examples:
        >>> check_start(tok, "irish", "5/7")                                                # doctest: +SKIP
        Traceback (most recent call last):
        hf_melody.errors.ConfigError: time_signature='5/7' is not in the vocabulary; use one of 1/4, ...
    """
    if style is not None:
        tokenizer.style_token_id(style)
    if time_signature is not None and f"TimeSig_{time_signature}" not in tokenizer.base_vocab:
        meters = sorted(t[8:] for t in tokenizer.base_vocab if t.startswith("TimeSig_"))
        raise ConfigError(f"time_signature={time_signature!r} is not in the vocabulary; use one of "
                          f"{', '.join(meters)}")


PROMPT_SHARE = 0.5
"""A prompt longer than the model's context is continued from its most recent whole bars that fill at most this
share of the context (BOS and style token included), so half the window is left for the continuation before the
lean decoder's window first slides (the `generate()` decoder cannot slide: it has that half)."""


def recent_bars(tokenizer: MelodyTokenizer, body: list[int], room: int) -> tuple[list[int], int]:
    """`(kept, dropped_bars)`: the most recent whole bars of the prompt `body` that fit in `room` tokens, with the
    time signature in force carried into the first kept bar (REMI writes it only where it changes), and how many
    bars were left out. `ConfigError` if even the last bar does not fit.

    Examples:
        >>> kept, dropped = recent_bars(tok, prompt_ids(tok, "long_tune.mid"), room=256)     # doctest: +SKIP
        >>> tok.to_base_tokens(kept[:2]), dropped                                          # doctest: +SKIP
        (['Bar_None', 'TimeSig_2/4'], 88)
    """
    tok = tokenizer
    starts = [i for i, t in enumerate(body) if t == tok.bar_token_id]  # no BPE merge crosses a Bar token
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    bounds = [*starts, len(body)]
    meters = []  # the TimeSig token of each bar, if it has one
    for a, b in zip(bounds, bounds[1:], strict=False):
        meters.append(next((t for t in tok.to_base_tokens(body[a:b]) if t.startswith("TimeSig_")), None))
    for k, start in enumerate(starts):
        in_force = next((m for m in reversed(meters[:k + 1]) if m is not None), None)
        carried = tok.encode_base_tokens([in_force]) if meters[k] is None and in_force is not None else []
        if len(body) - start + len(carried) <= room:
            kept = body[start:]
            if carried:  # after the bar's own Bar token, where REMI writes a time signature
                kept = kept[:1] + carried + kept[1:] if kept[:1] == [tok.bar_token_id] else carried + kept
            return kept, k
    raise ConfigError(f"the last bar of the prompt alone has {len(body) - starts[-1]} tokens, more than the "
                      f"{room} a prompt may fill of the model's context; use a prompt with shorter bars")


def start_inputs(tokenizer: MelodyTokenizer, body: list[int], style: str | None, time_signature: str | None,
                 n_positions: int) -> dict[str, Any]:
    """The model inputs of one prompt: BOS, the style token, then the prompt (or, without one, the opening bar in
    `time_signature`).

    A prompt too long for the model's context is continued from its most recent whole bars (`recent_bars`, at
    most `PROMPT_SHARE` of the context; said in one log line); `full_prompt_ids` then holds the whole prompt, which
    the pipeline puts back in front of the continuation, so the melody returned holds every note of the prompt.

    Examples:
        >>> start_inputs(tok, [], "irish", "6/8", n_positions=256)["input_ids"].shape         # doctest: +SKIP
        torch.Size([1, 4])
    """
    tok = tokenizer
    head = [tok.bos_token_id]
    if style is not None:
        head.append(tok.style_token_id(style))
    if not body and time_signature is not None:
        check_start(tok, None, time_signature)
        body = tok.encode_base_tokens(["Bar_None", f"TimeSig_{time_signature}"])
    ids, full = head + body, None
    if len(ids) >= n_positions - 8:
        room = int(n_positions * PROMPT_SHARE) - len(head)
        kept, dropped = recent_bars(tok, body, room)
        full, ids = ids, head + kept
        logger.warning("the prompt has %d tokens, more than the model's %d-token context: continuing from its last "
                       "%d bars (%d tokens); the %d bars before them are kept in the returned melody", len(full),
                       n_positions, sum(1 for t in kept if t == tok.bar_token_id), len(ids), dropped)
    num_prompt_notes = sum(len(t.notes) for t in tok.decode(body).tracks) if body else 0
    return {"input_ids": torch.tensor([ids]), "num_prompt_notes": num_prompt_notes,
            "time_signature": time_signature, "style": style, "full_prompt_ids": full}
