"""Property-based tests (hypothesis) of the losses and the batch PCA.

Over random batch sizes, class counts, clusters per class (explicit ``cluster_ids``), latent
widths, scales from 1e-4 to 1e4, float32 and float64, and bf16 autocast: every loss is finite and
non-negative, has finite gradients, and keeps its invariances. Magnet and Latent Boost are
invariant under translation, rotation and uniform scaling of the latent (their variances scale
with it, and so do the floors); Center loss is equivariant (moving the centres with the latent
leaves it unchanged, scaling both scales its distance term by s²). Translation invariance also
means the gradient sums to zero over the batch, and scale invariance that ``s * grad(s z) =
grad(z)``: both are checked.

The fixed-example tests (float64 oracles, a few scales, edge cases) live in test_magnet_loss.py,
test_latent_boost_loss.py, test_center_loss.py and test_pca.py. Failing examples found here are
kept below as plain tests. ``derandomize=True``: CI sees the same examples on every run.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentboost_lab.losses import (
    CenterLoss,
    LatentBoostLoss,
    MagnetLoss,
    MagnetObjective,
    batch_pca,
)

pytestmark = pytest.mark.usefixtures("one_thread")

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# Relative tolerance of an invariance in each dtype: float32 keeps ~7 digits, and the losses
# sum a few dozen terms of different size.
RTOL = {torch.float32: 2e-4, torch.float64: 1e-9}


class Batch:
    """A random labelled batch: ``unit`` (float64, spread ~1) and ``latent = scale * unit`` in
    ``dtype``; clusters nested in classes; optionally with duplicated rows."""

    def __init__(self, n, d, n_classes, k, log_scale, dtype, seed, shape):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(n_classes, (n,), generator=g)
        self.cluster_ids = self.labels * k + torch.randint(k, (n,), generator=g)
        self.k = k
        centres = 3.0 * torch.randn(n_classes * k, d, generator=g, dtype=torch.float64)
        spread = {"gaussian": 1.0, "tight": 1e-3, "duplicates": 1.0}[shape]
        unit = centres[self.cluster_ids] + spread * torch.randn(
            n, d, generator=g, dtype=torch.float64
        )
        if shape == "duplicates":  # every sample of a cluster on one point
            first = {int(c): i for i, c in reversed(list(enumerate(self.cluster_ids)))}
            unit = unit[[first[int(c)] for c in self.cluster_ids]]
        # Away from the origin, like latents after a ReLU.
        self.unit = unit + 5.0 * torch.randn(d, generator=g, dtype=torch.float64)
        self.scale = 10.0**log_scale
        self.dtype = dtype
        self.latent = (self.scale * self.unit).to(dtype)
        self.n, self.d, self.n_classes = n, d, n_classes
        self.generator = g

    @property
    def ids(self):
        return self.cluster_ids if self.k > 1 else None

    def rotation(self) -> torch.Tensor:
        q, _ = torch.linalg.qr(torch.randn(self.d, self.d, generator=self.generator).double())
        return q

    def shift(self) -> torch.Tensor:
        return 10.0 * torch.randn(self.d, generator=self.generator, dtype=torch.float64)

    def logits(self) -> torch.Tensor:
        return torch.randn(self.n, self.n_classes, generator=self.generator).to(self.dtype)


@st.composite
def batches(draw, max_n=40, max_d=12):
    return Batch(
        n=draw(st.integers(2, max_n)),
        d=draw(st.integers(1, max_d)),
        n_classes=draw(st.integers(1, 5)),
        k=draw(st.integers(1, 3)),
        log_scale=draw(st.floats(-4.0, 4.0)),
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        seed=draw(st.integers(0, 2**31 - 1)),
        shape=draw(st.sampled_from(["gaussian", "gaussian", "tight", "duplicates"])),
    )


def value_and_grad(fn, latent):
    """``fn(latent)`` and its gradient with respect to ``latent``."""
    latent = latent.detach().clone().requires_grad_()
    value = fn(latent)
    (grad,) = torch.autograd.grad(value, latent)
    return value.detach(), grad


def assert_finite_non_negative(value, grad):
    assert torch.isfinite(value), value
    assert float(value) >= 0.0, value
    assert torch.isfinite(grad).all(), grad


def assert_close(a, b, dtype, scale=1.0):
    """``a`` equals ``b`` within the dtype's tolerance relative to ``scale`` (the size of the
    values the result is made of)."""
    rtol = RTOL[dtype]
    assert abs(float(a) - float(b)) <= rtol * (abs(float(b)) + scale), (float(a), float(b))


def assert_invariances(fn, batch, *, grad_scale_law=True):
    """``fn`` (latent -> scalar) is finite, non-negative, has a finite gradient, and is invariant
    under translation, rotation and uniform scaling of the latent; its gradient sums to 0 over
    the batch and scales as ``1/s``."""
    dtype = batch.dtype
    value, grad = value_and_grad(fn, batch.latent)
    assert_finite_non_negative(value, grad)
    # Scale: the loss of scale * unit equals the float64 loss of unit itself.
    reference, unit_grad = value_and_grad(fn, batch.unit)
    assert_close(value, reference, dtype)
    # Translation (by ~10x the cluster spread, on top of the batch's own offset) and rotation.
    moved = (batch.unit + batch.shift()) * batch.scale
    assert_close(fn(moved.to(dtype)), reference, dtype)
    rotated = (batch.unit @ batch.rotation()) * batch.scale
    assert_close(fn(rotated.to(dtype)), reference, dtype)
    # Translation invariance: the gradient sums to zero over the batch.
    grad64 = grad.double()
    size = grad64.abs().sum(dim=0) + torch.finfo(grad64.dtype).tiny
    assert (grad64.sum(dim=0).abs() <= 50 * RTOL[dtype] * size + 1e-300).all()
    if grad_scale_law:
        # Scale invariance: s * grad(s z) = grad(z).
        scaled = grad64 * batch.scale
        tol = 50 * RTOL[dtype] * (unit_grad.abs().max() + 1e-12)
        assert (scaled - unit_grad).abs().max() <= tol, (scaled - unit_grad).abs().max()


# ----------------------------------------------------------------------------- Magnet loss


@PROPERTY
@given(batch=batches(), margin=st.floats(0.0, 3.0))
def test_magnet_loss_is_finite_non_negative_and_invariant(batch, margin):
    loss = MagnetLoss(margin)
    assert_invariances(lambda z: loss(z, batch.labels, batch.ids), batch)
    per_sample, _ = loss.per_sample_losses(batch.latent, batch.labels, batch.ids)
    assert (per_sample >= 0).all()
    # A permutation of the batch permutes the per-sample losses.
    order = torch.randperm(batch.n, generator=batch.generator)
    ids = None if batch.ids is None else batch.ids[order]
    again, _ = loss.per_sample_losses(batch.latent[order], batch.labels[order], ids)
    torch.testing.assert_close(again, per_sample[order], rtol=RTOL[batch.dtype], atol=1e-5)


@PROPERTY
@given(batch=batches())
def test_magnet_objective_loss_path_is_the_magnet_loss(batch):
    """fit's wrapper with one cluster per class (no index needed) gives MagnetLoss's value."""
    objective = MagnetObjective(neighbourhood_sampling=False)
    logits = batch.logits()
    value, grad = value_and_grad(lambda z: objective(logits, z, batch.labels, 0), batch.latent)
    assert_finite_non_negative(value, grad)
    assert float(value) == float(MagnetLoss()(batch.latent, batch.labels))
    assert torch.isfinite(objective.parts["sigma2"]) and float(objective.parts["sigma2"]) > 0


# ----------------------------------------------------------------------------- Latent Boost


@PROPERTY
@given(
    batch=batches(),
    pca=st.sampled_from([None, 0.5, 0.95, 1.0]),
    variance=st.sampled_from(["per_cluster", "shared"]),
    alpha=st.floats(0.0, 2.0),
    beta=st.floats(0.0, 2.0),
    margin=st.floats(0.0, 2.0),
)
def test_latent_boost_distance_term_is_finite_non_negative_and_invariant(
    batch, pca, variance, alpha, beta, margin
):
    loss = LatentBoostLoss(
        lam=1.0, alpha=alpha, beta=beta, margin=margin, pca_variance=pca, variance=variance
    )
    logits = batch.logits()
    assert_invariances(lambda z: loss(logits, z, batch.labels, 3, cluster_ids=batch.ids), batch)
    assert 1 <= int(loss.parts["pca_k"]) <= batch.d
    for key in ("ce", "dist", "sigma2", "active"):
        assert torch.isfinite(torch.as_tensor(loss.parts[key])), key
    assert (loss.per_sample >= 0).all()


@PROPERTY
@given(batch=batches(), lam=st.floats(0.0, 1.0), pca=st.sampled_from([None, 0.95]))
def test_latent_boost_total_is_the_weighted_sum_of_finite_non_negative_parts(batch, lam, pca):
    logits = batch.logits().requires_grad_()
    loss = LatentBoostLoss(lam=lam, pca_variance=pca)
    latent = batch.latent.clone().requires_grad_()
    value = loss(logits, latent, batch.labels, 0, cluster_ids=batch.ids)
    value.backward()
    value = value.detach()
    assert torch.isfinite(value) and float(value) >= 0
    assert torch.isfinite(latent.grad).all() and torch.isfinite(logits.grad).all()
    ce, dist = float(loss.parts["ce"]), float(loss.parts["dist"])
    assert ce >= 0 and dist >= 0
    assert float(value) == pytest.approx(lam * dist + (1 - lam) * ce, rel=RTOL[batch.dtype])


# ----------------------------------------------------------------------------- Center loss


@PROPERTY
@given(batch=batches(), lam=st.floats(0.0, 1.0))
def test_center_loss_is_finite_non_negative_and_equivariant(batch, lam):
    num_classes = batch.n_classes
    loss = CenterLoss(num_classes, batch.d, lam=lam).to(batch.dtype).eval()
    unit_centres = torch.randn(num_classes, batch.d, generator=batch.generator).double()
    logits = batch.logits()

    def centre_term(latent, centres):
        loss.centers.copy_(centres.to(batch.dtype))
        value, grad = value_and_grad(
            lambda z: loss(logits, z, batch.labels), latent.to(batch.dtype)
        )
        assert_finite_non_negative(value, grad)
        assert float(loss.parts["ce"]) >= 0
        return float(loss.parts["center"])

    reference = centre_term(batch.unit, unit_centres)
    s = batch.scale
    assert_close(centre_term(s * batch.unit, s * unit_centres), s * s * reference, batch.dtype)
    shift = batch.shift()
    moved = centre_term(s * (batch.unit + shift), s * (unit_centres + shift))
    assert_close(moved, s * s * reference, batch.dtype)
    rotation = batch.rotation()
    turned = centre_term(s * batch.unit @ rotation, s * unit_centres @ rotation)
    assert_close(turned, s * s * reference, batch.dtype)


@PROPERTY
@given(batch=batches())
def test_center_loss_update_keeps_the_centres_finite(batch):
    loss = CenterLoss(batch.n_classes, batch.d, lam=0.5, center_lr=0.5).to(batch.dtype).train()
    for _ in range(3):
        loss(batch.logits(), batch.latent, batch.labels)
    assert torch.isfinite(loss.centers).all()
    # Wen et al.'s update moves a class's centre towards its members, never past them.
    for c in batch.labels.unique():
        members = batch.latent[batch.labels == c].double()
        lo, hi = members.min(0).values, members.max(0).values
        margin = RTOL[batch.dtype] * (members.abs().max() + 1.0)
        centre = loss.centers[c].double()
        assert (centre >= torch.minimum(lo, torch.zeros_like(lo)) - margin).all(), c
        assert (centre <= torch.maximum(hi, torch.zeros_like(hi)) + margin).all(), c


# ----------------------------------------------------------------------------- batch PCA


def pairwise(x):
    return (x[:, None, :] - x[None, :, :]).pow(2).sum(-1)


@PROPERTY
@given(batch=batches(max_n=30, max_d=30), threshold=st.floats(0.05, 1.0))
def test_batch_pca_keeps_distances_and_is_invariant(batch, threshold):
    result = batch_pca(batch.latent, threshold)
    r = min(batch.n, batch.d)
    k = int(result.k)
    assert result.projected.shape == (batch.n, r) and 1 <= k <= r
    assert torch.isfinite(result.projected).all()
    assert (result.projected[:, k:] == 0).all()
    ratio = result.explained_variance_ratio
    assert (ratio >= 0).all() and (ratio[:-1] >= ratio[1:]).all()
    assert float(ratio.sum()) == pytest.approx(1.0, abs=1e-6) or float(ratio.sum()) == 0.0
    # A projection never lengthens a distance; with every component kept it keeps them. The
    # tolerance: the dtype's rounding of coordinates of size |z| (centring, the basis).
    magnitude = float(pairwise(batch.unit).max() + batch.unit.abs().max() ** 2)
    tol = 10 * RTOL[batch.dtype] * batch.scale**2 * magnitude
    original, projected = pairwise(batch.latent.double()), pairwise(result.projected.double())
    assert (projected <= original + tol).all()
    full = batch_pca(batch.latent, 1.0)
    torch.testing.assert_close(pairwise(full.projected.double()), original, rtol=0, atol=tol)
    # Translation, rotation and scale: the same k and the same distances (times s^2).
    reference = batch_pca(batch.unit, threshold)
    cumulative = reference.explained_variance_ratio.cumsum(0)
    for moved in (batch.unit + batch.shift(), batch.unit @ batch.rotation()):
        other = batch_pca((batch.scale * moved).to(batch.dtype), threshold)
        if int(other.k) != int(reference.k):
            # Only where a cumulative ratio ties the threshold, or where all points coincide
            # (the "components" of rounding noise are then arbitrary, the distances ~0).
            assert float(cumulative[-1]) == 0.0 or (cumulative - threshold).abs().min() < 1e-5
        torch.testing.assert_close(
            pairwise(other.projected.double()),
            batch.scale**2 * pairwise(reference.projected),
            rtol=0,
            atol=tol,
        ) if int(other.k) == int(reference.k) or float(cumulative[-1]) == 0.0 else None
    # The gradient through the (detached) basis is finite.
    latent = batch.latent.clone().requires_grad_()
    batch_pca(latent, threshold).projected.pow(2).sum().backward()
    assert torch.isfinite(latent.grad).all()


# ----------------------------------------------------------------------------- bf16 autocast


@PROPERTY
@given(
    batch=batches(max_n=32, max_d=16),
    which=st.sampled_from(["magnet", "latentboost_pca", "latentboost", "center"]),
)
def test_losses_under_bf16_autocast_are_finite_and_equal_their_float32_value(batch, which):
    """Under bf16 autocast the losses compute in float32 on the bf16 latent: finite,
    non-negative, finite gradients, and the same value as on that latent upcast outside
    autocast."""
    d = batch.d
    weight = (torch.eye(d) + 0.1 * torch.randn(d, d, generator=batch.generator)).requires_grad_()
    head = torch.randn(d, batch.n_classes, generator=batch.generator).requires_grad_()
    x = batch.latent.float()
    if which == "magnet":
        loss = MagnetLoss()

        def call(logits, z):
            return loss(z, batch.labels, batch.ids)

    elif which == "center":
        loss = CenterLoss(batch.n_classes, d, lam=0.1, center_lr=None)

        def call(logits, z):
            return loss(logits, z, batch.labels)

    else:
        loss = LatentBoostLoss(pca_variance=0.95 if which == "latentboost_pca" else None)

        def call(logits, z):
            return loss(logits, z, batch.labels, 0, cluster_ids=batch.ids)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = x @ weight
        logits = (z @ head) / (1.0 + z.detach().abs().max())  # keep the logits O(1)
        assert z.dtype == torch.bfloat16
        value = call(logits, z)
    assert value.dtype == torch.float32
    value.backward()
    value = value.detach()
    assert torch.isfinite(value) and float(value) >= 0
    assert torch.isfinite(weight.grad).all()
    assert which == "magnet" or torch.isfinite(head.grad).all()  # Magnet ignores the logits
    outside = call(logits.detach().float(), z.detach().float())
    assert float(value) == pytest.approx(float(outside.detach()), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("log_scale", [-4.0, 4.0])
def test_scales_at_the_ends_of_the_range_in_float32(log_scale):
    """The extremes the strategies reach, as plain examples: 1e-4 and 1e4 times a batch of
    tight clusters far from the origin (the float32 worst case for distances)."""
    batch = Batch(48, 16, 4, 2, log_scale, torch.float32, seed=1, shape="tight")
    loss = LatentBoostLoss(lam=1.0)
    logits = batch.logits()
    assert_invariances(lambda z: loss(logits, z, batch.labels, 0, cluster_ids=batch.ids), batch)
    assert math.isfinite(float(MagnetLoss()(batch.latent, batch.labels, batch.ids)))
