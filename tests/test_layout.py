"""The package's shape: subpackages by concept in layers, no import circle, at most 12 modules at the top, no module
past ~450 lines unless it holds one concept, the 0.1 module paths still importable, documented public API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hf_melody

PACKAGE = Path(hf_melody.__file__).parent
MAX_LINES = 450
ONE_CONCEPT = {
    "hf_melody.grammar.remi": "REMIGrammar: the state machine and its legal-token search are one class, no longer "
                              "split by a line count (two classes that called each other, issue 21)",
    "hf_melody.generation.configuration": "MelodyGenerationConfig: one dataclass, one field and check per option "
                                          "(the flags and docs are derived from it); each option adds lines",
    "hf_melody.cli": "the hf-melody command: one _add_<command> / cmd_<command> pair per sub-command, each short",
}
"""Modules allowed past MAX_LINES, each with its reason."""
MAX_TOP_LEVEL = 12
LAYERS = [
    {"errors"},
    {"utils", "_deprecated"},
    {"music", "parser", "bundle"},
    {"tokenizer"},
    {"cards"},
    {"hub"},
    {"data", "grammar", "modeling", "export"},
    {"harmony"},
    {"generation"},
    {"pipelines"},
    {"training"},
    {"evaluation"},
    {"metrics", "demo", "live"},
    {"cli"},
    {"hf_melody"},
]
"""Top-level modules and subpackages from the bottom up: an import between two of them goes strictly down."""


def _module_name(path: Path) -> str:
    parts = ["hf_melody", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "checkpoints" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_level(body: list[ast.stmt]):
    """Import statements that run when the module is imported (not in functions, classes or TYPE_CHECKING)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            yield from _module_level(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from _module_level(node.body + node.orelse + node.finalbody
                                     + [s for h in node.handlers for s in h.body])


def _resolve(name: str) -> str | None:
    """The module of ours that importing `name` runs (its longest prefix that is one of ours)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in _module_level(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from . import x` imports the submodule x when there is one
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        found |= {t for t in map(_resolve, (t for t in targets if t.split(".")[0] == "hf_melody")) if t}
    return found - {module}


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of hf_melody it imports at module level."""
    return {m: _imports(m, p) for m, p in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as `[a, b, ..., a]`, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_the_graph_sees_relative_and_absolute_imports():
    graph = import_graph()
    assert "hf_melody.music" in graph["hf_melody.tokenizer"]
    assert "hf_melody.evaluation.statistics" in graph["hf_melody.evaluation.sampling"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def _room(module: str) -> str:
    """The top-level module or subpackage a module belongs to (`hf_melody` for the package's own __init__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hf_melody"


def _layer(room: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if room in layer)


def test_every_room_has_a_layer():
    rooms = {_room(m) for m in MODULES}
    assert rooms <= set().union(*LAYERS), f"add {sorted(rooms - set().union(*LAYERS))} to LAYERS"


def test_imports_go_down_the_layers():
    upward = sorted(f"{m} -> {n}" for m, deps in import_graph().items() for n in deps
                    if _room(m) != _room(n) and _layer(_room(n)) >= _layer(_room(m)))
    assert not upward, f"imports that climb (or cross) the layers: {upward}"


def _closure(module: str, graph: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        for n in graph.get(todo.pop(), ()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("hf_melody.data")))
def test_building_a_dataset_imports_nothing_of_generation(module):
    reached = _closure(module, import_graph())
    climbing = sorted(m for m in reached if _room(m) in {"generation", "grammar", "pipelines", "modeling", "export",
                                                          "training", "evaluation"})
    assert not climbing, f"{module} imports {climbing}"


def test_at_most_12_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, f"{len(top)} modules at the top of the package: {top}"


@pytest.mark.parametrize("package", sorted(m for m, p in MODULES.items() if p.name == "__init__.py"))
def test_every_subpackage_says_what_it_holds(package):
    doc = ast.get_docstring(ast.parse(MODULES[package].read_text())) or ""
    assert len(doc.split()) >= 8, f"{package}/__init__.py needs a docstring saying what the subpackage holds"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module):
    lines = len(MODULES[module].read_text().splitlines())
    limit = 700 if module in ONE_CONCEPT else MAX_LINES
    assert lines <= limit, f"{module} has {lines} lines; split it by concept (at most {MAX_LINES})"


@pytest.mark.parametrize("old", sorted(__import__("hf_melody._deprecated", fromlist=["MOVED"]).MOVED))
def test_old_module_paths_import_with_a_warning(old):
    import importlib
    import sys
    import warnings

    from hf_melody._deprecated import MOVED

    sys.modules.pop(f"hf_melody.{old}", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        namespace: dict = {}  # an import statement, as a user writes it (import_module's own frame would be blamed)
        exec(compile(f"import hf_melody.{old} as module", __file__, "exec"), namespace)
        module = namespace["module"]
    [warning] = [w for w in caught if issubclass(w.category, DeprecationWarning) and MOVED[old][0] in str(w.message)]
    assert warning.filename == __file__  # it points at the import, so the default filters show it to the importer
    new = importlib.import_module(f"hf_melody.{MOVED[old][0]}")
    name = next(n for n, v in sorted(vars(new).items()) if not n.startswith("_") and callable(v)
                and getattr(v, "__module__", "") == new.__name__)
    assert getattr(module, name) is getattr(new, name)
    with pytest.raises(AttributeError, match="moved to"):
        module.no_such_name  # noqa: B018 - the attribute lookup is what is tested


def _attribute_docstrings() -> set[str]:
    """Module-level names of the package followed by a string (the attribute docstring convention)."""
    names = set()
    for path in MODULES.values():
        body = ast.parse(path.read_text()).body
        for node, after in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


@pytest.mark.parametrize("name", hf_melody.__all__)
def test_public_names_are_documented_with_a_call(name):
    obj = getattr(hf_melody, name)
    if not callable(obj):  # a constant: documented by the string below its assignment
        assert name in _attribute_docstrings(), f"hf_melody.{name} has no docstring below its assignment"
        return
    doc = obj.__doc__ or ""
    assert doc.strip(), f"hf_melody.{name} has no docstring"
    assert ">>>" in doc, f"the docstring of hf_melody.{name} shows no call (add an Example: section)"


def test_readme_layout_lists_every_module():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    layout = layout[:layout.index("```", layout.index("```") + 3)]
    listed = {line.split()[0] for line in layout.splitlines() if line.startswith("  ") and line.split()}
    ours = {p.name for p in PACKAGE.glob("*.py")} | {f"{p.name}/" for p in PACKAGE.iterdir()
                                                      if (p / "__init__.py").is_file()}
    assert not ours - listed, f"README's layout misses {sorted(ours - listed)}"
    assert not {n for n in listed if n.endswith(".py")} - ours, "README's layout lists modules that are gone"


def test_the_pitch_range_is_shown_the_same_everywhere():
    from hf_melody.bundle import CHECKPOINTS_DIR, bundled_checkpoints
    from hf_melody.generation.configuration import options_doc
    from hf_melody.music import PITCH_RANGE, PLACEMENT_RANGE, note_name, pitch_range_text, tokenizer_pitch_range

    lo, hi = PITCH_RANGE
    assert tokenizer_pitch_range(hf_melody.MelodyTokenizer()) == PITCH_RANGE
    assert pitch_range_text() in " ".join(options_doc().split())  # the flag and the pipeline's help
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"{note_name(lo)}..{note_name(hi)}" in readme
    assert f"{note_name(PLACEMENT_RANGE[0])}..{note_name(PLACEMENT_RANGE[1])}" in readme
    for name in bundled_checkpoints():
        card = (CHECKPOINTS_DIR / name / "README.md").read_text()
        assert f"pitches {note_name(lo)}–{note_name(hi)} (MIDI {lo}–{hi})" in card, name


@pytest.mark.parametrize("name", ["training_parser", "evaluation_parser", "prepare_parser", "TRAINING_ARGUMENTS"])
def test_parsers_that_moved_out_of_parser_still_import_with_a_warning(name):
    import importlib

    from hf_melody import parser

    with pytest.warns(DeprecationWarning, match=name):
        old = getattr(parser, name)
    assert old is getattr(importlib.import_module(f"hf_melody.{parser._MOVED[name]}"), name)
