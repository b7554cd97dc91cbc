"""What ``fit`` costs per step over a bare loop of the same ``train_step``.

    python benchmarks/bench_fit_overhead.py [--loss latentboost] [--n-train 2560] [--reps 5]

Both sides run :func:`latentboost_lab.training.train_step` over the same batches of one epoch
(``data.batches`` with the same seed), from the same initial weights:

- bare: ``for batch in batches: train_step(model, objective, optimizer, batch, epoch)``;
- fit: one epoch of ``fit`` (``eval_test=False``, ``progress=False``), timed by its record's
  ``train_seconds``, which covers the epoch's steps and what ``fit`` does around them (the
  non-finite guard, the running sums, the sampler's losses, the first batch's value checks),
  but not the validation pass after it.

The two alternate (ABAB) ``--reps`` times; the table gives each side's median epoch and the
median of the paired ratios fit / bare. Data: Fashion-MNIST when ``$LATENTBOOST_DATA`` points at
it, else scikit-learn's digits (8x8: tiny steps, so the overhead is the largest share there).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, uninstalled

from latentboost_lab.data import load_dataset  # noqa: E402
from latentboost_lab.losses import as_objective  # noqa: E402
from latentboost_lab.models import build_model  # noqa: E402
from latentboost_lab.recipes import make_loss  # noqa: E402
from latentboost_lab.training import fit, train_step  # noqa: E402


def bare_epoch(model, loss, data, batch_size: int, seed: int) -> float:
    """Seconds of one epoch of bare ``train_step`` calls (Adam, as fit's default)."""
    objective = as_objective(loss)
    optimizer = torch.optim.Adam(list(model.parameters()) + list(loss.parameters()), lr=1e-3)
    started = time.perf_counter()
    objective.on_epoch_start(model, data, 0)
    model.train()
    for batch in data.batches("train", batch_size, epoch=0, seed=seed):
        train_step(model, objective, optimizer, batch, 0)
    return time.perf_counter() - started


def fit_epoch(model, loss, data, batch_size: int, seed: int) -> float:
    history = fit(
        model, data, loss, epochs=1, batch_size=batch_size, seed=seed,
        eval_test=False, progress=False,
    )  # fmt: skip
    return history.epochs[0]["train_seconds"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", default="latentboost", choices=("ce", "latentboost"))
    parser.add_argument("--n-train", type=int, default=2560)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = os.environ.get("LATENTBOOST_DATA")
    name = "fashion_mnist" if root else "digits"
    data = load_dataset(name, root=root, n_train=args.n_train, n_test=100, device="cpu")
    torch.manual_seed(0)
    base = build_model("small_cnn", data.info)
    loss = make_loss(args.loss, num_classes=data.num_classes, dataset=name)
    times = {"bare": [], "fit": []}
    for _ in range(args.reps):
        for side, run in (("bare", bare_epoch), ("fit", fit_epoch)):
            times[side].append(
                run(copy.deepcopy(base), copy.deepcopy(loss), data, args.batch_size, 0)
            )
    steps = -(-len(data.split("train")[1]) // args.batch_size)
    paired = [f / b for f, b in zip(times["fit"], times["bare"], strict=True)]
    print(
        f"{name}, {len(data.split('train')[1])} training images, batch {args.batch_size} "
        f"({steps} steps), SmallCNN, {args.loss}; {args.reps} paired epochs (ABAB); torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread(s), {platform.machine()}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    for side, values in times.items():
        print(f"{side:>5}: median epoch {statistics.median(values):.3f} s "
              f"({1e3 * statistics.median(values) / steps:.2f} ms per step)")  # fmt: skip
    print(f"fit / bare: median paired ratio {statistics.median(paired):.3f} "
          f"(range {min(paired):.3f}-{max(paired):.3f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
