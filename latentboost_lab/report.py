"""Summaries of an experiment's runs: mean ± std per arm, paired tests against the reference
arm (cross-entropy), a Markdown report laid out like the paper's tables, and figures.

A paired comparison is over the seeds both arms share (same data, weights and batches per
seed), so the seed-to-seed spread cancels out. With n seeds, the difference ``d`` of a metric has
mean ``d̄``, standard deviation ``s``, ``t = d̄ / (s / √n)`` with n-1 degrees of freedom, a
two-sided p-value and the 95% interval ``d̄ ± t₀.₉₇₅ · s / √n``. The verdict says "better" or
"worse" only when p < 0.05; with 3 seeds only large, consistent differences pass, which is the
point: a +0.3 with a std of 0.5 is "no significant difference" (not shown; which is not the same as
shown to be equal). Over fewer than 3 seeds the verdict is "inconclusive (n < 3)".

Micro-F1 equals accuracy for single-label classification (every sample has exactly one true
and one predicted class); it is reported because the paper reports it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .results import arms_in
from .runstore import atomic_write

__all__ = [
    "PAPER_ACCURACY_DELTA",
    "PAPER_PCA_WIDTH",
    "markdown",
    "paired_test",
    "summarise",
    "write_report",
]

#: The paper's accuracy gains of Latent Boost over cross-entropy, in points (arXiv:2412.08515).
PAPER_ACCURACY_DELTA = {"fashion_mnist": 2.56, "cifar10": 0.64, "cifar100": 1.38}
#: The paper's claimed reduction in training epochs (13-21% fewer than cross-entropy).
PAPER_EPOCH_REDUCTION = "13-21% fewer epochs"
#: The batch PCA widths the paper reports (components kept at 95% of the variance): a range, and
#: how the paper words it. It gives no width per epoch.
PAPER_PCA_WIDTH = {
    "fashion_mnist": ((45, 50), "paper: 45-50"),
    "cifar10": ((40, 65), "paper: 65 falling to 40"),
}

# Metrics per run: the name in the summary, and whether larger is better.
TEST_METRICS = {
    "acc": True,
    "head_acc": True,
    "micro_f1": True,
    "macro_f1": True,
    "cluster_acc": True,
    "silhouette": True,
    "silhouette_pca": True,
    "davies_bouldin": False,
    "davies_bouldin_pca": False,
}
#: What a run on a super-class task records of the hidden sub-classes (``run["subclass"]``,
#: :func:`latentboost_lab.experiments.subclass_metrics`), and whether larger is better (None:
#: no verdict; the number of clusters is the arm's choice, not an outcome).
SUBCLASS_METRICS = {
    "subclass_nmi": True,
    "subclass_ari": True,
    "subclass_nmi_k_sub": True,
    "subclass_ari_k_sub": True,
    "subclass_knn_accuracy": True,
    "silhouette_super": True,
    "silhouette_sub": True,
    "subclass_nmi_all": True,
    "subclass_ari_all": True,
    "total_clusters": None,
}
HISTORY_METRICS = {
    "epochs": False,
    "best_epoch": False,
    "epochs_to_ref": False,
    "seconds_to_ref": False,
    "seconds_per_epoch": False,
    "pca_k": None,
}


def paired_test(a, b) -> dict:
    """Paired comparison of ``a`` against ``b`` (same length, one value per seed): mean
    difference ``a - b``, its standard deviation, the 95% interval, t and the two-sided p-value
    (Student's t with n-1 degrees of freedom; equal to ``scipy.stats.ttest_rel(a, b)``)."""
    from scipy import stats

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D and of the same length, got {a.shape} and {b.shape}")
    d = a - b
    n = len(d)
    result = {"n": n, "mean_diff": float(d.mean()) if n else math.nan}
    if n < 2:
        return {
            **result,
            "std_diff": math.nan,
            "ci95": (math.nan, math.nan),
            "t": math.nan,
            "p": math.nan,
        }
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    if sd == 0.0:
        t, p = (math.copysign(math.inf, d.mean()), 0.0) if d.mean() != 0 else (math.nan, 1.0)
    else:
        t = float(d.mean() / (sd / math.sqrt(n)))
        p = float(2 * stats.t.sf(abs(t), n - 1))
    ci = (float(d.mean() - half), float(d.mean() + half))
    return {**result, "std_diff": sd, "ci95": ci, "t": t, "p": p}


#: Paired differences over fewer seeds than this get no verdict but "inconclusive": with 2 seeds
#: the t quantile is 12.7 and a single lucky or unlucky seed decides everything.
MIN_SEEDS_FOR_VERDICT = 3


def verdict(test: dict, larger_is_better: bool | None, alpha: float = 0.05) -> str:
    """ "better", "worse", "no significant difference" (not shown, which is not the same as
    shown to be equal) or "inconclusive (n < 3)" over fewer than 3 seeds."""
    if larger_is_better is None:
        return ""
    if test["n"] < MIN_SEEDS_FOR_VERDICT:
        return f"inconclusive (n < {MIN_SEEDS_FOR_VERDICT})"
    if not (test["p"] <= alpha) or test["mean_diff"] == 0:
        return "no significant difference"
    return "better" if (test["mean_diff"] > 0) == larger_is_better else "worse"


def _history_values(run: dict, reference_run: dict | None) -> dict:
    epochs = run["history"]["epochs"]
    values = {
        "epochs": len(epochs),
        "seconds_per_epoch": float(np.mean([e["seconds"] for e in epochs])),
    }
    best = run["history"].get("best_epoch")
    if best is not None:
        values["best_epoch"] = best + 1
    pca_k = [e["pca_k"] for e in epochs if "pca_k" in e]
    if pca_k:
        values["pca_k"] = float(np.mean(pca_k))
    if reference_run is not None:
        ref_key = reference_run.get("monitor", "val_acc")
        reference = [e.get(ref_key, math.nan) for e in reference_run["history"]["epochs"]]
        target = max((v for v in reference if not math.isnan(v)), default=math.nan)
        key = run.get("monitor", "val_acc")
        elapsed = 0.0
        for i, e in enumerate(epochs):
            elapsed += e["seconds"]
            if e.get(key, -math.inf) >= target:
                values["epochs_to_ref"] = i + 1
                values["seconds_to_ref"] = elapsed
                break
    return values


def _stats(values: list[float]) -> dict:
    v = np.asarray(values, dtype=float)
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
        "n": len(v),
        "values": [float(x) for x in v],
    }


def summarise(results, reference: str | None = None) -> dict:
    """Per arm: mean/std/n of every metric; against ``reference`` (when it ran): the paired
    test of every metric over the shared seeds, and how often the arm reached the reference's
    best validation accuracy."""
    reference = reference or results.config.get("reference", "ce")  # compare --reference
    runs = results.runs
    by_arm: dict[str, dict[int, dict]] = {}
    for run in runs.values():
        by_arm.setdefault(run["arm"], {})[run["seed"]] = run
    ref_runs = by_arm.get(reference, {})
    # Every run's values once; the reference's serve as the other side of each pairing.
    values = {
        name: {
            seed: {k: v for k, v in run["test"].items() if k in TEST_METRICS}
            | _history_values(run, ref_runs.get(seed))
            for seed, run in by_arm[name].items()
        }
        for name in arms_in(results)
    }
    ref_values = values.get(reference, {})
    arms = {}
    for name, per_seed in values.items():
        keys = [
            k for k in {**TEST_METRICS, **HISTORY_METRICS} if any(k in v for v in per_seed.values())
        ]
        entry = {
            "seeds": sorted(per_seed),
            "metrics": {k: _stats([v[k] for v in per_seed.values() if k in v]) for k in keys},
            "reached_ref": sum("epochs_to_ref" in v for v in per_seed.values()),
        }
        if ref_runs and name != reference:
            shared = sorted(set(per_seed) & set(ref_values))
            entry["vs_reference"] = {}
            for k in keys:
                pairs = [
                    (per_seed[s][k], ref_values[s][k])
                    for s in shared
                    if k in per_seed[s] and k in ref_values[s]
                ]
                if pairs:
                    test = paired_test([p[0] for p in pairs], [p[1] for p in pairs])
                    better = {**TEST_METRICS, **HISTORY_METRICS}[k]
                    test["verdict"] = verdict(test, better)
                    entry["vs_reference"][k] = test
        arms[name] = entry
    fixed = results.config.get("fixed", {})
    summary = {"reference": reference, "dataset": fixed.get("dataset"), "arms": arms}
    if fixed.get("group") is not None:  # a super-class task (issue 18)
        summary["group"] = fixed["group"]
    subclass = _summarise_subclass(by_arm, list(values), reference)
    if subclass:  # only runs on a super-class task have these
        summary["subclass"] = subclass
    ood = _summarise_ood(by_arm, list(values), reference)
    if ood:  # only runs evaluated out of distribution (issue 16) have these
        summary["ood"] = ood
    lam = _summarise_lambda(by_arm, list(values))
    if lam:  # only where λ moved during a run or a run diverged (issue 18)
        summary["lambda"] = lam
    return summary


def _summarise_lambda(by_arm: dict, arms: list[str]) -> dict:
    """``{arm: {"lam_first"|"lam_last"|"lam_min"|"lam_max": stats, "diverged": count,
    "runs": n}}`` from each run's λ per epoch (the epoch's mean over its steps), or {} when no
    run's λ moved and no run diverged."""
    out, relevant = {}, False
    for name in arms:
        runs = list(by_arm[name].values())
        lams = [[e["lam"] for e in r["history"]["epochs"] if "lam" in e] for r in runs]
        lams = [lam for lam in lams if lam]
        diverged = sum("diverged" in r for r in runs)
        relevant |= diverged > 0 or any(min(lam) != max(lam) for lam in lams)
        entry = {"diverged": diverged, "runs": len(runs)}
        if lams:
            entry |= {
                "lam_first": _stats([lam[0] for lam in lams]),
                "lam_last": _stats([lam[-1] for lam in lams]),
                "lam_min": _stats([min(lam) for lam in lams]),
                "lam_max": _stats([max(lam) for lam in lams]),
            }
        out[name] = entry
    return out if relevant else {}


def _summarise_subclass(by_arm: dict, arms: list[str], reference: str) -> dict:
    """``{arm: {"seeds", "k_per_class": {"K1, K2": runs}, "metrics": {metric: stats},
    "vs_reference": {metric: test}}}`` over the runs that measured the hidden sub-classes
    (``run["subclass"]``); the paired tests as for the test metrics."""
    ref = {s: r["subclass"] for s, r in by_arm.get(reference, {}).items() if "subclass" in r}
    out = {}
    for name in arms:
        runs = {s: r for s, r in by_arm[name].items() if "subclass" in r}
        if not runs:
            continue
        ks = [", ".join(map(str, r.get("k_per_class", []))) for r in runs.values()]
        keys = [k for k in SUBCLASS_METRICS if any(k in r["subclass"] for r in runs.values())]
        entry = {
            "seeds": sorted(runs),
            "k_per_class": {k: ks.count(k) for k in dict.fromkeys(ks)},
            "metrics": {
                k: _stats([r["subclass"][k] for r in runs.values() if k in r["subclass"]])
                for k in keys
            },
        }
        shared = sorted(set(runs) & set(ref))
        if ref and name != reference and shared:
            entry["vs_reference"] = {}
            for k in keys:
                pairs = [
                    (runs[s]["subclass"][k], ref[s][k])
                    for s in shared
                    if k in runs[s]["subclass"] and k in ref[s]
                ]
                if pairs:
                    test = paired_test([a for a, _ in pairs], [b for _, b in pairs])
                    test["verdict"] = verdict(test, SUBCLASS_METRICS[k])
                    entry["vs_reference"][k] = test
        out[name] = entry
    return out


def _summarise_ood(by_arm: dict, arms: list[str], reference: str) -> dict:
    """``{set: {arm: {score: {metric: stats, ..., "vs_reference": {metric: test}}}}}`` over the
    runs that stored OOD metrics (``run["ood"]``); the paired tests as for the test metrics."""
    from .ood import METRICS

    out: dict = {}
    sets = dict.fromkeys(
        s for per in by_arm.values() for r in per.values() for s in r.get("ood", {})
    )
    for ood_set in sets:
        per_arm = {}
        for name in arms:
            runs = {
                seed: r["ood"][ood_set]
                for seed, r in by_arm[name].items()
                if ood_set in r.get("ood", {})
            }
            ref = {
                seed: r["ood"][ood_set]
                for seed, r in by_arm.get(reference, {}).items()
                if ood_set in r.get("ood", {})
            }
            scores = dict.fromkeys(s for v in runs.values() for s in v)
            entry = {}
            for score in scores:
                cell = {
                    m: _stats([v[score][m] for v in runs.values() if score in v]) for m in METRICS
                }
                cell["seeds"] = sorted(seed for seed, v in runs.items() if score in v)
                shared = [s for s in cell["seeds"] if score in ref.get(s, {})]
                if ref and name != reference and shared:
                    cell["vs_reference"] = {}
                    for m, larger in METRICS.items():
                        test = paired_test(
                            [runs[s][score][m] for s in shared], [ref[s][score][m] for s in shared]
                        )
                        test["verdict"] = verdict(test, larger)
                        cell["vs_reference"][m] = test
                entry[score] = cell
            if OWN_SCORE in entry:  # does the latent's own score beat the standard ones?
                entry[OWN_SCORE]["vs_scores"] = _own_score_against_others(runs, OWN_SCORE)
            if entry:
                per_arm[name] = entry
        out[ood_set] = per_arm
    return out


#: The structured latent's own OOD score (the largest cluster likelihood, K = 1), set against the
#: standard ones inside each arm.
OWN_SCORE = "cluster"


def _own_score_against_others(runs: dict, own: str) -> dict:
    """``{score: paired test of AUROC(own) − AUROC(score)}`` over the seeds that have both."""
    scores = dict.fromkeys(s for v in runs.values() for s in v if s != own)
    tests = {}
    for score in scores:
        seeds = [seed for seed, v in runs.items() if own in v and score in v]
        if seeds:
            test = paired_test(
                [runs[s][own]["auroc"] for s in seeds], [runs[s][score]["auroc"] for s in seeds]
            )
            test["verdict"] = verdict(test, True)
            tests[score] = test
    return tests


def _fmt(stats: dict | None, scale: float = 1.0, digits: int = 2) -> str:
    if not stats:
        return "–"
    if stats["n"] > 1:
        return f"{stats['mean'] * scale:.{digits}f} ± {stats['std'] * scale:.{digits}f}"
    return f"{stats['mean'] * scale:.{digits}f}"


def _fmt_diff(test: dict | None, scale: float = 1.0, digits: int = 2) -> str:
    if not test:
        return "–"
    text = f"{test['mean_diff'] * scale:+.{digits}f}"
    if test["n"] > 1:
        lo, hi = test["ci95"]
        text += f" [{lo * scale:+.{digits}f}, {hi * scale:+.{digits}f}]"
    return text


def _fmt_p(test: dict | None) -> str:
    if not test or test["n"] < 2 or math.isnan(test["p"]):
        return "–"
    return f"{test['p']:.3f}"


def _papers_setting(results, dataset) -> set[str]:
    """The arms run as the paper ran Latent Boost: all its parts on, λ the paper's best for the
    data set (or left at that default); only these get the paper's delta beside them."""
    from .losses import PAPER_LAMBDA
    from .recipes import READINGS

    reading_options = {k for options in READINGS.values() for k in options}
    best = PAPER_LAMBDA.get(dataset)
    return {
        a["name"]
        for a in results.config.get("arms", [])
        if a.get("loss") == "latentboost"
        and set(a.get("options") or {}) <= reading_options  # a reading keeps every part on
        and (a.get("lam") is None or a.get("lam") == best)
    }


def _task(fixed: dict) -> str:
    """The data set, and its super-class task when there is one (issue 18)."""
    group = fixed.get("group")
    if group is None:
        return str(fixed.get("dataset"))
    if isinstance(group, dict):
        group = "; ".join(f"{name} = {', '.join(members)}" for name, members in group.items())
    return f"{fixed.get('dataset')}, super-classes {group}"


def markdown(results, reference: str | None = None, *, summary: dict | None = None) -> str:
    """The report: settings, a table per arm (mean ± std over seeds), and the paired comparison
    with the reference arm beside the paper's claims. ``summary``: :func:`summarise`'s result
    when the caller has it already."""
    reference = reference or results.config.get("reference", "ce")  # compare --reference
    summary = summary or summarise(results, reference)
    fixed = results.config.get("fixed", {})
    dataset = fixed.get("dataset")
    env = (results.document.get("environment") or [{}])[-1]
    seeds = sorted({r["seed"] for r in results.runs.values()})
    lines = [
        f"# {_task(fixed)}: {', '.join(summary['arms'])}",
        "",
        f"- model `{fixed.get('model')}`, budget {fixed.get('epochs')} epochs, batch "
        f"{fixed.get('batch_size')}, Adam lr {fixed.get('lr')}, early-stopping patience "
        f"{fixed.get('patience')}, n_train {fixed.get('n_train') or 'all'}, n_test "
        f"{fixed.get('n_test') or 'all'}, validation share {fixed.get('val_size')}",
        f"- seeds {', '.join(map(str, seeds))}; {len(results.runs)} runs; torch "
        f"{env.get('torch')}, {env.get('cuda') or 'CPU'} ({env.get('cpu_count')} cores, "
        f"{env.get('torch_threads')} torch threads)",
    ]
    for command in dict.fromkeys(results.document.get("commands", [])):
        lines.append(f"- command: `{command}`")
    lines += [
        "",
        "## Per arm (test split; mean ± std over seeds)",
        "",
        "| arm | runs | accuracy (%) | micro-F1 | macro-F1 | nearest-cluster acc. (%) "
        "| silhouette | silhouette (PCA) | Davies-Bouldin | DB (PCA) | epochs trained "
        "| best epoch | s / epoch | PCA k |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in summary["arms"].items():
        m = entry["metrics"]
        lines.append(
            f"| {name} | {len(entry['seeds'])} | {_fmt(m.get('acc'), 100)} "
            f"| {_fmt(m.get('micro_f1'), 1, 4)} | {_fmt(m.get('macro_f1'), 1, 4)} "
            f"| {_fmt(m.get('cluster_acc'), 100)} | {_fmt(m.get('silhouette'), 1, 3)} "
            f"| {_fmt(m.get('silhouette_pca'), 1, 3)} | {_fmt(m.get('davies_bouldin'), 1, 3)} "
            f"| {_fmt(m.get('davies_bouldin_pca'), 1, 3)} | {_fmt(m.get('epochs'), 1, 1)} "
            f"| {_fmt(m.get('best_epoch'), 1, 1)} | {_fmt(m.get('seconds_per_epoch'), 1, 1)} "
            f"| {_fmt(m.get('pca_k'), 1, 1)} |"
        )
    if any("vs_reference" in e for e in summary["arms"].values()):
        paper = PAPER_ACCURACY_DELTA.get(dataset)
        lines += [
            "",
            f"## Against `{reference}` (paired over seeds; 95% interval; two-sided p)",
            "",
            "| arm | Δ accuracy (points) | p | paper's Δ accuracy | Δ silhouette | p "
            "| std of accuracy: arm / ref. | reached ref.'s best val. acc. "
            "| epochs to reach it (ref.: its best epoch) | verdict on accuracy "
            "| verdict on silhouette |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        ref = summary["arms"].get(reference, {}).get("metrics", {})
        papers_arms = _papers_setting(results, dataset)
        for name, entry in summary["arms"].items():
            vs = entry.get("vs_reference")
            if vs is None:
                continue
            m = entry["metrics"]
            paper_text = f"+{paper:.2f}" if (paper is not None and name in papers_arms) else "–"
            std_ratio = (
                f"{m['acc']['std'] * 100:.2f} / {ref['acc']['std'] * 100:.2f}"
                if "acc" in m and "acc" in ref and m["acc"]["n"] > 1
                else "–"
            )
            reached = f"{entry['reached_ref']} of {len(entry['seeds'])}"
            lines.append(
                f"| {name} | {_fmt_diff(vs.get('acc'), 100)} | {_fmt_p(vs.get('acc'))} "
                f"| {paper_text} | {_fmt_diff(vs.get('silhouette'), 1, 3)} "
                f"| {_fmt_p(vs.get('silhouette'))} | {std_ratio} | {reached} "
                f"| {_fmt(m.get('epochs_to_ref'), 1, 1)} ({_fmt(ref.get('best_epoch'), 1, 1)}) "
                f"| {vs.get('acc', {}).get('verdict', '–')} "
                f"| {vs.get('silhouette', {}).get('verdict', '–')} |"
            )
        lines += [
            "",
            f"The paper's epoch claim: {PAPER_EPOCH_REDUCTION} than cross-entropy. "
            "'Epochs to reach it' counts the epochs an arm needs to reach the reference's best "
            "validation accuracy (same seed), over the seeds where it did.",
        ]
    lines += [
        "",
        "Micro-F1 equals accuracy here (single-label classes). Silhouette and Davies-Bouldin "
        "are computed on the test latents (raw, and projected on the principal components "
        f"keeping {fixed.get('pca_variance', 0.95):g} of their variance).",
    ]
    lines += _lambda_markdown(summary)
    if summary.get("subclass"):
        lines += _subclass_markdown(summary)
    if summary.get("ood"):
        lines += _ood_markdown(summary, fixed)
    return "\n".join(lines) + "\n"


def _lambda_markdown(summary: dict) -> list[str]:
    """λ over training and the runs that diverged, per arm (see :func:`_summarise_lambda`)."""
    if not summary.get("lambda"):
        return []
    lines = [
        "",
        "## λ during training",
        "",
        "λ of each epoch (the mean over its steps), mean ± std over seeds; diverged: runs that "
        "stopped on a non-finite loss (their test metrics are those of their last finite epoch):",
        "",
        "| arm | first epoch | last epoch | lowest | highest | diverged runs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, entry in summary["lambda"].items():
        keys = ("lam_first", "lam_last", "lam_min", "lam_max")
        cells = " | ".join(_fmt(entry.get(k), 1, 3) for k in keys)
        lines.append(f"| {name} | {cells} | {entry['diverged']} of {entry['runs']} |")
    return lines


# The sub-class table's columns: (metric, heading, scale, digits).
_SUBCLASS_COLUMNS = (
    ("subclass_nmi", "NMI, own K", 1, 3),
    ("subclass_ari", "ARI, own K", 1, 3),
    ("subclass_nmi_k_sub", "NMI, K = sub-classes", 1, 3),
    ("subclass_ari_k_sub", "ARI, K = sub-classes", 1, 3),
    ("subclass_knn_accuracy", "5-NN sub-class acc. (%)", 100, 2),
    ("silhouette_super", "silhouette: super-classes", 1, 3),
    ("silhouette_sub", "silhouette: sub-classes", 1, 3),
)


def _subclass_markdown(summary: dict) -> list[str]:
    """The hidden sub-classes' tables of :func:`markdown` (issue 18): per arm, mean ± std over
    seeds; against the reference, the paired difference with its p and verdict."""
    reference, per_arm = summary["reference"], summary["subclass"]
    head = "| " + " | ".join(h for _, h, _, _ in _SUBCLASS_COLUMNS) + " |"
    rule = "---:|" * len(_SUBCLASS_COLUMNS)
    lines = [
        "",
        "## Hidden sub-classes (test split; mean ± std over seeds)",
        "",
        "The models trained on the super-classes only; the data set's own classes are the "
        "hidden sub-classes, used here only (`latentboost_lab.subclasses`, at the embedding). "
        "NMI and ARI: k-means inside each super-class on the training latents, each test "
        "image joining the nearest centre of its own super-class, against its sub-class, "
        "averaged over the super-classes; with the arm's own K (K = 1 scores 0 by "
        "construction) and with K = the number of sub-classes for every arm. 5-NN sub-class "
        "accuracy (the training latents with their sub-class labels as the reference) and the "
        "silhouettes do not depend on K.",
        "",
        "| arm | runs | K per class (runs) " + head,
        "|---|---:|---|" + rule,
    ]
    for name, entry in per_arm.items():
        ks = "; ".join(f"{k} ({n})" for k, n in entry["k_per_class"].items())
        cells = [_fmt(entry["metrics"].get(m), scale, d) for m, _, scale, d in _SUBCLASS_COLUMNS]
        lines.append(f"| {name} | {len(entry['seeds'])} | {ks} | " + " | ".join(cells) + " |")
    compared = {n: e for n, e in per_arm.items() if "vs_reference" in e}
    if compared:
        lines += [
            "",
            f"Against `{reference}` (paired over seeds; 95% interval; two-sided p; verdict):",
            "",
            "| arm " + head,
            "|---|" + rule,
        ]
        for name, entry in compared.items():
            cells = []
            for m, _, scale, d in _SUBCLASS_COLUMNS:
                test = entry["vs_reference"].get(m)
                cells.append(
                    f"{_fmt_diff(test, scale, d)} (p {_fmt_p(test)}, {test['verdict']})"
                    if test
                    else "–"
                )
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _ood_markdown(summary: dict, fixed: dict) -> list[str]:
    """The OOD tables of :func:`markdown`: per OOD set, AUROC and FPR95 per arm and score
    (mean ± std over seeds), and the paired Δ AUROC against the reference."""
    reference, dataset = summary["reference"], summary["dataset"]
    n_ood = fixed.get("n_ood")
    lines = [
        "",
        "## Out-of-distribution detection",
        "",
        f"The test split of {dataset} (in-distribution, positive) against each OOD set "
        f"({'whole real sets, synthetic ones as large as the test split' if n_ood is None else f'{n_ood} images each'}), "
        f"normalised with {dataset}'s statistics; every score is taken at the classifier's input "
        "(the embedding) and fitted on the training split (`latentboost_lab.ood`). Higher "
        "scores mean more in-distribution. Magnet trains the latent only: its logit scores "
        "(msp, max_logit, energy) read an untrained head.",
    ]
    for ood_set, per_arm in summary["ood"].items():
        scores = list(dict.fromkeys(s for entry in per_arm.values() for s in entry))
        head = ["| arm | " + " | ".join(scores) + " |", "|---|" + "---:|" * len(scores)]
        compared = {
            n: e for n, e in per_arm.items() if any("vs_reference" in c for c in e.values())
        }
        lines += ["", f"### {dataset} vs {ood_set}", "", "AUROC (%), mean ± std over seeds:", ""]
        lines += head + [_ood_row(n, e, scores, "auroc") for n, e in per_arm.items()]
        if compared:
            lines += [
                "",
                f"Δ AUROC against `{reference}` (points; paired over seeds; p; verdict):",
                "",
            ]
            lines += head + [_ood_row(n, e, scores, "delta") for n, e in compared.items()]
        lines += ["", "FPR at 95% TPR (%, lower is better), mean ± std over seeds:", ""]
        lines += head + [_ood_row(n, e, scores, "fpr95") for n, e in per_arm.items()]
        own = {n: e[OWN_SCORE]["vs_scores"] for n, e in per_arm.items()
               if e.get(OWN_SCORE, {}).get("vs_scores")}  # fmt: skip
        if own:
            others = list(dict.fromkeys(s for tests in own.values() for s in tests))
            lines += [
                "",
                f"The latent's own score (`{OWN_SCORE}`) against each other score of the same arm: "
                "Δ AUROC (points; paired over seeds; p; verdict):",
                "",
                "| arm | " + " | ".join(others) + " |",
                "|---|" + "---:|" * len(others),
            ]
            for name, tests in own.items():
                cells = [
                    f"{t['mean_diff'] * 100:+.2f} (p {_fmt_p(t)}, {t['verdict']})"
                    if (t := tests.get(o))
                    else "–"
                    for o in others
                ]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _ood_row(name: str, entry: dict, scores: list[str], what: str) -> str:
    """One arm's row of an OOD table: ``what`` is a metric (mean ± std, in %) or ``"delta"``
    (the paired Δ AUROC against the reference, in points, with p and the verdict)."""
    cells = []
    for score in scores:
        cell = entry.get(score)
        if what != "delta":
            cells.append(_fmt(cell and cell[what], 100))
            continue
        test = (cell or {}).get("vs_reference", {}).get("auroc")
        cells.append(
            f"{test['mean_diff'] * 100:+.2f} (p {_fmt_p(test)}, {test['verdict']})" if test else "–"
        )
    return f"| {name} | " + " | ".join(cells) + " |"


def write_report(results, reference: str | None = None) -> list[Path]:
    """Write ``summary.md``, ``summary.json`` and the figures beside ``runs.json``; return the
    paths written."""
    reference = reference or results.config.get("reference", "ce")  # compare --reference
    out = Path(results.path).parent
    written = []
    summary = summarise(results, reference)
    atomic_write(out / "summary.json", json.dumps(summary, indent=1, default=float).encode())
    atomic_write(out / "summary.md", markdown(results, reference, summary=summary).encode())
    written += [out / "summary.json", out / "summary.md"]
    for name, figure in figures(results, reference, summary=summary).items():
        path = out / f"{name}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        written.append(path)
    return written


# The two panels of the comparison figures: (metric, axis label, scale).
PANELS = (("acc", "test accuracy (%)", 100), ("silhouette", "test silhouette", 1))


def figures(results, reference: str = "ce", *, summary: dict | None = None) -> dict:
    """Matplotlib figures: ``accuracy_silhouette`` (per arm, mean ± std with the seeds as
    dots), ``lambda_sweep`` (when several λ ran) and ``pca_components`` (Latent Boost's batch
    PCA width per epoch). ``summary`` as for :func:`markdown`."""
    from matplotlib.figure import Figure

    summary = summary or summarise(results, reference)
    arms = summary["arms"]
    out = {}
    fig = Figure(figsize=(4 + 0.9 * len(arms), 3.6), layout="constrained")
    for ax, (key, label, scale) in zip(fig.subplots(1, 2), PANELS, strict=True):
        names = [n for n in arms if key in arms[n]["metrics"]]
        for i, n in enumerate(names):
            s = arms[n]["metrics"][key]
            ax.bar(i, s["mean"] * scale, yerr=s["std"] * scale, capsize=4, color=f"C{i}", alpha=0.7)
            ax.plot([i] * s["n"], np.asarray(s["values"]) * scale, "k.", ms=5)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_ylabel(label)
        if key == "acc" and names:
            lows = [min(arms[n]["metrics"][key]["values"]) * scale for n in names]
            ax.set_ylim(max(0, min(lows) - 5), None)
    fig.suptitle(f"{summary['dataset']}: mean ± std over seeds (dots: seeds)")
    out["accuracy_silhouette"] = fig

    sweep = [
        (a["lam"], a["name"])
        for a in results.config.get("arms", [])
        if a["loss"] == "latentboost"
        and a["lam"] is not None
        and not a["options"]
        and a["name"] in arms
    ]
    if len(sweep) >= 2:
        sweep.sort()
        fig = Figure(figsize=(8, 3.4), layout="constrained")
        for ax, (key, label, scale) in zip(fig.subplots(1, 2), PANELS, strict=True):
            lam = [v for v, _ in sweep]
            mean = np.array([arms[n]["metrics"][key]["mean"] for _, n in sweep]) * scale
            std = np.array([arms[n]["metrics"][key]["std"] for _, n in sweep]) * scale
            ax.errorbar(lam, mean, yerr=std, marker="o", capsize=4, label="Latent Boost")
            if reference in arms and key in arms[reference]["metrics"]:
                ax.axhline(
                    arms[reference]["metrics"][key]["mean"] * scale,
                    color="k",
                    ls="--",
                    label=reference,
                )
            ax.set_xlabel("λ (weight of the distance term)")
            ax.set_ylabel(label)
            ax.legend()
        fig.suptitle(f"{summary['dataset']}: λ sweep")
        out["lambda_sweep"] = fig

    curves = {}
    # An arm with its PCA off records the latent's width as pca_k: no curve for it here.
    no_pca = {
        a["name"]
        for a in results.config.get("arms", [])
        if "pca_variance" in (a.get("options") or {}) and a["options"]["pca_variance"] is None
    }
    for run in results.runs.values():
        if run["arm"] in no_pca:
            continue
        k = [e.get("pca_k") for e in run["history"]["epochs"]]
        if k and all(v is not None for v in k):
            curves.setdefault(run["arm"], []).append(k)
    if curves:
        fig = Figure(figsize=(5, 3.4), layout="constrained")
        ax = fig.subplots()
        if summary["dataset"] in PAPER_PCA_WIDTH:
            (low, high), label = PAPER_PCA_WIDTH[summary["dataset"]]
            ax.axhspan(low, high, color="0.85", label=label)
        for name, ks in curves.items():
            width = min(len(k) for k in ks)
            mean = np.mean([k[:width] for k in ks], axis=0)
            ax.plot(range(1, width + 1), mean, marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("principal components kept (mean over the epoch)")
        ax.legend(fontsize=8)
        out["pca_components"] = fig
    return out
