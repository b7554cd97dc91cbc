"""The training settings in one place: :class:`TrainSettings` holds every setting of how a run
trains, with its default. ``fit``'s keyword defaults are read from it, and so are the experiment
runner's (:class:`~latentboost_lab.experiments.ExperimentConfig`) and the command line's
(``--lr``, ``--batch-size``, the epochs per data set); ``settings.fit_kwargs()`` hands a whole
set to ``fit``, as the runner, the commands and the benchmarks can. ``tests/test_training.py``
checks that the defaults agree everywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["CHANNELS_LAST", "DEFAULT_EPOCHS", "TrainSettings"]

#: The command line's epoch budget per data set when ``--epochs`` is not given (20 elsewhere).
DEFAULT_EPOCHS = {"digits": 20, "fashion_mnist": 10, "cifar10": 30, "cifar100": 30}


@dataclass(frozen=True)
class TrainSettings:
    """How one run trains (see :func:`latentboost_lab.training.fit` for each field's meaning):
    the budget, the optimiser's defaults, early stopping, the seed, the memory format and the
    GPU switches."""

    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str | None = None
    batch_size: int = 128
    monitor: str = "val_acc"
    patience: int | None = None
    seed: int = 0
    bf16: bool = False
    channels_last: bool | None = None  # None: the model's own choice (SmallCNN: NHWC on the CPU)
    compile: bool = False
    eval_test: bool = True
    skip_nonfinite: bool = False

    def fit_kwargs(self) -> dict:
        """The settings as ``fit``'s keyword arguments (checked there)."""
        return dataclasses.asdict(self)


#: A memory-format setting (``--memory-format``, ``ExperimentConfig.memory_format``) as fit's
#: ``channels_last`` argument; "auto" is None, the model's own choice.
CHANNELS_LAST = {"auto": None, "channels_last": True, "contiguous": False}

#: The defaults, as fit and the runner read them.
DEFAULTS = TrainSettings()
