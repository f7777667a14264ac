"""Score -> MIDI file, WAV audio (General MIDI soundfont) and a piano-roll PNG. All writes are atomic.

Example:
    >>> from hf_melody.render import save_midi, save_wav, save_piano_roll
    >>> save_wav(score, "melody.wav")                     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import SoundfontNotFoundError
from .utils import atomic_write_bytes

logger = logging.getLogger(__name__)

SOUNDFONT_ENV = "HF_MELODY_SOUNDFONT"
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/FluidR3Mono_GM.sf3",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/local/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def pitch_name(pitch: int) -> str:
    """`60` -> `C4`."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def find_soundfont(soundfont: str | os.PathLike | None = None) -> Path:
    """The soundfont to render with: the argument, else `$HF_MELODY_SOUNDFONT`, else a system General MIDI one."""
    if soundfont is not None:
        path = Path(soundfont)
        if not path.is_file():
            raise SoundfontNotFoundError(f"{path}: no such soundfont file; give the path of a .sf2/.sf3 file")
        return path
    env = os.environ.get(SOUNDFONT_ENV)
    if env:
        if not Path(env).is_file():
            raise SoundfontNotFoundError(f"${SOUNDFONT_ENV}={env}: no such file; point it at a .sf2/.sf3 file")
        return Path(env)
    for cand in SOUNDFONT_CANDIDATES:
        if Path(cand).is_file():
            return Path(cand)
    raise SoundfontNotFoundError(
        "no General MIDI soundfont found; install one (Debian/Ubuntu: `sudo apt-get install timgm6mb-soundfont`), "
        f"or pass soundfont=PATH / set ${SOUNDFONT_ENV}"
    )


def save_midi(score, path: str | os.PathLike) -> Path:
    """Write a `symusic.Score` as a Standard MIDI File."""
    return atomic_write_bytes(path, score.dumps_midi())


def render_audio(score, soundfont: str | os.PathLike | None = None, sample_rate: int = 22050):
    """Synthesize a score to a float32 array of shape (2, samples) with symusic's SoundFont synthesizer."""
    from symusic import Synthesizer

    sf = find_soundfont(soundfont)
    return Synthesizer(sf_path=str(sf), sample_rate=sample_rate).render(score, stereo=True)


def save_wav(score, path: str | os.PathLike, soundfont: str | os.PathLike | None = None,
             sample_rate: int = 22050) -> Path:
    """Render a score to a 16-bit stereo WAV file (see `find_soundfont` for where the soundfont comes from)."""
    import tempfile

    from symusic import dump_wav

    audio = render_audio(score, soundfont, sample_rate)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".wav")
    os.close(fd)
    try:
        dump_wav(tmp, audio, sample_rate, use_int16=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def bar_ticks(score) -> list[int]:
    """Ticks at which bars start, from the score's time signatures, up to its end."""
    tpq = score.ticks_per_quarter
    tss = sorted((ts.time, ts.numerator, ts.denominator) for ts in score.time_signatures) or [(0, 4, 4)]
    if tss[0][0] > 0:
        tss.insert(0, (0, 4, 4))
    end = max(score.end(), 1)
    bars, t = [], 0
    for i, (start, num, den) in enumerate(tss):
        stop = tss[i + 1][0] if i + 1 < len(tss) else end + 1
        t = max(t, start)
        length = num * tpq * 4 // den
        while t < stop:
            bars.append(t)
            t += length
    bars.append(t)
    return bars


def save_piano_roll(score, path: str | os.PathLike, title: str = "", settings: dict[str, Any] | None = None,
                    prompt_notes: int = 0, dpi: int = 120) -> Path:
    """Draw the melody as a piano roll: time in bars on x, pitch names on y, bar lines, the prompt in grey."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    notes = [n for t in score.tracks for n in t.notes]
    bars = bar_ticks(score)
    # bar number as a function of tick (piecewise linear between bar lines)
    import numpy as np

    def to_bar(tick: float) -> float:
        return float(np.interp(tick, bars, np.arange(len(bars))))

    width = min(24.0, max(8.0, 0.45 * (len(bars) - 1) + 2))
    fig, ax = plt.subplots(figsize=(width, 4.5), dpi=dpi)
    lo = min((n.pitch for n in notes), default=60) - 2
    hi = max((n.pitch for n in notes), default=72) + 2
    for p in range(lo, hi + 1):
        if p % 12 in (1, 3, 6, 8, 10):
            ax.axhspan(p - 0.5, p + 0.5, color="#f2f2f2", zorder=0)
    for i, n in enumerate(notes):
        x0, x1 = to_bar(n.time), to_bar(n.time + n.duration)
        color = "#9e9e9e" if i < prompt_notes else "#ff9d00"
        ax.add_patch(Rectangle((x0, n.pitch - 0.4), max(x1 - x0, 0.01), 0.8, facecolor=color,
                               edgecolor="#5a3a00", linewidth=0.6, zorder=2))
    for b in range(len(bars)):
        ax.axvline(b, color="#444444", linewidth=0.8 if b % 4 else 1.4, zorder=1)
    ax.set_xlim(0, max(1, len(bars) - 1))
    ax.set_ylim(lo - 0.5, hi + 0.5)
    ticks = [p for p in range(lo, hi + 1) if p % 12 in (0, 2, 4, 5, 7, 9, 11)]
    ax.set_yticks(ticks, [pitch_name(p) for p in ticks], fontsize=7)
    ax.set_xticks(range(len(bars)), [str(b + 1) for b in range(len(bars))], fontsize=7)
    ax.set_xlabel("bar")
    meters = sorted({f"{ts.numerator}/{ts.denominator}" for ts in score.time_signatures}) or ["4/4"]
    head = title or "hf_melody"
    sub = f"{len(notes)} notes, {len(bars) - 1} bars, meter {', '.join(meters)}"
    if settings:
        sub += " | " + ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)
    ax.set_title(f"{head}\n{sub}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def save_all(score, stem: str | os.PathLike, formats: Sequence[str] = ("mid", "wav", "png"), **kwargs) -> list[Path]:
    """Write `stem.mid`, `stem.wav`, `stem.png` (those in `formats`); kwargs go to the piano roll / WAV."""
    stem = Path(stem)
    out = []
    if "mid" in formats:
        out.append(save_midi(score, stem.with_suffix(".mid")))
    if "wav" in formats:
        out.append(save_wav(score, stem.with_suffix(".wav"), soundfont=kwargs.get("soundfont")))
    if "png" in formats:
        out.append(save_piano_roll(score, stem.with_suffix(".png"), title=kwargs.get("title", ""),
                                   settings=kwargs.get("settings"), prompt_notes=kwargs.get("prompt_notes", 0)))
    return out
