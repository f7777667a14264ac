"""The demo as a service: `MelodyDemo` checks a request, generates its candidates within the request's time limit and
writes their files; `DemoLimits` bounds every request and what the demo keeps.

A visitor can only pick one of the models offered at launch (never a path or a Hub id), and every request is
bounded: the upload's size (checked before it is read), its note count (checked before it is tokenized), the bars,
the candidates, the new tokens, the wall time of the generation, the queue, the models kept in memory and the files
kept on disk. The Gradio page on top is `hf_melody.demo.page`.

Examples:
    >>> out = MelodyDemo(["folk-base"]).generate("folk-base", "D minor", bars=8, seed=0, candidates=2)  # doctest: +SKIP
    >>> out.candidates[0].files                                                          # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bundle import bundled_checkpoints, bundled_name
from ..errors import ConfigError, HFMelodyError, MidiReadError, MissingDependencyError, SoundfontNotFoundError
from ..generation.configuration import fresh_seed
from ..generation.infill import parse_bars
from ..generation.streamers import NoteStreamer
from ..music import GM_PROGRAMS
from ..pipelines.melody_generation import MelodyPipeline

logger = logging.getLogger(__name__)

ANY = "any"
KEYS = (ANY, *(f"{t} {m}" for m in ("major", "minor") for t in ("C", "G", "D", "A", "E", "F", "Bb", "Eb")),
        "D dorian", "G mixolydian", "E phrygian")
METERS = (ANY, "4/4", "3/4", "2/4", "6/8", "9/8", "3/2")
MAX_SEED = 2**32 - 1
TEMPERATURES = (0.1, 2.0)
TEMPOS = (30, 300)
"""The tempo a request may ask for, in quarter notes per minute."""
INSTRUMENTS = ("piano", "flute", "violin", "clarinet", "acoustic guitar (nylon)", "oboe", "cello", "harp")
"""The General MIDI instruments a visitor picks from (`program=`)."""
STRICTNESS = {"hard": "hard", "soft": 3.0}
"""The chord strictness a visitor picks from: hard (strong beats on chord tones) or soft (a penalty of 3 per
non-chord tone)."""


@dataclass(frozen=True)
class DemoLimits:
    """What one request of the demo may ask for, and what the demo keeps; every field has a small default.

    Examples:
        >>> DemoLimits().max_upload_bytes
        1000000
    """

    max_upload_bytes: int = 1_000_000
    """The largest MIDI prompt accepted, from the file's size before it is read (a folk tune is a few kB)."""
    max_prompt_notes: int = 2_000
    """The most notes (all tracks) a MIDI prompt may hold, counted after parsing and before tokenizing; the bundled
    models read 512 tokens, a few hundred melody notes."""
    max_bars: int = 32
    """The most bars one request may ask for (the slider's end)."""
    tokens_per_bar: int = 64
    """The new-token cap of a request is `tokens_per_bar * bars` (at most `max_bars` bars): bounds its time."""
    max_regenerate_chars: int = 20
    max_chord_chars: int = 200
    """The longest chord progression a request may give (e.g. "C G Am F" is 8 characters)."""
    max_candidates: int = 4
    """The most melodies one request may ask for, to compare."""
    max_seconds: float = 60.0
    """The wall time one request's generation may take, in seconds: past it the generation stops at its next token
    and the visitor is told, so one visitor cannot hold the queue for minutes (infilling stops between candidates)."""
    cache_size: int = 2
    """Pipelines kept loaded (least recently used first out)."""
    keep_runs: int = 16
    """Output folders kept in the demo's folder; older ones are deleted after each request."""
    keep_seconds: int = 600
    """Gradio's copies of outputs and uploads are deleted this long after they were made (checked every half of it)."""
    queue_size: int = 16
    """Requests waiting at most; one more is refused at once ("queue is full")."""
    concurrency: int = 1
    """Requests generated at the same time."""

    def __post_init__(self):
        for name, value in vars(self).items():
            if name == "max_seconds":
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                    raise ConfigError(f"DemoLimits.max_seconds={value!r}: give a number of seconds above 0, e.g. 60")
            elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"DemoLimits.{name}={value!r}: give a whole number of at least 1")


@dataclass
class Candidate:
    """One melody of a request, as the page shows it: its WAV (None without a soundfont), engraved score as SVG
    (None without verovio), piano-roll PNG, downloads (MIDI, MusicXML, ABC, WAV: those written) and summary line."""

    audio: str | None
    score: str | None
    roll: str
    files: list[str]
    summary: str


@dataclass
class DemoOutput:
    """What one request returns: its candidates (1 to `DemoLimits.max_candidates`) and a markdown summary."""

    candidates: list[Candidate] = field(default_factory=list)
    summary: str = ""


class _Deadline(NoteStreamer):
    """A streamer that only watches the clock: past `seconds` it cancels the generation, which stops at its next
    token (the pipeline's streamer stopping criterion); `timed_out` says whether it did."""

    def __init__(self, tokenizer, seconds: float):
        super().__init__(tokenizer)
        self.deadline = time.monotonic() + seconds

    def put(self, value) -> None:
        if time.monotonic() > self.deadline:
            self.cancel()

    def end(self) -> None:
        pass


def _model_name(source: str) -> str:
    """What the model box shows for a model given at launch: the bundled name, a folder's name or the Hub id."""
    name = bundled_name(source)
    if name:
        return name
    p = Path(source)
    if p.is_dir():
        return p.resolve().name
    if not _HUB_ID.fullmatch(str(source)) or p.exists():
        raise ConfigError(f"--models {source}: not a bundled model ({', '.join(bundled_checkpoints())}), a folder "
                          "or a Hub id (owner/name)")
    return str(source)


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


_PATH = re.compile(r"(?<![\w.:/])(?:~|[A-Za-z]:)?[/\\](?:[^\s/\\'\"`:,;()]+[/\\])+")


def visitor_message(error: BaseException | str) -> str:
    """An error as a visitor of the demo sees it: one line, folders of the server stripped (file names kept).

    Examples:
        >>> visitor_message("/tmp/gradio/4f2a/tune.mid: not a MIDI file")
        'tune.mid: not a MIDI file'
    """
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return _PATH.sub("", text)


class MelodyDemo:
    """The demo's state and its one action: `generate(...)` returns audio, piano roll, files and a summary.

    `models` is the allow-list (bundled names, folders or Hub ids, chosen by whoever starts the demo); a request
    names one of them by its shown name (`self.models`) or as it was given, nothing else is loaded.

    Examples:
        >>> audio, png, files, text = MelodyDemo().generate("folk-base", "D minor", "3/4", 8, "any", 1.0, 0)
        ... # doctest: +SKIP
    """

    def __init__(self, models: Sequence[str] | None = None, soundfont: str | None = None,
                 out_dir: str | os.PathLike | None = None, limits: DemoLimits | None = None):
        sources = [str(m) for m in (models or bundled_checkpoints())]
        if not sources:
            raise HFMelodyError("no models to offer: pass models=[...] (bundled names, folders or Hub ids)")
        self.limits = limits or DemoLimits()
        self._sources: dict[str, str] = {}  # shown name -> what from_pretrained loads
        self._aliases: dict[str, str] = {}  # as given at launch -> shown name
        for source in sources:
            name = base = _model_name(source)
            n = 1
            while name in self._sources and self._sources[name] != source:
                n += 1
                name = f"{base}-{n}"
            self._sources[name] = source
            self._aliases[source] = name
        self.models = list(self._sources)
        self.soundfont = soundfont
        if out_dir is None:  # the demo's own folder: removed when the process ends
            out_dir = tempfile.mkdtemp(prefix="hf_melody-demo-")
            atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
        self.out_dir = Path(out_dir)
        self._pipes: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._runs = 0

    def model_name(self, model: Any) -> str:
        """The allowed name a request's `model` stands for; `ConfigError` naming the choices for anything else."""
        if isinstance(model, str):
            if model in self._sources:
                return model
            if model in self._aliases:
                return self._aliases[model]
        shown = repr(model) if len(repr(model)) <= 40 else repr(model)[:37] + "..."
        raise ConfigError(f"model {visitor_message(shown)}: not offered here; choose one of "
                          f"{', '.join(self.models)}")

    def pipeline(self, model: str):
        """The loaded `MelodyPipeline` of an allowed `model`; at most `limits.cache_size` stay loaded (LRU)."""
        name = self.model_name(model)
        with self._lock:
            if name in self._pipes:
                self._pipes.move_to_end(name)
                return self._pipes[name]
        pipe = MelodyPipeline.from_pretrained(self._sources[name])
        with self._lock:
            self._pipes[name] = pipe
            self._pipes.move_to_end(name)
            while len(self._pipes) > self.limits.cache_size:
                self._pipes.popitem(last=False)
        return pipe

    def loaded(self) -> list[str]:
        """The names of the pipelines in memory, least recently used first."""
        return list(self._pipes)

    # ---- the checks of a request: cheap ones first, nothing read or loaded before they pass ---------------------
    def check_seed(self, seed: Any) -> int | None:
        """None (a random seed) for an empty seed, else a whole number 0..2**32-1; `ConfigError` for NaN, inf,
        fractions, text or out of range."""
        if seed is None or (isinstance(seed, str) and not seed.strip()):
            return None
        fix = f"give a whole number from 0 to {MAX_SEED:,} (or leave it empty for a random one)"
        try:
            value = float(seed) if not isinstance(seed, int) else seed
        except (TypeError, ValueError):
            raise ConfigError(f"seed {str(seed)[:20]!r}: not a number; {fix}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"seed {value}: not a finite number; {fix}")
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"seed {value}: not a whole number; {fix}")
        value = int(value)
        if not 0 <= value <= MAX_SEED:
            raise ConfigError(f"seed {value if abs(value) < 10**30 else 'of ' + str(len(str(value))) + ' digits'}: "
                              f"out of range; {fix}")
        return value

    def _number(self, value: Any, what: str, low: float, high: float, whole: bool = False) -> float:
        fix = f"give a {'whole ' if whole else ''}number from {low:g} to {high:g}"
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{what} {str(value)[:20]!r}: not a number; {fix}") from None
        if not math.isfinite(x) or not low <= x <= high or (whole and not x.is_integer()):
            raise ConfigError(f"{what} {x:g}: out of range; {fix}")
        return x

    def read_prompt(self, path: str | os.PathLike | None):
        """The `symusic.Score` of an uploaded prompt, checked in order: its size from the file system (before
        reading), its MIDI structure, its note count after parsing (before tokenizing). Errors name the file only."""
        if path is None or path == "":
            return None
        from symusic import Score

        from ..data.corpora import _check_midi_structure

        p = Path(path)
        name = visitor_message(p.name) or "the prompt"
        try:
            size = p.stat().st_size
        except OSError:
            raise MidiReadError(f"{name}: the upload is gone; upload it again") from None
        cap = self.limits.max_upload_bytes
        if size > cap:
            raise MidiReadError(f"{name}: {size:,} bytes, over the {cap:,} the demo accepts; upload a shorter tune")
        data = p.read_bytes()[: cap + 1]
        if not data.startswith(b"MThd"):
            raise MidiReadError(f"{name}: not a MIDI file (no 'MThd' header); upload a Standard MIDI File (.mid)")
        _check_midi_structure(data, name)
        try:
            score = Score.from_midi(data)
        except Exception as e:  # symusic's C++ messages
            raise MidiReadError(f"{name}: corrupt or truncated MIDI ({type(e).__name__}); re-export it") from e
        notes = sum(len(t.notes) for t in score.tracks)
        if notes > self.limits.max_prompt_notes:
            raise MidiReadError(f"{name}: {notes:,} notes, over the {self.limits.max_prompt_notes:,} a prompt may "
                                "hold here; upload a shorter tune (the models read a few hundred notes)")
        if notes == 0:
            raise MidiReadError(f"{name}: no notes; upload a tune")
        return score

    def check_choice(self, value: Any, what: str, choices: Sequence[str], default: str) -> str:
        """`value` if it is one of `choices` (empty: `default`); `ConfigError` naming the choices otherwise."""
        if value is None or value == "":
            return default
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        shown = visitor_message(repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "...")
        raise ConfigError(f"{what} {shown}: not offered here; choose one of {', '.join(choices)}")

    def generate(self, model: str, key: str = ANY, meter: str = ANY, bars: int = 8, style: str = ANY,
                 temperature: float = 0.8, seed: int | float | None = 0, prompt: str | None = None,
                 regenerate: str = "", tempo: float = 120, instrument: str = "piano", chords: str = "",
                 chord_strictness: str = "hard", candidates: int = 1) -> DemoOutput:
        """Generate 1 to `limits.max_candidates` melodies (candidate i uses seed `seed + i`), each with its files.

        With a `prompt` and `regenerate` bars ("5-6" or "5"), those bars of the prompt are regenerated (infilling)
        instead of continuing it. `tempo` (quarter notes per minute, `TEMPOS`) and `instrument` (`INSTRUMENTS`) set
        the files and the audio; `chords` ("C G Am F", empty: none) with `chord_strictness` ("hard" / "soft") the
        harmony to write over. Every input is checked (`ConfigError` / `MidiReadError`, one line) before the prompt
        is tokenized or a model loaded; a generation past `limits.max_seconds` stops with a one-line error.
        """
        limits = self.limits
        name = self.model_name(model)
        seed = self.check_seed(seed)
        temperature = self._number(temperature, "temperature", *TEMPERATURES)
        bars = int(self._number(bars, "bars", 1, limits.max_bars, whole=True))
        count = int(self._number(candidates, "candidates", 1, limits.max_candidates, whole=True))
        tempo = self._number(120 if tempo is None or tempo == "" else tempo, "tempo (qpm)", *TEMPOS)
        instrument = self.check_choice(instrument, "instrument", INSTRUMENTS, "piano")
        strictness = self.check_choice(chord_strictness, "chord strictness", tuple(STRICTNESS), "hard")
        if not isinstance(chords, str | type(None)):
            raise ConfigError('chords: give chord symbols as text, e.g. "C G Am F"')
        chords = " ".join((chords or "").split())
        if len(chords) > limits.max_chord_chars:
            raise ConfigError(f"chords {chords[:20]!r}...: over {limits.max_chord_chars} characters; give a shorter "
                              "progression (it repeats)")
        regenerate = (regenerate or "").strip() if isinstance(regenerate, str | type(None)) else str(regenerate)
        if len(regenerate) > limits.max_regenerate_chars:
            raise ConfigError(f"bars to regenerate {regenerate[:20]!r}...: too long; give e.g. 5 or 5-6")
        span = parse_bars(regenerate) if regenerate else None
        for what, value in (("key", key), ("meter", meter), ("style", style)):
            if not (value is None or isinstance(value, str) and len(value) <= 40):
                raise ConfigError(f"{what}: give a short name, e.g. {'D minor' if what == 'key' else ANY!r}")
        if span and not prompt:
            raise HFMelodyError("regenerating bars needs a MIDI prompt: upload the tune whose bars to rewrite")
        options: dict[str, Any] = {"temperature": temperature, "seed": seed, "tempo_qpm": tempo,
                                   "program": instrument, "num_return_sequences": count}
        if key and key != ANY:
            options["key"] = key
        if style and style != ANY:
            options["style"] = style
        if chords:
            options.update(chords=chords, chord_strictness=STRICTNESS[strictness])
        score = self.read_prompt(prompt)
        pipe = self.pipeline(name)
        if span:
            n_bars = max(1, span[1] - span[0] + 1)
            if n_bars > limits.max_bars:
                raise ConfigError(f"bars {regenerate}: more than {limits.max_bars} bars; regenerate fewer")
            options["max_new_tokens"] = limits.tokens_per_bar * n_bars
            melodies = self._infill(pipe, score, span, options)
            return self._files(melodies, f"bars {regenerate} regenerated", chords)
        options.update(num_bars=bars, max_new_tokens=limits.tokens_per_bar * bars)
        if meter and meter != ANY and score is None:
            options["time_signature"] = meter
        melodies = self._generate(pipe, score, options)
        return self._files(melodies, f"{melodies[0].num_prompt_notes} from the prompt", chords)

    def _too_long(self) -> HFMelodyError:
        return HFMelodyError(f"the generation took over {self.limits.max_seconds:g} s, this demo's limit per "
                             "request; ask for fewer bars or candidates, or try again when it is less busy")

    def _generate(self, pipe, score, options: dict[str, Any]) -> list:
        """`pipe(score, **options)` stopped at `limits.max_seconds` (the pipeline's steps with a deadline streamer:
        `pipe(...)` itself takes no streamer)."""
        pre, forward, post = pipe._sanitize_parameters(**options)
        inputs = pipe.preprocess({"prompt": score}, **pre)
        deadline = _Deadline(pipe.melody_tokenizer, self.limits.max_seconds)
        outputs = pipe.forward(inputs, streamer=deadline, **forward)
        if deadline.cancelled.is_set():
            raise self._too_long()
        return pipe.postprocess(outputs, **post)

    def _infill(self, pipe, score, span, options: dict[str, Any]) -> list:
        """`pipe.infill` one candidate at a time (candidate i: seed + i), the deadline checked between them; one
        candidate is bounded by its token cap (the gap's bars)."""
        count, seed = options.pop("num_return_sequences"), options.pop("seed")
        seed = fresh_seed(count) if seed is None else seed
        stop = time.monotonic() + self.limits.max_seconds
        melodies = []
        for i in range(count):
            if melodies and time.monotonic() > stop:
                raise self._too_long()
            melodies += pipe.infill(score, bars=span, seed=seed + i, **options)
        if time.monotonic() > stop:
            raise self._too_long()
        return melodies

    def _files(self, melodies: list, what: str, chords: str = "") -> DemoOutput:
        """Write each candidate's files (MIDI, MusicXML, ABC, WAV, SVG score, PNG roll) in a run folder; run folders
        past `limits.keep_runs` are deleted."""
        with self._lock:
            self._runs += 1
            run = self._runs
        notation = ["musicxml", "abc"] if _has_music21() else []
        out = DemoOutput()
        for i, melody in enumerate(melodies, 1):
            stem = self.out_dir / f"run{run}" / f"melody_{i}"
            back = melody.chords is not None  # over chords: the chord track plays under the melody
            paths = {p.suffix[1:]: str(p) for p in melody.save(stem, ("mid", "png", *notation), chord_track=back)}
            notes = []
            try:
                wav = melody.save_wav(stem.with_suffix(".wav"), soundfont=self.soundfont, chord_track=back)
                paths["wav"] = str(wav)
            except SoundfontNotFoundError as e:
                notes.append(f"no audio: {visitor_message(e)}")
            try:
                paths["svg"] = str(melody.save_svg(stem.with_suffix(".svg"))) if notation else None
            except (MissingDependencyError, HFMelodyError) as e:
                notes.append(f"no score: {visitor_message(e)}")
            text = (f"**{i}. {melody.title}**: {melody.num_notes} notes ({what}), "
                    f"key {melody.key or f'{melody.written_key} (heard)'}, "
                    f"seed {melody.settings['melody_seed']}, {melody.tempo_qpm:g} qpm, "
                    f"{GM_PROGRAMS[melody.program or 0]}"
                    + (f", chords {chords}" if chords else "") + "".join(f"; {n}" for n in notes))
            files = [paths[f] for f in ("mid", "musicxml", "abc", "wav") if paths.get(f)]
            out.candidates.append(Candidate(paths.get("wav"), paths.get("svg"), paths["png"], files, text))
        out.summary = "\n\n".join(c.summary for c in out.candidates)
        self._prune(run)
        return out

    def _prune(self, newest: int) -> None:
        """Delete the run folders older than the newest `limits.keep_runs` (Gradio has copied them by then, or
        they belong to requests answered long ago)."""
        for folder in self.out_dir.glob("run*"):
            number = folder.name[3:]
            if number.isdigit() and int(number) <= newest - self.limits.keep_runs:
                shutil.rmtree(folder, ignore_errors=True)


def _has_music21() -> bool:
    import importlib.util

    return importlib.util.find_spec("music21") is not None
