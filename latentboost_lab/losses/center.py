"""Center loss (Wen, Zhang, Li, Qiao, "A Discriminative Feature Learning Approach for Deep Face
Recognition", ECCV 2016), the classic cross-entropy + clustering baseline:

    L = L_CE + lam * 1/2 * mean_i ||z_i - c_{y_i}||^2          (the paper's eqs. 2 and 5)

with one centre ``c_j`` per class in the latent space.

How the centres are optimised. Wen et al. do not move the centres by the gradient of the loss
but by their own rule (eq. 4): after each minibatch,
``c_j <- c_j - center_lr * sum_{i: y_i = j} (c_j - z_i) / (1 + n_j)``, i.e. a step of size
``center_lr`` (their alpha, 0.5 in their experiments) towards the batch mean of class j, damped
for classes with few samples. That is the default here (``center_lr=0.5``): the centres are a
buffer, the network gets the gradient ``lam * (z_i - c_{y_i}) / N`` only, and the update happens
in the forward pass of a module in training mode. With ``center_lr=None`` the centres are an
``nn.Parameter`` instead and the optimiser moves them with the network (``fit``'s default
optimiser includes the loss's parameters); this is how most later ports do it.

Our choices (not the paper's): the centres start at zero (as in the authors' Caffe code); the
distance term is averaged over the batch (the Caffe layer divides by the batch size too); the
default ``lam = 0.003`` is the paper's face-recognition value and usually needs tuning upwards for
small networks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from latentboost_lab._checks import check_in_range, check_int, check_labels, check_latent
from latentboost_lab.losses.base import LossResult, Objective
from latentboost_lab.losses.magnet import full_precision


class CenterLoss(Objective):
    """Cross-entropy plus ``lam / 2`` times the mean squared distance to the class centre.

    Args:
        num_classes: number of classes (one centre each).
        latent_dim: width of the latent.
        lam: weight of the centre term, >= 0.
        center_lr: Wen et al.'s centre learning rate alpha in (0, 1]; None makes the centres an
            ``nn.Parameter`` for the optimiser instead.

    Call (fit's protocol): ``loss(logits, latent, labels, epoch) -> scalar``; sets
    ``parts = {"ce", "center"}`` (``center`` is the unweighted ``1/2 mean ||z - c||^2``).
    """

    def __init__(
        self, num_classes: int, latent_dim: int, lam: float = 0.003, center_lr: float | None = 0.5
    ):
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.latent_dim = check_int("latent_dim", latent_dim, 1)
        self.lam = check_in_range("lam", lam, 0.0)
        centres = torch.zeros(self.num_classes, self.latent_dim)
        if center_lr is None:
            self.center_lr = None
            self.centers = nn.Parameter(centres)
        else:
            self.center_lr = check_in_range("center_lr", center_lr, 0.0, 1.0, low_inclusive=False)
            self.register_buffer("centers", centres)

    def check_batch(self, logits, latent, labels, *, values=True) -> None:
        super().check_batch(logits, latent, labels, values=False)
        if latent.shape[1] != self.latent_dim:
            raise ValueError(
                f"latent must have width latent_dim={self.latent_dim}, got {latent.shape[1]}"
            )
        if values:
            check_latent(logits, name="logits")
            check_latent(latent)
            check_labels(labels)
            if labels.numel() and int(labels.max()) >= min(self.num_classes, logits.shape[1]):
                raise ValueError(
                    f"labels must be < num_classes ({min(self.num_classes, logits.shape[1])}), "
                    f"got {int(labels.max())}"
                )

    def compute_loss(
        self, logits, latent, labels, epoch, cluster_ids=None, sample_ids=None, *, check_values=True
    ):
        check_int("epoch", epoch, 0)
        with torch.autocast(latent.device.type, enabled=False):
            z = full_precision(latent)
            ce = F.cross_entropy(full_precision(logits), labels)
            offsets = z - self.centers[labels].to(z.dtype)
            center = 0.5 * offsets.pow(2).sum(dim=1).mean()
            loss = ce + self.lam * center
            if self.center_lr is not None and self.training:
                self._update_centres(z.detach(), labels)
        return LossResult(loss, {"ce": ce.detach(), "center": center.detach()})

    @torch.no_grad()
    def _update_centres(self, z: torch.Tensor, labels: torch.Tensor) -> None:
        """Wen et al. eq. 4: ``c_j -= alpha * sum_{y_i=j} (c_j - z_i) / (1 + n_j)``."""
        centres = self.centers
        # A one-hot matrix (faster than index_add_), built by comparison: F.one_hot reads the
        # labels' range on the host.
        classes = torch.arange(self.num_classes, device=labels.device)
        one_hot = (labels[:, None] == classes).to(centres.dtype)
        counts = one_hot.sum(dim=0)
        sums = one_hot.T @ z.to(centres.dtype)
        delta = (counts[:, None] * centres - sums) / (1.0 + counts[:, None])
        centres.sub_(self.center_lr * delta)
