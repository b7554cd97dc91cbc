"""OOD scores against naive float64 oracles (plain loops, sharing no code with the package),
against scikit-learn's NearestNeighbors and against pytorch-ood where definitions match."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentboost_lab.ood import scores as S

pytestmark = pytest.mark.usefixtures("one_thread")

PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def blobs(n, classes=4, width=6, seed=0, offset=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    centres = 4.0 * torch.randn(classes, width, generator=g, dtype=torch.float64)
    labels = torch.arange(n) % classes
    x = centres[labels] + torch.randn(n, width, generator=g, dtype=torch.float64)
    return (x * scale + offset), labels


# ----------------------------------------------------------------------------- oracles


def naive_logit_scores(logits, t=1.0):
    msp, top, en = [], [], []
    for row in np.asarray(logits, dtype=np.float64):
        m = max(row / t)
        total = math.fsum(math.exp(v / t - m) for v in row)
        msp.append(1.0 / total)  # exp(max - m) / total with max = m
        top.append(max(row))
        en.append(t * (m + math.log(total)))
    return np.array(msp), np.array(top), np.array(en)


def naive_mahalanobis(train, labels, query):
    train, query = np.asarray(train, np.float64), np.asarray(query, np.float64)
    labels = np.asarray(labels)
    classes = sorted(set(labels.tolist()))
    means = {c: train[labels == c].mean(axis=0) for c in classes}
    d = train.shape[1]
    cov = np.zeros((d, d))
    for z, y in zip(train, labels, strict=True):
        cov += np.outer(z - means[y], z - means[y])
    precision = np.linalg.pinv(cov / len(train), hermitian=True)
    return np.array(
        [-min((q - means[c]) @ precision @ (q - means[c]) for c in classes) for q in query]
    )


def naive_cluster_score(train, member, query):
    """max_k -|q - mu_k|^2 / (2 sigma_k^2), sigma_k^2 = sum |z - mu_k|^2 / (n_k - 1)."""
    train, query = np.asarray(train, np.float64), np.asarray(query, np.float64)
    member = np.asarray(member)
    out = []
    clusters = sorted(set(member.tolist()))
    stats = {}
    for k in clusters:
        rows = train[member == k]
        mu = rows.mean(axis=0)
        var = math.fsum(float(((r - mu) ** 2).sum()) for r in rows) / (len(rows) - 1)
        stats[k] = (mu, var)
    for q in query:
        out.append(max(-float(((q - mu) ** 2).sum()) / (2 * var) for mu, var in stats.values()))
    return np.array(out)


# ----------------------------------------------------------------------------- logits


@pytest.mark.parametrize("t", [1.0, 2.5])
def test_logit_scores_equal_naive(t):
    logits = 5 * torch.randn(50, 7, generator=torch.Generator().manual_seed(0))
    msp, top, en = naive_logit_scores(logits, t)
    np.testing.assert_allclose(S.msp(logits, t).numpy(), msp, rtol=1e-6)
    np.testing.assert_allclose(S.max_logit(logits).numpy(), top, rtol=1e-12)
    np.testing.assert_allclose(S.energy(logits, t).numpy(), en, rtol=1e-6)
    assert S.msp(logits.double(), t).dtype == torch.float64


def test_logit_scores_equal_pytorch_ood_negated():
    pytest.importorskip("pytorch_ood", reason="pytorch-ood is not installed")
    from pytorch_ood.detector import EnergyBased, MaxLogit, MaxSoftmax

    logits = 3 * torch.randn(40, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(S.msp(logits, 2.0), -MaxSoftmax.score(logits, 2.0))
    torch.testing.assert_close(S.max_logit(logits), -MaxLogit.score(logits))
    torch.testing.assert_close(S.energy(logits, 1.5), -EnergyBased.score(logits, 1.5))


# ----------------------------------------------------------------------------- Mahalanobis


@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_mahalanobis_equals_naive(offset):
    train, labels = blobs(200, offset=offset)
    query, _ = blobs(30, seed=1, offset=offset)
    ours = S.mahalanobis(query, S.fit_gaussian(train, labels))
    np.testing.assert_allclose(ours.numpy(), naive_mahalanobis(train, labels, query), rtol=1e-7)


def test_mahalanobis_singular_covariance_uses_the_pseudo_inverse():
    train, labels = blobs(120, width=4)
    train = torch.cat([train, torch.zeros(120, 2, dtype=torch.float64)], dim=1)  # a dead ReLU
    query, _ = blobs(10, width=4, seed=2)
    query = torch.cat([query, torch.zeros(10, 2, dtype=torch.float64)], dim=1)
    fit = S.fit_gaussian(train, labels)
    assert fit.whitening.shape == (6, 4)
    ours = S.mahalanobis(query, fit)
    np.testing.assert_allclose(ours.numpy(), naive_mahalanobis(train, labels, query), rtol=1e-7)


def test_mahalanobis_is_pytorch_oods_times_minus_2n():
    pytest.importorskip("pytorch_ood", reason="pytorch-ood is not installed")
    from pytorch_ood.detector import Mahalanobis

    train, labels = blobs(300, width=5)
    query, _ = blobs(20, width=5, seed=3)
    theirs = Mahalanobis(None).fit_features(train.float(), labels).predict_features(query.float())
    ours = S.mahalanobis(query.float(), S.fit_gaussian(train.float(), labels))
    # theirs: 1/2 d^2 with the summed (not averaged) covariance plus 1e-6 I
    np.testing.assert_allclose(ours.numpy(), (-2 * 300 * theirs).double().numpy(), rtol=1e-3)


# ----------------------------------------------------------------------------- kNN


@pytest.mark.parametrize("block_bytes", [1, 4 * 1000 * 7, S.DEFAULT_BLOCK_BYTES])
def test_knn_equals_sklearn_nearest_neighbors(block_bytes):
    from sklearn.neighbors import NearestNeighbors

    bank, _ = blobs(1000, width=8)
    query, _ = blobs(300, width=8, seed=4)
    normal = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    distance, _ = (
        NearestNeighbors(n_neighbors=7).fit(normal(bank.numpy())).kneighbors(normal(query.numpy()))
    )
    ours = S.knn(query.float(), bank.float(), 7, block_bytes=block_bytes)
    np.testing.assert_allclose(-ours.numpy(), distance[:, -1], atol=2e-6)
    # a bank normalised beforehand gives the same scores
    again = S.knn(query, S.normalize_rows(bank.float()), 7, normalized_bank=True)
    np.testing.assert_allclose(again.numpy(), ours.numpy(), atol=1e-7)


def test_knn_equals_pytorch_ood_negated():
    pytest.importorskip("pytorch_ood", reason="pytorch-ood is not installed")
    from pytorch_ood.detector import KNN

    bank, labels = blobs(500, width=6)
    query, _ = blobs(50, width=6, seed=5)
    theirs = KNN(None, k=10).fit_features(bank.float(), labels).predict_features(query.float())
    np.testing.assert_allclose(S.knn(query, bank, 10).numpy(), -theirs.numpy(), atol=2e-6)


def test_knn_k_equal_to_the_bank_and_a_query_in_the_bank():
    bank, _ = blobs(20, width=3)
    assert torch.all(S.knn(bank[:5], bank, 1) > -1e-6)  # its own nearest neighbour
    assert S.knn(bank[:5], bank, 20).shape == (5,)
    with pytest.raises(ValueError, match="k must be <= 20"):
        S.knn(bank[:5], bank, 21)


# ----------------------------------------------------------------------------- clusters


@pytest.mark.parametrize("offset", [0.0, 500.0])
def test_cluster_score_k1_equals_naive(offset):
    train, labels = blobs(160, offset=offset)
    query, _ = blobs(25, seed=6, offset=offset)
    fit = S.fit_clusters(train, labels, 1)
    assert fit.centres.shape == (4, 6) and fit.num_clusters == 1
    ours = S.cluster_likelihood(query, fit)
    np.testing.assert_allclose(ours.numpy(), naive_cluster_score(train, labels, query), rtol=1e-9)


def test_cluster_score_k3_equals_naive_on_its_own_assignment():
    from latentboost_lab.clusters import ClusterIndex

    train, labels = blobs(240, width=5)
    query, _ = blobs(20, width=5, seed=7)
    fit = S.fit_clusters(train, labels, 3, seed=2)
    index = ClusterIndex(3, seed=2).fit(train, labels)  # the same k-means, the same seed
    assert fit.centres.shape == (12, 5)
    assert torch.equal(fit.cluster_class, index.cluster_class)
    expected = naive_cluster_score(train, index.assignments, query)
    np.testing.assert_allclose(S.cluster_likelihood(query, fit).numpy(), expected, rtol=1e-9)


def test_cluster_score_shared_variance_and_collapsed_cluster():
    train, labels = blobs(40)
    shared = S.fit_clusters(train, labels, 1, variance="shared")
    assert torch.allclose(shared.variances, shared.variances[0].expand(4))
    collapsed = torch.ones(6, 3, dtype=torch.float64)
    fit = S.fit_clusters(collapsed, torch.tensor([0, 0, 0, 1, 1, 1]))
    assert torch.isfinite(S.cluster_likelihood(collapsed + 1.0, fit)).all()


@PROPERTY
@given(
    scale=st.floats(1e-3, 1e3),
    shift=st.floats(-1e3, 1e3),
    seed=st.integers(0, 50),
)
def test_cluster_and_mahalanobis_scores_are_scale_and_translation_invariant(scale, shift, seed):
    train, labels = blobs(80, seed=seed)
    query, _ = blobs(10, seed=seed + 1)
    base_c = S.cluster_likelihood(query, S.fit_clusters(train, labels))
    base_m = S.mahalanobis(query, S.fit_gaussian(train, labels))
    moved = lambda x: x * scale + shift  # noqa: E731
    fit_c = S.fit_clusters(moved(train), labels)
    fit_m = S.fit_gaussian(moved(train), labels)
    torch.testing.assert_close(
        S.cluster_likelihood(moved(query), fit_c), base_c, rtol=1e-6, atol=1e-8
    )
    torch.testing.assert_close(S.mahalanobis(moved(query), fit_m), base_m, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: S.msp(torch.full((2, 3), float("nan"))), "logits contains NaN"),
        (lambda: S.energy(torch.zeros(0, 3)), "logits must hold at least one row"),
        (lambda: S.msp(torch.zeros(2, 3), temperature=0.0), "temperature"),
        (lambda: S.knn(torch.zeros(2, 3), torch.zeros(5, 4), 1), "bank's width 4"),
        (
            lambda: S.knn(torch.tensor([[float("nan"), 0.0]]), torch.ones(3, 2), 1),
            "latent contains NaN",
        ),
        (lambda: S.fit_gaussian(torch.zeros(4, 2), torch.tensor([0, 0, 2, 2])), "missing \\[1\\]"),
        (lambda: S.fit_gaussian(torch.zeros(4, 2), torch.tensor([0, 0, 1, 1])), "zero covariance"),
        (
            lambda: S.fit_clusters(torch.ones(4, 2), torch.tensor([0, 1, 0, 1]), variance="x"),
            "variance",
        ),
        (lambda: S.mahalanobis(torch.ones(2, 3), S.fit_gaussian(*blobs(20, width=2))), "width 2"),
        (
            lambda: S.cluster_likelihood(torch.ones(2, 3), S.fit_clusters(*blobs(20, width=2))),
            "width 2",
        ),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
