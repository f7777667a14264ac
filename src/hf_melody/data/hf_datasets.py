"""Melodies from the `datasets` world: a `Dataset` / `DatasetDict` with a column of MIDI bytes, MIDI file paths or
ABC text; a parquet, arrow, jsonl/json or csv file; a `save_to_disk` folder; a dataset repository folder; a Hub
dataset id (through `datasets.load_dataset`, so the HF cache and `HF_HUB_OFFLINE` apply).

Columns are found by name: the data in the first of `midi`, `path`, `abc` that the dataset has, and optional `id`,
`title` and `style` columns carried into each `Melody`; `columns={"midi": "audio_bytes", "id": "tune"}` renames
them. A bad row is skipped into the `SkipReport` like a bad file.

Examples:
    >>> from datasets import Dataset
    >>> from hf_melody import load_melodies
    >>> ds = Dataset.from_dict({"midi": [open("tests/fixtures/kinder0_0.mid", "rb").read()], "id": ["hansel"]})
    >>> melodies, report = load_melodies(ds, progress=False)
    >>> melodies[0].id, report.summary()
    ('dataset/hansel', '1 of 1 kept, 0 skipped')
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import CorpusError, MidiReadError, NoMelodyError
from .abc import read_abc
from .melody import Melody, SkipReport, _one_line

DATA_ROLES = ("midi", "path", "abc")
"""Where a row's melody is, in the order columns are looked for: MIDI bytes, a file path (MIDI or ABC), ABC text."""
META_ROLES = ("id", "title", "style")
"""Optional columns carried into each `Melody`."""
TABLE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".jsonl": "json", ".json": "json", ".csv": "csv"}
"""File suffix -> the `datasets` builder that reads it."""
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_dataset(obj: Any) -> bool:
    """Whether `obj` is a `datasets.Dataset` or `DatasetDict` (without importing datasets for plain specs)."""
    return type(obj).__module__.startswith("datasets.") and hasattr(obj, "column_names")


def looks_like_hub_id(spec: str) -> bool:
    """`org/name`, not a local path: what `load_melodies` hands to `datasets.load_dataset`."""
    return bool(_HUB_ID.match(spec)) and not Path(spec).exists()


def open_dataset(spec: str | os.PathLike):
    """The `Dataset`/`DatasetDict` a local spec names (a table file, a `save_to_disk` folder or a dataset
    repository folder of table files), or None when it names none (a MIDI/ABC folder, a corpus...)."""
    path = Path(spec)
    try:
        if path.is_file() and path.suffix.lower() in TABLE_BUILDERS:
            from datasets import load_dataset

            return load_dataset(TABLE_BUILDERS[path.suffix.lower()], data_files=str(path), split="train")
        if path.is_dir() and any((path / f).is_file() for f in ("dataset_dict.json", "state.json")):
            from datasets import load_from_disk

            return load_from_disk(str(path))
        if path.is_dir() and not any(p.suffix.lower() in (".mid", ".midi", ".abc") for p in path.rglob("*")) and \
                any(p.suffix.lower() in TABLE_BUILDERS for p in path.rglob("*")):
            from datasets import load_dataset

            return load_dataset(str(path))
    except Exception as e:  # datasets raises many types for unreadable files
        raise CorpusError(f"{spec}: cannot be read as a dataset ({type(e).__name__}: {_one_line(e, 160)}); check "
                          "the file") from e
    return None


def load_hub_dataset(spec: str):
    """`datasets.load_dataset(spec)` with a `CorpusError` that says what to do when it fails (offline, unknown)."""
    from datasets import load_dataset

    try:
        return load_dataset(spec)
    except Exception as e:  # DatasetNotFoundError, ConnectionError, offline errors...
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        hint = " (offline: only datasets already in the HF cache load)" if offline else ""
        raise CorpusError(f"{spec!r} is not a corpus, a local folder or file, and not a loadable Hub dataset"
                          f"{hint}: {type(e).__name__}: {_one_line(e, 160)}") from e


def _columns(column_names: list[str], columns: Mapping[str, str] | None, where: str) -> dict[str, str]:
    """role -> column: the renamed ones first, then the default names that exist."""
    columns = dict(columns or {})
    unknown = set(columns) - set(DATA_ROLES) - set(META_ROLES)
    if unknown:
        raise CorpusError(f"unknown column role(s) {sorted(unknown)}; use {', '.join(DATA_ROLES + META_ROLES)}")
    missing = sorted(c for c in columns.values() if c not in column_names)
    if missing:
        raise CorpusError(f"{where}: no column {missing[0]!r} (columns: {', '.join(column_names)})")
    found = {role: columns.get(role, role) for role in DATA_ROLES + META_ROLES
             if columns.get(role, role) in column_names}
    data = [role for role in DATA_ROLES if role in found]
    if not data:
        raise CorpusError(f"{where}: no melody column; name one midi (MIDI bytes), path (file paths) or abc (ABC "
                          f"text), or map yours, e.g. columns={{'midi': '{column_names[0]}'}} (columns: "
                          f"{', '.join(column_names)})")
    return {r: c for r, c in found.items() if r in META_ROLES or r == data[0]}


def _row_melodies(role: str, value: Any, melody_id: str, report: SkipReport) -> list[Melody]:
    from .corpora import read_midi

    if role == "midi":
        if isinstance(value, Mapping):  # a datasets binary/file feature: {"bytes": ..., "path": ...}
            value = value.get("bytes") or value.get("path")
        if not isinstance(value, bytes | bytearray | str):
            raise MidiReadError(f"{melody_id}: the midi value is a {type(value).__name__}; give the bytes of a .mid")
        return [read_midi(bytes(value) if not isinstance(value, str) else value, melody_id=melody_id,
                          source="dataset")]
    if role == "path":
        if not isinstance(value, str):
            raise MidiReadError(f"{melody_id}: the path value is a {type(value).__name__}; give a file path")
        if Path(value).suffix.lower() == ".abc":
            return read_abc(value, melody_id=melody_id, report=report)
        return [read_midi(value, melody_id=melody_id, source="dataset")]
    if not isinstance(value, str):
        raise NoMelodyError(f"{melody_id}: the abc value is a {type(value).__name__}; give the text of a tune")
    return read_abc(value, melody_id=melody_id, report=report)


def melodies_from_dataset(ds, name: str = "dataset", report: SkipReport | None = None,
                          columns: Mapping[str, str] | None = None, progress: bool = True) -> list[Melody]:
    """The melodies of a `Dataset` (one or more per row) or of every split of a `DatasetDict` (ids
    `name/<split>/<id>`); rows that hold no readable melody are skipped into `report`.

    Examples:
        >>> melodies = melodies_from_dataset(ds, columns={"midi": "file_bytes"})        # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    report = report if report is not None else SkipReport()
    if not hasattr(ds, "features") and hasattr(ds, "items"):  # a DatasetDict
        return [m for split, part in ds.items()
                for m in melodies_from_dataset(part, f"{name}/{split}", report, columns, progress)]
    cols = _columns(list(ds.column_names), columns, name)
    role = next(r for r in DATA_ROLES if r in cols)
    out: list[Melody] = []
    for i, row in enumerate(tqdm(ds, desc=f"reading {name}", unit="row", disable=not progress)):
        rid = str(row[cols["id"]]) if "id" in cols and row[cols["id"]] is not None else str(i)
        melody_id = f"{name}/{rid}"
        try:
            found = _row_melodies(role, row[cols[role]], melody_id, report)
        except (MidiReadError, NoMelodyError, CorpusError) as e:
            report.total += 1
            report.add(melody_id, e)
            continue
        if role != "abc" and not (role == "path" and str(row[cols[role]]).lower().endswith(".abc")):
            report.total += 1
            report.kept += 1
        for m in found:
            m.title = str(row[cols["title"]] or "") if "title" in cols else m.title
            m.style = str(row[cols["style"]] or "") if "style" in cols else m.style
        out += found
    return out
