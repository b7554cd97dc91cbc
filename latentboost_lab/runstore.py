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

Merging folders (:func:`merge_folders`, ``latentboost-lab merge OUT IN1 IN2 ...``): the runs
of folders made with the same settings, as the runner checks them. A run found in several
folders is kept once when its copies are equal but for the timing fields (:data:`TIMING`),
and is an error naming the run when they differ; no run is ever dropped silently.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["STALE_SECONDS", "TIMING", "locked", "locked_update", "merge_folders", "same_run"]

#: A fallback lock file older than this is taken as left by a killed process and broken.
STALE_SECONDS = 120.0
#: Fields of a run that measure time: they differ between two runs of the same settings.
TIMING = ("seconds", "train_seconds")


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
    from .training import atomic_write

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


def merge_folders(out: str | os.PathLike, inputs: Sequence[str | os.PathLike], command: str):
    """Merge the ``runs.json`` of ``inputs`` into ``out/runs.json`` (its runs, when it exists,
    count as the first input) and return the merged :class:`~latentboost_lab.experiments.Results`.

    Refused, before anything is written: an input without a ``runs.json``, folders made with
    other settings (named with the settings that differ), and a run found in two folders with
    different results (named). Equal copies of a run (but for the timing fields) are kept once:
    the first in the order given.
    """
    from .experiments import Results, _merge_arms, settings_difference

    out = Path(out)
    if not inputs:
        raise ValueError("inputs: name at least one folder to merge")
    sources = [Path(p) for p in inputs]
    if (out / "runs.json").exists() and out.resolve() not in {p.resolve() for p in sources}:
        sources.insert(0, out)
    loaded = [Results.load(p) for p in sources]
    first = loaded[0]
    for other in loaded[1:]:
        differ = settings_difference(first.config.get("fixed", {}), other.config.get("fixed", {}))
        if differ:
            raise ValueError(
                f"merge: {other.path.parent} was made with other settings than "
                f"{first.path.parent} ({differ}); only folders of the same comparison merge"
            )
    runs: dict[str, dict] = {}
    where: dict[str, Path] = {}
    for results in loaded:
        for key, run in results.runs.items():
            if key in runs and not same_run(runs[key], run):
                raise ValueError(
                    f"merge: the run {key} is in {where[key]} and in {results.path.parent} with "
                    "different results; remove it from one of them (or keep the folders apart)"
                )
            if key not in runs:
                runs[key], where[key] = run, results.path.parent
    arms: list[dict] = []
    for results in loaded:
        arms = _merge_arms(arms, results.config.get("arms", []))
    document = {
        "format": first.document.get("format", "latentboost_lab.runs/1"),
        "config": {
            **first.config,
            "arms": arms,
            "seeds": sorted({s for r in loaded for s in r.config.get("seeds", [])}),
        },
        "commands": [c for r in loaded for c in r.document.get("commands", [])] + [command],
        "environment": [e for r in loaded for e in r.document.get("environment", [])],
        "runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)

    def replace(on_disk: dict | None) -> dict:
        # Another writer may have added a run to out since it was read: keep it too.
        for key, run in ((on_disk or {}).get("runs") or {}).items():
            if key not in document["runs"]:
                document["runs"][key] = run
        return document

    return Results(locked_update(out / "runs.json", replace), out / "runs.json")
