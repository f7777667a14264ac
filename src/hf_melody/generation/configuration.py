"""`MelodyGenerationConfig`: every option of a `MelodyPipeline` call in one dataclass, validated once on creation.

The pipeline parses its keyword arguments into it, `hf-melody generate` / `infill` derive their flags from its
fields, `GeneratedMelody.settings` is written from it and the piano-roll title shows the fields marked `shown`.

Examples:
    >>> from hf_melody.generation.configuration import MelodyGenerationConfig
    >>> config = MelodyGenerationConfig(key="D minor", num_bars=8, end_on_tonic=True, seed=0)
    >>> pipe(**config.to_options())                                                    # doctest: +SKIP
    >>> MelodyGenerationConfig(top_p=1.5)
    Traceback (most recent call last):
    hf_melody.errors.ConfigError: top_p=1.5 must be in (0, 1]
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import random
import textwrap
from dataclasses import dataclass, field, fields
from typing import Any

from transformers import GenerationConfig

from ..errors import ConfigError
from ..harmony.chords import check_chord_options, parse_progression
from ..modeling.lean_gpt2 import lean_support
from ..music import MODES, parse_key, pitch_range_text
from ..tokenizer import STYLES
from .checks import LIMITS, MIN_TEMPERATURE, check_int, check_key, check_pitch_range

__all__ = ["DECODERS", "DEFAULT_MAX_BARS", "DEFAULT_MIN_BARS", "GENERATE_ONLY", "OUTPUT_TYPES", "SHOWN_SETTINGS",
           "MelodyGenerationConfig", "check_generation_options", "fresh_seed", "options_doc"]

DECODERS = ("auto", "fast", "generate")
"""`decoder=`: "fast" (the lean decoder, `hf_melody.generation.decoding`), "generate" (`model.generate`, the
reference), or "auto" (fast unless an option only `generate` offers is asked for, or the model is not a GPT-2 it
can run)."""
GENERATE_ONLY = ("num_beams", "repetition_penalty", "no_repeat_ngram_size", "length_penalty", "early_stopping",
                 "bad_words_ids")
"""`generate` options passed through as they are (they select the `generate` decoder)."""
OUTPUT_TYPES = ("melody", "score", "ids", "midi", "dict")
DEFAULT_MIN_BARS = 8
"""A call with no length option writes at least this many bars (EOS is masked until then)..."""
DEFAULT_MAX_BARS = 32
"""...and at most this many (a whole folk tune; the grammar closes the melody at that bar line)."""
_SAMPLING = ("do_sample", "temperature", "top_k", "top_p", "max_new_tokens")
_IGNORED = ("bos_token_id", "eos_token_id", "pad_token_id", "transformers_version", "_from_model_config",
            "num_return_sequences", "max_length")
_SEED_LIMIT = 2**63
_MINIMUMS = {"num_return_sequences": 1, "max_new_notes": 1, "max_bars": 1, "max_new_tokens": 1, "min_new_notes": 0,
             "min_bars": 0, "top_k": 0, "num_bars": 1, "exact_bars": 0, "num_beams": 1, "no_repeat_ngram_size": 0}
_LENGTHS = ("num_bars", "exact_bars", "max_new_notes", "max_bars", "max_new_tokens")
"""The options that bound a melody's length: with none of them a call writes a whole tune (`resolve`)."""


def fresh_seed(count: int = 1) -> int:
    """A new random seed for a call given none, leaving room for `count` melodies (`seed + i` stays below 2**31).

    The one place a seed is drawn (`MelodyGenerationConfig.with_seed`: the pipeline, `generate_ids`, infilling and
    the CLI): from the operating system, so neither torch's global RNG (the same in every fresh process) nor the
    caller's random state decides it, and drawing one changes no other random stream.

    Examples:
        >>> 0 <= fresh_seed(4) < 2**31 - 4
        True
    """
    return random.SystemRandom().randrange(2**31 - 1 - count)


def _option(text: str, default: Any = None, **metadata) -> Any:
    """A field with its help text; metadata: `shown` (in the piano-roll title), `infill` (`infill` accepts it),
    `cli=False` (no command-line flag), `setting=False` (not recorded in `GeneratedMelody.settings`), `flag` and
    `flag_help` (the command-line switch of a bool field and its help, e.g. `--no-grammar`)."""
    return field(default=default, metadata={"help": text, **metadata})


@dataclass
class MelodyGenerationConfig:
    """Every option of `MelodyPipeline.__call__`, `stream` and `infill`, checked on creation (`ConfigError` naming
    the option and the fix). None means "the default": the bundle's `generation_config.json` for the sampling
    options, a whole tune of 8-32 bars for the lengths.

    A plain dataclass rather than a `transformers.GenerationConfig` subclass: most options here (key, bars, the
    grammar, the output form) mean nothing to `generate`, a dataclass's fields carry their help text (the CLI flags
    and the docs are derived from them) and validation happens once, in `__post_init__`. The bundle's
    `GenerationConfig` still supplies sampling defaults (`resolve`), and `generation_config=` passes one through.

    Args:
{args}

    Examples:
        >>> config = MelodyGenerationConfig(key="G major", num_bars=8, seed=3)
        >>> [m] = pipe(**config.to_options())                                            # doctest: +SKIP
        >>> again = MelodyGenerationConfig.from_settings(m.settings)        # the resolved options  # doctest: +SKIP
        >>> pipe(**again.to_options())[0].token_ids == m.token_ids                        # doctest: +SKIP
        True
    """

    num_return_sequences: int = _option("melodies per prompt; melody i uses seed `seed + i`", 1, cli=False,
                                        setting=False, infill=True)
    seed: int | None = _option(
        "makes the output reproducible: `pipe(seed=s, num_return_sequences=n)[i]` is byte-identical to "
        "`pipe(seed=s + i)[0]`; without one a seed is drawn and recorded in `settings['seed']`", infill=True)
    do_sample: bool | None = _option("False decodes greedily (default: the bundle's generation config)",
                                     infill=True)
    temperature: float | None = _option("sampling temperature, > 0 (default: the bundle's, 1.0)", shown=True,
                                        infill=True)
    top_k: int | None = _option("sample among the k likeliest tokens (0: all)", shown=True, infill=True)
    top_p: float | None = _option("nucleus sampling threshold in (0, 1]", shown=True, infill=True)
    max_new_notes: int | None = _option(
        "exactly this many new notes (the grammar then ends the melody; with min_new_notes=0 at most this many)",
        infill=True)
    max_bars: int | None = _option("at most this many new bars (the prompt's unfinished last bar counts as the "
                                   "first)")
    max_new_tokens: int | None = _option("hard cap on new tokens (default: none; past the model's context the "
                                         "window slides)", infill=True)
    min_new_notes: int | None = _option("EOS is masked until the melody has this many new notes", infill=True)
    min_bars: int | None = _option(
        "EOS is masked until the melody has this many new bars; without any length option a call writes a whole "
        f"tune: min_bars={DEFAULT_MIN_BARS}, max_bars={DEFAULT_MAX_BARS}")
    style: str | None = _option(f"style token to start with, one of {', '.join(STYLES)} (default: the model "
                                "picks one)", shown=True, infill=True)
    time_signature: str | None = _option('meter to start in, e.g. "3/4" (unconditional starts)', shown=True)
    constrained: bool = _option(
        "only sample tokens that are legal REMI for a one-voice melody, so every melody decodes without errors; "
        "False samples freely, as the raw model would", True, infill=True, flag="no-grammar",
        flag_help="turn off the REMI grammar that keeps every output valid (for comparisons)")
    key: str | None = _option(f'keep notes in a key, e.g. "D minor", "F# major", "Bb dorian" (modes: '
                              f'{", ".join(MODES)})', shown=True, infill=True)
    scale: list[int] | None = _option("or the allowed pitch classes (0 = C; the first one is the tonic)",
                                      setting=False, infill=True)
    key_strictness: str | float | None = _option(
        '"hard" (default with a key: only in-key notes) or a penalty >= 0 per out-of-key note, e.g. 3.0',
        infill=True)
    chords: str | None = _option(
        'a progression to write over: "C G Am F" (one chord a bar), "C:2 G:2 | Am F" (:beats of the meter, laid out '
        "in time_signature, 4/4 without one); it repeats, and sets num_bars when no length is asked (see "
        "hf_melody.harmony)", shown=True, infill=True)
    chord_strictness: str | float | None = _option(
        '"hard" (default with chords: strong-beat notes are chord tones, the others in the chord\'s scale) or a '
        "penalty >= 0 per non-chord tone, e.g. 3.0", infill=True)
    chromatic_passing: bool = _option("with hard chords, notes off the strong beats may also be a chromatic step",
                                      False, infill=True)
    pitch_range: tuple[int, int] | None = _option(
        f"keep pitches within LO..HI (MIDI numbers, inclusive, within {pitch_range_text()}, the tokenizer's range)",
        infill=True)
    num_bars: int | None = _option(
        "the generated part fills exactly this many bars (the prompt's unfinished last bar counts as the first) "
        "and ends on the bar line; only a max_new_tokens cap can cut it short (with a warning)", shown=True)
    exact_bars: int | None = _option(
        "exactly this many new Bar tokens, then EOS (0: finish the bar the prompt opened): the bar budget of "
        "prompts that are not plain melodies, e.g. infilling's gap (generate_ids)", cli=False, setting=False)
    end_on_tonic: bool = _option("the last note is the tonic of the key (or the first degree of the scale)", False,
                                 infill=True)
    tempo_qpm: float | None = _option("tempo of the files in quarter notes per minute, > 0 (default: 120): written "
                                      "into MIDI, MusicXML and ABC and played by the audio; changes no note",
                                      flag="tempo", infill=True)
    decoder: str = _option(f'{" / ".join(DECODERS)}: "auto" takes the fast lean decoder unless a generate option '
                           "asks for model.generate; both give the same tokens for the same seed", "auto")
    num_beams: int | None = _option("beam search in model.generate (ignores the seed)")
    repetition_penalty: float | None = _option("model.generate's repetition penalty (1.0 = none)")
    no_repeat_ngram_size: int | None = _option("model.generate: no n-gram of this size twice")
    length_penalty: float | None = _option("model.generate: beam-search length penalty", cli=False)
    early_stopping: bool | str | None = _option("model.generate: beam-search stopping rule", cli=False)
    bad_words_ids: list[list[int]] | None = _option("model.generate: token id sequences never to produce",
                                                    cli=False)
    generation_config: Any = _option(
        "a transformers.GenerationConfig or dict: its sampling fields fill the options left None, its generate "
        "options the generate fields; options MelodyPipeline cannot honour (e.g. typical_p) raise ConfigError",
        cli=False, setting=False)
    output_type: str = _option('"melody" (GeneratedMelody), "score" (symusic.Score), "ids", "midi" (bytes) or '
                               '"dict" (plain values, for Dataset.map)',
                               "melody", cli=False, setting=False)

    def __post_init__(self):
        if self.generation_config is not None:
            self._absorb(_changed(self.generation_config))
            self.generation_config = None
        for name, minimum in _MINIMUMS.items():
            if getattr(self, name) is not None:
                setattr(self, name, check_int(name, getattr(self, name), minimum,
                                              capped=name if name in LIMITS else None))
        self._check_sampling()
        self._check_lengths()
        self._check_generate_options()
        self.pitch_range = check_pitch_range(self.pitch_range)
        *_, strictness = check_key(self.key, self.scale, self.key_strictness, self.end_on_tonic)
        self.key_strictness = strictness if self.key_strictness is not None else None
        if (self.num_bars is not None or self.end_on_tonic) and not self.constrained:
            raise ConfigError("num_bars and end_on_tonic need the grammar; drop constrained=False")
        if self.exact_bars is not None and not self.constrained:
            raise ConfigError("exact_bars needs the grammar; drop constrained=False")
        if self.key_strictness is not None and self.key is None and self.scale is None:
            raise ConfigError("key_strictness applies to a key: add key='D minor' (or scale=[...])")
        check_chord_options(self.chords, self.chord_strictness, self.chromatic_passing, self.time_signature,
                            self.constrained)
        if self.output_type not in OUTPUT_TYPES:
            raise ConfigError(f"output_type={self.output_type!r}; choose one of {OUTPUT_TYPES}")

    def _absorb(self, changed: dict[str, Any]) -> None:
        """Fill the options left None from a `generation_config`'s non-default fields."""
        for name in _SAMPLING:
            if name in changed and getattr(self, name) is None:
                setattr(self, name, changed[name])
        for name, value in _generate_options("generation_config", {k: v for k, v in changed.items()
                                                                   if k not in _SAMPLING}).items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def _check_sampling(self) -> None:
        t = self.temperature
        if t is not None:
            if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t) or t < MIN_TEMPERATURE:
                raise ConfigError(f"temperature={t!r} must be a finite number >= {MIN_TEMPERATURE} (use a small value "
                                  "like 0.1 for near-greedy output, do_sample=False for greedy)")
            self.temperature = float(t)
        if self.top_p is not None:
            if isinstance(self.top_p, bool) or not isinstance(self.top_p, numbers.Real) or not 0 < self.top_p <= 1:
                raise ConfigError(f"top_p={self.top_p!r} must be in (0, 1]")
            self.top_p = float(self.top_p)
        if self.seed is not None:
            self.seed = check_int("seed", self.seed, 0)
            if self.seed + self.num_return_sequences - 1 >= _SEED_LIMIT:
                raise ConfigError(f"seed={self.seed!r} is too large: seeds (seed + i for melody i) must stay below "
                                  f"2**63; give a seed below {_SEED_LIMIT - self.num_return_sequences + 1}")
        tempo = self.tempo_qpm
        if tempo is not None:
            if isinstance(tempo, bool) or not isinstance(tempo, numbers.Real) or not (math.isfinite(tempo)
                                                                                       and 0 < tempo <= 1000):
                raise ConfigError(f"tempo_qpm={tempo!r} must be a number of quarter notes per minute in (0, 1000], "
                                  "e.g. 96")
            self.tempo_qpm = float(tempo)
        if self.do_sample is not None and not isinstance(self.do_sample, bool):
            raise ConfigError(f"do_sample={self.do_sample!r} must be True or False")
        self.constrained = bool(self.constrained)
        self.end_on_tonic = bool(self.end_on_tonic)

    def _check_lengths(self) -> None:
        if self.num_bars is not None and (self.max_bars is not None or self.max_new_notes is not None):
            raise ConfigError("num_bars fixes the length exactly; drop max_bars / max_new_notes")
        if self.exact_bars is not None and (self.num_bars is not None or self.max_bars is not None):
            raise ConfigError("exact_bars fixes the bars exactly; drop num_bars / max_bars")
        low, high = self.min_new_notes, self.max_new_notes
        if low is not None and high is not None and low > high:
            raise ConfigError(f"min_new_notes={self.min_new_notes} > max_new_notes={self.max_new_notes}; lower one "
                              "of them")
        for cap_name in ("max_bars", "num_bars"):
            cap = getattr(self, cap_name)
            if self.min_bars is not None and cap is not None and self.min_bars > cap:
                raise ConfigError(f"min_bars={self.min_bars} > {cap_name}={cap}; lower min_bars")

    def _check_generate_options(self) -> None:
        if self.decoder not in DECODERS:
            raise ConfigError(f"decoder={self.decoder!r}; choose one of {DECODERS}")
        if self.num_beams == 1:
            self.num_beams = None  # no beam search: nothing that needs `generate`
        penalty = self.repetition_penalty
        if penalty is not None and (isinstance(penalty, bool) or not isinstance(penalty, numbers.Real)
                                    or not (math.isfinite(penalty) and penalty > 0)):
            raise ConfigError(f"repetition_penalty={penalty!r} must be a finite number > 0 (1.0 = none)")
        if self.decoder == "fast" and self.generate_kwargs():
            raise ConfigError(f"{sorted(self.generate_kwargs())} need decoder='generate' (the fast decoder does not "
                              "offer them)")

    # ---- building and reading ------------------------------------------------------------------------------------
    @classmethod
    def option_names(cls, infill: bool = False) -> list[str]:
        """The keyword arguments `MelodyPipeline.__call__` (or, with `infill=True`, `infill`) accepts."""
        return [f.name for f in fields(cls) if not infill or f.metadata.get("infill")]

    @classmethod
    def from_options(cls, options: dict[str, Any], infill: bool = False) -> MelodyGenerationConfig:
        """A config from keyword arguments; unknown ones (or, for `infill`, ones it cannot honour) are a
        `ConfigError`.

        Examples:
            >>> MelodyGenerationConfig.from_options({"key": "Am", "seed": 1}).key
            'Am'
        """
        known = cls.option_names(infill)
        unknown = {k: v for k, v in options.items() if k not in known}
        if infill and unknown.keys() & set(cls.option_names()):
            raise ConfigError(f"infill does not take {sorted(unknown.keys() & set(cls.option_names()))}: the bars "
                              f"to fill fix the length and the meter; it accepts {', '.join(known)}")
        if unknown:
            _generate_options("option", unknown)
        return cls(**options)

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> MelodyGenerationConfig:
        """The config that regenerates a melody from its `GeneratedMelody.settings` (seed: its `melody_seed`).

        Examples:
            >>> again = pipe(**MelodyGenerationConfig.from_settings(m.settings).to_options())[0]  # doctest: +SKIP
            >>> again.token_ids == m.token_ids                                                   # doctest: +SKIP
            True
        """
        options = {k: v for k, v in settings.items() if k in cls.option_names()}
        key = options.get("key")
        if isinstance(key, str) and key.startswith("scale "):
            options["key"], options["scale"] = None, json.loads(key[len("scale "):])
        if options.get("pitch_range") is not None:
            options["pitch_range"] = tuple(options["pitch_range"])
        if settings.get("melody_seed") is not None:
            options["seed"] = settings["melody_seed"]
        return cls(**options)

    def to_options(self) -> dict[str, Any]:
        """The options that differ from the defaults, as keyword arguments for `MelodyPipeline.__call__`."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}

    def with_seed(self) -> MelodyGenerationConfig:
        """This config, or, when it has no seed, a copy with a fresh one (`fresh_seed`, room for
        `num_return_sequences` melodies): what every road into decoding calls before sampling.

        Examples:
            >>> MelodyGenerationConfig(seed=3).with_seed().seed
            3
        """
        if self.seed is not None:
            return self
        return dataclasses.replace(self, seed=fresh_seed(self.num_return_sequences))

    def generate_kwargs(self) -> dict[str, Any]:
        """The `model.generate` options that are set (see `GENERATE_ONLY`)."""
        return {name: getattr(self, name) for name in GENERATE_ONLY if getattr(self, name) is not None}

    @property
    def key_name(self) -> str | None:
        """The key as recorded in the settings: "D minor" for key="Dm", "scale [0, 2, 4]" for a scale."""
        if self.key is not None:
            return parse_key(self.key).name
        return f"scale {list(self.scale)}" if self.scale is not None else None

    def resolve(self, model) -> MelodyGenerationConfig:
        """This config with what the model decides filled in: `generate` options and sampling defaults from its
        bundle's generation config, the default length (a whole tune of 8-32 bars), and the decoder ("fast" or
        "generate"). Raises `ConfigError` when the model cannot honour an option.

        Examples:
            >>> MelodyGenerationConfig(num_beams=3).resolve(pipe.model).decoder                # doctest: +SKIP
            'generate'
        """
        gen = model.generation_config
        bundle = {k: v for k, v in _changed(gen).items() if k in GENERATE_ONLY}
        updates: dict[str, Any] = {k: v for k, v in bundle.items() if getattr(self, k) is None}
        for name in ("temperature", "top_k", "top_p"):
            if getattr(self, name) is None:
                updates[name] = getattr(gen, name, None)
        updates["do_sample"] = (self.do_sample if self.do_sample is not None else getattr(gen, "do_sample", None)
                                ) is not False
        updates.update(self._default_lengths())
        resolved = dataclasses.replace(self, **updates)
        reason = lean_support(model)
        if self.decoder == "fast" and reason is not None:
            raise ConfigError(f"decoder='fast' cannot run this model ({reason}); use decoder='generate'")
        fast = self.decoder != "generate" and not resolved.generate_kwargs() and reason is None
        return dataclasses.replace(resolved, decoder="fast" if fast else "generate")

    def _default_lengths(self) -> dict[str, int]:
        if all(getattr(self, k) is None for k in _LENGTHS):
            if self.chords is not None and self.min_new_notes is None:  # the progression's bars
                bars = parse_progression(self.chords, self.time_signature).num_bars
                return {"num_bars": bars * -(-(self.min_bars or bars) // bars)}  # repeated up to min_bars
            out = {}
            if self.min_new_notes is None:  # a complete tune: 8 to 32 bars (or min_bars), ending by itself
                out["max_bars"] = max(DEFAULT_MAX_BARS, self.min_bars or 0)
                if self.min_bars is None:
                    out["min_bars"] = DEFAULT_MIN_BARS
            return out
        if self.max_new_notes is not None and self.min_new_notes is None and self.min_bars is None:
            return {"min_new_notes": self.max_new_notes}  # max_new_notes=400 gives 400 notes (min_new_notes=0: fewer)
        return {}

    def settings(self) -> dict[str, Any]:
        """What `GeneratedMelody.settings` records of this (resolved) config, for reproducibility.

        Examples:
            >>> MelodyGenerationConfig(key="Am", seed=0).settings()["key"]
            'A minor'
        """
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("setting") is False or (f.name in GENERATE_ONLY and value is None):
                continue
            out[f.name] = value
        has_key = self.key is not None or self.scale is not None
        out["key"] = self.key_name
        out["key_strictness"] = (self.key_strictness if self.key_strictness is not None else "hard") if has_key \
            else None
        return out


SHOWN_SETTINGS = ("model", *(f.name for f in fields(MelodyGenerationConfig) if f.metadata.get("shown")),
                  "melody_seed")
"""The settings a piano roll's title shows."""


def options_doc(indent: int = 8, width: int = 116) -> str:
    """The "Args" lines of `MelodyGenerationConfig`, one per field from its help text (also in the docstring of
    `MelodyPipeline.__call__`).

    Examples:
        >>> print(options_doc(0).splitlines()[0])
        num_return_sequences: melodies per prompt; melody i uses seed `seed + i` (default 1).
    """
    lines = []
    for f in fields(MelodyGenerationConfig):
        default = "" if f.default in (None, dataclasses.MISSING) else f" (default {f.default!r})"
        lines += textwrap.wrap(f"{f.name}: {f.metadata['help']}{default}.", width, initial_indent=" " * indent,
                               subsequent_indent=" " * (indent + 4))
    return "\n".join(lines)


MelodyGenerationConfig.__doc__ = MelodyGenerationConfig.__doc__.replace("{args}", options_doc())


def check_generation_options(model, **options) -> MelodyGenerationConfig:
    """`MelodyGenerationConfig(**options)` resolved for `model` (`ConfigError` naming the option and the fix,
    before any work): the check for callers that take the options one by one, like `decoding.generate_ids`.

    Examples:
        >>> check_generation_options(model, temperature=0.9, seed=0, repetition_penalty=1.2).decoder   # doctest: +SKIP
        'generate'
    """
    return MelodyGenerationConfig.from_options(options).resolve(model)


def _changed(config) -> dict[str, Any]:
    """The fields of a `GenerationConfig` (or dict) that differ from a default `GenerationConfig`."""
    if isinstance(config, dict):
        config = GenerationConfig(**config)
    if not isinstance(config, GenerationConfig):
        raise ConfigError(f"generation_config must be a transformers.GenerationConfig or a dict, not "
                          f"{type(config).__name__}")
    default = GenerationConfig().to_dict()
    return {k: v for k, v in config.to_dict().items() if k not in _IGNORED and default.get(k, object()) != v}


def _generate_options(source: str, options: dict[str, Any]) -> dict[str, Any]:
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
