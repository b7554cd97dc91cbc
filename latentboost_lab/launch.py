"""Many runs of a comparison at once: worker processes on one machine, or jobs on a cluster.

    run_jobs(config, "results/cifar10", jobs=4, devices=["cuda:0", "cuda:1"])   # one machine
    submit(config, "results/cifar10", launcher="slurm", partition="gpu", time_min=240)

A run is the unit of work (:func:`run_one`): it trains one (seed, arm) of the comparison, from
its checkpoint if there is one, and adds its entry to the shared ``runs.json`` under a lock
(:mod:`latentboost_lab.runstore`). A run depends only on the configuration, its seed and its
arm (the runner seeds the data, the weights and the batches per run), so where and in which
order it runs does not change its entry: on the CPU with the same number of threads, the
entries equal the sequential runner's but for the timing fields (tests/test_parallel.py).

The engines are existing ones, nothing is scheduled here:

- :func:`run_jobs`: ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method
  (CUDA cannot be used in a forked child); each worker process takes one device of ``devices``
  for its lifetime and runs with ``threads`` CPU threads (default 1).
- :func:`submit`: ``submitit`` (``pip install "latentboost-lab[cluster]"``), one job per run
  (a Slurm job array). Slurm sends the job USR2 90 s before its time limit, and on pre-emption
  where the cluster sets ``SlurmctldParameters=preempt_send_user_signal``; submitit then calls
  :meth:`RunJob.checkpoint` and requeues the job, which continues from the run's last epoch
  checkpoint. All of a run's state is that file, so any restart continues from it too (a job
  Slurm requeues without the signal, or the same ``compare --launcher slurm`` submitted again).
  ``launcher="local"`` runs the same jobs as local processes (submitit's LocalExecutor): all at
  once, so it is for trying the path, not for many runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from .experiments import (
    ExperimentConfig,
    Results,
    open_experiment,
    resolve_memory_format,
    run_key,
)

__all__ = ["LAUNCHERS", "RunJob", "parse_devices", "run_jobs", "run_one", "submit"]

LAUNCHERS = ("local", "slurm")
_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")

# A worker process's state: its device, and the last seed's data (the sequential runner, too,
# loads a seed's data once for all its arms).
_WORKER: dict = {"device": None, "data": (None, None, {})}


def parse_devices(text: str | Sequence[str]) -> list[str]:
    """``"cuda:0,cuda:1"`` -> ``["cuda:0", "cuda:1"]``; each of cpu, mps, cuda, cuda:K."""
    names = [d.strip() for d in text.split(",")] if isinstance(text, str) else list(text)
    bad = [d for d in names if not _DEVICE.match(d)]
    if not names or bad:
        raise ValueError(
            "devices must be a comma-separated list of cpu, mps, cuda or cuda:K, got "
            f"{text!r}" + (f" ({', '.join(map(repr, bad))} is not one)" if bad else "")
        )
    return names


def _set_threads(threads: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)  # BLAS and scikit-learn's OpenMP too, for the whole process


def _init_worker(devices, threads: int) -> None:
    _WORKER["device"] = devices.get()
    _set_threads(threads)


def run_one(
    config: ExperimentConfig,
    out_dir: str | os.PathLike,
    seed: int,
    arm_name: str,
    *,
    device: str | None = None,
    progress: bool = False,
) -> str:
    """Train one run of ``config`` (unless ``out_dir/runs.json`` has it already; from its
    checkpoint when there is one) and add it to ``runs.json``; return its key. ``out_dir``
    must hold the comparison's ``runs.json`` (:func:`run_jobs` and :func:`submit` write it
    first). ``device`` replaces ``config.device`` (it is not one of the compared settings)."""
    from .experiments import _load_data, _load_ood_sets, _train_one, checkpoint_path

    arm = next((a for a in config.arms if a.name == arm_name), None)
    if arm is None:
        raise ValueError(f"arm_name: {arm_name!r} is not an arm of the configuration")
    device = device or _WORKER["device"]
    if device is not None:
        config = dataclasses.replace(config, device=device)
    out_dir = Path(out_dir)
    key = run_key(arm, seed)
    results = Results.load(out_dir)
    if key in results.runs:
        return key
    # The folder's memory format (a config handed over unresolved: "auto" reads the folder's).
    config.memory_format = resolve_memory_format(config, results.config.get("fixed", {}))
    which = (json.dumps(config.to_dict(), default=str), seed)
    cached, data, ood_sets = _WORKER["data"]
    if cached != which:
        _WORKER["data"] = (None, None, {})  # free the last seed's data first
        data = _load_data(config, seed)
        ood_sets = _load_ood_sets(config, data, seed)
        _WORKER["data"] = (which, data, ood_sets)
    entry = _train_one(config, arm, seed, data, ood_sets, out_dir, progress)
    if entry is None:
        raise KeyboardInterrupt(f"interrupted during {key}; run again to continue")
    results.runs[key] = entry
    results.save()
    checkpoint_path(out_dir, arm, seed).unlink(missing_ok=True)
    return key


def _open(config: ExperimentConfig, out_dir, command: str | None, shard) -> tuple[Path, list]:
    """Check and open ``out_dir`` as the sequential runner does; the runs left to do."""
    out_dir, _, todo = open_experiment(config, out_dir, command, shard)
    return out_dir, todo


def _default_devices(config: ExperimentConfig) -> list[str]:
    """Every visible GPU when the configuration asks for one (auto or cuda), else its device."""
    import torch

    if config.device in ("auto", "cuda") and torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return [config.device]


def _check_devices(devices: list[str]) -> None:
    """Every device exists here, checked before any worker starts (a worker would fail late)."""
    import torch

    from .device import select_device

    for name in dict.fromkeys(devices):
        try:
            device = select_device(name)
        except ValueError as err:
            raise ValueError(f"devices: {err}") from None
        count = torch.cuda.device_count() if device.type == "cuda" else 0
        if device.type == "cuda" and device.index is not None and device.index >= count:
            raise ValueError(f"devices: {name} does not exist here ({count} GPUs)")


def run_jobs(
    config: ExperimentConfig,
    out_dir: str | os.PathLike,
    *,
    jobs: int,
    devices: str | Sequence[str] | None = None,
    threads: int = 1,
    shard: str | tuple[int, int] | None = None,
    command: str | None = None,
    progress: bool = True,
    report: bool = True,
) -> Results:
    """:func:`~latentboost_lab.experiments.run_experiment` with ``jobs`` worker processes.

    devices: worker i uses ``devices[i % len(devices)]`` (so ``jobs=4`` on two GPUs puts two
        workers on each); default: every visible GPU when ``config.device`` is auto or cuda,
        else ``config.device``.
    threads: CPU threads of each worker (torch, BLAS, OpenMP).

    The entries equal the sequential runner's (but for the timing fields, and the order of the
    keys in ``runs.json``: a run is added when it ends). A run that fails does not stop the
    others; the error, raised at the end, names every failed run (they resume from their
    checkpoints next time).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    from ._checks import check_int

    jobs = check_int("jobs", jobs, 1)
    threads = check_int("threads", threads, 1)
    devices = parse_devices(devices) if devices is not None else _default_devices(config)
    _check_devices(devices)
    out_dir, todo = _open(config, out_dir, command, shard)
    failed = {}
    if todo:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        for i in range(min(jobs, len(todo))):
            queue.put(devices[i % len(devices)])
        with ProcessPoolExecutor(
            min(jobs, len(todo)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(queue, threads),
        ) as pool:
            futures = {
                pool.submit(run_one, config, out_dir, seed, arm.name): run_key(arm, seed)
                for seed, arm in todo
            }
            try:
                for future in tqdm(as_completed(futures), "runs", len(todo), disable=not progress):
                    if future.exception() is not None:
                        failed[futures[future]] = future.exception()
            except KeyboardInterrupt:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    if failed:
        details = "; ".join(f"{k}: {type(e).__name__}: {e}" for k, e in failed.items())
        raise RuntimeError(f"{len(failed)} of {len(todo)} runs failed ({details})")
    results = Results.load(out_dir)
    if report:
        results.write_report()
    return results


class RunJob:
    """One run as a submitit job. submitit calls :meth:`checkpoint` when the job is pre-empted
    or times out, and requeues what it returns: the same job, which continues from the run's
    last epoch checkpoint on disk (nothing else is state)."""

    def __init__(self, config: ExperimentConfig, out_dir, seed: int, arm_name: str, threads):
        self.config, self.out_dir, self.seed, self.arm_name = config, str(out_dir), seed, arm_name
        self.threads = threads

    def __call__(self) -> str:
        if self.threads:
            _set_threads(self.threads)
        return run_one(self.config, self.out_dir, self.seed, self.arm_name)

    def checkpoint(self, *args, **kwargs):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)

    # submitit 1.5's signal handler looks for "checkpoint"; its later versions prefer this name.
    __submitit_checkpoint__ = checkpoint


def slurm_parameters(
    *,
    partition: str | None = None,
    time_min: int = 240,
    gpus_per_job: int = 1,
    cpus_per_job: int | None = None,
    mem_gb: float | None = None,
    array_parallelism: int | None = None,
    job_name: str = "latentboost",
) -> dict:
    """The options of ``submitit.SlurmExecutor.update_parameters`` (the sbatch lines)."""
    parameters = {"time": time_min, "gpus_per_node": gpus_per_job, "job_name": job_name}
    if partition:
        parameters["partition"] = partition
    if cpus_per_job:
        parameters["cpus_per_task"] = cpus_per_job
    if mem_gb:
        parameters["mem"] = f"{int(mem_gb * 1024)}MB"
    if array_parallelism:
        parameters["array_parallelism"] = array_parallelism
    return parameters


def submit(
    config: ExperimentConfig,
    out_dir: str | os.PathLike,
    *,
    launcher: str = "slurm",
    shard: str | tuple[int, int] | None = None,
    command: str | None = None,
    threads: int | None = None,
    jobs: int | None = None,
    partition: str | None = None,
    time_min: int = 240,
    gpus_per_job: int = 1,
    cpus_per_job: int | None = None,
    mem_gb: float | None = None,
) -> list:
    """Submit one job per run not yet in ``out_dir`` (a Slurm job array) and return the
    submitit jobs; their logs go to ``out_dir/submitit``. ``jobs``: at most this many run at
    once (Slurm's array parallelism). ``threads``: CPU threads per job (default: Slurm's
    ``cpus_per_job`` there, 1 with the local launcher). The report is written afterwards by
    ``latentboost-lab compare --report-only --out OUT`` (or :meth:`Results.write_report`).
    ``launcher="local"``: the jobs run as local processes, all at once, each with
    ``time_min`` as its time limit; CUDA_VISIBLE_DEVICES is left empty (one GPU each is what
    ``--jobs`` with ``--devices`` is for)."""
    from ._checks import check_choice

    check_choice("launcher", launcher, LAUNCHERS)
    try:
        import submitit
    except ImportError:
        raise ImportError(
            f"launcher {launcher!r} needs submitit: pip install 'latentboost-lab[cluster]'"
        ) from None
    out_dir, todo = _open(config, out_dir, command, shard)
    if not todo:
        return []
    folder = out_dir / "submitit" / "%j"
    if launcher == "slurm":
        executor = submitit.SlurmExecutor(folder)
        executor.update_parameters(
            **slurm_parameters(
                partition=partition,
                time_min=time_min,
                gpus_per_job=gpus_per_job,
                cpus_per_job=cpus_per_job,
                mem_gb=mem_gb,
                array_parallelism=jobs,
            )
        )
        threads = threads or cpus_per_job
    else:
        executor = submitit.LocalExecutor(folder)
        executor.update_parameters(timeout_min=time_min)
        threads = threads or 1
    return executor.submit_array([RunJob(config, out_dir, s, a.name, threads) for s, a in todo])
