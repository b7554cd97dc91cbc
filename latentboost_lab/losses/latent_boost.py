"""Latent Boost loss (arXiv:2412.08515): cross-entropy plus an "evolved" Magnet term.

    L = lam * L_dist + (1 - lam) * L_CE                              (the paper's eq. 5)

``L_CE`` is cross-entropy on the logits. ``L_dist`` is a Magnet-style term on the latent (see
:mod:`.magnet` for the notation), built in three steps:

1. PCA of the batch latents (optional, on by default): centre, keep the smallest number k of
   principal components explaining ``pca_variance`` of the variance (scikit-learn's rule),
   project with a detached basis. The paper's; details ours, see :mod:`.pca`.
2. A variance per cluster, ``sigma_k^2 = sum_{i in k} d_ik / (n_k - 1)``. The paper's idea; ours:
   the floor at ``variance_floor`` times the batch's mean squared norm, and the fallback to the
   shared ``sigma^2`` of :class:`~.magnet.MagnetLoss` for a cluster with one member in the batch.
   ``variance="shared"`` uses the shared variance throughout.
3. Weighted intra- and inter-cluster terms: with ``A_i = d_{i,k_i} / (2 sigma_{k_i}^2)`` and
   ``B_i = log sum over impostor clusters k of exp(-d_ik / (2 sigma_k^2))``,
   ``l_i = max(0, alpha(E) * A_i + beta(E) * B_i + m)`` and ``L_dist = mean_i l_i``. The weights
   are the paper's; their schedules in the epoch E are ours (:mod:`latentboost_lab.schedules`).

With alpha = beta = 1, ``variance="shared"`` and ``pca_variance=None``, ``L_dist`` equals
:class:`~.magnet.MagnetLoss` exactly.

**Does sigma^2 take part in the gradient?** Rippel et al. estimate sigma^2 from the same batch;
whether the gradient flows through it, neither they nor the Latent Boost paper say. We
differentiate through it by default (``variance_gradient=True``, the behaviour of every result
committed before issue 13). Then ``sum_i A_i = sum_i d_{i,k_i} / (2 sigma^2) = (N - 1) / 2`` for
every batch with the shared variance, and ``sum_i A_i = sum_k (n_k - 1) / 2 = (N - C) / 2`` with
per-cluster variances (C clusters of two or more members in the batch): a constant, as long as
no variance sits at its floor. So while all of a cluster's hinges are active, ``alpha * A``
contributes no gradient at all, and alpha acts only through which hinges are active. With ``variance_gradient=False`` the variance is a detached scale, and
``alpha * A_i`` pulls each sample towards its cluster mean with a force proportional to alpha:
the paper's "compact first (alpha), separate later (beta)" becomes a real mechanism. The paper
does not say which it uses (issue 13; ``tests/test_readings.py`` proves both claims).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from latentboost_lab import schedules
from latentboost_lab._checks import (
    check_choice,
    check_in_range,
    check_int,
    check_labels,
    check_latent,
)
from latentboost_lab.clusters import ClusterIndex
from latentboost_lab.losses.adaptive_lambda import AdaptiveLambda
from latentboost_lab.losses.base import LossResult, Objective
from latentboost_lab.losses.magnet import (
    check_cluster_ids,
    cluster_layout,
    full_precision,
    magnet_terms,
)
from latentboost_lab.losses.pca import project_on_principal_components

#: The paper's best constant lambda per data set.
PAPER_LAMBDA = {"fashion_mnist": 0.75, "cifar10": 0.75, "cifar100": 0.5}

Schedule = Callable[[int], float]


def _as_schedule(name: str, value, default: Schedule) -> Schedule:
    if value is None:
        return default
    if callable(value):
        return value
    return partial(schedules.constant, value=check_in_range(name, value, 0.0))


class LatentBoostLoss(Objective):
    """Latent Boost: ``lam * L_dist + (1 - lam) * L_CE``; see the module docstring.

    Args:
        lam: weight of the distance term in [0, 1], a schedule ``epoch -> lam``
            (see :mod:`latentboost_lab.schedules`), or a λ that adapts during training, an
            :class:`~.adaptive_lambda.AdaptiveLambda` (issue 18: uncertainty weighting, the
            gradient ratio, the validation controller; it becomes a sub-module, so its
            parameters and state are the loss's). Default 0.75 (the paper's best on
            Fashion-MNIST and CIFAR-10; :meth:`for_dataset` picks the paper's value by name).
        margin: hinge margin m >= 0.
        alpha, beta: intra- and inter-cluster weights: a number >= 0, a schedule
            ``epoch -> weight``, or None for :func:`~latentboost_lab.schedules.alpha_schedule` /
            :func:`~latentboost_lab.schedules.beta_schedule` with their defaults.
        pca_variance: share of variance kept by the batch PCA, in (0, 1]; None turns PCA off.
        variance: ``"per_cluster"`` (default) or ``"shared"``.
        num_clusters: K clusters per class: one int, or one K per class (issue 18: a class
            that is a union of sub-classes). With K > 1 for some class, or a ``select_k``
            rule, the loss owns a :class:`~latentboost_lab.clusters.ClusterIndex` refreshed
            every ``refresh_every`` epochs by ``fit`` and looks cluster ids up from
            ``sample_ids``; explicit ``cluster_ids`` always take precedence.
        select_k, select_k_epoch: K per class chosen once from the training latents (see
            :class:`~latentboost_lab.clusters.ClusterIndex`); ``num_clusters`` until then.
        eps: floor of the shared variance relative to the batch's mean squared norm (numerical).
        variance_floor: floor of each per-cluster variance relative to the batch's mean squared
            norm (ours).
        variance_gradient: differentiate through the batch's variances (default, Rippel's
            form) or treat them as detached scales (see the module docstring).
        seed: seed of the cluster index's k-means.

    An :class:`~.base.Objective`:
    ``loss(logits, latent, labels, epoch, cluster_ids=None, sample_ids=None) -> scalar``; the
    clusters are the classes (the number of logits) or, with K > 1, the index's, so their
    number is known before the batch (:func:`~.magnet.cluster_layout`). Each call sets
    ``parts`` (floats for ``alpha``, ``beta`` and a scheduled ``lam``; detached 0-dim tensors
    for the rest, an adaptive λ's included): ``ce``, ``dist``, ``lam``, ``alpha``,
    ``beta``, ``pca_k`` (width of the latent when PCA is off), ``sigma2`` (mean variance over
    the batch's clusters) and ``active`` (share of samples whose hinge is active), and
    ``per_sample`` (the detached ``l_i``).
    """

    def __init__(
        self,
        lam: float | Schedule = 0.75,
        margin: float = 1.0,
        alpha: float | Schedule | None = None,
        beta: float | Schedule | None = None,
        pca_variance: float | None = 0.95,
        variance: str = "per_cluster",
        num_clusters: int | Sequence[int] = 1,
        refresh_every: int = 1,
        eps: float = 1e-6,
        variance_floor: float = 1e-3,
        seed: int = 0,
        variance_gradient: bool = True,
        select_k: Callable | None = None,
        select_k_epoch: int = 1,
    ):
        super().__init__()
        if not callable(lam):  # an AdaptiveLambda is a module: callable, and kept as it is
            lam = check_in_range("lam", lam, 0.0, 1.0)
        self.lam = lam
        self.margin = check_in_range("margin", margin, 0.0)
        self.alpha = _as_schedule("alpha", alpha, schedules.alpha_schedule)
        self.beta = _as_schedule("beta", beta, schedules.beta_schedule)
        if pca_variance is not None:
            pca_variance = check_in_range(
                "pca_variance", pca_variance, 0.0, 1.0, low_inclusive=False
            )
        self.pca_variance = pca_variance
        self.variance = check_choice("variance", variance, ("per_cluster", "shared"))
        self.eps = check_in_range("eps", eps, 0.0)
        self.variance_floor = check_in_range("variance_floor", variance_floor, 0.0)
        if not isinstance(variance_gradient, bool):
            raise TypeError(f"variance_gradient must be True or False, got {variance_gradient!r}")
        self.variance_gradient = variance_gradient
        index = ClusterIndex(
            num_clusters, refresh_every, seed=seed, select_k=select_k, select_k_epoch=select_k_epoch
        )
        # K = 1 everywhere: the clusters are the classes, and no index is needed.
        self.index = index if index.max_k > 1 or select_k is not None else None
        self.needs_sample_ids = self.index is not None

    @classmethod
    def for_dataset(cls, name: str, **kwargs) -> LatentBoostLoss:
        """The loss with the paper's best constant lambda for data set ``name``."""
        check_choice("name", name, PAPER_LAMBDA)
        return cls(lam=PAPER_LAMBDA[name], **kwargs)

    @property
    def adaptive(self) -> bool:
        """Whether λ adapts during training (an :class:`~.adaptive_lambda.AdaptiveLambda`)."""
        return isinstance(self.lam, AdaptiveLambda)

    def on_epoch_start(self, model: nn.Module, data, epoch: int) -> None:
        """Refresh the cluster index when K > 1 and a refresh is due, and let an adaptive λ
        look at the model (the validation controller); no-op otherwise."""
        if self.index is not None:
            self.index.refresh(model, data, epoch)
        if self.adaptive:
            self.lam.on_epoch_start(model, data, epoch)

    def get_extra_state(self) -> dict:
        """The cluster index (K > 1) goes into ``state_dict()``, so that a resumed run reuses
        it until its next refresh, as an uninterrupted run does."""
        return {"index": self.index.state() if self.index is not None else None}

    def set_extra_state(self, state: dict) -> None:
        if self.index is not None and state["index"] is not None:
            self.index.load_state(state["index"])

    def weights(self, epoch: int) -> tuple[float, float, float]:
        """``(lam, alpha, beta)`` at ``epoch``, validated (an adaptive λ as it stands now)."""
        epoch = check_int("epoch", epoch, 0)
        if self.adaptive:
            lam = self.lam.current()
        else:
            lam = self.lam(epoch) if callable(self.lam) else self.lam
        lam = check_in_range("lam", lam, 0.0, 1.0)
        return (lam, *self._alpha_beta(epoch))

    def _alpha_beta(self, epoch: int) -> tuple[float, float]:
        alpha = check_in_range("alpha", self.alpha(epoch), 0.0)
        beta = check_in_range("beta", self.beta(epoch), 0.0)
        return alpha, beta

    def distance_loss(
        self, latent, labels, epoch: int, cluster_ids=None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-sample ``l_i`` (N,) of ``L_dist`` and its parts (without ``ce``), every argument
        checked; explicit ``cluster_ids`` (else one cluster per class present) are compacted."""
        check_latent(latent)
        check_labels(labels, latent.shape[0])
        if latent.shape[0] < 1:
            raise ValueError("latent must hold at least one sample")
        member, cluster_class = check_cluster_ids(labels, cluster_ids)
        return self._distance(latent, labels, epoch, member, cluster_class)

    def _distance(self, latent, labels, epoch: int, member, cluster_class):
        alpha, beta = self._alpha_beta(check_int("epoch", epoch, 0))
        with torch.autocast(latent.device.type, enabled=False):
            z = full_precision(latent)
            if self.pca_variance is None:
                pca_k = torch.tensor(float(z.shape[1]), device=z.device)
            else:
                z, k, _ = project_on_principal_components(z, self.pca_variance)
                pca_k = k.to(torch.float32)
            terms = magnet_terms(
                z,
                labels,
                member,
                cluster_class,
                per_cluster_variance=self.variance == "per_cluster",
                eps=self.eps,
                variance_floor=self.variance_floor,
                variance_gradient=self.variance_gradient,
            )
            hinge = F.relu(alpha * terms.intra + beta * terms.inter + self.margin)
            losses = torch.where(terms.has_impostor, hinge, torch.zeros_like(hinge))
        # The mean over the clusters in the batch (equal, bit for bit, to .mean() when all are).
        present = terms.cluster_present
        variance = terms.cluster_variance.detach()
        parts = {
            "alpha": alpha,
            "beta": beta,
            "pca_k": pca_k.detach(),
            "sigma2": (variance * present).sum() / present.sum(),
            "active": (losses.detach() > 0).float().mean(),
        }
        return losses, parts

    def check_batch(self, logits, latent, labels, *, values=True) -> None:
        super().check_batch(logits, latent, labels, values=values)
        if latent.shape[0] < 1:
            raise ValueError("latent must hold at least one sample")

    def compute_loss(
        self, logits, latent, labels, epoch, cluster_ids=None, sample_ids=None, *, check_values=True
    ):
        member, cluster_class = cluster_layout(
            labels,
            num_classes=logits.shape[1],
            index=self.index,
            sample_ids=sample_ids,
            cluster_ids=cluster_ids,
            check_values=check_values,
        )
        losses, parts = self._distance(latent, labels, epoch, member, cluster_class)
        dist = losses.mean()
        with torch.autocast(logits.device.type, enabled=False):
            ce = F.cross_entropy(full_precision(logits), labels)
        if self.adaptive:  # λ decided by the strategy (a tensor: no host read)
            loss, lam, extra = self.lam.combine(ce, dist, latent, epoch)
            parts.update(extra)
        else:
            lam, _, _ = self.weights(epoch)
            loss = lam * dist + (1.0 - lam) * ce
        parts = {"ce": ce.detach(), "dist": dist.detach(), "lam": lam, **parts}
        return LossResult(loss, parts, losses.detach())
