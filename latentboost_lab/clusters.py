"""The Magnet training machinery (Rippel et al., ICLR 2016, section 3): cluster index,
neighbourhood sampler and nearest-cluster classifier.

- :class:`ClusterIndex`: K clusters per class by k-means on the latents of the whole training
  split (K = 1 gives the class means), refreshed every R epochs from a fresh pass over the data;
  assignments and centres refresh together (the paper's "cluster index"). K is one number for
  every class or one per class (issue 18: classes that are unions of sub-classes), and may be
  chosen once from the training latents by a rule given as ``select_k``.
- :class:`NeighbourhoodSampler`: a batch is a seed cluster drawn with probability proportional
  to its recent mean loss (uniform before any loss is known), its M - 1 nearest impostor clusters
  and D samples from each (the paper's neighbourhood sampling).
- :func:`nearest_cluster_scores`: class scores from the L nearest cluster centres (the paper's
  eq. 6), so that a Magnet-trained network can classify without a softmax head.

Our choices (not the paper's): k-means++ initialisation with a fixed seed and a few Lloyd
iterations, run on the latents' device; an empty cluster is re-seeded with the point farthest
from its centre; a class with fewer samples than K gets one cluster per sample; a cluster with
fewer than D members contributes all its members (the batch is then smaller); a sample's "recent"
loss is the last one recorded for it, so losses survive a refresh that moves it to another
cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from latentboost_lab._checks import check_in_range, check_int, check_labels, check_latent
from latentboost_lab.inference import embed


def kmeans(
    x: torch.Tensor, k: int, iters: int = 10, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means with k-means++ initialisation; returns (centres (k', d), assignment (n,)).

    ``k' = min(k, n)``. Random draws use ``generator`` on the CPU, so results are reproducible
    across devices for a given seed.
    """
    x = check_latent(x, name="x").float()
    k = check_int("k", k, 1)
    iters = check_int("iters", iters, 1)
    n = x.shape[0]
    if n == 0:
        raise ValueError("x must hold at least one point")
    k = min(k, n)
    if k == n:  # one point per cluster: nothing to optimise
        return x.clone(), torch.arange(n, device=x.device)
    if k == 1:  # the mean, without the iterations
        return x.mean(dim=0, keepdim=True), torch.zeros(n, dtype=torch.long, device=x.device)
    first = int(torch.randint(n, (1,), generator=generator))
    centres = x[first : first + 1]
    closest = (x - centres).pow(2).sum(dim=1)
    for _ in range(1, k):
        weights = closest.cpu().double()
        if weights.sum() <= 0:  # all remaining points coincide with a centre
            weights = torch.ones_like(weights)
        pick = int(torch.multinomial(weights, 1, generator=generator))
        centres = torch.cat([centres, x[pick : pick + 1]])
        closest = torch.minimum(closest, (x - x[pick]).pow(2).sum(dim=1))
    assignment = torch.full((n,), -1, dtype=torch.long, device=x.device)
    for _ in range(max(iters, 1)):
        dist = torch.cdist(x, centres).pow(2)
        new_assignment = dist.argmin(dim=1)
        # A one-hot matmul, not index_add_: the latter is ~50x slower on CPU for these shapes.
        one_hot = F.one_hot(new_assignment, k).to(x.dtype)
        counts = one_hot.sum(dim=0)
        sums = one_hot.T @ x
        centres = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centres)
        empty = torch.nonzero(counts == 0).flatten().tolist()
        if empty:  # re-seed empty clusters with the points worst served by their centres
            worst = dist.gather(1, new_assignment[:, None]).squeeze(1).topk(len(empty)).indices
            centres[empty] = x[worst]
            new_assignment[worst] = torch.tensor(empty, device=x.device)
        elif torch.equal(new_assignment, assignment):
            break
        assignment = new_assignment
    return centres, assignment


def check_num_clusters(num_clusters) -> int | tuple[int, ...]:
    """``num_clusters`` as an int >= 1 (every class) or a tuple of them (one per class)."""
    if isinstance(num_clusters, Sequence) and not isinstance(num_clusters, str):
        ks = tuple(check_int(f"num_clusters[{c}]", k, 1) for c, k in enumerate(num_clusters))
        if not ks:
            raise ValueError("num_clusters must give at least one K, got an empty sequence")
        return ks
    if isinstance(num_clusters, int) and not isinstance(num_clusters, bool):
        return check_int("num_clusters", num_clusters, 1)
    raise TypeError(
        "num_clusters must be an int >= 1 (K for every class) or a sequence with one K per "
        f"class, got {num_clusters!r}"
    )


class ClusterIndex:
    """K clusters per class over the whole training split, refreshed every R epochs.

    Args:
        num_clusters: K, clusters per class (K = 1: the class means): one int for every class,
            or a sequence with one K per class (class c gets ``num_clusters[c]``; its length
            must be the number of classes when the index is fitted).
        refresh_every: R, refresh the index every R epochs (epochs 0, R, 2R, ...).
        kmeans_iters: Lloyd iterations per refresh.
        seed: seed of the k-means++ initialisation (combined with the epoch).
        batch_size: batch size of the embedding pass.
        select_k: None, or a rule that chooses K per class from the training latents, called
            as ``select_k(latent, labels, num_classes)`` and returning one K per class (ints,
            or objects with ``k`` and ``scores``, such as
            :class:`latentboost_lab.subclasses.KSelection`). It is called once, at the first
            refresh at or after epoch ``select_k_epoch``, on the latents that refresh embeds;
            the K's it returns replace ``num_clusters`` from then on. Until then the index
            clusters with ``num_clusters``.
        select_k_epoch: when to choose (default 1: after one epoch of training; at epoch 0
            the latent is the untrained network's).

    After :meth:`fit` or :meth:`refresh`: ``centres`` (C, d), ``cluster_class`` (C,),
    ``assignments`` (N_train,) global cluster ids, ``num_classes``, ``variance`` (the shared
    ``sum ||z - mu_k||^2 / (N - 1)`` over the split) and ``fitted_epoch``; after a choice,
    ``selected_epoch`` and ``selection`` (per class ``{"k", "rule", "scores"}``).
    """

    def __init__(
        self,
        num_clusters: int | Sequence[int] = 1,
        refresh_every: int = 1,
        *,
        kmeans_iters: int = 10,
        seed: int = 0,
        batch_size: int = 1024,
        select_k: Callable | None = None,
        select_k_epoch: int = 1,
    ):
        self.num_clusters = check_num_clusters(num_clusters)
        self.refresh_every = check_int("refresh_every", refresh_every, 1)
        self.kmeans_iters = check_int("kmeans_iters", kmeans_iters, 1)
        self.seed = check_int("seed", seed)
        self.batch_size = check_int("batch_size", batch_size, 1)
        if select_k is not None and not callable(select_k):
            raise TypeError(
                "select_k must be None or a function (latent, labels, num_classes) -> one K per "
                f"class, got {select_k!r}"
            )
        self.select_k = select_k
        self.select_k_epoch = check_int("select_k_epoch", select_k_epoch, 0)
        self.selected_epoch: int | None = None
        self.selection: list[dict] | None = None
        self.centres: torch.Tensor | None = None
        self.cluster_class: torch.Tensor | None = None
        self.assignments: torch.Tensor | None = None
        self.variance: torch.Tensor | None = None
        self.num_classes = 0
        self.fitted_epoch: int | None = None

    @property
    def fitted(self) -> bool:
        return self.centres is not None

    @property
    def max_k(self) -> int:
        """The largest K of any class (K > 1: the clusters are not the classes)."""
        ks = self.num_clusters
        return max(ks) if isinstance(ks, tuple) else ks

    def k_per_class(self, num_classes: int | None = None) -> list[int]:
        """The K of every class (``num_classes`` of them; default the fitted index's)."""
        num_classes = self.num_classes if num_classes is None else num_classes
        if isinstance(self.num_clusters, tuple):
            self._check_k_count(num_classes)
            return list(self.num_clusters)
        return [self.num_clusters] * num_classes

    def _check_k_count(self, num_classes: int) -> None:
        if isinstance(self.num_clusters, tuple) and len(self.num_clusters) != num_classes:
            raise ValueError(
                f"num_clusters must give one K per class ({num_classes} classes), got "
                f"{len(self.num_clusters)}: {list(self.num_clusters)}"
            )

    def fit(
        self,
        latent: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int | None = None,
        epoch: int = 0,
    ) -> ClusterIndex:
        """Cluster each class of ``latent`` into (at most) K clusters by k-means."""
        check_latent(latent)
        check_labels(labels, latent.shape[0])
        if latent.shape[0] < 1:
            raise ValueError("latent must hold at least one sample")
        latent = latent.detach().float()
        labels = labels.to(latent.device)
        present = int(labels.max()) + 1
        self.num_classes = (
            present if num_classes is None else check_int("num_classes", num_classes, present)
        )
        self._check_k_count(self.num_classes)
        ks = self.k_per_class()
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        centres, classes = [], []
        assignments = torch.empty_like(labels)
        for c in torch.unique(labels).tolist():
            members = torch.nonzero(labels == c).flatten()
            class_centres, local = kmeans(latent[members], ks[c], self.kmeans_iters, generator)
            assignments[members] = local + sum(len(cc) for cc in centres)
            centres.append(class_centres)
            classes.append(
                torch.full((len(class_centres),), c, dtype=torch.long, device=latent.device)
            )
        self.centres = torch.cat(centres)
        self.cluster_class = torch.cat(classes)
        self.assignments = assignments
        residual = (latent - self.centres[assignments]).pow(2).sum()
        self.variance = residual / max(latent.shape[0] - 1, 1)
        self.fitted_epoch = epoch
        return self

    _STATE = ("centres", "cluster_class", "assignments", "variance", "num_classes", "fitted_epoch")
    # Added with per-class K (issue 18): a checkpoint written before has none of them, and its
    # index had the constructor's K and no choice.
    _CHOICE = ("num_clusters", "selected_epoch", "selection")

    def state(self) -> dict:
        """The fitted index as a plain dict (tensors, ints, None), for checkpoints: a resumed
        run reuses it (and the K's chosen by ``select_k``) until its next refresh, as an
        uninterrupted run does."""
        return {key: getattr(self, key) for key in self._STATE + self._CHOICE}

    def load_state(self, state: dict) -> None:
        """Restore what :meth:`state` returned."""
        for key in self._STATE:
            setattr(self, key, state[key])
        for key in self._CHOICE:
            if key in state:
                setattr(self, key, state[key])

    def due(self, epoch: int) -> bool:
        """Whether :meth:`refresh` at ``epoch`` recomputes the index."""
        epoch = check_int("epoch", epoch, 0)
        return not self.fitted or epoch % self.refresh_every == 0

    def refresh(self, model: nn.Module, data, epoch: int) -> bool:
        """Re-embed the training split and re-cluster it when due; return whether it did. At
        the first refresh at or after ``select_k_epoch``, ``select_k`` first chooses K per class
        on the same latents.

        The pass runs in eval mode without gradients (:func:`latentboost_lab.inference.embed`).
        """
        if not self.due(epoch):
            return False
        latent, labels = embed(model, data, "train", batch_size=self.batch_size)
        num_classes = getattr(data, "num_classes", None)
        if self.select_k is not None and self.selected_epoch is None:
            if epoch >= self.select_k_epoch:
                self.choose_k(latent, labels, num_classes, epoch)
        self.fit(latent, labels, num_classes, epoch)
        return True

    def choose_k(self, latent, labels, num_classes: int | None, epoch: int) -> list[int]:
        """Call ``select_k`` on these training latents; its K's replace ``num_clusters``."""
        if self.select_k is None:
            raise RuntimeError("choose_k needs a select_k rule (ClusterIndex(select_k=...))")
        num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
        chosen = list(self.select_k(latent, labels, num_classes))
        if len(chosen) != num_classes:
            raise ValueError(
                f"select_k must return one K per class ({num_classes}), got {len(chosen)}"
            )
        self.selection = [
            {
                "k": int(getattr(c, "k", c)),
                "rule": getattr(c, "rule", None),
                "scores": {int(k): float(v) for k, v in getattr(c, "scores", {}).items()},
            }
            for c in chosen
        ]
        self.num_clusters = check_num_clusters([entry["k"] for entry in self.selection])
        self.selected_epoch = epoch
        return list(self.num_clusters)

    def cluster_ids(self, sample_ids: torch.Tensor, *, check: bool = True) -> torch.Tensor:
        """Global cluster ids of training samples given by their indices into the split
        (``check=False``: the indices' range is not read on the host, as in the training step)."""
        if not self.fitted:
            raise RuntimeError("the cluster index is not fitted yet: call refresh or fit first")
        check_labels(sample_ids, name="sample_ids", values=check)
        if check and sample_ids.numel() and int(sample_ids.max()) >= self.assignments.shape[0]:
            raise ValueError(
                f"sample_ids must index the training split (< {self.assignments.shape[0]}), "
                f"got {int(sample_ids.max())}"
            )
        return self.assignments[sample_ids.to(self.assignments.device)].to(sample_ids.device)


class NeighbourhoodSampler:
    """Magnet's neighbourhood batches, following the batch-sampler protocol of ``fit``.

    ``sampler(labels, epoch)`` yields index batches into the training split: each batch draws a
    seed cluster with probability proportional to its recent mean loss (uniform before losses
    exist), adds its ``clusters_per_batch - 1`` nearest impostor clusters (other classes, by
    centre distance), and takes ``samples_per_cluster`` samples from each (all of them when a
    cluster has fewer). ``record_losses(indices, per_sample)`` writes losses back per sample.
    An epoch has ``ceil(N / (M * D))`` batches unless ``batches_per_epoch`` is given.
    """

    def __init__(
        self,
        index: ClusterIndex,
        clusters_per_batch: int = 8,
        samples_per_cluster: int = 32,
        *,
        batches_per_epoch: int | None = None,
        seed: int = 0,
    ):
        self.index = index
        self.clusters_per_batch = check_int("clusters_per_batch", clusters_per_batch, 1)
        self.samples_per_cluster = check_int("samples_per_cluster", samples_per_cluster, 1)
        self.batches_per_epoch = (
            None
            if batches_per_epoch is None
            else check_int("batches_per_epoch", batches_per_epoch, 1)
        )
        self.seed = check_int("seed", seed)
        self.sample_losses: torch.Tensor | None = None  # last loss of each training sample

    def state(self) -> dict:
        """The recorded losses (what seeds the batches), for checkpoints."""
        return {"sample_losses": self.sample_losses}

    def load_state(self, state: dict) -> None:
        self.sample_losses = state["sample_losses"]

    def record_losses(self, indices: torch.Tensor, per_sample: torch.Tensor) -> None:
        """Remember the latest loss of each sample in ``indices`` (checked for type and shape
        only: the training step reads no value on the host)."""
        check_labels(indices, name="indices", values=False)
        per_sample = per_sample.detach().float().flatten()
        if per_sample.shape[0] != indices.shape[0]:
            raise ValueError(
                f"per_sample must have one entry per index ({indices.shape[0]}), got {per_sample.shape[0]}"
            )
        if self.sample_losses is None:
            n = self.index.assignments.shape[0] if self.index.fitted else int(indices.max()) + 1
            self.sample_losses = torch.full((n,), float("nan"), device=per_sample.device)
        self.sample_losses[indices.to(self.sample_losses.device)] = per_sample.to(
            self.sample_losses.device
        )

    def cluster_weights(self) -> torch.Tensor:
        """Seed probabilities (C,) on the CPU: proportional to each cluster's mean recent loss."""
        n_clusters = self.index.centres.shape[0]
        uniform = torch.full((n_clusters,), 1.0 / n_clusters, dtype=torch.float64)
        if self.sample_losses is None:
            return uniform
        losses = self.sample_losses.double().cpu()
        assignments = self.index.assignments.cpu()
        known = ~torch.isnan(losses)
        if not known.any():
            return uniform
        sums = torch.bincount(assignments[known], weights=losses[known], minlength=n_clusters)
        counts = torch.bincount(assignments[known], minlength=n_clusters).double()
        means = sums / counts.clamp_min(1)
        # A cluster none of whose members has a loss yet gets the average of the others.
        means = torch.where(counts > 0, means, means[counts > 0].mean())
        total = means.sum()
        return means / total if total > 0 else uniform

    def __call__(self, labels: torch.Tensor, epoch: int) -> Iterator[torch.Tensor]:
        if not self.index.fitted:
            raise RuntimeError("the neighbourhood sampler needs a fitted cluster index")
        check_labels(labels, self.index.assignments.shape[0])
        check_int("epoch", epoch, 0)
        return self._batches(labels.device, epoch)

    def _batches(self, device: torch.device, epoch: int) -> Iterator[torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        centres = self.index.centres.float().cpu()
        cluster_class = self.index.cluster_class.cpu()
        assignments = self.index.assignments.cpu()
        order = torch.argsort(assignments, stable=True)
        counts = torch.bincount(assignments, minlength=centres.shape[0])
        starts = torch.cumsum(counts, 0) - counts
        centre_dist = torch.cdist(centres, centres)
        impostor = cluster_class[None, :] != cluster_class[:, None]
        centre_dist = centre_dist.masked_fill(~impostor, float("inf"))
        n_impostors = min(self.clusters_per_batch - 1, int(impostor.sum(1).min()))
        n_batches = self.batches_per_epoch or -(
            -assignments.shape[0] // (self.clusters_per_batch * self.samples_per_cluster)
        )
        for _ in range(n_batches):
            seed_cluster = int(torch.multinomial(self.cluster_weights(), 1, generator=generator))
            neighbours = centre_dist[seed_cluster].topk(n_impostors, largest=False).indices.tolist()
            batch = []
            for cluster in [seed_cluster, *neighbours]:
                start, size = int(starts[cluster]), int(counts[cluster])
                take = torch.randperm(size, generator=generator)[: self.samples_per_cluster]
                batch.append(order[start + take])
            yield torch.cat(batch).to(device)


def nearest_cluster_scores(
    latent: torch.Tensor,
    centres: torch.Tensor,
    cluster_class: torch.Tensor,
    num_classes: int,
    sigma2: torch.Tensor | float,
    num_neighbours: int | None = None,
) -> torch.Tensor:
    """Magnet's classifier (Rippel et al. eq. 6): class scores from the L nearest centres.

    The score of class c for sample x is ``sum over the L nearest centres mu of class c of
    exp(-||x - mu||^2 / (2 sigma^2))``, normalised over the classes (rows sum to 1). Computed as a
    softmax in log space, so no row is 0/0. ``num_neighbours`` None uses every centre.
    """
    check_latent(latent)
    check_int("num_classes", num_classes, 1)
    n_centres = centres.shape[0]
    neighbours = (
        n_centres
        if num_neighbours is None
        else min(check_int("num_neighbours", num_neighbours, 1), n_centres)
    )
    sigma2 = torch.as_tensor(sigma2, dtype=torch.float32, device=latent.device)
    check_in_range("sigma2", float(sigma2), 0.0, low_inclusive=False)
    latent = latent.float()
    centres = centres.to(latent.device, torch.float32)
    dist = torch.cdist(latent, centres).pow(2)
    near_dist, near = dist.topk(neighbours, dim=1, largest=False)
    weights = torch.softmax(-near_dist / (2.0 * sigma2), dim=1)
    scores = torch.zeros(latent.shape[0], num_classes, device=latent.device)
    return scores.scatter_add_(1, cluster_class.to(latent.device)[near], weights)
