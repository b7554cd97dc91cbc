"""The out-of-distribution (OOD) sets, made to fit a model trained on an in-distribution set.

``load_ood(name, in_data)`` returns an :class:`OODSet`: uint8 images ``(N, C, H, W)`` of
exactly the in-distribution set's image shape, on its device. **They are normalised with the
in-distribution set's statistics** (``in_data.normalize``, its training mean and std), as every
input of the deployed model would be: an OOD input does not come with its own statistics.

Real sets (their test splits, none of it seen in training):

- ``mnist``: handwritten digits (LeCun et al. 1998): 10,000 from ``mnist/mnist-10k.npz`` (the
  project's offline copy, all of its 4,998 + 5,002 images; see ``../shared/data/README.md``), or
  the official 10,000 test digits from torchvision's ``MNIST/raw/t10k-images-idx3-ubyte[.gz]``
  folder (``download=True`` fetches them with torchvision into the user cache);
- ``fashion_mnist``: the 10,000 Fashion-MNIST test images (near OOD for MNIST-like data);
- ``cifar10``: the 10,000 CIFAR-10 test images (far OOD for Fashion-MNIST).

Synthetic sets, drawn with ``seed`` (as many images as the in-distribution test split unless
``n`` is given):

- ``gaussian``: each pixel ``N(mean_c, std_c)`` of the in-distribution training statistics
  (scaled to [0, 255]), clipped and rounded;
- ``uniform``: each pixel uniform in 0..255;
- ``shuffled``: the in-distribution test images with their pixel positions permuted, each image
  by its own permutation (the channels of a pixel move together): the same intensity histogram,
  none of the structure.

Group names: ``noise`` = gaussian, uniform; ``synthetic`` = gaussian, uniform, shuffled.

Conversions (:func:`to_shape`, our choices): colour to grayscale by ITU-R 601-2 luma
(``0.299 R + 0.587 G + 0.114 B``, rounded; PIL's ``convert("L")`` agrees to within one grey level), grayscale to colour
by repeating the channel; a smaller image is zero-padded to the target size (28x28 -> 32x32: 2
pixels each side, as the issue asks), a larger one resized with antialiased bilinear
interpolation (CIFAR-10 32x32 -> 28x28, or anything -> 8x8 for ``digits``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_int

__all__ = [
    "OOD_GROUPS",
    "OOD_SETS",
    "OODSet",
    "load_ood",
    "parse_ood",
    "read_mnist",
    "to_shape",
]

#: The OOD sets :func:`load_ood` knows, with one line each.
OOD_SETS = {
    "mnist": "MNIST handwritten digits (test images)",
    "fashion_mnist": "Fashion-MNIST test images",
    "cifar10": "CIFAR-10 test images",
    "gaussian": "Gaussian noise with the in-distribution mean and std per channel",
    "uniform": "uniform noise in 0..255",
    "shuffled": "in-distribution test images with their pixels shuffled (same histogram)",
}
#: Names that stand for several sets.
OOD_GROUPS = {"noise": ("gaussian", "uniform"), "synthetic": ("gaussian", "uniform", "shuffled")}
_REAL = ("mnist", "fashion_mnist", "cifar10")


@dataclass(frozen=True)
class OODSet:
    """An OOD set ready for a model: ``images`` uint8 ``(N, C, H, W)`` in the in-distribution
    image shape, on the in-distribution data's device; ``source`` says where it came from."""

    name: str
    images: torch.Tensor
    source: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return f"OODSet({self.name!r}, {len(self)} images of shape {tuple(self.images.shape[1:])}, from {self.source})"


def parse_ood(names) -> list[str]:
    """The set names of ``"mnist,noise"`` (or a list), groups expanded, in order, each once."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    if not isinstance(names, (list, tuple)):
        raise TypeError(f"ood must be a comma-separated string or a list of names, got {names!r}")
    out: list[str] = []
    for name in names:
        if not name:
            continue
        if name not in OOD_SETS and name not in OOD_GROUPS:
            raise ValueError(
                f"ood must name sets among {sorted(OOD_SETS)} or groups {sorted(OOD_GROUPS)}, "
                f"got {name!r}"
            )
        for n in OOD_GROUPS.get(name, (name,)):
            if n not in out:
                out.append(n)
    if not out:
        raise ValueError(f"ood must name at least one set among {sorted(OOD_SETS)}, got {names!r}")
    return out


# ----------------------------------------------------------------------------- conversions


def to_shape(images: torch.Tensor, shape) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` converted to ``shape = (C', H', W')`` (see the module
    docstring: luma or repeat for the channels; zero padding to enlarge, antialiased bilinear
    resizing to shrink). Returns uint8."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.dtype != torch.uint8:
        raise ValueError(
            "images must be a uint8 tensor (N, C, H, W), got "
            + (
                f"{images.dtype} of shape {tuple(images.shape)}"
                if isinstance(images, torch.Tensor)
                else type(images).__name__
            )
        )
    channels, height, width = (int(v) for v in shape)
    if channels not in (1, 3) or images.shape[1] not in (1, 3):
        raise ValueError(
            f"shape: only 1 (grayscale) and 3 (colour) channels convert, got {images.shape[1]} -> {channels}"
        )
    x = images
    if x.shape[1] == 3 and channels == 1:
        luma = torch.tensor([299, 587, 114], dtype=torch.int32, device=x.device).view(1, 3, 1, 1)
        x = ((x.int() * luma).sum(dim=1, keepdim=True) + 500).div(1000, rounding_mode="floor")
        x = x.to(torch.uint8)
    elif x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    h, w = x.shape[-2:]
    if (h, w) == (height, width):
        return x.contiguous()
    if h <= height and w <= width:
        top, left = (height - h) // 2, (width - w) // 2
        return F.pad(x, (left, width - w - left, top, height - h - top)).contiguous()
    resized = F.interpolate(
        x.float(), size=(height, width), mode="bilinear", align_corners=False, antialias=True
    )
    return resized.round_().clamp_(0, 255).to(torch.uint8)


# ----------------------------------------------------------------------------- real sets


def _roots(root) -> list[Path]:
    from ..data import cache_dir

    places = [root, os.environ.get("LATENTBOOST_DATA"), cache_dir()]
    return [Path(p).expanduser() for p in places if p]


def read_mnist(root=None, download: bool = False) -> tuple[np.ndarray, str]:
    """MNIST digits as uint8 ``(N, 28, 28)`` and where they came from. Looks in ``root``,
    ``$LATENTBOOST_DATA`` and the user cache for ``mnist/mnist-10k.npz`` (every image of it)
    or torchvision's ``MNIST/raw/t10k-images-idx3-ubyte[.gz]`` (the official test split);
    with ``download``, torchvision fetches MNIST into the user cache."""
    from ..data import DataNotFoundError, cache_dir, read_idx

    looked = []
    for base in _roots(root):
        npz = base / "mnist" / "mnist-10k.npz"
        looked.append(npz)
        if npz.is_file():
            with np.load(npz, allow_pickle=False) as f:
                x = np.concatenate([f["x_train"], f["x_test"]])
            if x.dtype != np.uint8 or x.ndim != 3:
                raise ValueError(
                    f"{npz}: x_train/x_test must be uint8 (N, 28, 28), got {x.dtype} {x.shape}"
                )
            return x, str(npz)
        for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"):
            idx = base / "MNIST" / "raw" / name
            looked.append(idx)
            if idx.is_file():
                return read_idx(idx), str(idx)
    if download:
        import torchvision

        target = cache_dir()
        target.mkdir(parents=True, exist_ok=True)
        ds = torchvision.datasets.MNIST(str(target), train=False, download=True)
        return ds.data.numpy().astype(np.uint8), f"downloaded to {target}"
    places = "\n".join(f"  - {p}" for p in looked)
    raise DataNotFoundError(
        f"OOD set 'mnist' was not found. Places looked at:\n{places}\n"
        "Put mnist-10k.npz in DATA/mnist/ or torchvision's MNIST/raw/ folder under "
        "$LATENTBOOST_DATA, or pass download=True (--download) to fetch it with torchvision."
    )


def _real_images(name: str, root, download: bool) -> tuple[torch.Tensor, str]:
    if name == "mnist":
        x, source = read_mnist(root, download)
        return torch.from_numpy(np.ascontiguousarray(x))[:, None], source
    from ..data.sources import read_raw

    arrays, _, source = read_raw(name, root, download)
    return torch.from_numpy(np.ascontiguousarray(arrays["x_test"])), source


def load_ood(
    name: str,
    in_data,
    *,
    n: int | None = None,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    download: bool = False,
) -> OODSet:
    """The OOD set ``name`` (see :data:`OOD_SETS`) in ``in_data``'s image shape and on its
    device. ``n``: a random subset of that many images (drawn with ``seed``), or the number of
    synthetic images (default: as many as ``in_data``'s test split). ``root``/``download``: where
    the real sets are looked for, as for :func:`~latentboost_lab.data.load_dataset`."""
    if name not in OOD_SETS:
        raise ValueError(f"name must be one of {sorted(OOD_SETS)}, got {name!r}")
    if not (hasattr(in_data, "info") and hasattr(in_data, "split")):
        raise TypeError(
            f"in_data must be a TensorData (see load_dataset), got {type(in_data).__name__}"
        )
    seed = check_int("seed", seed, 0)
    info = in_data.info
    if name == info.name:
        raise ValueError(f"name: {name!r} is the in-distribution data set itself, not an OOD set")
    shape = tuple(info.image_shape)
    x_test = in_data.split("test")[0]
    generator = torch.Generator().manual_seed(seed * 1_000_003 + sorted(OOD_SETS).index(name))
    if n is not None:
        n = check_int("n", n, 1)
    if name in _REAL:
        images, source = _real_images(name, root, download)
        if n is not None:
            if n > images.shape[0]:
                raise ValueError(f"n must be <= the {name} set's size ({images.shape[0]}), got {n}")
            images = images[torch.randperm(images.shape[0], generator=generator)[:n]]
        images = to_shape(images, shape)
        return OODSet(name, images.to(in_data.device), f"{source} -> {shape}")
    count = n if n is not None else int(x_test.shape[0])
    if count < 1:
        raise ValueError(f"in_data: its test split is empty, so {name!r} has no size; give n")
    if name == "gaussian":
        mean = torch.tensor(info.mean, dtype=torch.float64).view(1, -1, 1, 1)
        std = torch.tensor(info.std, dtype=torch.float64).view(1, -1, 1, 1)
        noise = torch.randn((count, *shape), generator=generator, dtype=torch.float64)
        images = ((noise * std + mean) * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        source = f"N(mean {info.mean}, std {info.std}) x 255, seed {seed}"
    elif name == "uniform":
        images = torch.randint(0, 256, (count, *shape), generator=generator, dtype=torch.uint8)
        source = f"uniform 0..255, seed {seed}"
    else:  # shuffled
        if n is not None and n > x_test.shape[0]:
            raise ValueError(
                f"n must be <= the in-distribution test split ({x_test.shape[0]}), got {n}"
            )
        picks = torch.randperm(x_test.shape[0], generator=generator)[:count]
        base = x_test.cpu()[picks].flatten(2)  # (count, C, H*W)
        order = torch.rand(count, base.shape[2], generator=generator).argsort(dim=1)
        images = base.gather(2, order[:, None, :].expand(-1, base.shape[1], -1)).view(count, *shape)
        source = f"{info.name} test images, pixels shuffled per image, seed {seed}"
    return OODSet(name, images.to(in_data.device), source)
