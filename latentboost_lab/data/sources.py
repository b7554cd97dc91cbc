"""Where the data sets are found and how their files are read.

Search order: ``root=``; ``$LATENTBOOST_DATA``; the user cache directory
(``$XDG_CACHE_HOME/latentboost_lab`` or ``~/.cache/latentboost_lab``); Debian's
``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``); finally torchvision's
download into the cache directory (on first use: ``load_dataset``'s ``download=True`` is the
default, and it prints one line saying so first). Data directories are only ever read.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .samplers import stratified_indices

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


class DataNotFoundError(FileNotFoundError):
    """No copy of a data set was found in any of the places looked at."""


class DataFileError(ValueError):
    """A data file exists but is not what it should be (size, checksum, format)."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a plot need to know about a data set."""

    name: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (channels, height, width)
    mean: tuple[float, ...]  # per channel, of the training images scaled to [0, 1]
    std: tuple[float, ...]
    augment: bool = False  # random crop (4-pixel padding) and horizontal flip during training
    description: str = ""
    # A super-class task (load_dataset's group=; see data/groups.py): the grouping's name, the
    # data set's own class names (the hidden sub-classes, in their label order) and the
    # super-class label of each. Empty for an ordinary data set.
    group: str = ""
    sub_classes: tuple[str, ...] = ()
    super_of_sub: tuple[int, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)


_FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

# Channel statistics of the official training splits (scaled to [0, 1]). The Fashion-MNIST
# mean is checked against the real files by the test suite; the digits ones are computed
# from load_digits; CIFAR's are the widely used published values.
DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits",
        tuple(str(i) for i in range(10)),
        (1, 8, 8),
        (0.3073,),
        (0.3759,),
        description="scikit-learn's load_digits: 1,797 8x8 handwritten digits, ships with scikit-learn",
    ),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist",
        _FASHION_CLASSES,
        (1, 28, 28),
        (0.2860,),
        (0.3530,),
        description="Fashion-MNIST (Xiao et al. 2017): 60,000 + 10,000 28x28 grayscale images",
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        _CIFAR10_CLASSES,
        (3, 32, 32),
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        augment=True,
        description="CIFAR-10 (Krizhevsky 2009): 50,000 + 10,000 32x32 colour images",
    ),
    "cifar100": DatasetInfo(
        "cifar100",
        (),
        (3, 32, 32),
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        augment=True,
        description="CIFAR-100 (Krizhevsky 2009): 50,000 + 10,000 32x32 colour images, 100 classes",
    ),
}

# The official Fashion-MNIST files by the array they hold, with their md5 sums (the ones
# torchvision checks).
FASHION_MNIST_FILES = {
    "x_train": ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "y_train": ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    "x_test": ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    "y_test": ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
}
# The md5 sums of the same files' *decompressed* bytes: repackagers (Debian's
# dataset-fashion-mnist) recompress the official files, which changes the .gz sums but not the
# data; a file passes when either sum matches.
FASHION_MNIST_CONTENT_MD5 = {
    "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
}
# Sub-folders of a data root that may hold a data set (the first is torchvision's layout).
_SUBDIRS = {
    "fashion_mnist": (
        "FashionMNIST/raw",
        "fashion_mnist",
        "fashion-mnist",
        "FashionMNIST",
        "",
    ),
    "cifar10": ("cifar10", "cifar-10", ""),
    "cifar100": ("cifar100", "cifar-100", ""),
}
_TORCHVISION_FOLDERS = {
    "cifar10": "cifar-10-batches-py",
    "cifar100": "cifar-100-python",
}
# What torchvision downloads: the four official Fashion-MNIST .gz files (their sizes), and the
# CIFAR python archives (the sizes the CIFAR page, https://www.cs.toronto.edu/~kriz/cifar.html,
# gives).
DOWNLOAD_SIZES = {"fashion_mnist": "31 MB", "cifar10": "163 MB", "cifar100": "161 MB"}


# --------------------------------------------------------------------------------------------
# Where data is looked for


def cache_dir() -> Path:
    """The user cache directory where downloads go (never a data directory given by the user)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "latentboost_lab"


def search_dirs(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched for data set ``name``, in order."""
    dirs: list[Path] = []
    if root is not None:
        dirs.append(Path(root).expanduser())
    if os.environ.get("LATENTBOOST_DATA"):
        dirs.append(Path(os.environ["LATENTBOOST_DATA"]).expanduser())
    dirs.append(cache_dir())
    if name == "fashion_mnist":
        dirs.append(DEBIAN_FASHION_MNIST)
    return dirs


def _candidate_dirs(name: str, root) -> list[Path]:
    return [d / sub if sub else d for d in search_dirs(name, root) for sub in _SUBDIRS[name]]


def _how_to_get(name: str) -> str:
    lines = [
        "How to get it:",
        "  - let torchvision download it (needs internet): load_dataset(NAME) does by default, "
        "so do train, demo and compare without --no-download, or `latentboost-lab data "
        "--download NAME`",
        "  - or put the files in a folder and set LATENTBOOST_DATA=/that/folder (or pass root=)",
    ]
    if name == "fashion_mnist":
        lines.append("  - on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist")
    lines.append(
        "  - or bring your own data: an .npz (x_train, y_train, x_test, y_test, classes) or a "
        "folder of images, one sub-folder per class, passed as the name"
    )
    lines.append("  - or use the embedded data set that needs no file: name='digits'")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Readers of the on-disk formats


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_idx(
    path: str | os.PathLike, md5: str | None = None, content_md5: str | None = None
) -> np.ndarray:
    """Read an idx file (``.gz`` or plain), the format of MNIST and Fashion-MNIST.

    Checks the md5 sum when given (the file's, or ``content_md5`` of its decompressed bytes: a
    recompressed copy of the official file passes), the magic number and that the byte count
    matches the header.
    """
    path = Path(path)
    file_md5 = _md5(path) if md5 is not None else None
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataFileError(
            f"{path}: cannot be read ({err}); the file is truncated or corrupted"
        ) from err
    if file_md5 is not None and file_md5 != md5:
        if content_md5 is None or hashlib.md5(raw).hexdigest() != content_md5:
            raise DataFileError(
                f"{path}: checksum mismatch (md5 {file_md5}, expected {md5}); the file is "
                "corrupted or not the official one: delete it and fetch it again"
            )
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataFileError(
            f"{path}: not an idx file of unsigned bytes (bad magic number {raw[:4].hex()})"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        problem = "the file is truncated" if len(raw) < expected else "it has bytes to spare"
        raise DataFileError(
            f"{path}: {len(raw)} bytes, but its header {shape} needs {expected}; {problem}"
        )
    return np.frombuffer(bytearray(raw), dtype=np.uint8, offset=header).reshape(shape)  # writable


def read_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Read the documented ``.npz`` format and check its arrays."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
            names = arrays.pop("classes", None)
    except Exception as err:  # zipfile, pickle and value errors all mean: not a valid npz
        raise DataFileError(f"{path}: not a readable .npz file ({err})") from err
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise DataFileError(
            f"{path}: missing arrays {missing}; expected x_train, y_train, x_test, y_test, classes"
        )
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8:
            raise DataFileError(f"{path}: x_{split} must be uint8 images, got dtype {x.dtype}")
        if x.ndim not in (3, 4):
            raise DataFileError(
                f"{path}: x_{split} must have shape (N, H, W) or (N, H, W, C), got {x.shape}"
            )
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1 or len(y) != len(x):
            raise DataFileError(
                f"{path}: y_{split} must be a 1-D integer array with one label per image "
                f"({len(x)}), got dtype {y.dtype}, shape {y.shape}"
            )
    arrays = {k: arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    if len(arrays["x_train"]) == 0:
        raise DataFileError(f"{path}: x_train holds no images")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataFileError(
            f"{path}: x_train images {arrays['x_train'].shape[1:]} and x_test images "
            f"{arrays['x_test'].shape[1:]} differ in shape"
        )
    arrays["y_train"], arrays["y_test"], classes = index_labels(
        str(path), arrays["y_train"], arrays["y_test"], names
    )
    return arrays, classes


def index_labels(
    where: str,
    y_train: np.ndarray,
    y_test: np.ndarray,
    classes=None,
    names: tuple[str, str] = ("y_train", "y_test"),
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The one rule for the labels of a user's data (an .npz, an image folder, Dataset objects).

    With ``classes`` (names in label order): labels must be integers in [0, len(classes)).
    Without: the distinct training labels, sorted, become the classes, named by their value,
    and the labels are renumbered 0..K-1 (labels 3, 7, 10 become 0, 1, 2 with the names "3",
    "7", "10"); a test label that no training image has is an error. Either way every class
    needs at least one training image (the test split may lack a class) and there must be at
    least 2 classes. Returns int64 labels and the class names; errors name ``where``.
    """
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if classes is not None:
        classes = tuple(str(c) for c in classes)
        repeated = sorted({c for c in classes if classes.count(c) > 1})
        if repeated:
            raise DataFileError(f"{where}: class names must be distinct, got repeats {repeated}")
        y_all = np.concatenate([y_train, y_test])
        if len(y_all) and (y_all.min() < 0 or y_all.max() >= len(classes)):
            raise DataFileError(
                f"{where}: labels must lie in [0, {len(classes) - 1}] (one per class name), "
                f"got [{y_all.min()}, {y_all.max()}]"
            )
    else:
        values = np.unique(y_train)
        unknown = np.setdiff1d(y_test, values)
        if len(unknown):
            raise DataFileError(
                f"{where}: {names[1]} holds labels {unknown[:5].tolist()} that no training image "
                f"has (a class missing from the training split); the training labels are "
                f"{values[:10].tolist()}{' ...' if len(values) > 10 else ''}"
            )
        classes = tuple(str(v) for v in values)
        y_train, y_test = np.searchsorted(values, y_train), np.searchsorted(values, y_test)
    counts = np.bincount(y_train, minlength=len(classes))
    empty = [classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataFileError(
            f"{where}: no training image for the classes {empty[:5]}"
            f"{' ...' if len(empty) > 5 else ''}; every class needs at least one"
        )
    if len(classes) < 2:
        raise DataFileError(
            f"{where}: a classifier needs at least 2 classes, got {len(classes)} {list(classes)}"
        )
    return y_train.astype(np.int64), y_test.astype(np.int64), classes


def _to_nchw(x: np.ndarray) -> np.ndarray:
    return x[:, None] if x.ndim == 3 else np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _read_cifar_pickles(folder: Path, name: str) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """torchvision's on-disk CIFAR layout (the python pickles), read without writing anything."""
    if name == "cifar10":
        train_files, test_files = (
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
        )
        label_key, meta_file, names_key = "labels", "batches.meta", "label_names"
    else:
        train_files, test_files = ["train"], ["test"]
        label_key, meta_file, names_key = "fine_labels", "meta", "fine_label_names"

    n_classes = 10 if name == "cifar10" else 100

    def load(file, keys):
        path = folder / file
        if not path.is_file():
            expected = ", ".join([*train_files, *test_files, meta_file])
            raise DataFileError(f"{path}: missing; {folder} must hold {expected}")
        try:
            with open(path, "rb") as f:
                content = pickle.load(f, encoding="latin1")
        except Exception as err:
            raise DataFileError(
                f"{path}: cannot be read as a CIFAR pickle ({err}); the file is truncated or "
                "corrupted: delete the folder and fetch it again"
            ) from err
        missing = [k for k in keys if not isinstance(content, dict) or k not in content]
        if missing:
            raise DataFileError(f"{path}: not a {name} file, it lacks {missing}")
        return content

    def images_and_labels(file):
        content = load(file, ("data", label_key))
        x, y = np.asarray(content["data"]), np.asarray(content[label_key])
        if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
            raise DataFileError(
                f"{folder / file}: 'data' must be uint8 rows of 3072 values (32x32x3), "
                f"got dtype {x.dtype}, shape {x.shape}"
            )
        if not np.issubdtype(y.dtype, np.integer) or y.shape != (len(x),):
            raise DataFileError(
                f"{folder / file}: '{label_key}' must be one integer label per image "
                f"({len(x)}), got dtype {y.dtype}, shape {y.shape}"
            )
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise DataFileError(
                f"{folder / file}: labels must lie in [0, {n_classes - 1}], "
                f"got [{y.min()}, {y.max()}]"
            )
        return x, y.astype(np.int64)

    arrays = {}
    for split, files in (("train", train_files), ("test", test_files)):
        parts = [images_and_labels(f) for f in files]
        x = np.concatenate([x for x, _ in parts])
        arrays[f"x_{split}"] = x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        arrays[f"y_{split}"] = np.concatenate([y for _, y in parts])
    names = tuple(str(c) for c in load(meta_file, (names_key,))[names_key])
    if len(names) != n_classes:
        raise DataFileError(
            f"{folder / meta_file}: {names_key} must name {n_classes} classes, got {len(names)}"
        )
    return arrays, names


def find_files(name: str, root) -> tuple[Path | None, list[Path]]:
    """The first folder or file that holds data set ``name``, and every place looked at."""
    looked: list[Path] = []
    for d in _candidate_dirs(name, root):
        looked.append(d)
        if name == "fashion_mnist" and all(
            (d / f).is_file() for f, _ in FASHION_MNIST_FILES.values()
        ):
            return d, looked
        if name in _TORCHVISION_FOLDERS and (d / _TORCHVISION_FOLDERS[name]).is_dir():
            return d / _TORCHVISION_FOLDERS[name], looked
        if d.is_dir():
            npz = sorted(d.glob(f"{name}*.npz")) or (
                sorted(d.glob("*.npz")) if d.name in _SUBDIRS[name] and d.name else []
            )
            if npz:
                return npz[0], looked
    return None, looked


def _download(name: str) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """torchvision's download into the user cache directory (the real path for online users).

    Prints one line first (to stderr: what, where, how large, how to turn it off). torchvision
    writes into a new temporary folder inside the cache; its files are moved into the cache only
    once both splits have been read. A failed or interrupted download (offline, a truncated
    file) leaves nothing behind: the temporary folder is removed, and so is the cache folder
    itself when this call created it.
    """
    import torchvision.datasets as tvd

    cls = {
        "fashion_mnist": tvd.FashionMNIST,
        "cifar10": tvd.CIFAR10,
        "cifar100": tvd.CIFAR100,
    }[name]
    target = cache_dir()
    print(
        f"latentboost_lab: no copy of {name} here; downloading it with torchvision into {target} "
        f"(about {DOWNLOAD_SIZES[name]}; download=False or --no-download to stop instead)",
        file=sys.stderr,
        flush=True,
    )
    created = [d for d in (target, *target.parents) if not d.exists()]  # deepest first
    target.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=target))
    done = False
    try:
        arrays = {}
        classes: tuple[str, ...] = ()
        for split in ("train", "test"):
            ds = cls(root=str(scratch), train=(split == "train"), download=True)
            x = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
            y = ds.targets
            y = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
            arrays[f"x_{split}"], arrays[f"y_{split}"] = x.astype(np.uint8), y.astype(np.int64)
            classes = tuple(ds.classes)
        for entry in scratch.iterdir():
            _move_into(entry, target / entry.name)
        done = True
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if not done:
            for folder in created:
                try:
                    folder.rmdir()  # only ever an empty folder this call made
                except OSError:
                    break
    return arrays, classes


def _move_into(source: Path, destination: Path) -> None:
    """Move a downloaded file or folder into the cache; a folder merges into one already there
    (an incomplete copy left by an older version is completed, not duplicated)."""
    if source.is_dir() and destination.is_dir():
        for child in source.iterdir():
            _move_into(child, destination / child.name)
        return
    if destination.is_dir():
        shutil.rmtree(destination)
    os.replace(source, destination)


def read_raw(name: str, root, download: bool) -> tuple[dict[str, np.ndarray], tuple[str, ...], str]:
    """Arrays x_train (N,C,H,W) uint8, y_train, x_test, y_test; class names; where they came from."""
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
        labels = bunch.target.astype(np.int64)
        # load_digits has no official split: a fixed stratified 80/20 one (seed 0, whatever the
        # run's seed) keeps the test set the same across runs so results are comparable.
        test = stratified_indices(
            torch.from_numpy(labels), 360, torch.Generator().manual_seed(0)
        ).numpy()
        is_test = np.zeros(len(labels), dtype=bool)
        is_test[test] = True
        arrays = {
            "x_train": images[~is_test],
            "y_train": labels[~is_test],
            "x_test": images[is_test],
            "y_test": labels[is_test],
        }
        return (
            {k: _to_nchw(v) if k[0] == "x" else v for k, v in arrays.items()},
            DATASETS["digits"].classes,
            "scikit-learn (embedded)",
        )

    found, looked = find_files(name, root)
    if found is None:
        if download:
            try:
                arrays, classes = _download(name)
            except Exception as err:  # offline: urllib, socket and torchvision errors alike
                raise DataNotFoundError(
                    _not_found_message(name, looked, f"download failed: {err}")
                ) from None
            return (
                {k: _to_nchw(v) if k[0] == "x" else v for k, v in arrays.items()},
                classes,
                f"downloaded to {cache_dir()}",
            )
        raise DataNotFoundError(
            _not_found_message(
                name, looked, "not attempted (download=False, or --no-download on the command line)"
            )
        )
    if found.suffix == ".npz":
        arrays, classes = read_npz(found)
    elif found.name in _TORCHVISION_FOLDERS.values():
        arrays, classes = _read_cifar_pickles(found, name)
    else:  # Fashion-MNIST idx files
        arrays = {
            key: read_idx(found / file, md5, FASHION_MNIST_CONTENT_MD5.get(file))
            for key, (file, md5) in FASHION_MNIST_FILES.items()
        }
        classes = _FASHION_CLASSES
    arrays = {k: (_to_nchw(v) if k[0] == "x" else v.astype(np.int64)) for k, v in arrays.items()}
    return arrays, classes, str(found)


def _not_found_message(name: str, looked: list[Path], download_note: str) -> str:
    places = "\n".join(f"  - {p}" for p in looked)
    return (
        f"data set {name!r} was not found. Places looked at, in order:\n{places}\n"
        f"  - torchvision download: {download_note}\n{_how_to_get(name)}"
    )


def available_datasets(root=None) -> dict[str, str | None]:
    """Where each named data set was found (None where no copy is present; nothing is downloaded)."""
    found = {"digits": "scikit-learn (embedded)"}
    for name in ("fashion_mnist", "cifar10", "cifar100"):
        place, _ = find_files(name, root)
        found[name] = str(place) if place is not None else None
    return found
