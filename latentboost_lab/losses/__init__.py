"""Training losses: Magnet (Rippel et al. 2016), Latent Boost (arXiv:2412.08515) and Center loss
(Wen et al. 2016), plus the batch PCA that Latent Boost uses.

- :class:`MagnetLoss`: the reference Magnet loss, ``loss(latent, labels, cluster_ids=None)``.
- :class:`MagnetObjective`: the whole Magnet method for ``fit`` (cluster index, neighbourhood
  sampler, nearest-cluster classifier).
- :class:`LatentBoostLoss`: ``lam * L_dist + (1 - lam) * L_CE``; ``lam`` a number, a schedule
  or a λ that adapts (:mod:`.adaptive_lambda`: :class:`UncertaintyWeighting`,
  :class:`GradientRatio`, :class:`ValidationController`).
- :class:`CenterLoss`: ``L_CE + lam / 2 * mean ||z - c_y||^2``.

- :class:`CrossEntropyLoss`: the baseline, ``L_CE``.

Every training loss is an :class:`Objective` (:mod:`.base`: one result, declared
capabilities, validation once), called as ``loss(logits, latent, labels, epoch)``.
"""

from latentboost_lab.losses.adaptive_lambda import (
    AdaptiveLambda,
    GradientRatio,
    UncertaintyWeighting,
    ValidationController,
)
from latentboost_lab.losses.base import LossResult, Objective, as_objective, debug_checks
from latentboost_lab.losses.center import CenterLoss
from latentboost_lab.losses.cross_entropy import CrossEntropyLoss
from latentboost_lab.losses.latent_boost import PAPER_LAMBDA, LatentBoostLoss
from latentboost_lab.losses.magnet import MagnetLoss, MagnetObjective, magnet_terms
from latentboost_lab.losses.pca import BatchPCA, batch_pca

__all__ = [
    "PAPER_LAMBDA",
    "AdaptiveLambda",
    "BatchPCA",
    "CenterLoss",
    "CrossEntropyLoss",
    "GradientRatio",
    "LatentBoostLoss",
    "LossResult",
    "MagnetLoss",
    "MagnetObjective",
    "Objective",
    "UncertaintyWeighting",
    "ValidationController",
    "as_objective",
    "batch_pca",
    "debug_checks",
    "magnet_terms",
]
