"""`ChordProcessor`: a logits processor that keeps a melody on a chord progression.

Each row's place in the music (bar, meter, position, last pitch) is tracked from its tokens with the REMI grammar's
state machine, fed only the tokens added since the previous call (the lean decoder and `model.generate` both pass
the whole sequence each step). For every candidate token the notes it would write are simulated once per state
class, and the resulting mask is cached per (state class, bar of the progression), so a step costs a dictionary
lookup per row after warm-up.

The rules, with `strictness="hard"`: a note that starts on a strong beat (`chords.strong_beats`: beat 1, and the
middle of the bar in 2/4 and 4/4) is a tone of the chord sounding there; any other note is in the chord's scale
(with a key: the key's scale, where an out-of-key chord tone replaces the key's note a semitone from it, e.g. G#
for G under E7 in A minor: the chord wins on its bar); with `chromatic_passing`, notes off the strong beats may
also be a chromatic step (one or two semitones) from the note before. A float strictness subtracts it from the
logit of a non-chord tone on a strong beat, and half of it elsewhere.

Which bar gets the first chord: the first bar the generation writes in, counted like `num_bars` (the prompt's
unfinished last bar, else the bar after the prompt; bar 0 of an unconditional melody, also when the model opens it
late with a pickup: the pickup's notes sound over the first chord). `first_chord` shifts that (infilling passes
the gap's first bar, so the new bars get the chords they have in the whole melody).

Never a dead end: where the chord's rules leave a row no legal token (e.g. `end_on_tonic` forcing a last note that
is not in the last chord: the tonic wins), the key alone applies, and where that leaves none, the scores pass
unchanged.

Examples:
    >>> from transformers import LogitsProcessorList
    >>> from hf_melody.harmony.logits_process import ChordProcessor
    >>> proc = ChordProcessor(tok, "C G Am F")                                            # doctest: +SKIP
    >>> model.generate(ids, logits_processor=LogitsProcessorList([grammar, proc]))       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers import LogitsProcessor

from ..errors import ConfigError
from ..grammar.remi import REMIGrammar
from ..grammar.state import FIRST_KINDS, K_PITCH, MelodyState
from ..music import DEFAULT_TIME_SIGNATURE
from ..tokenizer import MelodyTokenizer
from .chords import Chord, Progression, parse_progression, strong_beats

__all__ = ["ChordProcessor", "bar_scale", "check_chords_in_range"]


def bar_scale(chord: Chord, key_pitch_classes: Iterable[int] | None = None) -> frozenset[int]:
    """The pitch classes a note off the strong beats may take under `chord`: its own scale, or with a key the key's
    scale with each out-of-key chord tone replacing the key's note a semitone from it that the chord's own scale
    lacks (G for G# under E7 in A minor, B for Bb under Bb in C major).

    Examples:
        >>> from hf_melody.harmony.chords import parse_chord
        >>> from hf_melody.music import parse_key
        >>> sorted(bar_scale(parse_chord("E7"), parse_key("A minor").pitch_classes))   # G# instead of G
        [0, 2, 4, 5, 8, 9, 11]
    """
    if key_pitch_classes is None:
        return chord.scale
    key = frozenset(key_pitch_classes)
    added = chord.pitch_classes - key
    clashes = {(pc + d) % 12 for pc in added for d in (1, -1)} - chord.scale  # the key's notes it alters
    return (key - clashes) | chord.pitch_classes


def check_chords_in_range(progression: Progression, pitch_range: tuple[int, int]) -> None:
    """`ConfigError` when a chord has no tone inside `pitch_range` (its strong beats could hold no note).

    Examples:
        >>> check_chords_in_range(parse_progression("C G"), (60, 61))
        Traceback (most recent call last):
        hf_melody.errors.ConfigError: chord 'G' has no tone in pitch_range=(60, 61); widen the range
    """
    lo, hi = pitch_range
    for span in progression.spans:
        if not any(p % 12 in span.chord.pitch_classes for p in range(lo, hi + 1)):
            raise ConfigError(f"chord {span.chord.symbol!r} has no tone in pitch_range={pitch_range}; widen the range")


class ChordProcessor(LogitsProcessor):
    """Keeps notes on the chords of a progression (see the module docstring for the rules).

    Args:
        tokenizer: the melody tokenizer (plain REMI or BPE).
        chords: the progression's text (`chords.parse_progression`), laid out in each row's own meter.
        strictness: "hard", or a penalty >= 0 (0: no effect).
        key_pitch_classes: the key's scale when a hard key is asked for: merged with the chords (`bar_scale`: a chord
            tone outside the key is allowed on its bar, also with a soft strictness), and the fallback when the
            chords leave no legal token.
        chromatic_passing: with "hard", notes off the strong beats may be a chromatic step from the note before.
        first_chord: the bar of the progression the first generated bar is in (0: its first chord).
        refeed: rebuild each row's state from its tokens every call (beam search reorders rows).

    Examples:
        >>> proc = ChordProcessor(tok, "Am Dm E7 Am", key_pitch_classes=parse_key("A minor").pitch_classes)  # doctest: +SKIP
    """  # noqa: E501 - a doctest's line

    def __init__(self, tokenizer: MelodyTokenizer, chords: str, strictness: str | float = "hard",
                 key_pitch_classes: Iterable[int] | None = None, chromatic_passing: bool = False,
                 first_chord: int = 0, refeed: bool = False):
        self.grammar = REMIGrammar.for_tokenizer(tokenizer)
        self.text = chords
        parse_progression(chords)  # a bad progression fails here, before any decoding
        self.hard = strictness == "hard"
        self.penalty = 0.0 if self.hard else float(strictness)
        self.key = frozenset(key_pitch_classes) if key_pitch_classes is not None else None
        self.chromatic_passing = bool(chromatic_passing)
        self.first_chord = int(first_chord)
        self.refeed = refeed
        self.vocab_size = tokenizer.vocab_size
        self.states: list[MelodyState] | None = None
        self.firsts: list[int] = []
        self._seen = 0
        self._prompt_length = 0
        self._progressions: dict[tuple[int, int], Progression] = {}
        self._notes: dict[tuple, list[tuple[int, tuple]]] = {}
        self._masks: dict[tuple, tuple[torch.Tensor | None, torch.Tensor | None]] = {}
        key_bad = torch.zeros(self.vocab_size, dtype=torch.bool)
        if self.key is not None:
            for i, pitches in self.grammar.pitch_of.items():
                key_bad[i] = any(p % 12 not in self.key for p in pitches)
        self.key_bad = key_bad if self.key is not None else None

    # ---- where each row stands ------------------------------------------------------------------------------------
    def progression(self, ts: tuple[int, int] | None) -> Progression:
        """The progression laid out in meter `ts` (a `|` inside a bar of a meter the model chose counts as a space)."""
        ts = ts or DEFAULT_TIME_SIGNATURE
        if ts not in self._progressions:
            try:
                self._progressions[ts] = parse_progression(self.text, ts)
            except ConfigError:
                self._progressions[ts] = parse_progression(self.text.replace("|", " "), ts)
        return self._progressions[ts]

    def _first_bar(self, s: MelodyState) -> int:
        if s.bar < 0:
            return 0
        return s.bar + s.cursor // self.grammar.ticks_per_bar(s.ts)

    def _update(self, input_ids: torch.LongTensor) -> None:
        g = self.grammar
        if self.states is None or self.refeed:
            if self.states is None:
                self._prompt_length = input_ids.shape[1]
            self.states = [g.prompt_state(row) for row in input_ids[:, :self._prompt_length].tolist()]
            self.firsts = [self._first_bar(s) for s in self.states]
            new = input_ids[:, self._prompt_length:] if self.refeed else None
        else:
            new = input_ids[:, self._seen:]
        if new is not None and new.shape[1]:
            for s, row in zip(self.states, new.tolist(), strict=True):
                g.feed(s, row)
        self._seen = input_ids.shape[1]

    # ---- the notes each candidate token would write, and the mask of a state class ---------------------------------
    def _candidate_notes(self, s: MelodyState) -> tuple[tuple, list[tuple[int, tuple]]]:
        """(state class, [(token, ((pitch, previous pitch, bars from now, tick in bar, meter), ...)), ...])."""
        key = (s.phase, s.ts, s.t, s.e, s.rest, s.pitch if self.chromatic_passing else None)
        found = self._notes.get(key)
        if found is None:
            g, found = self.grammar, []
            for kind in FIRST_KINDS[s.phase]:
                for i in g._by_first_kind.get(kind, ()):
                    if not g.pitch_of[i]:
                        continue
                    sim, notes = s.copy(), []
                    for k, v in g.expansions[i]:
                        if k == K_PITCH:
                            notes.append((v, sim.pitch, sim.bar - s.bar, sim.t, sim.ts or DEFAULT_TIME_SIGNATURE))
                        g.apply(sim, k, v)
                    found.append((i, tuple(notes)))
            self._notes[key] = found
        return key, found

    def _judge(self, pitch: int, previous: int, chord: Chord, strong: bool) -> tuple[bool, float]:
        """(whether a hard rule forbids the note, its soft penalty)."""
        pc = pitch % 12
        if pc in chord.pitch_classes:
            return False, 0.0
        if not self.hard:
            out_of_key = self.key is not None and pc not in bar_scale(chord, self.key)
            return out_of_key, self.penalty if strong else self.penalty / 2
        if strong:
            return True, 0.0
        if pc in bar_scale(chord, self.key):
            return False, 0.0
        return not (self.chromatic_passing and previous >= 0 and abs(pitch - previous) <= 2), 0.0

    def _mask(self, s: MelodyState, chord_bar: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(the tokens a hard rule forbids, the soft penalties) of a row; None where there are none."""
        key, candidates = self._candidate_notes(s)
        cache_key = (key, chord_bar % self.progression(s.ts).num_bars if s.ts else chord_bar)
        mask = self._masks.get(cache_key)
        if mask is None:
            g = self.grammar
            bad, penalty = torch.zeros(self.vocab_size, dtype=torch.bool), torch.zeros(self.vocab_size)
            for i, notes in candidates:
                for pitch, previous, bars, tick, ts in notes:
                    beat = g.ticks_per_beat(ts)
                    chord = self.progression(ts).chord_at(chord_bar + bars, tick / beat)
                    strong = any(tick == round(b * beat) for b in strong_beats(ts))
                    forbidden, cost = self._judge(pitch, previous, chord, strong)
                    bad[i] |= forbidden
                    penalty[i] += cost
            if len(self._masks) > 100_000:
                self._masks.clear()
            self._masks[cache_key] = mask = (bad if self.hard or self.key is not None else None,
                                             None if self.hard or not self.penalty else penalty)
        return mask

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._update(input_ids)
        rows = [self._mask(s, s.bar - first + self.first_chord) for s, first in zip(self.states, self.firsts,
                                                                                     strict=True)]
        if rows[0][1] is not None:
            scores = scores - torch.stack([penalty for _, penalty in rows]).to(scores.device, scores.dtype)
        if rows[0][0] is None:
            return scores
        masked = scores.masked_fill(torch.stack([bad for bad, _ in rows]).to(scores.device), float("-inf"))
        dead = torch.isinf(masked).all(-1, keepdim=True)
        if self.key_bad is not None and bool(dead.any()):
            masked = torch.where(dead, scores.masked_fill(self.key_bad.to(scores.device), float("-inf")), masked)
            dead = torch.isinf(masked).all(-1, keepdim=True)
        return torch.where(dead, scores, masked)
