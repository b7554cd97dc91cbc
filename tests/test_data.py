"""Data: loading by name, the search order, file checks, subsets, samplers, augmentation."""

from __future__ import annotations

import gzip
import pickle
import shutil

import numpy as np
import pytest
import torch

from latentboost_lab import data as data_mod
from latentboost_lab.data import (
    ClassBalancedSampler,
    DataFileError,
    DataNotFoundError,
    ShuffledSampler,
    available_datasets,
    load_dataset,
    read_idx,
    sources,
    stratified_indices,
)


@pytest.fixture
def no_system_copies(monkeypatch, tmp_path):
    """No $LATENTBOOST_DATA and no Debian copy: only what a test puts in place is found."""
    monkeypatch.delenv("LATENTBOOST_DATA", raising=False)
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-copy")


def write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_npz(path, n_train=60, n_test=30, shape=(32, 32, 3), n_classes=3, **overrides):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "y_train": np.arange(n_train) % n_classes,
        "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "y_test": np.arange(n_test) % n_classes,
        "classes": np.array([f"class{i}" for i in range(n_classes)]),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


# -- digits: the embedded default ---------------------------------------------------------


def test_digits_loads_with_fixed_test_split():
    d = load_dataset("digits")
    assert d.info.image_shape == (1, 8, 8)
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 1797
    assert len(d.y_test) == 360
    assert d.x_train.dtype == torch.uint8 and d.y_train.dtype == torch.long
    assert d.x_train.max() == 255  # 0..16 scaled to 0..255
    # The test split does not depend on the run's seed (results comparable across seeds).
    assert torch.equal(load_dataset("digits", seed=5).y_test, d.y_test)
    # Stratified: every class in every split, close to the whole set's balance.
    counts = torch.bincount(d.y_test, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38


def test_digits_statistics_match_info():
    d = load_dataset("digits", val_size=0)
    pixels = torch.cat([d.x_train, d.x_test]).float() / 255
    assert abs(pixels.mean().item() - d.info.mean[0]) < 2e-3
    assert abs(pixels.std().item() - d.info.std[0]) < 2e-3


def test_info_knows_classes_shape_and_stats():
    for name, info in data_mod.DATASETS.items():
        assert len(info.mean) == len(info.std) == info.image_shape[0], name
    assert data_mod.DATASETS["fashion_mnist"].classes[0] == "T-shirt/top"
    assert data_mod.DATASETS["cifar10"].augment and not data_mod.DATASETS["digits"].augment


# -- subsets and splits -------------------------------------------------------------------


def test_stratified_indices_keep_class_balance():
    labels = torch.tensor([0] * 600 + [1] * 300 + [2] * 100)
    idx = stratified_indices(labels, 100, torch.Generator().manual_seed(0))
    assert len(idx) == 100 and len(set(idx.tolist())) == 100
    assert torch.bincount(labels[idx]).tolist() == [60, 30, 10]
    assert torch.equal(idx, idx.sort().values)
    # Quotas that do not divide evenly still sum to n.
    assert len(stratified_indices(labels, 7, torch.Generator().manual_seed(0))) == 7


def test_subsets_validation_and_seeds():
    d = load_dataset("digits", n_train=500, n_test=100, val_size=0.2, seed=1)
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (400, 100, 100)
    assert torch.bincount(d.y_val, minlength=10).min() >= 9
    again = load_dataset("digits", n_train=500, n_test=100, val_size=0.2, seed=1)
    assert torch.equal(d.x_train, again.x_train) and torch.equal(d.y_val, again.y_val)
    other = load_dataset("digits", n_train=500, n_test=100, val_size=0.2, seed=2)
    assert not torch.equal(d.y_train, other.y_train)
    assert len(load_dataset("digits", val_size=50).y_val) == 50
    assert len(load_dataset("digits", val_size=0).y_val) == 0


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n_train": 0}, "n_train"),
        ({"n_train": 10**6}, "n_train"),
        ({"n_test": -1}, "n_test"),
        ({"val_size": 1.5}, "val_size"),
        ({"val_size": 1.0}, "val_size"),
    ],
)
def test_bad_subset_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        load_dataset("digits", **kwargs)


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match="fashion_mnist"):
        load_dataset("mnist-but-typo")
    with pytest.raises(TypeError, match="name"):
        load_dataset(3)


# -- batches and samplers -----------------------------------------------------------------


def test_batches_cover_the_split_once_and_are_normalised():
    d = load_dataset("digits")
    seen = torch.cat([b.index for b in d.batches("train", 100, epoch=0)])
    assert torch.equal(seen.sort().values, torch.arange(len(d)))
    batch = next(d.batches("train", 100))
    assert batch.x.dtype == torch.float32 and batch.x.shape == (100, 1, 8, 8)
    expected = (d.x_train[batch.index].float() / 255 - d.info.mean[0]) / d.info.std[0]
    assert torch.allclose(batch.x, expected)
    assert torch.equal(batch.y, d.y_train[batch.index])
    everything = torch.cat([b.x for b in d.batches("train", 2000, shuffle=False)])
    assert abs(everything.mean().item()) < 0.05 and abs(everything.std().item() - 1) < 0.05


def test_same_seed_same_batches_and_epochs_differ():
    d = load_dataset("digits")
    a = [b.index for b in d.batches("train", 64, epoch=3, seed=7)]
    b = [b.index for b in d.batches("train", 64, epoch=3, seed=7)]
    c = [b.index for b in d.batches("train", 64, epoch=4, seed=7)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    ordered = [b.index for b in d.batches("test", 100, shuffle=False)]
    assert torch.equal(torch.cat(ordered), torch.arange(len(d.y_test)))


def test_shuffled_sampler_drop_last():
    labels = torch.zeros(250, dtype=torch.long)
    assert [len(b) for b in ShuffledSampler(100)(labels, 0)] == [100, 100, 50]
    assert [len(b) for b in ShuffledSampler(100, drop_last=True)(labels, 0)] == [100, 100]


def test_class_balanced_sampler_gives_p_classes_times_q_samples():
    labels = torch.tensor([0] * 50 + [1] * 20 + [2] * 7 + [3] * 30)
    sampler = ClassBalancedSampler(n_classes_per_batch=3, n_per_class=8, seed=0)
    batches = sampler(labels, epoch=0)
    assert len(batches) == len(labels) // 24
    for batch in batches:
        counts = torch.bincount(labels[batch], minlength=4)
        assert sorted(counts.tolist()) == [0, 8, 8, 8]
        for c in counts.nonzero().flatten().tolist():  # without repeats while a class has enough
            members = batch[labels[batch] == c]
            if (labels == c).sum() >= 8:
                assert len(set(members.tolist())) == 8
    assert all(torch.equal(x, y) for x, y in zip(batches, sampler(labels, 0), strict=True))
    with pytest.raises(ValueError, match="n_classes_per_batch"):
        ClassBalancedSampler(5, 2)(labels, 0)


def test_sampler_plugs_into_batches():
    d = load_dataset("digits")
    batch = next(d.batches("train", sampler=ClassBalancedSampler(5, 6)))
    assert len(batch.y) == 30 and len(torch.unique(batch.y)) == 5


def test_augmentation_is_crop_and_flip():
    x = (
        torch.arange(2 * 3 * 32 * 32, dtype=torch.int64)
        .remainder(251)
        .to(torch.uint8)
        .view(2, 3, 32, 32)
    )
    x = x.repeat(64, 1, 1, 1)
    d = data_mod.TensorData(
        data_mod.DATASETS["cifar10"], {"train": (x, torch.zeros(len(x), dtype=torch.long))}
    )
    out = d.augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(len(x)):  # each output is some 32x32 window of the padded image, maybe flipped
        found = False
        for dy in range(9):
            for dx in range(9):
                window = padded[i, :, dy : dy + 32, dx : dx + 32]
                if torch.equal(out[i], window) or torch.equal(out[i], window.flip(-1)):
                    found = True
        assert found, i
    assert not torch.equal(out, x)  # something moved
    flips = sum(not torch.equal(out[i], x[i]) for i in range(len(x)))
    assert flips > len(x) // 2


def test_augmentation_only_on_training_batches():
    x = torch.randint(0, 255, (40, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(40) % 10
    d = data_mod.TensorData(data_mod.DATASETS["cifar10"], {"train": (x, y), "test": (x, y)})
    test_batch = next(d.batches("test", 40, shuffle=False))
    assert torch.allclose(test_batch.x, d.normalize(x))
    train_batch = next(d.batches("train", 40, shuffle=False))
    assert not torch.allclose(train_batch.x, d.normalize(x))
    assert torch.allclose(
        next(d.batches("train", 40, shuffle=False, augment=False)).x, d.normalize(x)
    )


# -- files: the documented npz, idx, torchvision's CIFAR layout, errors --------------------


def test_npz_of_your_own(tmp_path):
    path = write_npz(tmp_path / "mine.npz", shape=(12, 12))
    d = load_dataset(str(path), val_size=0)
    assert d.info.image_shape == (1, 12, 12) and d.classes == ("class0", "class1", "class2")
    assert len(d.y_train) == 60 and len(d.y_test) == 30
    assert 0.4 < d.info.mean[0] < 0.6


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"x_train": None}, "missing arrays"),
        ({"x_test": np.zeros((30, 32, 32, 3), dtype=np.float32)}, "x_test must be uint8"),
        ({"y_train": np.full(60, 7)}, "labels must lie in"),
        ({"y_test": np.zeros(5, dtype=int)}, "y_test must be a 1-D integer array"),
        ({"x_test": np.zeros((30, 16, 16, 3), dtype=np.uint8)}, "differ in shape"),
    ],
)
def test_bad_npz_is_named(tmp_path, overrides, message):
    path = write_npz(tmp_path / "bad.npz", **overrides)
    with pytest.raises(DataFileError, match=message) as info:
        load_dataset(str(path))
    assert "bad.npz" in str(info.value)


def test_npz_that_is_not_a_zip(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(DataFileError, match="broken.npz"):
        load_dataset(str(path))


def test_idx_reader_checks_magic_size_and_checksum(tmp_path):
    images = np.arange(5 * 4 * 4).reshape(5, 4, 4) % 256
    write_idx(tmp_path / "ok.gz", images)
    assert np.array_equal(read_idx(tmp_path / "ok.gz"), images)
    with gzip.open(tmp_path / "ok.gz", "rb") as f:
        raw = f.read()
    with gzip.open(tmp_path / "short.gz", "wb") as f:
        f.write(raw[:-7])
    with pytest.raises(DataFileError, match="short.gz.*truncated"):
        read_idx(tmp_path / "short.gz")
    with gzip.open(tmp_path / "magic.gz", "wb") as f:
        f.write(b"\x00\x00\x0d\x03" + raw[4:])
    with pytest.raises(DataFileError, match="magic"):
        read_idx(tmp_path / "magic.gz")
    with pytest.raises(DataFileError, match="checksum"):
        read_idx(tmp_path / "ok.gz", md5="0" * 32)
    (tmp_path / "cut.gz").write_bytes((tmp_path / "ok.gz").read_bytes()[:20])
    with pytest.raises(DataFileError, match="cut.gz"):
        read_idx(tmp_path / "cut.gz")


def test_a_recompressed_copy_of_the_official_file_passes_by_its_content(tmp_path):
    """Debian's dataset-fashion-mnist recompresses the official .gz files: other .gz sums, the
    same bytes inside. The content's md5 accepts them; other content still fails."""
    import hashlib

    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    with gzip.open(tmp_path / "a.gz", "rb") as f:
        content = f.read()
    with gzip.open(tmp_path / "b.gz", "wb", compresslevel=1) as f:  # recompressed
        f.write(content)
    official = sources._md5(tmp_path / "a.gz")
    assert sources._md5(tmp_path / "b.gz") != official
    content_md5 = hashlib.md5(content).hexdigest()
    assert np.array_equal(read_idx(tmp_path / "b.gz", official, content_md5), array)
    with pytest.raises(DataFileError, match="checksum mismatch"):
        read_idx(tmp_path / "b.gz", official, "f" * 32)


def test_official_content_sums_match_the_real_files(fashion_root):
    import hashlib

    for file, content_md5 in sources.FASHION_MNIST_CONTENT_MD5.items():
        with gzip.open(fashion_root / "FashionMNIST" / "raw" / file, "rb") as f:
            assert hashlib.md5(f.read()).hexdigest() == content_md5, file


def test_not_found_lists_every_place_and_how_to_get_it(no_system_copies, tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("fashion_mnist", root=tmp_path / "empty", download=False)
    text = str(info.value)
    assert str(tmp_path / "empty") in text
    assert "no-debian-copy" in text and "latentboost_lab" in text  # Debian path and the cache
    for hint in ("LATENTBOOST_DATA", "apt-get install dataset-fashion-mnist", "download", "digits"):
        assert hint in text


def test_failed_download_is_one_clear_error(no_system_copies, tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    class Offline:
        def __init__(self, *args, **kwargs):
            raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(tvd, "CIFAR100", Offline)
    with pytest.raises(DataNotFoundError, match="download failed.*name resolution"):
        load_dataset("cifar100", root=tmp_path, download=True)


def test_cifar100_through_torchvisions_loader(no_system_copies, tmp_path, monkeypatch):
    """CIFAR-100 is not available offline: the download path is exercised with a stand-in for
    torchvision's class that has the same attributes (data NHWC uint8, targets, classes)."""
    import torchvision.datasets as tvd

    calls = []

    class FakeCIFAR100:
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            n = 200 if train else 100
            rng = np.random.default_rng(int(train))
            self.data = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            self.targets = list(np.arange(n) % 100)
            self.classes = [f"fine{i}" for i in range(100)]

    monkeypatch.setattr(tvd, "CIFAR100", FakeCIFAR100)
    d = load_dataset("cifar100", root=tmp_path / "nothing-here", download=True, val_size=0)
    assert d.info.num_classes == 100 and d.classes[3] == "fine3"
    assert d.x_train.shape == (200, 3, 32, 32) and len(d.y_test) == 100
    assert all(download for _, _, download in calls)
    assert str(data_mod.cache_dir()) in calls[0][0]  # downloads go to the cache, not to root


def test_torchvision_cifar_folder_is_read_in_place(no_system_copies, tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 300), ("test", 100)):
        with open(folder / split, "wb") as f:
            pickle.dump(
                {
                    "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                    "fine_labels": list(np.arange(n) % 100),
                },
                f,
            )
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f)
    folder.chmod(0o555)  # read-only data directories work: nothing is written there
    try:
        d = load_dataset("cifar100", root=tmp_path, download=False, val_size=0)
    finally:
        folder.chmod(0o755)
    assert d.x_train.shape == (300, 3, 32, 32) and d.classes[5] == "c5"
    assert sorted(p.name for p in folder.iterdir()) == ["meta", "test", "train"]


def test_fashion_mnist_layout_and_corruption(no_system_copies, tmp_path):
    """Official file names in torchvision's FashionMNIST/raw layout; a corrupted file is named."""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for key, (file, _) in data_mod.FASHION_MNIST_FILES.items():
        n = 20
        array = np.zeros((n, 28, 28)) if key[0] == "x" else np.arange(n) % 10
        write_idx(raw / file, array)
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte.gz: checksum mismatch"):
        load_dataset("fashion_mnist", root=tmp_path, download=False)
    assert available_datasets(tmp_path)["fashion_mnist"] == str(raw)


# -- the real files (skipped where $LATENTBOOST_DATA is absent) ---------------------------


@pytest.mark.realdata
def test_real_fashion_mnist_counts_and_mean(fashion_root, no_system_copies, tmp_path):
    d = load_dataset("fashion_mnist", root=fashion_root, val_size=0, download=False)
    assert d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert torch.bincount(d.y_train).tolist() == [6000] * 10
    assert torch.bincount(d.y_test).tolist() == [1000] * 10
    assert abs(d.x_train.float().mean().item() / 255 - 0.2860) < 1e-3
    assert abs(d.x_train.float().std().item() / 255 - d.info.std[0]) < 1e-3
    small = load_dataset(
        "fashion_mnist", root=fashion_root, n_train=5000, n_test=1000, download=False
    )
    assert torch.bincount(small.y_train).tolist() == [450] * 10
    assert torch.bincount(small.y_val).tolist() == [50] * 10
    # A corrupted copy of a real file is caught by its checksum and named.
    copy = tmp_path / "FashionMNIST" / "raw"
    shutil.copytree(fashion_root / "FashionMNIST" / "raw", copy)
    blob = bytearray((copy / "t10k-labels-idx1-ubyte.gz").read_bytes())
    blob[-20] ^= 0xFF
    (copy / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(blob))
    with pytest.raises(DataFileError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion_mnist", root=tmp_path, download=False)


@pytest.mark.realdata
def test_real_cifar10_npz(cifar10_npz, no_system_copies):
    d = load_dataset("cifar10", root=cifar10_npz.parent.parent, val_size=0, download=False)
    assert d.x_train.shape == (10000, 3, 32, 32) and d.x_test.shape == (10000, 3, 32, 32)
    expected = [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]
    assert torch.bincount(d.y_train).tolist() == expected
    assert d.classes[0] == "airplane" and d.classes[9] == "truck"
    means = d.x_train.float().mean(dim=(0, 2, 3)) / 255
    assert torch.allclose(means, torch.tensor(d.info.mean), atol=0.01)  # batch 1 vs all 50,000


def test_environment_variable_is_searched(monkeypatch, tmp_path):
    (tmp_path / "cifar10").mkdir()
    write_npz(tmp_path / "cifar10" / "mine.npz")
    monkeypatch.setenv("LATENTBOOST_DATA", str(tmp_path))
    d = load_dataset("cifar10", download=False, val_size=0)
    assert len(d.y_train) == 60 and "mine.npz" in d.source
    assert data_mod.search_dirs("cifar10")[0] == tmp_path


# -- damaged files: each error names the file and what is wrong ----------------------------


def _cifar100_folder(tmp_path, **changes):
    """torchvision's cifar-100-python folder with small synthetic pickles; ``changes`` maps a
    file name to a dict update, None (file absent) or bytes (raw content)."""
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    contents = {
        "train": {
            "data": rng.integers(0, 256, (200, 3072), dtype=np.uint8),
            "fine_labels": list(np.arange(200) % 100),
        },
        "test": {
            "data": rng.integers(0, 256, (100, 3072), dtype=np.uint8),
            "fine_labels": list(np.arange(100) % 100),
        },
        "meta": {"fine_label_names": [f"c{i}" for i in range(100)]},
    }
    for file, content in contents.items():
        change = changes.get(file, {})
        if change is None:
            continue
        if isinstance(change, bytes):
            (folder / file).write_bytes(change)
            continue
        with open(folder / file, "wb") as f:
            pickle.dump({**content, **change}, f)
    return folder


def _truncated_npz(tmp_path):
    path = write_npz(tmp_path / "cut.npz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


DAMAGED = [
    # (make the file(s) and return what to load, file named in the error, what is wrong)
    (_truncated_npz, "cut.npz", "not a readable .npz"),
    (lambda p: write_npz(p / "f.npz", y_train=np.arange(60) % 3 * 1.0), "f.npz", "y_train"),
    (lambda p: write_npz(p / "neg.npz", y_test=-(np.arange(30) % 3)), "neg.npz", "labels must lie"),
    (lambda p: write_npz(p / "flat.npz", shape=(1024,)), "flat.npz", r"shape \(N, H, W\)"),
    (lambda p: write_npz(p / "none.npz", n_train=0), "none.npz", "x_train holds no images"),
    (
        lambda p: write_npz(p / "obj.npz", classes=np.array([{"a": 1}], dtype=object)),
        "obj.npz",
        "not a readable .npz",
    ),
    (
        lambda p: (write_npz(p / "cifar10" / "small.npz", shape=(28, 28)), "cifar10")[1],
        "small.npz",
        r"images of shape \(1, 28, 28\), expected \(3, 32, 32\) for cifar10",
    ),
    (lambda p: (_cifar100_folder(p, test=None), "cifar100")[1], "test", "missing"),
    (
        lambda p: (_cifar100_folder(p, train=b"\x80\x04garbage"), "cifar100")[1],
        "train",
        "cannot be read as a CIFAR pickle",
    ),
    (
        lambda p: (_cifar100_folder(p, meta={"fine_label_names": ["a"]}), "cifar100")[1],
        "meta",
        "must name 100 classes",
    ),
    (
        lambda p: (_cifar100_folder(p, test={"data": np.zeros((100, 1024), np.uint8)}), "cifar100")[
            1
        ],
        "test",
        "3072 values",
    ),
    (
        lambda p: (_cifar100_folder(p, test={"fine_labels": [100] * 100}), "cifar100")[1],
        "test",
        r"labels must lie in \[0, 99\]",
    ),
    (
        lambda p: (_cifar100_folder(p, test={"fine_labels": [1] * 99}), "cifar100")[1],
        "test",
        "one integer label per image",
    ),
    (lambda p: (_cifar100_folder(p, train={"data": None}), "cifar100")[1], "train", "'data'"),
]


@pytest.mark.parametrize(("make", "file", "problem"), DAMAGED)
def test_damaged_files_name_the_file_and_the_problem(
    no_system_copies, tmp_path, make, file, problem
):
    (tmp_path / "cifar10").mkdir()
    target = make(tmp_path)
    name = str(target) if str(target).endswith(".npz") else target
    with pytest.raises(DataFileError, match=problem) as info:
        load_dataset(name, root=tmp_path, download=False)
    message = str(info.value)
    assert file in message and len(message.splitlines()) == 1, message


def test_idx_with_bytes_to_spare_is_not_called_truncated(tmp_path):
    write_idx(tmp_path / "long.gz", np.zeros((3, 4, 4)))
    with gzip.open(tmp_path / "long.gz", "rb") as f:
        raw = f.read()
    with gzip.open(tmp_path / "long.gz", "wb") as f:
        f.write(raw + b"\x00" * 5)
    with pytest.raises(DataFileError, match="long.gz: 69 bytes.*needs 64; it has bytes to spare"):
        read_idx(tmp_path / "long.gz")


@pytest.mark.parametrize("layout", ["npz", "fashion_mnist"])
def test_read_only_data_folders_work_and_are_never_written(
    no_system_copies, tmp_path, monkeypatch, layout
):
    """Nothing is written into a data folder (as root, chmod does not stop writes: the test
    then checks that the folder's listing and modification time did not change)."""
    folder = tmp_path / ("cifar10" if layout == "npz" else "fashion_mnist")
    folder.mkdir()
    if layout == "npz":
        write_npz(folder / "mine.npz")
        name = "cifar10"
    else:
        for key, (file, _) in data_mod.FASHION_MNIST_FILES.items():
            write_idx(
                folder / file, np.zeros((20, 28, 28)) if key[0] == "x" else np.arange(20) % 10
            )
        md5s = {
            k: (f, sources._md5(folder / f)) for k, (f, _) in sources.FASHION_MNIST_FILES.items()
        }
        monkeypatch.setattr(sources, "FASHION_MNIST_FILES", md5s)  # our files pass as official
        name = "fashion_mnist"
    before = (sorted(p.name for p in folder.iterdir()), folder.stat().st_mtime_ns)
    folder.chmod(0o555)
    try:
        d = load_dataset(name, root=tmp_path, download=False, val_size=0)
    finally:
        folder.chmod(0o755)
    assert len(d.y_train) in (60, 20)
    assert (sorted(p.name for p in folder.iterdir()), folder.stat().st_mtime_ns) == before
