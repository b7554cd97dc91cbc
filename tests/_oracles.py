"""Naive float64 oracles for the losses: plain Python loops over samples and clusters, written
from the formulas in the issue, sharing no code with the package.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

TINY64 = float(np.finfo(np.float64).tiny)


def random_batch(n, d, n_classes, k, seed, dtype=torch.float64):
    """Latent (n, d), labels, and cluster ids nested in classes (k sub-clusters per class)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(n_classes, (n,), generator=g)
    sub = torch.randint(k, (n,), generator=g)
    cluster_ids = labels * k + sub
    offsets = 2.0 * torch.randn(n_classes * k, d, generator=g, dtype=dtype)
    latent = offsets[cluster_ids] + torch.randn(n, d, generator=g, dtype=dtype)
    return latent, labels, cluster_ids


def sklearn_count(z, threshold: float) -> int:
    """scikit-learn's own PCA(n_components=threshold).n_components_ on ``z``."""
    # One BLAS thread: a multithreaded SVD of this size stalls for seconds on a shared 2-core CPU.
    with threadpool_limits(1):
        return int(PCA(n_components=threshold, svd_solver="full").fit(np.asarray(z)).n_components_)


def sklearn_rule_k(explained_variance_ratio, threshold: float) -> int:
    """scikit-learn's PCA(n_components=threshold) count: searchsorted(cumsum, t, 'right') + 1."""
    cumulative = np.cumsum(np.asarray(explained_variance_ratio, dtype=np.float64))
    return int(min(np.searchsorted(cumulative, threshold, side="right") + 1, len(cumulative)))


def pca_project(z, threshold: float) -> tuple[np.ndarray, int]:
    """Centre, SVD, keep k components by scikit-learn's rule, project (float64)."""
    z = np.asarray(z, dtype=np.float64)
    centred = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    variances = s**2
    total = variances.sum()
    ratio = variances / total if total > 0 else np.zeros_like(variances)
    k = sklearn_rule_k(ratio, threshold)
    return centred @ vt[:k].T, k


def _sq_dist(a, b) -> float:
    return math.fsum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True))


def _log_sum_exp(values) -> float:
    top = max(values)
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def magnet_style_loss(
    z,
    labels,
    cluster_ids=None,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    margin: float = 1.0,
    variance: str = "shared",
    pca: float | None = None,
    eps: float = 1e-6,
    variance_floor: float = 1e-3,
) -> tuple[float, list[float]]:
    """Mean and per-sample values of ``max(0, alpha A_i + beta B_i + m)`` (see the issue, sec. 1, 3).

    With alpha = beta = 1, ``variance="shared"`` and ``pca=None`` this is the Magnet loss.
    """
    z = np.asarray(z, dtype=np.float64)
    labels = [int(v) for v in labels]
    cluster_ids = labels if cluster_ids is None else [int(v) for v in cluster_ids]
    if pca is not None:
        z, _ = pca_project(z, pca)
    n = len(z)
    centre_of_batch = [math.fsum(z[i, j] for i in range(n)) / n for j in range(z.shape[1])]
    z = [[z[i, j] - centre_of_batch[j] for j in range(z.shape[1])] for i in range(n)]

    clusters = sorted(set(cluster_ids))
    members = {k: [i for i in range(n) if cluster_ids[i] == k] for k in clusters}
    cluster_class = {k: labels[members[k][0]] for k in clusters}
    means = {
        k: [math.fsum(z[i][j] for i in members[k]) / len(members[k]) for j in range(len(z[0]))]
        for k in clusters
    }

    def d(i, k):
        return _sq_dist(z[i], means[k])

    mean_sq_norm = math.fsum(math.fsum(v * v for v in row) for row in z) / n
    shared = max(
        math.fsum(d(i, cluster_ids[i]) for i in range(n)) / max(n - 1, 1),
        eps * mean_sq_norm + TINY64,
    )
    var = {}
    for k in clusters:
        if variance == "shared":
            var[k] = shared
        else:
            n_k = len(members[k])
            v = math.fsum(d(i, k) for i in members[k]) / (n_k - 1) if n_k > 1 else shared
            var[k] = max(v, variance_floor * mean_sq_norm + TINY64)

    per_sample = []
    for i in range(n):
        impostors = [k for k in clusters if cluster_class[k] != labels[i]]
        if not impostors:
            per_sample.append(0.0)
            continue
        a = d(i, cluster_ids[i]) / (2.0 * var[cluster_ids[i]])
        b = _log_sum_exp([-d(i, k) / (2.0 * var[k]) for k in impostors])
        per_sample.append(max(0.0, alpha * a + beta * b + margin))
    return math.fsum(per_sample) / n, per_sample


def cross_entropy(logits, labels) -> float:
    """Mean of ``-log softmax(logits_i)[y_i]``."""
    logits = np.asarray(logits, dtype=np.float64)
    total = []
    for row, y in zip(logits, labels, strict=True):
        total.append(_log_sum_exp(list(row)) - row[int(y)])
    return math.fsum(total) / len(total)


def center_loss(logits, z, labels, centres, lam: float) -> float:
    """``CE + lam * 1/2 * mean_i ||z_i - c_{y_i}||^2``."""
    z = np.asarray(z, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    dist = [_sq_dist(z[i], centres[int(y)]) for i, y in enumerate(labels)]
    return cross_entropy(logits, labels) + lam * 0.5 * math.fsum(dist) / len(dist)
