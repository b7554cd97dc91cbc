"""Super-class tasks (issue 18): load_dataset(name, group=...) trains on super-class labels and
keeps the data set's own labels as hidden sub-class labels, for evaluation only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentboost_lab.data import (
    DATASETS,
    GROUPINGS,
    Grouping,
    TensorData,
    from_datasets,
    load_dataset,
    sources,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", sorted(GROUPINGS))
def test_every_named_grouping_puts_each_class_of_its_data_set_in_one_super_class(name):
    grouping = GROUPINGS[name]
    classes = DATASETS[grouping.dataset].classes
    super_of_sub = grouping.super_of_sub(classes)
    assert sorted(super_of_sub.tolist()) == sorted(
        label for label, (_, members) in enumerate(grouping.groups) for _ in members
    )
    for label, (_, members) in enumerate(grouping.groups):
        assert {classes[s] for s in np.flatnonzero(super_of_sub == label)} == set(members)


def test_the_documented_groupings():
    fashion = dict(GROUPINGS["fmnist_super"].groups)
    assert fashion == {
        "tops": ("T-shirt/top", "Pullover", "Coat", "Shirt"),
        "footwear": ("Sandal", "Sneaker", "Ankle boot"),
        "other": ("Trouser", "Dress", "Bag"),
    }
    cifar = dict(GROUPINGS["cifar10_vehicles_animals"].groups)
    assert set(cifar["vehicles"]) == {"airplane", "automobile", "ship", "truck"}
    assert set(cifar["animals"]) == {"bird", "cat", "deer", "dog", "frog", "horse"}


def test_a_super_class_task_holds_the_same_images_with_super_class_labels():
    plain = load_dataset("digits", n_train=600, seed=3, device="cpu")
    grouped = load_dataset("digits", n_train=600, seed=3, device="cpu", group="digits_parity")
    assert grouped.info.classes == ("even", "odd") and grouped.num_classes == 2
    assert grouped.info.sub_classes == plain.classes
    assert grouped.info.group == "digits_parity" and grouped.info.name == "digits"
    assert grouped.has_sub_labels and not plain.has_sub_labels
    for split in ("train", "val", "test"):
        x, y = grouped.split(split)
        assert torch.equal(x, plain.split(split)[0])  # same images, same order, for the seed
        assert torch.equal(grouped.sub_labels(split), plain.split(split)[1])
        assert torch.equal(y, plain.split(split)[1] % 2)  # digits_parity: odd digits are 1
    assert "digits_parity" in repr(grouped)


def test_batches_give_super_class_labels_and_their_index_finds_the_sub_classes():
    data = load_dataset("digits", device="cpu", group="digits_parity")
    seen = 0
    for batch in data.batches("train", 256, seed=1):
        sub = data.sub_labels("train")[batch.index]
        assert torch.equal(batch.y, sub % 2)
        seen += len(batch.y)
    assert seen == len(data)


def test_sub_labels_move_with_the_data_and_are_refused_where_there_are_none():
    data = load_dataset("digits", device="cpu", group="digits_parity")
    moved = data.to("cpu")
    assert moved is not data and torch.equal(moved.sub_labels("test"), data.sub_labels("test"))
    with pytest.raises(ValueError, match="split must be one of"):
        data.sub_labels("validation")
    with pytest.raises(ValueError, match="no sub-class labels.*group="):
        load_dataset("digits", device="cpu").sub_labels("train")


def test_tensordata_checks_that_sub_labels_fit_the_super_class_labels():
    data = load_dataset("digits", device="cpu", group="digits_parity")
    splits = {s: data.split(s) for s in ("train", "val", "test")}
    subs = {s: data.sub_labels(s) for s in splits}
    wrong = dict(subs, test=(subs["test"] + 1) % 10)  # every test image's parity flipped
    with pytest.raises(ValueError, match="super-class labels of split 'test'"):
        TensorData(data.info, splits, sub_labels=wrong)
    with pytest.raises(ValueError, match="one label per image"):
        TensorData(data.info, splits, sub_labels=dict(subs, val=subs["val"][:-1]))
    with pytest.raises(ValueError, match="must lie in"):
        TensorData(data.info, splits, sub_labels=dict(subs, val=subs["val"] + 10))
    # Images wrapped with the task's info (an OOD set, a subset) may come without them.
    wrapped = TensorData(data.info, {"test": splits["test"]})
    assert not wrapped.has_sub_labels and wrapped.classes == ("even", "odd")
    with pytest.raises(ValueError, match="holds no sub-class labels"):
        wrapped.sub_labels("test")
    with pytest.raises(ValueError, match="need info.sub_classes"):
        TensorData(load_dataset("digits", device="cpu").info, splits, sub_labels=subs)


@pytest.mark.parametrize(
    "group, error, message",
    [
        ("no_such_group", ValueError, r"group must be one of \['cifar10_vehicles_animals'"),
        ("fmnist_super", ValueError, "groups the classes of fashion_mnist, not of digits"),
        (3, TypeError, "group must be one of .*got int"),
        ({"low": ["0", "1"]}, ValueError, "at least 2 super-classes"),
        ({"a": ["0", "1", "2", "3", "4"], "b": ["5", "6", "7", "8"]}, ValueError, r"\['9'\] are in no"),
        ({"a": [str(d) for d in range(6)], "b": ["5", "6", "7", "8", "9"]}, ValueError, "'5' is in two"),
        ({"a": ["0", "1", "2", "3", "4"], "b": ["5", "6", "7", "8", "9", "ten"]}, ValueError, r"names \['ten'\]"),
        ({"a": "01234", "b": ["5", "6", "7", "8", "9"]}, TypeError, "list of class names"),
        ({"a": [str(d) for d in range(10)], "b": []}, ValueError, "'b' holds no class"),
    ],
)  # fmt: skip
def test_bad_groups_are_named(group, error, message):
    with pytest.raises(error, match=message):
        load_dataset("digits", device="cpu", group=group)


def test_your_own_data_with_a_dict_of_class_names(tmp_path):
    rng = np.random.default_rng(0)
    names = np.array(["cat", "dog", "car", "bus"])
    np.savez(
        tmp_path / "mine.npz",
        x_train=rng.integers(0, 256, (80, 8, 8), dtype=np.uint8),
        y_train=np.arange(80) % 4,
        x_test=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8),
        y_test=np.arange(40) % 4,
        classes=names,
    )
    group = {"vehicle": ["car", "bus"], "animal": ["cat", "dog"]}
    data = load_dataset(tmp_path / "mine.npz", group=group, val_size=0, device="cpu")
    assert data.classes == ("vehicle", "animal") and data.info.sub_classes == tuple(names)
    assert data.info.super_of_sub == (1, 1, 0, 0)
    assert torch.equal(data.y_test, torch.tensor([1, 1, 0, 0] * 10))
    with pytest.raises(ValueError, match="groups the classes of digits, not of your own data"):
        load_dataset(tmp_path / "mine.npz", group="digits_parity", device="cpu")
    # Dataset objects: the same option.
    items = [(rng.integers(0, 256, (8, 8), dtype=np.uint8), i % 4) for i in range(40)]
    objects = from_datasets(
        items, items, classes=list(names), group=Grouping("mine", tuple(group.items())),
        val_size=0, device="cpu",
    )  # fmt: skip
    assert objects.info.group == "mine"
    assert torch.equal(objects.sub_labels("train"), torch.tensor([0, 1, 2, 3] * 10))
    assert torch.equal(objects.y_train, torch.tensor([1, 1, 0, 0] * 10))


# -- the real data sets (skipped where $LATENTBOOST_DATA is absent) -------------------------


@pytest.fixture
def no_system_copies(monkeypatch, tmp_path):
    monkeypatch.delenv("LATENTBOOST_DATA", raising=False)
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-copy")


@pytest.mark.realdata
def test_real_fmnist_super(fashion_root, no_system_copies):
    data = load_dataset(
        "fashion_mnist", root=fashion_root, val_size=0, download=False, group="fmnist_super"
    )
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert data.classes == ("tops", "footwear", "other")
    assert torch.bincount(data.y_train).tolist() == [24000, 18000, 18000]
    assert torch.bincount(data.y_test).tolist() == [4000, 3000, 3000]
    assert torch.bincount(data.sub_labels("train")).tolist() == [6000] * 10
    footwear = {data.info.sub_classes[s] for s in data.sub_labels("test")[data.y_test == 1]}
    assert footwear == {"Sandal", "Sneaker", "Ankle boot"}
    small = load_dataset(
        "fashion_mnist", root=fashion_root, n_train=5000, download=False, group="fmnist_super"
    )
    assert torch.bincount(small.sub_labels("train")).tolist() == [450] * 10
    assert torch.bincount(small.sub_labels("val")).tolist() == [50] * 10
    assert torch.bincount(small.y_train).tolist() == [1800, 1350, 1350]


@pytest.mark.realdata
def test_real_cifar10_vehicles_animals(cifar10_npz, no_system_copies):
    root = cifar10_npz.parent.parent
    plain = load_dataset("cifar10", root=root, val_size=0, download=False)
    data = load_dataset(
        "cifar10", root=root, val_size=0, download=False, group="cifar10_vehicles_animals"
    )
    assert data.x_train.shape == (10000, 3, 32, 32) and data.classes == ("vehicles", "animals")
    vehicles = [plain.classes.index(c) for c in ("airplane", "automobile", "ship", "truck")]
    counts = torch.bincount(plain.y_train, minlength=10)
    assert torch.bincount(data.y_train).tolist() == [
        int(counts[vehicles].sum()),
        int(counts.sum() - counts[vehicles].sum()),
    ]
    assert torch.equal(data.sub_labels("train"), plain.y_train)
