"""Plots: right number of panels and artists, no error on small inputs (Agg backend, no display)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection, PolyCollection

from latentboost_lab.metrics import confusion_matrix, silhouette_score
from latentboost_lab.plots import (
    PCAProjection,
    fit_projection,
    plot_comparison_latents,
    plot_confusion_matrix,
    plot_history,
    plot_latent_2d,
    plot_silhouette,
)

matplotlib.use("Agg")  # no display needed; also what the CLI uses to write PNG files

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def latents(n=60, num_classes=3, width=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    centres = 4 * torch.randn(num_classes, width, generator=generator)
    return centres[labels] + torch.randn(n, width, generator=generator), labels


def scatters(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def test_fit_projection_is_pca_with_a_deterministic_sign():
    x, _ = latents(n=200, width=6)
    projection = fit_projection(x)
    assert isinstance(projection, PCAProjection)
    points = projection(x)
    assert points.shape == (200, 2) and points.dtype == torch.float32
    # matches scikit-learn's PCA up to the sign of each axis
    from sklearn.decomposition import PCA

    expected = PCA(n_components=2).fit_transform(x.double().numpy())
    np.testing.assert_allclose(np.abs(points.numpy()), np.abs(expected), atol=1e-4)
    assert sum(projection.explained_variance_ratio) <= 1.0
    # refitting gives the same picture, never a mirrored one: the sign rule fixes each axis
    torch.testing.assert_close(points, fit_projection(x.clone())(x))
    shuffled = fit_projection(x[torch.randperm(200, generator=torch.Generator().manual_seed(1))])
    torch.testing.assert_close(shuffled.components, projection.components)
    largest = projection.components.abs().argmax(dim=0)
    assert (projection.components[largest, torch.arange(2)] > 0).all()
    with pytest.raises(ValueError, match="latent"):
        projection(torch.randn(3, 4))


@pytest.mark.parametrize("n, width", [(200, 6), (40, 300)])  # the scatter side and the Gram side
def test_fit_projection_matches_scikit_learn_and_the_loss_pca(n, width):
    """The plots' PCA is the loss's (principal_basis): the same axes and explained-variance
    ratios as scikit-learn's PCA, also when the latent is wider than the batch."""
    from sklearn.decomposition import PCA

    x = torch.randn(n, width, generator=torch.Generator().manual_seed(2)) * torch.linspace(
        3, 0.1, width
    )
    projection = fit_projection(x)
    reference = PCA(n_components=2).fit(x.double().numpy())
    np.testing.assert_allclose(projection.explained_variance_ratio,
                               reference.explained_variance_ratio_, rtol=1e-9)  # fmt: skip
    np.testing.assert_allclose(np.abs(projection.components.T.numpy()),
                               np.abs(reference.components_), atol=1e-9)  # fmt: skip
    one = fit_projection(x[:1])  # a single sample: every axis constant
    assert torch.equal(one(x[:1]), torch.zeros(1, 2))


def test_plot_latent_2d_one_scatter_per_class_and_fixed_projection():
    x, labels = latents()
    ax = plot_latent_2d(x, labels, class_names=["a", "b", "c"], title="epoch 1")
    assert len(scatters(ax)) == 3 and ax.get_title() == "epoch 1"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    projection = fit_projection(x)
    _, ax2 = plt.subplots()
    returned = plot_latent_2d(x + 1, labels, ax=ax2, projection=projection, max_points=20)
    assert returned is ax2 and sum(len(c.get_offsets()) for c in scatters(ax2)) == 20
    with pytest.raises(ValueError, match="projection"):
        plot_latent_2d(x, labels, method="tsne", projection=projection)
    with pytest.raises(ValueError, match="class_names"):
        plot_latent_2d(x, labels, class_names=["a"])
    with pytest.raises(ValueError, match="method"):
        plot_latent_2d(x, labels, method="umap")
    with pytest.raises(ValueError, match="labels"):
        plot_latent_2d(x, labels[:-1])


def test_plot_latent_2d_tsne_on_a_small_input():
    x, labels = latents(n=24, num_classes=2)
    ax = plot_latent_2d(x, labels, method="tsne")
    assert len(scatters(ax)) == 2 and ax.get_xlabel() == "t-SNE 1"


def test_plot_latent_2d_tiny_and_numpy_inputs():
    ax = plot_latent_2d(np.array([[0.0, 1.0, 2.0]]), np.array([0]))  # one point
    assert len(scatters(ax)) == 1
    ax = plot_latent_2d(torch.randn(5, 1), torch.tensor([0, 1, 0, 1, 2]))  # a 1-D latent
    assert len(scatters(ax)) == 3


def test_plot_silhouette_one_band_per_class_and_mean_line():
    x, labels = latents(n=45, num_classes=3)
    ax = plot_silhouette(x, labels, class_names=["a", "b", "c"])
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 3
    mean = silhouette_score(x, labels)
    assert any(np.allclose(line.get_xdata(), mean) for line in ax.get_lines())
    assert {"a", "b", "c"} <= {t.get_text() for t in ax.texts}


def test_plot_confusion_matrix_normalises_rows_and_annotates():
    cm = confusion_matrix(torch.tensor([0, 1, 1, 2, 2, 2]), torch.tensor([0, 1, 2, 2, 2, 0]), 4)
    ax = plot_confusion_matrix(cm, class_names=["a", "b", "c", "d"])
    image = ax.get_images()[0].get_array()
    np.testing.assert_allclose(image.sum(axis=1), [1, 1, 1, 0])  # the empty row stays 0
    assert len(ax.texts) == 16
    ax = plot_confusion_matrix(cm.numpy(), normalize=False)
    assert ax.texts[0].get_text() == "1"
    with pytest.raises(ValueError, match="cm"):
        plot_confusion_matrix(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="class_names"):
        plot_confusion_matrix(cm, class_names=["a"])


class FakeHistory:
    def __init__(self, epochs):
        self.epochs = epochs


def test_plot_history_curves_marks_and_missing_values():
    epochs = [
        {"epoch": e, "train_loss": 2.0 / e, "val_acc": 0.5 + 0.1 * e, "ce": torch.tensor(1.0 / e)}
        for e in range(1, 5)
    ]
    epochs[1]["val_acc"] = float("nan")  # skipped, not drawn as a gap-maker
    ax = plot_history(FakeHistory(epochs), marks=[(2, "λ = 0.3"), (3, "λ = 0.5")])
    lines = [line for line in ax.get_lines() if line.get_label() in ("train_loss", "val_acc")]
    assert len(lines) == 2 and len(lines[1].get_xdata()) == 3
    assert [t.get_text().strip() for t in ax.texts] == ["λ = 0.3", "λ = 0.5"]
    ax = plot_history([{"ce": 1.0}, {"ce": 0.5}], keys="ce")  # a plain list, tensor-free
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2]
    with pytest.raises(ValueError, match="keys"):
        plot_history(epochs, keys=("test_acc",))
    with pytest.raises(TypeError, match="history"):
        plot_history({"train_loss": [1.0]})


def test_plot_comparison_latents_one_panel_per_arm():
    x, labels = latents()
    results = {"cross-entropy": (x, labels), "Latent Boost": (torch.randn(60, 8), labels)}
    figure = plot_comparison_latents(results, class_names=["a", "b", "c"])
    assert len(figure.axes) == 2
    assert [ax.get_title() for ax in figure.axes] == ["cross-entropy", "Latent Boost"]
    assert figure.axes[0].get_legend() is None and figure.axes[1].get_legend() is not None
    with pytest.raises(ValueError, match="results"):
        plot_comparison_latents({})
