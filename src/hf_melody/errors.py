"""Typed errors: every message names the bad input and says how to fix it."""

from __future__ import annotations


class HFMelodyError(Exception):
    """Base class of every error hf_melody raises on purpose."""


class MidiReadError(HFMelodyError, ValueError):
    """A file could not be read as MIDI (corrupt, truncated, not MIDI, unreadable path)."""


class NoMelodyError(HFMelodyError, ValueError):
    """A file was read but holds no usable melody (no notes, drums only, out of range)."""


class ImplausibleMelodyError(NoMelodyError):
    """A file's melody is implausible as music: an absurdly long note or rest, or mostly silence."""


class CorpusError(HFMelodyError, ValueError):
    """A dataset spec names no known corpus, or a folder that is missing or empty."""


class ConfigError(HFMelodyError, ValueError):
    """A training or generation configuration is invalid; raised before any work starts."""


class SoundfontNotFoundError(HFMelodyError, FileNotFoundError):
    """No General MIDI soundfont was found for audio rendering."""


class ModelLoadError(HFMelodyError, OSError):
    """A model bundle could not be found or loaded."""


class MissingDependencyError(HFMelodyError, ImportError):
    """An optional package (an extra such as `corpus` or `audio`) is needed for this feature and not installed."""
