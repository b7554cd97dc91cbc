"""Time one training step (forward, backward, optimiser) of SmallCNN with each loss.

    python benchmarks/bench_loss_step.py [--reps 60] [--batch-size 256] [--threads N]

Each step is :func:`latentboost_lab.training.train_step`, the very function ``fit`` runs (forward,
objective, backward, update; without ``fit``'s non-finite guard, whose cost
``bench_fit_overhead.py`` measures). Arms: cross-entropy (the baseline), Latent Boost with PCA
on (default), PCA off, K = 3 clusters per class (a cluster index fitted on the batch's first
latents, looked up by the samples' indices as in ``fit``), and the Magnet objective (K = 1). Each arm has its own copy of the same
model and an Adam optimiser; the arms are interleaved in a fresh random order in every
repetition so that drifts in machine load hit them all alike. The table gives, for each arm,
the median and the minimum step time and three ratios to cross-entropy: of the medians, the
median of the per-repetition ratios (robust to slow drifts), and of the minimums (robust to
bursts from other processes: the best case of each arm, as ``timeit`` recommends).

The batch is a Fashion-MNIST-like batch (1 x 28 x 28): random uint8 images, or the first images
of the real training split when $LATENTBOOST_DATA points at the data (the timing does not
depend on the pixel values).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import random
import statistics
import time
from types import SimpleNamespace

import torch

from latentboost_lab.clusters import ClusterIndex
from latentboost_lab.losses import CrossEntropyLoss, LatentBoostLoss, MagnetObjective
from latentboost_lab.models import SmallCNN
from latentboost_lab.training import train_step

FASHION_MEAN, FASHION_STD = 0.2860, 0.3530


def make_batch(batch_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, str]:
    root = os.environ.get("LATENTBOOST_DATA")
    if root:
        from latentboost_lab.data import load_dataset

        data = load_dataset(
            "fashion_mnist", root=root, n_train=max(2 * batch_size, 1000), n_test=100
        )
        x, y = data.split("train")
        return data.normalize(x[:batch_size]), y[:batch_size], "real Fashion-MNIST"
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (batch_size, 1, 28, 28), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (batch_size,), generator=g)
    return (x.float() / 255 - FASHION_MEAN) / FASHION_STD, y, "random uint8"


def make_arms(model, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """name -> the objective (as ``fit`` gets it). The K = 3 arm's cluster index is fitted on
    ``model``'s latents of the batch ``x`` (3 clusters per class by k-means)."""
    with torch.no_grad():
        latent = model.eval()(x)[1]
    model.train()
    k3 = LatentBoostLoss(num_clusters=3)
    k3.index = ClusterIndex(3).fit(latent, labels, int(labels.max()) + 1)
    return {
        "cross-entropy": CrossEntropyLoss(),
        "LatentBoost, PCA on": LatentBoostLoss(),
        "LatentBoost, PCA off": LatentBoostLoss(pca_variance=None),
        "LatentBoost, K=3, PCA on": k3,
        "Magnet": MagnetObjective(neighbourhood_sampling=False),
    }


def sync(device) -> None:
    """Wait for the device's queued work, so that a wall-clock time covers it (no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model, optimiser, objective, x, y, device="cpu", epoch: int = 0):
    """A function that runs one :func:`~latentboost_lab.training.train_step` (``fit``'s step)
    on the batch ``(x, y)`` (sample indices 0..N-1) and returns its wall-clock seconds.
    ``objective``: a loss of :mod:`latentboost_lab.losses`, any loss ``fit`` takes, or a
    function ``loss(logits, latent, labels)``."""
    from latentboost_lab.losses import as_objective

    if not isinstance(objective, torch.nn.Module):  # a function of (logits, latent, labels)
        function = objective
        objective = lambda logits, latent, labels, epoch: function(logits, latent, labels)  # noqa: E731
    objective = as_objective(objective)
    batch = SimpleNamespace(x=x, y=y, index=torch.arange(len(y), device=y.device))

    def step() -> float:
        sync(device)
        start = time.perf_counter()
        train_step(model, objective, optimiser, batch, epoch)
        sync(device)
        return time.perf_counter() - start

    return step


def interleave(steps: dict, reps: int, warmup: int = 0, rng: random.Random | None = None):
    """Run every ``steps[name]()`` (each returns seconds) once per repetition, ``warmup`` + ``reps``
    times, and return ``{name: [seconds of each timed repetition]}``.

    The arms alternate within every repetition (ABAB, never AAAA BBBB), so that a drift in the
    machine's load hits them all alike: in a fresh random order per repetition when ``rng`` is
    given, else in an order rotated by one place per repetition (each arm takes each position
    equally often).
    """
    names = list(steps)
    times = {name: [] for name in names}
    for rep in range(warmup + reps):
        if rng is not None:
            order = names[:]
            rng.shuffle(order)
        else:
            shift = rep % len(names)
            order = names[shift:] + names[:shift]
        for name in order:
            elapsed = steps[name]()
            if rep >= warmup:
                times[name].append(elapsed)
    return times


def ratios(values: list[float], baseline: list[float]) -> dict[str, float]:
    """Ratios of ``values`` to ``baseline`` (paired repetitions): of the medians, the median of
    the per-repetition ratios (robust to slow drifts) and of the minimums (robust to bursts)."""
    return {
        "ratio_of_medians": statistics.median(values) / statistics.median(baseline),
        "median_paired_ratio": statistics.median(
            v / b for v, b in zip(values, baseline, strict=True)
        ),
        "ratio_of_mins": min(values) / min(baseline),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y, source = make_batch(args.batch_size)
    base = SmallCNN(1, 10, latent_dim=128)
    arms = {}
    for name, loss in make_arms(base, x, y).items():
        model = copy.deepcopy(base).train()
        arms[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-3), loss)

    steps = {
        name: make_step(model, optimiser, loss, x, y)
        for name, (model, optimiser, loss) in arms.items()
    }
    times = interleave(steps, args.reps, args.warmup, rng=random.Random(0))

    print(
        f"SmallCNN (latent 128), batch {args.batch_size} x 1x28x28 ({source}), Adam; "
        f"{args.reps} interleaved repetitions after {args.warmup} warm-up; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    ce = times["cross-entropy"]
    print(
        f"{'arm':<26}{'median ms':>10}{'min ms':>8}"
        f"{'ratio of medians':>18}{'median ratio':>14}{'ratio of mins':>15}"
    )
    for name, values in times.items():
        r = ratios(values, ce)
        print(
            f"{name:<26}{1e3 * statistics.median(values):>10.1f}{1e3 * min(values):>8.1f}"
            f"{r['ratio_of_medians']:>17.3f}x{r['median_paired_ratio']:>13.3f}x"
            f"{r['ratio_of_mins']:>14.3f}x"
        )


if __name__ == "__main__":
    main()
