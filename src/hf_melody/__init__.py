"""hf_melody: train, evaluate and sample small GPT-2 melody models on MIDI, the Hugging Face way.

Example:
    >>> from hf_melody import MelodyPipeline
    >>> pipe = MelodyPipeline.from_pretrained("folk-base")
    >>> melody = pipe(seed=0, max_new_notes=32)[0]
    >>> melody.save_midi("melody.mid")                  # doctest: +SKIP

Importing hf_melody registers the `melody-generation` task with transformers, so
`transformers.pipeline("melody-generation", model=...)` works afterwards.
"""

from .corpora import Melody, SkipReport, load_melodies, read_midi
from .data import DataConfig, build_dataset, prepare_dataset
from .errors import (
    ConfigError,
    CorpusError,
    HFMelodyError,
    MidiReadError,
    MissingDependencyError,
    ModelLoadError,
    NoMelodyError,
    SoundfontNotFoundError,
)
from .generation_options import MelodyGenerationConfig
from .hub import bundled_checkpoints, load_model, load_tokenizer, push_bundle_to_hub, save_bundle
from .modeling import PRESETS, build_model
from .pipeline import GeneratedMelody, MelodyPipeline
from .streaming import StreamedNote
from .tokenizer import MelodyTokenizer

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "ConfigError",
    "CorpusError",
    "DataConfig",
    "GeneratedMelody",
    "HFMelodyError",
    "Melody",
    "MelodyGenerationConfig",
    "MelodyPipeline",
    "MelodyTokenizer",
    "MidiReadError",
    "MissingDependencyError",
    "ModelLoadError",
    "NoMelodyError",
    "SkipReport",
    "SoundfontNotFoundError",
    "StreamedNote",
    "build_dataset",
    "build_model",
    "bundled_checkpoints",
    "load_melodies",
    "load_model",
    "load_tokenizer",
    "prepare_dataset",
    "push_bundle_to_hub",
    "read_midi",
    "save_bundle",
]
