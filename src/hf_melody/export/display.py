"""Inline display of a melody in Jupyter: an audio player (base64 WAV), the engraved score (SVG, with verovio) and
its piano roll (base64 PNG).

Examples:
    >>> melody = pipe(seed=0, max_new_notes=32)[0]
    >>> melody        # in a notebook cell: plays and shows itself              # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
from typing import Any

from ..errors import HFMelodyError, MissingDependencyError, SoundfontNotFoundError
from .render import audio_bytes, piano_roll_png


def melody_html(melody: Any, soundfont: str | None = None, dpi: int = 80) -> str:
    """HTML for a `GeneratedMelody`: title, audio player, the engraved score, piano roll. Without a soundfont (or
    verovio and music21) the player (or the score) is replaced by a one-line hint; the piano roll always shows.
    A melody over chords plays with its chord track and shows the chord symbols in the score and the piano roll."""
    from .notation import svg_text

    title = html.escape(melody.title)
    chords = getattr(melody, "chord_events", None)
    try:
        wav = base64.b64encode(audio_bytes(melody.score, "wav", soundfont, chords=chords,
                                           chord_track=bool(chords))).decode()
        player = f'<audio controls src="data:audio/wav;base64,{wav}"></audio>'
    except SoundfontNotFoundError as e:
        player = f"<p><em>no audio: {html.escape(str(e))}</em></p>"
    try:
        sheet = svg_text(melody.score, melody.key, melody.title, composer=melody.composer, program=melody.program,
                         chords=chords)
        sheet = (f'<img alt="score of {title}" style="max-width:100%;background:white" '
                 f'src="data:image/svg+xml;base64,{base64.b64encode(sheet.encode()).decode()}">')
    except (MissingDependencyError, HFMelodyError) as e:
        sheet = f"<p><em>no score: {html.escape(str(e))}</em></p>"
    png = base64.b64encode(piano_roll_png(melody.score, melody.title, melody._shown_settings(),
                                          melody.num_prompt_notes, dpi=dpi, chords=chords)).decode()
    return (f'<div class="hf-melody"><strong>{title}</strong> ({melody.num_notes} notes)<br>{player}<br>{sheet}<br>'
            f'<img alt="piano roll of {title}" src="data:image/png;base64,{png}" style="max-width:100%"></div>')
