"""Fast sampling for our GPT-2 models: the lean forward, grammar tables and a sliding window past the context.

`MelodyDecoder.sample` is what `MelodyPipeline` and `stream()` run unless an option only `model.generate` offers is
asked for (beam search, repetition penalties, a `generation_config`). It calls the same logits processors in the same
order as the `generate` path (`hf_melody.generation.logits_process.melody_logits_processors`), with the
grammar's masks looked up in `GrammarTables` instead of stepping the Python state machine, so the same seed gives
the same tokens on both paths.
When a melody outgrows the model's context the window slides: BOS (and the style token) stay, the most recent
tokens follow, and the cache is recomputed for that window. The kept head is what the sequence starts with, so a
style token the model wrote itself after a prompt of only BOS stays too.

`generate_ids` is the entry point for callers that build their own prompts (e.g. infilling): raw token ids in, new
ids out, with an exact bar budget. Like the pipeline it parses its options into a `MelodyGenerationConfig`, turns
that into processors, rules and limits with `decoding_plan` and samples with the model's one decoder
(`MelodyDecoder.for_model`).

Examples:
    >>> from hf_melody import MelodyPipeline
    >>> from hf_melody.generation.decoding import generate_ids
    >>> pipe = MelodyPipeline.from_pretrained("original")
    >>> tok = pipe.melody_tokenizer
    >>> new = generate_ids(pipe.model, tok, [tok.bos_token_id], seed=0, key="G major", exact_bars=4)
    >>> grammar = REMIGrammar.for_tokenizer(tok)
    >>> new[-1] == tok.eos_token_id, grammar.prompt_state([tok.bos_token_id, *new]).bar   # bars 0..3
    (True, 3)
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import LogitsProcessorList

from ..errors import ConfigError
from ..grammar.logits_process import grammar_scores, mask_early_eos
from ..grammar.remi import REMIGrammar
from ..grammar.state import FINISH_HORIZON, GrammarRules, LengthLimits
from ..grammar.tables import GrammarTables
from ..modeling.lean_gpt2 import LeanGPT2
from ..tokenizer import MelodyTokenizer
from .configuration import MelodyGenerationConfig
from .logits_process import SeededSampler, decoding_plan

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_TOKEN_CAP", "MelodyDecoder", "SampleResult", "generate_ids"]

DEFAULT_TOKEN_CAP = 16_384
"""New tokens a melody may take when no `max_new_tokens` is given (the length limits end it far earlier)."""
_DECODERS_LOCK = threading.Lock()
WINDOW_KEEP = 0.75
"""When the context is full, the window restarts with this share of it (BOS and style token included)."""


@dataclass
class SampleResult:
    """Token ids of each row (prompt + new, EOS included when reached) and whether each row ended with EOS."""

    sequences: list[list[int]]
    ended: list[bool]
    windows: int = 0
    short: list[bool] | None = None  # ended before its minimum length (only EOS was left)


class MelodyDecoder:
    """Samples melodies from a GPT-2 melody model with `LeanGPT2` (built once, rebuilt if the weights change).

    `MelodyDecoder.for_model(model, tokenizer)` is the one decoder of a model (the pipeline's and `generate_ids`'s):
    its lean forward and grammar tables are built once per model.

    Examples:
        >>> decoder = MelodyDecoder.for_model(model, tok)                                    # doctest: +SKIP
        >>> procs = melody_logits_processors(tok, seed=[0], constrained=False)              # doctest: +SKIP
        >>> decoder.sample([[tok.bos_token_id]], procs, rules=GrammarRules()).sequences     # doctest: +SKIP
    """

    _decoders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its MelodyDecoder (for_model)

    def __init__(self, model, tokenizer: MelodyTokenizer):
        self._model = weakref.ref(model)  # a weak reference: the cache of `for_model` must not keep models alive
        self.tokenizer = tokenizer
        self.grammar = REMIGrammar.for_tokenizer(tokenizer)
        self._lean: LeanGPT2 | None = None
        self._params = list(model.parameters())  # listing them per call costs ~0.7 ms on folk-base
        self._versions: list[int] = []
        self._lock = threading.Lock()  # one K/V cache: one call at a time (`sample`)

    @classmethod
    def for_model(cls, model, tokenizer: MelodyTokenizer) -> MelodyDecoder:
        """The decoder of `model` (made on first use, kept while the model lives; a new one for another tokenizer).

        Examples:
            >>> MelodyDecoder.for_model(pipe.model, tok) is MelodyDecoder.for_model(pipe.model, tok)  # doctest: +SKIP
            True
        """
        with _DECODERS_LOCK:  # two threads' first calls make one decoder, not two sharing nothing but the model
            decoder = cls._decoders.get(model)
            if decoder is None or decoder.tokenizer is not tokenizer:
                decoder = cls._decoders[model] = cls(model, tokenizer)
            return decoder

    @property
    def model(self):
        """The model this decoder samples from."""
        model = self._model()
        if model is None:
            raise ReferenceError("the model of this MelodyDecoder was deleted")
        return model

    def lean(self) -> LeanGPT2:
        """The lean forward of the model's current weights."""
        if self._params[0] is not self.model.get_input_embeddings().weight:  # parameters replaced, not updated
            self._params = list(self.model.parameters())
        versions = [p._version for p in self._params]
        if self._lean is None or versions != self._versions:
            self._lean = LeanGPT2(self.model)
            self._versions = versions
        return self._lean

    def _window(self, rows: torch.Tensor, length: int, size: int) -> torch.Tensor:
        """Each row's head (BOS, and the style token after it) followed by its most recent tokens: `size` tokens
        per row. The head is read from the sequence itself, not from the prompt: the model may have written the
        style token."""
        heads = self._heads(rows[:, :min(length, 2)].tolist())
        out = [torch.cat([row[:h], row[length - (size - h):length]]) for row, h in zip(rows, heads, strict=True)]
        return torch.stack(out)

    @torch.inference_mode()  # ~25% less per-op overhead than no_grad at this size
    def sample(self, prompts: Sequence[Sequence[int]], processors: LogitsProcessorList,
               rules: GrammarRules | None = None, limits: LengthLimits = LengthLimits(),
               max_new_tokens: int | None = None, stopping_criteria=None, streamer=None) -> SampleResult:
        """Sample one continuation per prompt (all prompts of the same length), in one batch.

        Args:
            prompts: token ids, BOS first; special tokens start new grammar segments (`REMIGrammar.prompt_state`).
            processors: what follows the grammar: pitch constraints, temperature, top-k, top-p, the seeded sampler
                (`melody_logits_processors(..., constrained=False)`); the argmax of their output is taken.
            rules: the grammar's rules, or None to sample without the grammar.
            limits: length limits counted from the end of the prompt (with the grammar; without it only
                `min_bars` / `min_new_notes` are applied here, through a processor of the caller).
            max_new_tokens: a cap on new tokens (None: no cap but `DEFAULT_TOKEN_CAP`; the window slides).
            stopping_criteria: called like `generate`'s, with the ids so far; True ends a row.
            streamer: a `NoteStreamer` (batch of one), fed the prompt and then every token; `cancel()` stops.

        Thread-safe: the decoder of a model is shared (`for_model`) and holds one K/V cache, so calls from several
        threads take turns (a lock around the whole call); each gets exactly what it would get alone.
        """
        with self._lock:
            return self._sample(prompts, processors, rules, limits, max_new_tokens, stopping_criteria, streamer)

    def _sample(self, prompts, processors, rules, limits, max_new_tokens, stopping_criteria, streamer
                ) -> SampleResult:
        tok, lean = self.tokenizer, self.lean()
        eos, pad = tok.eos_token_id, tok.pad_token_id
        b, p = len(prompts), len(prompts[0])
        if any(len(row) != p for row in prompts):
            raise ConfigError("MelodyDecoder.sample takes prompts of one length; sample them one by one")
        # 1. prepare: one id buffer for prompt + cap (no per-token torch.cat), the grammar state of each row as
        #    table indices, the sampler's noise drawn in chunks instead of one call per token
        cap = max_new_tokens if max_new_tokens is not None else DEFAULT_TOKEN_CAP
        ids = torch.full((b, p + cap), pad, dtype=torch.long)
        ids[:, :p] = torch.tensor([list(row) for row in prompts], dtype=torch.long)
        run = _GrammarRun(self.grammar, rules, limits, prompts, max_new_tokens, p) if rules is not None else None
        noise = _Noise.replacing(processors, self.tokenizer.vocab_size)
        if streamer is not None:
            streamer.put(ids[:, :p])
        # 2. prefill: the prompt's logits (a prompt longer than the context starts in its window)
        size = max(int(lean.n_positions * WINDOW_KEEP), 3)  # room for BOS, a style token and one more
        windows = 0
        if p > lean.n_positions:
            logits = lean.prefill(self._window(ids, p, size))
            windows += 1
        else:
            logits = lean.prefill(ids[:, :p])
        done = [False] * b
        ended = [False] * b
        finished = False  # any row done: only then are done rows padded (the common batch of one never is)
        n = p
        for step in range(cap):
            # 3. scores: grammar mask, then the caller's processors in `generate`'s order, then the Gumbel noise,
            #    so the argmax is the seeded sample `generate` would take
            scores = logits
            if run is not None:
                scores = run.scores(scores, n)
            if processors:
                view = ids[:, :n]
                for proc in processors:
                    scores = proc(view, scores)
            if noise is not None:
                scores = noise.add(scores, step)
            nxt = scores.argmax(-1)
            if finished:
                nxt = nxt.masked_fill(torch.tensor(done), pad)
            # 4. advance: write the token, step the grammar, mark the rows that ended (a legal EOS or not)
            ids.select(1, n).copy_(nxt)
            n += 1
            tokens = nxt.tolist()
            if run is not None:
                run.advance(tokens, done)
            for r, t in enumerate(tokens):
                if t == eos and not done[r]:
                    ended[r] = run is None or run.legal_end[r]
                    done[r] = finished = True
            # 5. stop: the streamer sees every token; stopping criteria and a cancelled stream end rows early
            if streamer is not None:
                streamer.put(nxt)
            if stopping_criteria:
                stop = stopping_criteria(ids[:, :n], scores).tolist()
                done = [d or x for d, x in zip(done, stop, strict=True)]
                finished = finished or any(stop)
            if (finished and all(done)) or (streamer is not None and streamer.cancelled.is_set()):
                break
            # 6. next logits: slide the window when the context is full, else one cached step (a Python int for
            #    a batch of one skips a tensor op)
            if lean.length >= lean.n_positions:
                logits = lean.prefill(self._window(ids, n, size))
                windows += 1
            elif b == 1:
                logits = lean.step_token(tokens[0])
            else:
                logits = lean.step(nxt)
        else:
            if max_new_tokens is None:
                logger.warning("stopped after %d new tokens without an end (DEFAULT_TOKEN_CAP)", cap)
        # 7. finish: close the stream; rows as lists, cut where the longest row stopped
        if streamer is not None:
            streamer.end()
        short = run.short if run is not None else [False] * b
        return SampleResult(ids[:, :n].tolist(), ended, windows, short)

    def _heads(self, rows: Sequence[Sequence[int]]) -> list[int]:
        """How many leading tokens of each row a sliding window keeps: BOS, and the style token after it."""
        styles = set(self.grammar.segment_ids) - {self.tokenizer.bos_token_id}
        return [1 + int(len(row) > 1 and int(row[1]) in styles) for row in rows]


class _Noise:
    """The `SeededSampler`'s Gumbel noise drawn 64 steps at a time: the same numbers (a generator's stream does not
    depend on how it is split), a fraction of the calls."""

    FIRST, CHUNK = 8, 64

    def __init__(self, generators: list[torch.Generator], vocab_size: int):
        self.generators, self.vocab_size = generators, vocab_size
        self.table: torch.Tensor | None = None
        self.rows: tuple[torch.Tensor, ...] = ()
        self.start = 0

    @classmethod
    def replacing(cls, processors: LogitsProcessorList, vocab_size: int) -> _Noise | None:
        """Take a trailing `SeededSampler` out of `processors` (in place) and return its replacement."""
        if processors and isinstance(processors[-1], SeededSampler):
            return cls(processors.pop().generators, vocab_size)
        return None

    def add(self, scores: torch.Tensor, step: int) -> torch.Tensor:
        """`scores` plus the noise of `step` (steps come in order from 0)."""
        k = step - self.start
        if self.table is None or k >= len(self.rows):
            # the first draw is short, so the first notes (of a stream) do not wait for 64 steps of noise
            self.start, k, n = step, 0, self.FIRST if self.table is None else self.CHUNK
            u = torch.stack([torch.rand(n * self.vocab_size, generator=g, dtype=torch.float64)
                             for g in self.generators]).view(len(self.generators), n, self.vocab_size)
            self.table = (-torch.log(-torch.log(u.clamp(1e-300, 1.0 - 1e-16)))).to(scores.dtype)
            self.rows = self.table.unbind(1)  # one view per step, made at once
        return scores + self.rows[k]


class _GrammarRun:
    """The grammar state of each row of one `MelodyDecoder.sample` call, as table indices and counters."""

    def __init__(self, grammar: REMIGrammar, rules: GrammarRules, limits: LengthLimits, prompts, max_new_tokens,
                 prompt_length: int):
        self.grammar, self.rules, self.limits = grammar, rules, limits
        self.tables = GrammarTables.for_rules(grammar, rules)
        self.eos = grammar.eos_token_id
        self.sid, self.bar, self.notes, self.bounds = [], [], [], []
        for row in prompts:
            s = grammar.prompt_state(row)
            bounds = grammar.length_limits(s, limits)
            self.sid.append(self.tables.state_id(s))
            self.bar.append(s.bar)
            self.notes.append(s.notes)
            self.bounds.append(bounds)
        self.prompts = [list(row) for row in prompts]
        self.new: list[list[int]] = [[] for _ in prompts]
        self.legal_end = [False] * len(prompts)
        self.short = [False] * len(prompts)
        needs_ending = rules.tonic is not None or (rules.exact_end and limits.num_bars is not None)
        self.max_length = prompt_length + max_new_tokens if max_new_tokens is not None and needs_ending else None
        self.shadow = None  # Python states for the last FINISH_HORIZON tokens of a budget (as the reference path)

    def scores(self, logits: torch.Tensor, length: int) -> torch.Tensor:
        """`grammar_scores` of the rows' masks (`REMIGrammarProcessor`'s arithmetic, op for op)."""
        if len(self.sid) == 1 and (self.max_length is None or self.max_length - length > FINISH_HORIZON):
            return self._scores_one(logits)
        t = self.tables
        rows, early = [], []
        for r, (sid, bar, notes, (end_bar, max_notes, min_bar, min_notes)) in enumerate(
                zip(self.sid, self.bar, self.notes, self.bounds, strict=True)):
            rows.append(t.row(sid, None if end_bar is None else end_bar - bar,
                              None if max_notes is None else max_notes - notes))
            if bar < min_bar or notes < min_notes:
                early.append(r)
        budget = None if self.max_length is None else self.max_length - length
        if budget is not None and budget <= FINISH_HORIZON:
            masks = self._budget_masks(budget)
        else:
            masks = t.masks[rows]
        if early:
            masks = mask_early_eos(masks, torch.tensor(early), self.eos)
        return grammar_scores(logits, masks, self.eos)

    def _scores_one(self, logits: torch.Tensor) -> torch.Tensor:
        """`scores` for one melody away from a token budget: the mask arithmetic was done when the row was built."""
        t = self.tables
        (end_bar, max_notes, min_bar, min_notes), bar, notes = self.bounds[0], self.bar[0], self.notes[0]
        row = t.row(self.sid[0], None if end_bar is None else end_bar - bar,
                    None if max_notes is None else max_notes - notes)
        logp = logits.log_softmax(-1)
        if bar < min_bar or notes < min_notes:
            return logp.masked_fill(t.illegal_without_eos_rows[row], float("-inf"))
        if not t.eos_with_others[row]:
            return logp.masked_fill(t.illegal_rows[row], float("-inf"))
        not_others, eos = t.not_others.select(0, row), self.eos
        p_eos = logp[:, eos].exp().clamp(max=1 - 1e-6)
        shift = torch.log1p(-p_eos) - torch.logsumexp(logp.masked_fill(not_others, float("-inf")), -1)
        kept = (logp + shift[:, None]).masked_fill(not_others, float("-inf"))
        kept[:, eos] = logp[:, eos]
        return kept

    def _budget_masks(self, budget: int) -> torch.Tensor:
        g = self.grammar
        if self.shadow is None:
            self.shadow = []
            for prompt, new in zip(self.prompts, self.new, strict=True):
                s = g.prompt_state(prompt)
                g.length_limits(s, self.limits)
                g.feed(s, new)
                self.shadow.append(s)
        return torch.stack([g.allowed_mask(s, self.rules, budget) for s in self.shadow])

    def advance(self, tokens: list[int], done: list[bool]) -> None:
        t = self.tables
        for r, tok in enumerate(tokens):
            if done[r]:
                continue
            sid = self.sid[r]
            nxt = t.transitions(sid)[tok]
            self.legal_end[r] = tok == self.eos and nxt >= 0
            if tok == self.eos:
                _, _, min_bar, min_notes = self.bounds[r]
                self.short[r] = self.bar[r] < min_bar or self.notes[r] < min_notes
            if nxt >= 0:
                self.bar[r] += t.bars_added[sid][tok]
                self.notes[r] += t.notes_added[sid][tok]
                self.sid[r] = nxt
            self.new[r].append(tok)
            if self.shadow is not None:
                self.grammar.feed(self.shadow[r], [tok])


def generate_ids(model, tokenizer: MelodyTokenizer, prompt_ids: Sequence[int], *, seed: int | None = None,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 do_sample: bool = True, key: str | None = None, scale: Sequence[int] | None = None,
                 key_strictness: str | float = "hard", pitch_range: Sequence[int] | None = None,
                 constrained: bool = True, exact_bars: int | None = None, max_new_notes: int | None = None,
                 min_new_notes: int | None = None, end_on_tonic: bool = False,
                 max_new_tokens: int | None = None, chords: str | None = None,
                 chord_strictness: str | float | None = None, chromatic_passing: bool = False,
                 first_chord: int = 0) -> list[int]:
    """New token ids that continue raw `prompt_ids` (for callers that build their own prompts, e.g. infilling).

    The prompt is taken as is: no BOS is added, and every special token in it other than PAD/EOS (BOS, a style, or
    one the grammar does not know such as `Infill_None`) starts a new grammar segment, so the continuation may open
    with `Bar`. With `exact_bars=k`, EOS is masked until k new `Bar` tokens have been written (0: finish the bar the
    prompt opened) and a (k+1)-th is
    masked, so the model finishes the k-th bar and ends with EOS (the returned ids end with EOS unless a cap cut
    them). Sampling, key, range, chords and grammar work as in `MelodyPipeline.__call__` (`first_chord`: the bar of
    the progression the first new bar gets, 0 its first chord); `seed` makes it reproducible.
    The options are parsed into a `MelodyGenerationConfig` as given (no bundle defaults, no default length: the
    defaults are those of this signature) and decoded through `decoding_plan`, as the pipeline's are.

    Examples:
        >>> new = generate_ids(model, tok, prompt + [tok.miditok["InfillMiddle_None"]], seed=0, exact_bars=2,
        ...                    key="D minor")                                                  # doctest: +SKIP
    """
    config = MelodyGenerationConfig(
        seed=seed, temperature=temperature, top_k=top_k, top_p=top_p, do_sample=do_sample, key=key, scale=scale,
        key_strictness=None if key_strictness == "hard" else key_strictness, pitch_range=pitch_range,
        constrained=constrained, exact_bars=exact_bars, max_new_notes=max_new_notes, min_new_notes=min_new_notes,
        end_on_tonic=end_on_tonic, max_new_tokens=max_new_tokens, chords=chords, chord_strictness=chord_strictness,
        chromatic_passing=chromatic_passing)
    config.resolve(model)  # the model's checks only: the options keep this function's defaults
    prompt = [int(i) for i in prompt_ids]
    if not prompt or any(not 0 <= i < tokenizer.vocab_size for i in prompt):
        raise ConfigError(f"prompt_ids must be a non-empty list of ids in 0..{tokenizer.vocab_size - 1}")
    plan = decoding_plan(tokenizer, config.with_seed(), len(prompt), allow_style=False, first_chord=first_chord)
    result = MelodyDecoder.for_model(model, tokenizer).sample([prompt], plan.fast_processors(), plan.rules,
                                                              plan.limits, plan.token_cap)
    return result.sequences[0][len(prompt):]
