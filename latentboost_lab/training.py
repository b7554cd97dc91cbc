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

import contextlib
import copy
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._checks import check_choice, check_in_range, check_int
from .device import select_device

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
    """The loss became NaN or inf: training stops at once instead of training on garbage."""


@dataclass
class History:
    """What happened in a run, one dict per epoch (``train_loss``, the loss's parts,
    ``train_acc``, ``val_acc``, ``test_acc``, ``seconds``, ``lr``, ...).

    ``history["val_acc"]`` is the list of that value over the epochs.
    """

    epochs: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    best_epoch: int | None = None  # the epoch whose weights were kept (early stopping)
    stopped_early: bool = False
    interrupted: bool = False

    def __getitem__(self, key: str) -> list:
        return [record.get(key, math.nan) for record in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def epochs_to_stop(self) -> int:
        """How many epochs were trained (the figure the paper compares)."""
        return len(self.epochs)

    @property
    def last(self) -> dict:
        return self.epochs[-1] if self.epochs else {}

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(asdict(self), indent=1, default=float)
        if path is not None:
            atomic_write(path, text.encode())
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> History:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls(**json.loads(text))


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it: a crash mid-write never leaves
    a half-written file behind."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


def _model_config(model: nn.Module, data, loss: nn.Module) -> dict:
    """What a checkpoint must match to be resumed into this run."""
    return {
        "model": type(model).__name__,
        "latent_dim": int(getattr(model, "latent_dim", -1)),
        "num_classes": int(getattr(model, "num_classes", -1)),
        "dataset": data.info.name,
        "loss": type(loss).__name__,
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
) -> History:
    """Train ``model`` on ``data`` (a :class:`~latentboost_lab.data.TensorData`) with ``loss``.

    epochs: the budget. patience: stop after this many epochs without improvement of
        ``monitor`` (``val_acc`` or ``val_loss``... any key of the epoch record) and restore
        the best weights; None trains the whole budget.
    optimizer: default Adam(lr, weight_decay) over the model's and the loss's parameters
        (Center loss has learnable centres). lr_schedule: None or "cosine" (per epoch).
    sampler: draws the training batches (default: shuffled batches of ``batch_size``).
    checkpoint: a path written (atomically) after every epoch; with ``resume=True`` a run
        continues from it and ends with the same history as an uninterrupted run.
    device: None keeps the data's device; the model moves to it. bf16 (autocast),
        channels_last and compile are the GPU switches.
    callbacks: called as ``callback(history, model)`` after each epoch; returning True stops.
    A KeyboardInterrupt (the notebook's stop button) ends training cleanly: the model keeps
    the last completed epoch's weights and the history so far is returned with
    ``interrupted=True``.
    """
    loss = CrossEntropyLoss() if loss is None else loss
    epochs = check_int("epochs", epochs, 0)
    check_int("batch_size", batch_size, 1)
    check_in_range("lr", lr, 0, None, low_inclusive=False)
    if patience is not None:
        check_int("patience", patience, 1)
    if lr_schedule is not None:
        check_choice("lr_schedule", lr_schedule, {"cosine"})
    if not callable(loss):
        raise TypeError(
            f"loss must be an nn.Module called as loss(logits, latent, labels, epoch), got {loss!r}"
        )
    if checkpoint is not None and not os.access(Path(checkpoint).parent.resolve(), os.W_OK):
        raise ValueError(
            f"checkpoint: the folder {Path(checkpoint).parent} does not exist or is not writable"
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
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, map_location=data.device)
        saved = {k: state["config"].get(k) for k in _model_config(model, data, loss)}
        if saved != _model_config(model, data, loss):
            raise ValueError(
                f"checkpoint {checkpoint} was written for {saved}, not for this run "
                f"{_model_config(model, data, loss)}; use another checkpoint path"
            )
        model.load_state_dict(state["model"])
        loss.load_state_dict(state["loss"])
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
        start = len(history.epochs)
    else:
        torch.manual_seed(seed)

    autocast = torch.autocast(data.device.type, dtype=torch.bfloat16, enabled=bf16)
    wants_sample_ids = getattr(loss, "wants_sample_ids", False)
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
            batches = data.batches("train", batch_size, sampler=sampler, epoch=epoch, seed=seed)
            for step, batch in enumerate(
                tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not progress)
            ):
                x = (
                    batch.x.contiguous(memory_format=torch.channels_last)
                    if channels_last
                    else batch.x
                )
                with autocast:
                    logits, latent = forward(x)
                    kwargs = {"sample_ids": batch.index} if wants_sample_ids else {}
                    value = loss(logits, latent, batch.y, epoch, **kwargs)
                # Per step on the CPU (free); on a GPU once per epoch, to avoid a sync each step.
                if data.device.type == "cpu" and not torch.isfinite(value):
                    raise NonFiniteLossError(_nonfinite_message(loss, epoch, step))
                optimizer.zero_grad(set_to_none=True)
                value.backward()
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
            if scheduler is not None:
                scheduler.step()
            record = {
                "epoch": epoch,
                **{k: float(v) / max(n_seen, 1) for k, v in sums.items()},
                "train_acc": float(n_correct) / max(n_seen, 1),
            }
            if not math.isfinite(record.get("train_loss", 0.0)):
                raise NonFiniteLossError(_nonfinite_message(loss, epoch, None))
            record["train_seconds"] = time.perf_counter() - started
            for split in ("val", "test") if eval_test else ("val",):
                for key, value in evaluate(model, data, split, loss).items():
                    record[f"{split}_{key}"] = value
            record["lr"] = optimizer.param_groups[0]["lr"]
            record["seconds"] = time.perf_counter() - started
            history.epochs.append(record)

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
            if patience is not None and bad_epochs >= patience:
                history.stopped_early = True
                stop = True
            if stop:
                break
    except KeyboardInterrupt:
        # The stop button: keep what finished, never a half-trained epoch.
        model.load_state_dict(last_state)
        history.interrupted = True
    finally:
        epoch_bar.close()
    if patience is not None and best_state is not None and not history.interrupted:
        model.load_state_dict(best_state)
    return history


def _nonfinite_message(loss: nn.Module, epoch: int, step: int | None) -> str:
    parts = getattr(loss, "parts", {})
    bad = [k for k, v in parts.items() if not math.isfinite(float(v))]
    where = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
    which = f" (non-finite parts: {', '.join(bad)})" if bad else ""
    return (
        f"the loss became NaN or inf at {where}{which}; lower the learning rate, check the "
        "input data, or use bf16=False. The last checkpoint on disk is the last good epoch."
    )
