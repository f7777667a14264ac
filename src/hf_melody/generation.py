"""Controlled generation: grammar, key/scale and range logits processors, seeded sampling, note streaming.

Example:
    >>> from transformers import LogitsProcessorList
    >>> from hf_melody import MelodyTokenizer
    >>> from hf_melody.generation import MelodyConstraints, melody_logits_processors
    >>> tok = MelodyTokenizer()
    >>> constraints = MelodyConstraints.build(tok, key="D minor", pitch_range=(60, 79), num_bars=8)
    >>> processors = melody_logits_processors(tok, constraints=constraints, seed=0)
    >>> model.generate(input_ids, do_sample=False, logits_processor=processors)    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from .errors import ConfigError
from .grammar import FINISH_HORIZON, GrammarRules, LengthLimits, MelodyTracker, REMIGrammar
from .music import MODES, NOTE_NAMES, Key, parse_key, tokenizer_pitch_range  # noqa: F401 - MODES, Key re-exported
from .tokenizer import MelodyTokenizer

logger = logging.getLogger(__name__)

__all__ = [
    "MODES",
    "Key",
    "MelodyConstraints",
    "MinLengthProcessor",
    "MusicalLengthCriteria",
    "NoteStreamer",
    "PitchConstraintProcessor",
    "REMIGrammarProcessor",
    "SeededSampler",
    "StreamedNote",
    "melody_logits_processors",
    "parse_key",
    "token_counts",
]

# ---- note and bar counts (for the unconstrained path) ---------------------------------------------------------------


@lru_cache(maxsize=8)
def _counts(tokenizer_id: int, tokenizer: MelodyTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    pitches = torch.zeros(tokenizer.vocab_size, dtype=torch.long)
    bars = torch.zeros(tokenizer.vocab_size, dtype=torch.long)
    for i in range(tokenizer.vocab_size):
        toks = tokenizer.to_base_tokens([i]) if tokenizer.is_bpe else [tokenizer.miditok[i]]
        pitches[i] = sum(t.startswith("Pitch_") for t in toks)
        bars[i] = sum(t.startswith("Bar_") for t in toks)
    return pitches, bars


def token_counts(tokenizer: MelodyTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """Two vocabulary-sized tensors: notes (Pitch tokens) and bars (Bar tokens) each token id stands for."""
    return _counts(id(tokenizer), tokenizer)


class MusicalLengthCriteria(StoppingCriteria):
    """Stops each sequence once it has gone past `max_new_notes` new notes or `max_bars` new bars.

    Used with `constrained=False`; the grammar enforces these limits itself otherwise. The sequence is allowed to
    start the next note or bar (so the last kept note is complete); the pipeline trims that extra start.

    Example:
        >>> criteria = MusicalLengthCriteria(tok, prompt_length=3, max_new_notes=32)        # doctest: +SKIP
    """

    def __init__(self, tokenizer: MelodyTokenizer, prompt_length: int, max_new_notes: int | None = None,
                 max_bars: int | None = None):
        self.pitch_counts, self.bar_counts = token_counts(tokenizer)
        self.prompt_length = prompt_length
        self.max_new_notes = max_new_notes
        self.max_bars = max_bars

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_length:].cpu()
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool)
        if self.max_new_notes is not None:
            done |= self.pitch_counts[new].sum(-1) > self.max_new_notes
        if self.max_bars is not None:
            done |= self.bar_counts[new].sum(-1) > self.max_bars
        return done.to(input_ids.device)


# ---- keys and constraints -------------------------------------------------------------------------------------------

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
    """

    pitch_classes: frozenset[int] | None = None
    tonic: int | None = None
    key_name: str | None = None
    key_strictness: str | float = "hard"
    pitch_range: tuple[int, int] | None = None
    num_bars: int | None = None
    end_on_tonic: bool = False

    @classmethod
    def build(cls, tokenizer: MelodyTokenizer, key: str | None = None, scale: Sequence[int] | None = None,
              key_strictness: str | float = "hard", pitch_range: Sequence[int] | None = None,
              num_bars: int | None = None, end_on_tonic: bool = False) -> MelodyConstraints:
        """Validate user options; raises `ConfigError` naming the bad value and the fix.

        Example:
            >>> MelodyConstraints.build(tok, key="D minor", pitch_range=(60, 81), end_on_tonic=True)  # doctest: +SKIP
        """
        pitch_classes = tonic = key_name = None
        if key is not None and scale is not None:
            raise ConfigError("give either key= (e.g. 'D minor') or scale= (pitch classes), not both")
        if key is not None:
            parsed = parse_key(key)
            pitch_classes, tonic, key_name = parsed.pitch_classes, parsed.tonic, parsed.name
        elif scale is not None:
            if isinstance(scale, str) or not scale or not all(isinstance(p, int) and 0 <= p < 12 for p in scale):
                raise ConfigError(f"scale={scale!r}: give a list of pitch classes 0-11 (0 = C), e.g. [0, 2, 4, 5, 7, "
                                  "9, 11]; the first one is the tonic")
            pitch_classes, tonic, key_name = frozenset(scale), int(scale[0]), f"scale {list(scale)}"
        if isinstance(key_strictness, str):
            if key_strictness != "hard":
                raise ConfigError(f"key_strictness={key_strictness!r}: use 'hard' or a penalty >= 0 such as 3.0")
        elif isinstance(key_strictness, bool) or not isinstance(key_strictness, int | float) or key_strictness < 0:
            raise ConfigError(f"key_strictness={key_strictness!r}: use 'hard' or a penalty >= 0 such as 3.0")
        else:
            key_strictness = float(key_strictness)
        lo_vocab, hi_vocab = tokenizer_pitch_range(tokenizer)
        if pitch_range is not None:
            if (not isinstance(pitch_range, list | tuple) or len(pitch_range) != 2
                    or not all(isinstance(p, int) and not isinstance(p, bool) for p in pitch_range)):
                raise ConfigError(f"pitch_range={pitch_range!r}: give two MIDI pitches (low, high), e.g. (60, 79)")
            lo, hi = pitch_range
            if lo > hi:
                raise ConfigError(f"pitch_range={pitch_range!r}: low > high; write it as ({hi}, {lo})")
            if lo < lo_vocab or hi > hi_vocab:
                raise ConfigError(f"pitch_range={pitch_range!r} is outside the tokenizer's pitches "
                                  f"{lo_vocab}..{hi_vocab}; narrow it")
            pitch_range = (int(lo), int(hi))
        if num_bars is not None and (isinstance(num_bars, bool) or int(num_bars) != num_bars or num_bars < 1):
            raise ConfigError(f"num_bars={num_bars!r} must be a positive integer")
        if end_on_tonic and tonic is None:
            raise ConfigError("end_on_tonic=True needs a key (key='D minor') or a scale whose first degree is the "
                              "tonic")
        lo, hi = pitch_range or (lo_vocab, hi_vocab)
        in_range = [p for p in range(lo, hi + 1) if pitch_classes is None or key_strictness != "hard"
                    or p % 12 in pitch_classes]
        if not in_range:
            raise ConfigError(f"no pitch of {key_name} lies in pitch_range={pitch_range}; widen the range")
        if end_on_tonic and not any(p % 12 == tonic for p in range(lo, hi + 1)):
            raise ConfigError(f"end_on_tonic: pitch_range={pitch_range} holds no {NOTE_NAMES[tonic]}; widen it")
        return cls(pitch_classes, tonic, key_name, key_strictness, pitch_range,
                   int(num_bars) if num_bars is not None else None, bool(end_on_tonic))

    @property
    def needs_grammar(self) -> bool:
        """num_bars and end_on_tonic follow the melody's state: they need the grammar processor."""
        return self.num_bars is not None or self.end_on_tonic

    @property
    def limits_pitches(self) -> bool:
        return self.pitch_classes is not None or self.pitch_range is not None


# ---- logits processors ----------------------------------------------------------------------------------------------


class REMIGrammarProcessor(LogitsProcessor):
    """Masks every token that cannot legally follow in REMI, so each sample decodes without errors.

    The rules (see `hf_melody.grammar`) come from the tokenizer vocabulary, BPE included: a merged token is allowed
    only if its whole expansion is a legal continuation. Each row's state is updated with the tokens added since the
    last call and its mask comes from a cache per state class. It also enforces musical limits: `num_bars` (end
    exactly on that bar line), `max_bars`, `max_new_notes` (EOS forced when reached) and `tonic` (the last note).
    Give `max_length` (prompt + new tokens) so that an ending asked for (`tonic`, `num_bars`) is reached before
    the tokens run out: in the last few tokens only continuations that can still end properly are allowed.

    With `preserve_eos` (default) EOS keeps the probability the model gives it wherever it is legal, and the mass
    of the masked tokens goes to the other legal tokens only: the grammar decides *how* a melody goes on, the
    model still decides *when* it ends. (Plain renormalisation would inflate EOS wherever the model puts much mass
    on illegal tokens; an undertrained model then writes melodies several times shorter.)
    Place it before temperature / top-k / top-p.

    Example:
        >>> processor = REMIGrammarProcessor(tok, num_bars=4)                               # doctest: +SKIP
        >>> model.generate(ids, do_sample=True, logits_processor=LogitsProcessorList([processor]))  # doctest: +SKIP
    """

    def __init__(self, tokenizer: MelodyTokenizer, num_bars: int | None = None, max_bars: int | None = None,
                 max_new_notes: int | None = None, tonic: int | None = None, allow_style: bool = True,
                 max_length: int | None = None, preserve_eos: bool = True, min_new_notes: int | None = None,
                 min_bars: int | None = None, exact_bars: int | None = None, refeed: bool = False):
        if num_bars is not None and max_bars is not None:
            raise ConfigError("num_bars fixes the length exactly; drop max_bars")
        self.grammar = REMIGrammar.for_tokenizer(tokenizer)
        self.rules = GrammarRules(tonic=tonic, exact_end=num_bars is not None, allow_style=allow_style)
        self.limits = LengthLimits(num_bars=num_bars, max_bars=max_bars, exact_bars=exact_bars,
                                   max_new_notes=max_new_notes, min_bars=min_bars, min_new_notes=min_new_notes)
        self.max_length = max_length
        self.preserve_eos = preserve_eos
        self.refeed = refeed  # beam search reorders rows: rebuild each row's state from its tokens every step
        self.eos_token_id = tokenizer.eos_token_id
        self.states = None
        self.steered = False  # True once the token budget narrowed a mask (the ending was forced to fit)
        self.minimums: list[tuple[int, int]] = []
        self._seen = 0
        self._prompt_length = 0

    def _start(self, row: list[int]):
        g = self.grammar
        s = g.prompt_state(row)
        _, _, min_bar, min_notes = g.length_limits(s, self.limits)
        return s, (min_bar, min_notes)

    def ended_properly(self, sequences: torch.LongTensor) -> list[bool]:
        """After `generate`: whether each row ends with an EOS the rules allow there (exact bar line, tonic).

        False for a row cut by the token limit, or closed by the fallback EOS when no legal ending fit.
        """
        g = self.grammar
        out = []
        for row, s in zip(sequences.tolist(), self.states or [], strict=False):
            body = row[self._seen:]
            while body and body[-1] == g.pad_token_id:
                body.pop()
            if not body or body[-1] != g.eos_token_id:
                out.append(False)
                continue
            state = s.copy()
            g.feed(state, body[:-1])
            out.append(g.can_end(state, self.rules))
        return out

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        g = self.grammar
        if self.states is None or self.refeed:
            if self.states is None:
                self._prompt_length = input_ids.shape[1]
            started = [self._start(row) for row in input_ids[:, :self._prompt_length].tolist()]
            self.states = [s for s, _ in started]
            self.minimums = [m for _, m in started]
            if self.refeed:
                for s, row in zip(self.states, input_ids[:, self._prompt_length:].tolist(), strict=True):
                    g.feed(s, row)
        else:
            for s, row in zip(self.states, input_ids[:, self._seen:].tolist(), strict=True):
                g.feed(s, row)
        self._seen = input_ids.shape[1]
        budget = None if self.max_length is None else self.max_length - input_ids.shape[1]
        masks = torch.stack([g.allowed_mask(s, self.rules, budget) for s in self.states]).to(scores.device)
        if budget is not None and budget <= FINISH_HORIZON and not self.steered:
            self.steered = any(not torch.equal(m, g.allowed_mask(s, self.rules))
                               for m, s in zip(masks, self.states, strict=True))
        early = [i for i, (s, (min_bar, min_notes)) in enumerate(zip(self.states, self.minimums, strict=True))
                 if s.bar < min_bar or s.notes < min_notes]
        if early:
            masks = mask_early_eos(masks, torch.tensor(early), self.eos_token_id)
        return grammar_scores(scores, masks, self.eos_token_id, self.preserve_eos)


def mask_early_eos(masks: torch.Tensor, rows: torch.Tensor, eos: int) -> torch.Tensor:
    """Masks EOS in `rows` (the melody is not long enough yet) unless it is their only legal token."""
    masks = masks.clone()
    keep = masks[rows].sum(-1) == 1
    masks[rows, eos] &= keep
    return masks


def grammar_scores(scores: torch.Tensor, masks: torch.Tensor, eos: int, preserve_eos: bool = True) -> torch.Tensor:
    """Log-probabilities with illegal tokens at -inf (see `REMIGrammarProcessor` for `preserve_eos`)."""
    logp = scores.log_softmax(-1)
    masked = logp.masked_fill(~masks, float("-inf"))
    if not preserve_eos:
        return masked
    others = masks.clone()
    others[:, eos] = False
    rows = masks[:, eos] & others.any(-1)
    if not bool(rows.any()):
        return masked
    # EOS keeps its own log-probability; the other legal tokens share the rest in the model's proportions
    p_eos = logp[:, eos].exp().clamp(max=1 - 1e-6)
    shift = torch.log1p(-p_eos) - torch.logsumexp(logp.masked_fill(~others, float("-inf")), -1)
    kept = (logp + shift[:, None]).masked_fill(~others, float("-inf"))
    kept[:, eos] = logp[:, eos]
    return torch.where(rows[:, None], kept, masked)


class PitchConstraintProcessor(LogitsProcessor):
    """Keeps notes inside a pitch set (key, scale, range): masked ("hard") or penalised per out-of-set note.

    Works on BPE vocabularies too (a merged token counts every note it holds). A row left with no legal token is
    left unchanged rather than broken.

    Example:
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

    Example:
        >>> procs = LogitsProcessorList([TemperatureLogitsWarper(0.9), SeededSampler([0, 1, 2])])   # doctest: +SKIP
        >>> model.generate(ids.repeat(3, 1), do_sample=False, logits_processor=procs)             # doctest: +SKIP
    """

    def __init__(self, seeds: Sequence[int]):
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"SeededSampler has {len(self.generators)} seeds but the batch has {scores.shape[0]} rows")
        u = torch.stack([torch.rand(scores.shape[-1], generator=g, dtype=torch.float64) for g in self.generators])
        gumbel = -torch.log(-torch.log(u.clamp(1e-300, 1.0 - 1e-16)))
        return scores + gumbel.to(device=scores.device, dtype=scores.dtype)


class MinLengthProcessor(LogitsProcessor):
    """Masks EOS until `min_new_notes` notes and `min_bars` Bar tokens follow the prompt (for `constrained=False`;
    the grammar processor does this itself, counting bars like `num_bars`). The prompt is the first call's ids.

    Example:
        >>> procs = LogitsProcessorList([MinLengthProcessor(tok, min_bars=8)])          # doctest: +SKIP
    """

    def __init__(self, tokenizer: MelodyTokenizer, min_new_notes: int | None = None, min_bars: int | None = None):
        self.pitch_counts, self.bar_counts = token_counts(tokenizer)
        self.min_new_notes = min_new_notes or 0
        self.min_bars = min_bars or 0
        self.eos_token_id = tokenizer.eos_token_id
        self.prompt_length: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        new = input_ids[:, self.prompt_length:].cpu()
        early = (self.pitch_counts[new].sum(-1) < self.min_new_notes) | (self.bar_counts[new].sum(-1) < self.min_bars)
        if not bool(early.any()):
            return scores
        scores = scores.clone()
        scores[early.to(scores.device), self.eos_token_id] = float("-inf")
        return scores


def melody_logits_processors(tokenizer: MelodyTokenizer, constraints: MelodyConstraints | None = None,
                             constrained: bool = True, max_new_notes: int | None = None,
                             max_bars: int | None = None, temperature: float = 1.0, top_k: int | None = None,
                             top_p: float | None = None, seed: int | Sequence[int] | None = None,
                             allow_style: bool = True, max_length: int | None = None,
                             min_new_notes: int | None = None, min_bars: int | None = None,
                             exact_bars: int | None = None, refeed: bool = False) -> LogitsProcessorList:
    """The processors of one generation, in order: grammar (or, without it, a minimum length), pitch constraints,
    temperature, top-k, top-p, sampler.

    Use them with `do_sample=False` when `seed` is given (the `SeededSampler` does the sampling); one seed per row.
    Without a seed the argmax of the scores is taken (greedy decoding). `max_length` (prompt + new tokens) lets the
    grammar close the melody in time (see `REMIGrammarProcessor`); `min_new_notes` / `min_bars` mask EOS until
    the melody is that long; `refeed` is for beam search (rows change places between steps).

    Example:
        >>> constraints = MelodyConstraints.build(tok, key="C major")               # doctest: +SKIP
        >>> procs = melody_logits_processors(tok, constraints, seed=[7], min_bars=8)  # doctest: +SKIP
        >>> model.generate(ids, do_sample=False, logits_processor=procs)            # doctest: +SKIP
    """
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

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
    if constraints.limits_pitches:
        soft = constraints.key_strictness if constraints.key_strictness != "hard" else None
        procs.append(PitchConstraintProcessor(tokenizer, constraints.pitch_range, constraints.pitch_classes, soft))
    if temperature is not None and float(temperature) != 1.0:
        procs.append(TemperatureLogitsWarper(float(temperature)))
    if top_k:
        procs.append(TopKLogitsWarper(int(top_k)))
    if top_p is not None and float(top_p) < 1.0:
        procs.append(TopPLogitsWarper(float(top_p)))
    if seed is not None:
        procs.append(SeededSampler([seed] if isinstance(seed, int) else list(seed)))
    return procs


# ---- streaming ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamedNote:
    """One note of a streamed melody. Beats are quarter notes; seconds follow the stream's tempo.

    Attributes:
        index: position of the note in the generated part (0 = first new note).
        pitch: MIDI pitch.
        onset, duration: in quarter-note beats from the start of the melody (prompt included).
        onset_seconds, duration_seconds: the same at `tempo_qpm`.
        bar: the bar the note starts in (0 = first bar of the melody).
        time_signature: the meter of that bar, e.g. "6/8".
    """

    index: int
    pitch: int
    onset: float
    duration: float
    onset_seconds: float
    duration_seconds: float
    bar: int = 0
    time_signature: str = "4/4"

    @property
    def end(self) -> float:
        return self.onset + self.duration


_STOP = object()


class _Cancelled(StoppingCriteria):
    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class NoteStreamer(BaseStreamer):
    """A transformers streamer that turns generated tokens into `StreamedNote`s as soon as each note is complete.

    Pass it to `generate(streamer=...)` running in another thread and iterate over it in this one (batch size 1).
    Prompt notes are not streamed.

    Example:
        >>> streamer = NoteStreamer(tok, tempo_qpm=100)                                            # doctest: +SKIP
        >>> Thread(target=model.generate, kwargs=dict(input_ids=ids, streamer=streamer)).start()   # doctest: +SKIP
        >>> for note in streamer: print(note.pitch, note.onset_seconds)                            # doctest: +SKIP
    """

    def __init__(self, tokenizer: MelodyTokenizer, tempo_qpm: float = 120.0, timeout: float | None = None):
        if not tempo_qpm or tempo_qpm <= 0:
            raise ConfigError(f"tempo_qpm={tempo_qpm} must be > 0 (quarter notes per minute, e.g. 120)")
        self.tracker = MelodyTracker(tokenizer)
        self.seconds_per_beat = 60.0 / float(tempo_qpm)
        self.timeout = timeout
        self.queue: queue.Queue = queue.Queue()
        self._prompt_done = False
        self._count = 0
        self.error: BaseException | None = None
        self.cancelled = threading.Event()

    def put(self, value: torch.Tensor) -> None:
        if value.dim() > 1 and value.shape[0] > 1:
            raise ValueError("NoteStreamer only supports batch size 1")
        ids = value.reshape(-1).tolist()
        if not self._prompt_done:
            self._prompt_done = True
            self.tracker.feed(ids)
            return
        tpq = self.tracker.ticks_per_quarter
        for note in self.tracker.feed(ids):
            beats, length = note.onset / tpq, note.duration / tpq
            self.queue.put(StreamedNote(self._count, note.pitch, beats, length, beats * self.seconds_per_beat,
                                        length * self.seconds_per_beat, note.bar, "{}/{}".format(*note.time_signature)))
            self._count += 1

    def end(self) -> None:
        self.queue.put(_STOP)

    def cancel(self) -> None:
        """Ask the generation to stop at its next step (see `stopping_criteria`)."""
        self.cancelled.set()

    def stopping_criteria(self) -> StoppingCriteria:
        """A stopping criterion for the same `generate` call that ends it once `cancel()` was called."""
        return _Cancelled(self.cancelled)

    def fail(self, error: BaseException) -> None:
        """Called by the generating thread when it raises: the iterator re-raises `error`."""
        self.error = error
        self.queue.put(_STOP)

    def __iter__(self) -> Iterator[StreamedNote]:
        while True:
            item = self.queue.get(timeout=self.timeout)
            if item is _STOP:
                if self.error is not None:
                    raise self.error
                return
            yield item
