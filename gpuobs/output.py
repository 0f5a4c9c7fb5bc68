"""Replacing one fleet's output folder so that a kill at any moment leaves the old or the new tree.

The new tree is written and synced in a hidden sibling folder, then exchanged with the fleet folder
in one step by Linux's renameat2(RENAME_EXCHANGE). The fleet folder stays a plain directory, so
generated output can be browsed and committed to git as files (a symlink to versioned folders would
be committed as a link). Where the C library or the filesystem cannot exchange (NFS, macOS), two
renames do it: a kill between them leaves the old tree under its `.NAME.old-PID` name, which the
next run puts back before writing. One run writes a folder at a time (a lock file there, removed
when the run ends), so leftovers that a run finds belong to a run that is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from gpuobs.errors import GpuobsError, OutputError

_LOCK = ".gpuobs.lock"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}  # kernel or filesystem without exchange


def write_tree(target: Path, files: dict[str, str]) -> None:
    """Replace the folder at `target` with exactly `files`. A symlinked `target` is written through:
    the link stays and the folder it points at is replaced, since a link there is deliberate (say,
    to the folder a Prometheus container mounts) and `gpuobs check` reads through it as well."""
    fleet = Path(os.path.realpath(target))
    try:
        fleet.parent.mkdir(parents=True, exist_ok=True)
        with locked(fleet.parent):
            _recover(fleet)
            _swap_in(_staged(fleet, files), fleet)
    except OSError as exc:
        raise OutputError(target, exc) from exc


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold `folder` for this run alone; another run fails at once rather than interleave its renames.
    The lock file is removed on release so committed output gains no file."""
    path = folder / _LOCK
    try:
        while (fd := _lock(path)) is None:
            pass
    except BlockingIOError:
        raise GpuobsError(f"{folder}: another gpuobs run is writing here; run again when it ends") from None
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _lock(path: Path) -> int | None:
    """A descriptor holding the lock file at `path`; None when the run before removed that file
    between our open and our lock, so that the lock guards nothing (the caller tries again)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _is_at(fd, path):
            return fd
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def _is_at(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _leftovers(fleet: Path, kind: str) -> list[Path]:
    """Folders a killed run left beside `fleet`: `new` (staged, or the old tree after an exchange),
    or `old` (the old tree moved aside by the fallback)."""
    pattern = re.compile(rf"\.{re.escape(fleet.name)}\.{kind}-\d+")
    return sorted(p for p in fleet.parent.iterdir() if pattern.fullmatch(p.name))


def _recover(fleet: Path) -> None:
    """Put back an old tree that a kill left moved aside with nothing in its place; drop the rest."""
    old = _leftovers(fleet, "old")
    if old and not os.path.lexists(fleet):
        os.rename(old.pop(), fleet)
        _fsync_dir(fleet.parent)
    for leftover in old + _leftovers(fleet, "new"):
        _remove(leftover)


def _staged(fleet: Path, files: dict[str, str]) -> Path:
    """The new tree, written and synced beside `fleet`; removed again if writing fails."""
    staging = fleet.parent / f".{fleet.name}.new-{os.getpid()}"
    staging.mkdir()
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_synced(path, text)
        for folder, _, _ in os.walk(staging, topdown=False):
            _fsync_dir(folder)
    except BaseException:
        _remove(staging)
        raise
    return staging


def _swap_in(staging: Path, fleet: Path) -> None:
    """Move the staged tree to `fleet`, then remove what was there once the swap is on disk."""
    if not os.path.lexists(fleet):
        os.rename(staging, fleet)
        _fsync_dir(fleet.parent)
        return
    if _exchange(staging, fleet):
        aside = staging
    else:
        aside = fleet.parent / f".{fleet.name}.old-{os.getpid()}"
        os.rename(fleet, aside)
        os.rename(staging, fleet)
    _fsync_dir(fleet.parent)
    _remove(aside)


@functools.cache
def _renameat2():
    """glibc's renameat2 (2.28 and later); None where the C library has none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step; False where the C library, kernel or filesystem cannot."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(b))


def _write_synced(path: Path, text: str) -> None:
    with open(path, "wb") as file:
        file.write(text.encode("utf-8"))
        file.flush()
        os.fsync(file.fileno())


def _fsync_dir(folder: str | Path) -> None:
    """Make a folder's entries (created or renamed files) durable, not only the files themselves."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
