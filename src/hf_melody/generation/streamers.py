"""Note streaming: turn generated tokens into `StreamedNote`s as soon as each note is complete.

`MelodyTracker` follows one token stream with the grammar; `NoteStreamer` is the transformers streamer that
`MelodyPipeline.stream` and `model.generate(streamer=...)` feed.

Examples:
    >>> from hf_melody import MelodyPipeline
    >>> pipe = MelodyPipeline.from_pretrained("folk-base")
    >>> for note in pipe.stream(seed=0, num_bars=4, tempo_qpm=100):                    # doctest: +SKIP
    ...     print(note.pitch, note.onset_seconds)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from transformers import StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from ..errors import ConfigError
from ..grammar.remi import REMIGrammar
from ..grammar.state import TrackedNote
from ..tokenizer import MelodyTokenizer

__all__ = ["MelodyTracker", "NoteStreamer", "StreamedNote"]


class MelodyTracker:
    """Follows one token stream with the grammar and reports each note as soon as its `Duration` arrives.

    Examples:
        >>> tracker = MelodyTracker(MelodyTokenizer())                   # doctest: +SKIP
        >>> notes = tracker.feed(ids)     # [TrackedNote(onset, duration, pitch, bar, time_signature)] # doctest: +SKIP
    """

    def __init__(self, tokenizer: MelodyTokenizer):
        self.grammar = REMIGrammar.for_tokenizer(tokenizer)
        self.state = self.grammar.initial_state()
        self.num_notes = 0

    @property
    def ticks_per_quarter(self) -> int:
        return self.grammar.ticks_per_quarter

    def feed(self, ids) -> list[TrackedNote]:
        notes = self.grammar.feed(self.state, ids)
        self.num_notes += len(notes)
        return notes


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

    Examples:
        >>> for note in pipe.stream(seed=0, num_bars=4, tempo_qpm=100):                 # doctest: +SKIP
        ...     print(note.bar, note.onset, note_name(note.pitch), note.duration_seconds)
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

    Examples:
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
