"""hf_melody: train, evaluate and sample small GPT-2 melody models on MIDI, the Hugging Face way.

Examples:
    >>> import hf_melody
    >>> metrics = hf_melody.train("recipes/tiny-debug.yaml", max_steps=20)          # doctest: +SKIP
    >>> results = hf_melody.evaluate({"models": ["out/tiny-debug"]})                 # doctest: +SKIP
    >>> from hf_melody import MelodyPipeline
    >>> pipe = MelodyPipeline.from_pretrained("folk-base")
    >>> melody = pipe(seed=0, max_new_notes=32)[0]
    >>> melody.save_midi("melody.mid")                  # doctest: +SKIP

Importing hf_melody registers the `melody-generation` task with transformers, so
`transformers.pipeline("melody-generation", model=...)` works afterwards.
"""

from . import _deprecated
from .bundle import bundled_checkpoints
from .data.arguments import DataConfig
from .data.corpora import load_melodies, read_midi
from .data.dataset import build_dataset, prepare_dataset
from .data.melody import Melody, SkipReport
from .errors import (
    ConfigError,
    CorpusError,
    DiskFullError,
    HFMelodyError,
    MidiReadError,
    MidiUnavailableError,
    MissingDependencyError,
    ModelLoadError,
    NoMelodyError,
    OutputError,
    SoundfontNotFoundError,
)
from .generation.configuration import MelodyGenerationConfig
from .generation.streamers import StreamedNote
from .harmony.chords import Chord, parse_chord, parse_progression
from .harmony.inference import infer_chords
from .hub import load_model, load_tokenizer, push_bundle_to_hub, save_bundle
from .modeling.presets import PRESETS, build_model
from .pipelines.melody_generation import MelodyPipeline
from .pipelines.output import GeneratedMelody
from .tokenizer import MelodyTokenizer

_deprecated.install()

__version__ = "0.1.0"

_LAZY = {"train": "training", "evaluate": "evaluation", "DataArguments": "data.arguments",
         "EvaluationArguments": "evaluation.arguments", "MelodyTrainingArguments": "training.arguments",
         "ModelArguments": "training.arguments", "LiveSession": "live.session"}
"""Public names imported on first use: training and evaluation pull in the Trainer and datasets (~1 s); live is
only for those who play with it."""


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "PRESETS",
    "Chord",
    "ConfigError",
    "CorpusError",
    "DataArguments",
    "DataConfig",
    "DiskFullError",
    "EvaluationArguments",
    "GeneratedMelody",
    "HFMelodyError",
    "LiveSession",
    "Melody",
    "MelodyGenerationConfig",
    "MelodyPipeline",
    "MelodyTokenizer",
    "MelodyTrainingArguments",
    "MidiReadError",
    "MidiUnavailableError",
    "MissingDependencyError",
    "ModelArguments",
    "ModelLoadError",
    "NoMelodyError",
    "OutputError",
    "SkipReport",
    "SoundfontNotFoundError",
    "StreamedNote",
    "build_dataset",
    "build_model",
    "bundled_checkpoints",
    "evaluate",
    "infer_chords",
    "load_melodies",
    "load_model",
    "load_tokenizer",
    "parse_chord",
    "parse_progression",
    "prepare_dataset",
    "push_bundle_to_hub",
    "read_midi",
    "save_bundle",
    "train",
]
