"""The contract between an objective and the trainer (the pattern of pytorch-metric-learning's
``BaseMetricLossFunction``): one base class, :class:`Objective`, that every training loss of
this package subclasses (cross-entropy, Center, Magnet, Latent Boost).

- **One result.** :meth:`Objective.compute` returns a :class:`LossResult`: the scalar to
  minimise (``value``), its parts for the history (``parts``: detached 0-dim tensors or floats)
  and the per-sample losses (``per_sample``, detached, or None). Calling the module
  (``loss(logits, latent, labels, epoch)``) returns ``value`` alone, as any torch loss does; the
  last result's ``parts`` and ``per_sample`` also stay readable as attributes.
- **Declared capabilities**, read by :func:`latentboost_lab.training.fit` instead of probed:
  ``needs_sample_ids`` (the loss looks cluster ids up by the samples' indices),
  ``sampler`` (draws the training batches, None: plain shuffled ones), ``predicts`` (a
  classifier in the latent space, :meth:`Objective.predict`) and :meth:`Objective.on_epoch_start`
  (a no-op unless overridden).
- **Validation once.** Arguments are checked at construction. Each batch's types, shapes and
  dtypes are checked on every call: metadata, free on any device. Its *values* (finite latents,
  labels in range) need the host to read the device, so ``fit`` checks them on the first batch
  only; direct calls check them every time (``check_values=True``), and the debug switch
  (:func:`debug_checks`, or ``LATENTBOOST_DEBUG_CHECKS=1``) makes ``fit`` check every batch.
  Later batches' non-finite values show up in the loss, where ``fit``'s guard finds them.

A loss that is not an :class:`Objective` (any ``nn.Module`` called as
``loss(logits, latent, labels, epoch)`` that returns a scalar, with ``parts`` and the old
duck-typed hooks) still trains: :func:`as_objective` wraps it, reading its hooks once.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
from torch import nn

from latentboost_lab._checks import check_labels, check_latent

__all__ = ["LossResult", "Objective", "as_objective", "debug_checks"]


class LossResult(NamedTuple):
    """What one evaluation of an objective gives: ``value`` (the scalar with its graph),
    ``parts`` (``{name: detached 0-dim tensor or float}``, averaged into the epoch record) and
    ``per_sample`` (the detached per-sample losses, or None)."""

    value: torch.Tensor
    parts: dict
    per_sample: torch.Tensor | None = None


_debug = {"on": os.environ.get("LATENTBOOST_DEBUG_CHECKS", "") not in ("", "0")}


def debug_checks(enabled: bool | None = None) -> bool:
    """Whether ``fit`` checks every batch's values (finite latents, labels in range), not only
    the first one's; pass True or False to switch, None to ask. Each such check waits for the
    device (a GPU) once per step: a debugging aid, off by default."""
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be True, False or None, got {enabled!r}")
        _debug["on"] = enabled
    return _debug["on"]


class Objective(nn.Module):
    """Base class of the training losses; see the module docstring.

    A subclass implements :meth:`compute_loss` (on a batch already checked) and may extend
    :meth:`check_batch`; it declares its capabilities as class or instance attributes.
    """

    #: Cluster ids are looked up from the batch's indices into the training split.
    needs_sample_ids: bool = False
    #: The loss reads the softmax head's logits (Magnet's does not: they may be None).
    uses_logits: bool = True
    #: :meth:`predict` classifies latents (the nearest-cluster rule).
    predicts: bool = False
    #: Draws the training batches instead of plain shuffled ones (None: it does not).
    sampler = None

    def __init__(self):
        super().__init__()
        self.parts: dict = {}
        self.per_sample: torch.Tensor | None = None

    @property
    def wants_sample_ids(self) -> bool:  # the name fit's hooks had before the contract
        return self.needs_sample_ids

    def on_epoch_start(self, model: nn.Module, data, epoch: int) -> None:
        """Called by ``fit`` before each epoch (a cluster refresh); nothing by default."""

    def predict(self, latent: torch.Tensor) -> torch.Tensor | None:
        """Class scores (N, num_classes) from latents, where ``predicts`` is True."""
        return None

    def check_batch(self, logits, latent, labels, *, values: bool = True) -> None:
        """Types, shapes and dtypes always; with ``values`` also finite entries and labels in
        ``[0, number of logits)`` (these read the device: see the module docstring)."""
        if self.uses_logits:
            check_latent(logits, name="logits", values=values)
        check_latent(latent, values=values)
        n = latent.shape[0]
        if self.uses_logits and logits.shape[0] != n:
            raise ValueError(
                f"logits must have one row per latent row ({n}), got {logits.shape[0]}"
            )
        check_labels(labels, n, values=values)
        if values and self.uses_logits and labels.numel():
            largest = int(labels.max())
            if largest >= logits.shape[1]:
                raise ValueError(
                    f"labels must be < the number of logits ({logits.shape[1]}), got {largest}"
                )

    def compute_loss(
        self, logits, latent, labels, epoch: int, cluster_ids=None, sample_ids=None, *,
        check_values: bool = True,
    ) -> LossResult:  # fmt: skip
        """The loss of a checked batch (a subclass's one duty); ``check_values`` says whether
        values it looks up (cluster ids) may be checked on the host."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_loss")

    def compute(
        self,
        logits,
        latent,
        labels,
        epoch: int = 0,
        cluster_ids=None,
        sample_ids=None,
        *,
        check_values: bool = True,
    ) -> LossResult:
        """Check the batch (values only with ``check_values``) and evaluate the loss."""
        self.check_batch(logits, latent, labels, values=check_values)
        result = self.compute_loss(
            logits, latent, labels, epoch, cluster_ids, sample_ids, check_values=check_values
        )
        self.parts, self.per_sample = result.parts, result.per_sample
        return result

    def forward(self, logits, latent, labels, epoch: int = 0, cluster_ids=None, sample_ids=None):
        """The scalar loss (``compute(...).value``), every value of the batch checked."""
        return self.compute(logits, latent, labels, epoch, cluster_ids, sample_ids).value


class _ModuleObjective(Objective):
    """A plain ``nn.Module`` loss seen through the contract (see :func:`as_objective`)."""

    def __init__(self, loss: nn.Module):
        super().__init__()
        self._loss = [loss]  # in a list: not a submodule, so state_dict stays the loss's own
        self.needs_sample_ids = bool(getattr(loss, "wants_sample_ids", False))
        self.sampler = getattr(loss, "sampler", None)
        self.predicts = hasattr(loss, "predict")
        self._epoch_start = getattr(loss, "on_epoch_start", None)

    def on_epoch_start(self, model, data, epoch):
        if self._epoch_start is not None:
            self._epoch_start(model, data, epoch)

    def predict(self, latent):
        return self._loss[0].predict(latent) if self.predicts else None

    def check_batch(self, logits, latent, labels, *, values=True):
        pass  # the loss checks what it is given

    def compute_loss(self, logits, latent, labels, epoch, cluster_ids=None, sample_ids=None, *,
                     check_values=True):  # fmt: skip
        loss = self._loss[0]
        kwargs = {"sample_ids": sample_ids} if self.needs_sample_ids else {}
        try:
            value = loss(logits, latent, labels, epoch, **kwargs)
        except ValueError:
            # Such a loss may refuse a non-finite latent: then the model's output is the cause,
            # and the result is a NaN for fit's guard to name (read on this failure path only).
            if all(bool(torch.isfinite(t).all()) for t in (logits, latent)):
                raise
            value = latent.sum() * float("nan")  # in the graph: the step's backward runs
        return LossResult(
            value, dict(getattr(loss, "parts", {})), getattr(loss, "per_sample", None)
        )


def as_objective(loss) -> Objective:
    """``loss`` itself when it is an :class:`Objective`; a plain ``nn.Module`` loss (called as
    ``loss(logits, latent, labels, epoch)``), or an Objective whose subclass overrides
    ``forward``, wrapped so that ``fit`` reads one contract."""
    if isinstance(loss, Objective) and type(loss).forward is Objective.forward:
        return loss
    # A subclass that overrides forward (to add to it) is called through forward, as before.
    if not callable(loss):
        raise TypeError(
            f"loss must be an nn.Module called as loss(logits, latent, labels, epoch), got {loss!r}"
        )
    return _ModuleObjective(loss)
