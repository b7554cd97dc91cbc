"""Where a measurement was made: versions, machine, threads, device and the git commit.

One function, :func:`provenance`, written into every record that holds a measured number: the
runner's ``runs.json`` (its ``environment`` list), the performance suite's JSON
(``benchmarks/bench_suite.py``) and the time estimate. A reader needs it to judge a timing and
to reproduce a result.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

import torch

__all__ = ["cpu_name", "git_revision", "provenance"]


def provenance(device: torch.device | str | None = None) -> dict:
    """Versions, machine, threads, the CUDA device's name and the commit, as a flat dict.

    Keys: ``latentboost_lab``, ``python``, ``torch``, ``torchvision``, ``numpy``,
    ``scikit_learn`` (None when not installed), ``platform``, ``processor``, ``cpu``,
    ``cpu_count``, ``torch_threads``, ``omp_wait_policy`` (OpenMP's, as
    :func:`latentboost_lab.threads.thread_settings` reads it), ``cuda`` (the GPU's name, None without one), ``date``
    (UTC), ``git`` (see :func:`git_revision`) and, with ``device``, ``device``.
    """
    from importlib import metadata

    from . import __version__
    from .threads import thread_settings

    def version(package: str) -> str | None:
        try:  # the installed metadata: no need to import (slow) packages for their version
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    record = {
        "latentboost_lab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        **{p.replace("-", "_"): version(p) for p in ("torchvision", "numpy", "scikit-learn")},
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": thread_settings()["omp_wait_policy"],
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git": git_revision(),
    }
    if device is not None:
        record["device"] = str(device)
    return record


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; the platform's word elsewhere)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision() -> str | None:
    """The commit of the package's source when it runs from a git checkout, with "+changes"
    when its files differ from that commit; None otherwise (an installed wheel)."""
    package = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if changes else "")
