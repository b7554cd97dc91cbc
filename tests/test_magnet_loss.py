"""MagnetLoss against a naive float64 oracle, its invariances, edges and argument checks, and the
MagnetObjective wrapper used by fit."""

from __future__ import annotations

import math

import pytest
import torch
from _oracles import magnet_style_loss, random_batch
from hypothesis import given, settings
from hypothesis import strategies as st

from latentboost_lab.losses import MagnetLoss, MagnetObjective

batches = st.fixed_dictionaries(
    {
        "n": st.integers(2, 48),
        "d": st.integers(1, 10),
        "n_classes": st.integers(1, 6),
        "k": st.integers(1, 3),
        "seed": st.integers(0, 100_000),
    }
)


@settings(max_examples=60, deadline=None)
@given(batch=batches, margin=st.floats(0.0, 3.0))
def test_matches_the_float64_oracle(batch, margin):
    latent, labels, cluster_ids = random_batch(**batch)
    ids = cluster_ids if batch["k"] > 1 else None
    expected, per_sample = magnet_style_loss(latent.numpy(), labels, ids, margin=margin)
    loss = MagnetLoss(margin)
    assert float(loss(latent, labels, ids)) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    losses, _ = loss.per_sample_losses(latent, labels, ids)
    torch.testing.assert_close(losses, torch.tensor(per_sample, dtype=torch.float64))


@pytest.mark.parametrize("k", [1, 3])
def test_float32_matches_the_oracle(k):
    latent, labels, cluster_ids = random_batch(128, 32, 10, k, seed=k)
    ids = cluster_ids if k > 1 else None
    expected, _ = magnet_style_loss(latent.numpy(), labels, ids)
    assert float(MagnetLoss()(latent.float(), labels, ids)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("k", [1, 2])
def test_gradcheck_float64(k):
    latent, labels, cluster_ids = random_batch(14, 3, 3, k, seed=11)
    ids = cluster_ids if k > 1 else None
    latent.requires_grad_()
    assert torch.autograd.gradcheck(lambda z: MagnetLoss(0.5)(z, labels, ids), (latent,))


def test_cluster_ids_equal_to_labels_change_nothing():
    latent, labels, _ = random_batch(40, 5, 4, 1, seed=0)
    loss = MagnetLoss()
    assert torch.equal(loss(latent, labels), loss(latent, labels, labels.clone()))
    assert torch.equal(
        loss(latent, labels), loss(latent, labels, labels * 7 + 3)
    )  # ids are names only


@pytest.mark.parametrize("scale", [1e-4, 1e-2, 1.0, 1e2, 1e4])
@pytest.mark.parametrize("k", [1, 2])
def test_uniform_scaling_changes_nothing_float32(scale, k):
    latent, labels, cluster_ids = random_batch(96, 16, 6, k, seed=5, dtype=torch.float32)
    ids = cluster_ids if k > 1 else None
    reference = MagnetLoss()(latent, labels, ids)
    scaled = (latent * scale).requires_grad_()
    value = MagnetLoss()(scaled, labels, ids)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(scaled.grad).all()
    assert float(value.detach()) == pytest.approx(float(reference), rel=1e-4)


def test_translation_and_rotation_change_nothing():
    latent, labels, cluster_ids = random_batch(80, 12, 5, 2, seed=6, dtype=torch.float32)
    rotation, _ = torch.linalg.qr(torch.randn(12, 12, generator=torch.Generator().manual_seed(1)))
    reference = float(MagnetLoss()(latent, labels, cluster_ids))
    assert float(MagnetLoss()(latent + 50.0, labels, cluster_ids)) == pytest.approx(
        reference, rel=1e-4
    )
    assert float(MagnetLoss()(latent @ rotation, labels, cluster_ids)) == pytest.approx(
        reference, rel=1e-4
    )


def test_finite_under_bf16_autocast_and_close_to_float32():
    latent, labels, cluster_ids = random_batch(64, 16, 4, 2, seed=7, dtype=torch.float32)
    weight = torch.randn(16, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        projected = latent @ weight  # bf16 under autocast
        assert projected.dtype == torch.bfloat16
        value = MagnetLoss()(projected, labels, cluster_ids)
    assert value.dtype == torch.float32
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(weight.grad).all()
    reference = MagnetLoss()(projected.float(), labels, cluster_ids)
    assert float(value.detach()) == pytest.approx(float(reference.detach()), rel=1e-6)


def test_coinciding_points_are_finite_with_finite_gradient():
    latent = torch.ones(12, 5, requires_grad=True)
    labels = torch.arange(12) % 3
    value = MagnetLoss()(latent, labels)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(latent.grad).all()
    # d = 0 everywhere: l_i = m + log(number of impostor clusters) = 1 + log 2
    assert float(value.detach()) == pytest.approx(1.0 + math.log(2.0), rel=1e-6)


def test_single_class_batch_gives_zero_not_nan():
    latent = torch.randn(10, 4, requires_grad=True)
    value = MagnetLoss()(latent, torch.full((10,), 3))
    value.backward()
    assert float(value.detach()) == 0.0
    assert torch.equal(latent.grad, torch.zeros_like(latent))


def test_a_class_with_one_sample_and_a_batch_of_one():
    latent, labels, _ = random_batch(20, 4, 3, 1, seed=8)
    labels[0] = 9  # a class of its own: its distance to its own mean is 0
    expected, per_sample = magnet_style_loss(latent.numpy(), labels)
    assert float(MagnetLoss()(latent, labels)) == pytest.approx(expected, rel=1e-9)
    assert float(MagnetLoss()(latent[:1], labels[:1])) == 0.0


def test_only_impostor_clusters_enter_the_denominator():
    # Two clusters of class 0 far apart and one of class 1 in the middle: if the sample's own
    # class's other cluster entered the denominator, the loss would change with its position.
    g = torch.Generator().manual_seed(0)
    base = torch.randn(30, 2, generator=g, dtype=torch.float64) * 0.1
    labels = torch.tensor([0] * 10 + [0] * 10 + [1] * 10)
    clusters = torch.tensor([0] * 10 + [1] * 10 + [2] * 10)
    near = base + torch.tensor(
        [[0.0, 0.0]] * 10 + [[1.0, 0.0]] * 10 + [[0.5, 1.0]] * 10, dtype=torch.float64
    )
    expected, _ = magnet_style_loss(near.numpy(), labels, clusters)
    assert float(MagnetLoss()(near, labels, clusters)) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"latent": torch.randn(6)}, "latent"),
        ({"latent": torch.tensor([[float("nan"), 0.0]] * 6)}, "latent"),
        ({"labels": torch.zeros(5, dtype=torch.long)}, "labels"),
        ({"labels": torch.zeros(6)}, "labels"),
        ({"labels": -torch.ones(6, dtype=torch.long)}, "labels"),
        ({"cluster_ids": torch.zeros(4, dtype=torch.long)}, "cluster_ids"),
        ({"cluster_ids": torch.zeros(6, dtype=torch.long)}, "cluster_ids"),  # mixes two classes
        ({"latent": torch.randint(0, 3, (6, 2))}, "latent"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    call = {
        "latent": torch.randn(6, 2),
        "labels": torch.tensor([0, 0, 0, 1, 1, 1]),
        "cluster_ids": None,
    }
    call.update(kwargs)
    with pytest.raises(ValueError, match=name):
        MagnetLoss()(call["latent"], call["labels"], call["cluster_ids"])


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="margin"):
        MagnetLoss(margin=-0.1)
    with pytest.raises(ValueError, match="eps"):
        MagnetLoss(eps=-1.0)
    with pytest.raises(ValueError, match="num_clusters"):
        MagnetObjective(num_clusters=0)


def test_objective_follows_the_fit_protocol():
    latent, labels, cluster_ids = random_batch(60, 8, 4, 2, seed=9, dtype=torch.float32)
    objective = MagnetObjective(num_clusters=2, seed=0)
    assert objective.wants_sample_ids and objective.sampler is not None
    objective.index.fit(latent, labels)
    sample_ids = torch.randperm(60)[:32]
    logits = torch.randn(32, 4)
    value = objective(logits, latent[sample_ids], labels[sample_ids], 0, sample_ids=sample_ids)
    ids = objective.index.cluster_ids(sample_ids)
    assert torch.equal(value, MagnetLoss()(latent[sample_ids], labels[sample_ids], ids))
    assert set(objective.parts) == {"dist", "sigma2", "active"}
    assert objective.per_sample.shape == (32,) and not objective.per_sample.requires_grad
    with pytest.raises(ValueError, match="sample_ids"):
        objective(logits, latent[sample_ids], labels[sample_ids], 0)
    scores = objective.predict(latent)
    torch.testing.assert_close(scores.sum(1), torch.ones(60))
    assert (scores.argmax(1) == labels).float().mean() > 0.9


def test_objective_without_sampler_and_before_refresh():
    objective = MagnetObjective(neighbourhood_sampling=False)
    assert objective.sampler is None  # declared: no sampler of its own
    with pytest.raises(RuntimeError, match="on_epoch_start"):
        objective.predict(torch.randn(3, 2))
