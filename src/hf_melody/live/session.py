"""`LiveSession`: play with a model in time. It listens to the transports (OSC, MIDI), keeps a clock, decides when
to answer, generates bar by bar ahead of the playhead with `pipe.stream`, and hands the notes to the scheduler.

Modes: "respond" (call-and-response: when the player stops for `respond_after` beats, answer from the next bar
line with a continuation of their phrase, in its key and meter, as long as the call), "continue" (an endless
melody, bar after bar) and "trigger" (answer the last phrase when a trigger arrives).

Examples:
    >>> from hf_melody import MelodyPipeline
    >>> from hf_melody.live import LiveSession, OscTransport
    >>> pipe = MelodyPipeline.from_pretrained("folk-base")
    >>> session = LiveSession(pipe, [OscTransport("127.0.0.1:9000", "127.0.0.1:9001")], tempo_qpm=100)  # doctest: +SKIP
    >>> session.start(); session.set(temperature=0.9, key="D minor"); session.stop()                    # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import itertools
import logging
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ConfigError
from .clock import LiveClock, MidiClockFollower
from .controls import CONTROL_NAMES, LiveControls, check_mode
from .phrase import PhraseNote, bar_of, beats_per_bar, call_key, continuation_ids, phrase_bars, quantise
from .scheduler import NoteScheduler
from .transport import LiveEvent, Transport

logger = logging.getLogger(__name__)

__all__ = ["Answer", "LiveSession"]

_RUNNING: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _release_all() -> None:  # a script that forgets stop() still leaves no note hanging
    for session in list(_RUNNING):
        session.stop()


@dataclass
class Answer:
    """One answer (or the endless melody): where it starts, its key and meter, the notes sent (absolute beats)
    and how long each bar took to decode."""

    index: int
    mode: str
    start_beat: float
    bars: int | None
    key: str | None
    time_signature: str
    call: list[PhraseNote] = field(default_factory=list)
    notes: list[PhraseNote] = field(default_factory=list)
    decode_s: list[float] = field(default_factory=list)
    bars_done: int = 0
    late_bars: int = 0
    phrase: list[PhraseNote] = field(default_factory=list, repr=False)  # the call and what followed (its bars)
    call_bars: int = 0
    call_end: float | None = None  # the beat the call's last note ended on

    @property
    def end_beat(self) -> float | None:
        return None if self.bars is None else self.start_beat + self.bars * beats_per_bar(self.time_signature)


class LiveSession:
    """Play with `pipe` live through `transports` (see the module docstring for the modes).

    Args:
        pipe: a `MelodyPipeline`.
        transports: `OscTransport`s and / or `MidiTransport`s (both at once work).
        mode: "respond" (default), "continue" (alias "accompany") or "trigger".
        tempo_qpm: the internal clock's tempo; `clock="midi"` follows incoming MIDI clock instead.
        time_signature: the meter the player plays in (the answers keep it).
        respond_after: beats of silence that end a call (default: one bar).
        answer_bars: bars of each answer (default: as many as the call).
        lookahead: seconds before a bar line that its bar is generated (generation runs this far ahead; controls
            set before that moment apply to that bar).
        candidates: with a `density` set, bars decoded per bar to choose the one closest to it.
        context_bars: bars of the phrase given to the model as the prompt.
        velocity: MIDI velocity of the notes sent.
        threads: torch threads while the session runs (restored on stop). Default 1: decoding a bar of a small
            model is overhead-bound, and a second thread on a busy 2-core machine stalled bars for up to a second
            (10 ms with one; benchmarks/RESULTS.md section 21). None leaves torch's setting alone.
        seed: bar k of answer a uses seed `seed + 1000 * a + candidates * k + c` (None: a fresh one).
        **options: `MelodyGenerationConfig` options for every bar (temperature, key, pitch_range, style, top_k...).

    Examples:
        >>> with LiveSession(pipe, [osc], mode="continue", tempo_qpm=90, key="G major") as s:   # doctest: +SKIP
        ...     time.sleep(30)
    """

    def __init__(self, pipe, transports: Sequence[Transport] = (), mode: str = "respond", tempo_qpm: float = 120.0,
                 time_signature: str = "4/4", respond_after: float | None = None, answer_bars: int | None = None,
                 lookahead: float = 0.75, clock: str = "internal", candidates: int = 3, context_bars: int = 8,
                 velocity: int = 80, seed: int | None = None, density: float | None = None, threads: int | None = 1,
                 **options):
        from ..generation.configuration import MelodyGenerationConfig

        if clock not in ("internal", "midi"):
            raise ConfigError(f"clock={clock!r}: choose internal (--tempo) or midi (follow incoming MIDI clock)")
        controls = {k: options.pop(k) for k in ("temperature", "key", "pitch_range") if k in options}
        unknown = set(options) - set(MelodyGenerationConfig.option_names())
        if unknown:
            raise ConfigError(f"LiveSession does not take {sorted(unknown)}; give MelodyGenerationConfig options")
        for length in ("num_bars", "max_bars", "exact_bars", "max_new_notes", "num_return_sequences"):
            if length in options:
                raise ConfigError(f"{length}: a live session generates one bar at a time; use answer_bars")
        self.pipe, self.transports, self.time_signature = pipe, list(transports), time_signature
        MelodyGenerationConfig.from_options({**options, "time_signature": time_signature})  # fail here, not live
        self.options = options
        self.bpb = beats_per_bar(time_signature)
        self.respond_after = self.bpb if respond_after is None else float(respond_after)
        self.answer_bars, self.lookahead, self.candidates = answer_bars, float(lookahead), max(1, int(candidates))
        self.context_bars, self.velocity, self.follow = int(context_bars), int(velocity), clock
        self.seed = MelodyGenerationConfig(seed=seed).with_seed().seed
        self.controls = LiveControls(mode=check_mode(mode), tempo=tempo_qpm)
        for name, value in {**controls, "density": density}.items():
            self.controls = self.controls.updated(name, value)
        self.clock = LiveClock(tempo_qpm)
        self.follower = MidiClockFollower(self.clock)
        self.scheduler = NoteScheduler(self.clock, self.transports)
        self.answers: list[Answer] = []
        self.call: list[PhraseNote] = []
        self._held: dict[int, tuple[float, int]] = {}
        self._perf: Answer | None = None
        self._trigger = False
        self._count = itertools.count()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._switch: float | None = None
        self.threads, self._torch_threads = threads, None

    # ---- the Python API ----------------------------------------------------------------------------------------
    def start(self) -> LiveSession:
        """Start the clock (unless it follows MIDI clock), the scheduler, the transports and the conductor."""
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch, 0.001))  # the scheduler thread gets the GIL within ~1 ms
        if self.threads is not None:
            self._torch_threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        if self.follow == "internal":
            self.clock.start()
        self.scheduler.start()
        for t in self.transports:
            t.start(self.handle)
        self._thread = threading.Thread(target=self._run, name="hf_melody-live", daemon=True)
        self._thread.start()
        _RUNNING.add(self)
        logger.info("live: %s mode at %.0f qpm in %s, %s", self.controls.mode, self.clock.tempo_qpm,
                    self.time_signature, ", ".join(map(repr, self.transports)) or "no transport")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop everything, release every sounding note (all notes off) and close the transports. Idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.scheduler.stop()
        if self._perf is not None and self._perf.notes:
            self._finish(self._perf)
        for t in self.transports:
            t.close()
        if self._switch is not None:
            sys.setswitchinterval(self._switch)
        if self._torch_threads is not None:
            torch.set_num_threads(self._torch_threads)
        _RUNNING.discard(self)
        logger.info("live: stopped (%s)", self.stats)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the session stops (a `/stop` message, `stop()`); True if it did within `timeout`. Sleeps in
        short steps, so Ctrl+C interrupts it cleanly."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopped.is_set() and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.02)
        return self._stopped.is_set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def __enter__(self) -> LiveSession:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set(self, **controls) -> None:
        """Change controls while playing, from the next bar: temperature, key ("auto": each call's key),
        pitch_range, density (notes per bar, 0: off), mode, tempo. `ConfigError` for a bad value.

        Examples:
            >>> session.set(temperature=1.2, key="A minor", density=6)                    # doctest: +SKIP
        """
        with self._lock:
            new = self.controls
            for name, value in controls.items():
                new = new.updated(name, value)
            if new.tempo != self.controls.tempo and self.follow == "internal":
                line = self.clock.bar_line_after(self.clock.beat(), self.bpb)
                self.scheduler.add_call(line, lambda qpm=new.tempo: self.clock.set_tempo(qpm))
            if new.mode != self.controls.mode and self._perf is not None and self._perf.bars is None:
                self._perf.bars = self._perf.bars_done  # the endless melody ends with the bars already made
            self.controls = new
        self._wake.set()

    def trigger(self) -> None:
        """Answer the last phrase from the next bar line (the trigger mode's cue; works in any mode)."""
        with self._lock:
            self._trigger = True
        self._wake.set()

    def note_on(self, pitch: int, velocity: int = 100) -> None:
        """Play a note into the session (what a transport does for an incoming note)."""
        self.handle(LiveEvent("note_on", (pitch, velocity)))

    def note_off(self, pitch: int) -> None:
        self.handle(LiveEvent("note_off", (pitch,)))

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: answers, notes scheduled and sent, notes dropped as late, what the transports received,
        ignored and found malformed."""
        totals = {k: sum(t.stats.get(k, 0) for t in self.transports) for k in ("received", "malformed", "ignored")}
        return {"answers": len(self.answers), "notes_scheduled": sum(len(a.notes) for a in self.answers),
                "notes_sent": sum(1 for e in self.scheduler.sent if e.kind == "note_on"),
                "dropped_notes": self.scheduler.dropped, "late_bars": sum(a.late_bars for a in self.answers),
                **totals}

    # ---- incoming events ---------------------------------------------------------------------------------------
    def handle(self, event: LiveEvent) -> None:
        """One event from a transport (runs in its thread; a `ConfigError` is counted there as malformed)."""
        kind, args = event.kind, event.args
        if kind == "control":
            if args[0] not in CONTROL_NAMES:
                raise ConfigError(f"unknown control {args[0]!r}; choose one of {', '.join(CONTROL_NAMES)}")
            self.set(**{args[0]: args[1]})
        elif kind == "trigger":
            self.trigger()
        elif kind == "stop":
            threading.Thread(target=self.stop, name="hf_melody-live-stop", daemon=True).start()
        elif kind.startswith("clock"):
            self._clock_event(kind, event.time)
        elif kind == "note_on":
            self._note_on(int(args[0]), int(args[1]), event.time)
        elif kind == "note_off":
            self._note_off(int(args[0]), event.time)
        self._wake.set()

    def _clock_event(self, kind: str, at: float) -> None:
        if self.follow != "midi":
            return
        if kind == "clock":
            if not self.clock.running and self.follower.ticks == 0:
                self.follower.start(at)  # ticks without a start message: start on the first one
            self.follower.tick(at)
        elif kind == "clock_start":
            self._drop_performance()
            self.follower.start(at)
        elif kind == "clock_stop":
            self.follower.stop(at)
            self._drop_performance()
        elif kind == "clock_continue":
            self.follower.resume(at)

    def _drop_performance(self) -> None:
        with self._lock:
            if self._perf is not None:
                self.scheduler.cancel(self._perf)
                self._perf = None
        self.scheduler.clear()

    def _note_on(self, pitch: int, velocity: int, at: float) -> None:
        with self._lock:
            beat = quantise(self.clock.beat(at))
            perf = self._perf
            if perf is not None and self.controls.mode == "respond" and perf.call and beat < perf.start_beat:
                self.scheduler.cancel(perf)  # the player goes on before the answer began: their call continues
                self.call, self._perf = perf.call + self.call, None
            self._held[pitch] = (beat, velocity)

    def _note_off(self, pitch: int, at: float) -> None:
        with self._lock:
            if pitch not in self._held:
                return
            onset, velocity = self._held.pop(pitch)
            end = max(quantise(self.clock.beat(at)), onset + 0.25)
            self.call.append(PhraseNote(onset, end - onset, pitch, velocity))
            horizon = self.call[-1].onset - 16 * self.bpb  # a call is at most the last 16 bars
            self.call = [n for n in self.call if n.onset >= horizon]

    # ---- the conductor -----------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(0.01)
            self._wake.clear()
            try:
                self._step()
            except Exception:  # a failed bar must not end the session: log it, drop that answer
                logger.exception("live: generation failed; the answer is dropped")
                with self._lock:
                    self._perf = None

    def _step(self) -> None:
        if not self.clock.running:
            return
        now, beat = self.clock.now(), self.clock.beat()
        with self._lock:
            perf, mode = self._perf, self.controls.mode
            if perf is not None and perf.end_beat is not None and perf.bars_done >= perf.bars and beat >= perf.end_beat:
                self._finish(perf)
                perf = self._perf = None
            if perf is None:
                perf = self._perf = self._next_performance(mode, now, beat)
        while perf is not None and (perf.bars is None or perf.bars_done < perf.bars) and not self._stopped.is_set():
            bar_start = perf.start_beat + perf.bars_done * self.bpb
            due = self.clock.time_of(bar_start)
            if due is None or due - self.clock.now() > self.lookahead or perf is not self._perf:
                return
            self._generate_bar(perf, due)

    def _next_performance(self, mode: str, now: float, beat: float) -> Answer | None:
        """Start an answer when the call has ended (respond), a trigger came, or the endless melody is due."""
        if self._trigger:
            self._trigger = False
            line = self.clock.bar_line_after(beat + 1e-6, self.bpb)
            if self.clock.time_of(line) - now < self.lookahead / 2:
                line += self.bpb
            return self._begin("trigger", self.call, line)
        if mode == "respond" and self.call and not self._held:
            last_off = max(n.end for n in self.call)
            line = self.clock.bar_line_after(last_off + self.respond_after, self.bpb)
            if self.clock.time_of(line) - now <= self.lookahead:
                return self._begin("respond", self.call, line)
        if mode == "continue":
            line = self.clock.bar_line_after(beat + 1e-6, self.bpb)
            return self._begin("continue", [], line, endless=True)
        return None

    def _begin(self, mode: str, call: list[PhraseNote], line: float, endless: bool = False) -> Answer:
        """An `Answer` from bar line `line` continuing `call` (moved so that its first bar is bar 0)."""
        first = bar_of(min((n.onset for n in call), default=0.0), self.time_signature) * self.bpb
        phrase = [PhraseNote(n.onset - first, n.duration, n.pitch, n.velocity) for n in sorted(call, key=lambda n:
                                                                                                  n.onset)]
        call_bars = phrase_bars(phrase, self.time_signature)
        bars = None if endless else (self.answer_bars or min(max(call_bars, 1), 16))
        key = self.controls.key or (call_key(phrase) if phrase else None)
        if call is self.call:
            self.call = []
        return Answer(next(self._count), mode, line, bars, key, self.time_signature, call=phrase,
                      phrase=list(phrase), call_bars=call_bars, call_end=max((n.end for n in call), default=None))

    def _generate_bar(self, perf: Answer, due: float) -> None:
        """Decode the next bar of `perf` (the best of `candidates` for a density) and schedule its notes."""
        controls, bpb, ts = self.controls, self.bpb, self.time_signature
        nb = perf.call_bars + perf.bars_done  # the bar in phrase space
        lo = max(0, nb - self.context_bars)
        context = [PhraseNote(n.onset - lo * bpb, n.duration, n.pitch) for n in perf.phrase if n.onset >= lo * bpb]
        downbeat = perf.bars_done == 0 and perf.mode != "continue"  # an answer starts on its bar line
        prompt = continuation_ids(self.pipe.melody_tokenizer, context, nb - lo, ts, downbeat) if context else None
        options = {**self.options, **controls.generation_options(), "num_bars": 1, "time_signature": ts}
        key = controls.key or perf.key
        if key is not None:
            options["key"] = key
        tries = self.candidates if controls.density else 1
        started, best = time.perf_counter(), None
        for c in range(tries):
            seed = self.seed + 1000 * perf.index + tries * perf.bars_done + c
            notes = list(self.pipe.stream(prompt, tempo_qpm=self.clock.tempo_qpm, seed=seed, **options))
            if best is None or abs(len(notes) - controls.density) < abs(len(best) - controls.density):
                best = notes
            if not controls.density:
                break
        perf.decode_s.append(time.perf_counter() - started)
        if self.clock.now() > due:
            perf.late_bars += 1
        bar_start = perf.start_beat + perf.bars_done * bpb
        with self._lock:
            if perf is not self._perf:
                return  # cancelled while decoding
            for n in best:
                offset = quantise(n.onset - n.bar * bpb)
                duration = max(quantise(n.duration), 0.25)
                perf.phrase.append(PhraseNote(nb * bpb + offset, duration, n.pitch))
                note = PhraseNote(bar_start + offset, duration, n.pitch, self.velocity)
                perf.notes.append(note)
                self.scheduler.add_note(n.pitch, note.onset, duration, self.velocity, tag=perf)
            perf.bars_done += 1
            if perf.bars is None:  # the endless melody keeps its context, not its whole past
                perf.phrase = [n for n in perf.phrase if n.onset >= (nb - self.context_bars) * bpb]
                if len(self.answers) == 0 or self.answers[-1] is not perf:
                    self.answers.append(perf)
            elif perf.bars_done == 1:
                self.answers.append(perf)

    def _finish(self, perf: Answer) -> None:
        sent = [e for e in self.scheduler.sent if e.kind == "note_on"]
        late = max((e.lateness for e in sent[-len(perf.notes):]), default=0.0) if perf.notes else 0.0
        decode = perf.decode_s or [0.0]
        logger.info("live: answer %d (%s): %d notes in %d bars from bar %d (%s, %s); decode %.0f ms a bar "
                    "(max %.0f), %d late bars, notes sent up to %.1f ms after their time",
                    perf.index, perf.mode, len(perf.notes), perf.bars_done,
                    bar_of(perf.start_beat, self.time_signature) + 1, perf.key or "any key", perf.time_signature,
                    1000 * sum(decode) / len(decode), 1000 * max(decode), perf.late_bars, 1000 * late)
