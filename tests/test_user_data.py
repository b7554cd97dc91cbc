"""Your own data trains like the built-in sets: an .npz file, through the Python API and the
command line, with evaluation, embed and the λ playground (issue 12)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from latentboost_lab import build_model, evaluate, fit, load_dataset
from latentboost_lab.cli import main
from latentboost_lab.metrics import embed
from latentboost_lab.recipes import make_loss

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
