"""Plain cross-entropy on the softmax head's logits, the baseline of every comparison:

    L = L_CE = -mean_i log softmax(logits_i)[y_i]

It ignores the latent. Computed in at least float32 (also under bf16 autocast).
"""

from __future__ import annotations

import torch.nn.functional as F

from latentboost_lab.losses.base import LossResult, Objective


class CrossEntropyLoss(Objective):
    """Cross-entropy on the logits, with the training-loss signature. Parts: ``ce``."""

    def compute_loss(
        self, logits, latent, labels, epoch, cluster_ids=None, sample_ids=None, *, check_values=True
    ):
        value = F.cross_entropy(logits.float(), labels)
        return LossResult(value, {"ce": value.detach()})
