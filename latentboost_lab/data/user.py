"""Your own data: a folder of images, or Dataset objects, read into the same uint8 arrays as the
built-in sets (then :func:`~latentboost_lab.data.load_dataset` and
:func:`~latentboost_lab.data.from_datasets` put them on the device).

An image folder follows torchvision's ``ImageFolder`` layout: one sub-folder per class, the
classes sorted by folder name, the files with torchvision's image extensions
(:data:`IMAGE_EXTENSIONS`, any case) found recursively and read with PIL. Files with other
extensions are skipped, as torchvision does; so are hidden files and folders (a name starting
with a dot: Jupyter's ``.ipynb_checkpoints``, macOS's ``._`` copies), which torchvision would
read. The test split is either given or held out:

- ``root/train/<class>/...`` and ``root/test/<class>/...``: the classes are train/'s folders; a
  test/ class folder must also be in train/ (test/ may lack one);
- ``root/<class>/...``: ``test_size`` (default 0.2) of each class's images form the test split,
  drawn with a fixed seed, so the test split is the same whatever the run's seed (as for
  ``digits``); each class keeps at least one training image.

A Dataset object is anything indexable with ``len()`` whose items are ``(image, label)``, the
image a PIL image, a numpy array (H, W) or (H, W, C) as PIL gives them, or a tensor (C, H, W)
or (H, W) as torchvision's ``ToTensor`` gives them; uint8 (0..255) or float in [0, 1]; 1 or 3
channels. Its ``classes`` attribute (torchvision's data sets have one) names the classes.

Every image must have the same size and the same number of channels, else the error names two
images that differ. ``image_size=`` (an int, or (height, width)) resizes every image (PIL,
bilinear); ``channels=`` 1 or 3 converts every image to grayscale or RGB with PIL (``channels=3``
is what torchvision's ImageFolder always does; an alpha channel is dropped).

The labels follow :func:`~latentboost_lab.data.sources.index_labels`. Nothing is written.
"""

from __future__ import annotations

import os
from numbers import Integral
from pathlib import Path

import numpy as np
import torch

from .._checks import check_choice, check_in_range, check_int
from .sources import DataFileError, DataNotFoundError, DatasetInfo, _to_nchw, index_labels, read_npz

#: torchvision's ``IMG_EXTENSIONS``: the files an image folder is read from.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
DEFAULT_TEST_SIZE = 0.2
# PIL modes with one channel of grey; every other 8-bit mode (RGB, RGBA, P, CMYK, ...) is colour.
_GRAY_MODES = frozenset({"1", "L", "LA"})
# 16- and 32-bit modes: PIL's conversion to 8 bits clips them (4000 becomes 255), so they are
# refused rather than silently saturated.
_DEEP_MODES = ("I", "F", "I;16")


# --------------------------------------------------------------------------------------------
# The argument checks


def check_image_size(image_size) -> tuple[int, int] | None:
    """None, an int (square) or a pair (height, width) of positive ints, as (height, width)."""
    if image_size is None:
        return None
    if isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        return check_int("image_size", image_size[0], 1), check_int("image_size", image_size[1], 1)
    if isinstance(image_size, Integral) and not isinstance(image_size, bool):
        size = check_int("image_size", image_size, 1)
        return size, size
    raise TypeError(
        f"image_size must be None, an int or a pair (height, width), got {image_size!r}"
    )


def check_channels(channels) -> int | None:
    if channels is not None:
        check_choice("channels", channels, (1, 3))
    return channels


def check_test_size(test_size) -> float:
    if test_size is None:
        return DEFAULT_TEST_SIZE
    return check_in_range(
        "test_size", test_size, 0.0, 1.0, low_inclusive=False, high_inclusive=False
    )


# --------------------------------------------------------------------------------------------
# One size and one channel count for every image


class _Uniform:
    """The channel count and size every image gets: the ones asked for (``channels=``,
    ``image_size=``), else the first image's, and then an image that differs is an error naming
    both. ``check`` is called once per image, before it is decoded where that is possible."""

    def __init__(
        self, where: str, channels: int | None, size: tuple[int, int] | None, path: bool = False
    ):
        self.where, self.asked_channels, self.asked_size = where, channels, size
        self.channels, self.size, self.first = channels, size, None
        self.path = path  # ``where`` is a folder: the command line can convert it too

    def _how(self, python: str, option: str) -> str:
        if not self.path:
            return python
        return (
            f"{python} in Python, or once on the command line: `latentboost-lab data "
            f"{self.where} {option} --npz OUT.npz`, then --dataset OUT.npz"
        )

    def check(self, name: str, channels: int, size: tuple[int, int]) -> None:
        if self.first is None:
            self.first = name
            self.first_channels, self.first_size = channels, size
            self.channels = self.channels or channels
            self.size = self.size or size
            return
        if self.asked_channels is None and channels != self.first_channels:
            kind = {1: "grayscale", 3: "colour"}
            raise DataFileError(
                f"{self.where}: grayscale and colour images mixed: {self.first} is "
                f"{kind[self.first_channels]}, {name} is {kind[channels]}; convert them all to "
                "RGB (as torchvision's ImageFolder does) or to grayscale: "
                + self._how("channels=3 or channels=1", "--channels 3")
            )
        if self.asked_size is None and size != self.first_size:
            (h0, w0), (h, w) = self.first_size, size
            side = min(h0, w0)
            raise DataFileError(
                f"{self.where}: images differ in size: {self.first} is {h0}x{w0}, {name} is "
                f"{h}x{w} (height x width); resize them all: "
                + self._how(f"image_size={side}", f"--image-size {side}")
            )


def _kind(image, name: str) -> int:
    """1 for a grayscale PIL image, 3 for a colour one; an error for more than 8 bits."""
    if image.mode.startswith(_DEEP_MODES):
        raise DataFileError(
            f"{name}: a {image.mode} image (16 or 32 bits per pixel); only 8-bit images are "
            "read (PIL would clip the values): convert it to 8 bits first"
        )
    return 1 if image.mode in _GRAY_MODES else 3


def _conform(image, channels: int, size: tuple[int, int]) -> np.ndarray:
    """A PIL image as a uint8 array (C, H, W) with ``channels`` channels and ``size``."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    if (image.height, image.width) != size:
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def conform_images(x: np.ndarray, image_size=None, channels: int | None = None) -> np.ndarray:
    """Images (N, C, H, W) uint8 (e.g. an .npz's) resized and converted as asked; the same
    array when nothing is asked or nothing changes."""
    from PIL import Image

    size, channels = check_image_size(image_size), check_channels(channels)
    size = size or tuple(x.shape[2:])
    channels = channels or x.shape[1]
    if (channels, *size) == tuple(x.shape[1:]):
        return x
    out = np.empty((len(x), channels, *size), dtype=np.uint8)
    for i, image in enumerate(x):
        out[i] = _conform(
            Image.fromarray(image[0] if len(image) == 1 else image.transpose(1, 2, 0)),
            channels,
            size,
        )
    return out


def _hold_out(labels: np.ndarray, test_size: float) -> np.ndarray:
    """A boolean mask of the test split: ``round(test_size * n)`` random images of each class of
    n images, at most n - 1 (each class keeps a training image), drawn with a fixed seed so the
    test split does not depend on the run's seed."""
    rng = np.random.default_rng(0)
    is_test = np.zeros(len(labels), dtype=bool)
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        k = min(len(members) - 1, int(np.floor(test_size * len(members) + 0.5)))
        is_test[rng.permutation(members)[:k]] = True
    return is_test


def _split(x: np.ndarray, y: np.ndarray, test_size: float, where: str) -> dict[str, np.ndarray]:
    is_test = _hold_out(y, test_size)
    if not is_test.any():
        raise DataFileError(
            f"{where}: the held-out test split is empty ({len(y)} images, test_size="
            f"{test_size:g} of each class): add images, or raise test_size"
        )
    return {
        "x_train": x[~is_test],
        "y_train": y[~is_test],
        "x_test": x[is_test],
        "y_test": y[is_test],
    }


# --------------------------------------------------------------------------------------------
# Image folders


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _class_folders(folder: Path) -> list[Path]:
    """The class sub-folders, sorted by name as torchvision's ``find_classes`` sorts them."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and _visible(p)), key=lambda p: p.name)


def _image_files(class_dir: Path) -> list[Path]:
    """The image files under one class folder, recursively, in torchvision's order (by folder,
    then by name); an error when there is none."""
    found, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            (found if name.lower().endswith(IMAGE_EXTENSIONS) else skipped).append((dirpath, name))
    if not found:
        note = f"; skipped: {', '.join(n for _, n in sorted(skipped)[:3])}" if skipped else ""
        raise DataFileError(
            f"{class_dir}: empty class folder: no image file ({', '.join(IMAGE_EXTENSIONS)})"
            f"{note}; add images or remove the folder"
        )
    return [Path(d) / n for d, n in sorted(found)]


def _open(path: Path):
    from PIL import Image

    try:
        return Image.open(path)
    except Exception as err:  # PIL raises several types for a file that is not an image
        raise DataFileError(f"{path}: not a readable image ({err})") from err


def _folder_layout(root: Path) -> dict[str, Path]:
    """{"train": folder, "test": folder} for the split layout, {"all": root} otherwise."""
    folders = {p.name: p for p in _class_folders(root)}
    if not folders:
        raise DataFileError(
            f"{root}: no class folder: expected one sub-folder per class (torchvision's "
            "ImageFolder layout), or train/ and test/ each holding them"
        )
    split = [name for name in ("train", "test") if name in folders]
    if len(split) == 1:
        missing = "test" if split == ["train"] else "train"
        raise DataFileError(
            f"{root}: has {split[0]}/ but no {missing}/: give both train/ and test/ (each with "
            "one sub-folder per class), or put the class folders in the root to hold out a "
            "test split"
        )
    return {"train": folders["train"], "test": folders["test"]} if split else {"all": root}


def read_image_folder(
    root: str | os.PathLike, *, image_size=None, channels: int | None = None, test_size=None
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Read an image folder (see the module docstring) as arrays ``x_train, x_test`` (N, C, H,
    W) uint8 and ``y_train, y_test`` int64, and the class names (the folder names).

    Every file is first opened for its header only (size and mode: cheap), so a layout, size or
    channel problem is reported before any image is decoded.
    """
    root = Path(root)
    size, channels = check_image_size(image_size), check_channels(channels)
    held_out = check_test_size(test_size)
    if not root.is_dir():
        raise DataNotFoundError(f"{root}: no such folder")
    layout = _folder_layout(root)
    if "all" not in layout and test_size is not None:
        raise ValueError(
            f"test_size: {root} has its own test/ folder; test_size applies only to a folder "
            "whose class folders are in the root"
        )
    classes = tuple(p.name for p in _class_folders(layout.get("train", root)))
    files: dict[str, list[tuple[Path, int]]] = {}
    for split, folder in layout.items():
        index = {c: i for i, c in enumerate(classes)}
        files[split] = []
        for class_dir in _class_folders(folder):
            if class_dir.name not in index:
                raise DataFileError(
                    f"{class_dir}: class folder {class_dir.name!r} is not in {layout['train']} "
                    f"(a test class with no training images); the classes are {list(classes)}"
                )
            files[split] += [(f, index[class_dir.name]) for f in _image_files(class_dir)]
    uniform = _Uniform(str(root), channels, size, path=True)
    for split_files in files.values():
        for path, _ in split_files:
            with _open(path) as image:
                uniform.check(str(path), _kind(image, str(path)), (image.height, image.width))
    arrays = {}
    for split, split_files in files.items():
        x = np.empty((len(split_files), uniform.channels, *uniform.size), dtype=np.uint8)
        for i, (path, _) in enumerate(split_files):
            with _open(path) as image:
                try:
                    x[i] = _conform(image, uniform.channels, uniform.size)
                except Exception as err:  # truncated or corrupted past its header
                    raise DataFileError(f"{path}: not a readable image ({err})") from err
        arrays[f"x_{split}"] = x
        arrays[f"y_{split}"] = np.array([label for _, label in split_files], dtype=np.int64)
    if "x_all" in arrays:  # no test/ folder: hold the test split out
        arrays = _split(arrays["x_all"], arrays["y_all"], held_out, str(root))
    y_train, y_test, classes = index_labels(str(root), arrays["y_train"], arrays["y_test"], classes)
    return {**arrays, "y_train": y_train, "y_test": y_test}, classes


# --------------------------------------------------------------------------------------------
# Dataset objects


def _item_image(image, name: str):
    """A PIL image of one Dataset item's image (PIL image, numpy array or tensor)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    if isinstance(image, torch.Tensor):
        if image.dim() == 3 and image.shape[0] in (1, 3):
            array = image.detach().cpu().permute(1, 2, 0).numpy()
        elif image.dim() == 2:
            array = image.detach().cpu().numpy()
        else:
            raise DataFileError(
                f"{name}: a tensor image must have shape (C, H, W) with 1 or 3 channels, or "
                f"(H, W), as torchvision's ToTensor gives it; got {tuple(image.shape)}"
            )
    elif isinstance(image, np.ndarray):
        if not (image.ndim == 2 or image.ndim == 3 and image.shape[2] in (1, 3)):
            raise DataFileError(
                f"{name}: a numpy image must have shape (H, W) or (H, W, C) with 1 or 3 "
                f"channels, as PIL gives it; got {image.shape}"
            )
        array = image
    else:
        raise DataFileError(
            f"{name}: the image must be a PIL image, a numpy array (H, W[, C]) or a tensor "
            f"(C, H, W), got {type(image).__name__}"
        )
    if np.issubdtype(array.dtype, np.floating):
        if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
            raise DataFileError(
                f"{name}: a float image must have values in [0, 1] (torchvision's ToTensor), got "
                f"[{array.min():.3g}, {array.max():.3g}]; leave out Normalize: the library "
                "normalises the images itself"
            )
        array = np.rint(array * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise DataFileError(
            f"{name}: the image must be uint8 (0..255) or float in [0, 1], got dtype {array.dtype}"
        )
    return Image.fromarray(array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array)


def _item_label(label, name: str) -> int:
    if isinstance(label, torch.Tensor) and label.numel() == 1 and not label.is_floating_point():
        label = label.item()
    if isinstance(label, bool) or not isinstance(label, Integral):
        raise DataFileError(
            f"{name}: the label must be an integer class index, got {type(label).__name__} "
            f"{label!r}"
        )
    return int(label)


def _check_dataset(dataset, what: str) -> None:
    if isinstance(dataset, (str, bytes, os.PathLike)):
        raise TypeError(
            f"{what} must be a Dataset object; for a folder or an .npz file use "
            f"load_dataset({str(dataset)!r})"
        )
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(
            f"{what} must be a Dataset: indexable, with len(), whose items are (image, label); "
            f"got {type(dataset).__name__}"
        )
    if len(dataset) == 0:
        raise DataFileError(f"{what} holds no images")


def read_datasets(
    train,
    test=None,
    *,
    classes=None,
    image_size=None,
    channels: int | None = None,
    test_size=None,
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Read Dataset objects (see the module docstring) as arrays ``x_train, x_test`` (N, C, H,
    W) uint8 and ``y_train, y_test`` int64, and the class names.

    test None: the test split is held out of ``train`` (``test_size`` of each class, fixed
    seed). classes: the names in label order; default ``train.classes`` where it exists, else
    the labels found (see :func:`~latentboost_lab.data.sources.index_labels`).
    """
    size, channels = check_image_size(image_size), check_channels(channels)
    _check_dataset(train, "train")
    if test is not None:
        _check_dataset(test, "test")
        if test_size is not None:
            raise ValueError(
                "test_size applies only when test is None (the split held out of train)"
            )
    held_out = check_test_size(test_size)
    if classes is None:
        classes = getattr(train, "classes", None)
    uniform = _Uniform("the data sets", channels, size)
    arrays = {}
    for split, dataset in (("train", train), ("test", test)):
        if dataset is None:
            continue
        images, labels = [], []
        for i in range(len(dataset)):
            name = f"{split}[{i}]"
            item = dataset[i]
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise DataFileError(
                    f"{name}: items must be pairs (image, label), got {type(item).__name__}"
                )
            image = _item_image(item[0], name)
            uniform.check(name, _kind(image, name), (image.height, image.width))
            images.append(_conform(image, uniform.channels, uniform.size))
            labels.append(_item_label(item[1], name))
        arrays[f"x_{split}"] = np.stack(images)
        arrays[f"y_{split}"] = np.array(labels, dtype=np.int64)
    if test is None:  # the labels are checked first: a bad label is the clearer error
        no_test = np.zeros(0, dtype=np.int64)
        y, _, classes = index_labels("train", arrays["y_train"], no_test, classes)
        return _split(arrays["x_train"], y, held_out, "train"), classes
    y_train, y_test, classes = index_labels(
        "the data sets", arrays["y_train"], arrays["y_test"], classes, ("train", "test")
    )
    return {**arrays, "y_train": y_train, "y_test": y_test}, classes


# --------------------------------------------------------------------------------------------
# Any path, and the statistics


def read_path(
    path: str | os.PathLike, *, image_size=None, channels: int | None = None, test_size=None
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """An .npz file or an image folder as arrays x_* (N, C, H, W) uint8, y_* int64, and the
    class names."""
    path = Path(path)
    if path.is_dir():
        return read_image_folder(
            path, image_size=image_size, channels=channels, test_size=test_size
        )
    if not path.is_file():
        raise DataNotFoundError(f"name: the .npz file {path} does not exist")
    if test_size is not None:
        raise ValueError(
            f"test_size: {path} has its own test split (x_test); test_size applies only to an "
            "image folder whose class folders are in the root"
        )
    arrays, classes = read_npz(path)
    for split in ("train", "test"):
        x = _to_nchw(arrays[f"x_{split}"])
        arrays[f"x_{split}"] = conform_images(x, image_size, channels)
    return arrays, classes


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (at least 1e-3) of uint8 images (N, C, H, W) scaled to [0, 1],
    as plain floats rounded to 4 places. Summed in float64 a block of images at a time: a
    float64 copy of a whole training split would take 8 bytes per pixel."""
    total = np.zeros(x.shape[1])
    squares = np.zeros(x.shape[1])
    for start in range(0, len(x), 1024):
        block = x[start : start + 1024].astype(np.float64)
        total += block.sum(axis=(0, 2, 3))
        squares += np.square(block).sum(axis=(0, 2, 3))
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / n / 255.0
    std = np.sqrt(np.maximum(squares / n / 255.0**2 - mean**2, 0.0))
    # plain Python floats: numpy float64 here made every batch float64 (issue 12)
    return (
        tuple(float(v) for v in mean.round(4)),
        tuple(float(v) for v in np.maximum(std, 1e-3).round(4)),
    )


def user_info(
    name: str, x_train: np.ndarray, classes: tuple[str, ...], description: str
) -> DatasetInfo:
    """The :class:`DatasetInfo` of a user's data set: its shape and its training split's
    channel statistics; no augmentation (a flip or shift may change what an image shows)."""
    mean, std = channel_stats(x_train)
    return DatasetInfo(name, classes, tuple(x_train.shape[1:]), mean, std, description=description)
