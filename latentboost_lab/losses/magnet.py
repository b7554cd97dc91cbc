"""Magnet loss (Rippel, Paluri, Dollar, Bourdev, "Metric Learning with Adaptive Density
Discrimination", ICLR 2016), the minibatch objective of eq. 5.

For one batch with latents ``z_i``, classes ``y_i`` and cluster ids ``k_i`` (clusters nest inside
classes; by default one cluster per class, ``k_i = y_i``), with ``mu_k`` the mean of the batch
members of cluster ``k`` and ``d_ik = ||z_i - mu_k||^2``:

    sigma^2 = sum_i d_{i,k_i} / (N - 1)
    l_i     = max(0, d_{i,k_i} / (2 sigma^2) + m + log sum_{k: class(k) != y_i} exp(-d_ik / (2 sigma^2)))
    loss    = mean_i l_i

This is the paper's objective (its alpha is our ``margin`` m). Gradients flow through the means and
the variance. Three things some public ports get wrong are right here: the variance is divided by
``2 sigma^2`` (not ``2 sigma^4``), so the loss does not depend on the scale of the latent; only
impostor clusters (another class) enter the denominator; it is computed in log space, so it never
forms exp/exp and never produces NaN.

Our choices (not the paper's): a sample with no impostor cluster in the batch contributes 0 (a
single-class batch gives 0); the variance is floored at ``eps`` times the mean squared norm of the
centred batch (plus the smallest normal float) so that a batch whose points coincide still gives a
finite value; the batch is centred first, which changes nothing mathematically (every term is
translation invariant) but keeps float32 accurate far from the origin.

:class:`MagnetObjective` wraps the loss for the training loop with the rest of the Magnet method
(cluster index, neighbourhood sampler, nearest-cluster classifier) from
:mod:`latentboost_lab.clusters`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from latentboost_lab._checks import (
    check_choice,
    check_in_range,
    check_int,
    check_labels,
    check_latent,
)
from latentboost_lab.clusters import ClusterIndex, NeighbourhoodSampler, nearest_cluster_scores
from latentboost_lab.losses.base import LossResult, Objective


class MagnetTerms(NamedTuple):
    """The per-sample pieces of a Magnet-style loss (all with gradients).

    ``intra``: ``A_i = d_{i,k_i} / (2 sigma_{k_i}^2)``; ``inter``: ``B_i = log sum over impostor
    clusters k of exp(-d_ik / (2 sigma_k^2))``, 0 where ``has_impostor`` is False;
    ``cluster_variance``: the variance used for each cluster present in the batch;
    ``shared_variance``: the batch's shared sigma^2; ``cluster_present``: which of the
    clusters have a member in the batch (the others take no part).
    """

    intra: torch.Tensor
    inter: torch.Tensor
    has_impostor: torch.Tensor
    cluster_variance: torch.Tensor
    shared_variance: torch.Tensor
    cluster_present: torch.Tensor


def full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """Upcast half/bfloat16 to float32; float32 and float64 pass through.

    bf16 has 8 bits of mantissa: squared distances, their sums and exp(-d / 2 sigma^2) lose
    every digit that separates near clusters, and the variance can round to 0. The loss is a
    small share of the step's cost, so it always runs in at least float32.
    """
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def check_cluster_ids(labels: torch.Tensor, cluster_ids: torch.Tensor | None):
    """Compact cluster ids to 0..C-1; return (member (N,), cluster_class (C,)).

    Raises ValueError if a cluster holds samples of more than one class.
    """
    given = cluster_ids is not None
    if given:
        check_labels(cluster_ids, labels.shape[0], name="cluster_ids")
    else:
        cluster_ids = labels
    _, member = torch.unique(cluster_ids, return_inverse=True)
    n_clusters = int(member.max()) + 1 if member.numel() else 0
    cluster_class = labels.new_zeros(n_clusters).scatter_(0, member, labels)
    if given and not torch.equal(cluster_class[member], labels):
        raise ValueError(
            "cluster_ids must nest inside labels: every cluster must hold one class only"
        )
    return member, cluster_class


def cluster_layout(
    labels: torch.Tensor,
    *,
    num_classes: int | None = None,
    index: ClusterIndex | None = None,
    sample_ids: torch.Tensor | None = None,
    cluster_ids: torch.Tensor | None = None,
    check_values: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's clusters as ``(member (N,), cluster_class (C,))``, with the number of
    clusters C known on the host before the batch: the classes (``num_classes``, one cluster
    each) or the cluster index's clusters (K per class, looked up by ``sample_ids``). Nothing
    is read from the device, so the training step never waits for it; clusters absent from the
    batch are masked inside :func:`magnet_terms`.

    Explicit ``cluster_ids``, or no ``num_classes`` and no index with K > 1, fall back to
    :func:`check_cluster_ids` (compacting the ids present, which reads them on the host).
    """
    if cluster_ids is not None:
        return check_cluster_ids(labels, cluster_ids)
    if index is not None and index.max_k > 1:
        if sample_ids is None:
            raise ValueError("sample_ids (or cluster_ids) are required when num_clusters > 1")
        return index.cluster_ids(sample_ids, check=check_values), index.cluster_class
    if num_classes is None:
        return check_cluster_ids(labels, None)
    return labels, torch.arange(num_classes, device=labels.device)


def magnet_terms(
    latent: torch.Tensor,
    labels: torch.Tensor,
    member: torch.Tensor,
    cluster_class: torch.Tensor,
    *,
    per_cluster_variance: bool = False,
    eps: float = 1e-6,
    variance_floor: float = 0.0,
    variance_gradient: bool = True,
) -> MagnetTerms:
    """Compute A_i, B_i and the variances for an already validated batch.

    ``member`` are cluster ids (0..C-1) and ``cluster_class`` the class of each cluster, as
    returned by :func:`cluster_layout` or :func:`check_cluster_ids`; a cluster without a member
    in the batch takes no part (it is no impostor, and its variance is not used). With ``per_cluster_variance`` each cluster with at
    least two members uses ``sigma_k^2 = sum_{i in k} d_ik / (n_k - 1)`` floored at
    ``variance_floor`` times the batch's mean squared norm; a single-member cluster falls back to
    the shared variance (this option is Latent Boost's, see :mod:`.latent_boost`).
    ``variance_gradient=False`` detaches the variances: they scale the terms but receive no
    gradient (a reading of Latent Boost, see :mod:`.latent_boost`).
    """
    n = latent.shape[0]
    z = latent - latent.mean(dim=0, keepdim=True)
    n_clusters = cluster_class.shape[0]
    # (N, C) by comparison, not F.one_hot (which reads the ids' range on the host).
    one_hot = (member[:, None] == torch.arange(n_clusters, device=member.device)).to(z.dtype)
    counts = one_hot.sum(dim=0)
    present = counts > 0
    # clamp_min(1): an absent cluster's mean is 0, not 0/0 (whose gradient would be NaN).
    means = (one_hot.T @ z) / counts.clamp_min(1)[:, None]
    # d_{i,k_i} by direct differences: it sets A_i and the variances, and the expansion below
    # would cancel catastrophically in float32 once clusters are tight.
    own = (z - means[member]).pow(2).sum(dim=1)
    # The (N, C) matrix, used for impostor clusters only, by |z|^2 - 2 z.mu + |mu|^2: one matmul,
    # ~10x cheaper on CPU than materialising N x C x d differences. Its rounding error,
    # ~1e-7 (|z|^2 + |mu|^2) in float32 on a centred batch, matters only for an impostor
    # cluster lying almost on the sample, far from the batch's centre.
    sq_norm = z.pow(2).sum(dim=1)
    dist = (sq_norm[:, None] - 2.0 * z @ means.T + means.pow(2).sum(dim=1)).clamp_min(0)

    tiny = torch.finfo(z.dtype).tiny
    mean_sq_norm = sq_norm.mean()
    shared = torch.maximum(own.sum() / max(n - 1, 1), eps * mean_sq_norm + tiny)
    if per_cluster_variance:
        per = (one_hot.T @ own) / (counts - 1).clamp_min(1)
        per = torch.where(counts > 1, per, shared)
        variance = torch.maximum(per, variance_floor * mean_sq_norm + tiny)
    else:
        variance = shared.expand(n_clusters)

    if not variance_gradient:
        variance = variance.detach()
    two_var = 2.0 * variance
    intra = own / two_var[member]
    impostor = (cluster_class[None, :] != labels[:, None]) & present[None, :]  # (N, C)
    has_impostor = impostor.any(dim=1)
    scaled = (-dist / two_var[None, :]).masked_fill(~impostor, float("-inf"))
    # A row with no impostor would be all -inf, whose logsumexp backward is 0 * NaN: give such
    # rows a finite dummy and zero their result instead.
    scaled = torch.where(has_impostor[:, None], scaled, torch.zeros_like(scaled))
    inter = torch.where(has_impostor, torch.logsumexp(scaled, dim=1), torch.zeros_like(own))
    return MagnetTerms(intra, inter, has_impostor, variance, shared, present)


class MagnetLoss(nn.Module):
    """Magnet loss, Rippel et al. (ICLR 2016) eq. 5; see the module docstring for the formula.

    Args:
        margin: the separation margin m (the paper's alpha), >= 0; default 1.
        eps: floor of the shared variance relative to the batch's mean squared norm (ours).

    Call: ``loss(latent, labels, cluster_ids=None) -> scalar``; ``latent`` is (N, d) float,
    ``labels`` (N,) long, ``cluster_ids`` (N,) long with clusters nested in classes (default: one
    cluster per class). Runs in at least float32, also under autocast.
    """

    def __init__(self, margin: float = 1.0, eps: float = 1e-6):
        super().__init__()
        self.margin = check_in_range("margin", margin, 0.0)
        self.eps = check_in_range("eps", eps, 0.0)

    def per_sample_losses(
        self, latent, labels, cluster_ids=None
    ) -> tuple[torch.Tensor, MagnetTerms]:
        """The per-sample losses ``l_i`` (N,) and the terms they are made of."""
        check_latent(latent)
        check_labels(labels, latent.shape[0])
        member, cluster_class = check_cluster_ids(labels, cluster_ids)
        with torch.autocast(latent.device.type, enabled=False):
            terms = magnet_terms(
                full_precision(latent), labels, member, cluster_class, eps=self.eps
            )
            # Same order of additions as LatentBoostLoss, so that it reduces to this bit for bit.
            hinge = F.relu(terms.intra + terms.inter + self.margin)
            losses = torch.where(terms.has_impostor, hinge, torch.zeros_like(hinge))
        return losses, terms

    def forward(self, latent, labels, cluster_ids=None) -> torch.Tensor:
        losses, _ = self.per_sample_losses(latent, labels, cluster_ids)
        return losses.mean()

    def extra_repr(self) -> str:
        return f"margin={self.margin}, eps={self.eps}"


class MagnetObjective(Objective):
    """The whole Magnet method (Rippel et al. 2016, section 3) for the training loop ``fit``.

    Trains the latent with :class:`MagnetLoss` only (the softmax head is ignored; classify with
    :meth:`predict`). It owns a :class:`~latentboost_lab.clusters.ClusterIndex` (K clusters per
    class by k-means over the whole training split, refreshed every ``refresh_every`` epochs in
    :meth:`on_epoch_start`; K one int, one K per class, or chosen once by ``select_k``: see
    the index) and, unless ``neighbourhood_sampling=False``, a
    :class:`~latentboost_lab.clusters.NeighbourhoodSampler` exposed as ``.sampler`` that ``fit``
    uses to draw batches (``clusters_per_batch`` M clusters of ``samples_per_cluster`` D samples;
    our defaults M = 8, D = 32 give batches of 256 like the other arms).

    An :class:`~.base.Objective`: ``loss(logits, latent, labels, epoch, sample_ids=None) ->
    scalar`` (``logits`` may be None); with K > 1 the cluster ids are looked up from
    ``sample_ids`` (indices into the training split). Parts: ``dist``, ``sigma2``, ``active``;
    ``per_sample`` feeds the sampler.

    :meth:`predict` is the paper's nearest-cluster classifier (eq. 6): class scores are the
    normalised sums of ``exp(-||x - mu||^2 / (2 sigma^2))`` over the ``num_neighbours`` L nearest
    cluster centres (all of them by default, ours), with sigma^2 the running mean of the batch
    variances since the last refresh.
    """

    needs_sample_ids = True
    uses_logits = False
    predicts = True

    def __init__(
        self,
        margin: float = 1.0,
        num_clusters: int | Sequence[int] = 1,
        refresh_every: int = 1,
        clusters_per_batch: int = 8,
        samples_per_cluster: int = 32,
        num_neighbours: int | None = None,
        neighbourhood_sampling: bool = True,
        kmeans_iters: int = 10,
        eps: float = 1e-6,
        seed: int = 0,
        select_k: Callable | None = None,
        select_k_epoch: int = 1,
    ):
        super().__init__()
        self.magnet = MagnetLoss(margin, eps)
        self.index = ClusterIndex(
            num_clusters,
            refresh_every,
            kmeans_iters=kmeans_iters,
            seed=seed,
            select_k=select_k,
            select_k_epoch=select_k_epoch,
        )
        self.num_neighbours = (
            None if num_neighbours is None else check_int("num_neighbours", num_neighbours, 1)
        )
        check_choice("neighbourhood_sampling", neighbourhood_sampling, (True, False))
        if neighbourhood_sampling:
            self.sampler = NeighbourhoodSampler(
                self.index, clusters_per_batch, samples_per_cluster, seed=seed
            )
        self._sigma2_sum: torch.Tensor | None = None
        self._sigma2_count = 0

    def on_epoch_start(self, model: nn.Module, data, epoch: int) -> None:
        """Refresh the cluster index when due (every ``refresh_every`` epochs)."""
        if self.index.refresh(model, data, epoch):
            self._sigma2_sum, self._sigma2_count = None, 0

    def get_extra_state(self) -> dict:
        """The cluster index, the sampler's recorded losses and the running variance go into
        ``state_dict()`` (plain tensors and numbers), so that a run resumed from a checkpoint
        continues exactly as an uninterrupted one."""
        sampler = getattr(self, "sampler", None)
        return {
            "index": self.index.state(),
            "sampler": sampler.state() if sampler is not None else None,
            "sigma2_sum": self._sigma2_sum,
            "sigma2_count": self._sigma2_count,
        }

    def set_extra_state(self, state: dict) -> None:
        self.index.load_state(state["index"])
        sampler = getattr(self, "sampler", None)
        if sampler is not None and state["sampler"] is not None:
            sampler.load_state(state["sampler"])
        self._sigma2_sum, self._sigma2_count = state["sigma2_sum"], state["sigma2_count"]

    def compute_loss(
        self, logits, latent, labels, epoch, cluster_ids=None, sample_ids=None, *, check_values=True
    ):
        check_int("epoch", epoch, 0)
        member, cluster_class = cluster_layout(
            labels,
            num_classes=None if logits is None else logits.shape[1],
            index=self.index,
            sample_ids=sample_ids,
            cluster_ids=cluster_ids,
            check_values=check_values,
        )
        with torch.autocast(latent.device.type, enabled=False):
            terms = magnet_terms(
                full_precision(latent), labels, member, cluster_class, eps=self.magnet.eps
            )
            hinge = F.relu(terms.intra + terms.inter + self.magnet.margin)  # as MagnetLoss's
            losses = torch.where(terms.has_impostor, hinge, torch.zeros_like(hinge))
        loss = losses.mean()
        sigma2 = terms.shared_variance.detach()
        self._sigma2_sum = sigma2 if self._sigma2_sum is None else self._sigma2_sum + sigma2
        self._sigma2_count += 1
        parts = {
            "dist": loss.detach(),
            "sigma2": sigma2,
            "active": (losses.detach() > 0).float().mean(),
        }
        return LossResult(loss, parts, losses.detach())

    @property
    def sigma2(self) -> torch.Tensor:
        """Running mean of the batch variances since the last refresh (the index's own before)."""
        if self._sigma2_count == 0:
            return self.index.variance
        return self._sigma2_sum / self._sigma2_count

    @torch.no_grad()
    def predict(self, latent: torch.Tensor) -> torch.Tensor:
        """Class scores (N, num_classes), rows summing to 1, by the nearest-cluster rule."""
        if not self.index.fitted:
            raise RuntimeError("predict needs a fitted cluster index: call on_epoch_start first")
        return nearest_cluster_scores(
            latent,
            self.index.centres,
            self.index.cluster_class,
            self.index.num_classes,
            self.sigma2,
            self.num_neighbours,
        )
