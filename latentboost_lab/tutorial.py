"""Small helpers shared by the tutorial notebooks (``notebooks/``), so that each notebook stays
about its subject rather than about plumbing.

- :func:`quick_mode`: is ``LATENTBOOST_QUICK`` set (the test suite's small, fast setting)?
- :func:`pick`: the QUICK or the FULL value of a setting.
- :func:`environment_line`: versions, device and setting, printed at the top of each notebook.
- :func:`load_tutorial_data`: Fashion-MNIST when a copy is found, else scikit-learn's ``digits``
  (embedded, needs no file), saying so.
- :func:`class_spread`: mean intra-class spread and mean distance between class means.
- :func:`nearest_prototypes`: the training images nearest to a test image in the latent space
  (an example-based explanation).
"""

from __future__ import annotations

import os
import platform

import torch

from ._checks import check_int, check_labels, check_latent
from .data import DataNotFoundError, TensorData, load_dataset

__all__ = [
    "class_spread",
    "environment_line",
    "load_tutorial_data",
    "nearest_prototypes",
    "pick",
    "quick_mode",
]

_TRUE = {"1", "true", "yes", "on"}


def quick_mode() -> bool:
    """True when the environment variable ``LATENTBOOST_QUICK`` is 1/true/yes/on (the test suite
    sets it): notebooks then use small stratified subsets and few epochs."""
    return os.environ.get("LATENTBOOST_QUICK", "").strip().lower() in _TRUE


def pick(quick_value, full_value, quick: bool | None = None):
    """``quick_value`` in QUICK mode, ``full_value`` otherwise (``quick=None``: :func:`quick_mode`)."""
    return quick_value if (quick_mode() if quick is None else quick) else full_value


def environment_line(device: torch.device | str | None = None) -> str:
    """One line naming the versions, the device, the CPU threads and the setting (QUICK/FULL)."""
    from . import __version__
    from .device import select_device

    device = select_device(device)
    name = str(device)
    if device.type == "cuda":
        name += f" ({torch.cuda.get_device_name(device)})"
    setting = "QUICK" if quick_mode() else "FULL"
    return (f"latentboost_lab {__version__} | torch {torch.__version__} | Python "
            f"{platform.python_version()} | device {name} | {torch.get_num_threads()} CPU threads "
            f"| setting {setting}")  # fmt: skip


def load_tutorial_data(
    quick_n_train: int | None = 3000,
    full_n_train: int | None = None,
    *,
    quick_n_test: int | None = 1000,
    full_n_test: int | None = None,
    name: str = "fashion_mnist",
    seed: int = 0,
    device: str | torch.device | None = "cpu",
    quick: bool | None = None,
    verbose: bool = True,
) -> TensorData:
    """The notebooks' data: ``name`` (Fashion-MNIST by default) at the QUICK or FULL size.

    Looks where :func:`~latentboost_lab.data.load_dataset` looks (``$LATENTBOOST_DATA``, the
    user cache, Debian's package). In QUICK mode nothing is downloaded (the test suite runs
    offline); in FULL mode torchvision may download into the user cache. When no copy is found,
    it falls back to scikit-learn's ``digits`` (1,797 8x8 images, embedded; its whole official
    split is used) and prints that it did, so a fresh offline machine still runs every notebook.
    The environment variable ``LATENTBOOST_TUTORIAL_DATA`` overrides ``name``.
    """
    quick = quick_mode() if quick is None else quick
    # LATENTBOOST_TUTORIAL_DATA=digits runs every notebook on digits (e.g. to check the fallback
    # on a machine that does have Fashion-MNIST)
    name = os.environ.get("LATENTBOOST_TUTORIAL_DATA", "").strip() or name
    n_train = quick_n_train if quick else full_n_train
    n_test = quick_n_test if quick else full_n_test
    if name == "digits":  # 1,797 images in all: always the whole official split
        n_train = n_test = None
    try:
        data = load_dataset(name, n_train=n_train, n_test=n_test, seed=seed, device=device,
                            download=not quick)  # fmt: skip
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
