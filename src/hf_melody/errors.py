"""Typed errors: every message names the bad input and says how to fix it.

Examples:
    >>> import hf_melody
    >>> hf_melody.MelodyGenerationConfig(key="H major")                                 # doctest: +ELLIPSIS
    Traceback (most recent call last):
    hf_melody.errors.ConfigError: key='H major': the tonic must be a note name A-G (with # or b), e.g. 'D minor'
"""

from __future__ import annotations


class HFMelodyError(Exception):
    """Base class of every error hf_melody raises on purpose: catch it to report bad input in one line.

    Examples:
        >>> try:
        ...     hf_melody.load_melodies("no-such-corpus")
        ... except hf_melody.HFMelodyError as e:
        ...     print(type(e).__name__)
        CorpusError
    """


class MidiReadError(HFMelodyError, ValueError):
    """A file could not be read as MIDI (corrupt, truncated, not MIDI, unreadable path).

    Examples:
        >>> hf_melody.read_midi("README.md")
        Traceback (most recent call last):
        hf_melody.errors.MidiReadError: README.md: not a MIDI file (no 'MThd' header); give a Standard MIDI File (.mid)
    """


class NoMelodyError(HFMelodyError, ValueError):
    """A file was read but holds no usable melody (no notes, drums only, out of range).

    Examples:
        >>> hf_melody.read_midi("drums_only.mid")                                      # doctest: +SKIP
        Traceback (most recent call last):
        hf_melody.errors.NoMelodyError: drums_only.mid: no notes outside the drum channel ...
    """


class ImplausibleMelodyError(NoMelodyError):
    """A file's melody is implausible as music: an absurdly long note or rest, or mostly silence.

    Examples:
        >>> melodies, report = hf_melody.load_melodies("path/to/midi")                   # doctest: +SKIP
        >>> report.reasons()                          # such files are skipped and counted  # doctest: +SKIP
    """


class CorpusError(HFMelodyError, ValueError):
    """A dataset spec names no known corpus, or a folder that is missing or empty.

    Examples:
        >>> hf_melody.load_melodies("no-such-corpus")                                 # doctest: +ELLIPSIS
        Traceback (most recent call last):
        hf_melody.errors.CorpusError: unknown corpus 'no-such-corpus'; choose one of: essen, ...
    """


class ConfigError(HFMelodyError, ValueError):
    """A training or generation configuration is invalid; raised before any work starts.

    Examples:
        >>> hf_melody.MelodyGenerationConfig(top_p=1.5)
        Traceback (most recent call last):
        hf_melody.errors.ConfigError: top_p=1.5 must be in (0, 1]
    """


class SoundfontNotFoundError(HFMelodyError, FileNotFoundError):
    """No General MIDI soundfont was found for audio rendering.

    Examples:
        >>> melody.save_wav("tune.wav", soundfont="missing.sf2")                         # doctest: +SKIP
        Traceback (most recent call last):
        hf_melody.errors.SoundfontNotFoundError: missing.sf2: no such soundfont file; give the path of a .sf2/.sf3 file
    """


class ModelLoadError(HFMelodyError, OSError):
    """A model bundle could not be found or loaded.

    Examples:
        >>> hf_melody.load_model("no-such-model")                                      # doctest: +ELLIPSIS
        Traceback (most recent call last):
        hf_melody.errors.ModelLoadError: 'no-such-model': not a folder, a bundled checkpoint (...) or a Hub id ...
    """


class MissingDependencyError(HFMelodyError, ImportError):
    """An optional package (an extra such as `corpus` or `audio`) is needed for this feature and not installed.

    Examples:
        >>> melody.save_musicxml("tune.musicxml")               # without music21             # doctest: +SKIP
        Traceback (most recent call last):
        hf_melody.errors.MissingDependencyError: MusicXML and ABC export need music21: pip install 'hf_melody[corpus]'
    """


class MidiUnavailableError(HFMelodyError, OSError):
    """No MIDI system to open ports on (no ALSA / CoreMIDI / WinMM), or no port of that name: use OSC instead.

    Examples:
        >>> hf_melody.live.MidiTransport(input="my keyboard")                            # doctest: +SKIP
        Traceback (most recent call last):
        hf_melody.errors.MidiUnavailableError: no MIDI system here (...); use OSC instead: --osc-in 127.0.0.1:9000 ...
    """


class OutputError(HFMelodyError, OSError):
    """A file or folder could not be written where it was asked for (a path that cannot be recorded, a folder
    another run is writing); nothing is left half-written.

    Examples:
        >>> hf_melody.train({"output_dir": b"run-\\xff".decode("utf-8", "surrogateescape")})     # doctest: +SKIP
        Traceback (most recent call last):
        hf_melody.errors.OutputError: output_dir='run-\\xff' is not valid UTF-8 (byte 0xff); ...
    """


class DiskFullError(OutputError):
    """Writing a file failed because the disk is full, a quota was reached or a file-size limit was hit (ENOSPC,
    EDQUOT, EFBIG); the write was undone, so nothing half-written is left.

    Examples:
        >>> melody.save_midi("/mnt/full/tune.mid")                                         # doctest: +SKIP
        Traceback (most recent call last):
        hf_melody.errors.DiskFullError: /mnt/full/tune.mid: No space left on device (ENOSPC); free space there or \
write elsewhere (--output-dir / --output_dir)
    """
