"""Validating `MelodyPipeline` generation options, `generation_config` passthrough and the choice of decoder.

Example:
    >>> check_generation_options(model, temperature=0.9, seed=0, repetition_penalty=1.2)        # doctest: +SKIP
    {'temperature': 0.9, 'seed': 0, 'generate_kwargs': {'repetition_penalty': 1.2}}
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .errors import ConfigError
from .lean_gpt2 import lean_support

__all__ = ["DECODERS", "DEFAULT_MAX_BARS", "DEFAULT_MIN_BARS", "GENERATE_ONLY", "check_generation_options"]

DECODERS = ("auto", "fast", "generate")
"""`decoder=`: "fast" (the lean decoder, `hf_melody.decoding`), "generate" (`model.generate`, the reference), or
"auto" (fast unless an option only `generate` offers is asked for, or the model is not a GPT-2 it can run)."""
GENERATE_ONLY = ("num_beams", "repetition_penalty", "no_repeat_ngram_size", "length_penalty", "early_stopping",
                 "bad_words_ids")
"""`generate` options passed through as they are (they select the `generate` decoder)."""
_SAMPLING = ("do_sample", "temperature", "top_k", "top_p", "max_new_tokens")
_IGNORED = ("bos_token_id", "eos_token_id", "pad_token_id", "transformers_version", "_from_model_config",
            "num_return_sequences", "max_length")
DEFAULT_MIN_BARS = 8
"""A call with no length option writes at least this many bars (EOS is masked until then)..."""
DEFAULT_MAX_BARS = 32
"""...and at most this many (a whole folk tune; the grammar closes the melody at that bar line)."""
_SEED_LIMIT = 2**63


def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def _changed(config) -> dict[str, Any]:
    """The fields of a `GenerationConfig` (or dict) that differ from a default `GenerationConfig`."""
    from transformers import GenerationConfig

    if isinstance(config, dict):
        config = GenerationConfig(**config)
    if not isinstance(config, GenerationConfig):
        raise ConfigError(f"generation_config must be a transformers.GenerationConfig or a dict, not "
                          f"{type(config).__name__}")
    default = GenerationConfig().to_dict()
    return {k: v for k, v in config.to_dict().items() if k not in _IGNORED and default.get(k, object()) != v}


def _generate_options(source: str, options: dict[str, Any]) -> dict[str, Any]:
    from transformers import GenerationConfig

    known = GenerationConfig().to_dict()
    out = {}
    for name, value in options.items():
        if name in GENERATE_ONLY:
            out[name] = value
        elif name in known:
            raise ConfigError(f"{source}: {name} is not supported by MelodyPipeline (its sampling is seeded and "
                              f"grammar-aware); use temperature/top_k/top_p or one of {', '.join(GENERATE_ONLY)}")
        else:
            raise ConfigError(f"unknown generation option(s) {sorted(options)}; see help(MelodyPipeline.__call__)")
    return out


def check_generation_options(model, *, num_return_sequences=None, max_new_notes=None, max_bars=None,
                             max_new_tokens=None, min_new_notes=None, min_bars=None, temperature=None, top_k=None,
                             top_p=None, seed=None, do_sample=None, num_bars=None, constrained=None, decoder=None,
                             generation_config=None, **generate_options) -> dict[str, Any]:
    """The validated options for `MelodyPipeline._forward`; raises `ConfigError` (naming the option and the fix)
    before any work. `generate_options` are `generate` keyword arguments (see `GENERATE_ONLY`)."""
    fwd: dict[str, Any] = {}
    unknown = {k: v for k, v in generate_options.items() if k not in GENERATE_ONLY}
    if unknown:
        _generate_options("option", unknown)
    gen_kwargs = {k: v for k, v in generate_options.items() if v is not None}
    if generation_config is not None:
        changed = _changed(generation_config)
        given = {"do_sample": do_sample, "temperature": temperature, "top_k": top_k, "top_p": top_p,
                 "max_new_tokens": max_new_tokens}
        for name in _SAMPLING:
            if name in changed and given[name] is None:
                given[name] = changed[name]
        do_sample, temperature, top_k, top_p, max_new_tokens = given.values()
        from_config = _generate_options("generation_config", {k: v for k, v in changed.items()
                                                              if k not in _SAMPLING})
        gen_kwargs = {**from_config, **gen_kwargs}
    bundle = {k: v for k, v in _changed(model.generation_config).items() if k in GENERATE_ONLY}
    gen_kwargs = {**bundle, **gen_kwargs}
    for name, value, minimum in (("num_return_sequences", num_return_sequences, 1), ("max_new_notes", max_new_notes, 1),
                                 ("max_bars", max_bars, 1), ("max_new_tokens", max_new_tokens, 1),
                                 ("min_new_notes", min_new_notes, 0), ("min_bars", min_bars, 0), ("top_k", top_k, 0)):
        if value is not None:
            fwd[name] = _int(name, value, minimum)
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
                or not math.isfinite(temperature) or temperature <= 0:
            raise ConfigError(f"temperature={temperature!r} must be a finite number > 0 (use a small value like 0.1 "
                              "for near-greedy output)")
        fwd["temperature"] = float(temperature)
    if top_p is not None:
        if isinstance(top_p, bool) or not isinstance(top_p, numbers.Real) or not 0 < top_p <= 1:
            raise ConfigError(f"top_p={top_p!r} must be in (0, 1]")
        fwd["top_p"] = float(top_p)
    if seed is not None:
        last = _int("seed", seed, 0) + fwd.get("num_return_sequences", 1) - 1
        if last >= _SEED_LIMIT:
            raise ConfigError(f"seed={seed!r} is too large: seeds (seed + i for melody i) must stay below 2**63")
        fwd["seed"] = int(seed)
    if do_sample is not None:
        if not isinstance(do_sample, bool):
            raise ConfigError(f"do_sample={do_sample!r} must be True or False")
        fwd["do_sample"] = do_sample
    if constrained is not None:
        fwd["constrained"] = bool(constrained)
    # lengths
    if num_bars is not None and (max_bars is not None or max_new_notes is not None):
        raise ConfigError("num_bars fixes the length exactly; drop max_bars / max_new_notes")
    if min_new_notes is not None and max_new_notes is not None and min_new_notes > max_new_notes:
        raise ConfigError(f"min_new_notes={min_new_notes} > max_new_notes={max_new_notes}; lower one of them")
    for cap_name, cap in (("max_bars", max_bars), ("num_bars", num_bars)):
        if min_bars is not None and cap is not None and isinstance(cap, int) and min_bars > cap:
            raise ConfigError(f"min_bars={min_bars} > {cap_name}={cap}; lower min_bars")
    # the decoder
    decoder = "auto" if decoder is None else decoder
    if decoder not in DECODERS:
        raise ConfigError(f"decoder={decoder!r}; choose one of {DECODERS}")
    if "num_beams" in gen_kwargs:
        gen_kwargs["num_beams"] = _int("num_beams", gen_kwargs["num_beams"], 1)
        if gen_kwargs["num_beams"] == 1:
            del gen_kwargs["num_beams"]
    if gen_kwargs.get("repetition_penalty") is not None:
        penalty = gen_kwargs["repetition_penalty"]
        if isinstance(penalty, bool) or not isinstance(penalty, numbers.Real) or not (math.isfinite(penalty)
                                                                                      and penalty > 0):
            raise ConfigError(f"repetition_penalty={penalty!r} must be a finite number > 0 (1.0 = none)")
    if gen_kwargs.get("no_repeat_ngram_size") is not None:
        _int("no_repeat_ngram_size", gen_kwargs["no_repeat_ngram_size"], 0)
    reason = lean_support(model)
    if decoder == "fast" and gen_kwargs:
        raise ConfigError(f"{sorted(gen_kwargs)} need decoder='generate' (the fast decoder does not offer them)")
    if decoder == "fast" and reason is not None:
        raise ConfigError(f"decoder='fast' cannot run this model ({reason}); use decoder='generate'")
    fwd["decoder"] = "generate" if decoder == "generate" or gen_kwargs or reason is not None else "fast"
    if gen_kwargs:
        fwd["generate_kwargs"] = gen_kwargs
    return fwd
