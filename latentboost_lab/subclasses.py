"""Sub-classes inside classes (issue 18; the paper's open question 3): how many clusters each
class needs, chosen without sub-class labels, and how much of the hidden sub-class structure a
latent space keeps.

A super-class task (``load_dataset(name, group=...)``, :mod:`latentboost_lab.data.groups`)
trains on super-class labels; its sub-class labels are used here only, to measure.

Choosing K per class from the training latents (:func:`select_k`, :func:`select_k_per_class`),
for K in 1..k_max, without labels other than the (super-)class:

- ``rule="silhouette"``: k-means (:func:`latentboost_lab.clusters.kmeans`, k-means++, the best
  of ``n_init`` starts by squared error) for K = 2..k_max; K is the one with the highest mean
  silhouette (Rousseeuw 1987), the smaller K on a tie. The silhouette has no value for K = 1, so
  K = 1 is chosen when no K reaches ``min_silhouette`` (default 0.25: Kaufman & Rousseeuw 1990,
  "Finding Groups in Data", ch. 2, call a best silhouette of 0.25 or less "no substantial
  structure"). Caveat, measured: k-means cuts a single 2-D Gaussian blob of 1,000 points into
  K = 2, 3, 4 with silhouettes 0.30, 0.33, 0.32, above the bound (so in 2-D the rule splits one
  blob); in 8-D 0.09, 0.08, 0.08, in 32-D 0.03, 0.02, 0.02 (below it). A latent that training
  has collapsed onto 2-3 principal directions behaves like the low-dimensional case.
- ``rule="bic"``: a mixture of K spherical Gaussians (one variance per component: the clusters
  Latent Boost and Magnet model are spheres), fitted by EM (scikit-learn's ``GaussianMixture``,
  ``covariance_type="spherical"``, started from the same k-means centres); K minimises the
  Bayesian information criterion (Schwarz 1978) ``BIC(K) = -2 ln L(K) + p(K) ln n`` with
  ``p(K) = K d + K + (K - 1)`` free parameters (means, variances, mixing weights), the smaller
  K on a tie. K = 1 is a model like any other, so one blob can win. A class that is one blob
  but not a sphere (elongated) is cut into several spheres: by design, that is the question
  the rule asks (how many spheres does the loss need here?).

Measured on real latents (``python tests/_subclass_probe.py``: SmallCNN, cross-entropy,
3 epochs on ``fmnist_super`` with n_train=6000, seed 0, k_max = 8; sub-classes per class
(4, 3, 3)): the silhouette rule chose (2, 2, 3) (best silhouettes 0.34, 0.36, 0.38; 5 s on one
thread), BIC chose (8, 8, 8), k_max, with BIC still falling at 8 (11 s). On ``digits_parity``
(``--group digits_parity --n-train 0 --n-test 0 --epochs 5``; (5, 5) sub-classes): silhouette
(2, 2), BIC (8, 8). A trained latent is not a few spheres, and BIC keeps adding them: use the
silhouette rule to choose K for training; BIC answers "how many spheres", which is not "how
many sub-classes".

Degenerate input, documented behaviour: k_max is capped at n - 1 (silhouette) or n (BIC) for a
class of n points; a class of fewer than 3 points (silhouette) or 2 (BIC), or whose points all
coincide, gets K = 1. Every choice is deterministic for a ``seed``.

The measures of sub-class recovery (:func:`subclass_measures`):

- ``subclass_nmi``, ``subclass_ari``: normalised mutual information (arithmetic mean
  normalisation, Strehl & Ghosh 2002) and adjusted Rand index (Hubert & Arabie 1985) between
  the K clusters and the hidden sub-classes (scikit-learn's ``normalized_mutual_info_score``
  and ``adjusted_rand_score``), inside each super-class, averaged over the super-classes
  whose test points hold at least 2 sub-classes (NaN when none does). K = 1 scores 0 there: a
  single cluster tells nothing about the sub-classes. The clusters: k-means with K_c clusters
  per class c on the *training* latents (what a cluster index holds); each *test* point joins
  the nearest centre of its own (true) super-class.
- ``subclass_nmi_all``, ``subclass_ari_all``: the same over all test points at once. Here
  K = 1 (clusters = super-classes) already scores ``NMI(super-classes, sub-classes)``, and
  NMI, not adjusted for chance, falls as clusters are added that match the sub-classes only in
  part (Vinh, Epps & Bailey, JMLR 2010). Measured (``python tests/_subclass_probe.py``, the
  latent above, 3,000 test images): NMI 0.642 with K = 1 against 0.562 with K = (4, 3, 3), ARI
  0.354 against 0.346, while inside the super-classes K = (4, 3, 3) scores NMI 0.187, ARI 0.172
  (K = 1: 0 and 0); hence the within-class values above.
- ``subclass_knn_accuracy``: the test points' sub-classes predicted by a k-NN vote
  (:func:`knn_accuracy`, Euclidean, k = 5) among the training latents with their sub-class
  labels (a probe: the sub-class labels never train the model).
- ``silhouette_super``, ``silhouette_sub``: the silhouette of the test latents against the
  super-classes and against the sub-classes (:func:`latentboost_lab.metrics.silhouette_score`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ._checks import check_choice, check_in_range, check_int, check_labels, check_latent
from .clusters import kmeans
from .metrics import silhouette_score

__all__ = [
    "KSelection",
    "assign_within_classes",
    "cluster_within_classes",
    "knn_accuracy",
    "select_k",
    "select_k_per_class",
    "subclass_measures",
]

RULES = ("silhouette", "bic")


@dataclass(frozen=True)
class KSelection:
    """The K a rule chose for one class, with the score of every K it tried (silhouette:
    higher is better, K >= 2 only; BIC: lower is better)."""

    k: int
    rule: str
    scores: dict[int, float] = field(default_factory=dict)


def _best_kmeans(x, k, n_init, iters, generator):
    """The k-means run (of ``n_init`` k-means++ starts) with the smallest squared error."""
    best = None
    for _ in range(n_init):
        centres, assignment = kmeans(x, k, iters, generator)
        error = float((x - centres[assignment]).pow(2).sum())
        if best is None or error < best[0]:
            best = (error, centres, assignment)
    return best[1], best[2]


def _silhouette_scores(x, k_max, min_silhouette, n_init, iters, sample_size, generator, seed):
    n = x.shape[0]
    # The silhouette of a K-clustering is scored on one fixed subset of the points (the same
    # for every K), drawn as scikit-learn draws its sample_size subset.
    subset = np.random.RandomState(seed).permutation(n)[: min(sample_size, n)]
    subset = torch.from_numpy(subset).to(x.device)
    scores = {}
    for k in range(2, min(k_max, n - 1) + 1):
        _, assignment = _best_kmeans(x, k, n_init, iters, generator)
        labels = assignment[subset]
        distinct = int(torch.unique(labels).numel())
        if not 2 <= distinct <= len(subset) - 1:  # no silhouette: skip this K
            continue
        scores[k] = silhouette_score(x[subset], labels)
    best = max(scores, key=lambda k: (scores[k], -k), default=None)
    return (1 if best is None or scores[best] < min_silhouette else best), scores


def _bic_scores(x, k_max, n_init, iters, generator, seed):
    from sklearn.mixture import GaussianMixture

    n, d = x.shape
    points = x.double().cpu().numpy()
    scale = float(points.var(axis=0).sum()) / d  # mean variance per coordinate
    scores = {}
    for k in range(1, min(k_max, n) + 1):
        centres, _ = _best_kmeans(x, k, n_init, iters, generator)
        if centres.shape[0] < k:
            break
        mixture = GaussianMixture(
            k,
            covariance_type="spherical",
            means_init=centres.double().cpu().numpy(),
            # scikit-learn's absolute floor on the variances, made relative to the data's scale
            reg_covar=1e-6 * scale,
            max_iter=200,
            random_state=seed,
        ).fit(points)
        scores[k] = float(mixture.bic(points))
    return min(scores, key=lambda k: (scores[k], k)), scores


def select_k(
    latent: torch.Tensor,
    k_max: int,
    *,
    rule: str = "silhouette",
    seed: int = 0,
    min_silhouette: float = 0.25,
    n_init: int = 3,
    kmeans_iters: int = 30,
    sample_size: int = 2000,
) -> KSelection:
    """The number of clusters of one class's latents ``(n, width)``, in 1..k_max, by ``rule``
    (``"silhouette"`` or ``"bic"``; see the module's docstring for both rules, their sources and
    their degenerate cases).

    min_silhouette: the silhouette rule's bound below which K = 1.
    n_init, kmeans_iters: k-means starts (the best by squared error) and Lloyd iterations.
    sample_size: the silhouette is scored on this many of the points (one fixed subset).
    """
    latent = check_latent(latent).detach().float()
    k_max = check_int("k_max", k_max, 1)
    check_choice("rule", rule, RULES)
    seed = check_int("seed", seed, 0)
    min_silhouette = check_in_range("min_silhouette", min_silhouette, -1, 1)
    n_init = check_int("n_init", n_init, 1)
    kmeans_iters = check_int("kmeans_iters", kmeans_iters, 1)
    sample_size = check_int("sample_size", sample_size, 3)
    n = latent.shape[0]
    if n == 0:
        raise ValueError("latent must hold at least one point, got 0")
    generator = torch.Generator().manual_seed(seed)
    spread = float((latent - latent.mean(dim=0)).abs().max())
    if k_max == 1 or spread == 0.0:  # nothing to split (one K, or every point the same)
        return KSelection(1, rule, {})
    if rule == "silhouette":
        k, scores = _silhouette_scores(
            latent, k_max, min_silhouette, n_init, kmeans_iters, sample_size, generator, seed
        )
    else:
        k, scores = _bic_scores(latent, k_max, n_init, kmeans_iters, generator, seed)
    return KSelection(k, rule, scores)


def _class_members(labels: torch.Tensor, num_classes: int | None):
    present = int(labels.max()) + 1 if labels.numel() else 0
    num_classes = present if num_classes is None else check_int("num_classes", num_classes, 1)
    if present > num_classes:
        raise ValueError(f"labels must be < num_classes ({num_classes}), got {present - 1}")
    members = [torch.nonzero(labels == c).flatten() for c in range(num_classes)]
    empty = [c for c, m in enumerate(members) if m.numel() == 0]
    if empty:
        raise ValueError(f"labels: the classes {empty} have no point; every class needs one")
    return members


def select_k_per_class(
    latent: torch.Tensor,
    labels: torch.Tensor,
    k_max: int,
    *,
    num_classes: int | None = None,
    rule: str = "silhouette",
    seed: int = 0,
    **options,
) -> tuple[KSelection, ...]:
    """:func:`select_k` for every class of ``labels`` (0..num_classes-1, each present), on that
    class's rows of ``latent``; class c uses seed ``seed * 100_003 + c``. ``options`` go to
    :func:`select_k`. Returns one :class:`KSelection` per class; ``[s.k for s in ...]`` is the
    K per class."""
    latent = check_latent(latent)
    labels = check_labels(labels, latent.shape[0]).to(latent.device)
    seed = check_int("seed", seed, 0)
    return tuple(
        select_k(latent[m], k_max, rule=rule, seed=seed * 100_003 + c, **options)
        for c, m in enumerate(_class_members(labels, num_classes))
    )


def _per_class_k(num_clusters, num_classes: int) -> list[int]:
    if isinstance(num_clusters, Sequence) and not isinstance(num_clusters, str):
        if len(num_clusters) != num_classes:
            raise ValueError(
                f"num_clusters must give one K per class ({num_classes}), got {len(num_clusters)}"
            )
        return [check_int(f"num_clusters[{c}]", k, 1) for c, k in enumerate(num_clusters)]
    return [check_int("num_clusters", num_clusters, 1)] * num_classes


def cluster_within_classes(
    latent: torch.Tensor,
    labels: torch.Tensor,
    num_clusters,
    *,
    num_classes: int | None = None,
    seed: int = 0,
    n_init: int = 3,
    kmeans_iters: int = 30,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """k-means inside every class (the best of ``n_init`` k-means++ starts by squared error,
    ``kmeans_iters`` Lloyd iterations): ``num_clusters`` an int (the same K for every class) or one
    K per class (e.g. from :func:`select_k_per_class`). Returns ``(centres (C, width),
    cluster_class (C,), assignment (n,))`` with global cluster ids, classes in order (a class of
    n < K points gets n clusters). Class c uses seed ``seed * 100_003 + c``."""
    latent = check_latent(latent).detach().float()
    labels = check_labels(labels, latent.shape[0]).to(latent.device)
    seed = check_int("seed", seed, 0)
    n_init = check_int("n_init", n_init, 1)
    kmeans_iters = check_int("kmeans_iters", kmeans_iters, 1)
    members = _class_members(labels, num_classes)
    ks = _per_class_k(num_clusters, len(members))
    centres, cluster_class = [], []
    assignment = torch.empty_like(labels)
    offset = 0
    for c, (m, k) in enumerate(zip(members, ks, strict=True)):
        generator = torch.Generator().manual_seed(seed * 100_003 + c)
        class_centres, local = _best_kmeans(latent[m], k, n_init, kmeans_iters, generator)
        assignment[m] = local + offset
        offset += class_centres.shape[0]
        centres.append(class_centres)
        cluster_class.append(torch.full((class_centres.shape[0],), c, device=latent.device))
    return torch.cat(centres), torch.cat(cluster_class).long(), assignment


def assign_within_classes(
    latent: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor, cluster_class: torch.Tensor
) -> torch.Tensor:
    """The global id of the nearest centre of each point's own class (n,)."""
    latent = check_latent(latent).float()
    labels = check_labels(labels, latent.shape[0]).to(latent.device)
    centres = check_latent(centres, name="centres").float().to(latent.device)
    cluster_class = check_labels(cluster_class, centres.shape[0], name="cluster_class")
    cluster_class = cluster_class.to(latent.device)
    if latent.shape[1] != centres.shape[1]:
        raise ValueError(
            f"centres must have the latent's width ({latent.shape[1]}), got {centres.shape[1]}"
        )
    missing = sorted(set(labels.unique().tolist()) - set(cluster_class.unique().tolist()))
    if missing:
        raise ValueError(f"labels: the classes {missing} have no centre in cluster_class")
    dist = torch.cdist(latent, centres).pow(2)
    dist = dist.masked_fill(cluster_class[None, :] != labels[:, None], math.inf)
    return dist.argmin(dim=1)


def _floating(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float64 else x.float()


def knn_accuracy(
    reference: torch.Tensor,
    reference_labels: torch.Tensor,
    query: torch.Tensor | None = None,
    query_labels: torch.Tensor | None = None,
    *,
    k: int = 5,
    chunk_size: int = 512,
) -> float:
    """Accuracy of a k-nearest-neighbour vote (Euclidean) among ``reference`` points with their
    labels, on the ``query`` points; without a query, leave-one-out on the reference points
    (each voted on by its k nearest others).

    The vote: the label most common among the k neighbours; a tie goes to the tied label with
    the nearest neighbour. Neighbours at exactly equal distance come in whatever order
    ``torch.topk`` gives. Distances are computed ``chunk_size`` query rows at a time, in
    float64 for a float64 reference, else in float32.
    """
    reference = _floating(check_latent(reference, name="reference"))
    reference_labels = check_labels(reference_labels, reference.shape[0], "reference_labels")
    reference_labels = reference_labels.to(reference.device)
    k = check_int("k", k, 1)
    chunk_size = check_int("chunk_size", chunk_size, 1)
    leave_one_out = query is None
    if leave_one_out != (query_labels is None):
        raise ValueError("query and query_labels must be given together (or neither)")
    if leave_one_out:
        query, query_labels = reference, reference_labels
    else:
        query = _floating(check_latent(query, name="query")).to(reference.device, reference.dtype)
        query_labels = check_labels(query_labels, query.shape[0], "query_labels")
        query_labels = query_labels.to(reference.device)
        if query.shape[1] != reference.shape[1]:
            raise ValueError(
                f"query must have the reference's width ({reference.shape[1]}), "
                f"got {query.shape[1]}"
            )
    available = reference.shape[0] - (1 if leave_one_out else 0)
    if not 1 <= k <= available:
        raise ValueError(f"k must be in [1, {available}] (the neighbours available), got {k}")
    if query.shape[0] == 0:
        raise ValueError("query must hold at least one point, got 0")
    num_labels = int(torch.maximum(reference_labels.max(), query_labels.max())) + 1
    # Vote weight: (k + 1) per neighbour plus, once per label, k - (rank of its nearest
    # neighbour) < k + 1: counts decide, and among tied counts the nearest neighbour does.
    rank_bonus = torch.arange(k, 0, -1, device=reference.device) - 1  # k-1, ..., 0
    correct = 0
    for start in range(0, query.shape[0], chunk_size):
        stop = min(start + chunk_size, query.shape[0])
        dist = torch.cdist(query[start:stop], reference)
        if leave_one_out:
            rows = torch.arange(stop - start, device=reference.device)
            dist[rows, rows + start] = math.inf
        neighbours = dist.topk(k, dim=1, largest=False, sorted=True).indices
        votes = reference_labels[neighbours]  # (rows, k), nearest first
        counts = torch.zeros(stop - start, num_labels, dtype=torch.long, device=reference.device)
        counts.scatter_add_(1, votes, torch.ones_like(votes))
        bonus = torch.zeros_like(counts).scatter_reduce_(
            1, votes, rank_bonus.expand_as(votes), reduce="amax", include_self=True
        )
        predicted = (counts * (k + 1) + bonus).argmax(dim=1)
        correct += int((predicted == query_labels[start:stop]).sum())
    return correct / query.shape[0]


def subclass_measures(
    train_latent: torch.Tensor,
    train_labels: torch.Tensor,
    train_sub_labels: torch.Tensor,
    test_latent: torch.Tensor,
    test_labels: torch.Tensor,
    test_sub_labels: torch.Tensor,
    num_clusters,
    *,
    num_classes: int | None = None,
    seed: int = 0,
    k_neighbours: int = 5,
    silhouette_sample_size: int | None = None,
) -> dict[str, float]:
    """How much hidden sub-class structure a latent keeps (see the module's docstring):
    ``subclass_nmi``, ``subclass_ari`` (inside super-classes), ``subclass_nmi_all``,
    ``subclass_ari_all`` (over all test points), ``subclass_knn_accuracy``,
    ``silhouette_super``, ``silhouette_sub``, and ``total_clusters`` (the sum of the K's).

    Labels are super-class labels, sub labels the hidden sub-classes (e.g.
    ``data.sub_labels("test")``). ``num_clusters``: an int or one K per class (the K a run
    trained with, or :func:`select_k_per_class`'s on the training latents).
    ``silhouette_sample_size``: score the silhouettes on a subset (None: every test point).
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    train_latent = check_latent(train_latent, name="train_latent")
    test_latent = check_latent(test_latent, name="test_latent")
    train_labels = check_labels(train_labels, train_latent.shape[0], "train_labels")
    train_sub_labels = check_labels(train_sub_labels, train_latent.shape[0], "train_sub_labels")
    test_labels = check_labels(test_labels, test_latent.shape[0], "test_labels")
    test_sub_labels = check_labels(test_sub_labels, test_latent.shape[0], "test_sub_labels")
    centres, cluster_class, _ = cluster_within_classes(
        train_latent, train_labels, num_clusters, num_classes=num_classes, seed=seed
    )
    clusters = assign_within_classes(test_latent, test_labels, centres, cluster_class)
    truth, found = test_sub_labels.cpu().numpy(), clusters.cpu().numpy()
    classes = test_labels.cpu().numpy()
    within = [  # (NMI, ARI) inside each super-class that holds 2 or more sub-classes
        (normalized_mutual_info_score(truth[inside], found[inside]),
         adjusted_rand_score(truth[inside], found[inside]))
        for inside in (classes == c for c in np.unique(classes))
        if len(np.unique(truth[inside])) >= 2
    ]  # fmt: skip
    test_device = test_latent.device
    return {
        "subclass_nmi": float(np.mean([nmi for nmi, _ in within])) if within else math.nan,
        "subclass_ari": float(np.mean([ari for _, ari in within])) if within else math.nan,
        "subclass_nmi_all": float(normalized_mutual_info_score(truth, found)),
        "subclass_ari_all": float(adjusted_rand_score(truth, found)),
        "subclass_knn_accuracy": knn_accuracy(
            train_latent, train_sub_labels, test_latent, test_sub_labels, k=k_neighbours
        ),
        "silhouette_super": silhouette_score(
            test_latent, test_labels.to(test_device), sample_size=silhouette_sample_size, seed=seed
        ),
        "silhouette_sub": silhouette_score(
            test_latent,
            test_sub_labels.to(test_device),
            sample_size=silhouette_sample_size,
            seed=seed,
        ),
        "total_clusters": float(centres.shape[0]),
    }
