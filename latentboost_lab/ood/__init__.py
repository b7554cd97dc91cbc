"""Out-of-distribution (OOD) detection: does a structured latent know what it has not seen?

The paper (arXiv 2412.08515) leaves open how Latent Boost behaves on inputs from outside its
training distribution. A latent shaped into compact, separated class clusters should make "far
from every cluster" a usable signal; this package measures whether it does, fairly, beside the
standard scores.

One convention everywhere: **a score is higher for inputs that look more in-distribution**,
and the in-distribution samples are the positive class of the metrics.

Modules (one concept each):

- :mod:`.scores`: MSP, max logit, energy, Mahalanobis, kNN and the cluster likelihood
  (K = 1 and K > 1), each citing its paper and equation;
- :mod:`.metrics`: AUROC, AUPR-in, AUPR-out and FPR at 95% TPR (equal to scikit-learn's);
- :mod:`.datasets`: the OOD sets (MNIST, Fashion-MNIST, CIFAR-10, noise, shuffled pixels),
  converted to the in-distribution image shape and normalised with its statistics;
- :mod:`.scorer`: :class:`OODScorer`, fitted once on a model's training split;
- :func:`evaluate_ood` and :func:`format_ood_table`: a model against several sets, as a dict
  and as a Markdown table (what ``latentboost-lab ood`` and the experiment runner use).
"""

from __future__ import annotations

from .datasets import OOD_GROUPS, OOD_SETS, OODSet, load_ood, parse_ood, read_mnist, to_shape
from .metrics import METRICS, aupr, auroc, fpr_at_tpr, ood_metrics
from .scorer import DEFAULT_SCORES, LOGIT_SCORES, OODScorer, check_score_names
from .scores import (
    cluster_likelihood,
    energy,
    fit_clusters,
    fit_gaussian,
    knn,
    mahalanobis,
    max_logit,
    msp,
)

__all__ = [
    "DEFAULT_SCORES",
    "LOGIT_SCORES",
    "METRICS",
    "OOD_GROUPS",
    "OOD_SETS",
    "OODScorer",
    "OODSet",
    "aupr",
    "auroc",
    "check_score_names",
    "cluster_likelihood",
    "energy",
    "evaluate_ood",
    "fit_clusters",
    "fit_gaussian",
    "format_ood_table",
    "fpr_at_tpr",
    "knn",
    "load_ood",
    "mahalanobis",
    "max_logit",
    "msp",
    "ood_metrics",
    "parse_ood",
    "read_mnist",
    "to_shape",
]


def evaluate_ood(
    model,
    data,
    sets,
    *,
    scorer: OODScorer | None = None,
    n: int | None = None,
    seed: int = 0,
    root=None,
    download: bool = False,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{set: {score: {"auroc", "aupr_in", "aupr_out", "fpr95"}}}`` of ``model`` (trained on
    ``data``): its test split against each OOD set. ``sets``: names (``"mnist,noise"``, see
    :func:`parse_ood`) or ``{name: images}``; ``scorer``: an unfitted :class:`OODScorer` with
    other settings (default: every default score); ``n``, ``seed``, ``root``, ``download``:
    as for :func:`load_ood`."""
    scorer = (scorer or OODScorer()).fit(model, data)
    if not isinstance(sets, dict):
        sets = {
            name: load_ood(name, data, n=n, seed=seed, root=root, download=download)
            for name in parse_ood(sets)
        }
    return scorer.evaluate(sets)


def format_ood_table(result: dict, metric: str = "auroc") -> str:
    """:func:`evaluate_ood`'s result as a Markdown table: one row per OOD set, one column per
    score, ``metric`` in percent (AUROC by default; FPR95 is lower-is-better)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    scores = list(dict.fromkeys(s for per_set in result.values() for s in per_set))
    better = "higher" if METRICS[metric] else "lower"
    lines = [
        f"| OOD set ({metric} %, {better} is better) | " + " | ".join(scores) + " |",
        "|---|" + "---:|" * len(scores),
    ]
    for name, per_set in result.items():
        cells = [f"{100 * per_set[s][metric]:.2f}" if s in per_set else "–" for s in scores]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
