"""The Magnet machinery: k-means, the cluster index and its refresh, the neighbourhood sampler
and the nearest-cluster classifier."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentboost_lab.clusters import (
    ClusterIndex,
    NeighbourhoodSampler,
    kmeans,
    nearest_cluster_scores,
)
from latentboost_lab.losses import MagnetObjective


def blobs(n_per_blob=30, blobs_per_class=2, n_classes=3, d=4, seed=0, spread=0.1):
    """Well separated blobs; blob b belongs to class b // blobs_per_class."""
    g = torch.Generator().manual_seed(seed)
    n_blobs = blobs_per_class * n_classes
    centres = 10.0 * torch.randn(n_blobs, d, generator=g)
    blob = torch.arange(n_blobs).repeat_interleave(n_per_blob)
    latent = centres[blob] + spread * torch.randn(len(blob), d, generator=g)
    return latent, blob // blobs_per_class, blob


def same_partition(a, b):
    """Whether two assignments group the points identically (up to renaming)."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


class Identity(nn.Module):
    """A 'model' whose latent is its input, and a counter of its forward calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        self.calls += 1
        return self.head(x), x


class Data:
    """The two methods of TensorData that a refresh uses."""

    def __init__(self, latent, labels):
        self.latent, self.labels, self.num_classes = latent, labels, int(labels.max()) + 1

    def split(self, name):
        return self.latent, self.labels

    def normalize(self, x):
        return x


def test_kmeans_recovers_separated_blobs():
    latent, _, blob = blobs(blobs_per_class=4, n_classes=1)
    centres, assignment = kmeans(latent, 4, generator=torch.Generator().manual_seed(0))
    assert centres.shape == (4, 4)
    assert same_partition(assignment, blob)


def test_kmeans_with_more_clusters_than_points_and_with_duplicates():
    x = torch.randn(3, 2)
    centres, assignment = kmeans(x, 5)
    assert torch.equal(centres, x) and torch.equal(assignment, torch.arange(3))
    same = torch.ones(10, 2)
    centres, assignment = kmeans(same, 3, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(centres).all() and assignment.min() >= 0 and assignment.max() < 3


def test_index_nests_clusters_in_classes_and_finds_the_blobs():
    latent, labels, blob = blobs()
    index = ClusterIndex(num_clusters=2).fit(latent, labels)
    assert index.centres.shape == (6, 4) and index.num_classes == 3
    assert torch.equal(index.cluster_class[index.assignments], labels)
    assert same_partition(index.assignments, blob)
    assert float(index.variance) == pytest.approx(0.01 * 4, rel=0.3)  # spread^2 per dimension


def test_k_one_gives_the_class_means_and_small_classes_are_handled():
    latent, labels, _ = blobs()
    index = ClusterIndex(num_clusters=1).fit(latent, labels)
    for c in range(3):
        torch.testing.assert_close(index.centres[c], latent[labels == c].mean(0))
    labels = labels.clone()
    labels[0] = 3  # a class of one sample, with K = 4
    index = ClusterIndex(num_clusters=4).fit(latent, labels)
    assert int((index.cluster_class == 3).sum()) == 1
    assert torch.equal(index.cluster_class[index.assignments], labels)


def test_refresh_every_r_epochs_from_a_fresh_pass():
    latent, labels, _ = blobs()
    model, data = Identity(), Data(latent, labels)
    index = ClusterIndex(num_clusters=2, refresh_every=3)
    done = [index.refresh(model, data, epoch) for epoch in range(7)]
    assert done == [True, False, False, True, False, False, True]
    assert index.fitted_epoch == 6 and model.calls == 3  # one batch per pass here
    assert model.training  # the pass restores the mode
    late = ClusterIndex(refresh_every=3)
    assert late.refresh(model, data, 4)  # never fitted: refreshes whatever the epoch


def test_refresh_moves_assignments_and_centres_together():
    latent, labels, _ = blobs()
    index = ClusterIndex(num_clusters=2).fit(latent, labels)
    moved = latent.clone()
    moved[labels == 0] += 100.0
    index.refresh(Identity(), Data(moved, labels), 1)
    for k in range(index.centres.shape[0]):
        torch.testing.assert_close(index.centres[k], moved[index.assignments == k].mean(0))


def test_cluster_ids_lookup_and_checks():
    latent, labels, _ = blobs()
    index = ClusterIndex(num_clusters=2)
    with pytest.raises(RuntimeError, match="not fitted"):
        index.cluster_ids(torch.tensor([0]))
    index.fit(latent, labels)
    ids = torch.tensor([5, 0, 179])
    assert torch.equal(index.cluster_ids(ids), index.assignments[ids])
    with pytest.raises(ValueError, match="sample_ids"):
        index.cluster_ids(torch.tensor([180]))


def make_sampler(m=3, d=8, **kwargs):
    latent, labels, _ = blobs()
    index = ClusterIndex(num_clusters=2).fit(latent, labels)
    return NeighbourhoodSampler(index, m, d, **kwargs), index, labels


def test_sampler_batches_are_a_seed_cluster_and_its_nearest_impostors():
    sampler, index, labels = make_sampler()
    batches = list(sampler(labels, 0))
    assert len(batches) == -(-180 // 24)
    for batch in batches:
        clusters = index.assignments[batch]
        present = torch.unique(clusters)
        assert len(present) == 3 and len(batch) == 24 and len(torch.unique(batch)) == 24
        counts = torch.bincount(clusters, minlength=6)[present]
        assert torch.all(counts == 8)
        # the two impostor clusters are the seed's nearest of another class: some cluster must
        # be the seed, i.e. the other two are its two nearest impostors
        dist = torch.cdist(index.centres, index.centres)
        ok = False
        for seed in present.tolist():
            others = [k for k in present.tolist() if k != seed]
            impostors = [k for k in range(6) if index.cluster_class[k] != index.cluster_class[seed]]
            nearest = sorted(impostors, key=lambda k: float(dist[seed, k]))[:2]
            ok |= sorted(nearest) == sorted(others)
        assert ok
    assert [b.tolist() for b in sampler(labels, 0)] == [b.tolist() for b in batches]  # reproducible
    assert [b.tolist() for b in sampler(labels, 1)] != [b.tolist() for b in batches]


def test_sampler_seeds_clusters_in_proportion_to_their_losses():
    sampler, index, labels = make_sampler(m=1, d=4, batches_per_epoch=300)
    torch.testing.assert_close(
        sampler.cluster_weights(), torch.full((6,), 1 / 6, dtype=torch.float64)
    )
    losses = (index.assignments == 2).float() * 3.0 + (index.assignments == 4).float()
    sampler.record_losses(torch.arange(180), losses)
    weights = sampler.cluster_weights()
    torch.testing.assert_close(weights, torch.tensor([0, 0, 0.75, 0, 0.25, 0], dtype=torch.float64))
    seeds = torch.tensor([int(index.assignments[b[0]]) for b in sampler(labels, 0)])
    assert set(seeds.tolist()) == {2, 4}
    assert 0.65 < float((seeds == 2).float().mean()) < 0.85


def test_sampler_with_small_clusters_and_unknown_losses():
    sampler, index, labels = make_sampler(m=2, d=50)
    batch = next(iter(sampler(labels, 0)))
    assert len(batch) == 60  # both clusters have 30 members < D = 50: all are taken
    sampler.record_losses(torch.tensor([0, 1]), torch.tensor([1.0, 3.0]))  # only cluster of 0, 1
    weights = sampler.cluster_weights()
    assert torch.all(weights > 0) and float(weights.sum()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="per_sample"):
        sampler.record_losses(torch.tensor([0, 1]), torch.tensor([1.0]))


def test_nearest_cluster_scores():
    latent, labels, _ = blobs()
    index = ClusterIndex(num_clusters=2).fit(latent, labels)
    scores = nearest_cluster_scores(latent, index.centres, index.cluster_class, 3, index.variance)
    torch.testing.assert_close(scores.sum(1), torch.ones(180))
    assert torch.equal(scores.argmax(1), labels)
    one = nearest_cluster_scores(
        latent, index.centres, index.cluster_class, 4, 1.0, num_neighbours=1
    )
    assert torch.all(one.max(1).values == 1.0) and one.shape == (180, 4)
    far = nearest_cluster_scores(latent * 1e6, index.centres, index.cluster_class, 3, 1e-6)
    assert torch.isfinite(far).all()
    with pytest.raises(ValueError, match="sigma2"):
        nearest_cluster_scores(latent, index.centres, index.cluster_class, 3, 0.0)


def test_objective_refresh_resets_the_running_variance():
    latent, labels, _ = blobs()
    objective = MagnetObjective(num_clusters=2)
    model, data = Identity(), Data(latent, labels)
    objective.on_epoch_start(model, data, 0)
    assert torch.equal(objective.sigma2, objective.index.variance)
    ids = torch.arange(0, 180, 3)
    objective(None, latent[ids], labels[ids], 0, sample_ids=ids)
    first = objective.parts["sigma2"]
    objective(None, latent[ids + 1], labels[ids + 1], 0, sample_ids=ids + 1)
    torch.testing.assert_close(objective.sigma2, (first + objective.parts["sigma2"]) / 2)
    objective.on_epoch_start(model, data, 1)
    assert torch.equal(objective.sigma2, objective.index.variance)
    assert torch.equal(objective.predict(latent).argmax(1), labels)


# --- one K per class (issue 18: classes that are unions of sub-classes) ----------------------


def test_index_with_one_k_per_class_finds_each_class_blobs():
    """Class c gets num_clusters[c] clusters; with K matching the blobs each cluster is a blob."""
    latent, labels, blob = blobs(blobs_per_class=3, n_classes=2)
    # class 1's three blobs as two sub-groups only: class 0 keeps 3 clusters, class 1 gets 1
    index = ClusterIndex(num_clusters=[3, 1]).fit(latent, labels)
    assert index.cluster_class.tolist() == [0, 0, 0, 1]
    assert index.k_per_class() == [3, 1] and index.max_k == 3
    in_class_0 = labels == 0
    assert same_partition(index.assignments[in_class_0], blob[in_class_0])
    assert torch.allclose(index.centres[3], latent[labels == 1].mean(0), atol=1e-5)
    # every cluster holds one class only
    assert torch.equal(index.cluster_class[index.assignments], labels)


def test_per_class_k_is_checked():
    latent, labels, _ = blobs()
    with pytest.raises(ValueError, match=r"one K per class \(3 classes\), got 2"):
        ClusterIndex(num_clusters=[2, 2]).fit(latent, labels)
    with pytest.raises(ValueError, match=r"num_clusters\[1\]"):
        ClusterIndex(num_clusters=[2, 0, 1])
    with pytest.raises(TypeError, match="num_clusters must be an int"):
        ClusterIndex(num_clusters="sub")
    with pytest.raises(ValueError, match="at least one K"):
        ClusterIndex(num_clusters=[])
    with pytest.raises(TypeError, match="select_k must be None or a function"):
        ClusterIndex(select_k=3)


def test_select_k_chooses_once_at_its_epoch_and_survives_a_checkpoint():
    """The rule is called once, at the first refresh at or after select_k_epoch, on the latents
    that refresh embeds; its K's (and scores) replace num_clusters from then on."""
    latent, labels, blob = blobs(blobs_per_class=2, n_classes=3)
    calls = []

    def rule(z, y, num_classes):
        calls.append((z.shape[0], num_classes))
        return [2, 1, 2]

    index = ClusterIndex(1, select_k=rule, select_k_epoch=1)
    data, model = Data(latent, labels), Identity()
    index.refresh(model, data, 0)
    assert calls == [] and index.centres.shape[0] == 3 and index.selected_epoch is None
    index.refresh(model, data, 1)
    assert calls == [(latent.shape[0], 3)] and index.k_per_class() == [2, 1, 2]
    assert index.centres.shape[0] == 5 and index.selected_epoch == 1
    assert [c["k"] for c in index.selection] == [2, 1, 2]
    index.refresh(model, data, 2)
    assert len(calls) == 1  # chosen once
    restored = ClusterIndex(1, select_k=rule)
    restored.load_state(index.state())
    assert restored.k_per_class() == [2, 1, 2] and restored.selected_epoch == 1
    restored.refresh(model, data, 3)
    assert len(calls) == 1 and restored.centres.shape[0] == 5
    # an index saved before per-class K existed (no such keys) keeps its constructor's K
    old = {k: v for k, v in index.state().items() if k not in ClusterIndex._CHOICE}
    legacy = ClusterIndex(2)
    legacy.load_state(old)
    assert legacy.num_clusters == 2 and legacy.selected_epoch is None


def test_select_k_must_give_one_k_per_class():
    latent, labels, _ = blobs()
    index = ClusterIndex(1, select_k=lambda z, y, n: [2], select_k_epoch=0)
    with pytest.raises(ValueError, match=r"select_k must return one K per class \(3\), got 1"):
        index.refresh(Identity(), Data(latent, labels), 0)


@pytest.mark.parametrize("loss_name", ["latentboost", "magnet"])
def test_losses_train_with_one_k_per_class(loss_name):
    """Latent Boost and Magnet take one K per class: the batch's clusters are the index's."""
    from latentboost_lab.losses import LatentBoostLoss

    latent, labels, _ = blobs(blobs_per_class=2, n_classes=3)
    data, model = Data(latent, labels), Identity()
    loss = (
        LatentBoostLoss(num_clusters=[2, 1, 3])
        if loss_name == "latentboost"
        else MagnetObjective(num_clusters=[2, 1, 3], neighbourhood_sampling=False)
    )
    assert loss.needs_sample_ids
    loss.on_epoch_start(model, data, 0)
    assert loss.index.centres.shape[0] == 6
    logits, z = model(latent)
    ids = torch.arange(latent.shape[0])
    value = loss(logits, z.requires_grad_(), labels, 0, sample_ids=ids)
    assert torch.isfinite(value)
    # the same value as with the index's cluster ids given explicitly
    explicit = loss(logits, z, labels, 0, cluster_ids=loss.index.assignments)
    assert torch.allclose(value, explicit)


def test_latent_boost_with_k_one_everywhere_needs_no_index():
    from latentboost_lab.losses import LatentBoostLoss

    assert LatentBoostLoss(num_clusters=[1, 1, 1]).index is None
    assert LatentBoostLoss(num_clusters=1).index is None
    assert LatentBoostLoss(select_k=lambda z, y, n: [1, 1]).index is not None
