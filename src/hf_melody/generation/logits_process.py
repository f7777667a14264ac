"""Controlled generation: the logits processors of a call (grammar, key/scale and range, sampling) in order, and
`decoding_plan`, the one road from a `MelodyGenerationConfig` to what a decoder runs on (processors, grammar rules,
length limits, token cap) for the pipeline, `generate_ids`, infilling and evaluation sampling alike.

The pieces live by job: the grammar processor in `hf_melody.grammar.logits_process`, length criteria in
`stopping_criteria`, streaming in `streamers`, keys and scales in `hf_melody.music`.

Examples:
    >>> from transformers import LogitsProcessorList
    >>> from hf_melody import MelodyTokenizer
    >>> from hf_melody.generation.logits_process import MelodyConstraints, melody_logits_processors
    >>> tok = MelodyTokenizer()
    >>> constraints = MelodyConstraints.build(tok, key="D minor", pitch_range=(60, 79), num_bars=8)
    >>> processors = melody_logits_processors(tok, constraints=constraints, seed=0)
    >>> model.generate(input_ids, do_sample=False, logits_processor=processors)    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from ..errors import ConfigError
from ..grammar.logits_process import REMIGrammarProcessor
from ..grammar.remi import REMIGrammar
from ..grammar.state import GrammarRules, LengthLimits
from ..harmony.chords import parse_progression
from ..harmony.logits_process import ChordProcessor, check_chords_in_range
from ..music import MODES, NOTE_NAMES, parse_key, tokenizer_pitch_range
from ..tokenizer import MelodyTokenizer
from .checks import check_int, check_key, check_pitch_range
from .configuration import MelodyGenerationConfig
from .stopping_criteria import MinLengthProcessor

__all__ = [
    "MODES",
    "DecodingPlan",
    "MelodyConstraints",
    "PitchConstraintProcessor",
    "REMIGrammarProcessor",
    "SeededSampler",
    "decoding_plan",
    "melody_constraints",
    "melody_logits_processors",
    "parse_key",
]


@dataclass(frozen=True)
class MelodyConstraints:
    """Musical constraints of one generation call, validated (build it with `MelodyConstraints.build`).

    Args:
        pitch_classes: pitch classes notes may use (from `key` or `scale`), or None for all.
        tonic: tonic pitch class of the key (or the first degree of `scale`).
        key_strictness: "hard" (only in-key notes) or a penalty subtracted from the logit of a token once per
            out-of-key note it holds (0 turns it off; about 2-5 makes out-of-key notes rare).
        pitch_range: lowest and highest allowed MIDI pitch (inclusive; always hard).
        num_bars: the generated part fills exactly this many bars and ends on a bar line.
        end_on_tonic: the last note is the tonic.
        chords, chord_strictness, chromatic_passing: a progression to keep to (`hf_melody.harmony`), "hard" or a
            penalty, and whether hard chords allow chromatic steps off the strong beats.

    Examples:
        >>> c = MelodyConstraints.build(tok, key="D minor", pitch_range=(60, 81), end_on_tonic=True)
        >>> c.key_name, c.tonic, c.needs_grammar
        ('D minor', 2, True)
    """

    pitch_classes: frozenset[int] | None = None
    tonic: int | None = None
    key_name: str | None = None
    key_strictness: str | float = "hard"
    pitch_range: tuple[int, int] | None = None
    num_bars: int | None = None
    end_on_tonic: bool = False
    chords: str | None = None
    chord_strictness: str | float = "hard"
    chromatic_passing: bool = False

    @classmethod
    def build(cls, tokenizer: MelodyTokenizer, key: str | None = None, scale: Sequence[int] | None = None,
              key_strictness: str | float = "hard", pitch_range: Sequence[int] | None = None,
              num_bars: int | None = None, end_on_tonic: bool = False, chords: str | None = None,
              chord_strictness: str | float = "hard", chromatic_passing: bool = False) -> MelodyConstraints:
        """Validate user options against the tokenizer (the checks of `MelodyGenerationConfig` plus the
        vocabulary's pitch range); raises `ConfigError` naming the bad value and the fix.

        Examples:
            >>> MelodyConstraints.build(tok, key="D minor", pitch_range=(60, 81), end_on_tonic=True)  # doctest: +SKIP
        """
        pitch_classes, tonic, key_name, key_strictness = check_key(key, scale, key_strictness, end_on_tonic)
        pitch_range = check_pitch_range(pitch_range)
        lo_vocab, hi_vocab = tokenizer_pitch_range(tokenizer)
        if pitch_range is not None and (pitch_range[0] < lo_vocab or pitch_range[1] > hi_vocab):
            raise ConfigError(f"pitch_range={pitch_range!r} is outside the tokenizer's pitches {lo_vocab}..{hi_vocab}; "
                              "narrow it")
        if num_bars is not None:
            num_bars = check_int("num_bars", num_bars, 1)
        lo, hi = pitch_range or (lo_vocab, hi_vocab)
        in_range = [p for p in range(lo, hi + 1) if pitch_classes is None or key_strictness != "hard"
                    or p % 12 in pitch_classes]
        if not in_range:
            raise ConfigError(f"no pitch of {key_name} lies in pitch_range={pitch_range}; widen the range")
        if end_on_tonic and not any(p % 12 == tonic for p in range(lo, hi + 1)):
            raise ConfigError(f"end_on_tonic: pitch_range={pitch_range} holds no {NOTE_NAMES[tonic]}; widen it")
        if chords is not None:
            check_chords_in_range(parse_progression(chords.replace("|", " ")), (lo, hi))
        return cls(pitch_classes, tonic, key_name, key_strictness, pitch_range,
                   int(num_bars) if num_bars is not None else None, bool(end_on_tonic), chords, chord_strictness,
                   bool(chromatic_passing))

    @property
    def needs_grammar(self) -> bool:
        """num_bars and end_on_tonic follow the melody's state: they need the grammar processor."""
        return self.num_bars is not None or self.end_on_tonic

    @property
    def limits_pitches(self) -> bool:
        return self.pitch_classes is not None or self.pitch_range is not None


class PitchConstraintProcessor(LogitsProcessor):
    """Keeps notes inside a pitch set (key, scale, range): masked ("hard") or penalised per out-of-set note.

    Works on BPE vocabularies too (a merged token counts every note it holds). A row left with no legal token is
    left unchanged rather than broken.

    Examples:
        >>> key = parse_key("G major")
        >>> proc = PitchConstraintProcessor(tok, (55, 79), key.pitch_classes)          # doctest: +SKIP
    """

    def __init__(self, tokenizer: MelodyTokenizer, pitch_range: tuple[int, int] | None = None,
                 pitch_classes: Iterable[int] | None = None, penalty: float | None = None):
        grammar = REMIGrammar.for_tokenizer(tokenizer)
        pcs = frozenset(pitch_classes) if pitch_classes is not None else None
        lo, hi = pitch_range or (0, 127)
        hard_bad = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        soft_bad = torch.zeros(tokenizer.vocab_size)
        for i, pitches in grammar.pitch_of.items():
            out_of_key = [p for p in pitches if pcs is not None and p % 12 not in pcs]
            hard_bad[i] = any(not lo <= p <= hi for p in pitches) or (penalty is None and bool(out_of_key))
            soft_bad[i] = len(out_of_key)
        self.hard_bad = hard_bad
        self.penalty = soft_bad * penalty if penalty else None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.penalty is not None:
            scores = scores - self.penalty.to(scores.device)
        masked = scores.masked_fill(self.hard_bad.to(scores.device), float("-inf"))
        dead = torch.isinf(masked).all(-1, keepdim=True)
        return torch.where(dead, scores, masked)


class SeededSampler(LogitsProcessor):
    """Sampling with one `torch.Generator` per row: use it last, with greedy decoding (`do_sample=False`).

    It adds Gumbel noise drawn from row i's generator, so the argmax that greedy decoding takes is a sample from
    softmax(scores) (the Gumbel-max trick). Row i's draws depend only on its seed, never on the global RNG or on
    the other rows.

    Examples:
        >>> procs = LogitsProcessorList([TemperatureLogitsWarper(0.9), SeededSampler([0, 1, 2])])   # doctest: +SKIP
        >>> model.generate(ids.repeat(3, 1), do_sample=False, logits_processor=procs)             # doctest: +SKIP
    """

    def __init__(self, seeds: Sequence[int]):
        self.seeds = [int(s) for s in seeds]  # what each row is sampled with (recorded as its `melody_seed`)
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"SeededSampler has {len(self.generators)} seeds but the batch has {scores.shape[0]} rows")
        u = torch.stack([torch.rand(scores.shape[-1], generator=g, dtype=torch.float64) for g in self.generators])
        gumbel = -torch.log(-torch.log(u.clamp(1e-300, 1.0 - 1e-16)))
        return scores + gumbel.to(device=scores.device, dtype=scores.dtype)


def melody_logits_processors(tokenizer: MelodyTokenizer, constraints: MelodyConstraints | None = None,
                             constrained: bool = True, max_new_notes: int | None = None,
                             max_bars: int | None = None, temperature: float = 1.0, top_k: int | None = None,
                             top_p: float | None = None, seed: int | Sequence[int] | None = None,
                             allow_style: bool = True, max_length: int | None = None,
                             min_new_notes: int | None = None, min_bars: int | None = None,
                             exact_bars: int | None = None, refeed: bool = False,
                             first_chord: int = 0) -> LogitsProcessorList:
    """The processors of one generation, in order: grammar (or, without it, a minimum length), pitch constraints,
    chords, temperature, top-k, top-p, sampler.

    Use them with `do_sample=False` when `seed` is given (the `SeededSampler` does the sampling); one seed per row.
    Without a seed the argmax of the scores is taken (greedy decoding). `max_length` (prompt + new tokens) lets the
    grammar close the melody in time (see `REMIGrammarProcessor`); `min_new_notes` / `min_bars` mask EOS until
    the melody is that long; `refeed` is for beam search (rows change places between steps). With chords a
    hard key is merged into the `ChordProcessor` (a chord tone outside the key wins on its bar), so the pitch
    processor keeps only the range; `first_chord`: the progression's bar of the first generated bar.

    Examples:
        >>> constraints = MelodyConstraints.build(tok, key="C major")               # doctest: +SKIP
        >>> procs = melody_logits_processors(tok, constraints, seed=[7], min_bars=8)  # doctest: +SKIP
        >>> model.generate(ids, do_sample=False, logits_processor=procs)            # doctest: +SKIP
    """
    constraints = constraints or MelodyConstraints()
    if constraints.needs_grammar and not constrained:
        raise ConfigError("num_bars and end_on_tonic need the grammar; drop constrained=False")
    procs = LogitsProcessorList()
    if constrained:
        tonic = constraints.tonic if constraints.end_on_tonic else None
        procs.append(REMIGrammarProcessor(tokenizer, num_bars=constraints.num_bars, max_bars=max_bars,
                                          max_new_notes=max_new_notes, tonic=tonic, allow_style=allow_style,
                                          max_length=max_length, min_new_notes=min_new_notes, min_bars=min_bars,
                                          exact_bars=exact_bars, refeed=refeed))
    elif min_new_notes or min_bars:
        procs.append(MinLengthProcessor(tokenizer, min_new_notes=min_new_notes, min_bars=min_bars))
    hard_key = constraints.pitch_classes if constraints.key_strictness == "hard" else None
    merged = constraints.chords is not None and hard_key is not None
    if constraints.limits_pitches and not (merged and constraints.pitch_range is None):
        soft = constraints.key_strictness if constraints.key_strictness != "hard" else None
        procs.append(PitchConstraintProcessor(tokenizer, constraints.pitch_range,
                                              None if merged else constraints.pitch_classes, soft))
    if constraints.chords is not None:
        procs.append(ChordProcessor(tokenizer, constraints.chords, constraints.chord_strictness,
                                    hard_key if merged else None, constraints.chromatic_passing, first_chord, refeed))
    if temperature is not None and float(temperature) != 1.0:
        procs.append(TemperatureLogitsWarper(float(temperature)))
    if top_k:
        procs.append(TopKLogitsWarper(int(top_k)))
    if top_p is not None and float(top_p) < 1.0:
        procs.append(TopPLogitsWarper(float(top_p)))
    if seed is not None:
        procs.append(SeededSampler([seed] if isinstance(seed, int) else list(seed)))
    return procs


def melody_constraints(tokenizer: MelodyTokenizer, config: MelodyGenerationConfig) -> MelodyConstraints:
    """The musical constraints of `config` checked against the tokenizer (`MelodyConstraints.build`).

    Examples:
        >>> melody_constraints(tok, MelodyGenerationConfig(key="Dm", end_on_tonic=True)).tonic
        2
    """
    strictness = "hard" if config.key_strictness is None else config.key_strictness
    return MelodyConstraints.build(tokenizer, key=config.key, scale=config.scale, key_strictness=strictness,
                                   pitch_range=config.pitch_range, num_bars=config.num_bars,
                                   end_on_tonic=config.end_on_tonic, chords=config.chords,
                                   chord_strictness=config.chord_strictness or "hard",
                                   chromatic_passing=config.chromatic_passing)


@dataclass
class DecodingPlan:
    """What one melody's decoding runs on (`decoding_plan`).

    Attributes:
        processors: for `model.generate`: grammar processor first (when constrained), then pitch constraints,
            temperature, top-k, top-p and the seeded sampler.
        grammar: the grammar processor of `processors`, or None without the grammar.
        limits: the length limits, counted from the end of the prompt.
        token_cap: the cap on new tokens (None: the lean decoder's `DEFAULT_TOKEN_CAP`, past the context).
    """

    processors: LogitsProcessorList
    grammar: REMIGrammarProcessor | None
    limits: LengthLimits
    token_cap: int | None

    @property
    def rules(self) -> GrammarRules | None:
        """The grammar's rules for the lean decoder's tables (None: sample without the grammar)."""
        return self.grammar.rules if self.grammar is not None else None

    @property
    def seed(self) -> int | None:
        """The seed the `SeededSampler` of `processors` samples with (None: greedy decoding or beams)."""
        return next((p.seeds[0] for p in self.processors if isinstance(p, SeededSampler)), None)

    def fast_processors(self) -> LogitsProcessorList:
        """The processors the lean decoder runs after its grammar tables: all but the grammar processor (a new
        list: `MelodyDecoder.sample` takes the seeded sampler out of it)."""
        return LogitsProcessorList(p for p in self.processors if p is not self.grammar)


def decoding_plan(tokenizer: MelodyTokenizer, config: MelodyGenerationConfig, prompt_length: int, index: int = 0,
                  *, n_positions: int | None = None, allow_style: bool = True,
                  constraints: MelodyConstraints | None = None, first_chord: int = 0) -> DecodingPlan:
    """The processors, grammar rules, length limits and token cap of melody `index` of a seeded `config` (the one
    function every caller turns a config into decoding with: pipeline, `generate_ids`, infilling, evaluation).

    Melody `index` is seeded with `config.seed + index` (greedy without `do_sample`, or with beams). The
    `generate` decoder (`config.decoder == "generate"`) cannot slide past the context, so its cap is the room left
    in `n_positions`; the lean decoder's is `max_new_tokens`. `allow_style`: a style token may open the melody (the
    prompt chose none). `constraints`: `melody_constraints(tokenizer, config)`, when already built. `first_chord`:
    the bar of `config.chords` the first generated bar gets (infilling: the gap's first bar).

    Examples:
        >>> config = MelodyGenerationConfig(key="G major", num_bars=4, seed=0, decoder="fast")
        >>> plan = decoding_plan(tok, config, prompt_length=1)
        >>> MelodyDecoder.for_model(model, tok).sample([[tok.bos_token_id]], plan.fast_processors(), plan.rules,
        ...                                            plan.limits, plan.token_cap)                # doctest: +SKIP
    """
    beams = config.num_beams is not None
    if config.decoder == "generate":
        room = n_positions - prompt_length
        token_cap = min(config.max_new_tokens or room, room)
    else:
        token_cap = config.max_new_tokens
    processors = melody_logits_processors(
        tokenizer, constraints=constraints or melody_constraints(tokenizer, config), constrained=config.constrained,
        max_new_notes=config.max_new_notes, max_bars=config.max_bars, temperature=config.temperature,
        top_k=config.top_k, top_p=config.top_p, seed=config.seed + index if config.do_sample and not beams else None,
        allow_style=allow_style, max_length=None if token_cap is None else prompt_length + token_cap,
        min_new_notes=config.min_new_notes, min_bars=config.min_bars, exact_bars=config.exact_bars, refeed=beams,
        first_chord=first_chord)
    limits = LengthLimits(num_bars=config.num_bars, max_bars=config.max_bars, exact_bars=config.exact_bars,
                          max_new_notes=config.max_new_notes, min_bars=config.min_bars,
                          min_new_notes=config.min_new_notes)
    return DecodingPlan(processors, processors[0] if config.constrained else None, limits, token_cap)
