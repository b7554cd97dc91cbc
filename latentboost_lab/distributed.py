"""One training run across several processes (DistributedDataParallel), with the loss on the
**global** batch.

Latent Boost's distance term is not a sum of per-sample terms: the batch PCA, the cluster means
and the variances all depend on the whole batch. Under plain DDP every rank would compute them
on its own shard, a different objective from the single-process run. Here every rank

1. draws the same global batch (every rank runs the same sampler with the same seed, and the
   same augmentation draws) and keeps its contiguous shard of it (:class:`ShardedData`): rank
   r's rows come r-th, so the concatenation of the shards is the single-process batch, row for
   row;
2. runs the model on its shard (wrapped in ``DistributedDataParallel``);
3. gathers the logits, latents and labels of every rank (:func:`gather_with_grad`) and
   evaluates the loss on the concatenation (:class:`GlobalBatchLoss`). Every rank gets the same
   loss value, the single-process one.

The gradient. A rank's autograd graph reaches only its own rows (the other ranks' rows arrive as
constants), so rank r's model gradient is the part of the full gradient that flows through its
rows; DDP then *averages* the model gradients over the R ranks, which would leave 1/R of their
sum. The gather therefore multiplies the gradient that reaches the local rows by R in its
backward, so that DDP's average is the sum: the single-process gradient. (pytorch-metric-learning's
``DistributedLossWrapper`` does the same job by multiplying the loss by the world size; scaling in
the gather instead leaves the logged value unscaled and leaves the gradient of a loss's *own*
parameters, such as the Center loss's centres, unscaled: each rank computes that one in full from
the same global rows, so it is already equal on every rank and needs no averaging.)

What this does not cover: BatchNorm computes its statistics per shard unless the model is
converted with ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` (``sync_batchnorm=True`` in
:func:`wrap_model`), which PyTorch runs on GPUs only; so on the CPU (``gloo``) a model with
BatchNorm is *not* equal to the single-process run, and the CPU tests use a model without it.
The Magnet arm's neighbourhood sampler draws batches from per-sample losses that each rank would
see only for its shard; it is refused (:func:`check_supported`).

Launch with ``torchrun`` (it sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``); :func:`init_from_env` reads them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn

from .losses.base import LossResult, Objective, as_objective

__all__ = [
    "GlobalBatchLoss",
    "ShardedData",
    "exchange_sizes",
    "check_supported",
    "gather_with_grad",
    "init_from_env",
    "is_distributed",
    "rank",
    "shard_sizes",
    "sum_over_ranks",
    "world_size",
    "wrap_model",
]


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes (1 outside a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


_world_size, _rank = world_size, rank


def init_from_env(backend: str | None = None) -> torch.device:
    """Join the process group that ``torchrun`` describes in the environment and return this
    process's device (``cuda:LOCAL_RANK`` with the ``nccl`` backend where CUDA is available,
    the CPU with ``gloo`` otherwise)."""
    missing = [
        k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ
    ]
    if missing:
        raise RuntimeError(
            f"init_from_env needs the variables torchrun sets; missing: {', '.join(missing)}. "
            "Start the script with `torchrun --nproc-per-node N script.py`"
        )
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return device


def shard_sizes(batch_size: int, n_ranks: int) -> list[int]:
    """Rows of a global batch of ``batch_size`` that each rank takes: as equal as integers allow,
    the first ``batch_size % n_ranks`` ranks one more."""
    if n_ranks < 1:
        raise ValueError(f"n_ranks must be >= 1, got {n_ranks}")
    base, extra = divmod(int(batch_size), n_ranks)
    return [base + (r < extra) for r in range(n_ranks)]


class ShardedData:
    """``data`` (a :class:`~latentboost_lab.data.TensorData`) whose training batches are this
    rank's contiguous shard of the single-process batches.

    Every rank draws the same global batch (same sampler, seed and epoch), normalised and
    augmented as in the single-process run (the augmentation's random draws are per global
    batch, so they match too), and keeps its rows: rank r's rows come r-th, so the shards
    concatenate to the single-process batch row for row. Every other attribute and split is
    ``data``'s own (evaluation runs on the whole split on every rank).
    """

    def __init__(self, data, rank: int | None = None, world_size: int | None = None):
        self.data = data
        self.world_size = _world_size() if world_size is None else int(world_size)
        self.rank = _rank() if rank is None else int(rank)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must lie in 0..{self.world_size - 1}, got {self.rank}")

    def batches(self, split: str = "train", *args, **kwargs):
        if split != "train":
            yield from self.data.batches(split, *args, **kwargs)
            return
        for batch in self.data.batches(split, *args, **kwargs):
            sizes = shard_sizes(len(batch.y), self.world_size)
            if min(sizes) == 0:
                raise ValueError(
                    f"a batch of {len(batch.y)} rows cannot give each of {self.world_size} "
                    "processes a row; use a batch size of at least the number of processes"
                )
            start = sum(sizes[: self.rank])
            rows = slice(start, start + sizes[self.rank])
            yield type(batch)(batch.x[rows], batch.y[rows], batch.index[rows])

    def to(self, device):
        return ShardedData(self.data.to(device), self.rank, self.world_size)

    def __getattr__(self, name: str):
        return getattr(self.__dict__["data"], name)


_SIZE_GROUP = None


def exchange_sizes(rows: int) -> list[int]:
    """Every rank's number of rows, in rank order. Sent over a CPU (gloo) group, so on GPUs it
    does not wait for the device: the row count is a shape, known on the host."""
    global _SIZE_GROUP
    if dist.get_backend() == "gloo":
        group = None
    else:
        if _SIZE_GROUP is None:
            _SIZE_GROUP = dist.new_group(backend="gloo")
        group = _SIZE_GROUP
    counts = [torch.zeros(1, dtype=torch.long) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, torch.tensor([rows], dtype=torch.long), group=group)
    return [int(c) for c in counts]


class _GatherRows(torch.autograd.Function):
    """Concatenate every rank's rows (rank order); the gradient reaching this rank's rows is
    multiplied by the world size (see the module docstring: it undoes DDP's averaging)."""

    @staticmethod
    def forward(ctx, local: torch.Tensor, sizes: Sequence[int], my_rank: int):
        longest = max(sizes)
        padded = local.new_zeros((longest, *local.shape[1:]))
        padded[: local.shape[0]] = local
        pieces = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(pieces, padded.contiguous())
        pieces = [piece[:n] for piece, n in zip(pieces, sizes, strict=True)]
        pieces[my_rank] = local  # this rank's own rows, exactly as computed here
        ctx.start = sum(sizes[:my_rank])
        ctx.stop = ctx.start + sizes[my_rank]
        ctx.n_ranks = len(sizes)
        return torch.cat(pieces)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.start : ctx.stop] * ctx.n_ranks, None, None


def gather_with_grad(local: torch.Tensor, sizes: Sequence[int] | None = None) -> torch.Tensor:
    """The global batch: every rank's ``local`` rows concatenated in rank order, differentiable
    through this rank's rows (the others are constants here). ``sizes``: every rank's number of
    rows (default: exchanged with :func:`exchange_sizes`; pass them to gather several tensors
    of one batch with one exchange). Outside a process group it returns ``local`` unchanged.
    Tensors without gradient (labels) are gathered the same way."""
    if not is_distributed():
        return local
    me = rank()
    sizes = exchange_sizes(local.shape[0]) if sizes is None else list(sizes)
    if len(sizes) != world_size() or sizes[me] != local.shape[0]:
        raise ValueError(
            f"sizes must give each of the {world_size()} ranks its number of rows (this rank "
            f"holds {local.shape[0]}), got {sizes}"
        )
    if not local.requires_grad:
        with torch.no_grad():
            return _GatherRows.apply(local, sizes, me)
    return _GatherRows.apply(local, sizes, me)


class GlobalBatchLoss(Objective):
    """An objective evaluated on the global batch.

    Every tensor of the batch (the logits, latent, labels, ``sample_ids``, ``cluster_ids``) is
    gathered with :func:`gather_with_grad` (one exchange of the shard sizes per call); the wrapped
    objective then sees exactly the batch the single-process run sees, so its value, its parts
    and its per-sample losses are those of the single-process run, on every rank. Its
    capabilities (sample ids, epoch start, prediction) are the wrapped loss's; attribute reads
    that this wrapper does not have (``lam``, ``margin``, ...) go to the wrapped loss.
    """

    def __init__(self, loss: nn.Module):
        super().__init__()
        inner = as_objective(loss)
        check_supported(inner)
        self.loss = loss
        self._inner = [inner]  # in a list: the same module may be ``loss`` itself
        self.needs_sample_ids = inner.needs_sample_ids
        self.uses_logits = inner.uses_logits
        self.predicts = inner.predicts

    def on_epoch_start(self, model: nn.Module, data, epoch: int) -> None:
        self._inner[0].on_epoch_start(model, data, epoch)

    def predict(self, latent: torch.Tensor) -> torch.Tensor | None:
        return self._inner[0].predict(latent)

    def compute(
        self, logits, latent, labels, epoch: int = 0, cluster_ids=None, sample_ids=None, *,
        check_values: bool = True,
    ) -> LossResult:  # fmt: skip
        rows = latent.shape[0]
        sizes = exchange_sizes(rows) if is_distributed() else None

        def gathered(x):
            if torch.is_tensor(x) and x.dim() >= 1 and x.shape[0] == rows:
                return gather_with_grad(x, sizes)
            return x

        result = self._inner[0].compute(
            gathered(logits), gathered(latent), gathered(labels), epoch,
            gathered(cluster_ids), gathered(sample_ids), check_values=check_values,
        )  # fmt: skip
        self.parts, self.per_sample = result.parts, result.per_sample
        return result

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["loss"], name)


def sum_over_ranks(values: Sequence, device: torch.device | str) -> list[float]:
    """Each entry summed over the ranks (floats or 0-dim tensors; one collective for all of
    them). ``fit`` calls it once per epoch for the record's sums and counts."""
    if not is_distributed():
        return [float(v) for v in values]
    packed = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(())
                          for v in values])  # fmt: skip
    dist.all_reduce(packed)
    return packed.tolist()


def check_supported(loss: nn.Module) -> None:
    """Refuse the losses whose batches cannot be drawn rank by rank (the Magnet arm's
    neighbourhood sampler needs every sample's recent loss on every rank)."""
    if getattr(loss, "sampler", None) is not None:
        raise ValueError(
            f"{type(loss).__name__} draws its batches with a neighbourhood sampler, which one "
            "run across processes does not support; use ce, center or latentboost"
        )


def wrap_model(
    model: nn.Module, device: torch.device | str, *, sync_batchnorm: bool = False
) -> nn.Module:
    """``model`` on ``device`` inside ``DistributedDataParallel`` (unchanged outside a process
    group). ``sync_batchnorm=True`` converts its BatchNorm layers to ``SyncBatchNorm`` first:
    statistics over the global batch, as in the single-process run (GPUs only; refused on the
    CPU with the reason)."""
    device = torch.device(device)
    model = model.to(device)
    if sync_batchnorm:
        if device.type == "cpu":
            raise ValueError(
                "sync_batchnorm=True needs GPUs: PyTorch's SyncBatchNorm does not run on the CPU"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if not is_distributed():
        return model
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )
