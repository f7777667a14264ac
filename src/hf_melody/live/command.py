"""The `hf-melody live` command: its flags, the transports they ask for, and the run loop (Ctrl+C ends it cleanly,
every note released).

Examples:
    >>> from hf_melody.cli import main
    >>> main(["live", "--osc-in", "127.0.0.1:9000", "--osc-out", "127.0.0.1:9001", "--tempo", "100"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable

from ..errors import ConfigError
from ..pipelines.melody_generation import MelodyPipeline
from .controls import MODES
from .midi import DEFAULT_CC_MAP, MidiTransport, list_ports
from .osc import OscTransport
from .session import LiveSession

__all__ = ["LIVE_DESCRIPTION", "add_live_arguments", "live_transports", "run_live"]

LIVE_DESCRIPTION = ("Listen on OSC and / or MIDI and answer in time: in respond mode (default) the model answers "
                    "each phrase you play from the next bar line after a bar of silence, in your key and meter. "
                    "See docs/live.md for the OSC addresses.")
"""The description of `hf-melody live --help`."""


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `hf-melody live`.

    Examples:
        >>> p = argparse.ArgumentParser(); add_live_arguments(p)
        >>> p.parse_args(["--osc-in", "127.0.0.1:9000", "--respond-after", "2"]).respond_after
        2.0
    """
    add = parser.add_argument
    add("--model", default="folk-base", help="bundled name, local folder or Hub id (default: folk-base)")
    add("--osc-in", default=None, metavar="HOST:PORT", help="listen for OSC here, e.g. 127.0.0.1:9000")
    add("--osc-out", default=None, metavar="HOST:PORT", help="send OSC notes here, e.g. 127.0.0.1:9001")
    add("--midi-in", default=None, metavar="NAME", help="a MIDI input port (see --list-ports)")
    add("--midi-out", default=None, metavar="NAME", help="a MIDI output port (see --list-ports)")
    add("--virtual", action="store_true", help="create virtual MIDI ports 'hf-melody in' / 'hf-melody "
        "out' for those not given (macOS, Linux with ALSA)")
    add("--list-ports", action="store_true", help="list the MIDI ports and exit")
    add("--midi-channel", type=int, default=0, help="MIDI channel of the notes sent, 0-15 (default: 0)")
    add("--mode", default="respond", help=f"{' / '.join(MODES)} (accompany = continue; default: respond)")
    add("--tempo", type=float, default=120.0, help="quarter notes per minute (default: 120)")
    add("--clock", choices=("internal", "midi"), default="internal",
        help="internal (--tempo) or follow incoming MIDI clock (default: internal)")
    add("--time-signature", "--time_signature", dest="time_signature", default="4/4",
        help="the meter you play in (default: 4/4)")
    add("--respond-after", "--respond_after", dest="respond_after", type=float, default=None,
        metavar="BEATS", help="beats of silence that end a call (default: one bar)")
    add("--answer-bars", "--answer_bars", dest="answer_bars", type=int, default=None,
        help="bars of each answer (default: as long as the call)")
    add("--lookahead", type=float, default=0.75, metavar="SECONDS",
        help="generate each bar this long before it sounds (default: 0.75)")
    add("--trigger-note", type=int, default=None, help="a MIDI note that triggers an answer")
    add("--trigger-cc", type=int, default=None, help="a MIDI CC that triggers an answer (default: 20)")
    add("--density", type=float, default=None, help="notes per bar to aim at (default: the model's)")
    add("--temperature", type=float, default=None, help="sampling temperature (default: the bundle's)")
    add("--key", default=None, help='keep answers in this key (default: the key of each call)')
    add("--pitch-range", "--pitch_range", dest="pitch_range", type=int, nargs=2, default=None,
        metavar=("LO", "HI"), help="MIDI pitches the answers stay within")
    add("--style", default=None, help="style token to start with (default: the model's choice)")
    add("--top-k", "--top_k", dest="top_k", type=int, default=None, help="sample among the k likeliest")
    add("--top-p", "--top_p", dest="top_p", type=float, default=None, help="nucleus sampling threshold")
    add("--seed", type=int, default=None, help="seed of the first bar (default: a fresh one)")
    add("--seconds", type=float, default=None, help="stop after this many seconds (default: Ctrl+C)")
    add("--device", default=None, help="cpu, cuda, ... (default: cpu)")


def live_transports(args: argparse.Namespace) -> list:
    """The transports the `live` flags ask for (OSC, MIDI or both); a `MidiUnavailableError` points to OSC."""
    transports = []
    if args.osc_in or args.osc_out:
        transports.append(OscTransport(listen=args.osc_in, send=args.osc_out))
    if args.midi_in or args.midi_out or args.virtual:
        cc_map = None
        if args.trigger_cc is not None:
            cc_map = {**{k: v for k, v in DEFAULT_CC_MAP.items() if v != "trigger"}, args.trigger_cc: "trigger"}
        transports.append(MidiTransport(input=args.midi_in or (args.virtual and "hf-melody in"),
                        output=args.midi_out or (args.virtual and "hf-melody out"),
                        channel=args.midi_channel, virtual_input=args.virtual and not args.midi_in,
                        virtual_output=args.virtual and not args.midi_out,
                        trigger_note=args.trigger_note, cc_map=cc_map))
    return transports


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _echo(msg: str) -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def run_live(args: argparse.Namespace, echo: Callable[[str], None] = _echo) -> int:
    """`hf-melody live` with parsed `args`: play until Ctrl+C, `/stop` or `--seconds`; `echo` prints a line."""
    if args.list_ports:
        ports = list_ports()
        echo("MIDI inputs:  " + (", ".join(ports["inputs"]) or "none"))
        echo("MIDI outputs: " + (", ".join(ports["outputs"]) or "none"))
        return 0
    if not (args.osc_in or args.osc_out or args.midi_in or args.midi_out or args.virtual):
        raise ConfigError("live needs somewhere to listen and play; give --osc-in HOST:PORT / --osc-out HOST:PORT, "
          "or --midi-in NAME / --midi-out NAME (--list-ports), or --virtual")
    options = {k: v for k, v in {"temperature": args.temperature, "key": args.key, "style": args.style,
                 "top_k": args.top_k, "top_p": args.top_p,
                 "pitch_range": tuple(args.pitch_range) if args.pitch_range else None}.items()
               if v is not None}
    transports = live_transports(args)  # before the model: a missing MIDI system fails at once
    try:
        pipe = MelodyPipeline.from_pretrained(args.model, device=args.device)
        session = LiveSession(pipe, transports, mode=args.mode, tempo_qpm=args.tempo,
              time_signature=args.time_signature, respond_after=args.respond_after,
              answer_bars=args.answer_bars, lookahead=args.lookahead, clock=args.clock,
              density=args.density, seed=args.seed, **options)
    except BaseException:
        for t in transports:
            t.close()
        raise
    logging.getLogger("hf_melody.live").setLevel(logging.INFO)  # one line per answer: notes, decode time, lateness
    echo(f"live: {session.controls.mode} at {args.tempo:g} qpm in {args.time_signature} over "
          f"{', '.join(t.name for t in transports)} (Ctrl+C to stop)")
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None  # `kill` ends it as Ctrl+C does
    session.start()
    try:
        session.wait(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        session.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    echo(f"stopped: {json.dumps(session.stats)}")
    return 0
