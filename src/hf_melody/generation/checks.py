"""Checks of single generation options, shared by `MelodyGenerationConfig`, `MelodyConstraints.build` and
`decoding.generate_ids`: each returns the value normalised or raises a `ConfigError` naming the fix.

Examples:
    >>> from hf_melody.generation.checks import check_int, check_key, check_pitch_range
    >>> check_int("num_bars", 8, 1), check_key("Am", None, None)[2], check_pitch_range([60, 79])
    (8, 'A minor', (60, 79))
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

from ..errors import ConfigError
from ..music import parse_key

__all__ = ["LIMITS", "MAX_NEW_TOKENS", "MAX_NUM_BEAMS", "MAX_NUM_RETURN_SEQUENCES", "MIN_TEMPERATURE", "check_int",
           "check_key", "check_pitch_range", "limit"]

MAX_NEW_TOKENS = 65_536
"""The most `max_new_tokens` a call may ask for (about 30 times a 32-bar tune): the lean decoder allocates the ids
of prompt + cap up front, so 10**9 would take 8 GB before the first token. Raise it with
`HF_MELODY_MAX_NEW_TOKENS`."""
MAX_NUM_BEAMS = 64
"""The most beams `num_beams` may ask for (each beam is a full batch row in `model.generate`). Raise it with
`HF_MELODY_MAX_NUM_BEAMS`."""
MAX_NUM_RETURN_SEQUENCES = 10_000
"""The most melodies one call (`num_return_sequences`, `hf-melody generate --num`) may ask for. Raise it with
`HF_MELODY_MAX_NUM_RETURN_SEQUENCES`."""
MIN_TEMPERATURE = 1e-3
"""The lowest `temperature`: below it the logits divided by it overflow float32 (1e-320 is 0.0 there); for
greedy output use `do_sample=False`."""
LIMITS = {"max_new_tokens": (MAX_NEW_TOKENS, "HF_MELODY_MAX_NEW_TOKENS"),
          "num_beams": (MAX_NUM_BEAMS, "HF_MELODY_MAX_NUM_BEAMS"),
          "num_return_sequences": (MAX_NUM_RETURN_SEQUENCES, "HF_MELODY_MAX_NUM_RETURN_SEQUENCES")}
"""Option name -> (its cap, the environment variable that raises it)."""


def limit(name: str) -> int:
    """The cap on option `name` (`LIMITS`): the environment variable's value when it is set, else the constant.

    Examples:
        >>> limit("num_beams")
        64
    """
    default, variable = LIMITS[name]
    text = os.environ.get(variable)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{variable}={text!r} must be a positive integer (the cap on {name}; default {default})")
    return value


def check_int(name: str, value: Any, minimum: int, capped: str | None = None) -> int:
    """`value` as an int if it is an integer >= `minimum` (and, with `capped`, at most `limit(capped)`), else
    `ConfigError` naming the limit and how to raise it.

    Examples:
        >>> check_int("num_bars", 8, 1)
        8
        >>> check_int("num_beams", 10**6, 1, capped="num_beams")                            # doctest: +ELLIPSIS
        Traceback (most recent call last):
        hf_melody.errors.ConfigError: num_beams=1000000 is over the limit of 64; ... HF_MELODY_MAX_NUM_BEAMS=...
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")
    if capped is not None and value > (cap := limit(capped)):
        variable = LIMITS[capped][1]
        raise ConfigError(f"{name}={value!r} is over the limit of {cap}; give at most {cap}, or set "
                          f"{variable}={value} to raise the limit")
    return int(value)


def check_key(key: str | None, scale: Any, key_strictness: Any, end_on_tonic: bool = False
              ) -> tuple[frozenset[int] | None, int | None, str | None, str | float]:
    """`(pitch_classes, tonic, key_name, key_strictness)` of the key options; `ConfigError` naming the fix.

    Examples:
        >>> check_key("Am", None, None)[1:]
        (9, 'A minor', 'hard')
    """
    pitch_classes = tonic = key_name = None
    if key is not None and scale is not None:
        raise ConfigError("give either key= (e.g. 'D minor') or scale= (pitch classes), not both")
    if key is not None:
        parsed = parse_key(key)
        pitch_classes, tonic, key_name = parsed.pitch_classes, parsed.tonic, parsed.name
    elif scale is not None:
        if isinstance(scale, str) or not scale or not all(isinstance(p, int) and 0 <= p < 12 for p in scale):
            raise ConfigError(f"scale={scale!r}: give a list of pitch classes 0-11 (0 = C), e.g. [0, 2, 4, 5, 7, 9, "
                              "11]; the first one is the tonic")
        pitch_classes, tonic, key_name = frozenset(scale), int(scale[0]), f"scale {list(scale)}"
    strictness = "hard" if key_strictness is None else key_strictness
    if isinstance(strictness, str):
        if strictness != "hard":
            raise ConfigError(f"key_strictness={strictness!r}: use 'hard' or a penalty >= 0 such as 3.0")
    elif (isinstance(strictness, bool) or not isinstance(strictness, int | float) or not math.isfinite(strictness)
          or strictness < 0):
        raise ConfigError(f"key_strictness={strictness!r}: use 'hard' or a penalty >= 0 such as 3.0")
    else:
        strictness = float(strictness)
    if end_on_tonic and tonic is None:
        raise ConfigError("end_on_tonic=True needs a key (key='D minor') or a scale whose first degree is the tonic")
    return pitch_classes, tonic, key_name, strictness


def check_pitch_range(pitch_range: Any) -> tuple[int, int] | None:
    """`(low, high)` as ints, or `ConfigError` naming the fix (the tokenizer's range is checked where it is known).

    Examples:
        >>> check_pitch_range([60, 79])
        (60, 79)
    """
    if pitch_range is None:
        return None
    if (not isinstance(pitch_range, list | tuple) or len(pitch_range) != 2
            or not all(isinstance(p, int) and not isinstance(p, bool) for p in pitch_range)):
        raise ConfigError(f"pitch_range={pitch_range!r}: give two MIDI pitches (low, high), e.g. (60, 79)")
    lo, hi = pitch_range
    if lo > hi:
        raise ConfigError(f"pitch_range={pitch_range!r}: low > high; write it as ({hi}, {lo})")
    return int(lo), int(hi)
