"""The REMI grammar of monophonic melodies: a state machine over tokens and the legal next tokens of each state.

The rules follow what miditok's REMI encoder writes for a one-voice melody and what its decoder and
`tokens_errors` accept (miditok 3.1, `tokenizations/remi.py`):

- a piece starts `[Style] Bar TimeSig`; every later `Bar` is followed by the same `TimeSig` (no meter changes);
- a note is `Position Pitch Duration`; its `Position` is where the previous note or rest ended (the *cursor*),
  so positions strictly increase within a bar, stay below the bar length, and notes never overlap;
- a `Rest` starts at the cursor and may run over bar lines (the decoder moves to the right bar by itself, and the
  encoder writes no `Bar` for bars it covers); the next `Position` must be where the rests end; a run of rests is
  written like the encoder's greedy split of a gap: each rest shorter than the one before, except repeats of the
  longest rest (this also rules out endless runs of short rests);
- `Bar` comes only once the cursor has reached the bar line (a note held up to or over it);
- EOS only right after a note's `Duration`.

Time is tracked in the tokenizer's ticks exactly like the decoder does, so the notes a `MelodyTracker`
(`hf_melody.generation.streamers`) reports are the notes `MelodyTokenizer.decode` returns. BPE tokens are handled by
simulating their expansion. The token kinds, phases and `MelodyState` live in `grammar.state`; the state-id
tables of the lean decoder in `grammar.tables`; `REMIGrammarProcessor` (the logits processor) in
`grammar.logits_process`.

Examples:
    >>> from hf_melody import MelodyTokenizer
    >>> from hf_melody.grammar.remi import REMIGrammar, GrammarRules
    >>> tok = MelodyTokenizer()
    >>> grammar = REMIGrammar.for_tokenizer(tok)
    >>> state = grammar.initial_state()
    >>> grammar.feed(state, tok.encode_base_tokens(["Bar_None", "TimeSig_3/4"]))
    []
    >>> sorted(tok.miditok[i] for i in grammar.allowed_ids(state, GrammarRules()))[:3]
    ['Position_0', 'Rest_0.1.4', 'Rest_0.2.4']
"""

from __future__ import annotations

import logging
from functools import lru_cache

import torch

from ..music import DEFAULT_TIME_SIGNATURE
from ..tokenizer import MelodyTokenizer
from .state import (
    BAR,
    DURATION,
    END,
    FINISH_HORIZON,
    FIRST_KINDS,
    K_BAR,
    K_DURATION,
    K_EOS,
    K_OTHER,
    K_PAD,
    K_PITCH,
    K_POSITION,
    K_REST,
    K_STYLE,
    K_TIMESIG,
    KINDS,
    PITCH,
    POSITION,
    REST,
    START,
    TIMESIG,
    GrammarRules,
    LengthLimits,
    MelodyState,
    TrackedNote,
)

logger = logging.getLogger(__name__)

__all__ = ["FINISH_HORIZON", "GrammarRules", "LengthLimits", "MelodyState", "REMIGrammar", "TrackedNote"]



class REMIGrammar:
    """The REMI state machine of a `MelodyTokenizer` (plain REMI or BPE), built once per tokenizer.

    `apply` / `feed` move a `MelodyState` over tokens (one named step per token kind); `count_tensors` and
    `keep_within` count the notes and bars of token ids; `allowed_mask(state, rules)` gives the legal next tokens,
    cached per *state class* (phase, meter, cursor, distance to the limits), so after a short
    warm-up a generation step costs a dictionary lookup per sequence.

    Examples:
        >>> grammar = REMIGrammar.for_tokenizer(MelodyTokenizer())          # doctest: +SKIP
        >>> state = grammar.initial_state(); grammar.feed(state, ids)       # doctest: +SKIP
        >>> mask = grammar.allowed_mask(state, GrammarRules())              # doctest: +SKIP
    """

    def __init__(self, tokenizer: MelodyTokenizer):
        mt = tokenizer.miditok
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.vocab_size
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id
        self.ticks_per_quarter = int(mt.time_division)
        # miditok's own decoding tables: ticks per beat by denominator, durations and rests in ticks per beat value
        self._tpb = {int(k): int(v) for k, v in mt._tpb_per_ts.items()}
        self._pos_per_beat = int(mt.config.max_num_pos_per_beat)
        self._dur_ticks = {int(tpb): dict(table) for tpb, table in mt._tpb_tokens_to_ticks.items()}
        self._rest_ticks = {int(tpb): dict(table) for tpb, table in mt._tpb_rests_to_ticks.items()}
        self._max_rest = {tpb: max(table.values(), default=0) for tpb, table in self._rest_ticks.items()}
        base = {tok_str: self._parse(tok_str) for tok_str in mt.vocab}
        self.expansions: list[tuple[tuple[int, object], ...]] = []
        for i in range(self.vocab_size):
            strings = tokenizer.to_base_tokens([i]) if tokenizer.is_bpe else [mt[i]]
            # a BPE vocabulary may hold a token that stands for nothing (the word-boundary marker): never legal
            self.expansions.append(tuple(base[s] for s in strings) or ((K_OTHER, None),))
        self._by_first_kind: dict[int, list[int]] = {}
        for i, exp in enumerate(self.expansions):
            self._by_first_kind.setdefault(exp[0][0], []).append(i)
        kinds_of = {kind: sorted({v for k, v in base.values() if k == kind}, key=str) for kind in KINDS.values()}
        self._time_sigs = kinds_of[K_TIMESIG]
        self._pitches = sorted(kinds_of[K_PITCH])
        self._durations = kinds_of[K_DURATION]
        self._rests = kinds_of[K_REST]
        # Without Rest tokens (our REMI since 0.2) a silence is a gap: a Position may lie after the cursor, and a Bar
        # may follow a note that ends before the bar line (empty bars are `Bar TimeSig` alone).
        self.gaps = not self._rests
        self.max_notes_per_token = max(sum(k == K_DURATION for k, _ in exp) for exp in self.expansions)
        self.pitch_of = {i: [v for k, v in exp if k == K_PITCH] for i, exp in enumerate(self.expansions)}
        self._span_cache: dict[int, int] = {}
        # special tokens (BOS, styles, and any the grammar does not know, e.g. infilling markers) open a new segment
        # of a prompt; PAD and EOS do not (see `prompt_state`)
        self.segment_ids = frozenset(int(i) for i in mt.special_tokens_ids) - {self.pad_token_id, self.eos_token_id}
        self._steps = {K_STYLE: self._style, K_EOS: self._eos, K_BAR: self._bar, K_TIMESIG: self._time_signature,
                       K_POSITION: self._position, K_PITCH: self._pitch, K_DURATION: self._duration,
                       K_REST: self._rest}
        # the legal-token search's caches: masks per state class, and whether an ending fits in a budget
        self._finish_cache: dict[tuple, bool] = {}
        self._mask_cache: dict[tuple, torch.Tensor] = {}
        self._count_tensors: tuple[torch.Tensor, torch.Tensor] | None = None
        # what each token id adds to a melody: notes (Pitch tokens) and bar lines (Bar tokens)
        self.notes_per_token = [sum(k == K_PITCH for k, _ in exp) for exp in self.expansions]
        self.bars_per_token = [sum(k == K_BAR for k, _ in exp) for exp in self.expansions]

    @staticmethod
    @lru_cache(maxsize=8)
    def _cached(tokenizer_id: int, tokenizer: MelodyTokenizer) -> REMIGrammar:
        return REMIGrammar(tokenizer)

    @classmethod
    def for_tokenizer(cls, tokenizer: MelodyTokenizer) -> REMIGrammar:
        """The grammar of `tokenizer`, built on first use and shared afterwards."""
        return cls._cached(id(tokenizer), tokenizer)

    # ---- token parsing and meter arithmetic -----------------------------------------------------------------------
    @staticmethod
    def _parse(tok_str: str) -> tuple[int, object]:
        kind, _, value = tok_str.partition("_")
        if kind.startswith("Style-"):
            return K_STYLE, kind[6:]
        code = KINDS.get(kind, K_OTHER)
        if code == K_TIMESIG:
            num, den = value.split("/")
            return code, (int(num), int(den))
        if code in (K_POSITION, K_PITCH):
            return code, int(value)
        return code, value

    def ticks_per_beat(self, ts: tuple[int, int] | None) -> int:
        return self._tpb[(ts or DEFAULT_TIME_SIGNATURE)[1]]

    def ticks_per_bar(self, ts: tuple[int, int] | None) -> int:
        ts = ts or DEFAULT_TIME_SIGNATURE
        return ts[0] * self._tpb[ts[1]]

    def ticks_per_position(self, ts: tuple[int, int] | None) -> int:
        return self.ticks_per_beat(ts) // self._pos_per_beat

    def _max_span(self, tpb: int) -> int:
        """The most ticks one token (expansion) can move time forward, at `tpb` ticks per beat."""
        if tpb not in self._span_cache:
            durs, rests = self._dur_ticks[tpb], self._rest_ticks[tpb]
            self._span_cache[tpb] = max(
                sum(durs[v] if k == K_DURATION else rests[v] if k == K_REST else 0 for k, v in exp)
                for exp in self.expansions
            )
        return self._span_cache[tpb]

    # ---- the state machine ----------------------------------------------------------------------------------------
    def initial_state(self) -> MelodyState:
        return MelodyState()

    def room(self, s: MelodyState, start: int) -> int | None:
        """Ticks from `start` (relative to the current bar) to the end limit, or None without one."""
        if s.end_bar is None or s.ts is None:
            return None
        return (s.end_bar - s.bar) * self.ticks_per_bar(s.ts) - start

    def can_end(self, s: MelodyState, rules: GrammarRules) -> bool:
        """Whether EOS is legal now: right after a note, on the tonic if asked, at the end bar line if exact."""
        if s.phase != DURATION:
            return False
        if rules.tonic is not None and s.pitch % 12 != rules.tonic:
            return False
        if rules.exact_end and s.end_bar is not None and self.room(s, s.cursor) != 0:
            return False
        return True

    def _must_be_last(self, s: MelodyState) -> bool:
        """Whether the note being placed (at `s.t`) can have no successor: the note limit or no room for another."""
        if s.max_notes is not None and s.notes + 1 >= s.max_notes:
            return True
        room = self.room(s, s.t)
        return room is not None and room < 2 * self.ticks_per_position(s.ts)

    def apply(self, s: MelodyState, kind: int, value, rules: GrammarRules | None = None) -> bool:
        """Advance `s` by one base token. With `rules`, return False (state then undefined) if it is illegal;
        without, follow miditok's decoder whatever the token (for prompts).

        Examples:
            >>> s = grammar.initial_state()                                                   # doctest: +SKIP
            >>> grammar.apply(s, K_BAR, None, GrammarRules()), s.phase == BAR                 # doctest: +SKIP
            (True, True)
        """
        if s.phase == END:
            return kind in (K_EOS, K_PAD) or rules is None
        step = self._steps.get(kind)
        if step is None:  # PAD, BOS and tokens the grammar does not know: the decoder skips them
            return rules is None
        return step(s, value, rules)

    # one step per token kind: check it against `rules` (when given), then move the state as the decoder does
    def _style(self, s: MelodyState, value, rules: GrammarRules | None) -> bool:
        if rules is not None and not (s.phase == START and not s.styled and rules.allow_style):
            return False
        s.styled = True
        return True

    def _eos(self, s: MelodyState, value, rules: GrammarRules | None) -> bool:
        if rules is not None and not self.can_end(s, rules):
            return False
        s.phase = END
        return True

    def _bar(self, s: MelodyState, value, rules: GrammarRules | None) -> bool:
        if s.bar < 0:  # the first bar starts at tick 0
            if rules is not None and s.phase != START:
                return False
            s.bar, s.t, s.e = 0, 0, min(s.e, 0)
            s.phase = BAR
            return True
        length = self.ticks_per_bar(s.ts)
        if rules is not None:
            if s.phase not in (TIMESIG, DURATION) or (s.cursor < length and not self.gaps):
                return False
            if s.end_bar is not None and s.bar + 1 >= s.end_bar:
                return False
            if s.max_notes is not None and s.notes >= s.max_notes:
                return False  # the note limit is reached: only EOS is left
        s.bar += 1
        s.bar_tick += length
        s.e -= length
        s.t = 0
        s.phase = BAR
        return True

    def _time_signature(self, s: MelodyState, value, rules: GrammarRules | None) -> bool:
        if rules is not None and (s.phase != BAR or (s.ts is not None and value != s.ts)):
            return False
        s.ts = value
        s.phase = TIMESIG
        return True

    def _position(self, s: MelodyState, value, rules: GrammarRules | None) -> bool:
        tick = value * self.ticks_per_position(s.ts)
        if rules is not None:
            if s.phase not in (TIMESIG, DURATION, REST):
                return False
            if (tick < s.cursor if self.gaps else tick != s.cursor) or tick >= self.ticks_per_bar(s.ts):
                return False
            if s.max_notes is not None and s.notes >= s.max_notes:
                return False
        if s.bar < 0:
            s.bar = 0
        s.t = tick
        s.phase = POSITION
        return True

    def _pitch(self, s: MelodyState, value, rules: GrammarRules | None) -> bool:
        if rules is not None:
            if s.phase != POSITION:
                return False
            if rules.tonic is not None and value % 12 != rules.tonic and self._must_be_last(s):
                return False
        s.pitch = value
        s.phase = PITCH
        return True

    def _duration(self, s: MelodyState, value, rules: GrammarRules | None) -> bool:
        if s.phase != PITCH:  # the decoder ignores a Duration that follows no Pitch
            return rules is None
        d = self._dur_ticks[self.ticks_per_beat(s.ts)][value]
        if rules is not None:
            room = self.room(s, s.t)
            if room is not None:
                if d > room:
                    return False
                if d == room and rules.tonic is not None and s.pitch % 12 != rules.tonic:
                    return False
        s.e = max(s.e, s.t + d)
        s.notes += 1
        s.phase = DURATION
        return True

    def _rest(self, s: MelodyState, value, rules: GrammarRules | None) -> bool:
        tpb = self.ticks_per_beat(s.ts)
        r = self._rest_ticks[tpb][value]
        if rules is not None:
            if s.phase not in (TIMESIG, DURATION, REST):
                return False
            if s.phase == REST and not (r < s.rest or r == s.rest == self._max_rest[tpb]):
                return False  # not the encoder's greedy split of a gap
            if s.max_notes is not None and s.notes >= s.max_notes:
                return False
            room = self.room(s, s.cursor)
            if room is not None and r > room - self.ticks_per_position(s.ts):
                return False  # a rest must leave room for one more note
        if s.bar < 0:
            s.bar = 0
        s.t = s.cursor + r
        s.rest = r
        length = self.ticks_per_bar(s.ts)
        while s.t >= length:  # a rest may run over bar lines: the decoder moves to the right bar
            s.t -= length
            s.e -= length
            s.bar += 1
            s.bar_tick += length
        s.phase = REST
        return True

    def note_of(self, s: MelodyState, kind: int, value) -> TrackedNote | None:
        """The note that base token `(kind, value)` completes in state `s`, if any."""
        if kind != K_DURATION or s.phase != PITCH:
            return None
        return TrackedNote(s.bar_tick + s.t, self._dur_ticks[self.ticks_per_beat(s.ts)][value], s.pitch,
                           max(s.bar, 0), s.ts or DEFAULT_TIME_SIGNATURE)

    def feed(self, s: MelodyState, ids, rules: GrammarRules | None = None) -> list[TrackedNote]:
        """Advance `s` over token ids (BPE ids expanded); returns the notes they complete, in absolute ticks.

        Without `rules` this follows the decoder for any input (use it for prompts); with `rules` it raises
        `ValueError` at the first illegal token.
        """
        notes = []
        for i in ids:
            for kind, value in self.expansions[int(i)]:
                note = self.note_of(s, kind, value)
                if not self.apply(s, kind, value, rules):
                    raise ValueError(f"token {self.tokenizer.miditok[int(i)]!r} is illegal in {s!r}")
                if note is not None:
                    notes.append(note)
        return notes

    # ---- counting notes and bars ----------------------------------------------------------------------------------
    def count_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Two vocabulary-sized tensors: the notes (Pitch tokens) and bar lines (Bar tokens) each token id adds.

        Examples:
            >>> notes, bars = grammar.count_tensors()                                         # doctest: +SKIP
            >>> int(notes[ids].sum()), int(bars[ids].sum())      # notes and bar lines in ids  # doctest: +SKIP
        """
        if self._count_tensors is None:
            self._count_tensors = (torch.tensor(self.notes_per_token, dtype=torch.long),
                                   torch.tensor(self.bars_per_token, dtype=torch.long))
        return self._count_tensors

    def keep_within(self, ids, max_notes: int | None = None, max_bars: int | None = None) -> int:
        """How many leading `ids` to keep: up to the first EOS or PAD, and before the token that would take them
        past `max_notes` notes or `max_bars` Bar tokens (None: no limit).

        Examples:
            >>> new = ids[prompt_length:]                                                       # doctest: +SKIP
            >>> new[:grammar.keep_within(new, max_notes=32)]                 # at most 32 notes  # doctest: +SKIP
        """
        ends = (self.eos_token_id, self.pad_token_id)
        notes = bars = 0
        for k, i in enumerate(ids):
            if i in ends:
                return k
            notes += self.notes_per_token[i]
            bars += self.bars_per_token[i]
            if (max_notes is not None and notes > max_notes) or (max_bars is not None and bars > max_bars):
                return k
        return len(ids)

    def prompt_state(self, ids) -> MelodyState:
        """The state after a prompt of raw token ids, following the decoder whatever they hold: each special token
        other than PAD/EOS (BOS, a style, or one the grammar does not know, such as an infilling marker) starts a new
        segment, so what follows it may open with `Bar` again.

        Examples:
            >>> bar = tok.encode_base_tokens(["Bar_None"])                                # doctest: +SKIP
            >>> state = grammar.prompt_state([tok.bos_token_id, *bar])                      # doctest: +SKIP
        """
        s = self.initial_state()
        for i in ids:
            if int(i) in self.segment_ids:
                s = self.initial_state()
            self.feed(s, [i])
        return s

    def length_limits(self, s: MelodyState, limits: LengthLimits) -> tuple[int | None, int | None, int, int]:
        """`(end_bar, max_notes, min_bar, min_notes)` of a generation starting in `s` (absolute bar index and note
        count): Bar is illegal from `end_bar - 1` on, notes from `max_notes` on, and EOS waits until `s.bar >=
        min_bar` and `s.notes >= min_notes`. Sets `s.end_bar` and `s.max_notes`."""
        first = 0 if s.bar < 0 else s.bar + s.cursor // self.ticks_per_bar(s.ts)  # the unfinished bar counts
        if limits.exact_bars is not None:
            first = s.bar + 1  # count Bar tokens from the end of the prompt
            bars, min_bars = limits.exact_bars, limits.exact_bars
        else:
            bars = limits.num_bars if limits.num_bars is not None else limits.max_bars
            min_bars = limits.min_bars or 0
        s.end_bar = None if bars is None else first + bars
        s.max_notes = None if limits.max_new_notes is None else s.notes + limits.max_new_notes
        return s.end_bar, s.max_notes, first + min_bars - 1, s.notes + (limits.min_new_notes or 0)

    # ---- legal next tokens: simulated expansions, cached per state class -----------------------------------------
    def state_key(self, s: MelodyState, rules: GrammarRules, budget: int | None = None) -> tuple:
        """What the legal continuations of `s` (within `budget` more tokens) depend on: the cache key of its mask.

        Distances to the limits are capped where they stop mattering: past the most time or notes one token (or
        `budget` base tokens) can use, any larger value allows the same continuations.
        """
        g = self
        if s.phase == END:
            return (END,)
        tpb = g.ticks_per_beat(s.ts)
        room = None
        if s.end_bar is not None and s.ts is not None:
            start = s.t if s.phase in (POSITION, PITCH) else s.cursor
            longest = max(max(g._dur_ticks[tpb].values()), max(g._rest_ticks[tpb].values(), default=0))
            span = g._max_span(tpb) + (budget or 0) * longest
            cap = span + 2 * g.ticks_per_bar(s.ts) + 2 * g.ticks_per_position(s.ts)
            room = min(g.room(s, start), cap)
        notes_left = None
        if s.max_notes is not None:
            notes_left = min(s.max_notes - s.notes, g.max_notes_per_token + 1 + (budget or 0))
        tonic = None
        if rules.tonic is not None and s.phase in (PITCH, DURATION):
            tonic = s.pitch % 12 == rules.tonic
        if s.phase in (POSITION, PITCH):
            where = (s.t, max(s.e, s.t))
        elif s.phase == REST:
            where = (s.cursor, s.rest)
        else:
            where = (s.cursor,)
        return (s.phase, s.ts, where, room, notes_left, tonic, s.styled and s.phase == START, s.bar < 0, rules,
                budget)

    def _finish_moves(self, s: MelodyState, rules: GrammarRules) -> list[tuple[int, object]]:
        """Base tokens worth trying when looking for the shortest ending (one pitch stands for all: only whether
        it is the tonic matters to the grammar)."""
        g = self
        if s.phase == START:
            return [(K_BAR, None)]
        if s.phase == BAR:
            return [(K_TIMESIG, ts) for ts in ([s.ts] if s.ts is not None else g._time_sigs)]
        if s.phase == POSITION:
            pitch = next(p for p in g._pitches if rules.tonic is None or p % 12 == rules.tonic)
            return [(K_PITCH, pitch)]
        if s.phase == PITCH:
            ticks = g._dur_ticks[g.ticks_per_beat(s.ts)]
            return [(K_DURATION, d) for d in sorted(g._durations, key=lambda d: -ticks[d])]
        moves: list[tuple[int, object]] = []
        tpp = g.ticks_per_position(s.ts)
        if s.cursor % tpp == 0:
            moves.append((K_POSITION, s.cursor // tpp))
        elif g.gaps and -(-s.cursor // tpp) * tpp < g.ticks_per_bar(s.ts):
            moves.append((K_POSITION, -(-s.cursor // tpp)))
        tpb = g.ticks_per_beat(s.ts)
        moves += [(K_REST, r) for r in sorted(g._rests, key=lambda r: -g._rest_ticks[tpb][r])]
        return [*moves, (K_BAR, None)]

    def can_finish(self, s: MelodyState, budget: int, rules: GrammarRules) -> bool:
        """Whether the melody can still end legally (EOS included) within `budget` more base tokens."""
        if s.phase == END:
            return True
        if budget <= 0:
            return False
        if self.can_end(s, rules):
            return True
        if budget == 1:
            return False
        key = self.state_key(s, rules, budget)
        done = self._finish_cache.get(key)
        if done is None:
            done = False
            for kind, value in self._finish_moves(s, rules):
                sim = s.copy()
                if self.apply(sim, kind, value, rules) and self.can_finish(sim, budget - 1, rules):
                    done = True
                    break
            if len(self._finish_cache) > 500_000:
                self._finish_cache.clear()
            self._finish_cache[key] = done
        return done

    def allowed_ids(self, s: MelodyState, rules: GrammarRules, budget: int | None = None) -> list[int]:
        """Token ids whose whole expansion is a legal continuation of `s` (EOS included when it is).

        With a `budget` (tokens left, this one included) and an ending to reach (`rules.tonic` or
        `rules.exact_end`), only tokens after which that ending stays reachable in time are kept.
        """
        out = []
        for kind in FIRST_KINDS[s.phase]:
            for i in self._by_first_kind.get(kind, ()):
                sim = s.copy()
                if all(self.apply(sim, k, v, rules) for k, v in self.expansions[i]):
                    if budget is None or self.can_finish(sim, budget - 1, rules):
                        out.append(i)
        if s.phase == END:
            out = [self.eos_token_id, self.pad_token_id]
        return sorted(set(out))

    def allowed_mask(self, s: MelodyState, rules: GrammarRules, budget: int | None = None) -> torch.Tensor:
        """A boolean vocabulary-sized mask of the legal next tokens (cached per state class).

        `budget`: tokens that may still be generated, this one included (see `allowed_ids`); when the asked-for
        ending cannot fit any more, the plain grammar applies (the melody is then cut by the token limit). Never
        empty: if no token is legal at all (a prompt off the tokenizer's grid), EOS is allowed.
        """
        needs_ending = rules.tonic is not None or (rules.exact_end and s.end_bar is not None)
        if budget is not None and (budget > FINISH_HORIZON or not needs_ending):
            budget = None
        key = self.state_key(s, rules, budget)
        mask = self._mask_cache.get(key)
        if mask is None:
            ids = self.allowed_ids(s, rules, budget)
            if not ids and budget is not None:
                logger.info("the asked-for ending no longer fits in the tokens left (%r); going on without it", s)
                ids = self.allowed_ids(s, rules)
            if not ids:
                logger.warning("no legal continuation (%r: a prompt off the tokenizer's grid?); ending here", s)
                ids = [self.eos_token_id]
            mask = torch.zeros(self.vocab_size, dtype=torch.bool)
            mask[ids] = True
            if len(self._mask_cache) > 200_000:
                self._mask_cache.clear()
            self._mask_cache[key] = mask
        return mask
