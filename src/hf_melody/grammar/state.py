"""The vocabulary of the REMI grammar: token kinds, phases, the state of a sequence and the options of a call.

`hf_melody.grammar.remi.REMIGrammar` moves a `MelodyState` token by token; `GrammarRules` and `LengthLimits` say what a
generation call asks of it. Kept apart from the state machine so that the fast tables (`grammar.tables`) and the
decoders share these names without pulling in the whole grammar.

Examples:
    >>> from hf_melody.grammar.state import GrammarRules, LengthLimits, MelodyState
    >>> MelodyState().cursor, GrammarRules(tonic=2).exact_end, LengthLimits(num_bars=8).max_bars
    (0, False, None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["FINISH_HORIZON", "FIRST_KINDS", "KINDS", "GrammarRules", "LengthLimits", "MelodyState", "TrackedNote"]

# phases: what the last token was
START, BAR, TIMESIG, POSITION, PITCH, DURATION, REST, END = range(8)
# token kinds
K_PAD, K_BOS, K_EOS, K_STYLE, K_BAR, K_TIMESIG, K_POSITION, K_PITCH, K_DURATION, K_REST, K_OTHER = range(11)
KINDS = {"PAD": K_PAD, "BOS": K_BOS, "EOS": K_EOS, "Bar": K_BAR, "TimeSig": K_TIMESIG, "Position": K_POSITION,
          "Pitch": K_PITCH, "Duration": K_DURATION, "Rest": K_REST}
# which token kinds may start a legal continuation in each phase (a prefilter before simulating)
FIRST_KINDS = {
    START: {K_STYLE, K_BAR},
    BAR: {K_TIMESIG},
    TIMESIG: {K_BAR, K_POSITION, K_REST},
    POSITION: {K_PITCH},
    PITCH: {K_DURATION},
    DURATION: {K_EOS, K_BAR, K_POSITION, K_REST},
    REST: {K_POSITION, K_REST},
    END: {K_EOS, K_PAD},
}
FINISH_HORIZON = 24
"""With `end_on_tonic` or an exact end, the last this-many tokens of the budget only allow continuations that can
still end the melody properly in time (checked by a bounded search over base tokens)."""


@dataclass(frozen=True)
class GrammarRules:
    """Options of the grammar that hold for a whole generation call.

    Args:
        tonic: pitch class (0 = C) the last note must have (`end_on_tonic`), or None.
        exact_end: with an end bar (see `MelodyState.end_bar`), the melody must end exactly on that bar line.
        allow_style: a style token may open the piece (when the prompt did not choose one).
    """

    tonic: int | None = None
    exact_end: bool = False
    allow_style: bool = True


@dataclass(frozen=True)
class LengthLimits:
    """How long the generated part may or must be (None: no limit), counted from the end of the prompt.

    Args:
        num_bars: exactly this many bars, ending on the bar line (the prompt's unfinished bar counts as the first).
        max_bars: at most this many bars (counted like `num_bars`).
        exact_bars: exactly this many new `Bar` tokens, then EOS (for infilling: the bars of a gap).
        max_new_notes: at most this many notes.
        min_bars, min_new_notes: EOS is masked until the melody has this many bars / notes.
    """

    num_bars: int | None = None
    max_bars: int | None = None
    exact_bars: int | None = None
    max_new_notes: int | None = None
    min_bars: int | None = None
    min_new_notes: int | None = None


class TrackedNote(NamedTuple):
    """A note as the decoder will place it: times in the tokenizer's ticks from the start of the piece.

    Examples:
        >>> grammar.feed(grammar.initial_state(), ids)[0]                                  # doctest: +SKIP
        TrackedNote(onset=0, duration=480, pitch=62, bar=0, time_signature=(3, 4))
    """

    onset: int
    duration: int
    pitch: int
    bar: int
    time_signature: tuple[int, int]


class MelodyState:
    """Where a sequence stands: the last token type, the meter and the decoder's clock.

    Times are in the tokenizer's ticks, relative to the start of the current bar, as in miditok's decoder:
    `t` is its current tick, `e` the end of the latest note; the *cursor* `max(t, e)` is where the next note or rest
    starts. `end_bar` and `max_notes` are limits set when generation starts (None: no limit). `rest` is the
    length of the previous rest in a run of rests.

    Examples:
        >>> state = grammar.prompt_state([tok.bos_token_id, *ids])                          # doctest: +SKIP
        >>> state.bar, state.ts, state.notes, state.cursor                                 # doctest: +SKIP
        (3, (3, 4), 11, 960)
    """

    __slots__ = ("phase", "ts", "t", "e", "bar", "bar_tick", "notes", "pitch", "styled", "end_bar", "max_notes",
                 "rest")

    def __init__(self):
        self.phase = START
        self.ts: tuple[int, int] | None = None
        self.t = 0
        self.e = 0
        self.bar = -1
        self.bar_tick = 0
        self.notes = 0
        self.pitch = -1
        self.styled = False
        self.end_bar: int | None = None
        self.max_notes: int | None = None
        self.rest = 0  # ticks of the previous token when it was a rest

    def copy(self) -> MelodyState:
        new = MelodyState.__new__(MelodyState)
        for name in self.__slots__:
            setattr(new, name, getattr(self, name))
        return new

    @property
    def cursor(self) -> int:
        return max(self.t, self.e)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"MelodyState({fields})"
