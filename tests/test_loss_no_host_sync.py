"""No loss reads a tensor value on the host in the training step (issue 14).

A host read (``.item()``, ``int(t)``, ``bool(t)``, ``torch.unique``, ``nonzero``, a boolean
mask's shape) makes the CPU wait for a GPU at every step. The proof: run each objective's
forward and backward, as ``fit``'s step calls it (``check_values=False``), on *fake* tensors
(``torch._subclasses.FakeTensorMode``): they carry shapes and dtypes but no values, so any read
of a value raises instead of returning. The controls below show that the harness does catch
such reads, so that a pass cannot come from a harness that sees nothing.

Not covered: a read hidden inside a kernel. ``torch.linalg.eigh`` (the batch PCA) waits for a
CUDA device internally to check LAPACK's error code (PyTorch's documentation says so), which no
Python-level test can see; the README says what that leaves.
"""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from latentboost_lab.clusters import ClusterIndex
from latentboost_lab.losses import (
    CenterLoss,
    CrossEntropyLoss,
    LatentBoostLoss,
    MagnetObjective,
)

N, CLASSES, WIDTH = 64, 10, 16


def fitted_index(num_clusters: int) -> ClusterIndex:
    """A cluster index over 200 real training latents (its tensors become fake in the step)."""
    generator = torch.Generator().manual_seed(0)
    latent = torch.randn(200, WIDTH, generator=generator)
    labels = torch.arange(200) % CLASSES
    return ClusterIndex(num_clusters).fit(latent, labels, CLASSES)


def step_on_fake_tensors(objective, *, with_logits: bool = True):
    """The objective's forward and backward on value-less tensors; returns the value."""
    with FakeTensorMode(allow_non_fake_inputs=True):
        logits = torch.empty(N, CLASSES, requires_grad=True) if with_logits else None
        latent = torch.empty(N, WIDTH, requires_grad=True)
        labels = torch.empty(N, dtype=torch.long)
        sample_ids = torch.empty(N, dtype=torch.long)
        result = objective.compute(
            logits, latent, labels, 3, sample_ids=sample_ids, check_values=False
        )
        result.value.backward()
        # The backward pass ran through the graph (cross-entropy reaches the logits only).
        reached = latent if objective.uses_logits is False or latent.grad is not None else logits
        assert reached.grad is not None and reached.grad.shape == reached.shape
        return result


def latent_boost_with_clusters(**options):
    loss = LatentBoostLoss(num_clusters=2, **options)
    loss.index = fitted_index(2)
    return loss


def magnet_with_clusters(num_clusters):
    objective = MagnetObjective(num_clusters=num_clusters)
    objective.index = fitted_index(num_clusters)
    return objective


OBJECTIVES = {
    "ce": CrossEntropyLoss,
    "latentboost": LatentBoostLoss,
    "latentboost_shared_no_pca": lambda: LatentBoostLoss(variance="shared", pca_variance=None),
    "latentboost_detached": lambda: LatentBoostLoss(variance_gradient=False),
    "latentboost_k2": latent_boost_with_clusters,
    "center": lambda: CenterLoss(CLASSES, WIDTH, lam=0.1),
    "center_parameter": lambda: CenterLoss(CLASSES, WIDTH, center_lr=None),
    "magnet_k1": lambda: magnet_with_clusters(1),
    "magnet_k3": lambda: magnet_with_clusters(3),
}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_the_step_reads_no_value_on_the_host(name):
    result = step_on_fake_tensors(OBJECTIVES[name]())
    assert result.value.shape == ()
    if result.per_sample is not None:
        assert result.per_sample.shape == (N,)


class ReadsTheMaximum(CrossEntropyLoss):
    def compute_loss(self, logits, latent, labels, epoch, *args, **kwargs):
        int(labels.max())
        return super().compute_loss(logits, latent, labels, epoch)


class CompactsTheIds(CrossEntropyLoss):
    def compute_loss(self, logits, latent, labels, epoch, *args, **kwargs):
        torch.unique(labels, return_inverse=True)
        return super().compute_loss(logits, latent, labels, epoch)


class BranchesOnAValue(CrossEntropyLoss):
    def compute_loss(self, logits, latent, labels, epoch, *args, **kwargs):
        if torch.isfinite(latent).all():
            pass
        return super().compute_loss(logits, latent, labels, epoch)


@pytest.mark.parametrize("reader", [ReadsTheMaximum, CompactsTheIds, BranchesOnAValue])
def test_the_harness_catches_a_host_read(reader):
    with pytest.raises(RuntimeError):  # FakeTensorMode's data-dependent-output errors
        step_on_fake_tensors(reader())


def test_the_first_batch_value_checks_are_host_reads():
    # What fit does on its first batch (and always in the debug mode): it reads values, and
    # the same harness sees it. So the step above is value-free because it skips them.
    with pytest.raises(RuntimeError):
        with FakeTensorMode():
            LatentBoostLoss()(
                torch.empty(N, CLASSES), torch.empty(N, WIDTH), torch.empty(N, dtype=torch.long), 0
            )


def test_explicit_cluster_ids_are_the_one_path_that_reads_them():
    # Given cluster ids of unknown range are compacted (torch.unique), as the reference
    # MagnetLoss and the loss's direct callers do; fit never passes them.
    with pytest.raises(RuntimeError):
        with FakeTensorMode():
            latent = torch.empty(N, WIDTH)
            labels = torch.empty(N, dtype=torch.long)
            LatentBoostLoss().compute(
                torch.empty(N, CLASSES), latent, labels, 0, cluster_ids=labels,
                check_values=False,
            )  # fmt: skip
