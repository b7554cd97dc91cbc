"""Metrics of a classifier and of its latent space, in torch, on whatever device the tensors live.

Latent Boost (arXiv 2412.08515) reports accuracy, micro-F1 and the silhouette score of the
latent space (the input of the last linear layer); Davies-Bouldin is a second cluster-quality
index. Every function here gives scikit-learn's value (the tests compare them) but runs on the
training device, so that a GPU run does not copy 60,000 latents to the CPU to score them.

Classification metrics take either logits ``(n, classes)`` or predicted labels ``(n,)`` and the
true labels ``(n,)``; latent-space metrics take ``x (n, width)`` and ``labels (n,)``. NumPy arrays
are accepted too and turned into tensors (no copy on the CPU).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ._checks import check_choice, check_int, check_labels, check_latent

# The embedding pass, importable from here as before (its home: latentboost_lab.inference).
from .inference import embed, model_outputs

__all__ = [
    "accuracy",
    "confusion_matrix",
    "davies_bouldin_score",
    "embed",
    "f1_score",
    "model_outputs",
    "silhouette_samples",
    "silhouette_score",
]

DEFAULT_CHUNK_SIZE = 1024  # rows of the distance matrix computed at once (see silhouette_samples)


def _as_tensor(value):
    """NumPy arrays become tensors (sharing memory); anything else is left to the checks."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    return value


def _predictions(pred_or_logits, n: int | None = None, name: str = "pred_or_logits"):
    """Predicted class indices from logits (2-D, argmax over classes) or labels (1-D)."""
    pred_or_logits = _as_tensor(pred_or_logits)
    if isinstance(pred_or_logits, torch.Tensor) and pred_or_logits.dim() == 2:
        logits = check_latent(pred_or_logits, name=name)
        if n is not None and logits.shape[0] != n:
            raise ValueError(f"{name} must have one row per sample ({n}), got {logits.shape[0]}")
        return logits.argmax(dim=1), logits.shape[1]
    return check_labels(pred_or_logits, n=n, name=name), None


def _pred_and_labels(pred_or_logits, labels):
    labels = check_labels(_as_tensor(labels), name="labels")
    pred, num_logit_classes = _predictions(pred_or_logits, n=labels.shape[0])
    if labels.numel() == 0:
        raise ValueError("labels must hold at least one sample, got 0")
    return pred, labels.to(pred.device), num_logit_classes


def accuracy(pred_or_logits, labels) -> float:
    """Fraction of samples whose predicted class equals the label.

    ``pred_or_logits``: logits ``(n, classes)`` (the argmax is the prediction) or predicted class
    indices ``(n,)``. Equals ``sklearn.metrics.accuracy_score``.
    """
    pred, labels, _ = _pred_and_labels(pred_or_logits, labels)
    return (pred == labels).double().mean().item()


def confusion_matrix(pred_or_logits, labels, num_classes: int | None = None) -> torch.Tensor:
    """``(classes, classes)`` int64 counts; row = true class, column = predicted class.

    Same layout as ``sklearn.metrics.confusion_matrix(labels, pred, labels=range(classes))``.
    ``num_classes`` defaults to the logits' width, or to ``1 + the largest index seen``.
    """
    pred, labels, num_logit_classes = _pred_and_labels(pred_or_logits, labels)
    seen = 1 + max(int(pred.max()), int(labels.max()))
    if num_classes is None:
        num_classes = num_logit_classes if num_logit_classes is not None else seen
    num_classes = check_int("num_classes", num_classes, 1)
    if seen > num_classes:
        raise ValueError(
            f"labels and predictions must be < num_classes ({num_classes}), got index {seen - 1}"
        )
    # One bincount over the flattened (true, predicted) pair: no Python loop, any device.
    flat = labels * num_classes + pred
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def f1_score(pred_or_logits, labels, average: str = "micro") -> float:
    """F1 score, ``average="micro"`` (pooled over all samples) or ``"macro"`` (mean over classes).

    For single-label classification every wrong prediction is one false positive (for the
    predicted class) and one false negative (for the true class), so micro-precision =
    micro-recall = micro-F1 = accuracy: the paper's "micro-F1" column is its accuracy column.
    Macro-F1 averages the per-class ``2 TP / (2 TP + FP + FN)`` over the classes that occur in
    ``labels`` or in the predictions, which is what ``sklearn.metrics.f1_score(labels, pred,
    average="macro")`` does by default.
    """
    check_choice("average", average, ("micro", "macro"))
    pred, labels, _ = _pred_and_labels(pred_or_logits, labels)
    if average == "micro":
        return (pred == labels).double().mean().item()
    cm = confusion_matrix(pred, labels).double()
    true_positive = cm.diagonal()
    support = cm.sum(dim=1) + cm.sum(dim=0)  # = 2 TP + FP + FN per class
    present = support > 0
    return (2 * true_positive[present] / support[present]).mean().item()


# ----------------------------------------------------------------------------- latent space


def _check_number_of_clusters(num_clusters: int, n: int) -> None:
    # scikit-learn's rule: a partition into 1 cluster or into n singletons has no silhouette.
    if not 2 <= num_clusters <= n - 1:
        raise ValueError(
            f"labels must contain between 2 and n_samples - 1 = {n - 1} distinct values "
            f"(as in scikit-learn), got {num_clusters} for {n} samples"
        )


def _latent_and_labels(x, labels, name: str = "x"):
    x = check_latent(_as_tensor(x), name=name)
    labels = check_labels(_as_tensor(labels), n=x.shape[0], name="labels")
    return x, labels.to(x.device)


def davies_bouldin_score(x, labels) -> float:
    """Davies-Bouldin index (lower is better): the mean over clusters of the worst ratio
    ``(s_i + s_j) / d(c_i, c_j)``, with ``s_i`` the mean distance of cluster ``i`` to its centroid
    ``c_i``. Computed in float64; equals ``sklearn.metrics.davies_bouldin_score``, including its
    convention of returning 0 when all spreads or all centroid distances are (close to) 0.
    """
    x, labels = _latent_and_labels(x, labels)
    _, cluster = torch.unique(labels, return_inverse=True)
    num_clusters = int(cluster.max()) + 1
    _check_number_of_clusters(num_clusters, x.shape[0])
    x = x.double()
    counts = torch.bincount(cluster, minlength=num_clusters).double()
    centroids = torch.zeros(num_clusters, x.shape[1], dtype=x.dtype, device=x.device)
    centroids.index_add_(0, cluster, x).div_(counts[:, None])
    to_centroid = (x - centroids[cluster]).norm(dim=1)
    spread = torch.zeros(num_clusters, dtype=x.dtype, device=x.device)
    spread.index_add_(0, cluster, to_centroid).div_(counts)
    centroid_distances = torch.cdist(centroids, centroids)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    # np.allclose(v, 0) in scikit-learn: |v| <= 1e-8
    if torch.allclose(spread, zero, rtol=0, atol=1e-8) or torch.allclose(
        centroid_distances, zero, rtol=0, atol=1e-8
    ):
        return 0.0
    centroid_distances[centroid_distances == 0] = torch.inf
    ratios = (spread[:, None] + spread[None, :]) / centroid_distances
    return ratios.max(dim=1).values.mean().item()


def _reduced_precision_matmul(device: torch.device) -> bool:
    """Whether float32 matmuls on this CUDA device may run as TF32 (the user's global setting,
    e.g. ``torch.set_float32_matmul_precision("high")``)."""
    if device.type != "cuda":
        return False  # on CPU that setting only matters on CPUs with AMX (bf16/tf32 units)
    try:
        setting = torch.backends.cuda.matmul.fp32_precision  # torch >= 2.9
    except AttributeError:
        return bool(torch.backends.cuda.matmul.allow_tf32)
    except RuntimeError:  # torch refuses to read it when legacy and new settings were mixed
        return True
    if setting == "none":  # not set through the new API: the legacy flag decides
        try:
            return torch.get_float32_matmul_precision() != "highest"
        except RuntimeError:
            return True
    return setting != "ieee"


def _augmented(x, origin):
    """``left, right`` with ``left[i] . right[j] = |x_i - x_j|^2``, computed as
    ``|u_i|^2 + |u_j|^2 - 2 u_i . u_j`` with ``u = x - origin``.

    Appending the squared norms (and ones) to the coordinates lets one matmul produce a block
    of squared distances, with no broadcast additions over the block afterwards. The origin
    matters: the expansion loses about ``eps * |u|^2`` to cancellation, so it is put at the
    points' mean, and latents (after a ReLU, or shaped into tight clusters) often sit far from
    the coordinate origin.
    """
    n, width = x.shape
    left = torch.empty(n, width + 2, dtype=x.dtype, device=x.device)
    right = torch.empty_like(left)
    centred = left[:, :width]
    torch.sub(x, origin, out=centred)
    torch.mul(centred, -2.0, out=right[:, :width])
    squares = (centred * centred).sum(dim=1)
    left[:, width], left[:, width + 1] = squares, 1.0
    right[:, width], right[:, width + 1] = 1.0, squares
    return left, right


def _distance_block(left, right, buffer) -> torch.Tensor:
    """Euclidean distances between two sets of rows: one matmul, then ``sqrt(max(., 0))``
    (rounding can make the expansion slightly negative).

    Written into (the start of) the flat ``buffer``: reusing one allocation for every block
    avoids the page faults of a fresh one, which on CPU cost about half as much as the matmul.
    """
    block = buffer[: left.shape[0] * right.shape[0]].view(left.shape[0], right.shape[0])
    return torch.mm(left, right.T, out=block).clamp_(min=0).sqrt_()


# Above this many clusters in one block, sum with one index_add_ instead of a loop of
# matrix-vector products (which is ~10x faster per cluster for tens of clusters on CPU).
_MAX_SLICES_PER_BLOCK = 128


def _add_row_sums_by_cluster(out, block, bounds, cluster, start):
    """``out[:, k] +=`` the sum of ``block``'s columns that belong to cluster ``k``.

    Column ``j`` of ``block`` is sample ``start + j``; samples are sorted by cluster, so the
    columns form contiguous runs, each summed by one matrix-vector product (the fastest
    reduction on CPU: it adds float32 terms within one block only, then float64 in ``out``).
    """
    stop = start + block.shape[1]
    first = int(np.searchsorted(bounds, start, side="right")) - 1
    last = int(np.searchsorted(bounds, stop - 1, side="right")) - 1
    if last - first + 1 > _MAX_SLICES_PER_BLOCK:  # many small clusters: one scatter-add
        sums = torch.zeros(block.shape[0], out.shape[1], dtype=block.dtype, device=block.device)
        out += sums.index_add_(1, cluster[start:stop], block)
        return
    ones = torch.ones(block.shape[1], dtype=block.dtype, device=block.device)
    for k in range(first, last + 1):
        lo, hi = max(bounds[k], start) - start, min(bounds[k + 1], stop) - start
        out[:, k] += block[:, lo:hi] @ ones[: hi - lo]


def _cluster_distance_sums(x, bounds, cluster, chunk_size):
    """``(n, clusters)`` float64: for every sample of ``x`` (sorted by cluster), the sum of its
    distances to the members of each cluster. For at most ``chunk_size`` clusters.

    Every pair of samples is computed once. Rows go ``chunk_size`` at a time, in blocks that
    never straddle two clusters; for a block of cluster ``k`` two matmuls give the distances
    to the rest of cluster ``k`` at or right of the block (from coordinates centred on
    cluster ``k``'s mean, so a tight cluster far from the others keeps its small distances
    exact to float32 precision) and to all clusters right of ``k`` (centred on the overall
    mean). Each distance serves its row (row sums) and its column (column sums).
    Memory: the float64 accumulator (at most ``n x chunk_size``), one ``chunk_size x n`` block
    and four copies of ``x`` with two extra columns.
    """
    n = x.shape[0]
    num_clusters = len(bounds) - 1
    sums = torch.zeros(n, num_clusters, dtype=torch.float64, device=x.device)
    left, right = _augmented(x, x.mean(dim=0))
    counts = torch.from_numpy(np.diff(bounds)).to(device=x.device, dtype=x.dtype)
    means = torch.zeros(num_clusters, x.shape[1], dtype=x.dtype, device=x.device)
    means.index_add_(0, cluster, x).div_(counts[:, None])
    own_left, own_right = _augmented(x, means[cluster])  # each sample from its cluster's mean
    ones = torch.ones(n, dtype=x.dtype, device=x.device)
    buffer = torch.empty(min(chunk_size, n) * n, dtype=x.dtype, device=x.device)
    for k in range(num_clusters):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        for i in range(lo, hi, chunk_size):
            stop = min(i + chunk_size, hi)
            rows = stop - i
            own = _distance_block(own_left[i:stop], own_right[i:hi], buffer)
            own[:, :rows].fill_diagonal_(0)  # exactly 0 to itself, as in scikit-learn
            sums[i:stop, k] += own @ ones[: hi - i]
            if stop < hi:
                sums[stop:hi, k] += ones[:rows] @ own[:, rows:]
            if hi < n:
                other = _distance_block(left[i:stop], right[hi:], buffer)
                _add_row_sums_by_cluster(sums[i:stop], other, bounds, cluster, hi)
                sums[hi:, k] += ones[:rows] @ other
    return sums


def _silhouette_sorted(x, bounds, cluster, chunk_size):
    """Silhouette values (float64) of ``x`` whose rows are sorted by ``cluster``."""
    n = x.shape[0]
    x = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    num_clusters = len(bounds) - 1
    counts = torch.from_numpy(np.diff(bounds)).to(device=x.device, dtype=torch.float64)
    own_count = counts[cluster]
    if num_clusters <= chunk_size:
        sums = _cluster_distance_sums(x, bounds, cluster, chunk_size)
        a = sums.gather(1, cluster[:, None])[:, 0] / (own_count - 1).clamp(min=1)
        mean = sums.div_(counts)
        mean.scatter_(1, cluster[:, None], torch.inf)
        b = mean.min(dim=1).values
    else:
        # More clusters than chunk_size: an (n, clusters) accumulator would exceed the memory
        # budget, so a(i) is computed cluster by cluster and b(i) one block of rows at a time.
        a = torch.zeros(n, dtype=torch.float64, device=x.device)
        for k in range(num_clusters):
            lo, hi = int(bounds[k]), int(bounds[k + 1])
            if hi - lo > 1:  # a singleton's silhouette is 0 whatever its a and b
                single = torch.zeros(hi - lo, dtype=torch.long, device=x.device)
                sums = _cluster_distance_sums(x[lo:hi], [0, hi - lo], single, chunk_size)
                a[lo:hi] = sums[:, 0] / (hi - lo - 1)
        b = torch.empty(n, dtype=torch.float64, device=x.device)
        left, right = _augmented(x, x.mean(dim=0))
        buffer = torch.empty(min(chunk_size, n) * n, dtype=x.dtype, device=x.device)
        for i in range(0, n, chunk_size):
            stop = min(i + chunk_size, n)
            block = _distance_block(left[i:stop], right, buffer)
            sums = torch.zeros(stop - i, num_clusters, dtype=torch.float64, device=x.device)
            _add_row_sums_by_cluster(sums, block, bounds, cluster, 0)
            mean = sums.div_(counts)
            mean.scatter_(1, cluster[i:stop, None], torch.inf)
            b[i:stop] = mean.min(dim=1).values

    silhouette = (b - a) / torch.maximum(a, b)
    # scikit-learn: singletons get 0, and so does 0/0 (a point whose a and b are both 0).
    silhouette = torch.where(own_count > 1, silhouette, 0.0)
    return torch.nan_to_num_(silhouette, nan=0.0)


def silhouette_samples(x, labels, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> torch.Tensor:
    """Silhouette value of every sample, ``(b - a) / max(a, b)``, on ``x``'s device.

    ``a``: mean Euclidean distance to the other members of the sample's cluster; ``b``: the
    smallest mean distance to the members of another cluster (Rousseeuw 1987). Same values as
    ``sklearn.metrics.silhouette_samples(x, labels)`` (within 1e-5; tested), same conventions:
    samples in singleton clusters get 0, and ``labels`` must hold between 2 and n - 1 distinct
    values (ValueError otherwise). Returns float64 for float64 ``x``, float32 otherwise.

    How: the n x n distance matrix is never held. Samples are sorted by cluster and the
    distances computed ``chunk_size`` rows at a time, one matmul per block
    (``|u|^2 + |v|^2 - 2 u.v``), each pair once: a block's distances serve its rows and, by
    symmetry, its columns. Each block is reduced at once to per-cluster sums (a few
    matrix-vector products over contiguous runs of a cluster) in a float64 ``(n, clusters)``
    accumulator. Float32 input is computed in float32, float64 input in float64; coordinates
    are centred on the mean, and distances within a cluster on that cluster's mean, so that
    tight clusters far apart (what a Magnet loss makes) lose no precision to cancellation.
    With more clusters than ``chunk_size``, ``a`` is computed cluster by cluster and ``b`` row
    block by row block instead (twice the arithmetic, same memory bound).

    Memory: ``O(n * (width + chunk_size + clusters))`` beyond ``x``, never ``O(n^2)``. Measured
    as the peak resident memory a call adds, in a fresh process (``VmHWM`` after the call, reset
    just before it through ``/proc/self/clear_refs``, minus ``VmRSS`` before; ``tracemalloc``
    does not see torch's allocator), CPU, float32, 128 dims, 10 clusters, default
    ``chunk_size``: 60,000 points about 380-460 MiB (it varies from run to run with the C
    allocator; ``chunk_size=256``: about 340 MiB), against about 690 MiB for scikit-learn;
    10,000 points about 66 MiB against 500 MiB. ``benchmarks/bench_silhouette.py`` measures it.
    Three later runs of ``python tests/_memory_probe.py silhouette 60000`` (one thread) gave
    373-374 MiB (the same measurement from a scratch script once gave 506 MiB); at 20,000
    points 126-169 MiB, which
    tests/test_robustness.py checks against a bound of 320 MiB (an n x n float32 distance
    matrix alone would be 1,526 MiB there).

    Under a TF32 setting on CUDA (``torch.set_float32_matmul_precision("high")`` or
    ``torch.backends.cuda.matmul.fp32_precision = "tf32"``) float32 distances lose about three
    digits; a warning then says so (this function does not change that global setting for
    you). On CPU the setting only matters on CPUs with AMX units.
    """
    x, labels = _latent_and_labels(x, labels)
    chunk_size = check_int("chunk_size", chunk_size, 1)
    _, cluster = torch.unique(labels, return_inverse=True)
    num_clusters = int(cluster.max()) + 1 if cluster.numel() else 0
    _check_number_of_clusters(num_clusters, x.shape[0])
    if x.dtype != torch.float64 and _reduced_precision_matmul(x.device):
        warnings.warn(
            "float32 matmuls run as TF32 on this device: silhouette values will differ from "
            "scikit-learn's by about 1e-3; pass x.double() for exact values",
            stacklevel=2,
        )
    order = torch.argsort(cluster, stable=True)
    counts = torch.bincount(cluster, minlength=num_clusters).cpu().numpy()
    bounds = np.concatenate([[0], np.cumsum(counts)])
    silhouette_sorted = _silhouette_sorted(x[order], bounds, cluster[order], chunk_size)
    silhouette = torch.empty_like(silhouette_sorted)
    silhouette[order] = silhouette_sorted
    return silhouette.to(torch.float64 if x.dtype == torch.float64 else torch.float32)


def silhouette_score(
    x,
    labels,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sample_size: int | None = None,
    seed: int | None = None,
) -> float:
    """Mean silhouette value over all samples (1: tight, well-separated clusters; 0: overlapping;
    negative: samples closer to another cluster), as ``sklearn.metrics.silhouette_score`` with
    ``metric="euclidean"``; see :func:`silhouette_samples` for how and at what memory cost.

    ``sample_size``: score a random subset of that many samples, drawn exactly as scikit-learn
    draws it (``np.random.RandomState(seed).permutation(n)[:sample_size]``), so the same
    ``seed`` as scikit-learn's ``random_state`` gives the same subset and the same score.

    Speed, measured on a 2-core CPU that other jobs were also using (float32, 128 dims, 10
    clusters, ``python benchmarks/bench_silhouette.py``): 10,000 points 0.78 s against 2.5 s for
    scikit-learn with one thread each (3.2x), 1.3 s against 2.7 s with both libraries' default
    threads (2.0x); 60,000 points 33 s against 99 s. The result is the same within 1e-7.
    """
    x, labels = _latent_and_labels(x, labels)
    if sample_size is not None:
        sample_size = check_int("sample_size", sample_size, 1, x.shape[0])
        if seed is not None:
            seed = check_int("seed", seed, 0, 2**32 - 1)
        subset = np.random.RandomState(seed).permutation(x.shape[0])[:sample_size]
        subset = torch.from_numpy(subset).to(x.device)
        x, labels = x[subset], labels[subset]
    return silhouette_samples(x, labels, chunk_size=chunk_size).double().mean().item()
