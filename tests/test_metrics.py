"""Metrics against scikit-learn (the oracle), across dtypes, cluster counts and chunk sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as sk
from torch import nn

from latentboost_lab.metrics import (
    accuracy,
    confusion_matrix,
    davies_bouldin_score,
    embed,
    f1_score,
    silhouette_samples,
    silhouette_score,
)

pytestmark = pytest.mark.usefixtures("one_thread")


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def blobs(n, num_clusters, width=8, spread=1.0, separation=3.0, offset=0.0, seed=0):
    """Gaussian clusters as float64 numpy arrays: (x, labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_clusters, width)) * separation
    labels = rng.integers(0, num_clusters, size=n)
    labels[:num_clusters] = np.arange(num_clusters)  # every cluster present
    x = centres[labels] + spread * rng.normal(size=(n, width)) + offset
    return x, labels


def classification(n=300, num_classes=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=n)
    logits = rng.normal(size=(n, num_classes))
    logits[np.arange(n), labels] += 1.0  # better than chance, not perfect
    return torch.from_numpy(logits).float(), torch.from_numpy(labels)


# ----------------------------------------------------------------------------- classification


@pytest.mark.parametrize("num_classes", [2, 5, 10])
@pytest.mark.parametrize("as_logits", [True, False])
def test_classification_metrics_match_sklearn(num_classes, as_logits):
    logits, labels = classification(num_classes=num_classes, seed=num_classes)
    pred = logits.argmax(1)
    given = logits if as_logits else pred
    y, p = labels.numpy(), pred.numpy()
    assert accuracy(given, labels) == pytest.approx(sk.accuracy_score(y, p), abs=1e-12)
    for average in ("micro", "macro"):
        expected = sk.f1_score(y, p, average=average)
        assert f1_score(given, labels, average=average) == pytest.approx(expected, abs=1e-12)
    expected = sk.confusion_matrix(y, p, labels=range(num_classes))
    np.testing.assert_array_equal(confusion_matrix(given, labels, num_classes).numpy(), expected)


def test_micro_f1_is_accuracy_and_macro_skips_absent_classes():
    labels = torch.tensor([0, 0, 1, 1, 3, 3])  # class 2 never occurs, class 4 only predicted
    pred = torch.tensor([0, 1, 1, 1, 3, 4])
    assert f1_score(pred, labels, average="micro") == accuracy(pred, labels) == pytest.approx(4 / 6)
    expected = sk.f1_score(labels.numpy(), pred.numpy(), average="macro")
    assert f1_score(pred, labels, average="macro") == pytest.approx(expected, abs=1e-12)


def test_confusion_matrix_sizes_and_numpy_input():
    labels, pred = np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1])
    cm = confusion_matrix(pred, labels)
    assert cm.dtype == torch.int64 and cm.shape == (3, 3) and int(cm.sum()) == 4
    assert confusion_matrix(torch.zeros(4, 7), torch.from_numpy(labels)).shape == (7, 7)
    assert confusion_matrix(pred, labels, num_classes=5).shape == (5, 5)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(pred, labels, num_classes=2)


@pytest.mark.parametrize(
    "call, error, name",
    [
        (
            lambda: accuracy(torch.tensor([0, 1]), torch.tensor([0, 1, 1])),
            ValueError,
            "pred_or_logits",
        ),
        (
            lambda: accuracy(torch.tensor([0.0, 1.0]), torch.tensor([0, 1])),
            ValueError,
            "pred_or_logits",
        ),
        (lambda: accuracy(torch.tensor([0, 1]), torch.tensor([0.0, 1.0])), ValueError, "labels"),
        (
            lambda: accuracy(torch.full((2, 3), float("nan")), torch.tensor([0, 1])),
            ValueError,
            "pred_or_logits",
        ),
        (lambda: accuracy(torch.zeros(3, 2), torch.tensor([0, 1])), ValueError, "pred_or_logits"),
        (lambda: accuracy([0, 1], torch.tensor([0, 1])), TypeError, "pred_or_logits"),
        (
            lambda: accuracy(
                torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long)
            ),
            ValueError,
            "labels",
        ),
        (
            lambda: f1_score(torch.tensor([0, 1]), torch.tensor([0, 1]), average="weighted"),
            ValueError,
            "average",
        ),
    ],
)
def test_classification_metrics_reject_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()


# ----------------------------------------------------------------------------- Davies-Bouldin


@pytest.mark.parametrize("num_clusters", [2, 3, 10])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_davies_bouldin_matches_sklearn(num_clusters, dtype):
    x, labels = blobs(400, num_clusters, separation=1.5, seed=num_clusters)
    x = torch.from_numpy(x).to(dtype)
    expected = sk.davies_bouldin_score(x.double().numpy(), labels)
    got = davies_bouldin_score(x, torch.from_numpy(labels))
    assert got == pytest.approx(expected, rel=1e-6)


def test_davies_bouldin_degenerate_cases_are_zero_like_sklearn():
    labels = torch.tensor([0, 0, 1, 1, 2])
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [3.0, 0.0]])  # no spread
    assert (
        davies_bouldin_score(x, labels) == sk.davies_bouldin_score(x.numpy(), labels.numpy()) == 0.0
    )
    with pytest.raises(ValueError, match="labels"):
        davies_bouldin_score(x, torch.zeros(5, dtype=torch.long))


# ----------------------------------------------------------------------------- silhouette


@pytest.mark.parametrize(
    "n, num_clusters, chunk_size",
    [
        (200, 2, 64),  # chunk smaller than n: several row blocks, triangular pass
        (257, 3, 1000),  # one block
        (300, 10, 37),  # blocks not aligned with anything
        (120, 60, 16),  # more clusters than chunk_size: the row-by-row path, singletons likely
        (400, 200, 512),  # > 128 clusters in a block: the index_add_ reduction
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_silhouette_samples_match_sklearn(n, num_clusters, chunk_size, dtype):
    x, labels = blobs(n, num_clusters, seed=n + num_clusters)
    x = torch.from_numpy(x).to(dtype)
    expected = sk.silhouette_samples(x.numpy(), labels)
    got = silhouette_samples(x, torch.from_numpy(labels), chunk_size=chunk_size)
    assert got.dtype == dtype and got.shape == (n,)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5, rtol=0)
    score = silhouette_score(x, torch.from_numpy(labels), chunk_size=chunk_size)
    assert score == pytest.approx(sk.silhouette_score(x.numpy(), labels), abs=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "spread, offset",
    [(1e-3, 10.0), (1e-5, 1.0), (0.0, 0.0), (1.0, 5.0)],
    ids=["tight-far", "collapsed", "identical", "overlapping"],
)
def test_silhouette_float32_precision_on_magnet_like_latents(spread, offset, device):
    """Tight clusters far from the origin are where |a|^2 + |b|^2 - 2ab loses precision."""
    x, labels = blobs(600, 10, width=32, spread=spread, offset=offset, seed=1)
    x32 = torch.from_numpy(x).float()
    expected = sk.silhouette_samples(x32.double().numpy(), labels)
    got = silhouette_samples(x32.to(device), torch.from_numpy(labels).to(device), chunk_size=128)
    assert got.device.type == device
    np.testing.assert_allclose(got.cpu().numpy(), expected, atol=1e-5, rtol=0)


def test_silhouette_conventions_singletons_duplicates_and_label_values():
    x, labels = blobs(60, 4, seed=3)
    labels = labels * 7 + 3  # non-contiguous label values
    labels[-1] = 1000  # a singleton cluster
    expected = sk.silhouette_samples(x, labels)
    got = silhouette_samples(torch.from_numpy(x), torch.from_numpy(labels))
    assert got[-1] == 0.0
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-10)
    # all points identical: a = b = 0, which scikit-learn scores 0
    same = torch.ones(6, 3)
    halves = torch.tensor([0, 0, 0, 1, 1, 1])
    assert (
        silhouette_score(same, halves) == sk.silhouette_score(same.numpy(), halves.numpy()) == 0.0
    )


def test_silhouette_accepts_numpy_and_subsamples_like_sklearn():
    x, labels = blobs(500, 5, seed=4)
    for seed in (0, 7):
        expected = sk.silhouette_score(x, labels, sample_size=100, random_state=seed)
        assert silhouette_score(x, labels, sample_size=100, seed=seed) == pytest.approx(
            expected, abs=1e-10
        )
    assert silhouette_score(x, labels) == pytest.approx(sk.silhouette_score(x, labels), abs=1e-10)


@pytest.mark.parametrize(
    "call, error, name",
    [
        (
            lambda: silhouette_score(torch.randn(5, 2), torch.zeros(5, dtype=torch.long)),
            ValueError,
            "labels",
        ),
        (lambda: silhouette_score(torch.randn(4, 2), torch.arange(4)), ValueError, "labels"),
        (
            lambda: silhouette_score(torch.randn(5, 2), torch.tensor([0, 1, 0, 1])),
            ValueError,
            "labels",
        ),
        (
            lambda: silhouette_score(torch.randn(4, 2), torch.tensor([0.0, 1, 0, 1])),
            ValueError,
            "labels",
        ),
        (lambda: silhouette_score(torch.randn(4), torch.tensor([0, 1, 0, 1])), ValueError, "x"),
        (
            lambda: silhouette_score(
                torch.tensor([[0.0], [float("nan")], [1], [2]]), torch.tensor([0, 1, 0, 1])
            ),
            ValueError,
            "x",
        ),
        (
            lambda: silhouette_score(torch.arange(8).view(4, 2), torch.tensor([0, 1, 0, 1])),
            ValueError,
            "x",
        ),
        (lambda: silhouette_score([[0.0], [1.0]], torch.tensor([0, 1])), TypeError, "x"),
        (
            lambda: silhouette_score(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), chunk_size=0),
            ValueError,
            "chunk_size",
        ),
        (
            lambda: silhouette_score(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), sample_size=9),
            ValueError,
            "sample_size",
        ),
        (
            lambda: silhouette_samples(torch.randn(4, 2), torch.tensor([0, 1, 0, -1])),
            ValueError,
            "labels",
        ),
    ],
)
def test_silhouette_rejects_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()


# ----------------------------------------------------------------------------- embed


class StandInData:
    """Follows the data contract: split(name) -> (uint8 images, int64 labels), normalize, device."""

    device = torch.device("cpu")

    def __init__(self, n=37):
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8, generator=generator)
        self.labels = torch.randint(0, 3, (n,), generator=generator)

    def split(self, name):
        return self.images, self.labels

    def normalize(self, x):
        return (x.float() / 255 - 0.5) / 0.25


class StandInModel(nn.Module):
    """forward(x) -> (logits, latent), with dropout and BatchNorm so that eval mode matters."""

    latent_dim = 6

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Flatten(), nn.Linear(16, 6), nn.BatchNorm1d(6), nn.Dropout(0.5)
        )
        self.classifier = nn.Linear(6, 3)

    def forward(self, x):
        latent = self.features(x)
        return self.classifier(latent), latent


@pytest.mark.parametrize("batch_size", [1, 10, 1024])
def test_embed_matches_one_forward_pass_in_eval_mode(batch_size):
    torch.manual_seed(0)
    data, model = StandInData(), StandInModel()
    model.features[2].running_mean.fill_(0.3)  # so that train- and eval-mode BatchNorm differ
    model.train()
    latent, labels, logits = embed(model, data, "test", batch_size=batch_size, return_logits=True)
    assert model.training and all(m.training for m in model.modules())
    assert latent.shape == (37, 6) and latent.dtype == torch.float32 and not latent.requires_grad
    assert labels.dtype == torch.int64 and torch.equal(labels, data.labels)
    model.eval()
    expected_logits, expected_latent = model(data.normalize(data.images))
    torch.testing.assert_close(latent, expected_latent.detach())
    torch.testing.assert_close(logits, expected_logits.detach())
    assert len(embed(model, data, "val")) == 2


def test_embed_restores_mixed_module_modes_and_validates():
    data, model = StandInData(), StandInModel()
    model.train()
    model.features[2].eval()  # e.g. a frozen BatchNorm inside a training model
    embed(model, data)
    assert model.training and not model.features[2].training and model.features[3].training
    with pytest.raises(ValueError, match="split"):
        embed(model, data, "validation")
    with pytest.raises(ValueError, match="batch_size"):
        embed(model, data, batch_size=0)


def test_embed_empty_split_keeps_widths():
    data, model = StandInData(n=0), StandInModel()
    latent, labels, logits = embed(model, data, return_logits=True)
    assert latent.shape == (0, 6) and logits.shape == (0, 3) and labels.shape == (0,)
