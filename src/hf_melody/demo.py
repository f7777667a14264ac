"""The web demo: a local Gradio app to generate melodies, listen to them, see the piano roll and download the files.

Run `hf-melody demo` (or `python app.py`, which a Gradio Space runs). Starting it needs no network: models are the
bundled checkpoints (or the folders / cached Hub ids the operator names at launch), the page is served locally and
analytics are off.

A visitor can only pick one of the models offered at launch (never a path or a Hub id), and every request is
bounded: the upload's size (checked before it is read), its note count (checked before it is tokenized), the bars,
the new tokens, the queue, the models kept in memory and the files kept on disk (`DemoLimits`).

Examples:
    >>> from hf_melody.demo import build_demo
    >>> build_demo(models=["folk-base", "original"]).launch()                            # doctest: +SKIP
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
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bundle import DEFAULT_MODEL, bundled_checkpoints, bundled_name
from .errors import ConfigError, HFMelodyError, MidiReadError, MissingDependencyError, SoundfontNotFoundError
from .generation.infill import parse_bars
from .pipelines.melody_generation import MelodyPipeline
from .tokenizer import STYLES

logger = logging.getLogger(__name__)

ANY = "any"
KEYS = (ANY, *(f"{t} {m}" for m in ("major", "minor") for t in ("C", "G", "D", "A", "E", "F", "Bb", "Eb")),
        "D dorian", "G mixolydian", "E phrygian")
METERS = (ANY, "4/4", "3/4", "2/4", "6/8", "9/8", "3/2")
TITLE = "hf_melody: melody generation"
MAX_SEED = 2**32 - 1
TEMPERATURES = (0.1, 2.0)


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
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"DemoLimits.{name}={value!r}: give a whole number of at least 1")


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the demo must start offline
    try:
        import gradio
    except ImportError as e:
        raise MissingDependencyError("the demo needs gradio: pip install 'hf_melody[demo]'") from e
    return gradio


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

        from .data.corpora import _check_midi_structure

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

    def generate(self, model: str, key: str = ANY, meter: str = ANY, bars: int = 8, style: str = ANY,
                 temperature: float = 0.8, seed: int | float | None = 0, prompt: str | None = None,
                 regenerate: str = ""):
        """Generate one melody; returns `(wav path or None, png path, [mid, musicxml paths], markdown summary)`.

        With a `prompt` and `regenerate` bars ("5-6" or "5"), those bars of the prompt are regenerated (infilling)
        instead of continuing it. Every input is checked (`ConfigError` / `MidiReadError`, one line) before the
        prompt is tokenized or a model loaded.
        """
        limits = self.limits
        name = self.model_name(model)
        seed = self.check_seed(seed)
        temperature = self._number(temperature, "temperature", *TEMPERATURES)
        bars = int(self._number(bars, "bars", 1, limits.max_bars, whole=True))
        regenerate = (regenerate or "").strip() if isinstance(regenerate, str | type(None)) else str(regenerate)
        if len(regenerate) > limits.max_regenerate_chars:
            raise ConfigError(f"bars to regenerate {regenerate[:20]!r}...: too long; give e.g. 5 or 5-6")
        span = parse_bars(regenerate) if regenerate else None
        for what, value in (("key", key), ("meter", meter), ("style", style)):
            if not (value is None or isinstance(value, str) and len(value) <= 40):
                raise ConfigError(f"{what}: give a short name, e.g. {'D minor' if what == 'key' else ANY!r}")
        if span and not prompt:
            raise HFMelodyError("regenerating bars needs a MIDI prompt: upload the tune whose bars to rewrite")
        score = self.read_prompt(prompt)
        pipe = self.pipeline(name)
        if span:
            count = max(1, span[1] - span[0] + 1)
            if count > limits.max_bars:
                raise ConfigError(f"bars {regenerate}: more than {limits.max_bars} bars; regenerate fewer")
            options = {"temperature": temperature, "seed": seed, "max_new_tokens": limits.tokens_per_bar * count}
            if key and key != ANY:
                options["key"] = key
            if style and style != ANY:
                options["style"] = style
            [melody] = pipe.infill(score, bars=span, **options)
            return self._files(melody, f"bars {regenerate} regenerated")
        options: dict[str, Any] = {"num_bars": bars, "temperature": temperature, "seed": seed,
                                   "max_new_tokens": limits.tokens_per_bar * bars}
        if key and key != ANY:
            options["key"] = key
        if meter and meter != ANY and score is None:
            options["time_signature"] = meter
        if style and style != ANY:
            options["style"] = style
        [melody] = pipe(score, **options)
        return self._files(melody, f"{melody.num_prompt_notes} from the prompt")

    def _files(self, melody, what: str):
        """Write the melody's files; the 4 outputs of `generate`. Run folders past `limits.keep_runs` are deleted."""
        with self._lock:
            self._runs += 1
            run = self._runs
        stem = self.out_dir / f"run{run}" / "melody"
        formats = ["mid", "png"] + (["musicxml"] if _has_music21() else [])
        paths = {p.suffix[1:]: p for p in melody.save(stem, tuple(formats))}
        audio, note = None, ""
        try:
            audio = str(melody.save_wav(stem.with_suffix(".wav"), soundfont=self.soundfont))
        except SoundfontNotFoundError as e:
            note = f"\n\nNo audio: {visitor_message(e)}"
        downloads = [str(paths[f]) for f in ("mid", "musicxml") if f in paths]
        summary = (f"**{melody.title}**: {melody.num_notes} notes ({what}), "
                   f"key {melody.key or 'free'}, seed {melody.settings['melody_seed']}" + note)
        self._prune(run)
        return audio, str(paths["png"]), downloads, summary

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


def build_demo(models: Sequence[str] | None = None, soundfont: str | None = None,
               limits: DemoLimits | None = None, out_dir: str | os.PathLike | None = None):
    """The Gradio `Blocks` app: model, key, meter, bars, style, temperature, seed, optional MIDI prompt ->
    audio player, piano roll, MIDI/MusicXML downloads. Call `.launch()` on it (with `**launch_options(limits)` for
    the upload cap before a file is stored).

    Requests wait in one bounded queue (`limits.queue_size`, `limits.concurrency` at a time); Gradio's copies of
    the files are deleted after `limits.keep_seconds`; errors reach the visitor as one line without server paths.
    """
    gr = _gradio()
    app = MelodyDemo(models, soundfont, out_dir=out_dir, limits=limits)
    limits = app.limits
    default = DEFAULT_MODEL if DEFAULT_MODEL in app.models else app.models[0]

    def run(model, key, meter, bars, style, temperature, seed, prompt, regenerate):
        try:
            return app.generate(model, key, meter, bars, style, temperature, seed, prompt, regenerate)
        except HFMelodyError as e:
            raise gr.Error(visitor_message(e)) from None
        except Exception as e:  # a bug: the visitor gets its kind, the server log the traceback
            logger.exception("demo request failed")
            raise gr.Error(f"internal error ({type(e).__name__}); the server's log has the details") from None

    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])  # no web fonts: works offline
    every = max(1, limits.keep_seconds // 2)
    with gr.Blocks(title=TITLE, delete_cache=(every, limits.keep_seconds)) as demo:
        demo.theme = theme
        gr.Markdown(f"# {TITLE}\nSmall GPT-2 models trained on folk tunes and chorales. Pick the settings, press "
                    "**Generate**, listen, and download the MIDI or the sheet music (MusicXML).")
        with gr.Row():
            with gr.Column():
                model = gr.Dropdown(app.models, value=default, label="model")
                key = gr.Dropdown(list(KEYS), value=ANY, label="key", allow_custom_value=True,
                                  info='e.g. "D minor", "G mixolydian"')
                meter = gr.Dropdown(list(METERS), value=ANY, label="meter (without a prompt)")
                bars = gr.Slider(1, limits.max_bars, value=min(8, limits.max_bars), step=1, label="bars")
                style = gr.Dropdown([ANY, *STYLES], value=ANY, label="style")
                temperature = gr.Slider(*TEMPERATURES, value=0.8, step=0.05, label="temperature")
                seed = gr.Number(value=0, label="seed", step=1, info=f"a whole number, 0 to {MAX_SEED:,}")
                prompt = gr.File(label=f"MIDI prompt to continue (optional, up to {limits.max_upload_bytes:,} bytes)",
                                 file_types=[".mid", ".midi"], type="filepath")
                regenerate = gr.Textbox(label="regenerate bars of the prompt (optional)", placeholder="e.g. 5-6",
                                        max_length=limits.max_regenerate_chars,
                                        info="instead of continuing it: those bars are rewritten, the rest kept")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                summary = gr.Markdown(elem_id="summary")
                audio = gr.Audio(label="listen", type="filepath", elem_id="audio")
                roll = gr.Image(label="piano roll", type="filepath", elem_id="roll")
                files = gr.File(label="downloads: MIDI, MusicXML", file_count="multiple", elem_id="downloads")
        button.click(run, [model, key, meter, bars, style, temperature, seed, prompt, regenerate],
                     [audio, roll, files, summary], api_name="generate")
    demo.queue(max_size=limits.queue_size, default_concurrency_limit=limits.concurrency)
    demo.melody_demo = app  # the state behind the page (tests, operators)
    return demo


def launch_options(limits: DemoLimits | None = None) -> dict[str, Any]:
    """The `launch()` keywords that go with `limits`: Gradio refuses larger uploads before storing them."""
    return {"max_file_size": (limits or DemoLimits()).max_upload_bytes}


def check_port(host: str, port: int) -> None:
    """`ConfigError` (one line) for a port outside 1..65535 or one already taken on `host`."""
    import socket

    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"--port {port}: out of range; give a port from 1 to 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise ConfigError(f"--host {host}: cannot be resolved ({e.__class__.__name__}); give an address such as "
                          "127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a closed server's TIME_WAIT is no user
        try:
            s.bind(address)
        except OSError as e:
            raise ConfigError(f"port {port} on {host} is not free ({e.strerror}); stop what uses it or pass "
                              "another --port") from None


def launch(models: Sequence[str] | None = None, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           soundfont: str | None = None, limits: DemoLimits | None = None, **kwargs):
    """Build and serve the demo (blocks until stopped unless `prevent_thread_lock=True`); `ConfigError` for a bad
    or busy port."""
    check_port(host, port)
    demo = build_demo(models, soundfont, limits)
    try:
        return demo.launch(server_name=host, server_port=port, share=share, **{**launch_options(limits), **kwargs})
    except OSError as e:  # the port was taken between the check and the start
        raise ConfigError(f"the demo cannot listen on {host}:{port}: {visitor_message(e)}") from None
