"""Small shared helpers: atomic file writes and atomic folder swaps (both with the usual permissions), write
failures on a full disk told plainly (`DiskFullError`), and folder locks (`lock_folder`)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import DiskFullError, OutputError

DISK_FULL_ERRNOS = {errno.ENOSPC: "ENOSPC", errno.EDQUOT: "EDQUOT", errno.EFBIG: "EFBIG"}
"""The errors of a write that ran out of room: the disk is full, a quota is reached, a file-size limit is hit.
All three are told alike (`DiskFullError`): the fix is the same."""
DISK_FULL_FIX = "free space there or write elsewhere (--output-dir / --output_dir)"
_OS_ERROR = re.compile(r"os error (\d+)")  # how safetensors (Rust) reports the errno of a failed write
_TORCH_WRITE = ("unexpected pos", "file write failed", "iostream error")  # torch.save's failed writes (no errno)


def _shown(path: str | os.PathLike) -> str:
    """`path` as printable text: bytes that are not UTF-8 shown as `\\xff` escapes (as `data.corpora.display_path`)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def disk_full_error(error: BaseException, path: str | os.PathLike) -> DiskFullError | None:
    """The `DiskFullError` to raise for `error`, a failed write of `path`, if it was one for lack of room, else None.

    Reads the errno of an `OSError`, the `os error N` of safetensors' `SafetensorError`, and torch.save's
    `unexpected pos` / `file write failed` (its writer keeps no errno: a write that stops part-way is taken as a full
    disk).

    Examples:
        >>> disk_full_error(OSError(28, "No space left on device"), "out/tune.mid")           # doctest: +ELLIPSIS
        DiskFullError('out/tune.mid: No space left on device (ENOSPC); free space there or write elsewhere ...')
        >>> disk_full_error(ValueError("bad"), "out/tune.mid") is None
        True
    """
    code = getattr(error, "errno", None) if isinstance(error, OSError) else None
    if code is None and (found := _OS_ERROR.search(str(error))):
        code = int(found.group(1))
    if code in DISK_FULL_ERRNOS:
        return DiskFullError(f"{_shown(path)}: {os.strerror(code)} ({DISK_FULL_ERRNOS[code]}); {DISK_FULL_FIX}")
    if isinstance(error, RuntimeError) and any(s in str(error) for s in _TORCH_WRITE):
        return DiskFullError(f"{_shown(path)}: the write stopped part-way (the disk is full, or a quota or "
                             f"file-size limit was hit); {DISK_FULL_FIX}")
    return None


@contextlib.contextmanager
def disk_full_told_plainly(path: str | os.PathLike) -> Iterator[None]:
    """Turn a write failure for lack of room inside the block into a one-line `DiskFullError` naming `path`.

    Examples:
        >>> with disk_full_told_plainly("out/checkpoint-10"):                                 # doctest: +SKIP
        ...     torch.save(state, "out/checkpoint-10/optimizer.pt")
        Traceback (most recent call last):
        hf_melody.errors.DiskFullError: out/checkpoint-10: the write stopped part-way (the disk is full, ...); ...
    """
    try:
        yield
    except DiskFullError:
        raise
    except Exception as e:  # OSError, torch's RuntimeError, safetensors' SafetensorError
        told = disk_full_error(e, path)
        if told is None:
            raise
        raise told from e


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file and a rename, so no partial file is ever left behind.

    The file gets the usual permissions (0666 less the umask). A disk that fills up raises `DiskFullError`.

    Examples:
        >>> atomic_write_bytes("out/notes.txt", b"C D E")                                     # doctest: +SKIP
        PosixPath('out/notes.txt')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # 0o666 through the umask, as open() does (mkstemp would make it 0600)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        told = disk_full_error(e, path) if isinstance(e, OSError) else None
        if told is not None:
            raise told from e
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Text version of `atomic_write_bytes` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def current_umask() -> int:
    """The process's umask, read without changing it where the system tells it (`/proc/self/status` on Linux).

    Examples:
        >>> oct(current_umask())                                                             # doctest: +SKIP
        '0o22'
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and put back (another thread creating a file meanwhile gets 022)
    os.umask(mask)
    return mask


def give_usual_permissions(paths) -> None:
    """Set files to 0666 and folders to 0777, less the umask, as `open()` and `mkdir` make them: for files that a
    writer made private (safetensors writes 0600 files, `tempfile` 0600/0700) in a folder about to be published.

    Examples:
        >>> give_usual_permissions(Path("out/.bundle.123.partial").iterdir())                # doctest: +SKIP
    """
    mask = current_umask()
    for p in paths:
        p = Path(p)
        if not p.is_symlink():
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def check_utf8_path(path: str | os.PathLike, name: str, fix: str) -> None:
    """`OutputError` (before any work) if `path` is not valid UTF-8, e.g. a folder name with the byte 0xff that
    `os.fsdecode` turned into `'\\udcff'`: the model card, `training_info.json` and the Hub record paths as text.

    Examples:
        >>> check_utf8_path(os.fsdecode(b"run-\\xff"), "output_dir", "choose another --output_dir")
        Traceback (most recent call last):
        hf_melody.errors.OutputError: output_dir='run-\\xff' is not valid UTF-8 (byte 0xff); the model card \
records it as text: choose another --output_dir
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = ord(text[e.start])
        what = f"byte 0x{bad - 0xDC00:02x}" if 0xDC80 <= bad <= 0xDCFF else f"character U+{bad:04X}"
        raise OutputError(f"{name}='{_shown(text)}' is not valid UTF-8 ({what}); the model card records it as text: "
                          f"{fix}") from None


LOCK_FILE = ".hf_melody.lock"
"""The file inside a folder that a writer (a training run, `hf-melody generate`) holds an exclusive `flock` on
(`lock_folder`); it records the holder (pid, host, start). The lock goes with the process: a killed run leaves
nothing to clean up."""


class FolderLock:
    """An exclusive `flock` held on a folder itself (its directory descriptor): nothing is written into the folder.
    `close()` releases it; so does the end of the process."""

    def __init__(self, fd: int):
        self.fd: int | None = fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _flock_holder(path: Path) -> str:
    """`pid N` of the process holding a `flock` on `path`, read from Linux's `/proc/locks`; else "holder unknown"."""
    try:
        st = os.stat(path)
        want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks", encoding="ascii") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == want and fields[4].isdigit():
                    return f"pid {fields[4]}"
    except (OSError, ValueError):
        pass
    return "holder unknown"


def lock_folder(folder: str | os.PathLike, what: str, fix: str, error: type[Exception] = OutputError,
                record: bool = True) -> IO | FolderLock | None:
    """Take an exclusive lock on `folder` (created if missing) at once, or raise `error` naming the holder:
    `"{what} ({holder}); {fix}"`. Close the returned object to release it (None where the system has no `fcntl`,
    e.g. Windows: no lock).

    With `record` (training runs) the lock is on `LOCK_FILE` inside the folder, which records the holder's pid, host
    and start; without it (`hf-melody generate`) the lock is on the folder itself and nothing is written into it
    (the holder's pid is read from `/proc/locks` where there is one).

    Examples:
        >>> what, fix = "--output-dir out/melodies is in use by another run", "wait for it to finish"
        >>> lock = lock_folder("out/melodies", what, fix, record=False)                        # doctest: +SKIP
        >>> lock_folder("out/melodies", what, fix, record=False)           # while it is held  # doctest: +SKIP
        Traceback (most recent call last):
        hf_melody.errors.OutputError: --output-dir out/melodies is in use by another run (pid 4242); wait ...
    """
    import socket
    import time

    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not record:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise error(f"{what} ({_flock_holder(folder)}); {fix}") from None
        return FolderLock(fd)
    handle = open(folder / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "holder unknown"
        handle.close()
        raise error(f"{what} ({holder}); {fix}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
    handle.flush()
    return handle


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
    """A new empty hidden sibling of `target` to write into before `publish_folder` (named after this process),
    with the usual permissions (0777 less the umask), so the published folder is readable as any other."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        folder = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
        try:
            os.mkdir(folder, 0o777)  # the umask applies, as for any new folder (mkdtemp would make it 0700)
            return folder
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue


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
