"""Your own data trains like the built-in sets (issue 12): an .npz file, an image folder and
Dataset objects, through the Python API and the command line; what is accepted, what is an
error (naming the file and the problem, with nothing written); and the README's and the course
guide's examples, run on files made here."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentboost_lab import build_model, evaluate, fit, load_dataset
from latentboost_lab.cli import main
from latentboost_lab.data import DataFileError, cache_dir, from_datasets
from latentboost_lab.metrics import embed
from latentboost_lab.recipes import make_loss

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("one_thread")


def write_npz(path, n_train=40, n_test=20, shape=(10, 10), n_classes=2, labels=None, **extra):
    """The README's .npz format with random pixels; ``labels`` are the label values used in
    turn (default 0..n_classes-1)."""
    rng = np.random.default_rng(0)
    values = np.arange(n_classes) if labels is None else np.asarray(labels)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "y_train": values[np.arange(n_train) % len(values)],
        "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "y_test": values[np.arange(n_test) % len(values)],
        **extra,
    }
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


# -- issue 12: "expected scalar type Double but found Float" --------------------------------


def test_npz_statistics_are_plain_floats_and_batches_float32(tmp_path):
    data = load_dataset(str(write_npz(tmp_path / "mine.npz")), device="cpu")
    assert all(type(v) is float for v in (*data.info.mean, *data.info.std))
    assert next(data.batches("train", 8)).x.dtype == torch.float32


@pytest.mark.parametrize("loss_name", ["ce", "latentboost"])
def test_npz_trains_evaluates_and_embeds(tmp_path, loss_name):
    data = load_dataset(str(write_npz(tmp_path / "mine.npz")), device="cpu")
    model = build_model("small_cnn", data.info, latent_dim=8)
    loss = make_loss(loss_name, data=data, latent_dim=8)
    history = fit(model, data, loss, epochs=1, batch_size=16, progress=False)
    assert np.isfinite(history.last["train_loss"]) and 0 <= history.last["test_acc"] <= 1
    assert 0 <= evaluate(model, data, "test")["acc"] <= 1
    latent, labels = embed(model, data, "test")
    assert latent.dtype == torch.float32 and latent.shape == (20, 8) and len(labels) == 20


def test_npz_through_train_and_compare_commands(tmp_path, capsys):
    path = str(write_npz(tmp_path / "mine.npz"))
    common = ["--dataset", path, "--epochs", "1", "--batch-size", "16", "--no-progress"]
    common += ["--device", "cpu", "--latent-dim", "8"]
    assert main(["train", *common, "--loss", "latentboost", "--out", str(tmp_path / "r")]) == 0
    assert len(json.loads((tmp_path / "r.json").read_text())["epochs"]) == 1
    out = tmp_path / "cmp"
    code = main(["compare", *common, "--arms", "ce,latentboost", "--seeds", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    runs = json.loads((out / "runs.json").read_text())["runs"]
    assert sorted(runs) == ["ce/seed0", "latentboost/seed0"]


def test_npz_in_the_lambda_playground(tmp_path):
    pytest.importorskip("ipywidgets")
    from latentboost_lab.widgets import LambdaPlayground

    data = load_dataset(str(write_npz(tmp_path / "mine.npz")), device="cpu")
    playground = LambdaPlayground(data, latent_dim=8, batch_size=16, live=False)
    playground.train(1)
    assert len(playground.history) == 1 and "test_silhouette" in playground.history.last


# -- helpers: files made in tmp_path ----------------------------------------------------------


def save_image(path, size=(12, 12), channels=3, seed=0, fmt=None):
    rng = np.random.default_rng(seed)
    shape = (*size, 3) if channels == 3 else size
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path, format=fmt)
    return path


def make_folder(root, counts, size=(12, 12), channels=3, ext=".png"):
    """An ImageFolder: ``counts`` maps a class name to its number of images."""
    for c, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            save_image(root / name / f"{i:03d}{ext}", size, channels, seed=100 * c + i)
    return root


def snapshot(folder):
    """Every path under ``folder`` with its modification time: the same before and after
    means nothing was written there."""
    paths = [folder, *folder.rglob("*")]
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in paths)


class Pairs:
    """A torchvision-style Dataset: len(), items (image, label), maybe ``classes``."""

    def __init__(self, images, labels, classes=None):
        self.images, self.labels = images, labels
        if classes is not None:
            self.classes = classes

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def train_a_little(data, loss_name="latentboost"):
    """One epoch of a small model: the whole path a user's data takes, float32 throughout."""
    model = build_model("small_cnn", data.info, latent_dim=8)
    loss = make_loss(loss_name, data=data, latent_dim=8)
    history = fit(model, data, loss, epochs=1, batch_size=32, progress=False)
    assert np.isfinite(history.last["train_loss"]) and 0 <= history.last["test_acc"] <= 1
    latent, labels = embed(model, data, "test")
    assert latent.dtype == torch.float32 and latent.shape == (len(data.y_test), 8)
    return history


# -- every supported kind trains a few steps -------------------------------------------------


def _gray_20(tmp_path):
    return load_dataset(write_npz(tmp_path / "gray.npz", shape=(20, 20)), device="cpu")


def _colour_33_100_classes(tmp_path):
    names = np.array([f"c{i}" for i in range(100)])
    path = write_npz(tmp_path / "c100.npz", 200, 100, (33, 33, 3), 100, classes=names)
    return load_dataset(path, device="cpu", val_size=0)


def _labels_3_7_10(tmp_path):
    return load_dataset(write_npz(tmp_path / "odd.npz", labels=[3, 7, 10]), device="cpu")


def _folder_held_out(tmp_path):
    folder = make_folder(tmp_path / "photos", {"b": 8, "a": 8, "c": 8}, size=(20, 20))
    return load_dataset(folder, device="cpu")


def _folder_train_test_jpeg_gray(tmp_path):
    make_folder(tmp_path / "scans" / "train", {"x": 10, "y": 10}, (16, 24), 1, ".JPG")
    make_folder(tmp_path / "scans" / "test", {"x": 3, "y": 3}, (16, 24), 1, ".jpeg")
    return load_dataset(tmp_path / "scans", device="cpu")


def _datasets_of_tensors(tmp_path):
    images = torch.rand(40, 3, 9, 9, generator=torch.Generator().manual_seed(0))
    labels = [5 + 2 * (i % 2) for i in range(40)]  # 5 and 7: no names, renumbered
    return from_datasets(
        Pairs(images[:30], labels[:30]), Pairs(images[30:], labels[30:]), device="cpu"
    )


def _datasets_of_pil_and_numpy(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (10, 10, 3), dtype=np.uint8) for _ in range(30)]
    train = Pairs([Image.fromarray(a) for a in arrays], [i % 3 for i in range(30)], ["r", "g", "b"])
    return from_datasets(train, name="pil", device="cpu")  # test: held out


@pytest.mark.parametrize(
    ("make", "shape", "classes"),
    [
        (_gray_20, (1, 20, 20), ("0", "1")),
        (_colour_33_100_classes, (3, 33, 33), tuple(f"c{i}" for i in range(100))),
        (_labels_3_7_10, (1, 10, 10), ("3", "7", "10")),
        (_folder_held_out, (3, 20, 20), ("a", "b", "c")),
        (_folder_train_test_jpeg_gray, (1, 16, 24), ("x", "y")),
        (_datasets_of_tensors, (3, 9, 9), ("5", "7")),
        (_datasets_of_pil_and_numpy, (3, 10, 10), ("r", "g", "b")),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_each_kind_of_user_data_trains(tmp_path, make, shape, classes):
    data = make(tmp_path)
    assert data.info.image_shape == shape and data.classes == classes
    assert data.x_train.dtype == torch.uint8 and data.y_train.dtype == torch.long
    assert set(data.y_train.tolist()) == set(range(len(classes)))
    train_a_little(data)


# -- what is accepted: layouts, test splits, sizes, channels, labels ---------------------------


def test_folder_classes_skipped_files_and_the_held_out_test_split(tmp_path):
    root = make_folder(tmp_path / "pets", {"dog": 10, "Cat": 3, "ant": 1})
    (root / "dog" / "notes.txt").write_text("not an image: skipped by its extension")
    (root / "dog" / ".hidden.png").write_bytes(b"skipped: hidden")
    (root / ".ipynb_checkpoints").mkdir()  # a hidden folder is not a class
    (root / "dog" / "more").mkdir()  # images are found recursively, any case of extension
    save_image(root / "dog" / "more" / "UPPER.PNG")
    first = load_dataset(root, device="cpu", val_size=0, seed=0)
    assert first.classes == ("Cat", "ant", "dog")  # sorted by name, as torchvision sorts
    # round(0.2 n) of each class, but each class keeps a training image
    assert torch.bincount(first.y_test, minlength=3).tolist() == [1, 0, 2]
    assert torch.bincount(first.y_train, minlength=3).tolist() == [2, 1, 9]
    again = load_dataset(root, device="cpu", val_size=0, seed=3)
    assert torch.equal(first.x_test, again.x_test)  # the test split ignores the run's seed
    half = load_dataset(root, device="cpu", val_size=0, test_size=0.5)
    assert torch.bincount(half.y_test, minlength=3).tolist() == [2, 0, 6]


def test_folder_with_train_and_test(tmp_path):
    make_folder(tmp_path / "set" / "train", {"cat": 4, "dog": 4})
    make_folder(tmp_path / "set" / "test", {"dog": 2})  # the test split may lack a class
    data = load_dataset(tmp_path / "set", device="cpu", val_size=0)
    assert data.classes == ("cat", "dog") and data.y_test.tolist() == [1, 1]
    pixels = np.array(Image.open(tmp_path / "set" / "test" / "dog" / "000.png"))
    assert torch.equal(data.x_test[0], torch.from_numpy(pixels).permute(2, 0, 1))
    with pytest.raises(ValueError, match="test_size: .*own test/ folder"):
        load_dataset(tmp_path / "set", test_size=0.3)


def test_image_size_and_channels_resize_and_convert(tmp_path):
    root = make_folder(tmp_path / "mixed", {"a": 3, "b": 3}, size=(20, 20))
    save_image(root / "a" / "big.jpg", (31, 40), channels=1)
    data = load_dataset(root, device="cpu", image_size=(8, 10), channels=1, val_size=0)
    assert data.info.image_shape == (1, 8, 10) and len(data.y_train) + len(data.y_test) == 7
    square = load_dataset(root, device="cpu", image_size=16, channels=3)
    assert square.info.image_shape == (3, 16, 16)
    # the conversion is PIL's: grayscale by its luma weights
    expected = np.array(
        Image.open(root / "b" / "000.png").convert("L").resize((10, 8), Image.BILINEAR)
    )
    assert torch.equal(data.x_train[data.y_train == 1][0, 0], torch.from_numpy(expected))
    npz = load_dataset(write_npz(tmp_path / "n.npz", shape=(20, 20)), image_size=8, channels=3)
    assert npz.info.image_shape == (3, 8, 8) and len(npz.info.mean) == 3
    bad = [("image_size", 0, ValueError), ("channels", 2, ValueError)]
    bad += [("image_size", "big", TypeError), ("test_size", 1.0, ValueError)]
    for argument, value, error in bad:
        with pytest.raises(error, match=argument):
            load_dataset(root, **{argument: value})
    with pytest.raises(ValueError, match="your own data.*not to the built-in 'digits'"):
        load_dataset("digits", image_size=16)


def test_labels_with_and_without_class_names(tmp_path):
    renamed = load_dataset(write_npz(tmp_path / "a.npz", labels=[10, 3, 7]), val_size=0)
    assert renamed.classes == ("3", "7", "10") and renamed.y_train[:3].tolist() == [2, 0, 1]
    named = load_dataset(
        write_npz(tmp_path / "b.npz", labels=[0, 2, 1], classes=np.array(["x", "y", "z"])),
        val_size=0,
    )
    assert named.classes == ("x", "y", "z") and named.y_train[:3].tolist() == [0, 2, 1]
    images = [np.full((6, 6), i, dtype=np.uint8) for i in range(12)]
    data = from_datasets(Pairs(images, [i % 2 for i in range(12)], classes=["no", "yes"]))
    assert data.classes == ("no", "yes")  # a Dataset's .classes, as torchvision's have
    plain = Pairs(images, [i % 2 for i in range(12)])  # no .classes: classes= names them
    assert from_datasets(plain, classes=["n", "y"]).classes == ("n", "y")


def test_dataset_images_of_every_kind_read_the_same(tmp_path):
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (4, 5, 7, 3), dtype=np.uint8)
    chw = torch.from_numpy(hwc).permute(0, 3, 1, 2)
    kinds = {
        "pil": [Image.fromarray(a) for a in hwc],
        "numpy": list(hwc),
        "uint8 tensor": list(chw),
        "float tensor": list(chw.float() / 255),
    }
    for kind, images in kinds.items():
        data = from_datasets(Pairs(images, [0, 1, 0, 1]), Pairs(images, [0, 1, 0, 1]), val_size=0)
        assert torch.equal(data.x_train, chw), kind
    gray = [a[:, :, 0] for a in hwc]  # (H, W) arrays and (1, H, W) tensors are grayscale
    one = from_datasets(
        Pairs(gray, [0, 1, 0, 1]), Pairs([torch.from_numpy(g)[None] for g in gray], [0, 1, 0, 1])
    )
    assert one.info.image_shape == (1, 5, 7)


# -- bad input: a clear error naming the file and the problem, nothing written ---------------


def _empty_class(root):
    make_folder(root, {"cat": 3, "dog": 3})
    (root / "fish").mkdir()
    (root / "fish" / "notes.txt").write_text("no image here")
    return root, "fish", r"empty class folder: no image file .*skipped: notes.txt"


def _not_an_image(root):
    make_folder(root, {"cat": 3, "dog": 3})
    (root / "dog" / "broken.png").write_bytes(b"this is no PNG")
    return root, "broken.png", "not a readable image"


def _cut_short(root):
    make_folder(root, {"cat": 3, "dog": 3})
    raw = (root / "dog" / "000.png").read_bytes()
    (root / "dog" / "cut.png").write_bytes(raw[: len(raw) // 2])  # the header is intact
    return root, "cut.png", "not a readable image .*truncated"


def _mixed_channels(root):
    make_folder(root, {"cat": 3, "dog": 3})
    save_image(root / "dog" / "gray.png", channels=1)
    return root, "gray.png", r"cat/000.png is colour, .*gray.png is grayscale.*--channels 3"


def _mixed_sizes(root):
    make_folder(root, {"cat": 3, "dog": 3})
    save_image(root / "dog" / "wide.png", size=(12, 30))
    return root, "wide.png", r"images differ in size: .*000.png is 12x12, .*wide.png is 12x30"


def _sixteen_bit(root):
    make_folder(root, {"cat": 3, "dog": 3}, channels=1)
    Image.fromarray(np.full((12, 12), 4000, dtype=np.uint16)).save(root / "dog" / "deep.png")
    return root, "deep.png", "a I;16 image .*only 8-bit images are read"


def _no_class_folders(root):
    root.mkdir()
    save_image(root / "loose.png")
    return root, "flat", "no class folder"


def _one_class(root):
    make_folder(root, {"cat": 3})
    return root, "flat", "at least 2 classes"


def _test_class_not_in_train(root):
    make_folder(root / "train", {"cat": 3, "dog": 3})
    make_folder(root / "test", {"cat": 1, "fish": 1})
    return root, "fish", r"not in .*train \(a test class with no training images\)"


def _train_without_test(root):
    make_folder(root / "train", {"cat": 3, "dog": 3})
    return root, "flat", "has train/ but no test/"


def _npz_label_out_of_range(root):
    root.mkdir()
    path = write_npz(root / "bad.npz", labels=[0, 1, 2], classes=np.array(["a", "b"]))
    return path, "bad.npz", r"labels must lie in \[0, 1\]"


def _npz_class_without_training_images(root):
    root.mkdir()
    path = write_npz(root / "gap.npz", labels=[1, 2], classes=np.array(["a", "b", "c"]))
    return path, "gap.npz", r"no training image for the classes \['a'\]"


def _npz_test_label_not_in_train(root):
    root.mkdir()
    path = write_npz(root / "new.npz", n_test=12, y_test=np.array([0, 1, 5] * 4))
    return path, "new.npz", r"y_test holds labels \[5\] that no training image has"


BAD = [
    _empty_class,
    _not_an_image,
    _cut_short,
    _mixed_channels,
    _mixed_sizes,
    _sixteen_bit,
    _no_class_folders,
    _one_class,
    _test_class_not_in_train,
    _train_without_test,
    _npz_label_out_of_range,
    _npz_class_without_training_images,
    _npz_test_label_not_in_train,
]


@pytest.mark.parametrize("make", BAD, ids=lambda f: f.__name__.strip("_"))
def test_bad_data_is_named_and_nothing_is_written(tmp_path, capsys, make):
    target, named, problem = make(tmp_path / "flat")
    before = snapshot(tmp_path)
    with pytest.raises(DataFileError, match=problem) as info:
        load_dataset(target, device="cpu")
    message = str(info.value)
    assert named in message and len(message.splitlines()) == 1, message
    # the command line: one line, exit status 2, before --out is created
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", str(target), "--out", str(tmp_path / "out" / "run")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    assert "argument --dataset" in err and re.search(problem, err), err
    assert snapshot(tmp_path) == before and not cache_dir().exists()


@pytest.mark.parametrize(
    ("train", "kwargs", "error", "problem"),
    [
        (Pairs([np.zeros((4, 4), np.uint8)] * 4, [0, 1, 0, 2]), {"classes": ["a", "b"]},
         DataFileError, r"labels must lie in \[0, 1\]"),
        (Pairs([torch.full((1, 4, 4), 2.0)] * 4, [0, 1] * 2), {}, DataFileError,
         r"train\[0\]: a float image must have values in \[0, 1\].*leave out Normalize"),
        (Pairs([np.zeros((3, 4, 4), np.uint8)] * 4, [0, 1] * 2), {}, DataFileError,
         r"train\[0\]: a numpy image must have shape \(H, W\) or \(H, W, C\)"),
        (Pairs([np.zeros((4, 4), np.int64)] * 4, [0, 1] * 2), {}, DataFileError, "dtype int64"),
        (Pairs([np.zeros((4, 4), np.uint8)] * 4, ["cat", "dog"] * 2), {}, DataFileError,
         r"train\[0\]: the label must be an integer"),
        ([np.zeros((4, 4), np.uint8)] * 4, {}, DataFileError, r"train\[0\]: items must be pairs"),
        (Pairs([np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.uint8)], [0, 1]), {},
         DataFileError, r"train\[0\] is grayscale, train\[1\] is colour; .*channels=3"),
        ("my_photos", {}, TypeError, r"load_dataset\('my_photos'\)"),
        (Pairs([], []), {}, DataFileError, "train holds no images"),
    ],
)  # fmt: skip
def test_bad_dataset_objects_are_named(train, kwargs, error, problem):
    with pytest.raises(error, match=problem):
        from_datasets(train, **kwargs)
    assert not cache_dir().exists()


# -- the command line: a folder as --dataset, `data PATH` checks and converts ----------------


def test_command_line_checks_trains_and_converts_a_folder(tmp_path, capsys):
    root = make_folder(tmp_path / "pets", {"cat": 6, "dog": 6}, size=(10, 10))
    assert main(["data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "image folder" in out and "2 classes, 3x10x10 images" in out
    assert "train     10 images (cat 5, dog 5)" in out and "test       2 images" in out
    prefix = tmp_path / "runs" / "r"
    argv = ["train", "--dataset", str(root), "--epochs", "1", "--no-progress", "--out", str(prefix)]
    assert main([*argv, "--device", "cpu", "--latent-dim", "8"]) == 0
    assert len(json.loads(prefix.with_suffix(".json").read_text())["epochs"]) == 1
    save_image(root / "dog" / "gray.png", size=(14, 9), channels=1)
    npz = tmp_path / "pets.npz"
    argv = ["data", str(root), "--image-size", "8", "--channels", "1", "--npz", str(npz)]
    assert main(argv) == 0
    back = load_dataset(npz, device="cpu", val_size=0)
    direct = load_dataset(root, device="cpu", val_size=0, image_size=8, channels=1)
    assert back.classes == ("cat", "dog") and torch.equal(back.x_test, direct.x_test)
    assert torch.equal(back.x_train, direct.x_train)
    assert main(["data", "--npz", str(npz)]) == 1
    assert "--npz: only with PATH" in capsys.readouterr().err


@pytest.mark.realdata
def test_real_digits_npz_trains_through_the_command_line(data_root, tmp_path):
    """The issue's report: 28x28 grayscale digits saved as the README's .npz, then `train`."""
    path = data_root / "mnist" / "mnist-10k.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    argv = ["train", "--dataset", str(path), "--n-train", "500", "--n-test", "200"]
    argv += ["--epochs", "1", "--no-progress", "--device", "cpu", "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    record = json.loads((tmp_path / "r.json").read_text())["epochs"][0]
    assert np.isfinite(record["train_loss"]) and 0 <= record["test_acc"] <= 1


# -- the documented examples run, on files made here ------------------------------------------


def _section(markdown: str, title: str) -> str:
    start = markdown.index(f"## {title}")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end > 0 else None]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def _my_photos(folder):
    """The folder the examples name: photos of two sizes and kinds (JPEG and PNG)."""
    make_folder(folder, {"cat": 10, "dog": 10}, size=(40, 30), ext=".jpg")
    save_image(folder / "dog" / "small.png", size=(24, 24))
    save_image(folder / "cat" / "gray.png", size=(24, 24), channels=1)


@pytest.mark.parametrize("guide", ["README.md", "tutorials/README.md"])
def test_the_documented_examples_run(tmp_path, monkeypatch, capsys, guide):
    section = _section((ROOT / guide).read_text(), "Bring your own data")
    python, commands = _blocks(section, "python"), _blocks(section, "bash")
    assert python
    _my_photos(tmp_path / "my_photos")
    monkeypatch.chdir(tmp_path)
    for code in python:
        exec(compile(code, guide, "exec"), {})
    for block in commands:
        for line in block.strip().splitlines():
            argv = shlex.split(line, comments=True)
            assert argv[0] == "latentboost-lab" and main(argv[1:]) == 0, line
    printed = capsys.readouterr().out
    assert "('cat', 'dog')" in printed
