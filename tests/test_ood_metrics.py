"""OOD metrics against scikit-learn (the oracle) to 1e-12, on random and on tied scores, and
against pytorch-ood where its definitions are ours (AUROC; FPR95 with the roles exchanged)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from latentboost_lab.ood import aupr, auroc, fpr_at_tpr, ood_metrics

pytestmark = pytest.mark.usefixtures("one_thread")

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def sklearn_fpr95(is_in, scores, tpr=0.95) -> float:
    """FPR at the first point of the *full* ROC curve (in-distribution positive) whose TPR
    reaches ``tpr`` (drop_intermediate=False: the default drops collinear points, which can
    skip the first point that reaches it)."""
    fpr, tprs, _ = sk.roc_curve(is_in, scores, drop_intermediate=False)
    return float(fpr[np.argmax(tprs >= tpr - 1e-12)])


def sklearn_all(is_in, scores) -> dict:
    is_in, scores = np.asarray(is_in), np.asarray(scores, dtype=np.float64)
    return {
        "auroc": sk.roc_auc_score(is_in, scores),
        "aupr_in": sk.average_precision_score(is_in, scores),
        "aupr_out": sk.average_precision_score(1 - is_in, -scores),
        "fpr95": sklearn_fpr95(is_in, scores),
    }


def ours_all(is_in, scores) -> dict:
    is_in, scores = np.asarray(is_in), np.asarray(scores, dtype=np.float64)
    return ood_metrics(scores[is_in == 1], scores[is_in == 0])


def draw(rng, n, tied: bool):
    is_in = rng.integers(0, 2, n)
    is_in[:2] = (0, 1)
    scores = rng.integers(0, 4, n).astype(float) if tied else rng.normal(size=n)
    scores = scores + 0.7 * is_in  # better than chance
    return is_in, scores


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("n", [2, 3, 20, 257, 4000])
def test_metrics_equal_sklearn(n, tied):
    rng = np.random.default_rng(n + tied)
    for _ in range(5):
        is_in, scores = draw(rng, n, tied)
        ours, theirs = ours_all(is_in, scores), sklearn_all(is_in, scores)
        for key, value in theirs.items():
            assert ours[key] == pytest.approx(value, abs=1e-12), key
        assert auroc(is_in, scores) == pytest.approx(theirs["auroc"], abs=1e-12)
        assert aupr(is_in, scores) == pytest.approx(theirs["aupr_in"], abs=1e-12)
        assert aupr(is_in, scores, "out") == pytest.approx(theirs["aupr_out"], abs=1e-12)
        assert fpr_at_tpr(is_in, scores) == pytest.approx(theirs["fpr95"], abs=1e-12)


@PROPERTY
@given(
    values=st.lists(
        st.tuples(st.booleans(), st.sampled_from([-1.0, 0.0, 0.5, 2.0, 1e-9, 1e9])),
        min_size=2,
        max_size=60,
    ),
    tpr=st.sampled_from([0.5, 0.9, 0.95, 1.0]),
)
def test_metrics_equal_sklearn_on_heavily_tied_scores(values, tpr):
    is_in = np.array([int(v[0]) for v in values])
    scores = np.array([v[1] for v in values])
    if is_in.min() == is_in.max():
        is_in[0] = 1 - is_in[0]
    theirs = sklearn_all(is_in, scores)
    ours = ours_all(is_in, scores)
    for key in ("auroc", "aupr_in", "aupr_out", "fpr95"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-12), key
    assert fpr_at_tpr(is_in, scores, tpr) == pytest.approx(
        sklearn_fpr95(is_in, scores, tpr), abs=1e-12
    )


def test_known_values_and_conventions():
    # perfect separation, its reverse, and all scores equal
    score_in, score_out = torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])
    assert ood_metrics(score_in, score_out) == {
        "auroc": 1.0,
        "aupr_in": 1.0,
        "aupr_out": 1.0,
        "fpr95": 0.0,
    }
    assert ood_metrics(score_out, score_in)["auroc"] == 0.0
    assert ood_metrics(score_out, score_in)["fpr95"] == 1.0
    flat = ood_metrics(torch.ones(3), torch.ones(5))
    assert flat["auroc"] == 0.5 and flat["fpr95"] == 1.0
    assert flat["aupr_in"] == pytest.approx(3 / 8) and flat["aupr_out"] == pytest.approx(5 / 8)
    # numpy, float32 and integer scores are accepted
    assert ood_metrics(np.array([1, 2]), np.array([0])) == ood_metrics(
        torch.tensor([1.0, 2.0]), torch.tensor([0.0], dtype=torch.float32)
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: auroc(np.array([0, 1, 1]), np.array([0.1, 0.2])), "same length"),
        (lambda: ood_metrics(torch.tensor([]), torch.tensor([1.0])), "score_in.*empty"),
        (lambda: ood_metrics(torch.tensor([1.0]), torch.zeros(0)), "score_out.*empty"),
        (lambda: ood_metrics(torch.tensor([float("nan")]), torch.tensor([1.0])), "score_in.*NaN"),
        (lambda: ood_metrics(torch.zeros(2, 2), torch.tensor([1.0])), "score_in.*1-D"),
        (lambda: auroc(np.array([1, 1]), np.array([0.1, 0.2])), "at least one"),
        (lambda: auroc(np.array([0, 2]), np.array([0.1, 0.2])), "only 0 and 1"),
        (lambda: aupr(np.array([0, 1]), np.array([0.1, 0.2]), "both"), "positive"),
        (lambda: fpr_at_tpr(np.array([0, 1]), np.array([0.1, 0.2]), 0.0), "tpr"),
        (lambda: ood_metrics([1.0], torch.tensor([1.0])), "score_in"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_equal_to_pytorch_ood_where_definitions_match():
    """AUROC is pytorch-ood's (OOD positive, outlier score = -ours); its FPR95TPR takes OOD as
    positive, so ours is its value with the two sets' roles exchanged. Its AUPR is a
    trapezoidal area, not average precision: not compared (see the module docstring)."""
    metrics = pytest.importorskip("pytorch_ood.metrics", reason="pytorch-ood is not installed")
    rng = np.random.default_rng(1)
    for tied in (False, True):
        is_in, scores = draw(rng, 500, tied)
        s = torch.from_numpy(scores)
        ood_label = torch.from_numpy(np.where(is_in == 1, 0, -1))
        theirs = metrics.OODMetrics().update(-s, ood_label).compute()
        ours = ood_metrics(s[is_in == 1], s[is_in == 0])
        assert ours["auroc"] == pytest.approx(theirs["AUROC"], abs=1e-12)
        swapped = torch.from_numpy(np.where(is_in == 1, -1, 0))  # in-distribution as "OOD"
        theirs_swapped = metrics.OODMetrics().update(s, swapped).compute()
        assert ours["fpr95"] == pytest.approx(theirs_swapped["FPR95TPR"], abs=1e-12)
