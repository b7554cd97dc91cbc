"""A λ that adapts while training (issue 18 §2; the paper's open question 1).

Latent Boost's loss is ``λ·L_dist + (1−λ)·L_CE`` with a constant λ (0.75 is the paper's best
on Fashion-MNIST and CIFAR-10). The paper reports that its "rudimentary" trials of a dynamic λ
were unstable and leaves the question open. A schedule fixed in advance (a function of the
epoch, :mod:`latentboost_lab.schedules`, e.g. the warm-up ``linear_warmup(start=0, end=0.75)``)
needs nothing new. The strategies here decide λ from what training sees, and each is an
:class:`AdaptiveLambda` that :class:`~.latent_boost.LatentBoostLoss` accepts as its ``lam``:

- :class:`UncertaintyWeighting`: Kendall, Gal and Cipolla, "Multi-task learning using
  uncertainty to weigh losses", CVPR 2018, eq. 10 (a classification likelihood with a learned
  temperature): one learnable log-variance ``s`` per term,
  ``L = exp(−s_ce)·L_CE + exp(−s_dist)·L_dist + (s_ce + s_dist)/2``. It is no longer a convex
  combination: the effective λ reported is ``exp(−s_dist) / (exp(−s_dist) + exp(−s_ce))``, and the
  overall scale moves too. Its optimum weighs each term by ``1/(2 L_i)``: the smaller a loss,
  the larger its weight, which is its known failure mode when a term can reach 0 (Magnet's
  hinge can). Unclamped, as published; the log-variances start at 0 (λ = 0.5) and are learned
  by the same optimiser as the model (``fit`` optimises the loss's parameters too).
- :class:`GradientRatio`: the simpler relative of GradNorm (Chen et al., ICML 2018) that the issue
  allows, ours in its details: at every step, the λ that gives the two weighted terms equal
  gradient norms at the latent, ``λ* = ‖∇_z L_CE‖ / (‖∇_z L_CE‖ + ‖∇_z L_dist‖)`` (so that
  ``λ*·‖∇_z L_dist‖ = (1−λ*)·‖∇_z L_CE‖``), smoothed by an exponential moving average (momentum
  0.9, starting from ``start``) and kept in ``[low, high]``. GradNorm proper balances gradient
  norms at the last shared layer's *weights* with a learned rate per task; at the latent
  (the two terms' only shared input) the ratio needs two extra backward passes through the
  loss heads only, not through the network. It needs a latent the logits are computed from
  (the ``embedding`` or ``pooled`` reading; the ``features`` reading is refused with a clear
  error). In a distributed run the loss sees the gathered global batch
  (:mod:`latentboost_lab.distributed`), so every process computes the single-process λ.
- :class:`ValidationController`: ours. At the start of every epoch after the first, the
  validation accuracy of the model so far is measured; while it holds (no more than
  ``tolerance`` below the best so far) λ rises by ``step``, when it drops λ falls by ``step``,
  within ``[low, high]``. It tunes on the validation split only, never on the test split.

Every strategy reports its λ in the loss's ``parts["lam"]`` (averaged per epoch in the history,
as a constant λ is), keeps its state in the loss's ``state_dict`` (so that a resumed run continues
it exactly), and reads no value from the device during a step (λ stays a tensor).
"""

from __future__ import annotations

import torch
from torch import nn

from latentboost_lab._checks import check_in_range

__all__ = [
    "AdaptiveLambda",
    "GradientRatio",
    "UncertaintyWeighting",
    "ValidationController",
]


class AdaptiveLambda(nn.Module):
    """A λ decided during training. Subclasses implement :meth:`combine` and may use
    :meth:`on_epoch_start` (called by the loss, which ``fit`` calls before every epoch)."""

    def combine(
        self, ce: torch.Tensor, dist: torch.Tensor, latent: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """The loss to minimise from the batch's ``ce`` and ``dist`` (scalars with their
        graphs; ``latent``: the tensor both were computed from), the effective λ (a detached
        0-dim tensor) and any extra parts for the history."""
        raise NotImplementedError

    def on_epoch_start(self, model: nn.Module, data, epoch: int) -> None:
        """A no-op unless overridden."""

    def current(self) -> float:
        """λ as it stands (a host read: for reports, never during a step)."""
        raise NotImplementedError


class UncertaintyWeighting(AdaptiveLambda):
    """Kendall, Gal and Cipolla (CVPR 2018): learned log-variances weigh the two terms; see the
    module docstring."""

    def __init__(self):
        super().__init__()
        self.log_var_ce = nn.Parameter(torch.zeros(()))
        self.log_var_dist = nn.Parameter(torch.zeros(()))

    def _lam(self) -> torch.Tensor:
        w_ce, w_dist = torch.exp(-self.log_var_ce), torch.exp(-self.log_var_dist)
        return (w_dist / (w_ce + w_dist)).detach()

    def combine(self, ce, dist, latent, epoch):
        s_ce, s_dist = self.log_var_ce, self.log_var_dist
        value = torch.exp(-s_ce) * ce + torch.exp(-s_dist) * dist + 0.5 * (s_ce + s_dist)
        parts = {"log_var_ce": s_ce.detach().clone(), "log_var_dist": s_dist.detach().clone()}
        return value, self._lam(), parts

    def current(self) -> float:
        return float(self._lam())


class GradientRatio(AdaptiveLambda):
    """The λ that equalises the two weighted terms' gradient norms at the latent, smoothed;
    see the module docstring. ``start``: λ before the first step; ``momentum``: of the moving
    average (0: the batch's own ratio); ``low``, ``high``: the range λ is kept in."""

    def __init__(
        self, start: float = 0.75, momentum: float = 0.9, low: float = 0.05, high: float = 0.95
    ):
        super().__init__()
        self.low = check_in_range("low", low, 0.0, 1.0)
        self.high = check_in_range("high", high, self.low, 1.0)
        self.momentum = check_in_range("momentum", momentum, 0.0, 1.0, high_inclusive=False)
        start = check_in_range("start", start, self.low, self.high)
        self.register_buffer("lam", torch.tensor(float(start)))

    def combine(self, ce, dist, latent, epoch):
        if not latent.requires_grad:  # evaluation without a graph: λ as it stands
            return self.lam * dist + (1.0 - self.lam) * ce, self.lam.clone(), {}
        # Two backward passes through the loss heads only (the graph is kept for the step's).
        (g_ce,) = torch.autograd.grad(ce, latent, retain_graph=True, allow_unused=True)
        (g_dist,) = torch.autograd.grad(dist, latent, retain_graph=True, allow_unused=True)
        if g_ce is None:
            raise ValueError(
                "GradientRatio compares the two terms' gradients at the latent, but the "
                "cross-entropy does not depend on the latent the model returns (the 'features' "
                "reading returns the flattened feature map beside the logits' path): use the "
                "'embedding' or 'pooled' latent, or another λ strategy"
            )
        n_ce = g_ce.norm()
        n_dist = g_dist.norm() if g_dist is not None else latent.new_zeros(())
        total = n_ce + n_dist
        # No gradient from either term (a batch where both vanish): keep λ as it was.
        target = torch.where(total > 0, n_ce / total.clamp_min(1e-30), self.lam)
        with torch.no_grad():
            smoothed = self.momentum * self.lam + (1.0 - self.momentum) * target.detach()
            self.lam.copy_(smoothed.clamp(self.low, self.high))
        lam = self.lam.clone()
        return lam * dist + (1.0 - lam) * ce, lam, {"lam_target": target.detach()}

    def current(self) -> float:
        return float(self.lam)


class ValidationController(AdaptiveLambda):
    """Raise λ by ``step`` while the validation accuracy holds (at most ``tolerance`` below the
    best so far), lower it by ``step`` when it drops, within ``[low, high]``; decided at the
    start of every epoch after the first. Ours; see the module docstring."""

    def __init__(
        self,
        start: float = 0.5,
        step: float = 0.1,
        low: float = 0.0,
        high: float = 0.9,
        tolerance: float = 0.005,
    ):
        super().__init__()
        self.low = check_in_range("low", low, 0.0, 1.0)
        self.high = check_in_range("high", high, self.low, 1.0)
        self.step = check_in_range("step", step, 0.0, 1.0)
        self.tolerance = check_in_range("tolerance", tolerance, 0.0, 1.0)
        start = check_in_range("start", start, self.low, self.high)
        self.register_buffer("lam", torch.tensor(float(start)))
        self.register_buffer("best_val_acc", torch.tensor(-1.0))
        self.register_buffer("last_val_acc", torch.tensor(-1.0))

    def decide(self, val_acc: float) -> float:
        """The rule, applied to one epoch's validation accuracy; returns the new λ."""
        best = float(self.best_val_acc)
        lam = float(self.lam)
        if best < 0 or val_acc >= best - self.tolerance:
            lam = min(self.high, lam + self.step)
        else:
            lam = max(self.low, lam - self.step)
        self.lam.fill_(lam)
        self.best_val_acc.fill_(max(best, val_acc))
        self.last_val_acc.fill_(val_acc)
        return lam

    def on_epoch_start(self, model, data, epoch):
        from latentboost_lab.inference import embed

        if epoch == 0:  # nothing to decide yet, but fail now, not after an epoch of training
            try:
                n_val = len(data.split("val")[1])
            except ValueError:  # data built without a validation split
                n_val = 0
            if n_val == 0:
                raise ValueError(
                    "ValidationController needs a validation split: load the data with "
                    "val_size > 0 (--val-size on the command line)"
                )
            return
        _, labels, logits = embed(model, data, "val", return_logits=True)
        self.decide((logits.argmax(1) == labels).float().mean().item())

    def combine(self, ce, dist, latent, epoch):
        lam = self.lam.clone()
        return lam * dist + (1.0 - lam) * ce, lam, {}

    def current(self) -> float:
        return float(self.lam)
