"""Metrics of an OOD detector: AUROC, AUPR-in, AUPR-out and FPR at 95% TPR.

Convention (the whole of :mod:`latentboost_lab.ood`): a score is **higher for inputs that look
more in-distribution**, and the in-distribution samples are the *positive* class.

- ``auroc``: the probability that a random in-distribution sample scores higher than a random
  OOD sample, ties counting one half (Mann-Whitney U / (n_in n_out)). Symmetric: it is the same
  number with OOD as the positive class and the scores negated.
- ``aupr_in``: average precision with in-distribution as positive (the scores as they are);
  ``aupr_out``: average precision with OOD as positive (the scores negated). Average precision is
  scikit-learn's step-wise ``sum_n (R_n - R_{n-1}) P_n`` over the distinct thresholds, not the
  trapezoidal area (which over-estimates on a stair-case curve). A detector that guesses gets
  the share of the positive class, so AUPR depends on the ratio of the set sizes.
- ``fpr95``: the share of OOD samples accepted as in-distribution (score >= t) at the largest
  threshold t that accepts at least 95% of the in-distribution samples (Liang et al., ICLR 2018;
  Liu et al., NeurIPS 2020). Lower is better.

Every value equals scikit-learn's to 1e-12 (``tests/test_ood_metrics.py``: ``roc_auc_score``,
``average_precision_score`` and ``roc_curve(..., drop_intermediate=False)``), on random and on
tied scores. Computed in float64 from one sort.

Where pytorch-ood differs (``pytorch_ood.metrics``, version 0.4): it takes *outlier* scores and
makes OOD the positive class. AUROC is the same number. Its AUPR-IN / AUPR-OUT are trapezoidal
areas under the precision-recall curve, not average precision, so they differ from ours by a
little (more where scores tie). Its ``FPR95TPR`` is the share of *in-distribution* samples flagged
when 95% of the OOD samples are caught (OOD positive); ours is the literature's usual one (the
share of OOD samples accepted when 95% of the in-distribution samples are), which is pytorch-ood's
value with the roles of the two sets exchanged (the tests check exactly that).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "METRICS",
    "aupr",
    "auroc",
    "fpr_at_tpr",
    "ood_metrics",
]

#: The metrics of :func:`ood_metrics`, and whether larger is better.
METRICS = {"auroc": True, "aupr_in": True, "aupr_out": True, "fpr95": False}


def _scores(value, name: str) -> torch.Tensor:
    """``value`` as a 1-D, finite, non-empty float64 tensor (on its own device)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name} must be a 1-D torch.Tensor or numpy array of scores, got {type(value).__name__}"
        )
    if value.dim() != 1:
        raise ValueError(
            f"{name} must be a 1-D tensor of scores (one per sample), got shape {tuple(value.shape)}"
        )
    if value.numel() == 0:
        raise ValueError(
            f"{name} must hold at least one score, got an empty tensor (an empty set?)"
        )
    if value.dtype == torch.bool or value.is_complex():
        raise ValueError(f"{name} must hold real scores, got dtype {value.dtype}")
    value = value.double()
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return value


def _labels_and_scores(is_in, scores) -> tuple[torch.Tensor, torch.Tensor]:
    """The scikit-learn-style pair: ``is_in`` (1/True: in-distribution, 0/False: OOD)."""
    scores = _scores(scores, "scores")
    if isinstance(is_in, np.ndarray):
        is_in = torch.from_numpy(np.ascontiguousarray(is_in))
    if not isinstance(is_in, torch.Tensor) or is_in.dim() != 1:
        raise ValueError("is_in must be a 1-D tensor or array of 0/1 (1: in-distribution)")
    if is_in.shape[0] != scores.shape[0]:
        raise ValueError(
            f"is_in and scores must have the same length, got {is_in.shape[0]} and {scores.shape[0]}"
        )
    if is_in.dtype != torch.bool:
        if is_in.is_complex() or not torch.all((is_in == 0) | (is_in == 1)):
            raise ValueError("is_in must hold only 0 and 1 (1: in-distribution)")
        is_in = is_in == 1
    is_in = is_in.to(scores.device)
    return is_in, scores


def _split(is_in, scores) -> tuple[torch.Tensor, torch.Tensor]:
    is_in, scores = _labels_and_scores(is_in, scores)
    score_in, score_out = scores[is_in], scores[~is_in]
    if score_in.numel() == 0 or score_out.numel() == 0:
        raise ValueError(
            "is_in must mark at least one in-distribution (1) and one OOD (0) sample, got "
            f"{score_in.numel()} and {score_out.numel()}"
        )
    return score_in, score_out


def _auroc(score_in: torch.Tensor, score_out: torch.Tensor) -> float:
    """Mann-Whitney U with mid-ranks for ties, divided by n_in * n_out (all float64)."""
    n_in, n_out = score_in.numel(), score_out.numel()
    both = torch.cat([score_in, score_out])
    values, inverse, counts = torch.unique(both, return_inverse=True, return_counts=True)
    # The mid-rank of a group of tied values: (first rank + last rank) / 2, ranks from 1.
    last = torch.cumsum(counts, 0).double()
    mid = last - (counts.double() - 1.0) / 2.0
    rank_sum = mid[inverse[:n_in]].sum()
    return float((rank_sum - n_in * (n_in + 1) / 2.0) / (n_in * n_out))


def _average_precision(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """scikit-learn's average precision, positives scoring high: ``sum (R_n - R_{n-1}) P_n``
    over the distinct thresholds, from the highest down."""
    scores = torch.cat([positive, negative])
    is_pos = torch.cat(
        [torch.ones_like(positive, dtype=torch.bool), torch.zeros_like(negative, dtype=torch.bool)]
    )
    values, inverse = torch.unique(scores, return_inverse=True)  # ascending
    groups = values.numel()
    tp = torch.zeros(groups, dtype=torch.float64, device=scores.device)
    total = torch.zeros_like(tp)
    tp.index_add_(0, inverse, is_pos.double())
    total.index_add_(0, inverse, torch.ones_like(scores))
    tp, total = tp.flip(0).cumsum(0), total.flip(0).cumsum(0)  # threshold at each value, high first
    precision = tp / total
    recall = tp / positive.numel()
    previous = torch.cat([recall.new_zeros(1), recall[:-1]])
    return float(((recall - previous) * precision).sum())


def _fpr_at_tpr(score_in: torch.Tensor, score_out: torch.Tensor, tpr: float) -> float:
    """Share of ``score_out >= t`` at the largest threshold t with ``mean(score_in >= t) >= tpr``
    (the first point of scikit-learn's full ROC curve whose TPR reaches ``tpr``)."""
    n_in = score_in.numel()
    ordered = torch.sort(score_in, descending=True).values
    # Accepting the j highest in-distribution scores (and all their ties) gives TPR >= tpr for
    # the smallest j with j / n_in >= tpr: the threshold is the j-th highest score. A relative
    # slack of 1e-12 keeps tpr * n_in = 95.00000000000001 from asking for one sample too many.
    needed = max(int(np.ceil(tpr * n_in - 1e-12 * n_in)), 1)
    threshold = ordered[min(needed, n_in) - 1]
    return float((score_out >= threshold).double().mean())


def auroc(is_in, scores) -> float:
    """Area under the ROC curve; ``is_in`` 1 for in-distribution samples, ``scores`` higher =
    more in-distribution. Equals ``sklearn.metrics.roc_auc_score(is_in, scores)``."""
    return _auroc(*_split(is_in, scores))


def aupr(is_in, scores, positive: str = "in") -> float:
    """Average precision with ``positive`` ("in" or "out") as the positive class. Equals
    ``average_precision_score(is_in, scores)`` for "in" and
    ``average_precision_score(1 - is_in, -scores)`` for "out"."""
    if positive not in ("in", "out"):
        raise ValueError(f"positive must be 'in' or 'out', got {positive!r}")
    score_in, score_out = _split(is_in, scores)
    if positive == "in":
        return _average_precision(score_in, score_out)
    return _average_precision(-score_out, -score_in)


def fpr_at_tpr(is_in, scores, tpr: float = 0.95) -> float:
    """False positive rate (OOD accepted) at the first threshold whose true positive rate
    (in-distribution accepted) reaches ``tpr``."""
    from .._checks import check_in_range

    tpr = check_in_range("tpr", tpr, 0.0, 1.0, low_inclusive=False)
    return _fpr_at_tpr(*_split(is_in, scores), tpr)


def ood_metrics(score_in, score_out, tpr: float = 0.95) -> dict[str, float]:
    """``{"auroc", "aupr_in", "aupr_out", "fpr95"}`` of one score: ``score_in`` on the
    in-distribution test samples, ``score_out`` on an OOD set (any lengths; higher = more
    in-distribution). ``tpr`` sets the TPR of the ``fpr95`` entry (its key keeps its name)."""
    from .._checks import check_in_range

    score_in = _scores(score_in, "score_in")
    score_out = _scores(score_out, "score_out").to(score_in.device)
    tpr = check_in_range("tpr", tpr, 0.0, 1.0, low_inclusive=False)
    return {
        "auroc": _auroc(score_in, score_out),
        "aupr_in": _average_precision(score_in, score_out),
        "aupr_out": _average_precision(-score_out, -score_in),
        "fpr95": _fpr_at_tpr(score_in, score_out, tpr),
    }
