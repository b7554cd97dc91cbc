"""The shared ``runs.json``: several processes add runs to one file, and folders merge into one.

Writers: the sequential runner, the ``--jobs`` workers, Slurm jobs and shards on machines that
share a folder all add their runs to the same ``runs.json``. Each write is a read-modify-write
under an exclusive lock (:func:`locked`): the file on disk is read again, this process's new
runs are added to it, and it is replaced atomically. So no run is ever lost (a writer never
writes back a stale copy) and a reader never sees half a file.

The lock: ``fcntl.flock`` on a side file ``.runs.json.lock`` (Linux, macOS; on NFS, Linux
carries flock over the NFS lock manager). Where there is no ``fcntl`` (Windows), or the file
system refuses flock (Lustre mounted without ``-o flock``), the fallback is a lock file created
with ``O_CREAT | O_EXCL`` (atomic on local file systems and NFS v3+), waited for, and broken
after :data:`STALE_SECONDS` (a writer holds it for milliseconds; an older one was left by a
killed process).

Merging folders (:func:`latentboost_lab.results.merge_folders`, ``latentboost-lab merge``)
keeps a run found in several folders once when its copies are equal but for the timing fields
(:data:`TIMING`, :func:`same_run`). This module imports nothing of the package.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["STALE_SECONDS", "TIMING", "locked", "locked_update", "atomic_write", "same_run"]

#: A fallback lock file older than this is taken as left by a killed process and broken.
STALE_SECONDS = 120.0
#: Fields of a run that measure time: they differ between two runs of the same settings.
TIMING = ("seconds", "train_seconds")


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it: a crash mid-write never leaves
    a half-written file behind."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a ``runs.json``) for the duration of the block."""
    path = Path(path)
    lock_path = path.parent / f".{path.name}.lock"
    if fcntl is not None:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as err:
                if err.errno not in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK):
                    raise
            else:
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                return
        finally:
            os.close(fd)
    with _exclusive_file(path.parent / f".{path.name}.lockfile"):
        yield


@contextlib.contextmanager
def _exclusive_file(lock_path: Path, poll: float = 0.01) -> Iterator[None]:
    """The fallback lock: a file that only one process can create."""
    while True:
        try:
            fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - lock_path.stat().st_mtime > STALE_SECONDS:
                    lock_path.unlink()
                    continue
            time.sleep(poll)
            continue
        os.close(fd)
        break
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock_path.unlink()


def locked_update(path: str | os.PathLike, change: Callable[[dict | None], dict]) -> dict:
    """Under the lock: read ``path`` (None when absent), write ``change(document)`` atomically
    and return it."""
    path = Path(path)
    with locked(path):
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            document = None
        document = change(document)
        atomic_write(path, json.dumps(document, indent=1, default=float).encode())
    return document


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def same_run(a: dict, b: dict) -> bool:
    """Whether two copies of a run are equal but for their timing fields (:data:`TIMING`)."""
    return _without_timing(a) == _without_timing(b)
