"""The live clock: beats against `time.monotonic()` at a tempo that can change, started, paused, or following a
MIDI clock (24 ticks a quarter note, start / stop / continue).

Examples:
    >>> clock = LiveClock(tempo_qpm=120.0); clock.start(at=100.0)
    >>> clock.beat(at=101.0), clock.time_of(4.0)
    (2.0, 102.0)
    >>> clock.set_tempo(60.0, at=101.0); clock.time_of(4.0)        # the beat stays continuous
    103.0
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque

from ..errors import ConfigError

__all__ = ["LiveClock", "MidiClockFollower", "check_tempo"]

MIDI_CLOCK_PPQN = 24
"""MIDI clock ticks per quarter note."""


def check_tempo(tempo_qpm: float) -> float:
    """`tempo_qpm` as a float; `ConfigError` unless it is in 20..400 quarter notes a minute.

    Examples:
        >>> check_tempo(90)
        90.0
    """
    try:
        qpm = float(tempo_qpm)
    except (TypeError, ValueError):
        raise ConfigError(f"tempo={tempo_qpm!r}: give quarter notes per minute, e.g. 120") from None
    if not 20.0 <= qpm <= 400.0:
        raise ConfigError(f"tempo={tempo_qpm!r} must be in 20..400 quarter notes per minute")
    return qpm


class LiveClock:
    """Beats as a piecewise-linear function of monotonic time: an anchor `(time, beat)` and a tempo.

    Changing the tempo re-anchors at that moment, so the beat never jumps; `sync` puts the clock on an outside
    beat (a MIDI clock). Paused, `beat()` stays where it stopped and `time_of()` is None. Thread-safe.

    Examples:
        >>> clock = LiveClock(100); clock.start()
        >>> clock.bar_line_after(clock.beat(), beats_per_bar=4.0)        # doctest: +SKIP
        4.0
    """

    def __init__(self, tempo_qpm: float = 120.0):
        self._lock = threading.Lock()
        self.tempo_qpm = check_tempo(tempo_qpm)
        self._anchor_time = time.monotonic()
        self._anchor_beat = 0.0
        self.running = False

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def start(self, at: float | None = None, beat: float = 0.0) -> None:
        """Run from `beat` (default 0) at time `at` (default now)."""
        with self._lock:
            self._anchor_time, self._anchor_beat, self.running = self.now() if at is None else at, beat, True

    def pause(self, at: float | None = None) -> None:
        with self._lock:
            if self.running:
                self._anchor_beat = self._beat(self.now() if at is None else at)
                self.running = False

    def resume(self, at: float | None = None) -> None:
        with self._lock:
            if not self.running:
                self._anchor_time, self.running = self.now() if at is None else at, True

    def _beat(self, at: float) -> float:
        if not self.running:
            return self._anchor_beat
        return self._anchor_beat + (at - self._anchor_time) * self.tempo_qpm / 60.0

    def beat(self, at: float | None = None) -> float:
        """The beat (quarter notes since the start) at time `at` (default now)."""
        with self._lock:
            return self._beat(self.now() if at is None else at)

    def time_of(self, beat: float) -> float | None:
        """The monotonic time of `beat` at the current tempo (None while paused)."""
        with self._lock:
            if not self.running:
                return None
            return self._anchor_time + (beat - self._anchor_beat) * 60.0 / self.tempo_qpm

    def set_tempo(self, tempo_qpm: float, at: float | None = None) -> None:
        """Change the tempo from time `at` (default now), keeping the beat continuous."""
        qpm = check_tempo(tempo_qpm)
        with self._lock:
            at = self.now() if at is None else at
            self._anchor_beat, self._anchor_time, self.tempo_qpm = self._beat(at), at, qpm

    def sync(self, beat: float, at: float, tempo_qpm: float | None = None) -> None:
        """Put the clock on an outside beat: `beat` at time `at`, and the tempo if given."""
        with self._lock:
            if tempo_qpm is not None:
                self.tempo_qpm = min(max(float(tempo_qpm), 20.0), 400.0)
            self._anchor_beat, self._anchor_time, self.running = beat, at, True

    @staticmethod
    def bar_line_after(beat: float, beats_per_bar: float) -> float:
        """The first bar line at or after `beat` (bars counted from beat 0)."""
        bars = -(-(beat - 1e-9) // beats_per_bar)
        return max(bars, 0) * beats_per_bar


class MidiClockFollower:
    """Drives a `LiveClock` from MIDI clock messages: 24 `clock` ticks a quarter note set the beat and (from the
    median of the last ticks' spacing) the tempo; `start` restarts at beat 0, `stop` pauses, `continue` resumes.

    Examples:
        >>> clock = LiveClock(120); follow = MidiClockFollower(clock)
        >>> follow.start(at=0.0)
        >>> for i in range(1, 49): follow.tick(at=i * 0.025)        # 24 ticks every 0.6 s: 100 qpm
        >>> round(clock.tempo_qpm, 3), round(clock.beat(at=1.2), 6)
        (100.0, 2.0)
    """

    def __init__(self, clock: LiveClock, window: int = 24):
        self.clock = clock
        self.ticks = 0
        self._last: float | None = None
        self._spacing: deque[float] = deque(maxlen=window)

    def start(self, at: float | None = None) -> None:
        at = LiveClock.now() if at is None else at
        self.ticks, self._last = 0, at
        self._spacing.clear()
        self.clock.start(at=at)

    def stop(self, at: float | None = None) -> None:
        self.clock.pause(at)

    def resume(self, at: float | None = None) -> None:
        self._last = None  # the gap while stopped is no tick spacing
        self.clock.resume(at)

    def tick(self, at: float | None = None) -> None:
        at = LiveClock.now() if at is None else at
        if self._last is not None and at > self._last:
            self._spacing.append(at - self._last)
        self._last = at
        self.ticks += 1
        tempo = None
        if len(self._spacing) >= 3:
            tempo = 60.0 / (statistics.median(self._spacing) * MIDI_CLOCK_PPQN)
        self.clock.sync(self.ticks / MIDI_CLOCK_PPQN, at, tempo)
