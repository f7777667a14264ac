"""The demo's page: the Gradio app on top of `MelodyDemo` (inputs, examples, the candidates' players, scores, piano
rolls and downloads), and launching it.

Starting it needs no network: models are the bundled checkpoints (or the folders / cached Hub ids the operator names
at launch), the page is served locally and analytics are off.

Examples:
    >>> from hf_melody.demo import build_demo
    >>> build_demo(models=["folk-base", "original"]).launch()                            # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from ..bundle import DEFAULT_MODEL
from ..errors import ConfigError, HFMelodyError, MissingDependencyError
from ..generation.configuration import fresh_seed
from ..tokenizer import STYLES
from .service import (
    ANY,
    INSTRUMENTS,
    KEYS,
    MAX_SEED,
    METERS,
    STRICTNESS,
    TEMPERATURES,
    TEMPOS,
    DemoLimits,
    MelodyDemo,
    visitor_message,
)

logger = logging.getLogger(__name__)

TITLE = "hf_melody: melody generation"
EXAMPLES = [  # key, meter, bars, style, temperature, seed, tempo, instrument, chords, chord strictness, candidates
    ["D minor", "3/4", 8, ANY, 0.8, 0, 96, "violin", "", "hard", 2],
    ["G major", "6/8", 8, ANY, 0.9, 7, 132, "flute", "", "hard", 1],
    ["C major", "4/4", 8, ANY, 0.8, 3, 100, "piano", "C G Am F", "hard", 2],
    ["A minor", "4/4", 4, ANY, 1.0, 11, 80, "clarinet", "Am Dm E Am", "soft", 3],
]
"""Rows of `gr.Examples`: they fill the inputs (nothing is generated or cached at start)."""


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the demo must start offline
    try:
        import gradio
    except ImportError as e:
        raise MissingDependencyError("the demo needs gradio: pip install 'hf_melody[demo]'") from e
    return gradio


def build_demo(models: Sequence[str] | None = None, soundfont: str | None = None,
               limits: DemoLimits | None = None, out_dir: str | os.PathLike | None = None):
    """The Gradio `Blocks` app: model, key, meter, bars, style, temperature, seed (and a new-seed button), tempo,
    instrument, chords and their strictness, candidates, an optional MIDI prompt -> for each candidate an audio
    player, the engraved score, the piano roll and MIDI/MusicXML/ABC/WAV downloads. Call `.launch()` on it (with
    `**launch_options(limits)` for the upload cap before a file is stored).

    Requests wait in one bounded queue (`limits.queue_size`, `limits.concurrency` at a time) and generate for at
    most `limits.max_seconds`; Gradio's copies of the files are deleted after `limits.keep_seconds`; errors reach the
    visitor as one line without server paths. In the API (`/generate`) every input after the seed is optional.
    """
    gr = _gradio()
    app = MelodyDemo(models, soundfont, out_dir=out_dir, limits=limits)
    limits = app.limits
    default = DEFAULT_MODEL if DEFAULT_MODEL in app.models else app.models[0]
    slots = limits.max_candidates

    def run(model, key=ANY, meter=ANY, bars=8, style=ANY, temperature=0.8, seed=None, prompt=None, regenerate=None,
            tempo=120, instrument="piano", chords=None, chord_strictness="hard", candidates=1):
        try:
            out = app.generate(model, key, meter, bars, style, temperature, seed, prompt, regenerate, tempo,
                               instrument, chords, chord_strictness, candidates)
        except HFMelodyError as e:
            raise gr.Error(visitor_message(e)) from None
        except Exception as e:  # a bug: the visitor gets its kind, the server log the traceback
            logger.exception("demo request failed")
            raise gr.Error(f"internal error ({type(e).__name__}); the server's log has the details") from None
        shown: list[Any] = [out.summary]
        for i in range(slots):
            c = out.candidates[i] if i < len(out.candidates) else None
            values = (c.audio, c.score, c.roll, c.files) if c else (None,) * 4
            shown += [gr.update(value=v, visible=c is not None) for v in values]
        return shown

    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])  # no web fonts: works offline
    every = max(1, limits.keep_seconds // 2)
    with gr.Blocks(title=TITLE, delete_cache=(every, limits.keep_seconds)) as demo:
        demo.theme = theme
        gr.Markdown(f"# {TITLE}\nSmall GPT-2 models trained on folk tunes and chorales. Pick the settings, press "
                    "**Generate**, compare the candidates: listen, read the score, download the MIDI, MusicXML, "
                    "ABC or WAV.")
        with gr.Row():
            with gr.Column(scale=1):
                model = gr.Dropdown(app.models, value=default, label="model")
                key = gr.Dropdown(list(KEYS), value=ANY, label="key", allow_custom_value=True,
                                  info='e.g. "D minor", "G mixolydian"')
                meter = gr.Dropdown(list(METERS), value=ANY, label="meter (without a prompt)")
                bars = gr.Slider(1, limits.max_bars, value=min(8, limits.max_bars), step=1, label="bars")
                style = gr.Dropdown([ANY, *STYLES], value=ANY, label="style")
                temperature = gr.Slider(*TEMPERATURES, value=0.8, step=0.05, label="temperature")
                with gr.Row():
                    seed = gr.Number(value=0, label="seed", step=1, info=f"a whole number, 0 to {MAX_SEED:,}",
                                     elem_id="seed", scale=3)
                    new_seed = gr.Button("new seed", elem_id="new-seed", scale=1)
                tempo = gr.Slider(*TEMPOS, value=120, step=1, label="tempo (quarter notes per minute)")
                instrument = gr.Dropdown(list(INSTRUMENTS), value="piano", label="instrument")
                chords = gr.Textbox(label="chords (optional)", placeholder="e.g. C G Am F", elem_id="chords",
                                    max_length=limits.max_chord_chars,
                                    info='one chord a bar, "C:2 G:2" for beats; it repeats')
                strictness = gr.Radio(list(STRICTNESS), value="hard", label="chord strictness",
                                      info="hard: strong beats on chord tones; soft: chord tones preferred")
                candidates = gr.Slider(1, slots, value=1, step=1, label="candidates to compare", elem_id="candidates")
                prompt = gr.File(label=f"MIDI prompt to continue (optional, up to {limits.max_upload_bytes:,} bytes)",
                                 file_types=[".mid", ".midi"], type="filepath")
                regenerate = gr.Textbox(label="regenerate bars of the prompt (optional)", placeholder="e.g. 5-6",
                                        max_length=limits.max_regenerate_chars,
                                        info="instead of continuing it: those bars are rewritten, the rest kept")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column(scale=2):
                summary = gr.Markdown(elem_id="summary")
                shown = []
                for i in range(1, slots + 1):
                    with gr.Group(elem_classes=["candidate"]):
                        shown += [
                            gr.Audio(label=f"{i}: listen", type="filepath", elem_id=f"audio-{i}", visible=i == 1),
                            gr.Image(label=f"{i}: score", type="filepath", elem_id=f"score-{i}", visible=i == 1,
                                     format="svg"),
                            gr.Image(label=f"{i}: piano roll", type="filepath", elem_id=f"roll-{i}", visible=i == 1),
                            gr.File(label=f"{i}: downloads: MIDI, MusicXML, ABC, WAV", file_count="multiple",
                                    elem_id=f"downloads-{i}", visible=i == 1),
                        ]
        inputs = [key, meter, bars, style, temperature, seed, tempo, instrument, chords, strictness, candidates]
        gr.Examples(EXAMPLES, inputs, label="examples (they fill the settings; press Generate)",
                    elem_id="examples")
        new_seed.click(lambda: fresh_seed(slots), None, seed, queue=False, api_name="new_seed")
        button.click(run, [model, key, meter, bars, style, temperature, seed, prompt, regenerate, tempo, instrument,
                           chords, strictness, candidates], [summary, *shown], api_name="generate")
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
