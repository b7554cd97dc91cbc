"""The data set on the device: :class:`TensorData`, :func:`load_dataset` and
:func:`from_datasets`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .._checks import check_in_range, check_int
from ..device import select_device
from .groups import resolve_grouping
from .samplers import SequentialSampler, ShuffledSampler, _generator, stratified_indices
from .sources import DATASETS, DataFileError, DatasetInfo, read_raw
from .user import read_datasets, read_path, user_info


class Batch(NamedTuple):
    """One batch: normalised (and maybe augmented) images, labels, and their indices in the split."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor


class TensorData:
    """A data set whose splits live on one device as uint8 tensors (N, C, H, W).

    ``batches()`` indexes, augments (where ``info.augment``) and normalises on that device.

    A super-class task (``load_dataset(..., group=...)``) also holds the hidden sub-class label
    of every image, ``sub_labels(split)``, for evaluation only: the labels ``split()`` and
    ``batches()`` give are the super-classes, ``info.super_of_sub[sub_label]``. A batch's
    sub-class labels are ``data.sub_labels(split)[batch.index]``.
    """

    def __init__(
        self,
        info: DatasetInfo,
        splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
        source: str = "",
        device: str | torch.device = "cpu",
        sub_labels: dict[str, torch.Tensor] | None = None,
    ):
        self.info = info
        self.source = source
        self.device = select_device(device)
        self._splits = {k: (x.to(self.device), y.to(self.device)) for k, (x, y) in splits.items()}
        self._sub_labels = _checked_sub_labels(info, self._splits, sub_labels, self.device)
        shape = (-1, len(info.mean), 1, 1)
        # float32 whatever the statistics' type: the models and losses train in float32
        self._mean = torch.tensor(info.mean, dtype=torch.float32, device=self.device).view(shape)
        self._std = torch.tensor(info.std, dtype=torch.float32, device=self.device).view(shape)

    # -- the splits ------------------------------------------------------------------------
    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (N, C, H, W) and int64 labels of split ``name``: train, val or test."""
        if name not in self._splits:
            raise ValueError(f"split must be one of {sorted(self._splits)}, got {name!r}")
        return self._splits[name]

    x_train = property(lambda self: self._splits["train"][0])
    y_train = property(lambda self: self._splits["train"][1])
    x_val = property(lambda self: self._splits["val"][0])
    y_val = property(lambda self: self._splits["val"][1])
    x_test = property(lambda self: self._splits["test"][0])
    y_test = property(lambda self: self._splits["test"][1])

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def classes(self) -> tuple[str, ...]:
        return self.info.classes

    def __len__(self) -> int:
        return len(self.y_train)

    @property
    def has_sub_labels(self) -> bool:
        """Whether this is a super-class task holding hidden sub-class labels."""
        return self._sub_labels is not None

    def sub_labels(self, split: str = "train") -> torch.Tensor:
        """int64 hidden sub-class labels of split ``name`` (a super-class task only), indices
        into ``info.sub_classes``; for evaluation, never for training."""
        if self._sub_labels is None:
            raise ValueError(
                f"this {self.info.name} data holds no sub-class labels: load a super-class task "
                "with load_dataset(name, group=...) (see latentboost_lab.data.groups)"
            )
        self.split(split)  # the same error for an unknown split
        return self._sub_labels[split]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(y)}" for k, (_, y) in self._splits.items())
        group = f", group={self.info.group!r}" if self.info.group else ""
        return (
            f"TensorData({self.info.name!r}{group}, {sizes}, "
            f"image_shape={self.info.image_shape}, device={self.device})"
        )

    def to(self, device) -> TensorData:
        """The same data on another device (a new object; this one is unchanged)."""
        return TensorData(self.info, self._splits, self.source, device, self._sub_labels)

    # -- batches ---------------------------------------------------------------------------
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float32 ``(x / 255 - mean) / std``, on the data's device."""
        return (x.float().div_(255.0) - self._mean) / self._std

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random crop with 4-pixel zero padding and random horizontal flip, for a whole uint8
        batch at once (the standard CIFAR augmentation, done by indexing instead of PIL)."""
        n, _, h, w = x.shape
        pad = 4
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=x.device)
        dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=x.device)
        rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]  # (n, 1, h, 1)
        flip = torch.rand(n, 1, generator=generator, device=x.device) < 0.5
        offsets = torch.arange(w, device=x.device)
        cols = torch.where(flip, dx + (w - 1 - offsets), dx + offsets)[
            :, None, None, :
        ]  # (n, 1, 1, w)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        return padded[batch, channel, rows, cols]

    def batches(
        self,
        split: str = "train",
        batch_size: int = 128,
        *,
        shuffle: bool = True,
        augment: bool | None = None,
        sampler=None,
        epoch: int = 0,
        seed: int = 0,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """Normalised batches of a split.

        ``sampler`` (e.g. :class:`ClassBalancedSampler`) overrides ``batch_size``/``shuffle``.
        ``augment`` defaults to ``info.augment`` on the training split and to False elsewhere.
        The same (seed, epoch) gives the same batches.
        """
        x, y = self.split(split)
        if augment is None:
            augment = self.info.augment and split == "train"
        if sampler is None:
            if shuffle:
                sampler = ShuffledSampler(batch_size, seed, drop_last)
            else:
                sampler = SequentialSampler(batch_size)
        g = _generator(self.device, seed + 7919, epoch) if augment else None
        for index in sampler(y, epoch):
            images = x[index]
            if augment:
                images = self.augment(images, g)
            yield Batch(self.normalize(images), y[index], index)


def _checked_sub_labels(info, splits, sub_labels, device):
    """Sub-class labels on ``device``, one per image of each split, consistent with the
    super-class labels through ``info.super_of_sub``; None when not given (an ordinary data
    set, or images wrapped with a super-class task's info, such as an OOD set)."""
    if sub_labels is None:
        return None
    if not info.super_of_sub or len(info.super_of_sub) != len(info.sub_classes):
        raise ValueError(
            "sub_labels need info.sub_classes and info.super_of_sub (one super-class per "
            "sub-class) to say what they are; see latentboost_lab.data.groups"
        )
    if set(sub_labels) != set(splits):
        raise ValueError(
            f"sub_labels must have the splits {sorted(splits)}, got {sorted(sub_labels)}"
        )
    super_of_sub = torch.tensor(info.super_of_sub, dtype=torch.long, device=device)
    checked = {}
    for name, sub in sub_labels.items():
        sub = sub.to(device)
        y = splits[name][1]
        if sub.dtype != torch.long or sub.shape != y.shape:
            raise ValueError(
                f"sub_labels[{name!r}] must be int64 with one label per image ({tuple(y.shape)}), "
                f"got {sub.dtype} of shape {tuple(sub.shape)}"
            )
        if sub.numel() and (int(sub.min()) < 0 or int(sub.max()) >= len(info.sub_classes)):
            raise ValueError(
                f"sub_labels[{name!r}] must lie in [0, {len(info.sub_classes) - 1}], "
                f"got [{int(sub.min())}, {int(sub.max())}]"
            )
        if not torch.equal(super_of_sub[sub], y.long()):
            raise ValueError(
                f"sub_labels[{name!r}]: the super-class labels of split {name!r} are not "
                "info.super_of_sub of its sub-class labels"
            )
        checked[name] = sub
    return checked


def _subset(x, y, n, generator, what):
    if n is None:
        return x, y
    n = check_int(what, n, 1)
    if n > len(y):
        raise ValueError(f"{what} must be <= the split's size ({len(y)}), got {n}")
    keep = stratified_indices(torch.from_numpy(y), n, generator).numpy()
    return x[keep], y[keep]


def load_dataset(
    name: str | os.PathLike = "digits",
    *,
    root: str | os.PathLike | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    val_size: float | int = 0.1,
    seed: int = 0,
    device: str | torch.device | None = "auto",
    download: bool = True,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    test_size: float | None = None,
    group=None,
) -> TensorData:
    """Load a data set by name (``digits``, ``fashion_mnist``, ``cifar10``, ``cifar100``), or
    your own from an ``.npz`` path or an image folder, as a :class:`TensorData` on ``device``.

    n_train, n_test: stratified subsets of the official splits (same class balance), drawn
        with ``seed``; None keeps the whole split.
    val_size: the validation split held out of the (subset) training split, stratified: a
        fraction in [0, 1) or a count; 0 gives an empty validation split.
    device: where the tensors live: "auto" (default; CUDA, else MPS, else the CPU), "cpu",
        "cuda", "cuda:1", "mps". The model moves to the same device in ``fit``.
    download: when no copy is found, let torchvision download the named set into the user
        cache directory (default True: on first use, after one line on stderr saying what,
        where and how large; needs internet; a failed download leaves nothing behind). False:
        raise :class:`DataNotFoundError` instead, listing the places looked at.
    image_size, channels, test_size: for your own data only (see :mod:`.user`): resize every
        image to ``image_size`` (an int or (height, width)); convert every image to 1
        (grayscale) or 3 (RGB) channels; the share of each class held out as the test split
        of an image folder without test/ (default 0.2, fixed seed).
    group: a super-class task (see :mod:`.groups`): a grouping's name (``"fmnist_super"``,
        ``"cifar10_vehicles_animals"``, ``"digits_parity"``; it must be made for ``name``), a
        :class:`~.groups.Grouping`, or a dict ``{super-class name: [class names]}`` covering
        every class once. The labels become the super-classes; the data set's own labels are
        kept as ``sub_labels(split)`` for evaluation. The subsets and the validation split are
        drawn stratified by the sub-classes, so a seed selects the same images with or
        without ``group``.
    """
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(
            "name must be a data set name, an .npz path or an image folder, "
            f"got {type(name).__name__}"
        )
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder path (str or Path) or None, got {root!r}")
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {download!r}")
    seed = check_int("seed", seed, 0)
    if isinstance(name, str) and name in DATASETS:
        if (image_size, channels, test_size) != (None, None, None):
            raise ValueError(
                "image_size, channels and test_size apply to your own data (an .npz file or an "
                f"image folder), not to the built-in {name!r}"
            )
        arrays, classes, source = read_raw(name, root, download)
        info = replace(DATASETS[name], classes=tuple(classes))
        if tuple(arrays["x_train"].shape[1:]) != info.image_shape:
            raise DataFileError(
                f"{source}: images of shape {arrays['x_train'].shape[1:]}, "
                f"expected {info.image_shape} for {name}"
            )
    else:
        path = Path(name)
        if path.suffix != ".npz" and not path.is_dir():
            what = "a file that is not an .npz" if path.exists() else "no such file or folder"
            raise ValueError(
                f"name must be one of {sorted(DATASETS)}, the path of an .npz file or of an "
                f"image folder, got {str(name)!r} ({what})"
            )
        arrays, classes = read_path(
            path, image_size=image_size, channels=channels, test_size=test_size
        )
        kind = "image folder" if path.is_dir() else ".npz file"
        source = str(path)
        info = user_info(
            path.stem or path.resolve().name, arrays["x_train"], classes, f"{kind} {path}"
        )
    if group is not None:
        builtin = str(name) if isinstance(name, str) and name in DATASETS else None
        info = _grouped_info(info, resolve_grouping(group, builtin))
    return _on_device(arrays, info, source, n_train, n_test, val_size, seed, device)


def from_datasets(
    train,
    test=None,
    *,
    classes=None,
    name: str = "my_data",
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    test_size: float | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    val_size: float | int = 0.1,
    seed: int = 0,
    device: str | torch.device | None = "auto",
    group=None,
) -> TensorData:
    """Your own data from Dataset objects (e.g. torchvision's), as a :class:`TensorData` on
    ``device``, like :func:`load_dataset`'s.

    train, test: indexable, with ``len()``, items ``(image, label)``: a PIL image, a uint8
        numpy array (H, W) or (H, W, C), or a tensor (C, H, W) uint8 or float in [0, 1] (see
        :mod:`.user`). test None holds ``test_size`` of each class (default 0.2) out of train,
        with a fixed seed.
    classes: the class names in label order; default ``train.classes`` where it exists, else
        the distinct labels (renumbered 0..K-1, see :func:`.sources.index_labels`).
    name: the data set's name in ``info`` (and so in histories and reports).
    image_size, channels: resize and convert every image (see :func:`load_dataset`).
    n_train, n_test, val_size, seed, device, group: as in :func:`load_dataset` (group: a
        Grouping or a dict of class names; the named groupings are for the built-in sets).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    seed = check_int("seed", seed, 0)
    arrays, classes = read_datasets(
        train,
        test,
        classes=classes,
        image_size=image_size,
        channels=channels,
        test_size=test_size,
    )
    source = f"{type(train).__name__} objects"
    info = user_info(name, arrays["x_train"], classes, f"from {source}")
    if group is not None:
        info = _grouped_info(info, resolve_grouping(group, None))
    return _on_device(arrays, info, source, n_train, n_test, val_size, seed, device)


def _grouped_info(info: DatasetInfo, grouping) -> DatasetInfo:
    """``info`` of the super-class task: super-class names as the classes, the data set's own
    as the sub-classes."""
    super_of_sub = grouping.super_of_sub(info.classes)
    return replace(
        info,
        classes=grouping.classes,
        group=grouping.name,
        sub_classes=info.classes,
        super_of_sub=tuple(int(s) for s in super_of_sub),
        description=f"{info.description}; super-class task {grouping.name!r}: "
        + "; ".join(f"{n} = {', '.join(m)}" for n, m in grouping.groups),
    )


def _on_device(arrays, info, source, n_train, n_test, val_size, seed, device) -> TensorData:
    """The subsets, the validation split and the tensors on the device, the same for every
    kind of data."""
    g = torch.Generator().manual_seed(int(seed))
    x_train, y_train = _subset(arrays["x_train"], arrays["y_train"], n_train, g, "n_train")
    x_test, y_test = _subset(arrays["x_test"], arrays["y_test"], n_test, g, "n_test")
    if isinstance(val_size, float) or isinstance(val_size, int) and val_size == 0:
        n_val = round(
            check_in_range("val_size", val_size, 0, 1, high_inclusive=False) * len(y_train)
        )
    else:
        n_val = check_int("val_size", val_size, 0, len(y_train) - 1)
    is_val = np.zeros(len(y_train), dtype=bool)
    is_val[stratified_indices(torch.from_numpy(y_train), n_val, g).numpy()] = True
    splits = {
        "train": (x_train[~is_val], y_train[~is_val]),
        "val": (x_train[is_val], y_train[is_val]),
        "test": (x_test, y_test),
    }
    # A super-class task: everything above is drawn stratified by the data set's own labels
    # (the same images as without a group); the labels then become the super-classes.
    super_of_sub = np.asarray(info.super_of_sub, dtype=np.int64) if info.super_of_sub else None
    tensors, sub_labels = {}, {} if super_of_sub is not None else None
    for k, (x, y) in splits.items():
        y = np.ascontiguousarray(y)
        if super_of_sub is not None:
            sub_labels[k] = torch.from_numpy(y)
            y = super_of_sub[y]
        tensors[k] = (torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y))
    return TensorData(info, tensors, source, select_device(device), sub_labels)
