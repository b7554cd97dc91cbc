"""Small helpers shared by the tutorial notebooks (``notebooks/``), so that each notebook stays
about its subject rather than about plumbing.

- :func:`mode`: the notebooks' setting, ``"quick"``, ``"medium"`` or ``"full"``
  (``LATENTBOOST_MODE``; ``LATENTBOOST_QUICK=1`` still selects QUICK).
- :func:`quick_mode`: is the setting QUICK (the test suite's small, fast setting)?
- :func:`pick`: a setting's QUICK, MEDIUM or FULL value.
- :func:`environment_line`: versions, device and setting, printed at the top of each notebook.
- :func:`tutorial_dataset`: which data set the notebooks will use (Fashion-MNIST or the
  ``digits`` fallback), without loading it.
- :func:`load_tutorial_data`: Fashion-MNIST when a copy is found, else scikit-learn's ``digits``
  (embedded, needs no file), saying so.
- :func:`class_spread`: mean intra-class spread and mean distance between class means.
- :func:`nearest_prototypes`: the training images nearest to a test image in the latent space
  (an example-based explanation).

The three settings: **QUICK** (what the test suite and CI run: about 45 optimiser steps, a
minute per notebook; it shows that the code works, not what the method does), **MEDIUM** (about
10,000 images and enough epochs for Latent Boost's effect on the latent space to show, a few
minutes per notebook on a 2-core laptop; the outputs stored in the notebooks come from it) and
**FULL** (the whole data set, for a GPU).
"""

from __future__ import annotations

import os

import torch

from ._checks import check_int, check_labels, check_latent
from .data import DataNotFoundError, TensorData, available_datasets, load_dataset

__all__ = [
    "MODES",
    "class_spread",
    "environment_line",
    "load_tutorial_data",
    "mode",
    "nearest_prototypes",
    "pick",
    "quick_mode",
    "tutorial_dataset",
]

MODES = ("quick", "medium", "full")
_TRUE = {"1", "true", "yes", "on"}


class _Unset:
    """Marks an argument left out (``None`` already means "all" for sizes)."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET = _Unset()


def mode() -> str:
    """The notebooks' setting: ``"quick"``, ``"medium"`` or ``"full"``.

    ``LATENTBOOST_MODE`` decides when it is set (any case; an unknown value is an error naming
    the variable). Otherwise ``LATENTBOOST_QUICK`` set to 1/true/yes/on means ``"quick"`` (the
    variable the test suite and older instructions use), and anything else ``"full"``.
    """
    value = os.environ.get("LATENTBOOST_MODE", "").strip().lower()
    if value:
        if value not in MODES:
            raise ValueError(f"LATENTBOOST_MODE must be one of {', '.join(MODES)}; "
                             f"got {os.environ['LATENTBOOST_MODE']!r}")  # fmt: skip
        return value
    return "quick" if os.environ.get("LATENTBOOST_QUICK", "").strip().lower() in _TRUE else "full"


def quick_mode() -> bool:
    """True in the QUICK setting (:func:`mode`): notebooks then use small stratified subsets and
    few epochs."""
    return mode() == "quick"


def _resolve_mode(quick: bool | None, setting: str | None) -> str:
    if setting is not None:
        if setting not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {setting!r}")
        return setting
    if quick is not None:
        return "quick" if quick else "full"
    return mode()


def pick(quick_value, full_value, quick: bool | None = None, *, medium=_UNSET,
         mode: str | None = None):  # fmt: skip
    """The value of a setting for the current setting (:func:`mode`): ``quick_value`` in QUICK,
    ``full_value`` in FULL, ``medium`` in MEDIUM.

    Left out, ``medium`` is ``quick_value``: a notebook written before MEDIUM existed runs its
    QUICK values there (small and fast), never its FULL ones by surprise. ``quick=True/False``
    (older notebooks) and ``mode="quick"|"medium"|"full"`` override the environment.
    """
    setting = _resolve_mode(quick, mode)
    if setting == "full":
        return full_value
    if setting == "medium" and medium is not _UNSET:
        return medium
    return quick_value


def environment_line(device: torch.device | str | None = None) -> str:
    """One line naming the versions, the device, the CPU threads and the setting
    (QUICK/MEDIUM/FULL)."""
    from .device import select_device
    from .provenance import provenance

    device = select_device(device)
    record = provenance(device)  # the same record runs.json and the benchmarks keep
    name = record["device"] + (f" ({record['cuda']})" if device.type == "cuda" else "")
    return (f"latentboost_lab {record['latentboost_lab']} | torch {record['torch']} | Python "
            f"{record['python']} | device {name} | {record['torch_threads']} CPU threads "
            f"| setting {mode().upper()}")  # fmt: skip


def tutorial_dataset(name: str = "fashion_mnist", *, quick: bool | None = None,
                     mode: str | None = None) -> str:  # fmt: skip
    """The name of the data set :func:`load_tutorial_data` will use, without loading it.

    ``LATENTBOOST_TUTORIAL_DATA`` if set (``digits`` checks the fallback on a machine that has
    Fashion-MNIST); else ``name`` when a copy is found or when the setting may download it
    (MEDIUM, FULL); else ``"digits"`` (QUICK never downloads). For notebooks that hand a name to
    the experiment runner instead of loading the data themselves (notebook 07).
    """
    name = os.environ.get("LATENTBOOST_TUTORIAL_DATA", "").strip() or name
    if name == "digits" or _resolve_mode(quick, mode) != "quick":
        return name
    return name if available_datasets().get(name) else "digits"


def load_tutorial_data(
    quick_n_train: int | None = 3000,
    full_n_train: int | None = None,
    *,
    quick_n_test: int | None = 1000,
    full_n_test: int | None = None,
    n_train: int | None | _Unset = _UNSET,
    n_test: int | None | _Unset = _UNSET,
    name: str = "fashion_mnist",
    seed: int = 0,
    device: str | torch.device | None = "cpu",
    quick: bool | None = None,
    mode: str | None = None,
    verbose: bool = True,
) -> TensorData:
    """The notebooks' data: ``name`` (Fashion-MNIST by default) at the size of the setting.

    Sizes: ``n_train``/``n_test`` when given (a notebook whose configuration cell already picked
    them with :func:`pick`); otherwise ``quick_n_train``/``quick_n_test`` in QUICK and MEDIUM
    and ``full_n_train``/``full_n_test`` in FULL (``None``: the whole split).

    Looks where :func:`~latentboost_lab.data.load_dataset` looks (``$LATENTBOOST_DATA``, the
    user cache, Debian's package). In QUICK nothing is downloaded (the test suite runs offline);
    in MEDIUM and FULL torchvision may download into the user cache. When no copy is found, it
    falls back to scikit-learn's ``digits`` (1,797 8x8 images, embedded; its whole official
    split is used) and prints that it did, so a fresh offline machine still runs every notebook.
    The environment variable ``LATENTBOOST_TUTORIAL_DATA`` overrides ``name``.
    """
    setting = _resolve_mode(quick, mode)
    # LATENTBOOST_TUTORIAL_DATA=digits runs every notebook on digits (e.g. to check the fallback
    # on a machine that does have Fashion-MNIST)
    name = os.environ.get("LATENTBOOST_TUTORIAL_DATA", "").strip() or name
    if n_train is _UNSET:
        n_train = full_n_train if setting == "full" else quick_n_train
    if n_test is _UNSET:
        n_test = full_n_test if setting == "full" else quick_n_test
    if name == "digits":  # 1,797 images in all: always the whole official split
        n_train = n_test = None
    try:
        data = load_dataset(name, n_train=n_train, n_test=n_test, seed=seed, device=device,
                            download=setting != "quick")  # fmt: skip
    except DataNotFoundError:
        if name == "digits":
            raise
        if verbose:
            print(f"No copy of {name} was found (set LATENTBOOST_DATA to its folder); "
                  "FALLING BACK to scikit-learn's embedded 'digits' (8x8 images, 10 classes). "
                  "The figures and numbers below are then about digits.")  # fmt: skip
        data = load_dataset("digits", seed=seed, device=device, download=False)
    if verbose:
        print(f"data: {data.info.name} from {data.source}: {len(data.y_train)} train, "
              f"{len(data.y_val)} val, {len(data.y_test)} test images of shape "
              f"{tuple(data.info.image_shape)}")  # fmt: skip
    return data


def class_spread(latent, labels) -> dict[str, float]:
    """How tight and how far apart the classes are in a latent space.

    ``intra``: the mean over classes of the mean Euclidean distance of a class's points to their
    class mean; ``inter``: the mean Euclidean distance between two class means (over all pairs);
    ``ratio``: inter / intra (scale free: larger means better separated).
    """
    latent = check_latent(torch.as_tensor(latent), name="latent").double()
    labels = check_labels(torch.as_tensor(labels), latent.shape[0], name="labels")
    classes = torch.unique(labels)
    if len(classes) < 2:
        raise ValueError("labels must hold at least two classes")
    means = torch.stack([latent[labels == c].mean(0) for c in classes])
    intra = torch.stack([(latent[labels == c] - m).norm(dim=1).mean()
                         for c, m in zip(classes, means, strict=True)]).mean()  # fmt: skip
    pair = torch.cdist(means, means)
    inter = pair.sum() / (len(classes) * (len(classes) - 1))
    return {"intra": float(intra), "inter": float(inter), "ratio": float(inter / intra)}


@torch.no_grad()
def nearest_prototypes(train_latent, query_latent, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (q, k) and Euclidean distances (q, k) of the ``k`` training latents nearest to
    each query latent: "this test image looks, to the network, like these training images"."""
    train_latent = check_latent(torch.as_tensor(train_latent), name="train_latent")
    query_latent = torch.as_tensor(query_latent)
    query_latent = check_latent(query_latent[None] if query_latent.ndim == 1 else query_latent,
                                name="query_latent")  # fmt: skip
    k = check_int("k", k, 1, train_latent.shape[0])
    distances = torch.cdist(query_latent.double(), train_latent.double())
    values, indices = distances.topk(k, dim=1, largest=False)
    return indices, values.float()
