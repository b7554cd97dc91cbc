"""The four arms of every comparison, built by name with the same defaults everywhere
(the CLI, the notebooks and the experiment runner)."""

from __future__ import annotations

from torch import nn

from ._checks import check_choice

LOSSES = ("ce", "magnet", "center", "latentboost")

#: Readings of the paper (issue 13): Latent Boost with all its parts on, read another way. Each
#: gives the model's ``latent`` (where L_dist acts, see :mod:`latentboost_lab.models`) and options
#: for ``make_loss``. Combine them with "+": ``features+detached_variance``.
READINGS = {
    "features": {"latent": "features"},
    "pooled": {"latent": "pooled"},
    "detached_variance": {"variance_gradient": False},
}


def make_loss(
    name: str, *, data=None, lam: float | None = None, latent_dim: int | None = None, **kwargs
) -> nn.Module:
    """The training loss ``name``: ``ce`` (cross-entropy), ``magnet`` (the Magnet method),
    ``center`` (cross-entropy + Center loss) or ``latentboost``.

    lam: λ of Latent Boost (default: the paper's best for the data set, else 0.75) or the
        weight of the Center-loss term (default: that class's default). Ignored by ce/magnet.
    data, latent_dim: what Center loss needs to size its centres.
    kwargs: passed on to the loss's constructor (e.g. ``pca_variance=None``).
    """
    from .losses import PAPER_LAMBDA, CenterLoss, LatentBoostLoss, MagnetObjective
    from .training import CrossEntropyLoss

    check_choice("loss", name, LOSSES)
    if name == "ce":
        return CrossEntropyLoss()
    if name == "magnet":
        return MagnetObjective(**kwargs)
    if name == "center":
        if data is None or latent_dim is None:
            raise ValueError("center loss needs data= and latent_dim= to size its centres")
        extra = {} if lam is None else {"lam": lam}
        return CenterLoss(data.num_classes, latent_dim, **extra, **kwargs)
    if lam is None:
        lam = PAPER_LAMBDA.get(getattr(getattr(data, "info", None), "name", None), 0.75)
    return LatentBoostLoss(lam=lam, **kwargs)
