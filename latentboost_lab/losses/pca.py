"""PCA of one batch of latents, as used by :class:`~latentboost_lab.losses.LatentBoostLoss`.

The Latent Boost paper (arXiv:2412.08515) projects each batch of latents onto its principal
components before the Magnet-style term, keeping enough components to explain a fixed share of
the variance (it reports about 45-50 components on Fashion-MNIST, 65 falling to 40 on CIFAR-10).
The details below are ours, not the paper's:

- the number of components ``k`` follows scikit-learn's ``PCA(n_components=threshold)`` rule
  exactly: ``k = searchsorted(cumsum(ratio), threshold, side="right") + 1`` on the explained
  variance ratios, accumulated in float64 as scikit-learn does;
- the basis is detached: gradients reach the network through the centred latents only;
- the basis comes from ``torch.linalg.eigh``, in float64 and on one CPU thread (see
  :func:`principal_basis` and :func:`_one_cpu_thread` for why), of the smaller of the (d x d)
  scatter matrix and the (n x n) Gram matrix: the cost of eigh grows with the cube of the side,
  so the smaller matrix wins whenever the shapes differ (timings: benchmarks/README.md,
  "Figures moved out of docstrings");
- the discarded coordinates are zeroed rather than sliced off, so that ``k`` never has to be copied
  to the host (no device sync per step) and pairwise distances equal those in the k-dimensional
  projection exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch

from latentboost_lab._checks import check_in_range, check_latent


class BatchPCA(NamedTuple):
    """The result of :func:`batch_pca`.

    ``projected`` has ``r = min(n, d)`` columns, in decreasing order of variance; the columns from
    ``k`` on are exactly zero, so ``projected[:, :k]`` is the k-dimensional projection and distances
    computed on the full matrix are the same. ``k`` is a 0-dim long tensor (on the latent's device).
    """

    projected: torch.Tensor
    k: torch.Tensor
    explained_variance_ratio: torch.Tensor


def n_components_for(explained_variance_ratio: torch.Tensor, threshold: float) -> torch.Tensor:
    """Smallest number of components whose cumulative explained variance reaches ``threshold``.

    The rule of scikit-learn's ``PCA(n_components=threshold)``, clamped to the number of
    components (a threshold of 1 keeps them all).
    """
    # float64 like scikit-learn's stable_cumsum, so that ties near the threshold break the same way
    # (MPS has no float64: fall back to float32 there).
    dtype = torch.float32 if explained_variance_ratio.device.type == "mps" else torch.float64
    cumulative = torch.cumsum(explained_variance_ratio.to(dtype), dim=0)
    target = torch.tensor([threshold], dtype=dtype, device=cumulative.device)
    k = torch.searchsorted(cumulative, target, right=True)[0] + 1
    return k.clamp(max=explained_variance_ratio.numel())


@contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run a small LAPACK call on one CPU thread.

    An eigendecomposition of a 128 x 128 matrix gains nothing from a second thread, but it runs
    through hundreds of tiny parallel regions, and when the cores are shared with other
    processes every one of them waits for a descheduled thread: three orders of magnitude
    slower with 2 threads than with one on a busy machine (benchmarks/README.md, "Figures moved
    out of docstrings"). ``torch.set_num_threads`` costs microseconds.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def principal_basis(centred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal directions (d, r) and their variances (r,), largest first, of a centred batch.

    The basis has the batch's dtype, the variances are float64 (float32 on MPS). Uses the
    eigendecomposition of whichever of the scatter (d x d) or Gram (n x n) matrix is
    smaller; see the module docstring for the timings behind that choice. No gradient.
    """
    dtype = centred.dtype
    # float64 (where the device has it): MKL's float32 eigh returned NaN or failed to converge on
    # ~9% of latent-like batches with dead ReLU units (many exact zero eigenvalues) in our stress
    # test, float64 on none; it costs little more (benchmarks/README.md) and gives the same variance
    # ratios as scikit-learn, which works in float64.
    wide = torch.float32 if centred.device.type == "mps" else torch.float64
    centred = centred.detach().to(wide)
    n, d = centred.shape
    gram_side = d > n
    small = centred @ centred.T if gram_side else centred.T @ centred
    # A non-finite latent (a diverging model) would make LAPACK raise; zeros keep the basis
    # finite, the projection of the non-finite latent stays non-finite, and the training
    # loop's guard names the model. Finite entries are unchanged, bit for bit.
    small = torch.nan_to_num(small, nan=0.0, posinf=0.0, neginf=0.0)
    with _one_cpu_thread(centred.device):
        eigenvalues, eigenvectors = torch.linalg.eigh(small)
    if not gram_side:
        basis = eigenvectors.flip(-1)
    else:
        u = eigenvectors.flip(-1)
        singular = eigenvalues.flip(-1).clamp_min(0).sqrt()
        # v_j = X^T u_j / s_j; directions with (numerically) zero variance are zeroed, not
        # amplified noise.
        keep = singular > singular[:1] * (n * torch.finfo(centred.dtype).eps)
        basis = (centred.T @ u) / torch.where(keep, singular, torch.ones_like(singular))
        basis = basis * keep
    variances = eigenvalues.flip(-1).clamp_min(0) / max(n - 1, 1)
    return basis.to(dtype), variances


def batch_pca(latent: torch.Tensor, threshold: float = 0.95) -> BatchPCA:
    """Centre a batch, project it on its principal components, and keep enough of them.

    Args:
        latent: (n, d) floating-point batch.
        threshold: share of the variance to keep, in (0, 1] (the paper's default 0.95).

    The projection is ``(latent - mean) @ basis`` with the basis detached, so the gradient flows
    through the centred latents only. A batch whose points all coincide gives zeros and ``k = r``.
    """
    check_latent(latent)
    threshold = check_in_range("threshold", threshold, 0.0, 1.0, low_inclusive=False)
    return project_on_principal_components(latent, threshold)


def project_on_principal_components(latent: torch.Tensor, threshold: float) -> BatchPCA:
    """:func:`batch_pca` without the argument checks (for callers that have done them)."""
    centred = latent - latent.mean(dim=0, keepdim=True)
    basis, variances = principal_basis(centred)
    total = variances.sum()
    ratio = variances / total.clamp_min(torch.finfo(variances.dtype).tiny)
    k = n_components_for(ratio, threshold)
    keep = torch.arange(basis.shape[1], device=basis.device) < k
    projected = centred @ (basis * keep.to(basis.dtype))
    return BatchPCA(projected, k, ratio)
