"""ABC tunes as melodies: files, folders and text, parsed with music21 (the `corpus` extra) as the corpora are.

Folk musicians keep their tunes as ABC; one file may hold many tunes (one `X:` header each), and each becomes one
`Melody` with the id `<prefix>/<i>` and its `T:` title.

Examples:
    >>> from hf_melody.data.abc import read_abc
    >>> [melody] = read_abc("X:1\\nT:Scale\\nM:2/4\\nL:1/8\\nK:G\\nGABc|defg|\\n", melody_id="mine/scale")
    >>> melody.id, melody.title, melody.meter, len(melody.notes)                        # doctest: +SKIP
    ('mine/scale/0', 'Scale', '2/4', 8)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import CorpusError, MissingDependencyError, NoMelodyError
from .melody import Melody, SkipReport, _one_line
from .music21_corpora import parsed_melodies

ABC_SUFFIXES = (".abc",)
MAX_ABC_BYTES = 20_000_000
"""ABC text or files larger than this are refused before parsing (music21 needs ~0.1 s a tune)."""


def _music21_converter():
    try:
        from music21 import converter
    except ImportError as e:
        raise MissingDependencyError("reading ABC needs music21: pip install 'hf_melody[corpus]'") from e
    return converter


def _parse(source: str | os.PathLike, where: str):
    converter = _music21_converter()
    path = Path(source) if not isinstance(source, str) or "\n" not in source else None
    if path is not None and path.is_file():
        if path.stat().st_size > MAX_ABC_BYTES:
            raise CorpusError(f"{where}: {path.stat().st_size:,} bytes of ABC is over the {MAX_ABC_BYTES:,}-byte "
                              "limit; split the file")
        text = path.read_text(encoding="utf-8", errors="replace")
    elif isinstance(source, str) and ("X:" in source or "K:" in source):
        text = source
    else:
        raise CorpusError(f"{where}: neither an ABC file nor ABC text (no X: or K: header); give a .abc file or the "
                          "text of a tune")
    if len(text.encode()) > MAX_ABC_BYTES:
        raise CorpusError(f"{where}: the ABC text is over the {MAX_ABC_BYTES:,}-byte limit; split it")
    try:
        return converter.parse(text, format="abc")
    except Exception as e:  # music21 raises many unrelated types for bad ABC
        raise CorpusError(f"{where}: music21 could not parse the ABC ({type(e).__name__}: {_one_line(e, 120)}); "
                          "fix the tune") from e


def read_abc(source: str | os.PathLike, melody_id: str | None = None, style: str = "",
             report: SkipReport | None = None) -> list[Melody]:
    """The melodies of an ABC file or of ABC text (`X:`/`K:` headers), one per tune, ids `melody_id/<i>`.

    Tunes that cannot be converted are skipped into `report` (with one, a file of bad tunes gives `[]`); without
    one, a file with no usable tune raises `NoMelodyError`.

    Examples:
        >>> tunes = read_abc("my_session_tunes.abc")                                       # doctest: +SKIP
    """
    is_text = isinstance(source, str) and "\n" in source
    where = "ABC text" if is_text else str(source)
    prefix = melody_id or ("abc" if is_text else f"abc/{Path(source).stem}")
    melodies, skips = parsed_melodies(_parse(source, where), prefix, "abc", style, where)
    if report is not None:
        report.total += len(melodies) + len(skips)
        report.kept += len(melodies)
        report.skipped += [{"item": item, "error": err, "reason": reason} for item, err, reason in skips]
    elif not melodies:
        raise NoMelodyError(f"{where}: no usable tune ({'; '.join(r for _, _, r in skips[:2]) or 'empty'})")
    return melodies


def abc_files(folder: str | os.PathLike) -> list[Path]:
    """All `.abc` files below `folder`, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in ABC_SUFFIXES and p.is_file())


def iter_abc_files(files: list[Path], root: Path, report: SkipReport, progress: bool = True) -> Iterator[Melody]:
    """The melodies of ABC `files` below `root` (ids `<root name>/<relative path>/<i>`); bad files and tunes are
    skipped into `report`."""
    from tqdm.auto import tqdm

    for path in tqdm(files, desc=f"reading {root.name} (ABC)", unit="file", disable=not progress):
        rel = path.relative_to(root).with_suffix("").as_posix() if path != root else path.stem
        try:
            yield from read_abc(path, melody_id=f"{root.stem if path == root else root.name}/{rel}", report=report)
        except (CorpusError, NoMelodyError) as e:
            report.total += 1
            report.add(rel, e)
