"""Epoch schedules for the weights of :class:`~latentboost_lab.losses.LatentBoostLoss`.

Every schedule is a pure function of the 0-based epoch ``E`` that returns a float. Configure one
with :func:`functools.partial` (picklable, unlike a lambda) and pass it to the loss, e.g.
``LatentBoostLoss(lam=partial(linear_warmup, start=0.0, end=0.75, epochs=5))``.

The Latent Boost paper (arXiv:2412.08515) lets the intra-cluster weight alpha fall and the
inter-cluster weight beta grow over training but does not publish the formulas; the exact forms
and constants below are ours, not the paper's:

- ``alpha(E) = max(alpha_min, alpha0 * exp(-k_alpha * E))`` (defaults 1, 0.05, 0.1);
- ``beta(E) = min(beta_max, beta0 + k_beta * E)`` (defaults 0.5, 0.05, 2).

lambda, the share of the distance term in the total loss, is constant in the paper (its best
values: 0.75 on Fashion-MNIST and CIFAR-10, 0.5 on CIFAR-100); the paper leaves a dynamic lambda
as an open question, hence the optional :func:`linear_warmup`, :func:`cosine` and :func:`step`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from latentboost_lab._checks import check_in_range, check_int


def _epoch(epoch) -> int:
    return check_int("epoch", epoch, 0)


def alpha_schedule(
    epoch: int, alpha0: float = 1.0, k_alpha: float = 0.05, alpha_min: float = 0.1
) -> float:
    """Intra-cluster weight ``max(alpha_min, alpha0 * exp(-k_alpha * epoch))`` (ours)."""
    epoch = _epoch(epoch)
    alpha0 = check_in_range("alpha0", alpha0, 0.0)
    k_alpha = check_in_range("k_alpha", k_alpha, 0.0)
    alpha_min = check_in_range("alpha_min", alpha_min, 0.0)
    return max(alpha_min, alpha0 * math.exp(-k_alpha * epoch))


def beta_schedule(
    epoch: int, beta0: float = 0.5, k_beta: float = 0.05, beta_max: float = 2.0
) -> float:
    """Inter-cluster weight ``min(beta_max, beta0 + k_beta * epoch)`` (ours)."""
    epoch = _epoch(epoch)
    beta0 = check_in_range("beta0", beta0, 0.0)
    k_beta = check_in_range("k_beta", k_beta, 0.0)
    beta_max = check_in_range("beta_max", beta_max, 0.0)
    return min(beta_max, beta0 + k_beta * epoch)


def constant(epoch: int, value: float) -> float:
    """``value`` at every epoch."""
    _epoch(epoch)
    return check_in_range("value", value)


def linear_warmup(epoch: int, start: float, end: float, epochs: int) -> float:
    """From ``start`` at epoch 0 linearly to ``end`` at epoch ``epochs``, then ``end``."""
    epoch = _epoch(epoch)
    start, end = check_in_range("start", start), check_in_range("end", end)
    epochs = check_int("epochs", epochs, 1)
    return start + (end - start) * min(epoch, epochs) / epochs


def cosine(epoch: int, start: float, end: float, epochs: int) -> float:
    """Half a cosine from ``start`` at epoch 0 to ``end`` at epoch ``epochs``, then ``end``."""
    epoch = _epoch(epoch)
    start, end = check_in_range("start", start), check_in_range("end", end)
    epochs = check_int("epochs", epochs, 1)
    progress = min(epoch, epochs) / epochs
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def step(epoch: int, values: Sequence[float], milestones: Sequence[int]) -> float:
    """``values[j]`` where ``j`` is the number of milestones ``<= epoch``.

    ``values`` has one more entry than ``milestones``, which must increase strictly:
    ``step(E, values=[0.25, 0.5, 0.75], milestones=[5, 10])`` is 0.25 for E < 5, 0.5 for
    5 <= E < 10, and 0.75 from E = 10.
    """
    epoch = _epoch(epoch)
    milestones = [check_int("milestones", m, 0) for m in milestones]
    values = [check_in_range("values", v) for v in values]
    if len(values) != len(milestones) + 1:
        raise ValueError(
            f"values must have one more entry than milestones ({len(milestones) + 1}), "
            f"got {len(values)}"
        )
    if any(b <= a for a, b in zip(milestones, milestones[1:], strict=False)):
        raise ValueError(f"milestones must increase strictly, got {milestones}")
    return values[sum(epoch >= m for m in milestones)]
