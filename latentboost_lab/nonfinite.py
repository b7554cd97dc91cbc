"""The training loop's guard against NaN and inf: :class:`NonFiniteGuard`, called by
:func:`latentboost_lab.training.train_step` after each backward pass and by the epoch at its
end, and the :class:`NonFiniteLossError` it raises.

Where reading a value costs nothing (the CPU) every step is checked before the optimizer moves,
and a failure is diagnosed at once: the model's output, a part of the loss (CE, L_dist), or a
gradient (from the loss's term on the logits or on the latent, or inside the model). On a GPU
that read would wait for the device at every step, so the flags are combined on the device and
read once, at the end of the epoch (:class:`_DeferredCheck`); the rest of a bad epoch runs on
garbage and is thrown away. ``skip=True`` instead skips a bad step (no update; BatchNorm
statistics and the loss's buffers put back), which needs the answer at each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["NonFiniteGuard", "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """The loss, a gradient or the model's output became NaN or inf: training stops at once
    instead of training on garbage.

    Attributes: ``epoch``, ``step`` (the first bad step), ``part`` (``"CE"``, ``"L_dist"``,
    ``"model"`` or None where unknown) and ``history`` (the completed epochs; the model holds
    the weights of the last of them, like the checkpoint on disk).
    """

    def __init__(self, message: str, epoch: int, step: int | None, part: str | None = None):
        super().__init__(message)
        self.epoch, self.step, self.part = epoch, step, part
        self.history = None


def _syncs_are_free(device: torch.device) -> bool:
    """Whether reading a tensor's value on the host costs nothing (the CPU): then every step is
    checked at once; elsewhere the checks wait until the end of the epoch."""
    return device.type == "cpu"


class NonFiniteGuard:
    """Checks each step's loss and gradients (see the module docstring).

    Called at three points: :meth:`start_step` before the forward pass, :meth:`accept` after
    the backward pass (False: skip the update), :meth:`end_epoch` with the epoch's record.
    """

    def __init__(
        self, objective, model, optimizer, device, *, loss=None, skip: bool = False, autocast=None
    ):
        self.objective, self.skip, self.autocast = objective, skip, autocast
        self.device = device
        self.check_now = skip or _syncs_are_free(device)
        self.trained = [p for group in optimizer.param_groups for p in group["params"]]
        self.optimizer = optimizer
        # What a skipped step must put back: BatchNorm's statistics, the loss's buffers (the
        # loss module's own: a wrapped plain loss keeps them, not its wrapper).
        owner = objective if loss is None else loss
        self.buffers = [b for m in (model, owner) for b in m.buffers()] if skip else []
        self.start_epoch()

    def start_epoch(self) -> None:
        self.step, self.skipped, self.deferred = -1, 0, _DeferredCheck(self.device)

    def start_step(self) -> None:
        self.step += 1
        self.saved = [b.detach().clone() for b in self.buffers]

    def accept(self, result, logits, latent, labels, epoch, sample_ids=None) -> bool:
        """After the backward pass: True when the step may update the weights."""
        finite = _gradients_finite(self.trained)
        if not self.check_now:
            self.deferred.update(self.step, result, finite, logits, latent)
            return True
        if not torch.isfinite(result.value):  # one read per step: free on the CPU
            problem = _bad_loss_or_output(result.parts, logits, latent)
        elif finite:
            return True
        elif self.skip:
            problem = _NonFinite(None, "a gradient")  # skipped: no diagnosis needed
        else:
            args = (self.objective, logits, latent, labels, epoch, sample_ids, self.autocast)
            problem = _bad_gradient(*args)
        if not self.skip:
            raise NonFiniteLossError(
                problem.message(epoch, self.step), epoch, self.step, problem.part
            )
        self.optimizer.zero_grad(set_to_none=True)
        for buffer, copied in zip(self.buffers, self.saved, strict=True):
            buffer.copy_(copied)
        self.skipped += 1
        return False

    def end_epoch(self, epoch: int, n_seen: int) -> None:
        """One wait for the device per epoch; an epoch of only skipped steps raises."""
        self.deferred.raise_if_bad(epoch)
        if n_seen == 0 and self.skipped:
            raise NonFiniteLossError(
                f"every step of epoch {epoch} ({self.skipped}) was non-finite and skipped; "
                "lower the learning rate or check the input data",
                epoch,
                None,
            )

    def check_record(self, epoch: int, record: dict) -> None:
        """A non-finite mean loss (a step the check could not see) raises, naming the parts."""
        if not math.isfinite(record.get("train_loss", 0.0)):
            problem = _bad_loss_or_output(self.objective.parts, None, None)
            raise NonFiniteLossError(problem.message(epoch, None), epoch, None, problem.part)


def _all_finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def _gradients_finite(params: list[torch.Tensor]) -> torch.Tensor:
    """Whether every gradient entry of ``params`` is finite: a 0-dim bool tensor on the device,
    computed without a sync, from sums (NaN and inf propagate through a sum; a gradient summing
    past ~3e38 also counts as non-finite, and would be broken anyway). On the CPU one sum per
    tensor is the cheapest pass we measured; elsewhere the fused L1 norm keeps it to a few
    kernels (benchmarks/README.md, "The non-finite check")."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.ones((), dtype=torch.bool)
    if grads[0].device.type == "cpu":
        totals = [g.sum() for g in grads]
    else:
        totals = torch._foreach_norm(grads, 1)
    return torch.stack([t.to(totals[0].device, torch.float32) for t in totals]).sum().isfinite()


# The parts of the losses in this package, by the paper's names for them.
_PART_NAMES = {"ce": "CE", "dist": "L_dist", "center": "L_dist"}


@dataclass
class _NonFinite:
    """What went non-finite at a step: ``part`` is CE, L_dist, model or None; ``what`` a phrase."""

    part: str | None
    what: str

    def message(self, epoch: int, step: int | None) -> str:
        where = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
        return (
            f"training stopped: NaN or inf at {where}, in {self.what}; lower the learning "
            "rate, check the input data, try bf16=False, or pass skip_nonfinite=True to skip "
            "such steps. The model holds the last completed epoch's weights, as does the "
            "checkpoint on disk."
        )


_MODEL = _NonFinite("model", "the model's output (logits or latent)")


def _bad_loss_or_output(parts: dict, logits, latent) -> _NonFinite:
    """A non-finite loss: the model's output when it is non-finite itself, else the loss's
    non-finite parts."""
    if logits is not None and not _all_finite(logits, latent):
        return _MODEL
    bad = [k for k, v in parts.items() if not math.isfinite(float(v))]
    named = [f"{k} = {_PART_NAMES[k]}" if k in _PART_NAMES else k for k in bad]
    known = {_PART_NAMES[k] for k in bad if k in _PART_NAMES}
    which = f" (non-finite parts: {', '.join(named)})" if bad else ""
    return _NonFinite(known.pop() if len(known) == 1 else None, f"the loss{which}")


def _bad_gradient(objective, logits, latent, labels, epoch, sample_ids, autocast) -> _NonFinite:
    """Where a non-finite gradient comes from, found by running the loss once more on detached
    copies of the step's logits and latent (only on this failure path): a bad gradient on the
    latent comes from the distance term (L_dist), on the logits from cross-entropy (CE); if the
    loss's own gradients are finite, it arose inside the model's backward pass."""
    logits = logits.detach().requires_grad_()
    latent = latent.detach().requires_grad_()
    try:
        with autocast:  # as in the step
            value = objective.compute(
                logits, latent, labels, epoch, sample_ids=sample_ids, check_values=False
            ).value
        grads = torch.autograd.grad(value, [logits, latent], allow_unused=True)
    except Exception:  # noqa: BLE001 (a diagnosis only: fall back to the plain message)
        return _NonFinite(None, "a gradient (the loss was finite)")
    on_logits, on_latent = (g is not None and not bool(torch.isfinite(g).all()) for g in grads)
    if on_latent:
        return _NonFinite("L_dist", "the gradient of the loss's term on the latent (L_dist)")
    if on_logits:
        return _NonFinite("CE", "the gradient of the loss's term on the logits (CE)")
    return _NonFinite(
        "model",
        "a gradient inside the model's backward pass (the loss's own gradients are finite)",
    )


class _DeferredCheck:
    """The check of a device where reading values waits for it (a GPU): per step, flags are
    combined on the device; :meth:`raise_if_bad` reads them once, at the epoch's end."""

    def __init__(self, device: torch.device):
        self.device = device
        self.first = None  # the first bad step, -1 while none (a 0-dim tensor on the device)

    def update(self, step: int, result, grads_finite: torch.Tensor, logits, latent) -> None:
        value = result.value.detach()
        loss_bad = ~torch.isfinite(value)
        outputs_bad = ~(torch.isfinite(logits.detach()).all() & torch.isfinite(latent).all())
        bad = loss_bad | ~grads_finite.to(value.device)
        if self.first is None:
            minus_one = torch.full((), -1, dtype=torch.long, device=value.device)
            self.first, self.loss_bad = minus_one, torch.zeros_like(loss_bad)
            self.outputs_bad, self.parts = torch.zeros_like(loss_bad), {}
        new = bad & (self.first < 0)
        self.first = torch.where(new, step, self.first)
        self.loss_bad = torch.where(new, loss_bad, self.loss_bad)
        self.outputs_bad = torch.where(new, outputs_bad & loss_bad, self.outputs_bad)
        for key, part in result.parts.items():
            if torch.is_tensor(part) and key in _PART_NAMES:
                part_bad = ~torch.isfinite(part.to(value.device))
                self.parts[key] = torch.where(new, part_bad, self.parts.get(key, part_bad & False))

    def raise_if_bad(self, epoch: int) -> None:
        if self.first is None or int(self.first) < 0:
            return
        step = int(self.first)
        if bool(self.outputs_bad):
            what, part = _MODEL.what, _MODEL.part
        elif bool(self.loss_bad):
            bad = {_PART_NAMES[k] for k, flag in self.parts.items() if bool(flag)}
            names = ", ".join(f"{k} = {_PART_NAMES[k]}" for k, f in self.parts.items() if bool(f))
            what = "the loss" + (f" (non-finite parts: {names})" if names else "")
            part = bad.pop() if len(bad) == 1 else None
        else:
            what, part = "a gradient (the loss was finite)", None
        late = (
            f"{what} (found at the end of the epoch: on {self.device.type} the check reads the "
            "device once per epoch, so the rest of that epoch was thrown away)"
        )
        raise NonFiniteLossError(_NonFinite(part, late).message(epoch, step), epoch, step, part)
