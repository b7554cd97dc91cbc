"""LatentBoostLoss against a naive float64 oracle, its reduction to MagnetLoss and to
cross-entropy, invariances, recorded parts and argument checks."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from _oracles import cross_entropy, magnet_style_loss, pca_project, random_batch, sklearn_count
from hypothesis import given, settings
from hypothesis import strategies as st

from latentboost_lab import schedules
from latentboost_lab.losses import LatentBoostLoss, MagnetLoss
from latentboost_lab.losses.pca import principal_basis


def logits_for(labels, n_classes, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(
        labels.shape[0], max(n_classes, int(labels.max()) + 1), generator=g, dtype=dtype
    )


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 40),
    d=st.integers(2, 10),
    n_classes=st.integers(1, 5),
    k=st.integers(1, 3),
    seed=st.integers(0, 100_000),
    variance=st.sampled_from(["shared", "per_cluster"]),
    pca=st.sampled_from([None, 0.8, 0.95]),
    alpha=st.floats(0.0, 2.0),
    beta=st.floats(0.0, 2.0),
    lam=st.floats(0.0, 1.0),
)
def test_matches_the_float64_oracle(n, d, n_classes, k, seed, variance, pca, alpha, beta, lam):
    latent, labels, cluster_ids = random_batch(n, d, n_classes, k, seed)
    ids = cluster_ids if k > 1 else None
    logits = logits_for(labels, n_classes, seed)
    loss = LatentBoostLoss(lam=lam, alpha=alpha, beta=beta, pca_variance=pca, variance=variance)
    value = loss(logits, latent, labels, 0, cluster_ids=ids)
    dist, per_sample = magnet_style_loss(
        latent.numpy(), labels, ids, alpha=alpha, beta=beta, variance=variance, pca=pca
    )
    ce = cross_entropy(logits.numpy(), labels)
    assert float(loss.parts["dist"]) == pytest.approx(dist, rel=1e-7, abs=1e-9)
    torch.testing.assert_close(
        loss.per_sample, torch.tensor(per_sample, dtype=torch.float64), rtol=1e-7, atol=1e-9
    )
    assert float(value) == pytest.approx(lam * dist + (1 - lam) * ce, rel=1e-7, abs=1e-9)
    if pca is not None:
        assert int(loss.parts["pca_k"]) == pca_project(latent.numpy(), pca)[1]


@pytest.mark.parametrize("variance", ["shared", "per_cluster"])
@pytest.mark.parametrize("pca", [None, 0.95])
def test_float32_at_the_default_epoch_schedule_matches_the_oracle(variance, pca):
    latent, labels, cluster_ids = random_batch(128, 24, 10, 2, seed=3)
    logits = logits_for(labels, 10)
    loss = LatentBoostLoss(variance=variance, pca_variance=pca)
    loss(logits.float(), latent.float(), labels, 12, cluster_ids=cluster_ids)
    alpha, beta = schedules.alpha_schedule(12), schedules.beta_schedule(12)
    assert loss.parts["alpha"] == alpha and loss.parts["beta"] == beta
    expected, _ = magnet_style_loss(
        latent.numpy(), labels, cluster_ids, alpha=alpha, beta=beta, variance=variance, pca=pca
    )
    assert float(loss.parts["dist"]) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("k", [1, 3])
def test_reduces_to_magnet_loss_exactly(k):
    latent, labels, cluster_ids = random_batch(64, 16, 5, k, seed=4, dtype=torch.float32)
    ids = cluster_ids if k > 1 else None
    loss = LatentBoostLoss(
        lam=1.0, alpha=1.0, beta=1.0, variance="shared", pca_variance=None, margin=0.7
    )
    value = loss(logits_for(labels, 5, dtype=torch.float32), latent, labels, 3, cluster_ids=ids)
    assert torch.equal(value, MagnetLoss(margin=0.7)(latent, labels, ids))


def test_lambda_zero_is_cross_entropy_and_lambda_one_is_the_distance_term():
    latent, labels, _ = random_batch(50, 8, 4, 1, seed=5, dtype=torch.float32)
    logits = logits_for(labels, 4, dtype=torch.float32)
    at_zero = LatentBoostLoss(lam=0.0)
    assert torch.equal(at_zero(logits, latent, labels, 0), F.cross_entropy(logits, labels))
    at_one = LatentBoostLoss(lam=1.0)
    assert torch.equal(at_one(logits, latent, labels, 0), at_one.parts["dist"])


@pytest.mark.parametrize("variance", ["shared", "per_cluster"])
@pytest.mark.parametrize("k", [1, 2])
def test_gradcheck_float64_without_pca(variance, k):
    latent, labels, cluster_ids = random_batch(10, 3, 3, k, seed=12)
    ids = cluster_ids if k > 1 else None
    logits = logits_for(labels, 3).requires_grad_()
    latent.requires_grad_()
    loss = LatentBoostLoss(lam=0.6, alpha=0.8, beta=1.3, pca_variance=None, variance=variance)
    assert torch.autograd.gradcheck(
        lambda lg, z: loss(lg, z, labels, 0, cluster_ids=ids), (logits, latent)
    )


def test_with_pca_the_gradient_is_that_of_a_fixed_basis():
    # The basis is detached by design, so finite differences (which move it) do not apply; the
    # gradient must be that of the same loss with the basis frozen at its current value.
    latent, labels, cluster_ids = random_batch(12, 4, 3, 1, seed=13)
    logits = logits_for(labels, 3)
    loss = LatentBoostLoss(lam=1.0, alpha=1.0, beta=1.0, pca_variance=0.9)
    z = latent.clone().requires_grad_()
    loss(logits, z, labels, 0).backward()
    k = int(loss.parts["pca_k"])
    basis = principal_basis(latent - latent.mean(0))[0][:, :k]
    frozen = LatentBoostLoss(lam=1.0, alpha=1.0, beta=1.0, pca_variance=None)
    reference = latent.clone().requires_grad_()
    frozen(logits, (reference - reference.mean(0)) @ basis, labels, 0).backward()
    torch.testing.assert_close(z.grad, reference.grad)
    assert torch.autograd.gradcheck(
        lambda r: frozen(logits, (r - r.mean(0)) @ basis, labels, 0),
        (latent.clone().requires_grad_(),),
    )


@pytest.mark.parametrize("scale", [1e-4, 1e-2, 1e2, 1e4])
@pytest.mark.parametrize("variance", ["shared", "per_cluster"])
def test_uniform_scaling_changes_nothing_float32(scale, variance):
    latent, labels, cluster_ids = random_batch(128, 32, 8, 2, seed=14, dtype=torch.float32)
    logits = logits_for(labels, 8, dtype=torch.float32)
    loss = LatentBoostLoss(lam=1.0, variance=variance)
    reference = float(loss(logits, latent, labels, 5, cluster_ids=cluster_ids))
    scaled = (latent * scale).requires_grad_()
    value = loss(logits, scaled, labels, 5, cluster_ids=cluster_ids)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(scaled.grad).all()
    assert float(value.detach()) == pytest.approx(reference, rel=1e-4)


def test_translation_and_rotation_change_nothing_with_pca():
    latent, labels, cluster_ids = random_batch(96, 16, 6, 1, seed=15, dtype=torch.float32)
    logits = logits_for(labels, 6, dtype=torch.float32)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(2)))
    loss = LatentBoostLoss(lam=1.0)
    reference = float(loss(logits, latent, labels, 2))
    assert float(loss(logits, latent + 20.0, labels, 2)) == pytest.approx(reference, rel=1e-4)
    assert float(loss(logits, latent @ rotation, labels, 2)) == pytest.approx(reference, rel=1e-4)


@pytest.mark.parametrize("pca", [None, 0.95])
def test_finite_under_bf16_autocast(pca):
    latent, labels, cluster_ids = random_batch(64, 16, 4, 2, seed=16, dtype=torch.float32)
    weight = torch.randn(16, 16, requires_grad=True)
    head = torch.randn(16, 4, requires_grad=True)
    loss = LatentBoostLoss(pca_variance=pca)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = latent @ weight
        value = loss(z @ head, z, labels, 0, cluster_ids=cluster_ids)
    value.backward()
    assert value.dtype == torch.float32
    assert (
        torch.isfinite(value)
        and torch.isfinite(weight.grad).all()
        and torch.isfinite(head.grad).all()
    )


def test_coinciding_points_and_single_class_batch():
    logits = torch.randn(12, 3)
    latent = torch.full((12, 4), 2.0, requires_grad=True)
    labels = torch.arange(12) % 3
    loss = LatentBoostLoss()
    value = loss(logits, latent, labels, 0)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(latent.grad).all()
    single = loss(logits, torch.randn(12, 4), torch.zeros(12, dtype=torch.long), 0)
    assert float(loss.parts["dist"]) == 0.0
    assert float(single) == pytest.approx(
        0.25 * float(F.cross_entropy(logits, torch.zeros(12, dtype=torch.long)))
    )


def test_a_cluster_with_one_member_uses_the_shared_variance():
    latent, labels, _ = random_batch(30, 4, 3, 1, seed=17)
    labels[0] = 3
    loss = LatentBoostLoss(lam=1.0, alpha=1.0, beta=1.0, pca_variance=None)
    loss(logits_for(labels, 4), latent, labels, 0)
    expected, _ = magnet_style_loss(latent.numpy(), labels, variance="per_cluster")
    assert float(loss.parts["dist"]) == pytest.approx(expected, rel=1e-9)


def test_parts_are_recorded():
    latent, labels, _ = random_batch(256, 128, 10, 1, seed=18, dtype=torch.float32)
    loss = LatentBoostLoss()
    loss(logits_for(labels, 10, dtype=torch.float32), latent, labels, 4)
    assert set(loss.parts) == {"ce", "dist", "lam", "alpha", "beta", "pca_k", "sigma2", "active"}
    for key in ("ce", "dist", "pca_k", "sigma2", "active"):
        assert loss.parts[key].dim() == 0 and not loss.parts[key].requires_grad
    assert loss.parts["lam"] == 0.75 and loss.parts["alpha"] == pytest.approx(
        schedules.alpha_schedule(4)
    )
    assert int(loss.parts["pca_k"]) == sklearn_count(latent.double(), 0.95)
    assert 0.0 <= float(loss.parts["active"]) <= 1.0
    off = LatentBoostLoss(pca_variance=None)
    off(logits_for(labels, 10, dtype=torch.float32), latent, labels, 4)
    assert float(off.parts["pca_k"]) == 128.0


def test_lambda_schedule_and_paper_values():
    latent, labels, _ = random_batch(40, 6, 4, 1, seed=19, dtype=torch.float32)
    logits = logits_for(labels, 4, dtype=torch.float32)
    loss = LatentBoostLoss(lam=partial(schedules.linear_warmup, start=0.0, end=0.5, epochs=4))
    loss(logits, latent, labels, 2)
    assert loss.parts["lam"] == pytest.approx(0.25)
    assert LatentBoostLoss.for_dataset("cifar100").lam == 0.5
    assert LatentBoostLoss.for_dataset("fashion_mnist").lam == 0.75
    bad = LatentBoostLoss(lam=partial(schedules.constant, value=1.5))
    with pytest.raises(ValueError, match="lam"):
        bad(logits, latent, labels, 0)


def test_owned_cluster_index_gives_cluster_ids_from_sample_ids():
    latent, labels, _ = random_batch(80, 6, 4, 2, seed=20, dtype=torch.float32)
    loss = LatentBoostLoss(num_clusters=2, lam=1.0)
    assert loss.wants_sample_ids
    assert not LatentBoostLoss().wants_sample_ids
    loss.index.fit(latent, labels)
    ids = torch.arange(0, 80, 2)
    logits = logits_for(labels[ids], 4, dtype=torch.float32)
    value = loss(logits, latent[ids], labels[ids], 0, sample_ids=ids)
    explicit = LatentBoostLoss(lam=1.0)(
        logits, latent[ids], labels[ids], 0, cluster_ids=loss.index.cluster_ids(ids)
    )
    assert torch.equal(value, explicit)
    with pytest.raises(ValueError, match="sample_ids"):
        loss(logits, latent[ids], labels[ids], 0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lam": 1.5}, "lam"),
        ({"lam": -0.1}, "lam"),
        ({"margin": -1.0}, "margin"),
        ({"pca_variance": 0.0}, "pca_variance"),
        ({"pca_variance": 1.2}, "pca_variance"),
        ({"variance": "diagonal"}, "variance"),
        ({"alpha": -1.0}, "alpha"),
        ({"beta": float("nan")}, "beta"),
        ({"num_clusters": 0}, "num_clusters"),
        ({"variance_floor": -1e-3}, "variance_floor"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LatentBoostLoss(**kwargs)


@pytest.mark.parametrize(
    ("change", "name", "error"),
    [
        ({"latent": torch.randn(6)}, "latent", ValueError),
        ({"latent": torch.tensor([[float("nan"), 0.0]] * 6)}, "latent", ValueError),
        ({"labels": torch.tensor([0, 0, 1, 1, 2])}, "labels", ValueError),
        ({"labels": torch.tensor([0.0, 0, 1, 1, 2, 2])}, "labels", ValueError),
        ({"labels": torch.tensor([0, 0, 1, 1, 2, 3])}, "labels", ValueError),  # no logit for 3
        ({"logits": torch.randn(6)}, "logits", ValueError),
        ({"logits": torch.randn(5, 3)}, "logits", ValueError),
        ({"epoch": -1}, "epoch", ValueError),
        ({"epoch": 1.0}, "epoch", TypeError),
        ({"cluster_ids": torch.zeros(6, dtype=torch.long)}, "cluster_ids", ValueError),
    ],
)
def test_bad_call_arguments_name_the_argument(change, name, error):
    call = {
        "logits": torch.randn(6, 3),
        "latent": torch.randn(6, 2),
        "labels": torch.tensor([0, 0, 1, 1, 2, 2]),
        "epoch": 0,
        "cluster_ids": None,
    }
    call.update(change)
    with pytest.raises(error, match=name):
        LatentBoostLoss()(
            call["logits"],
            call["latent"],
            call["labels"],
            call["epoch"],
            cluster_ids=call["cluster_ids"],
        )
