"""What every live transport (OSC, MIDI) shares: the `LiveEvent`s it hands to a session and how it sends notes.

Examples:
    >>> events = []
    >>> t = Transport(); t.start(events.append)
    >>> t.emit("note_on", 60, 100); events[0].kind, events[0].args
    ('note_on', (60, 100))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

__all__ = ["EVENT_KINDS", "LiveEvent", "Transport"]

EVENT_KINDS = ("note_on", "note_off", "control", "trigger", "stop", "clock", "clock_start", "clock_stop",
               "clock_continue")
"""What a transport reports: notes, a control change (`args = (name, value)`), a trigger, a stop request, and
MIDI clock ticks / start / stop / continue."""


@dataclass(frozen=True)
class LiveEvent:
    """One incoming event: its kind (one of `EVENT_KINDS`), its arguments and its arrival (`time.monotonic()`)."""

    kind: str
    args: tuple = ()
    time: float = field(default_factory=time.monotonic)


class Transport:
    """Base class: `start(handler)` begins delivering `LiveEvent`s to `handler`; `send_note_on/off` and
    `all_notes_off` play; `close()` ends it. Counts what it received, ignored and found malformed in `stats`."""

    name = "transport"

    def __init__(self):
        self.handler: Callable[[LiveEvent], None] | None = None
        self.stats = {"received": 0, "malformed": 0, "ignored": 0, "sent": 0}

    def start(self, handler: Callable[[LiveEvent], None]) -> None:
        self.handler = handler

    def emit(self, kind: str, *args) -> None:
        self.stats["received"] += 1
        if self.handler is not None:
            try:
                self.handler(LiveEvent(kind, args))
            except Exception:  # a bad value (e.g. an unknown key) is the sender's mistake: count it, keep going
                self.stats["malformed"] += 1
                logger.warning("%s: ignored %s %s", self.name, kind, args, exc_info=logger.isEnabledFor(10))

    def malformed(self, what: object) -> None:
        self.stats["malformed"] += 1
        logger.debug("%s: malformed message ignored: %r", self.name, what)

    def send_note_on(self, pitch: int, velocity: int) -> None:
        self.stats["sent"] += 1

    def send_note_off(self, pitch: int) -> None:
        self.stats["sent"] += 1

    def all_notes_off(self) -> None:
        """Release everything this transport may have left on (MIDI: CC 123 on the channel)."""

    def close(self) -> None:
        """Stop receiving and free the socket or port."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"
