"""OSC over UDP (python-osc): notes and controls in, notes out. The contract (docs/live.md):

    in   /note_on <pitch:int> <velocity:int>     (velocity 0 is a note off)
         /note_off <pitch:int>
         /temperature <float>  /key <str>  /tempo <qpm:float>  /mode <respond|continue|trigger>
         /density <notes per bar:float, 0 = off>  /pitch_range <lo:int> <hi:int>  /trigger  /stop
    out  /note_on <pitch> <velocity> and /note_off <pitch>, sent at the moment each note should sound

Anything else (unknown addresses, wrong arguments, datagrams that are not OSC) is ignored and counted in `stats`.

Examples:
    >>> osc = OscTransport(listen="127.0.0.1:9000", send="127.0.0.1:9001")            # doctest: +SKIP
    >>> LiveSession(pipe, transports=[osc]).start()                                   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import socket
import threading

from ..errors import ConfigError, MissingDependencyError
from .transport import Transport

logger = logging.getLogger(__name__)

__all__ = ["OscTransport", "parse_address"]

CONTROL_ADDRESSES = {"/temperature": "temperature", "/key": "key", "/tempo": "tempo", "/mode": "mode",
                     "/density": "density", "/pitch_range": "pitch_range"}
"""OSC control addresses and the control each one sets."""


def parse_address(text: str, flag: str = "--osc-in") -> tuple[str, int]:
    """`"127.0.0.1:9000"` -> `("127.0.0.1", 9000)`; a bare port means 127.0.0.1; `ConfigError` otherwise.

    Examples:
        >>> parse_address("localhost:57120"), parse_address("9000")
        (('localhost', 57120), ('127.0.0.1', 9000))
    """
    host, _, port = str(text).rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ConfigError(f"{flag} {text!r}: give HOST:PORT, e.g. 127.0.0.1:9000")
    return host or "127.0.0.1", number


def _osc():
    try:
        from pythonosc import osc_packet, udp_client
    except ImportError:
        raise MissingDependencyError("OSC needs python-osc: pip install 'hf_melody[live]'") from None
    return osc_packet, udp_client


def _int(value, lo: int = 0, hi: int = 127) -> int:
    """An int argument (a float with no fraction passes: Pd sends floats); ValueError outside lo..hi."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or not lo <= value <= hi:
        raise ValueError(value)
    return int(value)


class OscTransport(Transport):
    """Listens on `listen` (HOST:PORT) and sends to `send` (HOST:PORT); either may be None.

    Examples:
        >>> osc = OscTransport(listen="127.0.0.1:0")     # port 0: a free port, then `osc.listen_address`
        >>> osc.close()
    """

    name = "osc"

    def __init__(self, listen: str | tuple[str, int] | None = None, send: str | tuple[str, int] | None = None):
        super().__init__()
        self._packet, udp_client = _osc()
        self._sock = self._client = self._thread = None
        self._closed = threading.Event()
        if listen is not None:
            host, port = listen if isinstance(listen, tuple) else parse_address(listen, "--osc-in")
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                self._sock.bind((host, port))
            except OSError as e:
                self._sock.close()
                raise ConfigError(f"--osc-in {host}:{port}: cannot listen there ({e.strerror}); choose another "
                                  "port") from None
            self._sock.settimeout(0.05)
        if send is not None:
            host, port = send if isinstance(send, tuple) else parse_address(send, "--osc-out")
            self._client = udp_client.SimpleUDPClient(host, port)
        self.send_address = None if send is None else (host, port)

    @property
    def listen_address(self) -> tuple[str, int] | None:
        return None if self._sock is None else self._sock.getsockname()

    def start(self, handler) -> None:
        super().start(handler)
        if self._sock is not None:
            self._thread = threading.Thread(target=self._listen, name="hf_melody-live-osc", daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                data, _ = self._sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            try:
                packet = self._packet.OscPacket(data)
            except Exception:  # ParseError, and whatever a hostile datagram makes the parser raise
                self.malformed(data[:32])
                continue
            for timed in packet.messages:
                self.dispatch(timed.message.address, list(timed.message.params))

    def dispatch(self, address: str, args: list) -> None:
        """Turn one OSC message into a `LiveEvent` (or count it as malformed)."""
        try:
            if address == "/note_on" and len(args) == 2:
                pitch, velocity = _int(args[0]), _int(args[1])
                self.emit("note_on", pitch, velocity) if velocity else self.emit("note_off", pitch)
            elif address == "/note_off" and len(args) in (1, 2):
                self.emit("note_off", _int(args[0]))
            elif address in ("/trigger", "/stop") and not args:
                self.emit(address[1:])
            elif address == "/pitch_range" and len(args) == 2:
                self.emit("control", "pitch_range", (_int(args[0]), _int(args[1])))
            elif address == "/key" and len(args) == 1 and isinstance(args[0], str):
                self.emit("control", "key", args[0])
            elif address == "/mode" and len(args) == 1 and isinstance(args[0], str):
                self.emit("control", "mode", args[0])
            elif address in CONTROL_ADDRESSES and len(args) == 1 and isinstance(args[0], int | float) \
                    and not isinstance(args[0], bool):
                self.emit("control", CONTROL_ADDRESSES[address], float(args[0]))
            else:
                self.malformed((address, args))
        except ValueError:
            self.malformed((address, args))

    def send_note_on(self, pitch: int, velocity: int) -> None:
        if self._client is not None:
            self._client.send_message("/note_on", [int(pitch), int(velocity)])
            super().send_note_on(pitch, velocity)

    def send_note_off(self, pitch: int) -> None:
        if self._client is not None:
            self._client.send_message("/note_off", [int(pitch)])
            super().send_note_off(pitch)

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)
        if self._sock is not None:
            self._sock.close()
