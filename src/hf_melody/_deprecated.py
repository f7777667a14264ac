"""The module paths of hf_melody 0.1 (38 flat modules), importable for one more release with a `DeprecationWarning`.

`import hf_melody.corpora` or `from hf_melody.decoding import generate_ids` still work and warn with the new path
(`hf_melody.data.corpora`, `hf_melody.generation.decoding`). The old modules that became subpackages of the same
name (`data`, `generation`, `grammar`, `modeling`, `training`) need nothing: their `__init__` tables keep the old names.

Examples:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     from hf_melody.decoding import generate_ids
    >>> generate_ids.__module__, caught[0].category.__name__
    ('hf_melody.generation.decoding', 'DeprecationWarning')
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

MOVED: dict[str, tuple[str, ...]] = {
    "arguments": ("data.arguments", "training.arguments", "evaluation.arguments"),
    "corpora": ("data.corpora", "data.melody", "data.music21_corpora"),
    "decoding": ("generation.decoding",),
    "display": ("export.display",),
    "generation_options": ("generation.configuration",),
    "grammar_masks": ("grammar.remi",),
    "grammar_processor": ("grammar.logits_process",),
    "grammar_state": ("grammar.state",),
    "grammar_tables": ("grammar.tables",),
    "infill": ("generation.infill", "data.infill_format", "pipelines.infilling"),
    "lean_gpt2": ("modeling.lean_gpt2",),
    "lengths": ("generation.stopping_criteria",),
    "melody": ("data.melody",),
    "music21_corpora": ("data.music21_corpora",),
    "notation": ("export.notation",),
    "option_checks": ("generation.checks",),
    "output": ("pipelines.output",),
    "pipeline": ("pipelines.melody_generation",),
    "prepared": ("data.prepared",),
    "prompts": ("generation.prompts",),
    "render": ("export.render",),
    "runs": ("training.runs", "training.callbacks"),
    "streaming": ("generation.streamers",),
}
"""Old module (under `hf_melody.`) -> the new modules that hold its names, searched in order."""


class _MovedModule(types.ModuleType):
    """Stands for an old module: each attribute is looked up in the new modules (imported on first use)."""

    def __init__(self, name: str, targets: tuple[str, ...]):
        super().__init__(name, f"Moved: see {', '.join('hf_melody.' + t for t in targets)}.")
        self.__targets = tuple(f"hf_melody.{t}" for t in targets)

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        for target in self.__targets:
            module = importlib.import_module(target)
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r} (it moved to "
                             f"{' / '.join(self.__targets)})")

    def __dir__(self):
        return sorted({n for t in self.__targets for n in dir(importlib.import_module(t))})


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        prefix, _, old = fullname.partition(".")
        if prefix == "hf_melody" and old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        old = spec.name.partition(".")[2]
        targets = MOVED[old]
        warnings.warn(f"{spec.name} moved to {' / '.join('hf_melody.' + t for t in targets)} in hf_melody 0.2; "
                      "the old path goes in the next release: import from the new one", DeprecationWarning,
                      stacklevel=2)
        return _MovedModule(spec.name, targets)

    def exec_module(self, module):
        pass


def install() -> None:
    """Let the old module paths import (once per process)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
