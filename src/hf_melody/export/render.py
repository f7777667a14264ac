"""Score -> MIDI file (with key/time signature, tempo, title, instrument, composer), audio (WAV, FLAC, OGG, MP3) and a
piano-roll PNG.

All writes are atomic. Notation (MusicXML, ABC, the engraved SVG) lives in `hf_melody.export.notation`.

With `chords=` (events of `hf_melody.harmony.chord_events`) the MIDI names each chord in a marker, `chord_track=True`
adds the block chords as a second track (heard in the audio too), the piano roll writes the chords over the bars,
and a late first note is a late entry over the first chord, not a pickup (`hf_melody.export.chords`).

Examples:
    >>> from hf_melody.export.render import save_midi, save_audio, save_piano_roll
    >>> save_midi(score, "melody.mid", key="D minor", title="My tune")    # doctest: +SKIP
    >>> save_audio(score, "melody.flac")                                  # doctest: +SKIP
    >>> save_midi(score, "chords.mid", chords=chord_events(score, "C G Am F"), chord_track=True)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, MissingDependencyError, SoundfontNotFoundError
from ..music import MODES, bar_start_ticks, estimate_key, key_signature, note_name, program_number
from ..utils import atomic_write_bytes
from .chords import ChordEvent, with_chords

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
AUDIO_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
                 "mp3": ("MP3", "MPEG_LAYER_III")}
"""Audio files by extension: soundfile (libsndfile) format and subtype. WAV needs no extra package."""
FORMATS = ("mid", *AUDIO_FORMATS, "png", "musicxml", "abc", "svg")
"""Every file format `GeneratedMelody.save` and `hf-melody generate --formats` write."""
DEFAULT_TEMPO_QPM = 120.0
def find_soundfont(soundfont: str | os.PathLike | None = None) -> Path:
    """The soundfont to render with: the argument, else `$HF_MELODY_SOUNDFONT`, else a system General MIDI one.

    Examples:
        >>> find_soundfont()                                                            # doctest: +SKIP
        PosixPath('/usr/share/sounds/sf2/FluidR3_GM.sf2')
    """
    if soundfont is not None:
        path = Path(soundfont)
        if not path.is_file():
            raise SoundfontNotFoundError(f"{path}: no such soundfont file; give the path of a .sf2/.sf3 file")
        return check_soundfont(path, str(path))
    env = os.environ.get(SOUNDFONT_ENV)
    if env:
        if not Path(env).is_file():
            raise SoundfontNotFoundError(f"${SOUNDFONT_ENV}={env}: no such file; point it at a .sf2/.sf3 file")
        return check_soundfont(Path(env), f"${SOUNDFONT_ENV}={env}")
    for cand in SOUNDFONT_CANDIDATES:
        if Path(cand).is_file():
            return Path(cand)
    raise SoundfontNotFoundError(
        "no General MIDI soundfont found; install one (Debian/Ubuntu: `sudo apt-get install timgm6mb-soundfont`), "
        f"or pass soundfont=PATH / set ${SOUNDFONT_ENV}"
    )


def check_soundfont(path: Path, shown: str) -> Path:
    """`path` if it is a whole SoundFont file (RIFF `sfbk`, as long as its header says), else a one-line
    `SoundfontNotFoundError`: the synthesizer's own error for random bytes or a truncated file is a C++ traceback.

    Examples:
        >>> check_soundfont(Path("/etc/passwd"), "/etc/passwd")                           # doctest: +SKIP
        Traceback (most recent call last):
        hf_melody.errors.SoundfontNotFoundError: /etc/passwd: not a SoundFont (no RIFF sfbk header); ...
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as e:
        raise SoundfontNotFoundError(f"{shown}: cannot be read ({e.strerror}); check its permissions") from e
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise SoundfontNotFoundError(f"{shown}: not a SoundFont (no RIFF sfbk header); give a .sf2/.sf3 file, e.g. "
                                     "/usr/share/sounds/sf2/TimGM6mb.sf2")
    declared = int.from_bytes(head[4:8], "little") + 8
    if path.stat().st_size < declared:
        raise SoundfontNotFoundError(f"{shown}: truncated ({path.stat().st_size:,} of {declared:,} bytes); "
                                     "download or copy it again")
    return path


def _pickup_signature(pickup: int, denominator: int, tpq: int) -> tuple[int, int] | None:
    """The time signature of a pickup bar `pickup` ticks long, e.g. (1, 8) for an eighth-note upbeat in 2/4: the
    meter's denominator, or a finer power of two when the pickup needs it; None when none fits (a triplet)."""
    d = denominator
    while d <= 64:
        if (pickup * d) % (4 * tpq) == 0:
            return pickup * d // (4 * tpq), d
        d *= 2
    return None


def pickup_ticks(score) -> tuple[int, int]:
    """`(lead_in, pickup)`: whether the melody starts with a pickup (anacrusis), the one place that decides it.

    The model writes a pickup as a first bar whose notes start after `lead_in` ticks of silence; the pickup is the
    rest of that bar (`pickup` ticks). The files write it from time 0 with a short first time signature (e.g. 1/8)
    followed, where its bar ends, by the tune's meter; such a score gives `(0, pickup)`. A melody that starts on
    the bar line gives `(0, 0)`.

    Examples:
        >>> pickup_ticks(score)              # 2/4, the first note an eighth before the bar line  # doctest: +SKIP
        (720, 240)
    """
    from .. import music

    tpq = score.ticks_per_quarter
    tss = sorted((int(t.time), int(t.numerator), int(t.denominator)) for t in score.time_signatures)
    if not tss or tss[0][0] > 0:
        tss.insert(0, (0, *music.DEFAULT_TIME_SIGNATURE))
    first = music.bar_ticks(tss[0][1], tss[0][2], tpq)
    if len(tss) > 1 and tss[1][0] == first and music.bar_ticks(tss[1][1], tss[1][2], tpq) > first:
        return 0, first  # already written as files write it
    onsets = [n.time for t in score.tracks for n in t.notes]
    if not onsets:
        return 0, 0
    lead_in = min(onsets)
    if not 0 < lead_in < first or any(0 < t < first for t, *_ in tss[1:]) or \
            _pickup_signature(first - lead_in, tss[0][2], tpq) is None:
        return 0, 0
    return lead_in, first - lead_in


def with_metadata(score, key: str | None = None, title: str | None = None, tempo_qpm: float | None = None,
                  pickup: bool = True, program: int | str | None = None):
    """A copy of `score` with the meta events notation and DAW software read: key signature (`key`, else the
    score's, else the key `hf_melody.music.estimate_key` hears in the notes), a time signature (4/4 if the score has
    none), a tempo (`tempo_qpm`, else the score's, else 120), the track name (`title`) and the General MIDI
    instrument (`program`, a number or a name like "flute"; default: the score's).

    With `pickup` (the files), a melody with a pickup (`pickup_ticks`) starts at time 0 on its first note, under a
    short time signature as long as the pickup (e.g. 1/8) followed by the tune's meter, so a DAW's bar lines and a
    MIDI import's measures fall where the tune's do; `pickup=False` keeps the model's grid (the first bar padded
    with silence). A melody without a pickup is the same either way.

    Examples:
        >>> with_metadata(score, key="D minor", title="hf_melody seed 3").key_signatures    # doctest: +SKIP
    """
    from symusic import KeySignature, Tempo, TimeSignature

    out = score.copy()
    if key is None and not len(out.key_signatures):
        key = estimate_key((n.time, n.duration, n.pitch) for t in out.tracks for n in t.notes)
    if key is not None:
        sharps, tonality = key_signature(key)
        out.key_signatures = [KeySignature(0, sharps, tonality)]
    if not len(out.time_signatures):
        out.time_signatures.append(TimeSignature(0, 4, 4))
    if tempo_qpm is not None or not len(out.tempos):
        out.tempos = [Tempo(0, qpm=float(tempo_qpm or DEFAULT_TEMPO_QPM))]
    if title is not None:
        for track in out.tracks:
            track.name = title
    if program is not None:
        for track in out.tracks:
            track.program = program_number(program)
    lead_in, length = pickup_ticks(out) if pickup else (0, 0)
    if lead_in:
        out = _start_at_pickup(out, lead_in, length)
    return out


def _start_at_pickup(score, lead_in: int, pickup: int):
    """`score` moved `lead_in` ticks earlier, its first bar a pickup bar of `pickup` ticks (see `with_metadata`)."""
    from symusic import TimeSignature

    tss = sorted(score.time_signatures, key=lambda t: t.time)
    meter = tss[0]
    numerator, denominator = _pickup_signature(pickup, meter.denominator, score.ticks_per_quarter)
    out = score.shift_time(-lead_in)
    out.time_signatures = [TimeSignature(0, numerator, denominator), TimeSignature(pickup, meter.numerator,
                                                                                   meter.denominator),
                           *(TimeSignature(t.time - lead_in, t.numerator, t.denominator) for t in tss[1:])]
    for events in (out.key_signatures, out.tempos, out.markers):
        for event in events:
            event.time = max(event.time, 0)
    return out


def midi_bytes(score, key: str | None = None, title: str | None = None, tempo_qpm: float | None = None,
               program: int | str | None = None, composer: str | None = None,
               chords: Sequence[ChordEvent] | None = None, chord_track: bool = False) -> bytes:
    """The Standard MIDI File of `score` with the meta events of `with_metadata`, and `composer` as a text event
    ("Composer: ...", FF 01) at the start of the first track, where DAWs and MIDI tools list a file's texts.

    `chords` (`hf_melody.harmony.chord_events`): a marker (FF 06) with the symbol at each chord change, and with
    `chord_track` a second track "Chords" of block chords (`hf_melody.export.chords.with_chords`); the melody keeps
    a full first bar (no pickup).

    Examples:
        >>> midi_bytes(score, key="D minor", program="flute", composer="hf_melody folk-base")[:4]  # doctest: +SKIP
        b'MThd'
        >>> midi_bytes(score, chords=chord_events(score, "Dm7 G7 Cmaj7"), chord_track=True)   # doctest: +SKIP
    """
    out = with_metadata(score, key, title, tempo_qpm, program=program, pickup=not chords)
    data = (with_chords(out, chords, chord_track) if chords else out).dumps_midi()
    if not composer:
        return data
    text = f"Composer: {composer}".encode()[:127]  # one-byte length (a variable-length quantity below 128)
    start = data.index(b"MTrk") + 8  # the first track's events
    length = int.from_bytes(data[start - 4:start], "big") + 4 + len(text)
    return data[:start - 4] + length.to_bytes(4, "big") + b"\x00\xff\x01" + bytes([len(text)]) + text + data[start:]


def save_midi(score, path: str | os.PathLike, key: str | None = None, title: str | None = None,
              tempo_qpm: float | None = None, program: int | str | None = None, composer: str | None = None,
              chords: Sequence[ChordEvent] | None = None, chord_track: bool = False) -> Path:
    """Write a `symusic.Score` as a Standard MIDI File with key/time signature, tempo, track name, instrument and
    composer, and the chord markers and chord track (see `midi_bytes`).

    Examples:
        >>> save_midi(melody.score, "out/tune.mid", key="D minor", title="My tune", program="violin")  # doctest: +SKIP
    """
    return atomic_write_bytes(path, midi_bytes(score, key, title, tempo_qpm, program, composer, chords, chord_track))


def render_audio(score, soundfont: str | os.PathLike | None = None, sample_rate: int = 22050,
                 tempo_qpm: float | None = None, program: int | str | None = None,
                 chords: Sequence[ChordEvent] | None = None, chord_track: bool = False):
    """Synthesize a score to a float32 array of shape (2, samples) with symusic's SoundFont synthesizer, from its
    first note (a pickup is not preceded by silence; see `with_metadata`) at `tempo_qpm` (default: the score's),
    played by General MIDI `program` (default: the score's, piano). With `chords` and `chord_track` the block chords
    sound under it (`hf_melody.export.chords.with_chords`: strings, softer, C2-B3), from time 0.

    Examples:
        >>> render_audio(score, chords=chord_events(score, "C G Am F"), chord_track=True).shape  # doctest: +SKIP
        (2, 176400)
    """
    from symusic import Synthesizer

    sf = find_soundfont(soundfont)
    try:
        synth = Synthesizer(sf_path=str(sf), sample_rate=sample_rate)
    except Exception as e:  # symusic raises RuntimeError with the C++ message for a damaged file
        raise SoundfontNotFoundError(f"{sf}: the synthesizer cannot load it ({str(e).strip()[:120]}); give another "
                                     ".sf2/.sf3 file") from e
    out = with_metadata(score, tempo_qpm=tempo_qpm, program=program, pickup=not chords)
    return synth.render(with_chords(out, chords, chord_track) if chords else out, stereo=True)


def audio_bytes(score, fmt: str = "wav", soundfont: str | os.PathLike | None = None,
                sample_rate: int = 22050, tempo_qpm: float | None = None, program: int | str | None = None,
                chords: Sequence[ChordEvent] | None = None, chord_track: bool = False) -> bytes:
    """The score rendered to an audio file's bytes: "wav" (16-bit PCM), "flac", "ogg" (Vorbis) or "mp3".

    WAV is written by symusic; FLAC, OGG and MP3 by soundfile (libsndfile), the `audio` extra.
    """
    import io

    if fmt not in AUDIO_FORMATS:
        raise ConfigError(f"unknown audio format {fmt!r}; choose one of {', '.join(AUDIO_FORMATS)}")
    audio = render_audio(score, soundfont, sample_rate, tempo_qpm, program, chords, chord_track)
    if fmt == "wav":
        import tempfile

        from symusic import dump_wav

        with tempfile.TemporaryDirectory(prefix="hf_melody-wav-") as tmp:
            dump_wav(f"{tmp}/a.wav", audio, sample_rate, use_int16=True)
            return Path(f"{tmp}/a.wav").read_bytes()
    try:
        import soundfile
    except ImportError as e:
        raise MissingDependencyError(f"writing .{fmt} needs soundfile: pip install 'hf_melody[audio]' "
                                     "(or write .wav)") from e
    import numpy as np

    buf = io.BytesIO()
    container, subtype = AUDIO_FORMATS[fmt]
    soundfile.write(buf, np.ascontiguousarray(np.asarray(audio).T), sample_rate, format=container, subtype=subtype)
    return buf.getvalue()


def save_audio(score, path: str | os.PathLike, soundfont: str | os.PathLike | None = None,
               sample_rate: int = 22050, tempo_qpm: float | None = None, program: int | str | None = None,
               chords: Sequence[ChordEvent] | None = None, chord_track: bool = False) -> Path:
    """Render a score to an audio file whose format follows the extension: .wav, .flac, .ogg or .mp3.

    Examples:
        >>> save_audio(melody.score, "out/tune.flac", soundfont="GeneralUser.sf2")        # doctest: +SKIP
    """
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in AUDIO_FORMATS:
        raise ConfigError(f"{path}: unknown audio extension; use one of {', '.join('.' + f for f in AUDIO_FORMATS)}")
    return atomic_write_bytes(path, audio_bytes(score, fmt, soundfont, sample_rate, tempo_qpm, program, chords,
                                                chord_track))


def save_wav(score, path: str | os.PathLike, soundfont: str | os.PathLike | None = None,
             sample_rate: int = 22050, tempo_qpm: float | None = None, program: int | str | None = None,
             chords: Sequence[ChordEvent] | None = None, chord_track: bool = False) -> Path:
    """Render a score to a 16-bit stereo WAV file (see `find_soundfont` for where the soundfont comes from)."""
    return atomic_write_bytes(path, audio_bytes(score, "wav", soundfont, sample_rate, tempo_qpm, program, chords,
                                                chord_track))


def save_piano_roll(score, path: str | os.PathLike, title: str = "", settings: dict[str, Any] | None = None,
                    prompt_notes: int = 0, dpi: int = 120, chords: Sequence[ChordEvent] | None = None) -> Path:
    """Draw the melody as a piano roll: time in bars on x, pitch names on y, bar lines, the prompt in grey, and
    with `chords` (`hf_melody.harmony.chord_events`) each chord's symbol at the top of the roll where it starts.

    Examples:
        >>> save_piano_roll(melody.score, "out/tune.png", title="seed 0", prompt_notes=8)   # doctest: +SKIP
    """
    return atomic_write_bytes(path, piano_roll_png(score, title, settings, prompt_notes, dpi, chords))


def piano_roll_png(score, title: str = "", settings: dict[str, Any] | None = None, prompt_notes: int = 0,
                   dpi: int = 120, chords: Sequence[ChordEvent] | None = None) -> bytes:
    """The piano roll of `save_piano_roll` as PNG bytes (the figure of `piano_roll_figure`)."""
    import io

    import matplotlib.pyplot as plt

    fig = piano_roll_figure(score, title, settings, prompt_notes, dpi, chords)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def piano_roll_figure(score, title: str = "", settings: dict[str, Any] | None = None, prompt_notes: int = 0,
                      dpi: int = 120, chords: Sequence[ChordEvent] | None = None):
    """The piano roll of `save_piano_roll` as a matplotlib Figure (the chord symbols: its texts with gid "chord").

    Examples:
        >>> [t.get_text() for t in piano_roll_figure(score, chords=events).axes[0].texts]   # doctest: +SKIP
        ['C', 'G', 'Am', 'F']
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    score = with_metadata(score, pickup=not chords)  # bars as the files count them: a pickup is bar 0, before bar 1
    _, pickup = pickup_ticks(score) if not chords else (0, 0)  # with chords: a late entry in a full bar 1
    notes = [n for t in score.tracks for n in t.notes]
    bars = bar_start_ticks(score)
    end = max((n.time + n.duration for n in notes), default=1)
    while len(bars) > 2 and bars[-2] >= end:  # a melody ending on a bar line: no empty bar after it
        bars.pop()
    # bar number as a function of tick (piecewise linear between bar lines); a pickup spans its share of a bar
    import numpy as np

    positions = np.arange(len(bars), dtype=float)
    if pickup and len(bars) > 2:
        bars = bars[1:]
        positions = np.concatenate([[-pickup / (bars[1] - bars[0])], np.arange(len(bars), dtype=float)])
        bars = [0, *bars]

    def to_bar(tick: float) -> float:
        return float(np.interp(tick, bars, positions))

    width = min(24.0, max(8.0, 0.45 * (len(bars) - 1) + 2))
    fig, ax = plt.subplots(figsize=(width, 4.5), dpi=dpi)
    lo = min((n.pitch for n in notes), default=60) - 2
    hi = max((n.pitch for n in notes), default=72) + 2
    for p in range(lo, hi + 1):
        if p % 12 not in MODES["major"]:  # the black keys
            ax.axhspan(p - 0.5, p + 0.5, color="#f2f2f2", zorder=0)
    for i, n in enumerate(notes):
        x0, x1 = to_bar(n.time), to_bar(n.time + n.duration)
        color = "#9e9e9e" if i < prompt_notes else "#ff9d00"
        ax.add_patch(Rectangle((x0, n.pitch - 0.4), max(x1 - x0, 0.01), 0.8, facecolor=color,
                               edgecolor="#5a3a00", linewidth=0.6, zorder=2))
    for b in positions:
        ax.axvline(b, color="#444444", linewidth=0.8 if b % 4 else 1.4, zorder=1)
    full = len(positions) - 1 - (1 if positions[0] < 0 else 0)  # whole bars, the pickup not counted
    ax.set_xlim(min(0.0, positions[0]), max(1, positions[-1]))
    ax.set_ylim(lo - 0.5, hi + (2.5 if chords else 0.5))
    for event in chords or ():  # the chord symbols along the top, each where it starts
        ax.text(to_bar(event.time) + 0.03, hi + 1.2, event.symbol, fontsize=8, ha="left", va="center",
                color="#1f4e79", fontweight="bold", zorder=3, gid="chord")
    ticks = [p for p in range(lo, hi + 1) if p % 12 in MODES["major"]]
    ax.set_yticks(ticks, [note_name(p) for p in ticks], fontsize=7)
    starts = [b for b in positions if b >= 0]
    ax.set_xticks(starts, [str(int(b) + 1) for b in starts], fontsize=7)
    ax.set_xlabel("bar")
    signatures = sorted(score.time_signatures, key=lambda t: t.time)[1 if pickup else 0:]
    meters = sorted({f"{ts.numerator}/{ts.denominator}" for ts in signatures}) or ["4/4"]
    head = title or "hf_melody"
    sub = f"{len(notes)} notes, {'pickup + ' if pickup else ''}{full} bars, meter {', '.join(meters)}"
    if settings:  # on lines of their own, wrapped to the figure: the count above stays readable
        import textwrap

        shown = ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)
        sub += "\n" + "\n".join(textwrap.wrap(shown, int(width * 13))[:3])
    ax.set_title(f"{head}\n{sub}", fontsize=9)
    fig.tight_layout()
    return fig


def check_formats(formats: Sequence[str]) -> list[str]:
    """Normalise a list of formats ("mid", "wav", "MusicXML", ".abc"...); unknown ones are a `ConfigError`.

    Examples:
        >>> check_formats(["MIDI", ".wav", "xml"])
        ['mid', 'wav', 'musicxml']
    """
    aliases = {"midi": "mid", "xml": "musicxml", "mxl": "musicxml"}
    out = [aliases.get(f.strip().lower().lstrip("."), f.strip().lower().lstrip(".")) for f in formats if f.strip()]
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise ConfigError(f"unknown file format(s) {bad or formats!r}; choose from {', '.join(FORMATS)}")
    return list(dict.fromkeys(out))
