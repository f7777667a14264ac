"""The REMI grammar as tables: every grammar state enumerated once, with its transitions and legal-token masks.

`REMIGrammar` is a state machine in Python; stepping it for every generated token costs more than the model itself
at our sizes. `GrammarTables` runs it once per tokenizer and rule set instead: a breadth-first walk over all states a
melody can reach (phase, meter, the decoder's clock within the bar, the last rest, the tonic flag) gives integer
state ids, a transition table `next_state[state][token]` and how many bars and notes each transition adds. Limits
(bars and notes left) enter only through a small capped index, so the mask of a step is one lookup in
`masks[row(state, bars_left, notes_left)]`. The full table is large (some 24,000 states over 37 meters for the
default tokenizer, 5 s to walk), so each state's row is filled the first time a melody reaches it and kept: after
a melody or two of warm-up, decoding only looks tables up.

Examples:
    >>> from hf_melody import MelodyTokenizer
    >>> from hf_melody.grammar.remi import GrammarRules, REMIGrammar
    >>> tok = MelodyTokenizer()
    >>> tables = GrammarTables.for_rules(REMIGrammar.for_tokenizer(tok), GrammarRules())
    >>> s = tables.state_id(tables.grammar.initial_state())
    >>> s = tables.transitions(s)[tok.encode_base_tokens(["Bar_None"])[0]]
    >>> row = tables.row(s, None, None)         # (compute the row first: it may extend `masks`)
    >>> bool(tables.masks[row][tok.encode_base_tokens(["TimeSig_3/4"])[0]])
    True
"""

from __future__ import annotations

import logging
import math
import threading
from functools import lru_cache

import torch

from .remi import REMIGrammar
from .state import DURATION, END, FIRST_KINDS, PITCH, POSITION, REST, START, GrammarRules, MelodyState

logger = logging.getLogger(__name__)

__all__ = ["GrammarTables"]


class GrammarTables:
    """Transition and mask tables of `grammar` under `rules` (see the module docstring).

    Attributes:
        next_state: `next_state[s][token]`: the state after `token`, or -1 where it is illegal.
        bars_added, notes_added: `[s][token]`: how far the bar index and the note count move.
        masks: `[rows, vocab]` bool tensor of distinct legal-token sets; `row(s, bars_left, notes_left)` picks one.
    """

    def __init__(self, grammar: REMIGrammar, rules: GrammarRules):
        self.grammar = grammar
        self.rules = rules
        self.vocab_size = grammar.vocab_size
        self.eos_token_id = grammar.eos_token_id
        self.note_cap = grammar.max_notes_per_token + 1
        self._ids: dict[tuple, int] = {}
        self.representatives: list[MelodyState] = []
        self.bar_cap: list[int] = []
        self.next_state: list[list[int]] = []
        self.bars_added: list[list[int]] = []
        self.notes_added: list[list[int]] = []
        self._rows: dict[tuple, int] = {}
        self._row_of_ids: dict[tuple[int, ...], int] = {}
        self._row_list: list[torch.Tensor] = []
        self._lock = threading.RLock()
        self.masks = torch.zeros(0, self.vocab_size, dtype=torch.bool)
        # per mask row, for `grammar_scores` without per-step mask arithmetic: the illegal tokens, the illegal
        # tokens once EOS is withheld (a melody still too short), the tokens other than a legal EOS, and whether
        # EOS competes with other legal tokens (its probability is then kept, see `REMIGrammarProcessor`)
        self.illegal = self.illegal_without_eos = self.not_others = self.masks
        self.eos_with_others: list[bool] = []
        # the same rows one by one, for one melody: indexing a list is cheaper than a tensor `select` per token
        self.illegal_rows: list[torch.Tensor] = []
        self.illegal_without_eos_rows: list[torch.Tensor] = []
        self._candidates = {phase: [i for kind in kinds for i in grammar._by_first_kind.get(kind, ())]
                            for phase, kinds in FIRST_KINDS.items()}
        self.state_id(grammar.initial_state())

    @staticmethod
    @lru_cache(maxsize=32)
    def _cached(grammar_id: int, grammar: REMIGrammar, rules: GrammarRules) -> GrammarTables:
        return GrammarTables(grammar, rules)

    @classmethod
    def for_rules(cls, grammar: REMIGrammar, rules: GrammarRules) -> GrammarTables:
        """The tables of `grammar` under `rules`, built on first use and shared afterwards."""
        return cls._cached(id(grammar), grammar, rules)

    @property
    def num_states(self) -> int:
        return len(self.representatives)

    def key(self, s: MelodyState) -> tuple:
        """What the legal continuations and the successors of `s` depend on, limits aside."""
        if s.phase == END:
            return (END,)
        tonic = None
        if self.rules.tonic is not None and s.phase in (PITCH, DURATION):
            tonic = s.pitch % 12 == self.rules.tonic
        # where the decoder's clock stands: within a note its start and the running end; elsewhere only the
        # cursor matters (the next note or rest starts there), as in `REMIGrammar.state_key`
        where = (s.t, max(s.e, s.t)) if s.phase in (POSITION, PITCH) else (s.cursor,)
        return (s.phase, s.ts, where, s.rest if s.phase == REST else 0, s.styled and s.phase == START, s.bar >= 0,
                tonic)

    def state_id(self, s: MelodyState) -> int:
        """The id of `s`'s state (registered on first sight; its transitions are filled on first use)."""
        key = self.key(s)
        found = self._ids.get(key)
        if found is None:
            with self._lock:
                found = self._ids.get(key)
                if found is None:
                    found = self._register(s, key)
        return found

    def transitions(self, sid: int) -> list[int]:
        """`next_state[sid]`, filling the row (and registering the states it leads to) on first use."""
        row = self.next_state[sid]
        if row:
            return row
        with self._lock:
            return self._fill(sid)

    def _fill(self, sid: int) -> list[int]:
        g, rules = self.grammar, self.rules
        state = self.representatives[sid]
        nxt, bars, notes = [-1] * self.vocab_size, [0] * self.vocab_size, [0] * self.vocab_size
        for i in self._candidates[state.phase]:
            sim = state.copy()
            if all(g.apply(sim, k, v, rules) for k, v in g.expansions[i]):
                nxt[i], bars[i], notes[i] = self.state_id(sim), sim.bar - state.bar, sim.notes - state.notes
        self.bars_added[sid], self.notes_added[sid] = bars, notes
        self.next_state[sid] = nxt  # published last
        return nxt

    def walk(self, limit: int = 1_000_000) -> int:
        """Fill every state reachable so far (breadth first, at most `limit` states); returns the number of states.
        Generation never needs this (rows are filled when first met); it shows how large the full table is."""
        done = 0
        while done < min(self.num_states, limit):
            self.transitions(done)
            done += 1
        return self.num_states

    def _register(self, s: MelodyState, key: tuple) -> int:
        rep = s.copy()
        rep.end_bar = rep.max_notes = None
        sid = len(self.representatives)
        g = self.grammar
        length = g.ticks_per_bar(rep.ts)
        tpb = g.ticks_per_beat(rep.ts)
        start = rep.t if rep.phase in (POSITION, PITCH) else rep.cursor
        # past this many bars left, the room to the end limit is beyond what any check looks at (see state_key)
        cap = g._max_span(tpb) + 2 * length + 2 * g.ticks_per_position(rep.ts) + max(start, 0)
        self.bar_cap.append(math.ceil(cap / length) + 1)
        self.next_state.append([])
        self.bars_added.append([])
        self.notes_added.append([])
        self.representatives.append(rep)
        self._ids[key] = sid  # published last: readers in other threads see a complete entry
        return sid

    def row(self, sid: int, bars_left: int | None, notes_left: int | None) -> int:
        """The index into `masks` of state `sid` with `bars_left` (end bar minus current bar) and `notes_left`
        (None: no such limit)."""
        if bars_left is not None:
            bars_left = min(max(bars_left, 0), self.bar_cap[sid])
        if notes_left is not None:
            notes_left = min(max(notes_left, 0), self.note_cap)
        key = (sid, bars_left, notes_left)
        found = self._rows.get(key)
        if found is None:
            with self._lock:  # a stream() thread may fill rows while another call reads them
                found = self._build_row(sid, bars_left, notes_left)
            self._rows[key] = found  # published once `masks` holds the row
        return found

    def _build_row(self, sid: int, bars_left: int | None, notes_left: int | None) -> int:
        g = self.grammar
        rep = self.representatives[sid].copy()
        rep.end_bar = None if bars_left is None else rep.bar + bars_left
        rep.max_notes = None if notes_left is None else rep.notes + notes_left
        ids = g.allowed_ids(rep, self.rules)
        if not ids:
            logger.warning("no legal continuation (%r: a prompt off the tokenizer's grid?); ending here", rep)
            ids = [self.eos_token_id]
        key = tuple(ids)
        found = self._row_of_ids.get(key)
        if found is None:
            mask = torch.zeros(self.vocab_size, dtype=torch.bool)
            mask[list(ids)] = True
            found = self._row_of_ids[key] = len(self._row_list)
            self._row_list.append(mask)
            self.masks = torch.stack(self._row_list)
            others = mask.clone()
            others[self.eos_token_id] = False
            self.eos_with_others.append(bool(mask[self.eos_token_id]) and bool(others.any()))
            self.illegal = ~self.masks
            self.not_others = torch.cat([self.not_others, ~others[None]])
            self.illegal_without_eos = torch.cat([self.illegal_without_eos, ~(others if others.any() else mask)[None]])
            # standalone rows: a view into `illegal` would keep every rebuilt copy of the whole table alive
            self.illegal_rows.append(~mask)
            self.illegal_without_eos_rows.append(self.illegal_without_eos[found].clone())
        return found
