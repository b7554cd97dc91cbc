"""The λ playground works headless: built and driven from code, without a browser."""

import pytest
import torch

pytest.importorskip("ipywidgets")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from latentboost_lab import load_dataset  # noqa: E402
from latentboost_lab.widgets import WHY_NOT_MID_EPOCH, LambdaPlayground  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits", n_train=400, n_test=200, val_size=0.1, seed=0, download=False)


def test_slider_change_then_click_trains_with_the_new_lambda(data):
    playground = LambdaPlayground(data, lam=0.75, epochs_per_click=1, n_train=300, live=False)
    assert playground.lam.continuous_update is False
    playground.train_button.click()
    assert len(playground.history) == 1
    assert playground.history.epochs[0]["lam"] == pytest.approx(0.75)
    projection = playground.projection

    playground.lam.value = 0.25
    playground.epochs.value = 2
    playground.train_button.click()
    assert len(playground.history) == 3
    assert [r["lam"] for r in playground.history.epochs] == pytest.approx([0.75, 0.25, 0.25])
    assert [r["epoch"] for r in playground.history.epochs] == [0, 1, 2]
    # the loss really trained with the new λ and the playground's epoch count (α falls over epochs)
    assert playground.history.epochs[-1]["alpha"] < playground.history.epochs[0]["alpha"]
    for key in ("ce", "dist", "train_acc", "test_acc", "test_silhouette"):
        assert key in playground.history.last
    assert playground.lambda_marks() == [(0, "λ=0.75"), (1, "λ=0.25")]
    # the projection is fitted once and kept: the same object after more epochs
    assert projection is not None and playground.projection is projection
    assert playground.history.last["n_train"] == 300
    # the lines printed under the live figure: one per epoch, with the λ it trained with
    lines = playground.history_lines()
    assert [line.split(":")[0] for line in lines] == ["epoch 0", "epoch 1", "epoch 2"]
    assert "λ=0.75" in lines[0] and "λ=0.25" in lines[2]
    assert playground.history_lines(last=1)[0].startswith("... 2 earlier epochs")


def test_controls_reach_the_loss_and_reset_starts_again(data):
    playground = LambdaPlayground(data, n_train=300, live=False)
    playground.pca.value = False
    playground.alpha0.value = 2.0
    playground.train(1)
    record = playground.history.last
    assert record["pca_k"] == pytest.approx(playground.latent_dim)  # PCA off: the full width
    assert record["alpha"] == pytest.approx(2.0)  # alpha0 * exp(-k_alpha * 0)
    assert playground.loss.pca_variance is None

    trained = [p.detach().clone() for p in playground.model.parameters()]
    playground.reset_button.click()
    assert len(playground.history) == 0
    assert playground.projection is None
    # same seed: the fresh model starts from the same initial weights, not the trained ones
    fresh = LambdaPlayground(data, n_train=300, live=False)
    pairs = list(zip(playground.model.parameters(), fresh.model.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in pairs)
    assert not all(torch.equal(a, c) for (a, _), c in zip(pairs, trained, strict=True))


def test_live_view_and_help_text(data):
    playground = LambdaPlayground(data, n_train=300)  # live: draws into the Output after each epoch
    empty = playground.figure()
    assert empty is not None
    playground.train(1)
    figure = playground.figure()
    assert len(figure.axes) >= 4
    assert "queue" in WHY_NOT_MID_EPOCH
    assert playground.widget.children  # a VBox of controls and the Output
