"""The training loop, read top to bottom: :func:`train_step` (one batch), :func:`train_epoch`
(one pass over the training split, returning its record) and :func:`fit` (the run).

The loss is an :class:`~latentboost_lab.losses.Objective` (cross-entropy, Center, Magnet,
Latent Boost; any ``nn.Module`` called as ``loss(logits, latent, labels, epoch)`` is wrapped by
:func:`~latentboost_lab.losses.as_objective`). What ``fit`` reads of it is declared, not probed:
``on_epoch_start`` (before each epoch: a cluster refresh), ``sampler`` (draws the training
batches instead of plain shuffled ones, and is given the per-sample losses), ``predicts`` (the
nearest-cluster accuracy is reported beside the softmax head's) and the step's
:class:`~latentboost_lab.losses.LossResult` (value, parts, per-sample losses).

The loop's other duties are small objects called at named points: :class:`NonFiniteGuard`
(:mod:`latentboost_lab.nonfinite`) at each step and at the epoch's end, :class:`EarlyStopping`
and :class:`Checkpointer` after each epoch, :class:`Progress` around both loops. Nothing in the
step reads a tensor value on the host, but the guard on the CPU (where a read costs nothing),
the first batch's value checks and the debug switch (:func:`~latentboost_lab.losses.debug_checks`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from ._checks import check_choice, check_in_range, check_int
from .config import DEFAULTS
from .device import select_device
from .inference import embed, model_outputs
from .losses.base import LossResult, Objective, as_objective, debug_checks
from .losses.cross_entropy import CrossEntropyLoss
from .models import preferred_memory_format
from .nonfinite import NonFiniteGuard, NonFiniteLossError
from .results import History
from .runstore import atomic_write

__all__ = [
    "Checkpointer",
    "CrossEntropyLoss",
    "EarlyStopping",
    "History",
    "NonFiniteLossError",
    "Progress",
    "atomic_write",
    "evaluate",
    "fit",
    "load_checkpoint",
    "save_checkpoint",
    "train_epoch",
    "train_step",
]

_NO_AUTOCAST = contextlib.nullcontext()


def train_step(
    model, objective: Objective, optimizer, batch, epoch: int, *,
    guard: NonFiniteGuard | None = None, autocast=_NO_AUTOCAST, channels_last: bool = False,
    check_values: bool = False,
) -> tuple[LossResult, torch.Tensor] | None:  # fmt: skip
    """One optimisation step on ``batch`` (``.x``, ``.y``, ``.index``): forward, objective,
    backward, guard, update. Returns the objective's result and the detached logits, or None
    when the guard skipped the step. ``check_values`` checks the batch's values (a host read)."""
    x = batch.x.contiguous(memory_format=torch.channels_last) if channels_last else batch.x
    if guard is not None:
        guard.start_step()
    with autocast:
        logits, latent = model_outputs(model(x), len(batch.y))
        result = objective.compute(
            logits, latent, batch.y, epoch, sample_ids=batch.index, check_values=check_values
        )
    optimizer.zero_grad(set_to_none=True)
    result.value.backward()
    if guard is not None and not guard.accept(result, logits, latent, batch.y, epoch, batch.index):
        return None
    optimizer.step()
    return result, logits.detach()


def train_epoch(
    model: nn.Module, objective: Objective, optimizer, data, epoch: int, *, forward=None,
    batch_size: int = 128, sampler=None, seed: int = 0, guard: NonFiniteGuard | None = None,
    autocast=_NO_AUTOCAST, channels_last: bool = False, check_first: bool = False,
    progress: Progress | None = None,
) -> dict:  # fmt: skip
    """One pass over the training split; returns the epoch's record: ``epoch``, the mean loss
    and parts (``train_loss``, ``ce``, ...), ``train_acc``, ``skipped_steps`` (with a skipping
    guard) and ``train_seconds``. ``forward``: the model to call (a compiled one; default
    ``model``); ``check_first``: check the first batch's values."""
    started = time.perf_counter()
    objective.on_epoch_start(model, data, epoch)
    model.train()
    if guard is not None:
        guard.start_epoch()
    sums, n_seen, n_correct = {}, 0, torch.zeros((), device=data.device)
    batches = data.batches("train", batch_size, sampler=sampler, epoch=epoch, seed=seed)
    for step, batch in enumerate(progress.batches(batches, epoch) if progress else batches):
        check = (check_first and step == 0) or debug_checks()
        done = train_step(forward or model, objective, optimizer, batch, epoch, guard=guard,
                          autocast=autocast, channels_last=channels_last, check_values=check)  # fmt: skip
        if done is None:  # skipped by the guard
            continue
        result, logits = done
        n = len(batch.y)
        n_seen += n
        n_correct += (logits.argmax(1) == batch.y).sum()
        for key, part in {"train_loss": result.value.detach(), **result.parts}.items():
            sums[key] = sums.get(key, 0.0) + part * n
        if result.per_sample is not None and hasattr(sampler, "record_losses"):
            sampler.record_losses(batch.index, result.per_sample)
    if guard is not None:
        guard.end_epoch(epoch, n_seen)  # one wait for the device per epoch
    if distributed.is_distributed():  # the record of the global batches: one collective
        keys = list(sums)
        *totals, n_seen, n_correct = distributed.sum_over_ranks(
            [*sums.values(), n_seen, n_correct], data.device
        )
        sums, n_seen = dict(zip(keys, totals, strict=True)), int(n_seen)
    record = {
        "epoch": epoch,
        **{k: float(v) / max(n_seen, 1) for k, v in sums.items()},
        "train_acc": float(n_correct) / max(n_seen, 1),
    }
    if guard is not None and guard.skip:
        record["skipped_steps"] = guard.skipped
    if guard is not None:
        guard.check_record(epoch, record)
    record["train_seconds"] = time.perf_counter() - started
    return record


def fit(
    model: nn.Module,
    data,
    loss: nn.Module | None = None,
    *,
    epochs: int = DEFAULTS.epochs,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = DEFAULTS.lr,
    weight_decay: float = DEFAULTS.weight_decay,
    lr_schedule: str | None = DEFAULTS.lr_schedule,
    batch_size: int = DEFAULTS.batch_size,
    sampler=None,
    monitor: str = DEFAULTS.monitor,
    patience: int | None = DEFAULTS.patience,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    seed: int = DEFAULTS.seed,
    device: str | torch.device | None = None,
    bf16: bool = DEFAULTS.bf16,
    channels_last: bool | None = DEFAULTS.channels_last,
    compile: bool = DEFAULTS.compile,
    sync_batchnorm: bool = False,
    eval_test: bool = DEFAULTS.eval_test,
    progress: bool = True,
    callbacks: Sequence[Callable] = (),
    skip_nonfinite: bool = DEFAULTS.skip_nonfinite,
) -> History:
    """Train ``model`` on ``data`` (a :class:`~latentboost_lab.data.TensorData`) with ``loss``.
    The training settings' defaults are :class:`latentboost_lab.config.TrainSettings`'s
    (``fit(model, data, loss, **settings.fit_kwargs())`` passes a whole set).

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
    device: None keeps the data's device; the model moves to it. bf16 (autocast) and compile
        are the GPU switches.
    channels_last: train the model and each batch in the NHWC memory format (True) or in
        NCHW (False); None (the default) takes the model's own choice for the device,
        :func:`latentboost_lab.models.preferred_memory_format`: ``channels_last`` for SmallCNN
        and ResNet-18 on the CPU, where it is faster (``benchmarks/bench_roofline.py``), NCHW
        elsewhere. The two formats give the same run up to float rounding (the last bits of a
        convolution's sums, which then grow over the epochs), so ``history.config`` records
        ``memory_format`` and the torch ``threads`` (which can change a sum's order too; a
        resumed run with other threads adds ``threads_when_resumed``), and a run reproduces
        with its recorded setting. A resumed run continues in its checkpoint's format (an
        explicit other one is refused). OpenMP's wait policy changes only the speed: it is in
        ``runs.json``'s environment (:mod:`latentboost_lab.threads`).
    Under ``torchrun`` (a process group initialised, e.g. by
    :func:`latentboost_lab.distributed.init_from_env`) one run spans the processes: the model in
    DistributedDataParallel, each process on its shard of every batch, the loss on the gathered
    global batch, so that the run equals the single-process one (tested on the CPU with 2
    processes); checkpoints and progress from rank 0. sync_batchnorm: BatchNorm statistics over
    the global batch (GPUs only; without it a model with BatchNorm normalises per shard).
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
    epochs, callbacks = _check_fit_arguments(**locals())
    if device is not None:
        target = select_device(device)
        data = data.to(target) if target != data.device else data
    model.to(data.device)
    loss.to(data.device)
    recorded = _recorded_memory_format(checkpoint) if resume else None
    if channels_last is None:  # a resumed run's own format, else the model's choice (issue 20)
        chosen = recorded or preferred_memory_format(model, data.device)
        channels_last = chosen == "channels_last"
    elif recorded is not None and recorded != ("channels_last" if channels_last else "contiguous"):
        raise ValueError(
            f"channels_last={channels_last}, but the run in {checkpoint} trained in {recorded}: "
            "resume it in its own format (channels_last=None) or start a new checkpoint"
        )
    if channels_last:
        model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model
    objective = as_objective(loss)
    train_data = data
    if distributed.is_distributed():
        # One run across torchrun's processes (latentboost_lab.distributed): each trains on its
        # shard of every batch, the loss sees the global batch, rank 0 writes and reports.
        if not sync_batchnorm and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()
        ):
            warnings.warn(
                "the model has BatchNorm and sync_batchnorm is off: each process normalises its "
                "shard with its own statistics, so this run is not the single-process one "
                "(sync_batchnorm=True needs GPUs)",
                stacklevel=2,
            )
        ddp = distributed.wrap_model(model, data.device, sync_batchnorm=sync_batchnorm)
        forward = torch.compile(ddp) if compile else ddp
        objective = distributed.GlobalBatchLoss(loss)
        train_data = distributed.ShardedData(data)
    elif sync_batchnorm:
        raise ValueError(
            "sync_batchnorm=True needs a process group: start the script with torchrun"
        )
    if optimizer is None:
        params = list(model.parameters()) + list(loss.parameters())
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        _warn_unoptimised_loss_parameters(loss, optimizer)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(epochs, 1))
        if lr_schedule
        else None
    )
    sampler = objective.sampler or sampler
    history = History(config={**_model_config(model, data, loss), "epochs": epochs, "lr": lr,
                              "batch_size": batch_size, "seed": seed, "monitor": monitor,
                              "patience": patience, "device": str(data.device),
                              "memory_format": "channels_last" if channels_last else "contiguous",
                              "threads": torch.get_num_threads()})  # fmt: skip
    stopper = EarlyStopping(monitor, patience)
    saver = Checkpointer(checkpoint, model, loss, optimizer, scheduler) if checkpoint else None
    start = 0
    if resume and Path(checkpoint).exists():
        history = saver.restore(_model_config(model, data, loss), stopper, data.device)
        if history.config.get("threads") != torch.get_num_threads():  # noted, not refused
            history.config["threads_when_resumed"] = torch.get_num_threads()
        # A run that had already stopped early is finished: resuming it must not train on.
        start = epochs if history.stopped_early else len(history.epochs)
    else:
        torch.manual_seed(seed)
    autocast = torch.autocast(data.device.type, dtype=torch.bfloat16, enabled=bf16)
    guard = NonFiniteGuard(objective, model, optimizer, data.device, loss=loss,
                           skip=skip_nonfinite, autocast=autocast)  # fmt: skip
    last_state = copy.deepcopy(model.state_dict())
    bars = Progress(progress and distributed.rank() == 0, start, epochs)
    try:
        for epoch in bars:
            started = time.perf_counter()
            record = train_epoch(model, objective, optimizer, train_data, epoch, forward=forward,
                                 batch_size=batch_size, sampler=sampler, seed=seed, guard=guard,
                                 autocast=autocast, channels_last=channels_last,
                                 check_first=epoch == start, progress=bars)  # fmt: skip
            if scheduler is not None:
                scheduler.step()
            for split in ("val", "test") if eval_test else ("val",):
                for key, value in evaluate(model, data, split, objective).items():
                    record[f"{split}_{key}"] = value
            record["lr"] = optimizer.param_groups[0]["lr"]
            record["seconds"] = time.perf_counter() - started
            history.epochs.append(record)
            stopper.update(record, model, history)
            last_state = copy.deepcopy(model.state_dict())
            if saver is not None and distributed.rank() == 0:
                saver.save(history, stopper)
            bars.epoch_done(record, monitor)
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
        bars.close()
    if patience is not None and stopper.best_state is not None and not history.interrupted:
        model.load_state_dict(stopper.best_state)
    return history


# --- the loop's helpers, called at named points ------------------------------------------------


class EarlyStopping:
    """Watches ``monitor`` in each epoch's record (a key ending in ``loss`` is minimised) and
    keeps the best weights in memory; after ``patience`` epochs without improvement it sets
    ``history.stopped_early`` (None: never). ``history.best_epoch`` is the best epoch so far."""

    def __init__(self, monitor: str, patience: int | None):
        self.monitor, self.patience = monitor, patience
        self.maximize = not monitor.endswith("loss")
        self.best_state, self.best_value, self.bad_epochs = None, None, 0

    def update(self, record: dict, model: nn.Module, history: History) -> None:
        if self.patience is not None and self.monitor not in record:
            raise ValueError(
                f"monitor must be a key of the epoch record to stop early, got {self.monitor!r}; "
                f"the record has {sorted(record)}"
            )
        current, best = record.get(self.monitor), self.best_value
        if current is not None and (
            best is None or (current > best if self.maximize else current < best)
        ):
            self.best_value, self.bad_epochs, history.best_epoch = current, 0, record["epoch"]
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1
        # Decided before the checkpoint is written, so that a resumed run knows it is done.
        if self.patience is not None and self.bad_epochs >= self.patience:
            history.stopped_early = True


class Checkpointer:
    """Writes the run's state after each epoch (atomically) and restores it on resume: the
    model, the loss (its cluster index, sampler and centres), the optimizer, the scheduler, the
    history, the early-stopping state and the RNG, so that a resumed run ends with the same
    history as an uninterrupted one."""

    def __init__(self, path, model, loss, optimizer, scheduler):
        self.path, self.model, self.loss = path, model, loss
        self.optimizer, self.scheduler = optimizer, scheduler

    def save(self, history: History, stopper: EarlyStopping) -> None:
        save_checkpoint(
            self.path,
            {
                "model": self.model.state_dict(),
                "loss": self.loss.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
                "history": history.to_json(),
                "config": history.config,
                "best_model": stopper.best_state,
                "best_value": stopper.best_value,
                "bad_epochs": stopper.bad_epochs,
                "rng": torch.get_rng_state(),
            },
        )

    def restore(self, config: dict, stopper: EarlyStopping, device) -> History:
        """Load the checkpoint into the model, loss, optimizer, scheduler and ``stopper``
        (refused when it was written for another run); return its history."""
        state = load_checkpoint(self.path, map_location=device)
        saved = {k: state["config"].get(k, _MODEL_CONFIG_DEFAULTS.get(k)) for k in config}
        if saved != config:
            raise ValueError(
                f"checkpoint {self.path} was written for {saved}, not for this run "
                f"{config}; use another checkpoint path"
            )
        self.model.load_state_dict(state["model"])
        # Checkpoints written before a loss kept extra state (its cluster index) lack it.
        missing, unexpected = self.loss.load_state_dict(state["loss"], strict=False)
        if unexpected or any(not key.endswith("_extra_state") for key in missing):
            raise ValueError(
                f"checkpoint {self.path}: the loss's state does not match this loss "
                f"(missing {missing}, unexpected {unexpected})"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        stopper.best_state, stopper.best_value = state.get("best_model"), state.get("best_value")
        stopper.bad_epochs = state["bad_epochs"]
        torch.set_rng_state(state["rng"].cpu())
        return History(**json.loads(state["history"]))


class Progress:
    """The progress bars (tqdm): one over the epochs, one per epoch over its batches; silent
    with ``enabled=False``."""

    def __init__(self, enabled: bool, start: int, epochs: int):
        self.enabled = enabled
        self.bar = tqdm(
            range(start, epochs), desc="epochs", disable=not enabled, initial=start, total=epochs
        )

    def __iter__(self):
        return iter(self.bar)

    def batches(self, batches, epoch: int):
        return tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not self.enabled)

    def epoch_done(self, record: dict, monitor: str) -> None:
        self.bar.set_postfix(
            {k: f"{record[k]:.4g}" for k in ("train_loss", monitor) if k in record}
        )

    def close(self) -> None:
        self.bar.close()


def _check_fit_arguments(
    model, data, loss, epochs, batch_size, lr, weight_decay, seed, patience, lr_schedule,
    monitor, resume, bf16, channels_last, compile, eval_test, progress, skip_nonfinite,
    optimizer, callbacks, checkpoint, **_,
) -> tuple[int, list]:  # fmt: skip
    """fit's arguments, each checked with a message naming it; returns (epochs, callbacks)."""
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
    if channels_last is not None and not isinstance(channels_last, bool):
        raise TypeError(
            f"channels_last must be True, False or None (the model's own choice), got {channels_last!r}"
        )
    for name, flag in {
        "resume": resume,
        "bf16": bf16,
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
    return epochs, callbacks


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data,
    split: str = "test",
    loss: nn.Module | None = None,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Accuracy of the softmax head on a split and, when the loss ``predicts``, of its
    nearest-cluster classifier (``cluster_acc``)."""
    latent, labels, logits = embed(model, data, split, batch_size=batch_size, return_logits=True)
    if len(labels) == 0:
        return {}
    result = {"acc": (logits.argmax(1) == labels).float().mean().item()}
    if loss is not None and as_objective(loss).predicts:
        scores = as_objective(loss).predict(latent)
        if scores is not None:
            result["cluster_acc"] = (scores.argmax(1) == labels).float().mean().item()
    return result


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Save a plain dict of tensors, numbers, strings and lists (loadable with weights_only=True)."""
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


#: Keys of _model_config added after checkpoints were first written, with the value that those
#: checkpoints had: an old checkpoint still resumes into the same run.
_MODEL_CONFIG_DEFAULTS = {"latent": "embedding", "variance_gradient": True, "group": ""}


def _model_config(model: nn.Module, data, loss: nn.Module) -> dict:
    """What a checkpoint must match to be resumed into this run (the reading of issue 13, where
    the latent is taken and whether the variance is differentiated, and the super-class grouping
    of issue 18 included; keys missing from older checkpoints read as their defaults)."""
    return {
        "model": type(model).__name__,
        "latent_dim": int(getattr(model, "latent_dim", -1)),
        "num_classes": int(getattr(model, "num_classes", -1)),
        "dataset": data.info.name,
        "loss": type(loss).__name__,
        "latent": getattr(model, "latent", "embedding"),
        "variance_gradient": getattr(loss, "variance_gradient", True),
        "group": getattr(data.info, "group", ""),  # a super-class task's grouping ("": none)
    }


def _warn_unoptimised_loss_parameters(loss: nn.Module, optimizer) -> None:
    """A loss with parameters of its own (Center loss's centres, uncertainty weighting's
    log-variances) learns them only through the optimizer: say so when the one given leaves
    them out, instead of training with them frozen."""
    given = {id(p) for group in optimizer.param_groups for p in group["params"]}
    left_out = [n for n, p in loss.named_parameters() if p.requires_grad and id(p) not in given]
    if left_out:
        warnings.warn(
            f"the loss's parameters {left_out} are not in the optimizer given, so they stay as "
            "they are; add loss.parameters() to it (fit's default optimizer has them)",
            stacklevel=3,
        )


def _recorded_memory_format(checkpoint) -> str | None:
    """The memory format the run in ``checkpoint`` trained in (None: no checkpoint there yet;
    a checkpoint written before the format was recorded trained in NCHW, "contiguous")."""
    if checkpoint is None or not Path(checkpoint).exists():
        return None
    return load_checkpoint(checkpoint)["config"].get("memory_format", "contiguous")


def _split_size(data, name: str) -> int:
    try:
        return len(data.split(name)[1])
    except ValueError:  # a TensorData built without that split
        return 0


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
