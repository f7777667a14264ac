"""Pipelines: `MelodyPipeline` (task `melody-generation`), its output type `GeneratedMelody` and bar infilling.
"""

from .infilling import (
    infill_melodies,
)
from .melody_generation import (
    TASK,
    MelodyPipeline,
)
from .output import (
    GeneratedMelody,
)

__all__ = [
    "GeneratedMelody",
    "MelodyPipeline",
    "TASK",
    "infill_melodies",
]
