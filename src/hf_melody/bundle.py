"""Where the files of a model bundle are: their names, the bundled checkpoints, and resolving a bundle given by name,
folder or Hub id to a local file. The lowest layer of `hub` and `tokenizer` (it imports neither).

Examples:
    >>> from hf_melody.bundle import TRAINING_INFO, resolve_file
    >>> Path(resolve_file("folk-base", TRAINING_INFO)).name
    'training_info.json'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import ModelLoadError
from .utils import remove_stale_siblings

CHECKPOINTS_DIR = Path(__file__).parent / "checkpoints"
TRAINING_INFO = "training_info.json"
"""What a bundle records about its training (data, steps, losses, the run fingerprint)."""
TRAINING_LOG = "training_log.json"
"""The Trainer's log history of a bundle: train and validation losses."""
TOKENIZER_FILE = "miditok.json"
"""The music tokenizer of a bundle (not `tokenizer.json`, which transformers would read as its own)."""
DEFAULT_MODEL = "folk-base"
# what `from_pretrained` passes on to the HF cache, as in transformers
HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only")
MAX_JSON_BYTES = 64 * 2**20
"""The largest JSON file of a bundle read (`read_json`): a config is about 1 kB, a BPE `miditok.json` well under a
megabyte."""


def read_json(path: str | os.PathLike, fix: str = "re-save the bundle with save_bundle()") -> Any:
    """The JSON value of a bundle file, or `ModelLoadError` naming the file and `fix`: unreadable, not JSON, over
    `MAX_JSON_BYTES` (checked before reading) or nested too deep for Python's parser.

    Examples:
        >>> read_json(resolve_file("folk-base", "config.json"))["model_type"]
        'gpt2'
    """
    path = Path(path)
    size = path.stat().st_size if path.is_file() else 0
    if size > MAX_JSON_BYTES:
        raise ModelLoadError(f"{path}: {size:,} bytes, over the {MAX_JSON_BYTES:,} a bundle's JSON file may hold "
                             f"(hf_melody.bundle.MAX_JSON_BYTES); {fix}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError as e:
        raise ModelLoadError(f"{path}: JSON nested too deep to read; {fix}") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{path}: not a readable JSON file ({type(e).__name__}); {fix}") from e


def bundled_checkpoints() -> list[str]:
    """Names of the checkpoints shipped inside the package (loadable offline by name).

    Examples:
        >>> bundled_checkpoints()
        ['deeper-thinner', 'folk-base', 'original', 'wider-shallower']
    """
    if not CHECKPOINTS_DIR.is_dir():
        return []
    return sorted(p.name for p in CHECKPOINTS_DIR.iterdir() if (p / "config.json").is_file())


def bundled_name(path: str | os.PathLike) -> str | None:
    """`"folk-base"` for the folder of the bundled checkpoint folk-base (or the name itself), else None."""
    p = Path(path) if path else None
    if p is None:
        return None
    if str(path) in bundled_checkpoints():
        return str(path)
    if p.is_dir() and p.resolve().parent == CHECKPOINTS_DIR.resolve():
        return p.name
    return None


def resolve_bundle(name_or_path: str | os.PathLike) -> str:
    """A local folder for bundled names and folders; Hub ids are returned unchanged (resolved by the HF cache)."""
    p = Path(name_or_path)
    if not p.exists() and p.parent.is_dir() and any(p.parent.glob(f".{p.name}.*.old")):
        remove_stale_siblings(p)  # a save killed between its two renames (file systems without atomic exchange)
    if p.is_dir():
        return str(p)
    if str(name_or_path) in bundled_checkpoints():
        return str(CHECKPOINTS_DIR / str(name_or_path))
    if p.exists():
        raise ModelLoadError(f"{p}: is a file; give the folder that holds config.json and model.safetensors")
    return str(name_or_path)


def resolve_file(name_or_path: str | os.PathLike, filename: str, **hub_kwargs) -> str:
    """Local path of `filename` inside a bundle given by name, folder or Hub id (HF cache; offline aware)."""
    where = resolve_bundle(name_or_path)
    if Path(where).is_dir():
        path = Path(where) / filename
        if not path.is_file():
            raise ModelLoadError(f"{where}: has no {filename}; is it a hf_melody bundle (save_bundle writes one)?")
        return str(path)
    from transformers.utils import cached_file

    try:
        path = cached_file(where, filename, **hub_kwargs)
    except Exception as e:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        raise ModelLoadError(
            f"{name_or_path!r}: not a folder, a bundled checkpoint ({', '.join(bundled_checkpoints()) or 'none'}) "
            f"or a Hub id with {filename} in the local HF cache"
            + (" (HF_HUB_OFFLINE is set; download it once online)" if offline else f" ({type(e).__name__})")
        ) from e
    if path is None:
        raise ModelLoadError(f"{name_or_path!r}: the Hub repo has no {filename}")
    return path
