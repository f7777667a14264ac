"""Models: the GPT-2 presets (`presets`) and the lean GPT-2 forward step of the decoder (`lean_gpt2`).
"""

from .lean_gpt2 import (
    LeanGPT2,
    lean_support,
)
from .presets import (
    PRESETS,
    build_model,
    num_parameters,
    preset_config,
)

__all__ = [
    "LeanGPT2",
    "PRESETS",
    "build_model",
    "lean_support",
    "num_parameters",
    "preset_config",
]
