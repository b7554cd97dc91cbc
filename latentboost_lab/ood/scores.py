"""OOD scores: one number per input, **higher = more in-distribution** (the whole package's
convention; pytorch-ood's detectors return outlier scores, the negation of these).

From the logits (no fitting):

- :func:`msp`: maximum softmax probability (Hendrycks & Gimpel, ICLR 2017, section 2);
- :func:`max_logit`: the largest logit (Hendrycks et al., "Scaling out-of-distribution detection
  for real-world settings", ICML 2022, section 4);
- :func:`energy`: the negative free energy ``T log sum_c exp(f_c / T)`` (Liu et al., NeurIPS
  2020, eq. 7 with the sign of their "negative energy score").

From the latent, with statistics fitted on the training latents:

- :func:`mahalanobis`: ``-min_c (z - mu_c)^T Sigma^+ (z - mu_c)`` with class means and one
  shared covariance (Lee et al., NeurIPS 2018, eq. 2; no input pre-processing, no feature
  ensemble): fitted by :func:`fit_gaussian`;
- :func:`knn`: minus the distance of the L2-normalised latent to its k-th nearest normalised
  training latent (Sun et al., ICML 2022, section 3, eq. 1 and "k-th nearest neighbour");
  chunked, never a full query x bank matrix;
- :func:`cluster_likelihood`: the structured latent's own score, the Magnet / Latent Boost view:
  ``max_k -||z - mu_k||^2 / (2 sigma_k^2)``, the log of the largest cluster likelihood
  ``max_k exp(-||z - mu_k||^2 / (2 sigma_k^2))`` (Rippel et al., ICLR 2016, the unnormalised
  terms of eq. 6; per-cluster variances as in Latent Boost, arXiv 2412.08515), with K clusters
  per class fitted by :func:`fit_clusters` (K = 1: the class means).

Every score is float64. Distances are computed in float64 (centred expansion) except the kNN
search, which ranks in float32 and recomputes the k-th distance in float64.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._checks import check_choice, check_in_range, check_int, check_labels, check_latent

__all__ = [
    "ClusterFit",
    "GaussianFit",
    "cluster_likelihood",
    "energy",
    "fit_clusters",
    "fit_gaussian",
    "knn",
    "max_logit",
    "msp",
    "normalize_rows",
]

#: Default size of one block of the kNN search and of the distance computations: 8 MiB. On one
#: CPU thread, 2,000 queries against 60,000 x 128 took 2.1 s with 8 MiB blocks, 2.3 s with 16 and
#: 2.4 s with 64 (and 2.9 s with 4): small blocks stay in cache and cost no speed.
DEFAULT_BLOCK_BYTES = 8 * 2**20
#: Rows of the training latents turned into float64 at once while fitting.
_FIT_ROWS = 8192


def _class_sums(latent, index, count):
    """float64 ``(count, d)`` sums of the rows of ``latent`` per ``index``, a block at a time
    (no float64 copy of the whole latent)."""
    sums = torch.zeros(count, latent.shape[1], dtype=torch.float64, device=latent.device)
    for i in range(0, latent.shape[0], _FIT_ROWS):
        sums.index_add_(0, index[i : i + _FIT_ROWS], latent[i : i + _FIT_ROWS].double())
    return sums


def _check(tensor, name: str) -> torch.Tensor:
    """A non-empty 2-D floating-point tensor with finite entries."""
    tensor = check_latent(tensor, name=name)
    if tensor.shape[0] == 0:
        raise ValueError(
            f"{name} must hold at least one row, got shape {tuple(tensor.shape)} (an empty set?)"
        )
    return tensor


# ----------------------------------------------------------------------------- from the logits


def msp(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Maximum softmax probability ``max_c softmax(f(x) / T)_c`` (Hendrycks & Gimpel, ICLR 2017;
    ``T`` > 1 is ODIN's temperature scaling, Liang et al., ICLR 2018, eq. 1, without its input
    perturbation). Computed in float64: in float32 every confident sample rounds to exactly 1.0,
    and those ties blur the ranking. pytorch-ood's ``MaxSoftmax.score`` is its negation."""
    logits = _check(logits, "logits").double()
    temperature = check_in_range("temperature", temperature, 0.0, None, low_inclusive=False)
    return torch.softmax(logits / temperature, dim=1).max(dim=1).values


def max_logit(logits: torch.Tensor) -> torch.Tensor:
    """The largest logit ``max_c f_c(x)`` (Hendrycks et al., ICML 2022, "MaxLogit").
    pytorch-ood's ``MaxLogit.score`` is its negation."""
    return _check(logits, "logits").double().max(dim=1).values


def energy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Negative free energy ``-E(x; f) = T log sum_c exp(f_c(x) / T)`` (Liu et al., NeurIPS
    2020, eq. 7 and section 2.2: higher for in-distribution inputs). pytorch-ood's
    ``EnergyBased.score`` is ``E`` itself, the negation."""
    logits = _check(logits, "logits").double()
    temperature = check_in_range("temperature", temperature, 0.0, None, low_inclusive=False)
    return temperature * torch.logsumexp(logits / temperature, dim=1)


# ----------------------------------------------------------------------------- distances


def _block_rows(columns: int, block_bytes: int, itemsize: int = 8) -> int:
    return max(1, block_bytes // max(1, columns * itemsize))


def _min_scaled_sq_distance(x, centres, scale, block_bytes: int) -> torch.Tensor:
    """``max_k -||x - c_k||^2 * scale_k`` over the rows of ``x`` (float64, blocks of rows), as
    ``-(|u|^2 + |c'|^2 - 2 u.c')`` with ``u``, ``c'`` centred on the centres' mean: the
    expansion loses about ``1e-16 |u|^2`` to cancellation in float64."""
    x = x.double()
    centres = centres.to(x.device, torch.float64)
    scale = scale.to(x.device, torch.float64)
    origin = centres.mean(dim=0)
    c = centres - origin
    c_sq = (c * c).sum(dim=1)
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    rows = _block_rows(centres.shape[0] + x.shape[1], block_bytes)
    for start in range(0, x.shape[0], rows):
        u = x[start : start + rows] - origin
        d = ((u * u).sum(dim=1, keepdim=True) + c_sq - 2.0 * (u @ c.T)).clamp_(min=0.0)
        out[start : start + rows] = (-(d * scale)).max(dim=1).values
    return out


# ----------------------------------------------------------------------------- Mahalanobis


class GaussianFit(NamedTuple):
    """Class-conditional Gaussians with one shared covariance (Lee et al., NeurIPS 2018):
    ``means`` (C, d) float64 and ``whitening`` (d, r) float64 with ``W W^T = Sigma^+``."""

    means: torch.Tensor
    whitening: torch.Tensor


def fit_gaussian(
    latent: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
) -> GaussianFit:
    """Class means ``mu_c`` and the shared covariance ``Sigma = 1/N sum_i (z_i - mu_{y_i})
    (z_i - mu_{y_i})^T`` of the training latents (Lee et al., eq. 1: "tied covariance"), and a
    whitening ``W`` with ``W W^T = Sigma^+``, the pseudo-inverse (their code calls scikit-learn's
    ``EmpiricalCovariance``, whose precision is ``pinvh``). Eigenvalues at most
    ``d * eps * largest`` count as 0 (scipy's ``pinvh`` rule): a latent after a ReLU or a
    low-rank one (Latent Boost's PCA pulls the latent into few directions) has a singular
    covariance, and the pseudo-inverse then ignores the directions the training data never
    moves in. Every class in ``0 .. num_classes - 1`` must occur.

    pytorch-ood's ``Mahalanobis`` differs in two constants: its covariance is the *sum* (not
    divided by N) plus ``1e-6 I``, inverted with ``inv``, and its score carries a factor 1/2.
    Where the covariance is well conditioned, its outlier score times ``-2 N`` is ours (tested).
    """
    latent = _check(latent, "latent")
    labels = check_labels(labels, latent.shape[0]).to(latent.device)
    present = int(labels.max()) + 1
    num_classes = present if num_classes is None else check_int("num_classes", num_classes, present)
    counts = torch.bincount(labels, minlength=num_classes)
    if bool((counts == 0).any()):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"labels must hold every class 0..{num_classes - 1}; missing {missing}")
    means = _class_sums(latent, labels, num_classes).div_(counts[:, None].double())
    covariance = torch.zeros(
        latent.shape[1], latent.shape[1], dtype=torch.float64, device=latent.device
    )
    for i in range(0, latent.shape[0], _FIT_ROWS):  # a block at a time, in float64
        centred = latent[i : i + _FIT_ROWS].double() - means[labels[i : i + _FIT_ROWS]]
        covariance += centred.T @ centred
    covariance /= latent.shape[0]
    values, vectors = torch.linalg.eigh(covariance)
    largest = float(values.max()) if values.numel() else 0.0
    keep = values > latent.shape[1] * torch.finfo(torch.float64).eps * max(largest, 0.0)
    if not bool(keep.any()):
        raise ValueError(
            "latent: the training latents do not vary within any class (zero covariance)"
        )
    whitening = vectors[:, keep] / values[keep].sqrt()
    return GaussianFit(means, whitening)


def mahalanobis(
    latent: torch.Tensor, fit: GaussianFit, *, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> torch.Tensor:
    """``-min_c (z - mu_c)^T Sigma^+ (z - mu_c)``, Lee et al.'s confidence score (NeurIPS 2018,
    eq. 2, at the latent, without input pre-processing or layer ensembles). ``fit``: from
    :func:`fit_gaussian`. Squared Euclidean distances in the whitened space ``z W``."""
    latent = _check(latent, "latent")
    if latent.shape[1] != fit.whitening.shape[0]:
        raise ValueError(
            f"latent must have width {fit.whitening.shape[0]} (the fitted one), got {latent.shape[1]}"
        )
    whitened = latent.double() @ fit.whitening.to(latent.device)
    means = fit.means.to(latent.device) @ fit.whitening.to(latent.device)
    ones = torch.ones(means.shape[0], dtype=torch.float64, device=latent.device)
    return _min_scaled_sq_distance(whitened, means, ones, block_bytes)


# ----------------------------------------------------------------------------- kNN


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit Euclidean length (a zero row stays zero)."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)


def knn(
    latent: torch.Tensor,
    bank: torch.Tensor,
    k: int = 50,
    *,
    normalized_bank: bool = False,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> torch.Tensor:
    """``-||z/|z| - b_(k)||``: minus the Euclidean distance of the L2-normalised latent to its
    k-th nearest L2-normalised training latent ``b_(k)`` (Sun et al., "Out-of-distribution
    detection with deep nearest neighbors", ICML 2022, section 3; their default k = 50 for
    CIFAR-10). ``bank``: the training latents (``normalized_bank=True``: already normalised,
    as :class:`~latentboost_lab.ood.OODScorer` keeps them). Equals pytorch-ood's ``KNN`` (and
    scikit-learn's ``NearestNeighbors`` on the normalised arrays), negated, to about 1e-6.

    How: queries go in blocks of ``block_bytes // (4 * len(bank))`` rows; for a block, one
    float32 matmul gives the cosine similarities to the whole bank (for unit vectors
    ``|a - b|^2 = 2 - 2 a.b``), ``topk`` finds the k most similar, and the k-th distance is then
    recomputed in float64 from the two vectors (the expansion loses digits for near neighbours).
    The query x bank matrix never exists beyond one block.

    Memory beyond the inputs: one block (``block_bytes``, default 8 MiB), its top-k, a
    normalised float32 copy of the queries and, unless ``normalized_bank``, of the bank.
    Measured (``python benchmarks/bench_ood_knn.py --threads 1``, peak resident memory added by
    the call in a fresh process, CPU): 10,000 queries against a normalised 60,000 x 128 bank,
    k = 50: 51 MiB (120 MiB with 64 MiB blocks), where the full distance matrix alone would be
    2,289 MiB; scikit-learn's ``NearestNeighbors`` on the same arrays: 8 MiB. Speed in that
    run, one thread, on a machine at load average 6-7: 22.9 s against scikit-learn's 17.9 s
    (two earlier runs, with 64 MiB blocks: 16.6 s against 21.2 s and 8.4 s against 8.4 s):
    about the same speed; ours runs on the data's device (a GPU) without a copy to the CPU.
    """
    latent = _check(latent, "latent")
    bank = _check(bank, "bank")
    if latent.shape[1] != bank.shape[1]:
        raise ValueError(
            f"latent must have the bank's width {bank.shape[1]}, got {latent.shape[1]}"
        )
    k = check_int("k", k, 1, bank.shape[0])
    block_bytes = check_int("block_bytes", block_bytes, 1)
    bank = bank.to(latent.device, torch.float32)
    if not normalized_bank:
        bank = normalize_rows(bank)
    queries = normalize_rows(latent.float())
    out = torch.empty(latent.shape[0], dtype=torch.float64, device=latent.device)
    rows = _block_rows(bank.shape[0], block_bytes, itemsize=4)
    for start in range(0, queries.shape[0], rows):
        q = queries[start : start + rows]
        similarity = q @ bank.T
        kth = similarity.topk(k, dim=1, largest=True, sorted=True).indices[:, -1]
        del similarity
        difference = q.double() - bank[kth].double()
        out[start : start + rows] = -difference.norm(dim=1)
    return out


# ----------------------------------------------------------------------------- clusters


class ClusterFit(NamedTuple):
    """K clusters per class: ``centres`` (C, d) float64, ``variances`` (C,) float64 (sigma_k^2),
    ``cluster_class`` (C,) and ``num_clusters`` (K)."""

    centres: torch.Tensor
    variances: torch.Tensor
    cluster_class: torch.Tensor
    num_clusters: int


def fit_clusters(
    latent: torch.Tensor,
    labels: torch.Tensor,
    num_clusters: int = 1,
    *,
    variance: str = "cluster",
    num_classes: int | None = None,
    seed: int = 0,
    kmeans_iters: int = 10,
) -> ClusterFit:
    """The clusters of :func:`cluster_likelihood`, from the training latents.

    K = ``num_clusters`` clusters per class by k-means (:class:`latentboost_lab.clusters.
    ClusterIndex`, the Magnet method's cluster index: k-means++ with ``seed``; K = 1 gives the
    class means). ``variance="cluster"`` (default, Latent Boost's per-cluster variance):
    ``sigma_k^2 = sum_{i in k} ||z_i - mu_k||^2 / (n_k - 1)``, the shared one for a cluster of a
    single member; ``"shared"`` (Magnet's): ``sum_i ||z_i - mu_{k_i}||^2 / (N - 1)`` for every
    cluster. Our choice (not the papers'): each variance is floored at ``1e-12`` times the
    shared one (plus the smallest normal float), so a collapsed cluster gives a finite score.
    """
    from ..clusters import ClusterIndex

    latent = _check(latent, "latent")
    labels = check_labels(labels, latent.shape[0])
    check_choice("variance", variance, ("cluster", "shared"))
    index = ClusterIndex(num_clusters, seed=seed, kmeans_iters=kmeans_iters)
    index.fit(latent, labels, num_classes)
    member = index.assignments.to(latent.device)
    count = torch.bincount(member, minlength=index.centres.shape[0]).double()
    # The residuals of each member from its cluster's own float64 mean (k-means's centres are
    # float32 means; recomputed here so that K = 1 is exactly the class mean).
    centres = _class_sums(latent, member, count.shape[0]) / count.clamp_min(1)[:, None]
    per_cluster = torch.zeros_like(count)
    for i in range(0, latent.shape[0], _FIT_ROWS):
        block = member[i : i + _FIT_ROWS]
        residual = (latent[i : i + _FIT_ROWS].double() - centres[block]).pow(2).sum(dim=1)
        per_cluster.index_add_(0, block, residual)
    shared = per_cluster.sum() / max(latent.shape[0] - 1, 1)
    floor = 1e-12 * float(shared) + torch.finfo(torch.float64).tiny
    if variance == "shared":
        variances = torch.full_like(count, float(shared))
    else:
        variances = torch.where(count > 1, per_cluster / (count - 1).clamp_min(1), shared)
    variances = variances.clamp_min(floor)
    return ClusterFit(centres, variances, index.cluster_class.clone(), index.num_clusters)


def cluster_likelihood(
    latent: torch.Tensor, fit: ClusterFit, *, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> torch.Tensor:
    """``max_k -||z - mu_k||^2 / (2 sigma_k^2)``: the log of the largest cluster likelihood
    ``max_k exp(-||z - mu_k||^2 / (2 sigma_k^2))`` over all clusters of all classes (Rippel et
    al., ICLR 2016: the terms of eq. 6 before they are normalised over the classes; Latent
    Boost, arXiv 2412.08515, shapes the latent for exactly these terms). Magnet's classifier
    normalises them into class probabilities, which throws away how far the input is from
    *every* cluster: the unnormalised maximum keeps it. ``fit``: from :func:`fit_clusters`."""
    latent = _check(latent, "latent")
    if latent.shape[1] != fit.centres.shape[1]:
        raise ValueError(
            f"latent must have width {fit.centres.shape[1]} (the fitted one), got {latent.shape[1]}"
        )
    scale = 1.0 / (2.0 * fit.variances)
    return _min_scaled_sq_distance(latent, fit.centres, scale, block_bytes)
