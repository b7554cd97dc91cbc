"""Sub-classes inside classes (issue 18): K per class chosen without sub-class labels, and the
measures of sub-class recovery, against naive float64 oracles written here from the formulas
(they share no code with the package)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from latentboost_lab.data import load_dataset
from latentboost_lab.metrics import embed
from latentboost_lab.models import build_model
from latentboost_lab.subclasses import (
    assign_within_classes,
    cluster_within_classes,
    knn_accuracy,
    select_k,
    select_k_per_class,
    subclass_measures,
)
from latentboost_lab.training import fit

pytestmark = pytest.mark.usefixtures("one_thread")


def planted(sub_per_class=(3, 1), n_per_sub=60, d=8, separation=10.0, seed=0):
    """Latents of classes made of well-separated spherical blobs (the planted sub-classes):
    returns latent, class labels, sub-class labels (global, numbered class by class)."""
    g = torch.Generator().manual_seed(seed)
    n_sub = sum(sub_per_class)
    centres = separation * torch.randn(n_sub, d, generator=g, dtype=torch.float64)
    sub = torch.arange(n_sub).repeat_interleave(n_per_sub)
    owner = torch.tensor([c for c, k in enumerate(sub_per_class) for _ in range(k)])
    latent = centres[sub] + torch.randn(len(sub), d, generator=g, dtype=torch.float64)
    return latent, owner[sub], sub


# -- naive oracles ------------------------------------------------------------------------


def oracle_nmi(a, b):
    """Mutual information over the arithmetic mean of the entropies (Strehl & Ghosh 2002)."""
    a, b, n = a.tolist(), b.tolist(), len(a)
    pairs, ca, cb = Counter(zip(a, b, strict=True)), Counter(a), Counter(b)
    mi = sum(c / n * math.log(n * c / (ca[i] * cb[j])) for (i, j), c in pairs.items())
    entropy_a = -sum(c / n * math.log(c / n) for c in ca.values())
    entropy_b = -sum(c / n * math.log(c / n) for c in cb.values())
    return mi / ((entropy_a + entropy_b) / 2)


def oracle_ari(a, b):
    """Hubert & Arabie (1985): (index - expected) / (max - expected) over pairs of points."""
    a, b, n = a.tolist(), b.tolist(), len(a)
    pairs = sum(math.comb(c, 2) for c in Counter(zip(a, b, strict=True)).values())
    rows = sum(math.comb(c, 2) for c in Counter(a).values())
    cols = sum(math.comb(c, 2) for c in Counter(b).values())
    expected = rows * cols / math.comb(n, 2)
    return (pairs - expected) / ((rows + cols) / 2 - expected)


def oracle_knn_accuracy(reference, reference_labels, query=None, query_labels=None, k=5):
    """A loop over queries: the k nearest (float64, ties by index), the most votes, a tie of
    votes to the label of the nearest tied neighbour."""
    leave_one_out = query is None
    if leave_one_out:
        query, query_labels = reference, reference_labels
    correct = 0
    for i in range(len(query)):
        dist = [
            (math.dist(query[i].tolist(), reference[j].tolist()), j)
            for j in range(len(reference))
            if not (leave_one_out and j == i)
        ]
        nearest = [int(reference_labels[j]) for _, j in sorted(dist)[:k]]
        votes = Counter(nearest)
        top = max(votes.values())
        predicted = next(label for label in nearest if votes[label] == top)
        correct += predicted == int(query_labels[i])
    return correct / len(query)


# -- choosing K without sub-class labels ---------------------------------------------------


@pytest.mark.parametrize("rule", ["silhouette", "bic"])
def test_three_blobs_give_three_and_one_blob_gives_one(rule):
    three, _, _ = planted((3,), n_per_sub=80)
    one, _, _ = planted((1,), n_per_sub=240, seed=1)
    chosen = select_k(three, 6, rule=rule)
    assert chosen.k == 3 and chosen.rule == rule
    assert select_k(one, 6, rule=rule).k == 1
    if rule == "silhouette":  # K = 1 because no K reached the bound, not by default
        assert set(chosen.scores) == {2, 3, 4, 5, 6}
        assert max(select_k(one, 6, rule=rule).scores.values()) < 0.25
    else:
        assert set(chosen.scores) == {1, 2, 3, 4, 5, 6}
        assert min(chosen.scores, key=chosen.scores.get) == 3


@pytest.mark.parametrize("rule", ["silhouette", "bic"])
def test_k_per_class_is_deterministic_for_a_seed(rule):
    latent, labels, _ = planted((3, 1, 2), n_per_sub=40)
    first = select_k_per_class(latent.float(), labels, 5, rule=rule, seed=4)
    assert [s.k for s in first] == [3, 1, 2]
    again = select_k_per_class(latent.float(), labels, 5, rule=rule, seed=4)
    assert [s.scores for s in again] == [s.scores for s in first]


def test_degenerate_classes_get_one_cluster():
    same = torch.ones(50, 4)
    assert select_k(same, 5).k == 1 and select_k(same, 5, rule="bic").k == 1
    two = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    assert select_k(two, 5).k == 1  # a silhouette needs 2 <= K <= n - 1
    single = torch.zeros(1, 3)
    assert select_k(single, 4, rule="bic").k == 1
    # Fewer points than k_max: K stops at n - 1 (silhouette) or n (BIC).
    five, _, _ = planted((2,), n_per_sub=3, seed=2)
    assert max(select_k(five.float(), 10).scores) == 5
    assert max(select_k(five.float(), 10, rule="bic").scores) == 6
    assert select_k(planted((3,))[0], 1).k == 1  # k_max = 1: nothing to choose


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x, y: select_k(x, 0), ValueError, "k_max must be >= 1"),
        (lambda x, y: select_k(x, 3, rule="gap"), ValueError, "rule must be one of"),
        (lambda x, y: select_k(x[:, 0], 3), ValueError, "latent must be a 2-D tensor"),
        (lambda x, y: select_k(x[:0], 3), ValueError, "at least one point"),
        (lambda x, y: select_k(x, 3, min_silhouette=2), ValueError, "min_silhouette must be in"),
        (lambda x, y: select_k_per_class(x, y + 1, 3), ValueError, r"classes \[0\] have no point"),
        (lambda x, y: select_k_per_class(x, y, 3, num_classes=1), ValueError, "num_classes"),
        (lambda x, y: cluster_within_classes(x, y, [2]), ValueError, "one K per class"),
        (lambda x, y: knn_accuracy(x, y, k=len(y)), ValueError, "k must be in"),
        (lambda x, y: knn_accuracy(x, y, x), ValueError, "given together"),
        (lambda x, y: knn_accuracy(x, y, x[:, :2], y), ValueError, "width"),
    ],
)  # fmt: skip
def test_bad_arguments_are_named(call, error, message):
    latent, labels, _ = planted((2, 1), n_per_sub=10)
    with pytest.raises(error, match=message):
        call(latent.float(), labels)


# -- clusters inside classes ----------------------------------------------------------------


def test_clusters_stay_inside_their_class_with_one_k_per_class():
    latent, labels, sub = planted((3, 1, 2), n_per_sub=30)
    centres, cluster_class, assignment = cluster_within_classes(latent, labels, [3, 1, 2])
    assert cluster_class.tolist() == [0, 0, 0, 1, 2, 2] and centres.shape == (6, 8)
    assert torch.equal(cluster_class[assignment], labels)
    # Planted blobs: each cluster is one sub-class.
    assert len(set(zip(assignment.tolist(), sub.tolist(), strict=True))) == 6
    # A test point joins the nearest centre of its own class, even when another class's is nearer.
    own = assign_within_classes(centres[3:4].float(), torch.tensor([0]), centres, cluster_class)
    assert int(cluster_class[own]) == 0
    assert int(own) == int(torch.cdist(centres[3:4], centres[:3]).argmin())


# -- the measures against the oracles -------------------------------------------------------


@pytest.mark.parametrize("num_clusters", [1, 2, [3, 1]])
def test_nmi_and_ari_of_the_clusters_match_the_oracles(num_clusters):
    # Overlapping blobs: the clusters do not match the sub-classes exactly.
    latent, labels, sub = planted((3, 1), n_per_sub=50, separation=0.7, seed=3)
    train, test = torch.arange(len(sub)) % 2 == 0, torch.arange(len(sub)) % 2 == 1
    measures = subclass_measures(
        latent[train], labels[train], sub[train], latent[test], labels[test], sub[test],
        num_clusters, seed=2,
    )  # fmt: skip
    centres, cluster_class, _ = cluster_within_classes(
        latent[train], labels[train], num_clusters, seed=2
    )
    found = assign_within_classes(latent[test], labels[test], centres, cluster_class)
    truth = sub[test]
    nmi_all, ari_all = oracle_nmi(truth, found), oracle_ari(truth, found)
    assert measures["subclass_nmi_all"] == pytest.approx(nmi_all, abs=1e-12)
    assert measures["subclass_ari_all"] == pytest.approx(ari_all, abs=1e-12)
    # Inside the super-classes: class 0 holds 3 sub-classes, class 1 only one (left out).
    inside = labels[test] == 0
    if num_clusters == 1:  # one cluster tells nothing about the sub-classes
        assert measures["subclass_nmi"] == 0 and measures["subclass_ari"] == 0
    else:
        nmi, ari = (
            oracle_nmi(truth[inside], found[inside]),
            oracle_ari(truth[inside], found[inside]),
        )
        assert measures["subclass_nmi"] == pytest.approx(nmi, abs=1e-12)
        assert measures["subclass_ari"] == pytest.approx(ari, abs=1e-12)
        assert 0 < measures["subclass_nmi"] < 1
    assert 0 < measures["subclass_nmi_all"] < 1 and measures["total_clusters"] == len(centres)


def test_within_class_measures_need_a_class_with_two_sub_classes():
    latent, labels, sub = planted((1, 1), n_per_sub=20)
    measures = subclass_measures(latent, labels, sub, latent, labels, sub, 1)
    assert math.isnan(measures["subclass_nmi"]) and math.isnan(measures["subclass_ari"])
    assert measures["subclass_nmi_all"] == 1 and measures["subclass_ari_all"] == 1


def test_knn_accuracy_matches_the_naive_loop():
    g = torch.Generator().manual_seed(0)
    reference = torch.randn(120, 5, generator=g, dtype=torch.float64)
    reference_labels = torch.randint(4, (120,), generator=g)
    reference[:, 0] += reference_labels  # some signal, far from perfect
    query = torch.randn(70, 5, generator=g, dtype=torch.float64)
    query_labels = torch.randint(4, (70,), generator=g)
    query[:, 0] += query_labels
    for k in (1, 4, 7):
        expected = oracle_knn_accuracy(reference, reference_labels, query, query_labels, k)
        got = knn_accuracy(reference, reference_labels, query, query_labels, k=k, chunk_size=16)
        assert got == expected
        loo = knn_accuracy(reference, reference_labels, k=k, chunk_size=50)
        assert loo == oracle_knn_accuracy(reference, reference_labels, k=k)
    assert 0.25 < knn_accuracy(reference, reference_labels, query, query_labels) < 1


def test_knn_vote_ties_go_to_the_nearest_neighbour():
    reference = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    query = torch.zeros(1, 1)
    for near, far in ((0, 1), (1, 0)):  # the nearest label first and last in label order
        labels = torch.tensor([near, far, far, near])
        assert knn_accuracy(reference, labels, query, torch.tensor([far]), k=3) == 1.0  # 2 to 1
        assert knn_accuracy(reference, labels, query, torch.tensor([near]), k=4) == 1.0  # 2-2
        assert knn_accuracy(reference, labels, query, torch.tensor([near]), k=1) == 1.0


def test_planted_sub_classes_are_recovered_by_k_above_one_not_by_k_one():
    latent, labels, sub = planted((3, 2), n_per_sub=40, seed=5)
    train, test = torch.arange(len(sub)) % 4 != 0, torch.arange(len(sub)) % 4 == 0
    args = (latent[train], labels[train], sub[train], latent[test], labels[test], sub[test])
    one = subclass_measures(*args, 1)
    chosen = [s.k for s in select_k_per_class(latent[train], labels[train], 6)]
    assert chosen == [3, 2]
    recovered = subclass_measures(*args, chosen)
    for key in ("subclass_nmi", "subclass_ari", "subclass_nmi_all", "subclass_ari_all"):
        assert recovered[key] == pytest.approx(1.0)
    assert one["subclass_nmi"] == 0 and one["subclass_ari"] == 0
    assert one["subclass_nmi_all"] < 0.7 and one["subclass_ari_all"] < 0.5
    # The latent is the same: the k-NN probe and the silhouettes do not depend on K.
    for key in ("subclass_knn_accuracy", "silhouette_super", "silhouette_sub"):
        assert recovered[key] == one[key]
    assert recovered["subclass_knn_accuracy"] == 1.0
    assert recovered["silhouette_sub"] > recovered["silhouette_super"]  # blobs inside classes


def test_a_model_trained_on_super_classes_end_to_end():
    """Digits as even/odd: a model trained on the 2 super-classes separates them; one trained
    on the 10 digits keeps them apart, and there K = 5 clusters per class recover the digits
    better than K = 1."""
    data = load_dataset("digits", group="digits_parity", device="cpu", seed=0)
    subs = {split: data.sub_labels(split) for split in ("train", "test")}

    def latents(model):
        train, train_labels = embed(model, data, "train")
        test, test_labels = embed(model, data, "test")
        return train, train_labels, subs["train"], test, test_labels, subs["test"]

    torch.manual_seed(0)
    model = build_model("small_cnn", data.info, latent_dim=16)
    history = fit(model, data, epochs=3, progress=False, eval_test=False, seed=0)
    assert history.epochs[-1]["val_acc"] > 0.9
    measures = subclass_measures(*latents(model), 5)
    for key in ("subclass_nmi", "subclass_nmi_all"):
        assert 0 <= measures[key] <= 1
    for key in ("subclass_ari", "subclass_ari_all"):
        assert -0.5 <= measures[key] <= 1
    assert 0.1 < measures["subclass_knn_accuracy"] <= 1  # above chance among 10 digits
    assert measures["silhouette_super"] > measures["silhouette_sub"]  # what it was trained on
    assert measures["total_clusters"] == 10

    # The same images, trained on the digits themselves: sub-structure kept in the latent.
    digits = load_dataset("digits", device="cpu", seed=0)
    torch.manual_seed(0)
    model = build_model("small_cnn", digits.info, latent_dim=16)
    fit(model, digits, epochs=3, progress=False, eval_test=False, seed=0)
    five, one = subclass_measures(*latents(model), 5), subclass_measures(*latents(model), 1)
    assert five["subclass_nmi"] > 0.5 and five["subclass_ari"] > 0.3  # K = 1: 0 and 0
    assert five["subclass_nmi_all"] > one["subclass_nmi_all"]
    assert five["subclass_ari_all"] > one["subclass_ari_all"]
    assert five["silhouette_sub"] > measures["silhouette_sub"]
