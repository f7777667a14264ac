"""The web demo: a local Gradio app to generate melodies, listen to them, see the piano roll and download the files.

Run `hf-melody demo` (or `python app.py`, which a Gradio Space runs). Starting it needs no network: models are the
bundled checkpoints (or folders / cached Hub ids you name), the page is served locally and analytics are off.

Examples:
    >>> from hf_melody.demo import build_demo
    >>> build_demo(models=["folk-base", "original"]).launch()                            # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .bundle import DEFAULT_MODEL, bundled_checkpoints
from .errors import HFMelodyError, MissingDependencyError, SoundfontNotFoundError
from .generation.infill import parse_bars
from .pipelines.melody_generation import MelodyPipeline
from .tokenizer import STYLES

ANY = "any"
KEYS = (ANY, *(f"{t} {m}" for m in ("major", "minor") for t in ("C", "G", "D", "A", "E", "F", "Bb", "Eb")),
        "D dorian", "G mixolydian", "E phrygian")
METERS = (ANY, "4/4", "3/4", "2/4", "6/8", "9/8", "3/2")
TITLE = "hf_melody: melody generation"


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the demo must start offline
    try:
        import gradio
    except ImportError as e:
        raise MissingDependencyError("the demo needs gradio: pip install 'hf_melody[demo]'") from e
    return gradio


class MelodyDemo:
    """The demo's state and its one action: `generate(...)` returns audio, piano roll, files and a summary.

    Examples:
        >>> audio, png, files, text = MelodyDemo().generate("folk-base", "D minor", "3/4", 8, "any", 1.0, 0)
        ... # doctest: +SKIP
    """

    def __init__(self, models: Sequence[str] | None = None, soundfont: str | None = None,
                 out_dir: str | os.PathLike | None = None):
        self.models = list(models or bundled_checkpoints())
        if not self.models:
            raise HFMelodyError("no models to offer: pass models=[...] (bundled names, folders or Hub ids)")
        self.soundfont = soundfont
        self.out_dir = Path(out_dir or tempfile.mkdtemp(prefix="hf_melody-demo-"))
        self._pipes: dict[str, Any] = {}
        self._runs = 0

    def pipeline(self, model: str):
        """The loaded `MelodyPipeline` of `model` (each model is loaded once)."""
        if model not in self._pipes:
            self._pipes[model] = MelodyPipeline.from_pretrained(model)
        return self._pipes[model]

    def generate(self, model: str, key: str = ANY, meter: str = ANY, bars: int = 8, style: str = ANY,
                 temperature: float = 0.8, seed: int | float | None = 0, prompt: str | None = None,
                 regenerate: str = ""):
        """Generate one melody; returns `(wav path or None, png path, [mid, musicxml paths], markdown summary)`.

        With a `prompt` and `regenerate` bars ("5-6" or "5"), those bars of the prompt are regenerated (infilling)
        instead of continuing it.
        """
        pipe = self.pipeline(model)
        if regenerate and regenerate.strip():
            if not prompt:
                raise HFMelodyError("regenerating bars needs a MIDI prompt: upload the tune whose bars to rewrite")
            options = {"temperature": float(temperature), "seed": int(seed) if seed not in (None, "") else None}
            if key and key != ANY:
                options["key"] = key
            if style and style != ANY:
                options["style"] = style
            [melody] = pipe.infill(prompt, bars=parse_bars(regenerate.strip()), **options)
            return self._files(melody, f"bars {regenerate.strip()} regenerated")
        options: dict[str, Any] = {"num_bars": int(bars), "temperature": float(temperature),
                                   "seed": int(seed) if seed not in (None, "") else None}
        if key and key != ANY:
            options["key"] = key
        if meter and meter != ANY and not prompt:
            options["time_signature"] = meter
        if style and style != ANY:
            options["style"] = style
        [melody] = pipe(prompt or None, **options)
        return self._files(melody, f"{melody.num_prompt_notes} from the prompt")

    def _files(self, melody, what: str):
        """Write the melody's files; the 4 outputs of `generate`."""
        self._runs += 1
        stem = self.out_dir / f"run{self._runs}" / "melody"
        formats = ["mid", "png"] + (["musicxml"] if _has_music21() else [])
        paths = {p.suffix[1:]: p for p in melody.save(stem, tuple(formats))}
        audio, note = None, ""
        try:
            audio = str(melody.save_wav(stem.with_suffix(".wav"), soundfont=self.soundfont))
        except SoundfontNotFoundError as e:
            note = f"\n\nNo audio: {e}"
        downloads = [str(paths[f]) for f in ("mid", "musicxml") if f in paths]
        summary = (f"**{melody.title}**: {melody.num_notes} notes ({what}), "
                   f"key {melody.key or 'free'}, seed {melody.settings['melody_seed']}" + note)
        return audio, str(paths["png"]), downloads, summary


def _has_music21() -> bool:
    import importlib.util

    return importlib.util.find_spec("music21") is not None


def build_demo(models: Sequence[str] | None = None, soundfont: str | None = None):
    """The Gradio `Blocks` app: model, key, meter, bars, style, temperature, seed, optional MIDI prompt ->
    audio player, piano roll, MIDI/MusicXML downloads. Call `.launch()` on it."""
    gr = _gradio()
    app = MelodyDemo(models, soundfont)
    default = DEFAULT_MODEL if DEFAULT_MODEL in app.models else app.models[0]

    def run(model, key, meter, bars, style, temperature, seed, prompt, regenerate):
        try:
            return app.generate(model, key, meter, bars, style, temperature, seed, prompt, regenerate)
        except HFMelodyError as e:
            raise gr.Error(str(e)) from e

    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])  # no web fonts: works offline
    with gr.Blocks(title=TITLE) as demo:
        demo.theme = theme
        gr.Markdown(f"# {TITLE}\nSmall GPT-2 models trained on folk tunes and chorales. Pick the settings, press "
                    "**Generate**, listen, and download the MIDI or the sheet music (MusicXML).")
        with gr.Row():
            with gr.Column():
                model = gr.Dropdown(app.models, value=default, label="model", allow_custom_value=True)
                key = gr.Dropdown(list(KEYS), value=ANY, label="key", allow_custom_value=True,
                                  info='e.g. "D minor", "G mixolydian"')
                meter = gr.Dropdown(list(METERS), value=ANY, label="meter (without a prompt)")
                bars = gr.Slider(1, 32, value=8, step=1, label="bars")
                style = gr.Dropdown([ANY, *STYLES], value=ANY, label="style")
                temperature = gr.Slider(0.1, 2.0, value=0.8, step=0.05, label="temperature")
                seed = gr.Number(value=0, precision=0, label="seed")
                prompt = gr.File(label="MIDI prompt to continue (optional)", file_types=[".mid", ".midi"],
                                 type="filepath")
                regenerate = gr.Textbox(label="regenerate bars of the prompt (optional)", placeholder="e.g. 5-6",
                                        info="instead of continuing it: those bars are rewritten, the rest kept")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                summary = gr.Markdown(elem_id="summary")
                audio = gr.Audio(label="listen", type="filepath", elem_id="audio")
                roll = gr.Image(label="piano roll", type="filepath", elem_id="roll")
                files = gr.File(label="downloads: MIDI, MusicXML", file_count="multiple", elem_id="downloads")
        button.click(run, [model, key, meter, bars, style, temperature, seed, prompt, regenerate],
                     [audio, roll, files, summary], api_name="generate")
    return demo


def launch(models: Sequence[str] | None = None, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           soundfont: str | None = None, **kwargs):
    """Build and serve the demo (blocks until stopped unless `prevent_thread_lock=True`)."""
    demo = build_demo(models, soundfont)
    return demo.launch(server_name=host, server_port=port, share=share, **kwargs)
