"""Data sets held as one uint8 tensor on the training device.

Why this shape (after airbench): a small image data set fits in memory many times over, so the
whole split lives on the device as uint8 and each batch is indexed, augmented and normalised
there. There is no per-sample Python, PIL or DataLoader worker in the hot loop.

Modules: :mod:`.sources` (where files are found, how they are read), :mod:`.samplers`
(which indices make a batch), :mod:`.tensordata` (the data set on the device).

``load_dataset(name)`` returns a :class:`TensorData` with ``train``/``val``/``test`` splits.
Files are looked for, in order, in: ``root=``; ``$LATENTBOOST_DATA``; the user cache directory
(``$XDG_CACHE_HOME/latentboost_lab`` or ``~/.cache/latentboost_lab``); Debian's
``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``); finally torchvision's
download into the cache directory. Data directories are only ever read.

A data set of your own: an ``.npz`` with ``x_train, y_train, x_test, y_test`` (uint8 images of
shape (N, H, W) or (N, H, W, C), integer labels) and ``classes`` (names in label order), passed as
``load_dataset("path/to/file.npz")``.
"""

from __future__ import annotations

from .samplers import (
    ClassBalancedSampler,
    SequentialSampler,
    ShuffledSampler,
    stratified_indices,
)
from .sources import (
    DATASETS,
    DEBIAN_FASHION_MNIST,
    FASHION_MNIST_FILES,
    DataFileError,
    DataNotFoundError,
    DatasetInfo,
    available_datasets,
    cache_dir,
    find_files,
    read_idx,
    read_npz,
    search_dirs,
)
from .tensordata import Batch, TensorData, load_dataset

__all__ = [
    "DATASETS",
    "DEBIAN_FASHION_MNIST",
    "FASHION_MNIST_FILES",
    "Batch",
    "ClassBalancedSampler",
    "DataFileError",
    "DataNotFoundError",
    "DatasetInfo",
    "SequentialSampler",
    "ShuffledSampler",
    "TensorData",
    "available_datasets",
    "cache_dir",
    "find_files",
    "load_dataset",
    "read_idx",
    "read_npz",
    "search_dirs",
    "stratified_indices",
]
