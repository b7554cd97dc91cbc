"""The inputs shared by tests/test_distributed.py and the torchrun worker tests/_ddp_worker.py:
the same rows, model and losses on both sides, built from fixed seeds."""

import torch
from torch import nn

from latentboost_lab.data import Batch
from latentboost_lab.losses import CenterLoss, LatentBoostLoss
from latentboost_lab.training import CrossEntropyLoss

LOSSES = ("ce", "latentboost", "latentboost_no_pca", "center")
STEPS = 2
BATCHES = (13, 13)  # odd: the two ranks hold 7 and 6 rows, so unequal shards are exercised
NUM_CLASSES, LATENT_DIM, IMAGE = 3, 5, (1, 4, 4)


def rows_case(images: bool = False):
    """Float64 rows with every class present: (logits, latent, labels), or (images, labels)."""
    g = torch.Generator().manual_seed(0)
    n = sum(BATCHES)
    labels = torch.arange(n) % NUM_CLASSES
    if images:
        return torch.randn(n, *IMAGE, generator=g, dtype=torch.float64), labels
    logits = torch.randn(BATCHES[0], NUM_CLASSES, generator=g, dtype=torch.float64)
    latent = torch.randn(BATCHES[0], LATENT_DIM, generator=g, dtype=torch.float64)
    latent = latent + 2.0 * nn.functional.one_hot(labels[: BATCHES[0]], LATENT_DIM).double()
    return logits, latent, labels[: BATCHES[0]]


def batch_rows(labels, epoch):
    """The global batches of the training scenario: consecutive blocks of BATCHES rows."""
    stops = torch.tensor(BATCHES).cumsum(0).tolist()
    return [torch.arange(stop - size, stop) for size, stop in zip(BATCHES, stops, strict=True)]


class RowsData:
    """The training scenario's rows as a data object with ``batches`` (what fit reads)."""

    def __init__(self):
        self.images, self.labels = rows_case(images=True)

    def batches(self, split="train", batch_size=None, **kwargs):
        for index in batch_rows(self.labels, 0):
            yield Batch(self.images[index], self.labels[index], index)


class TinyModel(nn.Module):
    """(logits, latent) without BatchNorm: SyncBatchNorm does not run on the CPU, and per-shard
    statistics would make the distributed run a different computation."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, LATENT_DIM)
        )
        self.head = nn.Linear(LATENT_DIM, NUM_CLASSES)
        self.double()

    def forward(self, x):
        latent = self.body(x)
        return self.head(latent), latent


def make_model():
    return TinyModel()


def make_loss(name):
    if name == "ce":
        return CrossEntropyLoss()
    if name == "latentboost":
        return LatentBoostLoss(lam=0.75, pca_variance=0.95)
    if name == "latentboost_no_pca":
        return LatentBoostLoss(lam=0.75, pca_variance=None)
    if name == "center":
        return CenterLoss(NUM_CLASSES, LATENT_DIM, lam=0.1, center_lr=None).double()
    raise ValueError(name)


class DigitsModel(nn.Module):
    """A BatchNorm-free (logits, latent) model for the 8 x 8 digits, for ``fit`` under torchrun."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        latent = self.body(x)
        return self.head(latent), latent


FIT = dict(epochs=2, batch_size=50, seed=0, progress=False, patience=None, lr=3e-3)
FIT_LOSSES = ("ce", "latentboost")


def fit_case(name, checkpoint=None):
    """``fit`` on the digits with FIT's settings; returns (history, model)."""
    from latentboost_lab import load_dataset
    from latentboost_lab.training import fit

    data = load_dataset("digits", seed=0)
    model = DigitsModel()
    loss = CrossEntropyLoss() if name == "ce" else LatentBoostLoss(lam=0.75)
    history = fit(model, data, loss, checkpoint=checkpoint, **FIT)
    return history, model
