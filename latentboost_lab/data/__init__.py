"""Data sets held as one uint8 tensor on the training device.

Why this shape (after airbench): a small image data set fits in memory many times over, so the
whole split lives on the device as uint8 and each batch is indexed, augmented and normalised
there. There is no per-sample Python, PIL or DataLoader worker in the hot loop.

Modules: :mod:`.sources` (where files are found, how they are read), :mod:`.user` (your own
image folders and Dataset objects), :mod:`.samplers` (which indices make a batch),
:mod:`.tensordata` (the data set on the device).

``load_dataset(name)`` returns a :class:`TensorData` with ``train``/``val``/``test`` splits.
Files are looked for, in order, in: ``root=``; ``$LATENTBOOST_DATA``; the user cache directory
(``$XDG_CACHE_HOME/latentboost_lab`` or ``~/.cache/latentboost_lab``); Debian's
``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``); finally torchvision's
download into the cache directory. Data directories are only ever read.

A data set of your own, as the same uint8 TensorData:

- an ``.npz`` with ``x_train, y_train, x_test, y_test`` (uint8 images of shape (N, H, W) or
  (N, H, W, C), integer labels) and ``classes`` (names in label order):
  ``load_dataset("path/to/file.npz")``;
- a folder of images in torchvision's ImageFolder layout (one sub-folder per class; with
  ``train/`` and ``test/`` or a held-out test split): ``load_dataset("path/to/folder")``;
- Dataset objects with ``(image, label)`` items: ``from_datasets(train, test)``.

Labels follow :func:`.sources.index_labels`; sizes and channels :mod:`.user`.

A super-class task (:mod:`.groups`): ``load_dataset("fashion_mnist", group="fmnist_super")``
trains on super-class labels and keeps the data set's own labels as ``sub_labels(split)``,
for evaluation only.
"""

from __future__ import annotations

from .groups import GROUPINGS, Grouping, resolve_grouping
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
    index_labels,
    read_idx,
    read_npz,
    search_dirs,
)
from .tensordata import Batch, TensorData, from_datasets, load_dataset
from .user import IMAGE_EXTENSIONS, read_datasets, read_image_folder

__all__ = [
    "DATASETS",
    "DEBIAN_FASHION_MNIST",
    "FASHION_MNIST_FILES",
    "GROUPINGS",
    "IMAGE_EXTENSIONS",
    "Batch",
    "ClassBalancedSampler",
    "DataFileError",
    "DataNotFoundError",
    "DatasetInfo",
    "Grouping",
    "SequentialSampler",
    "ShuffledSampler",
    "TensorData",
    "available_datasets",
    "cache_dir",
    "find_files",
    "from_datasets",
    "index_labels",
    "load_dataset",
    "read_datasets",
    "read_idx",
    "read_image_folder",
    "read_npz",
    "resolve_grouping",
    "search_dirs",
    "stratified_indices",
]
