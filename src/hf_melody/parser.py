"""One parser for every configuration: a YAML recipe (`--config x.yaml` or `--config=x.yaml`) gives the defaults,
command-line flags override them, and unknown keys, abbreviations and values of the wrong type are a one-line
`ConfigError` naming the key and the fix (with a "did you mean" for typos). Every flag has both spellings,
`--max_steps` and `--max-steps`, as in transformers.

Examples:
    >>> from hf_melody.parser import training_parser
    >>> model_args, data_args, training_args = training_parser().parse_args_and_config(
    ...     ["--config", "recipes/tiny-debug.yaml", "--max-steps", "20"])         # doctest: +SKIP
    >>> training_args.max_steps                                                 # doctest: +SKIP
    20
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser

from .errors import ConfigError

ConfigSource = str | os.PathLike | Mapping[str, Any] | None
RECIPES_DIR = Path(__file__).parent / "recipes"
"""The YAML recipes and accelerate configs shipped inside the package (the repository's `recipes/` links to them),
so `--config tiny-debug` works from a wheel, outside any checkout."""


def bundled_recipes() -> dict[str, Path]:
    """Name -> path of every recipe shipped with hf_melody (`tiny-debug`, `small`, `finetune_style`, ...).

    Examples:
        >>> sorted(bundled_recipes())[:3]
        ['base', 'deeper-thinner', 'evaluate']
    """
    return {p.stem: p for p in sorted(RECIPES_DIR.glob("*.yaml"))}


def accelerate_configs() -> dict[str, Path]:
    """Name -> path of the shipped accelerate configs, for `accelerate launch --config_file PATH`.

    Examples:
        >>> accelerate_configs()["cpu-2proc"].name
        'cpu-2proc.yaml'
    """
    return {p.stem: p for p in sorted((RECIPES_DIR / "accelerate_configs").glob("*.yaml"))}


def find_recipe(name_or_path: str | os.PathLike) -> Path:
    """The recipe file `--config` names: an existing path wins; otherwise a shipped recipe by name (`tiny-debug`,
    `tiny-debug.yaml` or `recipes/tiny-debug.yaml`, as the README writes it, from any folder).

    Examples:
        >>> find_recipe("tiny-debug").name
        'tiny-debug.yaml'
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    name = path.name[:-5] if path.name.endswith((".yaml", ".yml")) else path.name
    shipped = bundled_recipes()
    if name in shipped and (len(path.parts) == 1 or path.parent.name == "recipes"):
        return shipped[name]
    raise ConfigError(f"{path}: no such recipe file, and no shipped recipe of that name (shipped: "
                      f"{', '.join(shipped)}); give a path to a YAML or one of those names (`hf-melody recipes`)")


def one_line(text: Any, limit: int = 200) -> str:
    """`text` on one line, cut to `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def did_you_mean(name: str, known: set[str], prefix: str = "") -> str:
    """`"; did you mean --max_steps?"` for a close match of `name` among `known`, else `""`."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


class MelodyArgumentParser(HfArgumentParser):
    """`HfArgumentParser` for YAML recipes plus command-line flags (TRL's `TrlParser` is the model).

    `parse_args_and_config` reads `--config x.yaml` (its keys become defaults) and then the flags; `parse_config`
    takes a YAML path or a dict from Python. Abbreviated flags (`--max_step`) are refused; unknown keys and flags
    get a "did you mean". A parser holds the defaults of the config it parsed: build one per parse (see
    `training_parser`).

    Examples:
        >>> parser = MelodyArgumentParser(EvaluationArguments, prog="hf-melody evaluate")
        >>> parser.parse_args_and_config(["--models", "original", "--num-samples", "4"])[0].num_samples
        4
    """

    def __init__(self, dataclass_types, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(dataclass_types, **kwargs)
        self.add_argument("--config", metavar="YAML", default=None,
                          help="A YAML recipe: its keys are the defaults, flags given here override them.")

    def error(self, message: str):
        """argparse would print the usage and exit; raise one typed line instead."""
        raise ConfigError(f"{one_line(message)}; run with --help to see every option")

    @property
    def field_names(self) -> set[str]:
        """Every key a recipe may hold."""
        return {f.name for dtype in self.dataclass_types for f in dataclasses.fields(dtype) if f.init}

    def _aliases(self) -> dict[str, str]:
        """Other spellings of a key (`output-dir`, or an older name such as `out_dir`) -> the field name."""
        names = self.field_names
        out = {}
        for action in self._actions:
            if type(action) is argparse._StoreAction and action.dest in names:  # not the `--no_x` switches
                for option in action.option_strings:
                    key = option.lstrip("-")
                    out.setdefault(key, action.dest)
                    out.setdefault(key.replace("-", "_"), action.dest)
        return out

    def check_config(self, values: Mapping[str, Any], source: str) -> dict[str, Any]:
        """`values` keyed by field name, each converted the way the command line would convert it; unknown keys,
        lists for single values, mappings and nulls where none is allowed are a `ConfigError` naming `source`."""
        aliases, known = self._aliases(), self.field_names
        actions = {a.dest: a for a in self._actions if type(a) is argparse._StoreAction}
        hints: dict[str, str] = {}  # the declared types (the parser has rewritten `field.type` for argparse)
        for dtype in self.dataclass_types:
            for cls in reversed(dtype.__mro__):
                hints.update({name: str(hint) for name, hint in vars(cls).get("__annotations__", {}).items()})
        out = {}
        for key, value in values.items():
            name = aliases.get(str(key))
            if name is None:
                raise ConfigError(f"{source}: unknown key {key!r}{did_you_mean(str(key), known)}")
            action = actions.get(name)
            is_list = action is not None and action.nargs in ("+", "*")
            if isinstance(value, dict) and "dict" not in hints.get(name, ""):
                raise ConfigError(f"{source}: {key}: got a mapping {one_line(value, 60)}, expected a single value; "
                                  f"write `{key}: <value>`")
            if value is None and not is_list and not any(t in hints.get(name, "None") for t in ("None", "Optional")):
                raise ConfigError(f"{source}: {key}: got null (an empty value); give a value or remove the line to "
                                  "use the default")
            _check_value(source, str(key), value, action, is_list)
            out[name] = value
        return out

    def parse_args_and_config(self, args: list[str] | None = None) -> tuple:
        """`--config recipe.yaml` (defaults) plus command-line flags -> one instance of each dataclass.

        Examples:
            >>> training_parser().parse_args_and_config(["--config=recipes/tiny-debug.yaml", "--max_steps", "9"])
            ... # doctest: +SKIP
        """
        args = list(sys.argv[1:] if args is None else args)
        args, config_path = _pop_config(args)
        if config_path is not None:
            self.set_defaults(**load_yaml_config(config_path, self))
        namespace, rest = self.parse_known_args(args)
        if rest:
            flags = [r for r in rest if r.startswith("-")]
            known = {s for a in self._actions for s in a.option_strings if s.startswith("--")}
            hint = did_you_mean(flags[0].partition("=")[0], known) if flags else ""
            raise ConfigError(f"unknown arguments {rest}" + (hint or "; run with --help to see every option"))
        source = f" (from {config_path} and the command line)" if config_path else ""
        return self._instances(vars(namespace), source)

    def parse_config(self, config: ConfigSource = None, **overrides) -> tuple:
        """One instance of each dataclass from a YAML path or a dict (plus keyword overrides), with the same
        defaults, conversions and checks as the command line.

        Examples:
            >>> training_parser().parse_config("recipes/tiny-debug.yaml", max_steps=5)[2].max_steps  # doctest: +SKIP
            5
        """
        if config is None:
            values = {}
        elif isinstance(config, str | os.PathLike):
            values = load_yaml_config(config, self)
        elif isinstance(config, Mapping):
            values = self.check_config(config, "config")
        else:
            raise ConfigError(f"config is a {type(config).__name__}; give a YAML path, a dict or the argument "
                              "dataclasses")
        values.update(self.check_config(overrides, "keyword arguments"))
        self.set_defaults(**values)
        return self.parse_args_and_config([])

    def _instances(self, parsed: dict[str, Any], source: str) -> tuple:
        outputs = []
        for dtype in self.dataclass_types:
            keys = {f.name for f in dataclasses.fields(dtype) if f.init}
            try:
                outputs.append(dtype(**{k: v for k, v in parsed.items() if k in keys}))
            except ConfigError:
                raise
            except (ValueError, TypeError) as e:  # transformers' own checks of TrainingArguments
                raise ConfigError(f"invalid arguments{source}: {one_line(e, 300)}") from e
        return tuple(outputs)


def _pop_config(args: list[str]) -> tuple[list[str], str | None]:
    """`args` without `--config PATH` / `--config=PATH`, and PATH (None when absent)."""
    for i, arg in enumerate(args):
        if arg.startswith("--config="):
            path, rest = arg.partition("=")[2], args[:i] + args[i + 1:]
            break
        if arg == "--config":
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ConfigError("--config needs a path to a recipe YAML, e.g. --config recipes/original.yaml")
            path, rest = args[i + 1], args[:i] + args[i + 2:]
            break
    else:
        return args, None
    if any(a == "--config" or a.startswith("--config=") for a in rest):
        raise ConfigError("--config was given twice; give one recipe and override its keys with flags")
    return rest, path


def _check_value(source: str, key: str, value: Any, action, is_list: bool) -> None:
    """Convert `value` the way the command line would (`action.type`, `action.choices`); `ConfigError` if it fails."""
    if value is None or action is None or action.type is None or isinstance(value, dict):
        return  # dict-valued TrainingArguments fields (e.g. accelerator_config) are checked by transformers
    if isinstance(value, list) and not is_list:
        raise ConfigError(f"{source}: {key}: got a list {value!r}, expected a single value; write `{key}: <value>`")
    kind = getattr(action.type, "__name__", "")
    example = {"int": "a whole number, e.g. 1000", "float": "a number, e.g. 0.001",
               "string_to_bool": "true or false"}.get(kind, "a valid value")
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, bool) and action.type in (int, float):
            raise ConfigError(f"{source}: {key}: got {item!r}; write {example}")
        if isinstance(item, list | dict):
            raise ConfigError(f"{source}: {key}: got a nested {type(item).__name__} {one_line(item, 60)}; write a "
                              "flat list")
        try:
            converted = action.type(item if isinstance(item, str) else str(item))
        except (TypeError, ValueError, argparse.ArgumentTypeError) as e:
            raise ConfigError(f"{source}: {key}: {item!r} is not valid ({one_line(e)}); write {example}") from e
        if action.choices is not None and converted not in action.choices:
            choices = ", ".join(str(c) for c in action.choices)
            raise ConfigError(f"{source}: {key}: {item!r} is not one of: {choices}")


def load_yaml_config(path: str | os.PathLike, parser: MelodyArgumentParser | None = None) -> dict[str, Any]:
    """Read a recipe YAML; unknown keys and values of the wrong type are a `ConfigError` naming the file, the key
    and the fix. Keys are checked against `parser` (default: the training parser). `path` may name a shipped recipe
    (`find_recipe`).

    Examples:
        >>> load_yaml_config("tiny-debug")["preset"]                        # doctest: +SKIP
        'original'
    """
    import yaml

    path = find_recipe(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where} ({one_line(problem)}); fix the syntax") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read as a UTF-8 text file ({one_line(e)})") from e
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys to values, got {type(values).__name__}")
    if parser is None:  # the recipes' parser by default; imported here, as training builds on this module
        from .training.arguments import training_parser

        parser = training_parser()
    return parser.check_config(values, str(path))










_MOVED = {"TRAINING_ARGUMENTS": "training.arguments", "training_parser": "training.arguments",
          "evaluation_parser": "evaluation.arguments", "prepare_parser": "data.arguments"}
"""Names that lived here in hf_melody 0.1, importable for one more release with a `DeprecationWarning`."""


def __getattr__(name: str):
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(f"hf_melody.parser.{name} moved to hf_melody.{_MOVED[name]} in hf_melody 0.2; import it from "
                      "there", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(f"hf_melody.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
