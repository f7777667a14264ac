"""The legal next tokens of a REMI grammar state: cached masks and the bounded search for an ending in time.

`REMIGrammar.allowed_mask` / `allowed_ids` / `can_finish` / `state_key` call the `LegalTokens` of their grammar
(`grammar.legal`), which simulates candidate tokens with the grammar's state machine and caches the result per
*state class*, so after a short warm-up a generation step costs a dictionary lookup per sequence.

Example:
    >>> from hf_melody import MelodyTokenizer
    >>> from hf_melody.grammar import GrammarRules, REMIGrammar
    >>> grammar = REMIGrammar.for_tokenizer(MelodyTokenizer())
    >>> state = grammar.prompt_state([grammar.tokenizer.bos_token_id])
    >>> bool(grammar.legal.allowed_mask(state, GrammarRules()).any())
    True
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from .grammar_state import (
    BAR,
    DURATION,
    END,
    FINISH_HORIZON,
    FIRST_KINDS,
    K_BAR,
    K_DURATION,
    K_PITCH,
    K_POSITION,
    K_REST,
    K_TIMESIG,
    PITCH,
    POSITION,
    REST,
    START,
    GrammarRules,
    MelodyState,
)

if TYPE_CHECKING:
    from .grammar import REMIGrammar

logger = logging.getLogger("hf_melody.grammar")

__all__ = ["LegalTokens"]


class LegalTokens:
    """Which tokens may follow a grammar state, with two caches: masks per state class, and whether an ending can
    still be reached within a budget of base tokens.

    Example:
        >>> legal = LegalTokens(grammar)                                                    # doctest: +SKIP
        >>> legal.allowed_ids(state, GrammarRules(tonic=2), budget=8)                       # doctest: +SKIP
    """

    def __init__(self, grammar: REMIGrammar):
        self.grammar = grammar
        self._finish_cache: dict[tuple, bool] = {}
        self._mask_cache: dict[tuple, torch.Tensor] = {}

    def state_key(self, s: MelodyState, rules: GrammarRules, budget: int | None = None) -> tuple:
        """What the legal continuations of `s` (within `budget` more tokens) depend on: the cache key of its mask.

        Distances to the limits are capped where they stop mattering: past the most time or notes one token (or
        `budget` base tokens) can use, any larger value allows the same continuations.
        """
        g = self.grammar
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
        g = self.grammar
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
        if self.grammar.can_end(s, rules):
            return True
        if budget == 1:
            return False
        key = self.state_key(s, rules, budget)
        done = self._finish_cache.get(key)
        if done is None:
            done = False
            for kind, value in self._finish_moves(s, rules):
                sim = s.copy()
                if self.grammar.apply(sim, kind, value, rules) and self.can_finish(sim, budget - 1, rules):
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
            for i in self.grammar._by_first_kind.get(kind, ()):
                sim = s.copy()
                if all(self.grammar.apply(sim, k, v, rules) for k, v in self.grammar.expansions[i]):
                    if budget is None or self.can_finish(sim, budget - 1, rules):
                        out.append(i)
        if s.phase == END:
            out = [self.grammar.eos_token_id, self.grammar.pad_token_id]
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
                ids = [self.grammar.eos_token_id]
            mask = torch.zeros(self.grammar.vocab_size, dtype=torch.bool)
            mask[ids] = True
            if len(self._mask_cache) > 200_000:
                self._mask_cache.clear()
            self._mask_cache[key] = mask
        return mask
