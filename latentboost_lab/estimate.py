"""What a comparison will cost here, measured before committing hours:
:func:`estimate_time` trains each arm a few epochs in exactly the runner's setting, and
:func:`format_estimate` writes the table ``latentboost-lab compare --estimate`` prints.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from . import training
from ._checks import check_int
from .experiments import (
    ExperimentConfig,
    _build_run,
    _fit_kwargs,
    _load_data,
    _load_matching,
    _load_ood_sets,
    _ood_metrics,
    test_metrics,
)
from .provenance import provenance
from .results import run_key

__all__ = ["estimate_time", "format_estimate"]


def estimate_time(
    config: ExperimentConfig,
    *,
    epochs: int = 3,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict:
    """Measure what ``run_experiment(config, out_dir)`` would cost here, before committing hours.

    Each arm is trained for ``epochs`` epochs with the first seed, in exactly the comparison's
    setting (the same :func:`fit` arguments, a checkpoint written after every epoch into a
    temporary folder), and evaluated on the test split once (and against the OOD sets, with
    ``config.ood``: their loading counts with the data's); nothing is kept. An epoch is timed
    from the end of the one before to the end of its checkpoint, so it holds all of an epoch's
    cost (Magnet's cluster refresh, validation, the checkpoint). A run that trains the whole
    budget of ``config.epochs`` epochs is then estimated as: building the model, the first
    epoch as measured (it carries the start-up costs: first calls, ``torch.compile``), the
    median of the later epochs for each further epoch, and the test evaluation. Loading the
    data, once per seed, is measured once. Early stopping can only shorten a run; writing the
    report at the end is not counted. With ``out_dir`` holding a ``runs.json``, only the runs
    not yet in it are counted (and other settings there are refused, as
    :func:`run_experiment` would).

    Returns a dict with ``rows`` (per arm: ``epoch_times`` as measured, ``first_epoch_seconds``,
    ``epoch_seconds`` (median of the later epochs, or the first when only one ran) and their
    ``epoch_range``, ``train_seconds`` (the training part of an epoch), ``overhead_seconds``
    (the part of an epoch outside the epoch record's own timing: the checkpoint, the kept
    weights), ``build_seconds``, ``end_seconds`` (after the last epoch: the best weights put
    back), ``test_seconds``, ``run_seconds``,
    ``seconds_per_1000_images`` (a later epoch per 1,000 training images, to scale the figure
    to a larger training split: an epoch's cost grows with its number of steps), ``runs_left``),
    ``data_seconds``, ``n_train`` (after the validation share), ``steps_per_epoch``,
    ``total_seconds`` and the ``environment``.
    """
    if not isinstance(config, ExperimentConfig):
        raise TypeError(f"config must be an ExperimentConfig, got {type(config).__name__}")
    epochs = check_int("epochs", epochs, 1)
    if epochs > config.epochs:
        raise ValueError(
            f"epochs: the estimate would train {epochs} epochs, more than the comparison's "
            f"budget of {config.epochs}; measure at most {config.epochs}"
        )
    existing = _load_matching(config, Path(out_dir)) if out_dir is not None else None
    done = set(existing.runs) if existing is not None else set()
    seed = config.seeds[0]
    # Once per process, not per run: the first optimizer imports torch._dynamo (seconds).
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    started = time.perf_counter()
    data = _load_data(config, seed)
    ood_sets = _load_ood_sets(config, data, seed)
    data_seconds = time.perf_counter() - started
    n_train = training._split_size(data, "train")
    rows = []
    with tempfile.TemporaryDirectory(prefix="latentboost_estimate_") as scratch:
        for arm in config.arms:
            started = time.perf_counter()
            model, loss = _build_run(config, arm, data, seed)
            build_seconds = time.perf_counter() - started
            # Each epoch's end, after its checkpoint: the intervals hold all of an epoch's cost.
            ends: list[float] = []
            started = time.perf_counter()
            history = training.fit(  # looked up at the call: a test can spy on it
                model,
                data,
                loss,
                **_fit_kwargs(config, arm, seed, progress),
                epochs=epochs,
                checkpoint=Path(scratch) / "estimate.pt",
                callbacks=[lambda *_, ends=ends: ends.append(time.perf_counter())],
            )
            tail_seconds = time.perf_counter() - ends[-1] if ends else 0.0
            if history.interrupted:
                raise KeyboardInterrupt(f"interrupted while timing {arm.name}")
            times = [b - a for a, b in itertools.pairwise([started, *ends])]
            later = times[1:] or times
            epoch_seconds = statistics.median(later)
            # The part of an epoch outside its own record: the checkpoint, the kept weights.
            overhead = max(epoch_seconds - _later_median(history, "seconds"), 0.0)
            started = time.perf_counter()
            test_metrics(model, data, loss, config.pca_variance, arm.classifier)
            if ood_sets:
                _ood_metrics(model, data, ood_sets)
            test_seconds = time.perf_counter() - started
            run_seconds = (
                build_seconds
                + times[0]
                + (config.epochs - 1) * epoch_seconds
                + tail_seconds
                + test_seconds
            )
            rows.append(
                {
                    "arm": arm.name,
                    "epoch_times": times,
                    "epoch_range": (min(later), max(later)),
                    "first_epoch_seconds": times[0],
                    "epoch_seconds": epoch_seconds,
                    "train_seconds": _later_median(history, "train_seconds"),
                    "overhead_seconds": overhead,
                    "build_seconds": build_seconds,
                    "end_seconds": tail_seconds,
                    "test_seconds": test_seconds,
                    "run_seconds": run_seconds,
                    "seconds_per_1000_images": 1000 * epoch_seconds / max(n_train, 1),
                    "runs_left": sum(run_key(arm, s) not in done for s in config.seeds),
                }
            )
    seeds_left = sum(any(run_key(a, s) not in done for a in config.arms) for s in config.seeds)
    return {
        "dataset": config.dataset,
        "model": config.model,
        "device": str(data.device),
        "budget_epochs": config.epochs,
        "patience": config.patience,
        "seeds": len(config.seeds),
        "measured_epochs": epochs,
        "n_train": n_train,
        "batch_size": config.batch_size,
        "steps_per_epoch": math.ceil(n_train / config.batch_size),
        "data_seconds": data_seconds,
        "rows": rows,
        "runs_done": sum(run_key(a, s) in done for a in config.arms for s in config.seeds),
        "total_seconds": seeds_left * data_seconds
        + sum(r["runs_left"] * r["run_seconds"] for r in rows),
        "environment": provenance(),
    }


def _later_median(history, key: str) -> float:
    """The median of an epoch record's timing over the epochs after the first (which carries
    the start-up costs); the first alone when only one ran."""
    values = [record[key] for record in history.epochs]
    return statistics.median(values[1:] or values)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_estimate(estimate: dict) -> str:
    """The :func:`estimate_time` result as a Markdown table and a one-line total."""
    e = estimate
    env = e["environment"]
    if e["device"].startswith("cuda"):
        where = env.get("cuda") or "a CUDA device"
    else:
        threads = env.get("torch_threads")
        where = f"{env.get('processor')}, {threads} torch thread{'s' if threads != 1 else ''}"
    n = e["measured_epochs"]
    later = {1: "", 2: "; later epochs: the second"}.get(
        n, f"; later epochs: median (and range) of epochs 2-{n}"
    )
    lines = [
        f"Measured on {e['device']} ({where}): {e['dataset']}, {e['model']}, "
        f"{e['n_train']} training images after the validation share, batch {e['batch_size']} "
        f"({e['steps_per_epoch']} steps per epoch); {n} epoch{'s' if n > 1 else ''} per arm, "
        f"first epoch (with start-up costs) timed apart{later}. Loading the data: "
        f"{_duration(e['data_seconds'])} per seed.",
        "",
        "| arm | first epoch (s) | later epoch (s) | of which training (s) "
        "| checkpoint etc. per epoch (s) | later epoch per 1,000 training images (s) "
        f"| test evaluation (s) | one run of {e['budget_epochs']} epochs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in e["rows"]:
        low, high = r["epoch_range"]
        later_epoch = (
            "–"
            if n == 1
            else f"{r['epoch_seconds']:.2f}" + (f" ({low:.2f}–{high:.2f})" if n > 2 else "")
        )
        lines.append(
            f"| {r['arm']} | {r['first_epoch_seconds']:.2f} | {later_epoch} "
            f"| {r['train_seconds']:.2f} | {r['overhead_seconds']:.2f} "
            f"| {r['seconds_per_1000_images']:.3f} | {r['test_seconds']:.2f} "
            f"| {_duration(r['run_seconds'])} |"
        )
    if n == 1:
        lines += [
            "",
            "One measured epoch: the later epochs are taken to cost as much as the first.",
        ]
    runs_left = sum(r["runs_left"] for r in e["rows"])
    done = f", {e['runs_done']} already done" if e["runs_done"] else ""
    stop = (
        f"; early stopping (patience {e['patience']}) can end runs sooner" if e["patience"] else ""
    )
    lines += [
        "",
        f"The comparison ({len(e['rows'])} arms x {e['seeds']} seeds: {runs_left} runs to "
        f"go{done}), every run to its full budget: about {_duration(e['total_seconds'])}"
        f"{stop}. Not counted: writing the report at the end.",
    ]
    return "\n".join(lines)
