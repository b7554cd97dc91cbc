"""Shared fixtures. Tests run offline; the ones that need the real data sets ask for the
``data_root`` fixture, which skips them (with the reason) where $LATENTBOOST_DATA is absent."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest
import torch
from threadpoolctl import threadpool_limits

matplotlib.use("Agg")  # no screen in CI

# Keep the test suite on the 2 cores it is given (and reproducible).
torch.set_num_threads(min(torch.get_num_threads(), 2))


def _data_root() -> Path | None:
    value = os.environ.get("LATENTBOOST_DATA")
    return Path(value) if value and Path(value).is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if root is None:
        pytest.skip(
            "real data not available: set LATENTBOOST_DATA to a folder holding FashionMNIST/ and cifar10/"
        )
    return root


@pytest.fixture(scope="session")
def fashion_root(data_root) -> Path:
    if not (data_root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not found under {data_root}/FashionMNIST/raw")
    return data_root


@pytest.fixture(scope="session")
def cifar10_npz(data_root) -> Path:
    path = data_root / "cifar10" / "cifar10-batch1-test.npz"
    if not path.is_file():
        pytest.skip(f"CIFAR-10 npz not found at {path}")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Never touch the user's cache directory: point it at an empty temporary folder.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def one_thread():
    """Small inputs: one thread (torch, BLAS and scikit-learn's OpenMP) avoids thread hand-offs,
    which dominate, by orders of magnitude, on a busy 2-core CPU. Test modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)
