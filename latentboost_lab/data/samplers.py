"""Which indices make a batch: shuffled, sequential, class-balanced, and stratified subsets.

A sampler is called as ``sampler(labels, epoch) -> list of index tensors``; the same seed and
epoch give the same batches.
"""

from __future__ import annotations

import torch

from .._checks import check_int


def stratified_indices(labels: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of a random subset of size ``n`` with (as nearly as integers allow) the class
    proportions of ``labels``: per-class quotas by largest remainder, then a random draw in each
    class. Returned sorted, so the subset keeps the original order."""
    labels = labels.cpu()
    n_total = labels.numel()
    n = check_int("n", n, 0, n_total)
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * n / n_total
    quota = exact.floor().long()
    short = n - int(quota.sum())
    if short:  # give the remaining places to the largest remainders (ties: the first class)
        order = torch.argsort(-(exact - quota), stable=True)
        quota[order[:short]] += 1
    picked = []
    for c, q in zip(classes.tolist(), quota.tolist(), strict=True):
        members = torch.nonzero(labels == c).flatten()
        picked.append(members[torch.randperm(len(members), generator=generator)[:q]])
    return torch.cat(picked).sort().values if picked else torch.empty(0, dtype=torch.long)


def _generator(device: torch.device, seed: int, epoch: int) -> torch.Generator:
    # One generator per (seed, epoch): epoch E's batches do not depend on how epochs 0..E-1 ran,
    # so a resumed run draws exactly the batches an uninterrupted one would.
    g = torch.Generator(device=device)
    g.manual_seed(int(seed) * 1_000_003 + int(epoch))
    return g


class ShuffledSampler:
    """Plain shuffled batches, a fresh permutation each epoch; the last short batch is kept
    unless ``drop_last``."""

    def __init__(self, batch_size: int = 128, seed: int = 0, drop_last: bool = False):
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.seed, self.drop_last = seed, drop_last

    def __call__(self, labels: torch.Tensor, epoch: int) -> list[torch.Tensor]:
        n = labels.numel()
        order = torch.randperm(
            n,
            generator=_generator(labels.device, self.seed, epoch),
            device=labels.device,
        )
        stop = n - n % self.batch_size if self.drop_last else n
        return list(order[:stop].split(self.batch_size))


class SequentialSampler:
    """Batches in the split's order (for evaluation)."""

    def __init__(self, batch_size: int = 1024):
        self.batch_size = check_int("batch_size", batch_size, 1)

    def __call__(self, labels: torch.Tensor, epoch: int = 0) -> list[torch.Tensor]:
        return list(torch.arange(len(labels), device=labels.device).split(self.batch_size))


class ClassBalancedSampler:
    """Batches of P classes x Q samples each (P·Q images), for metric losses that need several
    samples of each class in a batch: with CIFAR-100 and random batches of 256 a class has
    about 2.5 members, too few for a cluster mean and variance.

    Each epoch draws ``len(labels) // (P·Q)`` batches; within a class, samples are drawn
    without replacement until the class is used up, then from a fresh permutation."""

    def __init__(self, n_classes_per_batch: int = 10, n_per_class: int = 16, seed: int = 0):
        self.p = check_int("n_classes_per_batch", n_classes_per_batch, 1)
        self.q = check_int("n_per_class", n_per_class, 1)
        self.seed = seed

    @property
    def batch_size(self) -> int:
        return self.p * self.q

    def __call__(self, labels: torch.Tensor, epoch: int) -> list[torch.Tensor]:
        classes = torch.unique(labels)
        if self.p > len(classes):
            raise ValueError(
                f"n_classes_per_batch must be <= the number of classes ({len(classes)}), got {self.p}"
            )
        g = _generator(labels.device, self.seed, epoch)
        members = [torch.nonzero(labels == c).flatten() for c in classes]
        queues = [m[torch.randperm(len(m), generator=g, device=labels.device)] for m in members]
        cursor = [0] * len(classes)
        batches = []
        for _ in range(max(1, labels.numel() // self.batch_size)):
            chosen = torch.randperm(len(classes), generator=g, device=labels.device)[
                : self.p
            ].tolist()
            parts = []
            for c in chosen:
                take = []
                need = self.q
                while need:  # wrap around with a fresh permutation when a class runs out
                    if cursor[c] == len(queues[c]):
                        m = members[c]
                        queues[c], cursor[c] = (
                            m[torch.randperm(len(m), generator=g, device=labels.device)],
                            0,
                        )
                    got = queues[c][cursor[c] : cursor[c] + need]
                    cursor[c] += len(got)
                    need -= len(got)
                    take.append(got)
                parts.extend(take)
            batches.append(torch.cat(parts))
        return batches
