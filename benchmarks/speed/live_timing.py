"""Timing of a live session over OSC on 127.0.0.1: when the answer comes after a call, and the onset jitter of every
note sent, idle and while a busy-loop subprocess loads the CPU. One JSON line per condition.

    python benchmarks/speed/live_timing.py --model original --tempo 120 --calls 3

A client plays a two-bar call (crotchets, from a bar line) to a real `LiveSession` over UDP and records the arrival
of every note the session sends. For each answer: the delay from the end of the call (the last note off) to the
first answer note, the intended bar line (the first bar line at least one bar of silence after the call) and how far
the first note arrived from it. For every note on / off: arrival minus the time it was scheduled for (median, p99,
max).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time

import torch
from pythonosc.osc_packet import OscPacket
from pythonosc.udp_client import SimpleUDPClient

from hf_melody import MelodyPipeline
from hf_melody.live import LiveSession, OscTransport

CALL = [62, 64, 65, 67, 69, 67, 65, 64]
"""A two-bar call in 4/4 (crotchets)."""


def receive(sock: socket.socket, out: list, done: threading.Event) -> None:
    while not done.is_set():
        try:
            data, _ = sock.recvfrom(4096)
        except TimeoutError:
            continue
        now = time.monotonic()
        for timed in OscPacket(data).messages:
            out.append((now, timed.message.address, timed.message.params[0]))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run(pipe, args, load: int) -> dict:
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    got: list = []
    done = threading.Event()
    listener = threading.Thread(target=receive, args=(sock, got, done), daemon=True)
    listener.start()
    osc = OscTransport(listen="127.0.0.1:0", send=sock.getsockname())
    session = LiveSession(pipe, [osc], tempo_qpm=args.tempo, seed=0, lookahead=args.lookahead).start()
    client = SimpleUDPClient(*osc.listen_address)
    spb = 60.0 / args.tempo
    answers = []
    try:
        time.sleep(0.5)
        for _ in range(args.calls):
            n = len(session.answers)
            # the player keeps time: the call starts on a bar line of the session's clock
            line = session.clock.bar_line_after(session.clock.beat() + 0.5, 4.0)
            while time.monotonic() < session.clock.time_of(line):
                time.sleep(0.0005)
            for p in CALL:
                client.send_message("/note_on", [p, 100])
                time.sleep(spb * 0.9)
                client.send_message("/note_off", [p])
                call_end = time.monotonic()
                time.sleep(spb * 0.1)
            while len(session.answers) == n or session.clock.beat() < session.answers[-1].end_beat + 0.5:
                time.sleep(0.01)
            answer = session.answers[-1]
            line = session.clock.time_of(answer.start_beat)
            first_due = session.clock.time_of(answer.notes[0].onset)
            arrivals = [t for t, a, p in got if a == "/note_on" and t >= line - 0.1]
            answers.append({"call_end_to_first_note_ms": 1000 * (arrivals[0] - call_end),
                             "intended_bar_line_after_call_end_ms": 1000 * (line - call_end),
                             "first_note_vs_bar_line_ms": 1000 * (arrivals[0] - line),
                             "first_note_beat_in_bar": answer.notes[0].onset - answer.start_beat,
                             "first_note_vs_its_time_ms": 1000 * (arrivals[0] - first_due),
                             "decode_ms_per_bar": [round(1000 * d, 1) for d in answer.decode_s]})
            time.sleep(spb)
    finally:
        session.stop()
        done.set()
        listener.join(2)
        sock.close()
        for b in busy:
            b.kill()
            b.wait()
    sent = [e for e in session.scheduler.sent]
    kind = {"/note_on": "note_on", "/note_off": "note_off"}
    received = [(t, kind[a], p) for t, a, p in got if a in kind]
    jitter = []
    for e, (t, k, p) in zip(sent, received, strict=False):
        assert (e.kind, e.pitch) == (k, p), "sent and received out of step"
        jitter.append(1000 * (t - e.due))
    late = [abs(j) for j in jitter]
    return {"condition": f"busy-loop x{load}" if load else "idle", "tempo_qpm": args.tempo, "answers": answers,
            "answers_on_bar_line": sum(a["first_note_beat_in_bar"] == 0 for a in answers),
            "notes": len(jitter), "jitter_ms_median": round(statistics.median(late), 3),
            "jitter_ms_p99": round(pct(late, 0.99), 3), "jitter_ms_max": round(max(late), 3),
            "dropped_notes": session.stats["dropped_notes"], "late_bars": session.stats["late_bars"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="original")
    parser.add_argument("--tempo", type=float, default=120.0)
    parser.add_argument("--calls", type=int, default=3, help="calls per condition")
    parser.add_argument("--lookahead", type=float, default=0.75)
    parser.add_argument("--load", type=int, default=1, help="busy-loop processes for the loaded condition")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = MelodyPipeline.from_pretrained(args.model)
    for load in (0, args.load):
        print(json.dumps(run(pipe, args, load)), flush=True)


if __name__ == "__main__":
    main()
