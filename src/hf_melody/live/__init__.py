"""Live playing: call-and-response, an endless melody or answers on a trigger, in time, over OSC and MIDI.

    clock        LiveClock (beats against monotonic time, tempo changes), MidiClockFollower (24 ppqn)
    scheduler    NoteScheduler: notes sent at their beat from their own thread, all notes off on stop
    transport    Transport, LiveEvent: what OSC and MIDI share
    osc          OscTransport (python-osc): /note_on, /note_off and the control addresses
    midi         MidiTransport (mido + python-rtmidi), list_ports; any mido port object works
    controls     LiveControls: temperature, key, pitch range, density, mode, tempo, checked on arrival
    phrase       PhraseNote, the call's key and the prompt that continues it from the next bar line
    session      LiveSession: the conductor (modes, generation ahead of the playhead), Answer

Examples:
    >>> from hf_melody.live import LiveSession, OscTransport
    >>> session = LiveSession(pipe, [OscTransport("127.0.0.1:9000", "127.0.0.1:9001")]).start()   # doctest: +SKIP
"""

from .clock import LiveClock, MidiClockFollower
from .controls import CONTROL_NAMES, MODES, LiveControls
from .midi import DEFAULT_CC_MAP, MidiTransport, list_ports
from .osc import OscTransport, parse_address
from .phrase import PhraseNote, call_key
from .scheduler import NoteScheduler, SentEvent
from .session import Answer, LiveSession
from .transport import LiveEvent, Transport

__all__ = ["CONTROL_NAMES", "DEFAULT_CC_MAP", "MODES", "Answer", "LiveClock", "LiveControls", "LiveEvent",
           "LiveSession", "MidiClockFollower", "MidiTransport", "NoteScheduler", "OscTransport", "PhraseNote",
           "SentEvent", "Transport", "call_key", "list_ports", "parse_address"]
