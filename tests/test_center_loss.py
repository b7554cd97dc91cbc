"""CenterLoss: value against the oracle, Wen et al.'s centre update, the parameter mode, checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _oracles import center_loss

from latentboost_lab.losses import CenterLoss


def batch(n=24, d=5, n_classes=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(n_classes, (n,), generator=g)
    return (
        torch.randn(n, n_classes, generator=g, dtype=dtype),
        torch.randn(n, d, generator=g, dtype=dtype),
        labels,
    )


def test_value_matches_the_oracle_and_centres_follow_wen_eq4():
    logits, latent, labels = batch()
    loss = CenterLoss(4, 5, lam=0.1, center_lr=0.5).double()
    loss.centers.copy_(torch.randn(4, 5, dtype=torch.float64))
    before = loss.centers.clone()
    value = loss(logits, latent, labels, 0)
    assert float(value) == pytest.approx(
        center_loss(logits, latent, labels, before, 0.1), rel=1e-12
    )
    for j in range(4):
        members = latent[labels == j]
        delta = (before[j] - members).sum(0) / (1 + len(members))
        torch.testing.assert_close(loss.centers[j], before[j] - 0.5 * delta)
    assert set(loss.parts) == {"ce", "center"}


def test_gradient_reaches_the_latent_not_the_buffer():
    logits, latent, labels = batch(dtype=torch.float32)
    loss = CenterLoss(4, 5, lam=0.2)
    assert list(loss.parameters()) == []
    z = latent.clone().requires_grad_()
    loss(logits, z, labels).backward()
    torch.testing.assert_close(z.grad, 0.2 * z.detach() / len(labels))  # centres start at zero


def test_eval_mode_does_not_move_the_centres():
    logits, latent, labels = batch(dtype=torch.float32)
    loss = CenterLoss(4, 5).eval()
    loss(logits, latent, labels)
    assert torch.equal(loss.centers, torch.zeros(4, 5))


def test_parameter_mode_is_optimised_with_the_network():
    logits, latent, labels = batch(dtype=torch.float32)
    loss = CenterLoss(4, 5, lam=1.0, center_lr=None)
    (centres,) = loss.parameters()
    loss(logits, latent, labels).backward()
    assert centres.grad is not None and centres.grad.abs().sum() > 0
    torch.testing.assert_close(loss.centers, torch.zeros(4, 5))  # only the optimiser moves them


def test_lambda_zero_is_cross_entropy_and_bf16_is_finite():
    logits, latent, labels = batch(dtype=torch.float32)
    assert torch.equal(
        CenterLoss(4, 5, lam=0.0)(logits, latent, labels), F.cross_entropy(logits, labels)
    )
    weight = torch.randn(5, 5, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = CenterLoss(4, 5)(logits, latent @ weight, labels)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(weight.grad).all()


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: CenterLoss(0, 5), "num_classes"),
        (lambda: CenterLoss(4, 5, lam=-1.0), "lam"),
        (lambda: CenterLoss(4, 5, center_lr=0.0), "center_lr"),
        (lambda: CenterLoss(4, 5, center_lr=1.5), "center_lr"),
    ],
)
def test_bad_constructor_arguments(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"latent": torch.randn(6, 4)}, "latent"),
        ({"latent": torch.randn(6)}, "latent"),
        ({"labels": torch.tensor([0.0, 1, 2, 3, 0, 1])}, "labels"),
        ({"labels": torch.tensor([0, 1, 2, 3, 0])}, "labels"),
        ({"labels": torch.tensor([0, 1, 2, 4, 0, 1])}, "labels"),
        ({"logits": torch.randn(5, 4)}, "logits"),
    ],
)
def test_bad_call_arguments(change, name):
    call = {
        "logits": torch.randn(6, 4),
        "latent": torch.randn(6, 5),
        "labels": torch.tensor([0, 1, 2, 3, 0, 1]),
    }
    call.update(change)
    with pytest.raises(ValueError, match=name):
        CenterLoss(4, 5)(call["logits"], call["latent"], call["labels"])
