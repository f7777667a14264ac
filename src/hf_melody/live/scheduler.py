"""The note scheduler: note on/off events kept by beat and sent at their time on the `LiveClock`, from their own
thread, so a slow decoding step never delays a note (a note found too late is dropped and counted instead).

Examples:
    >>> scheduler = NoteScheduler(clock, [osc]); scheduler.start()                     # doctest: +SKIP
    >>> scheduler.add_note(pitch=62, onset=8.0, duration=1.0, velocity=80)             # beats on the clock
    >>> scheduler.stop()                 # every sounding note is released (note off), then the thread ends
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .clock import LiveClock
from .transport import Transport

logger = logging.getLogger(__name__)

__all__ = ["NoteScheduler", "SentEvent"]

SPIN_S = 0.002
"""Wake this long before an event and wait the rest in a busy loop: sleeping alone overshoots by ~0.1-1 ms."""
LATE_S = 0.05
"""A note on found this late (the clock jumped, or the machine stalled) is dropped rather than sent late."""


@dataclass(frozen=True)
class SentEvent:
    """One event the scheduler sent: `kind` ("note_on" / "note_off"), the pitch, when it was due, when it left."""

    kind: str
    pitch: int
    due: float
    sent: float

    @property
    def lateness(self) -> float:
        return self.sent - self.due


class NoteScheduler:
    """Sends note on/off (and calls callbacks) at beats of a `LiveClock` through every transport.

    Events at the same beat go offs first, so a repeated pitch sounds again. `sounding` is the set of pitches on;
    `all_notes_off()` releases them (and asks each transport for its own all-notes-off). `sent` keeps the last
    10,000 events with their due and sent times (the jitter figures of `benchmarks/speed/live_timing.py`).
    """

    def __init__(self, clock: LiveClock, transports: Sequence[Transport], spin_s: float = SPIN_S):
        self.clock, self.transports, self.spin_s = clock, list(transports), spin_s
        self._heap: list[tuple] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = False
        self.sounding: set[int] = set()
        self.sent: deque[SentEvent] = deque(maxlen=10_000)
        self.dropped = 0

    # ---- adding ----------------------------------------------------------------------------------------------
    def add_note(self, pitch: int, onset: float, duration: float, velocity: int = 80, tag: object = None) -> None:
        """Sound `pitch` from beat `onset` for `duration` beats."""
        with self._cond:
            heapq.heappush(self._heap, (onset, 1, next(self._order), "note_on", (pitch, velocity), tag))
            heapq.heappush(self._heap, (onset + duration, 0, next(self._order), "note_off", (pitch,), tag))
            self._cond.notify()

    def add_call(self, beat: float, fn: Callable[[], None], tag: object = None) -> None:
        """Call `fn()` from the scheduler thread at `beat` (e.g. a tempo change on a bar line)."""
        with self._cond:
            heapq.heappush(self._heap, (beat, 0, next(self._order), "call", (fn,), tag))
            self._cond.notify()

    def cancel(self, tag: object) -> int:
        """Drop the pending events added with `tag` (note offs of notes already on are kept); how many."""
        with self._cond:
            keep = [e for e in self._heap if e[5] is not tag or (e[3] == "note_off" and e[4][0] in self.sounding)]
            dropped = len(self._heap) - len(keep)
            self._heap = keep
            heapq.heapify(self._heap)
            self._cond.notify()
        return dropped

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    # ---- running ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="hf_melody-live-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread, drop what is pending and release every sounding note."""
        with self._cond:
            self._running = False
            self._heap.clear()
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.all_notes_off()

    def clear(self) -> None:
        """Drop every pending event and release the sounding notes (e.g. on a MIDI clock stop)."""
        with self._cond:
            self._heap.clear()
        self.all_notes_off()

    def all_notes_off(self) -> None:
        for pitch in sorted(self.sounding):
            self._send("note_off", pitch, None)
        self.sounding.clear()
        for t in self.transports:
            try:
                t.all_notes_off()
            except Exception:  # a closed socket or port must not stop the others from releasing their notes
                logger.exception("all notes off failed on %s", t)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._running:
                    return
                due = self.clock.time_of(self._heap[0][0]) if self._heap else None
                wait = 0.05 if due is None else due - self.clock.now() - self.spin_s
                if wait > 0:
                    self._cond.wait(min(wait, 0.05))
                    continue
                _, _, _, kind, args, _ = heapq.heappop(self._heap)
            while time.monotonic() < due:  # the last ~2 ms: a busy wait is what keeps the jitter under 1 ms
                pass
            self._fire(kind, args, due)

    def _fire(self, kind: str, args: tuple, due: float) -> None:
        if kind == "call":
            try:
                args[0]()
            except Exception:
                logger.exception("a scheduled call failed")
        elif kind == "note_on":
            pitch, velocity = args
            if self.clock.now() - due > LATE_S:
                self.dropped += 1
                return
            if pitch in self.sounding:  # the same pitch again before its off: release it first
                self._send("note_off", pitch, due)
            self._send("note_on", pitch, due, velocity)
            self.sounding.add(pitch)
        elif args[0] in self.sounding:
            self.sounding.discard(args[0])
            self._send("note_off", args[0], due)

    def _send(self, kind: str, pitch: int, due: float | None, velocity: int = 0) -> None:
        for t in self.transports:
            try:
                if kind == "note_on":
                    t.send_note_on(pitch, velocity)
                else:
                    t.send_note_off(pitch)
            except Exception:  # one broken output must not silence the others
                logger.exception("sending %s %d failed on %s", kind, pitch, t)
        if due is not None:
            self.sent.append(SentEvent(kind, pitch, due, time.monotonic()))
