"""Controls that move while a session plays: temperature, key, pitch range, density, mode and tempo. A change is
checked when it arrives (a bad value is refused and counted, never a crash) and applies from the next bar.

Examples:
    >>> controls = LiveControls(temperature=1.0)
    >>> controls.updated("key", "D minor").key, controls.updated("density", 0).density
    ('D minor', None)
    >>> controls.updated("mode", "accompany").mode
    'continue'
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError
from ..music import PITCH_RANGE, parse_key
from .clock import check_tempo

__all__ = ["CONTROL_NAMES", "MODES", "LiveControls", "check_mode"]

MODES = ("respond", "continue", "trigger")
"""Session modes: call-and-response (answer when the player stops), an endless melody, answer on a trigger."""
_MODE_ALIASES = {"call-and-response": "respond", "call": "respond", "response": "respond", "accompany": "continue",
                 "endless": "continue"}
CONTROL_NAMES = ("temperature", "key", "pitch_range", "density", "mode", "tempo")
"""What `LiveSession.set(...)`, the OSC control addresses and the MIDI CC map can change."""


def check_mode(mode: str) -> str:
    """The session mode named by `mode` (aliases: call-and-response, accompany, endless); `ConfigError` if none.

    Examples:
        >>> check_mode("call-and-response")
        'respond'
    """
    name = _MODE_ALIASES.get(str(mode).strip().lower(), str(mode).strip().lower())
    if name not in MODES:
        raise ConfigError(f"mode={mode!r}: choose one of {', '.join(MODES)} (or accompany, call-and-response)")
    return name


@dataclass(frozen=True)
class LiveControls:
    """The values a session plays with now. `key=None` takes the key of each call (estimated from its notes);
    `density` is a wished number of notes per bar (None: whatever the model plays); `tempo` is quarter notes a
    minute.

    Examples:
        >>> LiveControls().updated("pitch_range", (60, 72)).pitch_range
        (60, 72)
    """

    temperature: float | None = None
    key: str | None = None
    pitch_range: tuple[int, int] | None = None
    density: float | None = None
    mode: str = "respond"
    tempo: float = 120.0

    def updated(self, name: str, value: Any) -> LiveControls:
        """A copy with control `name` set to `value` (checked; `ConfigError` names the fix)."""
        if name not in CONTROL_NAMES:
            raise ConfigError(f"unknown control {name!r}; choose one of {', '.join(CONTROL_NAMES)}")
        return replace(self, **{name: getattr(self, f"_check_{name}")(value)})

    @staticmethod
    def _check_temperature(value: Any) -> float:
        t = float(value)
        if not 0.05 <= t <= 5.0:
            raise ConfigError(f"temperature={value!r} must be in 0.05..5")
        return t

    @staticmethod
    def _check_key(value: Any) -> str | None:
        if value is None or str(value).strip().lower() in ("", "auto", "none", "call"):
            return None
        return parse_key(str(value)).name

    @staticmethod
    def _check_pitch_range(value: Any) -> tuple[int, int] | None:
        if value is None:
            return None
        lo, hi = (int(v) for v in value)
        if not PITCH_RANGE[0] <= lo < hi <= PITCH_RANGE[1]:
            raise ConfigError(f"pitch_range={value!r}: give LO < HI within {PITCH_RANGE[0]}..{PITCH_RANGE[1]}")
        return lo, hi

    @staticmethod
    def _check_density(value: Any) -> float | None:
        if value is None or float(value) <= 0:
            return None
        if float(value) > 32:
            raise ConfigError(f"density={value!r}: at most 32 notes per bar (0 turns it off)")
        return float(value)

    @staticmethod
    def _check_mode(value: Any) -> str:
        return check_mode(value)

    @staticmethod
    def _check_tempo(value: Any) -> float:
        return check_tempo(value)

    def generation_options(self) -> dict[str, Any]:
        """The pipeline options these controls set (temperature, pitch_range; the key is the session's choice)."""
        options: dict[str, Any] = {}
        if self.temperature is not None:
            options["temperature"] = self.temperature
        if self.pitch_range is not None:
            options["pitch_range"] = self.pitch_range
        return options
