"""The OOD sets: conversions to the in-distribution shape, synthetic sets, MNIST from the
project's .npz and from torchvision's folder layout, and the real sets where
$LATENTBOOST_DATA holds them."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from latentboost_lab.data import DATASETS, TensorData
from latentboost_lab.ood import OOD_SETS, load_ood, parse_ood, read_mnist, to_shape

pytestmark = pytest.mark.usefixtures("one_thread")


def fake_data(shape=(1, 28, 28), n=40, name="fashion_mnist"):
    g = torch.Generator().manual_seed(0)
    info = DATASETS[name]
    x = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % 10
    return TensorData(info, {"train": (x, y), "val": (x[:0], y[:0]), "test": (x, y)})


def test_parse_ood_expands_groups_in_order_once():
    assert parse_ood("mnist,noise") == ["mnist", "gaussian", "uniform"]
    assert parse_ood(["uniform", "synthetic"]) == ["uniform", "gaussian", "shuffled"]
    for bad in ("mnsit", "", ","):
        with pytest.raises(ValueError, match="ood must name"):
            parse_ood(bad)


def test_to_shape_grayscale_pad_and_resize():
    g = torch.Generator().manual_seed(1)
    rgb = torch.randint(0, 256, (5, 3, 32, 32), generator=g, dtype=torch.uint8)
    gray = to_shape(rgb, (1, 28, 28))
    assert gray.shape == (5, 1, 28, 28) and gray.dtype == torch.uint8
    # the luma of PIL's convert("L"), to within one grey level, before resizing
    from PIL import Image

    luma = to_shape(rgb, (1, 32, 32))
    pil = np.stack(
        [np.asarray(Image.fromarray(im.permute(1, 2, 0).numpy()).convert("L")) for im in rgb]
    )
    assert np.abs(luma[:, 0].numpy().astype(int) - pil.astype(int)).max() <= 1
    # 28x28 grayscale -> 32x32x3: 2 pixels of zero padding each side, the channel repeated
    small = torch.randint(1, 256, (3, 1, 28, 28), generator=g, dtype=torch.uint8)
    big = to_shape(small, (3, 32, 32))
    assert big.shape == (3, 3, 32, 32)
    assert torch.equal(big[:, :, 2:30, 2:30], small.expand(-1, 3, -1, -1))
    assert int(big[:, :, :2].sum()) == 0 and int(big[:, :, :, 30:].sum()) == 0
    # a constant image stays constant when resized down
    flat = torch.full((1, 1, 28, 28), 77, dtype=torch.uint8)
    assert torch.all(to_shape(flat, (1, 8, 8)) == 77)
    with pytest.raises(ValueError, match="uint8"):
        to_shape(rgb.float(), (1, 28, 28))
    with pytest.raises(ValueError, match="channels"):
        to_shape(rgb, (2, 28, 28))


def test_synthetic_sets():
    data = fake_data()
    for name in ("gaussian", "uniform", "shuffled"):
        ood = load_ood(name, data, seed=3)
        assert ood.images.shape == (40, 1, 28, 28) and ood.images.dtype == torch.uint8
        assert torch.equal(load_ood(name, data, seed=3).images, ood.images)  # seeded
        assert not torch.equal(load_ood(name, data, seed=4).images, ood.images)
        assert len(load_ood(name, data, n=7)) == 7
    gaussian = load_ood("gaussian", data, n=2000).images.double() / 255
    assert gaussian.mean().item() == pytest.approx(0.2860 + 0.0255, abs=0.02)  # clipped at 0
    # shuffled: each image keeps its own intensity histogram, and pixels move
    shuffled = load_ood("shuffled", data, n=40, seed=0).images
    x = data.split("test")[0]
    sorted_x = x.flatten(1).sort(dim=1).values
    sorted_s = shuffled.flatten(1).sort(dim=1).values
    matches = [(sorted_s[i][None] == sorted_x).all(dim=1).any() for i in range(40)]
    assert all(matches) and not torch.equal(shuffled, x)


def test_shuffled_colour_moves_pixels_whole():
    data = fake_data((3, 32, 32), 6, "cifar10")
    images = load_ood("shuffled", data).images
    x = data.split("test")[0]
    pixels = {tuple(p) for im in x for p in im.flatten(1).T.tolist()}
    assert all(tuple(p) in pixels for p in images[0].flatten(1).T.tolist())


def test_mnist_from_npz_and_from_torchvision_layout(tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTBOOST_DATA", raising=False)
    digits = np.arange(6 * 28 * 28, dtype=np.int64).reshape(6, 28, 28) % 256
    (tmp_path / "a" / "mnist").mkdir(parents=True)
    np.savez(
        tmp_path / "a" / "mnist" / "mnist-10k.npz",
        x_train=digits[:2].astype(np.uint8),
        x_test=digits[2:].astype(np.uint8),
    )
    x, source = read_mnist(tmp_path / "a")
    assert x.shape == (6, 28, 28) and source.endswith("mnist-10k.npz")
    raw = tmp_path / "b" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    header = bytes([0, 0, 8, 3]) + b"".join(v.to_bytes(4, "big") for v in (4, 28, 28))
    with gzip.open(raw / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(header + digits[:4].astype(np.uint8).tobytes())
    x, source = read_mnist(tmp_path / "b")
    assert x.shape == (4, 28, 28) and np.array_equal(x, digits[:4])
    ood = load_ood("mnist", fake_data((3, 32, 32), 6, "cifar10"), root=tmp_path / "b")
    assert ood.images.shape == (4, 3, 32, 32)
    with pytest.raises(FileNotFoundError, match="OOD set 'mnist' was not found"):
        read_mnist(tmp_path / "nothing")


def test_bad_requests():
    data = fake_data()
    with pytest.raises(ValueError, match="in-distribution data set itself"):
        load_ood("fashion_mnist", data)
    with pytest.raises(ValueError, match="name must be one of"):
        load_ood("svhn", data)
    with pytest.raises(ValueError, match="n must be <= the in-distribution test split"):
        load_ood("shuffled", data, n=41)
    with pytest.raises(TypeError, match="in_data"):
        load_ood("uniform", torch.zeros(3))
    assert set(OOD_SETS) == {"mnist", "fashion_mnist", "cifar10", "gaussian", "uniform", "shuffled"}


@pytest.mark.realdata
def test_real_sets_from_the_shared_data(data_root):
    if not (data_root / "mnist" / "mnist-10k.npz").is_file():
        pytest.skip(f"mnist-10k.npz not found under {data_root}/mnist")
    x, _ = read_mnist(data_root)
    assert x.shape == (10000, 28, 28)
    fmnist = fake_data()
    mnist = load_ood("mnist", fmnist, root=data_root, n=100)
    cifar = load_ood("cifar10", fmnist, root=data_root, n=100)
    assert mnist.images.shape == cifar.images.shape == (100, 1, 28, 28)
    fashion = load_ood("fashion_mnist", fake_data((3, 32, 32), 6, "cifar10"), root=data_root)
    assert fashion.images.shape == (10000, 3, 32, 32)
