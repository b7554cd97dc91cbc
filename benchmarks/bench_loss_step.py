"""Time one training step (forward, backward, optimiser) of SmallCNN with each loss.

    python benchmarks/bench_loss_step.py [--reps 60] [--batch-size 256] [--threads N]

Arms: cross-entropy (the baseline), Latent Boost with PCA on (default), PCA off, K = 3 clusters
per class (cluster ids given), and the plain Magnet loss. Each arm has its own copy of the same
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

import torch
import torch.nn.functional as F

from latentboost_lab.losses import LatentBoostLoss, MagnetLoss
from latentboost_lab.models import SmallCNN

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


def make_arms(labels: torch.Tensor):
    """name -> function(logits, latent, labels) returning the loss."""
    g = torch.Generator().manual_seed(1)
    clusters = labels * 3 + torch.randint(3, labels.shape, generator=g)  # K = 3 per class
    pca_on, pca_off, k3 = LatentBoostLoss(), LatentBoostLoss(pca_variance=None), LatentBoostLoss()
    magnet = MagnetLoss()
    return {
        "cross-entropy": lambda lg, z, y: F.cross_entropy(lg, y),
        "LatentBoost, PCA on": lambda lg, z, y: pca_on(lg, z, y, 0),
        "LatentBoost, PCA off": lambda lg, z, y: pca_off(lg, z, y, 0),
        "LatentBoost, K=3, PCA on": lambda lg, z, y: k3(lg, z, y, 0, cluster_ids=clusters),
        "Magnet": lambda lg, z, y: magnet(z, y),
    }


def sync(device) -> None:
    """Wait for the device's queued work, so that a wall-clock time covers it (no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model, optimiser, loss, x, y, device="cpu"):
    """A function that runs one training step (forward, loss, backward, optimiser step) on the
    batch ``(x, y)`` and returns its wall-clock seconds. ``loss(logits, latent, labels)``."""

    def step() -> float:
        sync(device)
        start = time.perf_counter()
        logits, latent = model(x)
        value = loss(logits, latent, y)
        optimiser.zero_grad(set_to_none=True)
        value.backward()
        optimiser.step()
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
    for name, loss in make_arms(y).items():
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
