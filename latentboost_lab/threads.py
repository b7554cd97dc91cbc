"""CPU threads that do not collapse when another process shares the cores (issue 20).

torch runs its CPU operators on OpenMP threads (one per core by default). With OpenMP's default
wait policy (GNU libgomp: spin 300,000 times at a barrier, then sleep), a thread that waits for
the other spins on its core; when a browser, a second kernel or another comparison holds one of
the cores, the thread that still has work gets it late and a 2-thread step becomes several times
slower than a 1-thread step. ``OMP_WAIT_POLICY=PASSIVE`` makes a waiting thread sleep at once.
Measured on this project's 2-core machine (``python benchmarks/bench_threads.py --out
benchmarks/results/``, SmallCNN, batch 128, channels_last, median ms per training step; the
table is in ``benchmarks/README.md``):

==========================  ========  ==========================  ======================
one busy-looping neighbour  1 thread  2 threads (default policy)  2 threads, PASSIVE
==========================  ========  ==========================  ======================
cross-entropy               88        234                         89
Latent Boost                91        260                         99
==========================  ========  ==========================  ======================

and on the idle machine 85 / 48 / 55 ms (cross-entropy): the passive policy took 1.00-1.09x one
thread's time beside the neighbour (never the default policy's 2.65-2.85x) and kept most of the
second thread's gain on the idle machine. So importing ``latentboost_lab`` sets
``OMP_WAIT_POLICY=PASSIVE`` in the environment unless it is set already (set it to ``ACTIVE``
before starting Python to keep spinning threads) and keeps torch's thread count. OpenMP reads
the policy once, when torch is first imported: it applies to a process (a notebook's kernel,
the command line, the runner's workers, which inherit the environment) that imports
``latentboost_lab`` before ``torch``, as every notebook here does in its first cell.
:func:`thread_settings` says what is in effect; :func:`latentboost_lab.provenance.provenance`
records it with every result.
"""

from __future__ import annotations

import os
import sys

__all__ = ["DEFAULT_WAIT_POLICY", "set_default_wait_policy", "thread_settings"]

#: The OpenMP wait policy set on import when the user has not chosen one.
DEFAULT_WAIT_POLICY = "PASSIVE"

#: Set once, on the package's import: the policy and whether it was in the environment before
#: torch (and its OpenMP runtime) started.
_STATE: dict = {}


def set_default_wait_policy() -> None:
    """Put ``OMP_WAIT_POLICY=PASSIVE`` in the environment unless it is set (the user's choice
    stands) or torch has started already (then OpenMP keeps the policy it read then, and the
    environment is left alone: a child process gets the passive policy only by importing
    ``latentboost_lab`` before torch itself, as the runner's workers do)."""
    torch_started = "torch" in sys.modules
    chosen = os.environ.get("OMP_WAIT_POLICY")
    if chosen is None and not torch_started:
        os.environ["OMP_WAIT_POLICY"] = DEFAULT_WAIT_POLICY
    _STATE.update(
        wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        set_by="user" if chosen is not None else ("latentboost_lab" if not torch_started else None),
        before_torch=not torch_started,
    )


def thread_settings() -> dict:
    """What this process runs with: ``threads`` and ``interop_threads`` (torch's), and
    ``omp_wait_policy``: the policy OpenMP read when torch started (``"default"`` when none was
    set then: libgomp's spin-then-sleep)."""
    import torch

    # A policy set by the user is taken to have been set before torch started (in the shell).
    applied = _STATE.get("before_torch") or _STATE.get("set_by") == "user"
    in_effect = _STATE.get("wait_policy") if applied else None
    return {
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "omp_wait_policy": in_effect or "default",
    }


# On import: the package imports this module before anything that imports torch.
set_default_wait_policy()
