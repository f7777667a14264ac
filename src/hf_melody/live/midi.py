"""MIDI in and out through mido (python-rtmidi opens real or virtual ports): note on/off, CC for the controls,
MIDI clock for the tempo. Any mido port object works, so a test can hand in its own `BaseIOPort` subclass.

Examples:
    >>> list_ports()                                     # doctest: +SKIP
    {'inputs': ['Keystation 49'], 'outputs': ['FluidSynth']}
    >>> midi = MidiTransport(input="Keystation 49", output="hf-melody", virtual_output=True)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

from ..errors import MidiUnavailableError, MissingDependencyError
from .transport import Transport

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_CC_MAP", "MidiTransport", "list_ports"]

DEFAULT_CC_MAP = {1: "temperature", 74: "density", 20: "trigger"}
"""CC number -> what it moves: CC 1 (mod wheel) the temperature (0..127 -> 0.3..1.5), CC 74 the density (0 off, else
1..16 notes a bar), CC 20 a trigger (value >= 64)."""
OSC_HINT = "use OSC instead: hf-melody live --osc-in 127.0.0.1:9000 --osc-out 127.0.0.1:9001 (see docs/live.md)"


def _mido():
    try:
        import mido
    except ImportError:
        raise MissingDependencyError("MIDI needs mido and python-rtmidi: pip install 'hf_melody[live]'") from None
    return mido


def _unavailable(error: BaseException) -> MidiUnavailableError:
    text = " ".join(str(error).split()) or type(error).__name__
    return MidiUnavailableError(f"no MIDI system here ({text}); {OSC_HINT}")


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C library's own lines on stderr (ALSA prints 'ALSA lib seq_hw.c ...' before rtmidi raises):
    the error we raise says it in one line."""
    try:
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def list_ports() -> dict[str, list[str]]:
    """The MIDI input and output port names; `MidiUnavailableError` (pointing to OSC) where MIDI cannot start.

    Examples:
        >>> list_ports()["outputs"]                                          # doctest: +SKIP
        ['Midi Through:Midi Through Port-0 14:0']
    """
    mido = _mido()
    try:
        with _quiet_stderr():
            return {"inputs": list(mido.get_input_names()), "outputs": list(mido.get_output_names())}
    except Exception as e:  # rtmidi's SystemError without ALSA, ImportError without python-rtmidi
        raise _unavailable(e) from None


def _open(kind: str, port: Any, virtual: bool):
    if port is None or not isinstance(port, str):
        return port
    mido = _mido()
    opener = mido.open_input if kind == "input" else mido.open_output
    try:
        with _quiet_stderr():
            return opener(port, virtual=True) if virtual else opener(port)
    except Exception as e:
        if "unknown port" in str(e).lower() or isinstance(e, OSError | KeyError):
            names = list_ports()[f"{kind}s"]
            raise MidiUnavailableError(f"no MIDI {kind} named {port!r}; choose one of {names} "
                                       f"(hf-melody live --list-ports) or {OSC_HINT}") from None
        raise _unavailable(e) from None


class MidiTransport(Transport):
    """MIDI in from `input` and out to `output`: port names (opened with mido; `virtual_*` creates a port others
    connect to, where the system supports it) or mido port objects.

    Notes on `channel` (0-based) go out; notes on every channel come in. A note on of `trigger_note` is a trigger,
    not a played note. `cc_map` maps CC numbers to controls (`DEFAULT_CC_MAP`). Clock, start, stop and continue
    messages go to the session's clock when it follows MIDI clock. Objects that are not mido messages are counted
    as malformed; other message types are ignored.
    """

    name = "midi"

    def __init__(self, input: Any = None, output: Any = None, channel: int = 0, virtual_input: bool = False,
                 virtual_output: bool = False, trigger_note: int | None = None,
                 cc_map: dict[int, str] | None = None, poll_s: float = 0.001):
        super().__init__()
        self.mido = _mido()
        self.input = _open("input", input, virtual_input)
        self.output = _open("output", output, virtual_output)
        self.channel, self.trigger_note, self.poll_s = channel, trigger_note, poll_s
        self.cc_map = dict(DEFAULT_CC_MAP if cc_map is None else cc_map)
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, handler) -> None:
        super().start(handler)
        if self.input is not None:
            self._thread = threading.Thread(target=self._listen, name="hf_melody-live-midi", daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                message = self.input.poll()
            except Exception:  # a port that breaks (unplugged device): count it, try again
                self.malformed("port error")
                message = None
                time.sleep(0.05)
            if message is None:
                time.sleep(self.poll_s)
                continue
            self.dispatch(message)

    def dispatch(self, message: Any) -> None:
        """Turn one mido message into a `LiveEvent` (or count it)."""
        if not isinstance(message, self.mido.Message):
            self.malformed(message)
            return
        kind = message.type
        if kind == "note_on" and message.velocity > 0:
            if message.note == self.trigger_note:
                self.emit("trigger")
            else:
                self.emit("note_on", message.note, message.velocity)
        elif kind in ("note_on", "note_off"):
            if message.note != self.trigger_note:
                self.emit("note_off", message.note)
        elif kind == "control_change" and message.control in self.cc_map:
            self._control(self.cc_map[message.control], message.value)
        elif kind in ("clock", "start", "stop", "continue"):
            self.emit("clock" if kind == "clock" else f"clock_{kind}")
        else:
            self.stats["ignored"] += 1

    def _control(self, name: str, value: int) -> None:
        if name == "trigger":
            if value >= 64:
                self.emit("trigger")
        elif name == "temperature":
            self.emit("control", "temperature", round(0.3 + 1.2 * value / 127, 3))
        elif name == "density":
            self.emit("control", "density", 0.0 if value == 0 else float(max(1, round(16 * value / 127))))
        else:
            self.emit("control", name, value)

    def _send(self, kind: str, **fields) -> None:
        if self.output is not None:
            self.output.send(self.mido.Message(kind, channel=self.channel, **fields))
            self.stats["sent"] += 1

    def send_note_on(self, pitch: int, velocity: int) -> None:
        self._send("note_on", note=int(pitch), velocity=int(velocity))

    def send_note_off(self, pitch: int) -> None:
        self._send("note_off", note=int(pitch), velocity=0)

    def all_notes_off(self) -> None:
        self._send("control_change", control=123, value=0)

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)
        for port in (self.input, self.output):
            if port is not None and not getattr(port, "closed", True):
                port.close()
