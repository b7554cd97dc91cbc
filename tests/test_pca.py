"""Batch PCA: scikit-learn's component count, the projection, and the detached basis."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _oracles import pca_project, sklearn_count
from hypothesis import given, settings
from hypothesis import strategies as st

from latentboost_lab.losses.pca import batch_pca, n_components_for, principal_basis


def low_rank_batch(n, d, rank, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0, -2, rank, dtype=dtype)
    signal = (torch.randn(n, rank, generator=g, dtype=dtype) * scales) @ torch.randn(
        rank, d, generator=g, dtype=dtype
    )
    return signal + 1e-3 * torch.randn(n, d, generator=g, dtype=dtype)


def pairwise(x):
    # Direct differences: cdist's matmul shortcut leaves ~1e-7 noise on the diagonal.
    return (x[:, None, :] - x[None, :, :]).pow(2).sum(-1)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 60),
    d=st.integers(2, 40),
    threshold=st.floats(0.05, 0.999),
    seed=st.integers(0, 10_000),
)
def test_k_equals_scikit_learn_count(n, d, threshold, seed):
    z = low_rank_batch(n, d, min(n, d), seed)
    assert int(batch_pca(z, threshold).k) == sklearn_count(z, threshold)


def test_k_equals_scikit_learn_on_a_latent_like_batch_float32():
    z = low_rank_batch(256, 128, 60, seed=3, dtype=torch.float32)
    for threshold in (0.5, 0.8, 0.9, 0.95, 0.99):
        assert int(batch_pca(z, threshold).k) == sklearn_count(z.double(), threshold)


@pytest.mark.parametrize(("n", "d"), [(40, 12), (12, 40)])  # scatter-matrix and Gram paths
def test_projection_preserves_the_oracle_distances(n, d):
    z = low_rank_batch(n, d, 8, seed=1)
    result = batch_pca(z, 0.9)
    expected, k = pca_project(z.numpy(), 0.9)
    assert int(result.k) == k
    assert torch.all(result.projected[:, k:] == 0)
    torch.testing.assert_close(pairwise(result.projected), pairwise(torch.from_numpy(expected)))
    torch.testing.assert_close(result.projected[:, :k].abs(), torch.from_numpy(expected).abs())


def test_gram_and_scatter_paths_agree():
    z = low_rank_batch(30, 30, 10, seed=2)
    basis_scatter, var_scatter = principal_basis(z - z.mean(0))
    # Same matrix, transposed roles: compare through the variances and projected distances.
    wide = torch.cat([z, torch.zeros(30, 5, dtype=z.dtype)], dim=1)  # d > n: Gram path
    basis_gram, var_gram = principal_basis(wide - wide.mean(0))
    torch.testing.assert_close(var_gram[:29], var_scatter[:29])
    proj_scatter = (z - z.mean(0)) @ basis_scatter
    proj_gram = (wide - wide.mean(0)) @ basis_gram
    torch.testing.assert_close(pairwise(proj_gram[:, :10]), pairwise(proj_scatter[:, :10]))


def test_threshold_one_keeps_every_component_and_rule_matches_searchsorted():
    z = low_rank_batch(20, 6, 6, seed=4)
    assert int(batch_pca(z, 1.0).k) == 6
    ratio = torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=torch.float64)  # exact in binary
    assert int(n_components_for(ratio, 0.75)) == 3  # a tie: scikit-learn's rule takes one more
    assert int(n_components_for(ratio, 0.74)) == 2
    assert int(n_components_for(ratio, 0.9)) == 4
    assert int(n_components_for(ratio, 0.3)) == 1


def test_the_basis_is_detached_gradient_goes_through_centred_latents():
    z = low_rank_batch(25, 8, 8, seed=5).requires_grad_()
    weights = torch.randn(25, 8, dtype=z.dtype)
    (batch_pca(z, 1.0).projected * weights).sum().backward()
    basis, _ = principal_basis((z - z.mean(0)).detach())
    fixed = z.detach().clone().requires_grad_()
    ((fixed - fixed.mean(0)) @ basis * weights).sum().backward()
    torch.testing.assert_close(z.grad, fixed.grad)


def test_coinciding_points_give_zeros_and_no_nan():
    z = torch.full((10, 4), 3.0, requires_grad=True)
    result = batch_pca(z, 0.95)
    assert torch.all(result.projected == 0)
    assert torch.isfinite(result.explained_variance_ratio).all()
    result.projected.sum().backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5, float("nan")])
def test_bad_threshold_names_the_argument(threshold):
    with pytest.raises(ValueError, match="threshold"):
        batch_pca(torch.randn(5, 3), threshold)


def test_bad_latent_names_the_argument():
    with pytest.raises(ValueError, match="latent"):
        batch_pca(torch.randn(5), 0.9)
    with pytest.raises(ValueError, match="latent"):
        batch_pca(torch.tensor([[np.nan, 1.0], [0.0, 1.0]]), 0.9)


def test_latents_with_dead_relu_units_give_a_finite_basis():
    # Many exactly-zero columns (dead ReLU units) give many zero eigenvalues; float32 eigh on one
    # MKL thread returned NaN or raised on ~9% of such batches before the decomposition moved to
    # float64.
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        live = int(torch.randint(1, 128, (1,), generator=g))
        rank = int(torch.randint(1, live + 1, (1,), generator=g))
        x = torch.relu(torch.randn(256, rank, generator=g) @ torch.randn(rank, live, generator=g))
        x = torch.cat([x, torch.zeros(256, 128 - live)], 1)[:, torch.randperm(128, generator=g)]
        x.requires_grad_()
        result = batch_pca(x, 0.95)
        assert (
            torch.isfinite(result.projected).all()
            and torch.isfinite(result.explained_variance_ratio).all()
        )
        assert 1 <= int(result.k) <= live
        assert int(result.k) == sklearn_count(x.detach().double(), 0.95)
        result.projected.pow(2).sum().backward()
        assert torch.isfinite(x.grad).all()
