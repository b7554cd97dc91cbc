"""The training loop: one function, :func:`fit`, meant to be read in one sitting.

A loss is any ``nn.Module`` called as ``loss(logits, latent, labels, epoch)`` that returns a
scalar and leaves a dict of its parts in ``loss.parts`` (cross-entropy, Magnet and Latent Boost
plug in alike). Optional hooks a loss may have, and what ``fit`` does with them:

- ``loss.on_epoch_start(model, data, epoch)``: called before each epoch (cluster refresh);
- ``loss.wants_sample_ids``: then ``fit`` passes ``sample_ids=batch.index`` to the loss;
- ``loss.sampler``: draws the training batches instead of plain shuffled ones; after each step
  ``loss.sampler.record_losses(batch.index, loss.per_sample)`` when it has that method;
- ``loss.predict(latent)``: a classifier in the latent space (nearest clusters), whose
  accuracy is reported beside the softmax head's.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._checks import check_choice, check_in_range, check_int
from .device import select_device
from .metrics import model_outputs
from .results import History
from .runstore import atomic_write

__all__ = [
    "CrossEntropyLoss",
    "History",
    "NonFiniteLossError",
    "evaluate",
    "fit",
    "load_checkpoint",
    "save_checkpoint",
]


class CrossEntropyLoss(nn.Module):
    """Plain cross-entropy on the logits, with the training-loss signature. Parts: ``ce``."""

    def forward(self, logits, latent, labels, epoch):
        value = F.cross_entropy(logits.float(), labels)
        self.parts = {"ce": value.detach()}
        return value


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
        self.history: History | None = None


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Save a plain dict of tensors, numbers, strings and lists (loadable with weights_only=True)."""
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``: a checkpoint can never run code."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise ValueError(
            f"checkpoint {path} cannot be loaded as a plain dict of tensors ({err})"
        ) from err


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data,
    split: str = "test",
    loss: nn.Module | None = None,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Accuracy of the softmax head on a split and, when the loss has ``predict``, of its
    nearest-cluster classifier (``cluster_acc``)."""
    from .metrics import embed

    latent, labels, logits = embed(model, data, split, batch_size=batch_size, return_logits=True)
    if len(labels) == 0:
        return {}
    result = {"acc": (logits.argmax(1) == labels).float().mean().item()}
    if loss is not None and hasattr(loss, "predict"):
        scores = loss.predict(latent)
        if scores is not None:
            result["cluster_acc"] = (scores.argmax(1) == labels).float().mean().item()
    return result


#: Keys of _model_config added after checkpoints were first written, with the value that those
#: checkpoints had: an old checkpoint still resumes into the same run.
_MODEL_CONFIG_DEFAULTS = {"latent": "embedding", "variance_gradient": True}


def _model_config(model: nn.Module, data, loss: nn.Module) -> dict:
    """What a checkpoint must match to be resumed into this run (the reading of issue 13, where
    the latent is taken and whether the variance is differentiated, included)."""
    return {
        "model": type(model).__name__,
        "latent_dim": int(getattr(model, "latent_dim", -1)),
        "num_classes": int(getattr(model, "num_classes", -1)),
        "dataset": data.info.name,
        "loss": type(loss).__name__,
        "latent": getattr(model, "latent", "embedding"),
        "variance_gradient": getattr(loss, "variance_gradient", True),
    }


def fit(
    model: nn.Module,
    data,
    loss: nn.Module | None = None,
    *,
    epochs: int = 10,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    lr_schedule: str | None = None,
    batch_size: int = 128,
    sampler=None,
    monitor: str = "val_acc",
    patience: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    bf16: bool = False,
    channels_last: bool = False,
    compile: bool = False,
    eval_test: bool = True,
    progress: bool = True,
    callbacks: Sequence[Callable] = (),
    skip_nonfinite: bool = False,
) -> History:
    """Train ``model`` on ``data`` (a :class:`~latentboost_lab.data.TensorData`) with ``loss``.

    epochs: the budget. patience: stop after this many epochs without improvement of
        ``monitor`` and restore the best weights; None trains the whole budget. monitor: a key
        of the epoch record, ``val_acc`` by default (``val_cluster_acc`` for the Magnet
        method's classifier; a key ending in ``loss`` is minimised); early stopping needs a
        validation split and a key that the record has (checked, with a clear error).
    optimizer: default Adam(lr, weight_decay) over the model's and the loss's parameters
        (Center loss has learnable centres). lr_schedule: None or "cosine" (per epoch).
    sampler: draws the training batches (default: shuffled batches of ``batch_size``).
    checkpoint: a path written (atomically) after every epoch; its folder is checked to be
        writable before training starts. With ``resume=True`` a run continues from it and ends
        with the same history as an uninterrupted run.
    device: None keeps the data's device; the model moves to it. bf16 (autocast),
        channels_last and compile are the GPU switches.
    callbacks: called as ``callback(history, model)`` after each epoch; returning True stops.
    A KeyboardInterrupt (the notebook's stop button) ends training cleanly: the model keeps
    the last completed epoch's weights and the history so far is returned with
    ``interrupted=True``.

    Non-finite values: a NaN or inf loss, gradient or model output raises
    :class:`NonFiniteLossError`, naming the part (CE, L_dist, or the model) and the epoch and
    step; the model is put back to the last completed epoch (the checkpoint on disk is that
    epoch's too) and ``err.history`` holds the completed epochs. On the CPU every step is
    checked before the optimizer moves. On a GPU that check would wait for the device at each
    step, so the flags stay on the device and are read once per epoch: the rest of a bad epoch
    runs on garbage and is then thrown away, and the error names the first bad step (without
    the CE/L_dist diagnosis of a bad gradient). ``skip_nonfinite=True`` instead skips such a
    step (no optimizer step; BatchNorm statistics and the loss's buffers put back) and counts
    it in the epoch record's ``skipped_steps``; on a GPU this waits for the device once per
    step, as ``torch.amp.GradScaler`` does. An epoch whose every step was skipped raises.
    """
    loss = CrossEntropyLoss() if loss is None else loss
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be an nn.Module whose forward(x) returns (logits, latent), "
            f"got {type(model).__name__}"
        )
    if not all(hasattr(data, a) for a in ("batches", "split", "info", "device")):
        raise TypeError(f"data must be a TensorData (see load_dataset), got {type(data).__name__}")
    epochs = check_int("epochs", epochs, 0)
    check_int("batch_size", batch_size, 1)
    check_in_range("lr", lr, 0, None, low_inclusive=False)
    check_in_range("weight_decay", weight_decay, 0)
    check_int("seed", seed, 0)
    if patience is not None:
        check_int("patience", patience, 1)
    if lr_schedule is not None:
        check_choice("lr_schedule", lr_schedule, {"cosine"})
    if not isinstance(monitor, str):
        raise TypeError(f"monitor must be the name of an epoch record's key, got {monitor!r}")
    for name, flag in {
        "resume": resume,
        "bf16": bf16,
        "channels_last": channels_last,
        "compile": compile,
        "eval_test": eval_test,
        "progress": progress,
        "skip_nonfinite": skip_nonfinite,
    }.items():
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if not callable(loss):
        raise TypeError(
            f"loss must be an nn.Module called as loss(logits, latent, labels, epoch), got {loss!r}"
        )
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    try:
        callbacks = list(callbacks) if not callable(callbacks) else None
    except TypeError:
        callbacks = None
    if callbacks is None or not all(callable(c) for c in callbacks):
        raise TypeError("callbacks must be a list of functions called as callback(history, model)")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=, the path of the run to continue")
    if checkpoint is not None:
        check_writable_path("checkpoint", checkpoint)
    if patience is not None and monitor.startswith("val_") and _split_size(data, "val") == 0:
        raise ValueError(
            f"patience: early stopping watches monitor={monitor!r}, but the data has an empty "
            "validation split; load it with val_size > 0 (e.g. load_dataset(..., val_size=0.1))"
        )
    if device is not None:
        target = select_device(device)
        data = data.to(target) if target != data.device else data
    model.to(data.device)
    loss.to(data.device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model
    if optimizer is None:
        params = list(model.parameters()) + list(loss.parameters())
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(epochs, 1))
        if lr_schedule
        else None
    )
    sampler = getattr(loss, "sampler", None) or sampler
    maximize = not monitor.endswith("loss")

    history = History(
        config={
            **_model_config(model, data, loss),
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "seed": seed,
            "monitor": monitor,
            "patience": patience,
            "device": str(data.device),
        }
    )
    best_state, best_value, bad_epochs, start = None, None, 0, 0
    if resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, map_location=data.device)
        saved = {
            k: state["config"].get(k, _MODEL_CONFIG_DEFAULTS.get(k))
            for k in _model_config(model, data, loss)
        }
        if saved != _model_config(model, data, loss):
            raise ValueError(
                f"checkpoint {checkpoint} was written for {saved}, not for this run "
                f"{_model_config(model, data, loss)}; use another checkpoint path"
            )
        model.load_state_dict(state["model"])
        # Checkpoints written before a loss kept extra state (its cluster index) lack it.
        missing, unexpected = loss.load_state_dict(state["loss"], strict=False)
        if unexpected or any(not key.endswith("_extra_state") for key in missing):
            raise ValueError(
                f"checkpoint {checkpoint}: the loss's state does not match this loss "
                f"(missing {missing}, unexpected {unexpected})"
            )
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = History(**json.loads(state["history"]))
        best_state, best_value, bad_epochs = (
            state.get("best_model"),
            state.get("best_value"),
            state["bad_epochs"],
        )
        torch.set_rng_state(state["rng"].cpu())
        # A run that had already stopped early is finished: resuming it must not train on.
        start = epochs if history.stopped_early else len(history.epochs)
    else:
        torch.manual_seed(seed)

    autocast = torch.autocast(data.device.type, dtype=torch.bfloat16, enabled=bf16)
    wants_sample_ids = getattr(loss, "wants_sample_ids", False)
    trained = [p for group in optimizer.param_groups for p in group["params"]]
    # Checked at every step where the device needs no wait for it (or a skip needs the answer).
    check_now = skip_nonfinite or _syncs_are_free(data.device)
    buffers = [b for module in (model, loss) for b in module.buffers()] if skip_nonfinite else []
    last_state = copy.deepcopy(model.state_dict())
    epoch_bar = tqdm(
        range(start, epochs), desc="epochs", disable=not progress, initial=start, total=epochs
    )
    try:
        for epoch in epoch_bar:
            started = time.perf_counter()
            if hasattr(loss, "on_epoch_start"):
                loss.on_epoch_start(model, data, epoch)
            model.train()
            sums, n_seen, n_correct = {}, 0, torch.zeros((), device=data.device)
            skipped, deferred = 0, _DeferredCheck(data.device)
            batches = data.batches("train", batch_size, sampler=sampler, epoch=epoch, seed=seed)
            for step, batch in enumerate(
                tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not progress)
            ):
                x = (
                    batch.x.contiguous(memory_format=torch.channels_last)
                    if channels_last
                    else batch.x
                )
                saved = [b.detach().clone() for b in buffers]
                kwargs = {"sample_ids": batch.index} if wants_sample_ids else {}
                with autocast:
                    logits, latent = model_outputs(forward(x), len(batch.y))
                    try:
                        value = loss(logits, latent, batch.y, epoch, **kwargs)
                    except ValueError:  # the losses refuse a NaN latent: name the model instead
                        if _all_finite(logits, latent):
                            raise
                        value = None
                optimizer.zero_grad(set_to_none=True)
                problem = None
                if value is None:
                    problem = _NonFinite("model", "the model's output (logits or latent)")
                elif check_now and not torch.isfinite(value):
                    problem = _bad_loss(loss)
                else:
                    value.backward()
                    finite = _gradients_finite(trained)
                    if check_now and not finite and skip_nonfinite:
                        problem = _NonFinite(None, "a gradient")  # skipped: no diagnosis needed
                    elif check_now and not finite:
                        problem = _bad_gradient(
                            loss, logits, latent, batch.y, epoch, kwargs, autocast
                        )
                    elif not check_now:
                        deferred.update(step, value, finite, loss)
                if problem is not None:
                    if not skip_nonfinite:
                        raise NonFiniteLossError(
                            problem.message(epoch, step), epoch, step, problem.part
                        )
                    optimizer.zero_grad(set_to_none=True)
                    for buffer, copied in zip(buffers, saved, strict=True):
                        buffer.copy_(copied)
                    skipped += 1
                    continue
                optimizer.step()
                n = len(batch.y)
                n_seen += n
                n_correct += (logits.detach().argmax(1) == batch.y).sum()
                for key, part in {
                    "train_loss": value.detach(),
                    **getattr(loss, "parts", {}),
                }.items():
                    sums[key] = sums.get(key, 0.0) + part * n
                if hasattr(sampler, "record_losses") and hasattr(loss, "per_sample"):
                    sampler.record_losses(batch.index, loss.per_sample)
            deferred.raise_if_bad(epoch)  # one wait for the device per epoch
            if n_seen == 0 and skipped:
                raise NonFiniteLossError(
                    f"every step of epoch {epoch} ({skipped}) was non-finite and skipped; "
                    "lower the learning rate or check the input data",
                    epoch,
                    None,
                )
            if scheduler is not None:
                scheduler.step()
            record = {
                "epoch": epoch,
                **{k: float(v) / max(n_seen, 1) for k, v in sums.items()},
                "train_acc": float(n_correct) / max(n_seen, 1),
            }
            if skip_nonfinite:
                record["skipped_steps"] = skipped
            if not math.isfinite(record.get("train_loss", 0.0)):
                problem = _bad_loss(loss)
                raise NonFiniteLossError(problem.message(epoch, None), epoch, None, problem.part)
            record["train_seconds"] = time.perf_counter() - started
            for split in ("val", "test") if eval_test else ("val",):
                for key, value in evaluate(model, data, split, loss).items():
                    record[f"{split}_{key}"] = value
            record["lr"] = optimizer.param_groups[0]["lr"]
            record["seconds"] = time.perf_counter() - started
            history.epochs.append(record)
            if patience is not None and monitor not in record:
                raise ValueError(
                    f"monitor must be a key of the epoch record to stop early, got {monitor!r}; "
                    f"the record has {sorted(record)}"
                )

            # Early stopping on the monitored value, keeping the best weights in memory.
            current = record.get(monitor)
            if current is not None and (
                best_value is None or (current > best_value if maximize else current < best_value)
            ):
                best_value, bad_epochs, history.best_epoch = current, 0, epoch
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_epochs += 1
            last_state = copy.deepcopy(model.state_dict())
            # Decided before the checkpoint is written, so that a resumed run knows it is done.
            if patience is not None and bad_epochs >= patience:
                history.stopped_early = True
            if checkpoint is not None:
                save_checkpoint(
                    checkpoint,
                    {
                        "model": model.state_dict(),
                        "loss": loss.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict() if scheduler is not None else {},
                        "history": history.to_json(),
                        "config": history.config,
                        "best_model": best_state,
                        "best_value": best_value,
                        "bad_epochs": bad_epochs,
                        "rng": torch.get_rng_state(),
                    },
                )
            epoch_bar.set_postfix(
                {k: f"{record[k]:.4g}" for k in ("train_loss", monitor) if k in record}
            )
            stop = any([bool(callback(history, model)) for callback in callbacks])
            if stop or history.stopped_early:
                break
    except KeyboardInterrupt:
        # The stop button: keep what finished, never a half-trained epoch.
        model.load_state_dict(last_state)
        history.interrupted = True
    except NonFiniteLossError as err:
        # Nothing of the bad epoch is kept: the model goes back to the last completed epoch,
        # the one the checkpoint on disk holds.
        model.load_state_dict(last_state)
        err.history = history
        raise
    finally:
        epoch_bar.close()
    if patience is not None and best_state is not None and not history.interrupted:
        model.load_state_dict(best_state)
    return history


# --- non-finite values: detection and diagnosis ----------------------------------------------


def _split_size(data, name: str) -> int:
    try:
        return len(data.split(name)[1])
    except ValueError:  # a TensorData built without that split
        return 0


def _syncs_are_free(device: torch.device) -> bool:
    """Whether reading a tensor's value on the host costs nothing (the CPU): then every step is
    checked at once; elsewhere the checks wait until the end of the epoch (see fit)."""
    return device.type == "cpu"


def _all_finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def _gradients_finite(params: list[torch.Tensor]) -> torch.Tensor:
    """Whether every gradient entry of ``params`` is finite: a 0-dim bool tensor on the device,
    computed without a sync, from sums (NaN and inf propagate through a sum; a gradient summing
    past ~3e38 also counts as non-finite, and would be broken anyway). On the CPU one sum per
    tensor is the cheapest pass we measured (ResNet-18's 11M gradients: 10 ms on one thread,
    against 83 ms for the max norm); elsewhere the fused L1 norm keeps it to a few kernels."""
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


def _bad_loss(loss: nn.Module) -> _NonFinite:
    """Which of the loss's parts are not finite (``loss.parts``)."""
    parts = getattr(loss, "parts", {})
    bad = [k for k, v in parts.items() if not math.isfinite(float(v))]
    named = [f"{k} = {_PART_NAMES[k]}" if k in _PART_NAMES else k for k in bad]
    known = {_PART_NAMES[k] for k in bad if k in _PART_NAMES}
    which = f" (non-finite parts: {', '.join(named)})" if bad else ""
    return _NonFinite(known.pop() if len(known) == 1 else None, f"the loss{which}")


def _bad_gradient(loss, logits, latent, labels, epoch, kwargs, autocast) -> _NonFinite:
    """Where a non-finite gradient comes from, found by running the loss once more on detached
    copies of the step's logits and latent (only on this failure path): a bad gradient on the
    latent comes from the distance term (L_dist), on the logits from cross-entropy (CE); if the
    loss's own gradients are finite, it arose inside the model's backward pass."""
    logits = logits.detach().requires_grad_()
    latent = latent.detach().requires_grad_()
    try:
        with autocast:  # as in the step
            value = loss(logits, latent, labels, epoch, **kwargs)
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
    """The non-finite check of a device where reading values waits for it (a GPU): per step,
    flags are combined on the device; :meth:`raise_if_bad` reads them once, at the epoch's end."""

    def __init__(self, device: torch.device):
        self.device = device
        self.first = None  # the first bad step, -1 while none (a 0-dim tensor on the device)

    def update(self, step: int, value: torch.Tensor, grads_finite: torch.Tensor, loss) -> None:
        loss_bad = ~torch.isfinite(value.detach())
        bad = loss_bad | ~grads_finite.to(value.device)
        if self.first is None:
            minus_one = torch.full((), -1, dtype=torch.long, device=value.device)
            self.first, self.loss_bad = minus_one, torch.zeros_like(loss_bad)
            self.parts = {}
        new = bad & (self.first < 0)
        self.first = torch.where(new, step, self.first)
        self.loss_bad = torch.where(new, loss_bad, self.loss_bad)
        for key, part in getattr(loss, "parts", {}).items():
            if torch.is_tensor(part) and key in _PART_NAMES:
                part_bad = ~torch.isfinite(part.to(value.device))
                self.parts[key] = torch.where(new, part_bad, self.parts.get(key, part_bad & False))

    def raise_if_bad(self, epoch: int) -> None:
        if self.first is None or int(self.first) < 0:
            return
        step = int(self.first)
        if bool(self.loss_bad):
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


def check_writable_path(name: str, path: str | os.PathLike) -> Path:
    """Check, before any training, that a file can be written at ``path``: its folder exists
    and accepts a new file (a test file is created and removed: permissions, read-only mounts
    and quotas all show), and ``path`` itself is not a folder."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise ValueError(f"{name}: {path} is a folder; give a file path such as {path / 'run.pt'}")
    if not folder.is_dir():
        raise ValueError(f"{name}: the folder {folder} does not exist (or is not a folder)")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"{name}: cannot write in the folder {folder} ({err.strerror})") from None
    return path
