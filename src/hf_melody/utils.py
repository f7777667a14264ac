"""Small shared helpers: atomic file writes and atomic folder swaps."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file and a rename, so no partial file is ever left behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Text version of `atomic_write_bytes` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


# ---- atomic folders ------------------------------------------------------------------------------------------
_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`); False where that is unsupported."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def publish_folder(staging: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Move the finished folder `staging` to `target`, replacing an existing `target` in one atomic swap.

    Readers (and a process killed at any moment) see either the old `target` or the new one, never a mix. On file
    systems without an atomic exchange, the old folder is first renamed to a hidden `.old` sibling, which
    `remove_stale_siblings` puts back if the process died between the two renames.

    Examples:
        >>> publish_folder("out/.model.123.partial", "out/model")          # doctest: +SKIP
    """
    import shutil

    staging, target = Path(staging), Path(target)
    if not target.exists():
        os.rename(staging, target)
        return target
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old folder
        return target
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_siblings(target: str | os.PathLike) -> None:
    """Clean up after a process that died while publishing `target`: drop its half-written `.partial` folder and
    put a stranded `.old` folder back if `target` itself is missing. Folders of live processes are left alone."""
    import shutil

    target = Path(target)
    if not target.parent.is_dir():
        return
    for p in sorted(target.parent.glob(f".{target.name}.*")):
        pid = p.name[len(target.name) + 2:].split(".")[0]
        if not p.is_dir() or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        if p.name.endswith(".old") and not target.exists():
            os.rename(p, target)
        elif p.name.endswith((".old", ".partial")):
            shutil.rmtree(p, ignore_errors=True)


def staging_folder(target: str | os.PathLike) -> Path:
    """A new empty hidden sibling of `target` to write into before `publish_folder` (named after this process)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=".partial"))


def link_tree(src: str | os.PathLike, dst: str | os.PathLike, skip: set[str] = frozenset(),
              only: set[str] | None = None) -> None:
    """Recreate the top-level entries of `src` (except `skip`, or just `only`) inside `dst` as hard links (copies
    where the file system has no hard links): cheap, and `src` is left untouched."""
    import shutil

    src, dst = Path(src), Path(dst)
    for entry in src.iterdir():
        if entry.name in skip or (only is not None and entry.name not in only):
            continue
        target = dst / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry), target)
        elif entry.is_dir():
            shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, target)


def _link_or_copy(src, dst) -> None:
    import shutil

    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
