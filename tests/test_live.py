"""Live playing (hf_melody.live): a real session over OSC on a real UDP socket on 127.0.0.1, the MIDI path through a
loopback port built on mido's port classes, MIDI clock following, the clock and the scheduler. Fast tempos keep
each test to a few seconds; every thread is joined and every wait is bounded."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

import pytest

pytest.importorskip("pythonosc")
mido = pytest.importorskip("mido")

from mido.ports import BaseIOPort  # noqa: E402
from pythonosc.osc_packet import OscPacket  # noqa: E402
from pythonosc.udp_client import SimpleUDPClient  # noqa: E402

from conftest import assert_one_line_cli_error, cli  # noqa: E402
from hf_melody import ConfigError, MelodyPipeline  # noqa: E402
from hf_melody.live import (  # noqa: E402
    LiveClock,
    LiveSession,
    MidiClockFollower,
    MidiTransport,
    NoteScheduler,
    OscTransport,
    PhraseNote,
    Transport,
    call_key,
)
from hf_melody.live.phrase import beats_per_bar  # noqa: E402
from hf_melody.music import parse_key  # noqa: E402

D_MINOR_CALL = [62, 65, 69, 67, 65, 64, 62, 61, 62]  # 3/4: three bars of crotchets
"""A call in D minor (D F A G F E D C# D)."""


@pytest.fixture(scope="module")
def pipe():
    return MelodyPipeline.from_pretrained("original")


class OscListener:
    """The test's side of OSC: a real UDP socket that collects what the session sends, with arrival times."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str, list]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def _run(self):
        while not self._done.is_set():
            try:
                data, _ = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            for timed in OscPacket(data).messages:
                self.messages.append((time.monotonic(), timed.message.address, list(timed.message.params)))

    def wait_for(self, n_note_ons: int, timeout: float) -> list:
        end = time.monotonic() + timeout
        while time.monotonic() < end and len(self.note_ons()) < n_note_ons:
            time.sleep(0.02)
        return self.note_ons()

    def note_ons(self):
        return [m for m in self.messages if m[1] == "/note_on"]

    def close(self):
        self._done.set()
        self._thread.join(2)
        self.sock.close()


def balanced(messages, on="/note_on", off="/note_off") -> bool:
    """Every note on was followed by its note off."""
    count: Counter = Counter()
    for _, address, args in messages:
        count[args[0]] += 1 if address == on else -1 if address == off else 0
    return all(v <= 0 for v in count.values())


def play(send_on, send_off, pitches, seconds_per_note: float) -> None:
    for p in pitches:
        send_on(p)
        time.sleep(seconds_per_note * 0.8)
        send_off(p)
        time.sleep(seconds_per_note * 0.2)


def test_osc_call_and_response_end_to_end(pipe):
    """A client plays a call in D minor, 3/4, over UDP: the answer comes on the bar line after a bar of silence, in
    the call's key and meter, as long as the call; malformed datagrams are counted; stop releases every note."""
    listener = OscListener()
    osc = OscTransport(listen="127.0.0.1:0", send=listener.address)
    session = LiveSession(pipe, [osc], tempo_qpm=240, time_signature="3/4", seed=0, lookahead=0.6).start()
    try:
        client = SimpleUDPClient(*osc.listen_address)
        client.send_message("/no_such_address", [1])
        client.send_message("/note_on", ["sixty", 100])
        client.send_message("/note_on", [60])
        client._sock.sendto(b"\x00garbage, not OSC", osc.listen_address)
        play(lambda p: client.send_message("/note_on", [p, 100]), lambda p: client.send_message("/note_off", [p]),
             D_MINOR_CALL, 0.25)
        notes = listener.wait_for(4, timeout=8)
        assert notes, "no answer arrived"
        time.sleep(0.3)
    finally:
        session.stop()
        listener.close()
    assert session.stats["malformed"] == 4
    [answer] = session.answers[:1]
    call = [PhraseNote(n.onset, n.duration, n.pitch) for n in answer.call]
    assert answer.key == call_key(call) == "D minor"
    assert answer.time_signature == "3/4" and answer.bars == 3
    bar = beats_per_bar("3/4")
    assert answer.start_beat == LiveClock.bar_line_after(answer.call_end + bar, bar)  # after a bar of rest
    assert all(answer.start_beat <= n.onset < answer.end_beat for n in answer.notes)
    scale = parse_key("D minor").pitch_classes
    assert all(args[0] % 12 in scale for _, _, args in notes)
    first_due = session.clock.time_of(answer.notes[0].onset)
    # never early (a scheduling bug); how late depends on the machine: benchmarks/speed/live_timing.py measures it
    assert notes[0][0] >= first_due - 0.005
    assert balanced(listener.messages)


def test_osc_controls_move_while_playing_and_stop_ends_the_session(pipe):
    listener = OscListener()
    osc = OscTransport(listen="127.0.0.1:0", send=listener.address)
    session = LiveSession(pipe, [osc], mode="continue", tempo_qpm=300, seed=1, lookahead=0.6).start()
    try:
        client = SimpleUDPClient(*osc.listen_address)
        assert listener.wait_for(2, timeout=8)
        for address, value in [("/temperature", 0.7), ("/key", "G major"), ("/density", 3.0),
                               ("/pitch_range", [60, 79]), ("/key", "H major"), ("/tempo", 9999.0)]:
            client.send_message(address, value)
        end = time.monotonic() + 5
        while time.monotonic() < end and session.controls.key != "G major":
            time.sleep(0.02)
        bars_then = session.answers[0].bars_done
        scale = parse_key("G major").pitch_classes
        end = time.monotonic() + 8
        while time.monotonic() < end and session.answers[0].bars_done < bars_then + 3:
            time.sleep(0.02)
        later = [n for n in session.answers[0].notes[-6:]]
        client.send_message("/stop", [])
        assert session.wait(5), "/stop did not end the session"
    finally:
        session.stop()
        listener.close()
    c = session.controls
    assert (c.key, c.density, c.pitch_range, c.tempo) == ("G major", 3.0, (60, 79), 300.0)
    assert c.temperature == pytest.approx(0.7)  # OSC floats are 32-bit
    assert session.stats["malformed"] == 2  # H major, 9999 qpm
    assert later and all(n.pitch % 12 in scale and 60 <= n.pitch <= 79 for n in later)
    assert balanced(listener.messages)


def test_trigger_mode_answers_only_on_a_trigger(pipe):
    session = LiveSession(pipe, [], mode="trigger", tempo_qpm=300, seed=2, answer_bars=1, lookahead=0.5).start()
    try:
        play(session.note_on, session.note_off, [60, 62, 64, 65, 67], 0.2)
        time.sleep(1.2)  # more than a bar of silence: respond mode would have answered by now
        assert not session.answers
        session.trigger()
        end = time.monotonic() + 6
        while time.monotonic() < end and not session.answers:
            time.sleep(0.02)
    finally:
        session.stop()
    assert session.answers and session.answers[0].mode == "trigger" and session.answers[0].key == "C major"


class LoopbackPort(BaseIOPort):
    """An in-process MIDI port on mido's classes: what is sent to it can be received from it."""

    def _open(self, **kwargs):
        pass

    def _send(self, message):
        self._messages.append(message)

    def _receive(self, block=True):
        return None

    def push(self, thing):
        """Queue anything, even an object that is no MIDI message (a broken driver)."""
        self._messages.append(thing)


def _drain(port) -> list:
    out = []
    while (m := port.poll()) is not None:
        out.append(m)
    return out


def test_midi_path_through_mido_ports(pipe):
    into, out = LoopbackPort("keys"), LoopbackPort("synth")
    midi = MidiTransport(input=into, output=out, channel=3)
    session = LiveSession(pipe, [midi], tempo_qpm=300, seed=0, lookahead=0.6).start()
    sent = []
    try:
        into.push("not a MIDI message")
        into.send(mido.Message("control_change", control=1, value=127))  # temperature 1.5
        into.send(mido.Message("pitchwheel", pitch=100))                   # ignored
        play(lambda p: into.send(mido.Message("note_on", note=p, velocity=90)),
             lambda p: into.send(mido.Message("note_on", note=p, velocity=0)), [67, 71, 74, 72, 71, 69, 66, 67], 0.2)
        end = time.monotonic() + 8
        while time.monotonic() < end and sum(m.type == "note_on" for m in sent) < 3:
            sent += _drain(out)
            time.sleep(0.02)
    finally:
        session.stop()
    sent += _drain(out)
    assert session.controls.temperature == 1.5
    assert midi.stats["malformed"] == 1 and midi.stats["ignored"] == 1
    ons = [m for m in sent if m.type == "note_on"]
    assert ons and all(m.channel == 3 for m in ons)
    assert session.answers[0].key == "G major"
    assert sent[-1].type == "control_change" and sent[-1].control == 123  # all notes off on stop
    count: Counter = Counter()
    for m in sent:
        count[getattr(m, "note", None)] += {"note_on": 1, "note_off": -1}.get(m.type, 0)
    assert all(v <= 0 for v in count.values()), "a note was left on"
    assert into.closed and out.closed


def test_midi_clock_sets_the_tempo(pipe):
    into = LoopbackPort("clock")
    session = LiveSession(pipe, [MidiTransport(input=into)], clock="midi", tempo_qpm=120).start()
    try:
        assert not session.clock.running
        for qpm in (150.0, 90.0):
            into.send(mido.Message("start"))
            spacing, t0 = 60.0 / qpm / 24, time.monotonic()
            for i in range(1, 37):
                while time.monotonic() < t0 + i * spacing:
                    time.sleep(0.0005)
                into.send(mido.Message("clock"))
            time.sleep(0.05)
            assert session.clock.tempo_qpm == pytest.approx(qpm, rel=0.06)
            assert session.clock.beat() == pytest.approx(1.5, abs=0.25)  # 36 ticks
        into.send(mido.Message("stop"))
        time.sleep(0.05)
        assert not session.clock.running
    finally:
        session.stop()


def test_clock_keeps_the_beat_through_tempo_changes():
    clock = LiveClock(120)
    clock.start(at=10.0)
    assert clock.beat(at=11.0) == 2.0
    clock.set_tempo(60, at=11.0)
    assert clock.beat(at=12.0) == 3.0 and clock.time_of(4.0) == 13.0
    assert LiveClock.bar_line_after(4.0, 4.0) == 4.0 and LiveClock.bar_line_after(4.1, 3.0) == 6.0
    follow = MidiClockFollower(clock)
    follow.start(at=0.0)
    for i in range(1, 25):
        follow.tick(at=i * 0.02)  # 24 ticks in 0.48 s: 125 qpm
    assert clock.tempo_qpm == pytest.approx(125.0) and clock.beat(at=0.48) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="tempo"):
        clock.set_tempo(0)


class Recorder(Transport):
    def __init__(self):
        super().__init__()
        self.events = []

    def send_note_on(self, pitch, velocity):
        self.events.append(("on", pitch, time.monotonic()))

    def send_note_off(self, pitch):
        self.events.append(("off", pitch, time.monotonic()))


def test_scheduler_sends_on_time_and_releases_on_stop():
    clock, rec = LiveClock(400), Recorder()  # 0.15 s a beat
    scheduler = NoteScheduler(clock, [rec])
    clock.start()
    scheduler.start()
    start = clock.beat()
    scheduler.add_note(60, start + 1.0, 0.5)
    scheduler.add_note(64, start + 2.0, 100.0)  # would sound for 10 s
    time.sleep(0.5)
    scheduler.stop()
    assert [(k, p) for k, p, _ in rec.events] == [("on", 60), ("off", 60), ("on", 64), ("off", 64)]
    assert abs(rec.events[0][2] - clock.time_of(start + 1.0)) < 0.02
    assert not scheduler.sounding and scheduler.pending() == 0


def test_bad_session_options_fail_before_anything_runs(pipe):
    with pytest.raises(ConfigError, match="answer_bars"):
        LiveSession(pipe, num_bars=4)
    with pytest.raises(ConfigError, match="mode"):
        LiveSession(pipe, mode="karaoke")
    with pytest.raises(ConfigError, match="H major"):
        LiveSession(pipe, key="H major")


def test_cli_live_without_a_midi_system_says_so_and_points_to_osc(capsys):
    try:
        mido.get_input_names()
        pytest.skip("this machine has a MIDI system")
    except Exception:
        pass
    code, _, err = cli(["live", "--midi-in", "keys"], capsys)
    assert_one_line_cli_error(code, err, "MIDI", "--osc-in")
    code, _, err = cli(["live"], capsys)
    assert_one_line_cli_error(code, err, "--osc-in")


def test_cli_live_runs_over_osc_for_a_while(capsys):
    listener = OscListener()
    try:
        host, port = listener.address
        code, out, _ = cli(["live", "--model", "original", "--osc-in", "127.0.0.1:0", "--osc-out", f"{host}:{port}",
                            "--mode", "continue", "--tempo", "300", "--seconds", "2.5", "--seed", "0"], capsys)
    finally:
        listener.close()
    assert code == 0 and "stopped:" in out
    assert listener.note_ons() and balanced(listener.messages)


def test_cli_live_ends_cleanly_on_ctrl_c(capsys):
    import os
    import signal

    listener = OscListener()
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT))  # Ctrl+C
    try:
        host, port = listener.address
        timer.start()
        code, out, _ = cli(["live", "--model", "original", "--osc-in", "127.0.0.1:0", "--osc-out", f"{host}:{port}",
                            "--mode", "continue", "--tempo", "300", "--seed", "0"], capsys)
    finally:
        timer.join()
        listener.close()
    assert code == 0 and "stopped:" in out
    assert balanced(listener.messages)


def test_a_tempo_change_lands_on_the_next_bar_line(pipe):
    session = LiveSession(pipe, [], mode="trigger", tempo_qpm=300).start()  # 0.8 s a bar
    try:
        session.set(tempo=150)
        line = LiveClock.bar_line_after(session.clock.beat(), 4.0)
        assert session.clock.tempo_qpm == 300.0
        due = session.clock.time_of(line)
        time.sleep(max(0.0, due - time.monotonic()) + 0.1)
        assert session.clock.tempo_qpm == 150.0
        assert session.clock.beat(at=due) == pytest.approx(line, abs=0.05)  # the beat did not jump
    finally:
        session.stop()
