"""The experiment runner: the paper's comparison as one resumable call.

    config = ExperimentConfig(dataset="fashion_mnist", arms=parse_arms("ce,latentboost"),
                              seeds=(0, 1, 2), epochs=30)
    results = run_experiment(config, "results/fashion_mnist")
    print(results.markdown())

Fairness: for each seed, every arm gets the same data (subsets and validation split drawn with
that seed), the same initial weights (the model is built right after ``seed_everything(seed)``),
the same batches (``fit(seed=seed)``), optimiser, budget and early-stopping rule; only the loss
differs. Two exceptions belong to the Magnet method itself: it draws its batches with its own
neighbourhood sampler, and it trains the latent only, so its accuracy is that of its
nearest-cluster classifier (``val_cluster_acc`` is what its early stopping watches). Model
selection (early stopping, the kept weights) uses the validation split only; the test split is
evaluated once, at the end of each run.

Output, in ``out_dir``: ``runs.json`` (every run's configuration, history and test metrics, the
environment and the command; rewritten atomically after each run), ``summary.md`` (tables laid
out like the paper's, with the paper's deltas beside ours), and figures (see
:mod:`latentboost_lab.report`). Runs already in ``runs.json`` are not redone; a run cut short
(KeyboardInterrupt, a crash) continues from its last epoch's checkpoint with the same history as
an uninterrupted run.

Super-class tasks (issue 18): ``ExperimentConfig(group="fmnist_super", ...)`` trains every arm on
the super-classes (:mod:`latentboost_lab.data.groups`); the arms of :data:`CLUSTER_ARMS` give
Latent Boost or Magnet one cluster per sub-class (``latentboost-k_sub``) or K chosen by the
silhouette rule (``latentboost-k_auto``). Each run then also records ``k_per_class`` and how
much of the hidden sub-classes its latent keeps (``subclass``: :func:`subclass_metrics`), and
the report tables them against the reference arm.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import report
from ._checks import check_choice, check_in_range, check_int
from .config import CHANNELS_LAST, DEFAULTS
from .losses import as_objective
from .models import MEMORY_FORMATS, preferred_memory_format
from .nonfinite import NonFiniteLossError
from .provenance import provenance
from .recipes import LAMBDA_STRATEGIES, LOSSES, READINGS, make_loss, resolve_reading
from .results import Arm, merge_arms, run_key, settings_difference
from .results import Results as RunRecords

__all__ = [
    "ABLATIONS",
    "CLUSTER_ARMS",
    "READINGS",
    "Arm",
    "ExperimentConfig",
    "Results",
    "build_run",
    "parse_arms",
    "parse_shard",
    "planned_runs",
    "run_experiment",
    "subclass_metrics",
    "test_metrics",
]

#: Ablations of Latent Boost's parts: the options given to ``make_loss("latentboost", ...)``.
ABLATIONS = {
    "no_pca": {"pca_variance": None},
    "shared_variance": {"variance": "shared"},
    "fixed_weights": {"alpha": 1.0, "beta": 1.0},
}


#: Latent Boost and Magnet with more than one cluster per class (issue 18), one arm each: the
#: loss and its ``num_clusters`` option (``"sub"``: one cluster per sub-class of a super-class
#: task; ``"auto"``: K chosen without sub-class labels; see :data:`latentboost_lab.recipes.
#: NUM_CLUSTERS_RULES`).
CLUSTER_ARMS = {
    "latentboost-k_sub": ("latentboost", {"num_clusters": "sub"}),
    "latentboost-k_auto": ("latentboost", {"num_clusters": "auto"}),
    "magnet-k_sub": ("magnet", {"num_clusters": "sub"}),
    "magnet-k_auto": ("magnet", {"num_clusters": "auto"}),
}


def lambda_arm(strategy: str, lam: float | None) -> Arm:
    """Latent Boost with a λ strategy of :data:`LAMBDA_STRATEGIES` (issue 18), named
    ``latentboost-lam_<strategy>``."""
    check_choice("lam_strategies", strategy, LAMBDA_STRATEGIES)
    return Arm(f"latentboost-lam_{strategy}", "latentboost", lam, (("lam_strategy", strategy),))


def _reading_arm(reading: str, lam: float | None) -> Arm:
    """The Latent Boost arm of ``reading``: names from :data:`READINGS` joined by "+"."""
    latent, options = resolve_reading(reading, name="readings")
    name = "+".join(p.strip() for p in reading.split("+"))
    return Arm(f"latentboost-{name}", "latentboost", lam, tuple(options.items()), latent)


def parse_arms(
    arms: str | Sequence[str],
    lams: Sequence[float] | None = None,
    ablations: Sequence[str] = (),
    readings: Sequence[str] = (),
    clusters: Sequence[str] = (),
    lam_strategies: Sequence[str] = (),
) -> list[Arm]:
    """The arms named in ``arms`` (``"ce,magnet,center,latentboost"`` or a list).

    lams: a λ sweep: the ``latentboost`` arm becomes one arm per λ, named ``latentboost(λ=0.5)``
        (without it, λ is the paper's best for the data set).
    ablations: Latent Boost with one part switched off, one arm each: ``no_pca``,
        ``shared_variance``, ``fixed_weights`` (α = β = 1), named e.g. ``latentboost-no_pca``;
        with ``lams`` given they use its first value.
    readings: Latent Boost read another way (:data:`READINGS`), one arm each, e.g.
        ``features`` or ``features+detached_variance``, named ``latentboost-features`` etc.;
        with ``lams`` given they use its first value.
    clusters: Latent Boost or Magnet with K > 1 clusters per class, one arm each, by the names
        of :data:`CLUSTER_ARMS`: ``latentboost-k_sub``, ``magnet-k_sub`` (K = the number of
        sub-classes of each super-class: a super-class task only), ``latentboost-k_auto``,
        ``magnet-k_auto`` (K chosen by the silhouette rule on the training latents); Latent
        Boost's use the first value of ``lams`` when given.
    lam_strategies: Latent Boost with a λ that changes during training, one arm each, by the
        names of :data:`LAMBDA_STRATEGIES` (``warmup``, ``uncertainty``, ``grad_ratio``,
        ``controller``; ``constant`` is the plain arm), named ``latentboost-lam_warmup`` etc.;
        with ``lams`` given they use its first value.
    """
    names = [a.strip() for a in arms.split(",")] if isinstance(arms, str) else list(arms)
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"arms must name at least one of {list(LOSSES)}, got {arms!r}")
    for n in names:
        check_choice("arms", n, LOSSES)
    if len(set(names)) != len(names):
        raise ValueError(f"arms must not repeat a name, got {names}")
    lams = [check_in_range("lam", v, 0.0, 1.0) for v in (lams or [])]
    if len(set(lams)) != len(lams):
        raise ValueError(f"lam must not repeat a value, got {lams}")
    for a in ablations:
        check_choice("ablations", a, ABLATIONS)
    result = []
    for n in names:
        if n == "latentboost" and lams:
            result += [Arm(f"latentboost(λ={v:g})", n, v) for v in lams]
        else:
            result.append(Arm(n, n))
    lam = lams[0] if lams else None
    for a in ablations:
        result.append(Arm(f"latentboost-{a}", "latentboost", lam, tuple(ABLATIONS[a].items())))
    result += [_reading_arm(r, lam) for r in readings]
    if len({a.name for a in result}) != len(result):
        raise ValueError(f"readings must not repeat an arm, got {list(readings)}")
    for c in clusters:
        check_choice("clusters", c, CLUSTER_ARMS)
    if len(set(clusters)) != len(clusters):
        raise ValueError(f"clusters must not repeat an arm, got {list(clusters)}")
    for c in clusters:
        loss, options = CLUSTER_ARMS[c]
        result.append(Arm(c, loss, lam if loss == "latentboost" else None, tuple(options.items())))
    if len(set(lam_strategies)) != len(lam_strategies):
        raise ValueError(f"lam_strategies must not repeat a name, got {list(lam_strategies)}")
    result += [lambda_arm(s, lam) for s in lam_strategies]
    return result


@dataclass
class ExperimentConfig:
    """Everything that is the same for every run of a comparison (see the module docstring)."""

    dataset: str = "digits"
    # A super-class task (issue 18; latentboost_lab.data.groups): a grouping's name
    # ("fmnist_super", "cifar10_vehicles_animals", "digits_parity") or a dict {super-class:
    # [class names]}. The runs train on the super-classes; the data set's own labels are the
    # hidden sub-classes, measured after each run (latentboost_lab.subclasses). None: the
    # data set's own classes (and runs.json written before the option existed stay equal).
    group: str | dict | None = None
    arms: Sequence[Arm] = field(default_factory=lambda: parse_arms("ce,latentboost"))
    seeds: Sequence[int] = (0, 1, 2)
    model: str = "small_cnn"
    latent_dim: int | None = None
    epochs: int = DEFAULTS.epochs
    batch_size: int = DEFAULTS.batch_size
    lr: float = DEFAULTS.lr
    patience: int | None = DEFAULTS.patience
    n_train: int | None = None
    n_test: int | None = None
    val_size: float = 0.1
    root: str | None = None
    download: bool = True  # a named set that is not found is downloaded on first use, as by
    # load_dataset and the commands (never part of a run's settings: see fixed())
    device: str = "auto"
    # The memory format every run trains in (issue 20): "channels_last", "contiguous" (NCHW) or
    # "auto", which open_experiment resolves once per folder: to the folder's recorded format
    # when it has runs (runs.json written before the option existed: "contiguous", the only
    # format then), else to the model's own choice on the device (models.preferred_memory_format).
    memory_format: str = "auto"
    bf16: bool = False
    compile: bool = False
    pca_variance: float = 0.95  # the share kept by the PCA of the *test* latents in the report
    # Out-of-distribution sets scored after training (latentboost_lab.ood, issue 16): names as
    # parse_ood takes them ("mnist,noise"), and the size of each (None: a real set whole, a
    # synthetic one as large as the test split). Empty: no OOD evaluation.
    ood: Sequence[str] = ()
    n_ood: int | None = None

    def __post_init__(self):
        self.arms = list(self.arms)
        if not self.arms or not all(isinstance(a, Arm) for a in self.arms):
            raise TypeError(
                "arms must be a non-empty list of Arm (use parse_arms('ce,latentboost'))"
            )
        if len({a.name for a in self.arms}) != len(self.arms):
            raise ValueError(f"arms must have distinct names, got {[a.name for a in self.arms]}")
        self.seeds = [check_int("seeds", s, 0) for s in self.seeds]
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(
                f"seeds must be a non-empty list of distinct integers, got {self.seeds}"
            )
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_in_range("lr", self.lr, 0.0, None, low_inclusive=False)
        check_in_range("pca_variance", self.pca_variance, 0.0, 1.0, low_inclusive=False)
        if self.patience is not None:
            check_int("patience", self.patience, 1)
        if self.ood:
            from .ood import parse_ood

            self.ood = parse_ood(list(self.ood) if not isinstance(self.ood, str) else self.ood)
        else:
            self.ood = []
        if self.n_ood is not None:
            check_int("n_ood", self.n_ood, 1)
        self.memory_format = check_choice("memory_format", self.memory_format,
                                          ("auto", *MEMORY_FORMATS))  # fmt: skip
        self.group = _checked_group(self.group, self.dataset)
        controlled = [
            a.name for a in self.arms if dict(a.options).get("lam_strategy") == "controller"
        ]
        if controlled and self.val_size == 0:
            raise ValueError(
                f"arms {controlled} steer λ by the validation accuracy: they need val_size > 0 "
                "(--val-size on the command line)"
            )
        needs_group = [a.name for a in self.arms if dict(a.options).get("num_clusters") == "sub"]
        if needs_group and self.group is None:
            raise ValueError(
                f"arms {needs_group} take one cluster per sub-class (num_clusters='sub'), so they "
                "need a super-class task: give group= (e.g. group='fmnist_super'; --group on "
                "the command line)"
            )

    def fixed(self) -> dict:
        """The settings every run shares: a resumed experiment must have the same. A
        ``memory_format`` of "auto" reads as it would for a new folder (open_experiment
        resolves it against the folder first; :func:`resolve_memory_format`)."""
        skip = {"arms", "seeds", "root", "download", "device"}
        if not self.ood:  # runs.json written before the OOD options existed stay equal
            skip |= {"ood", "n_ood"}
        if self.group is None:  # and those written before the super-class tasks
            skip.add("group")
        settings = {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}
        settings["memory_format"] = resolve_memory_format(self, None)
        if settings["memory_format"] == "contiguous":  # and those written before the memory
            del settings["memory_format"]  # format was a setting: NCHW, the only format then
        return settings

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["arms"] = [a.to_dict() for a in self.arms]
        return d


def resolve_memory_format(config: ExperimentConfig, recorded: dict | None) -> str:
    """``config.memory_format`` with "auto" resolved: the format of the runs already in the
    folder (``recorded``: its runs.json's ``config["fixed"]``; a missing key reads as
    "contiguous"), else the model's own choice on the configuration's device."""
    if config.memory_format != "auto":
        return config.memory_format
    if recorded is not None:
        return recorded.get("memory_format", "contiguous")
    from .device import select_device

    return preferred_memory_format(config.model, select_device(config.device))


def _checked_group(group, dataset: str) -> str | dict | None:
    """``group`` checked against ``dataset`` (a grouping made for another data set is refused,
    naming both), as JSON keeps it: a grouping's name, or ``{super-class: [class names]}``."""
    from .data import DATASETS, Grouping, resolve_grouping

    if group is None:
        return None
    if isinstance(group, Grouping):
        raise TypeError(
            "group: give the grouping's name or a dict {super-class: [class names]} (runs.json "
            f"records it), not a Grouping object; got {group.name!r}"
        )
    builtin = dataset if isinstance(dataset, str) and dataset in DATASETS else None
    grouping = resolve_grouping(group, builtin)
    if isinstance(group, str):
        return group
    return {name: list(members) for name, members in grouping.groups}


class Results(RunRecords):
    """A ``runs.json`` (:class:`latentboost_lab.results.Results`) with its report: the tables,
    the paired tests and the figures of :mod:`latentboost_lab.report`."""

    @property
    def reference(self) -> str:
        """The arm the report compares the others with: the one recorded in ``runs.json``
        (``compare --reference``), else ce."""
        return self.config.get("reference", "ce")

    def summary(self, reference: str | None = None) -> dict:
        return report.summarise(self, reference=reference or self.reference)

    def markdown(self, reference: str | None = None) -> str:
        return report.markdown(self, reference=reference or self.reference)

    def write_report(self, reference: str | None = None) -> list[Path]:
        """Write ``summary.md``, ``summary.json`` and the figures beside ``runs.json``."""
        return report.write_report(self, reference=reference or self.reference)


def _check_out_dir(out_dir: Path) -> None:
    """Fail before any training when the results cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"out_dir: cannot create {out_dir} ({err.strerror})") from err
    if not os.access(out_dir, os.W_OK):
        raise ValueError(f"out_dir: {out_dir} is not writable")


def _load_matching(config: ExperimentConfig, out_dir: Path) -> Results | None:
    """The runs already in ``out_dir`` (None when there are none yet); refused when they were
    made with other settings than ``config``'s."""
    path = out_dir / "runs.json"
    if not path.exists():
        return None
    results = Results.load(path)
    # "auto" continues in the folder's format (its runs.json before the setting: NCHW).
    config.memory_format = resolve_memory_format(config, results.config.get("fixed", {}))
    now = json.loads(json.dumps(config.fixed(), default=float))
    details = settings_difference(results.config.get("fixed", {}), now)
    if details:
        raise ValueError(
            f"out_dir {out_dir} holds runs made with other settings ({details}); "
            "use another out_dir or the same settings to add arms or seeds"
        )
    return results


def _open_results(config: ExperimentConfig, out_dir: Path, command: str | None) -> Results:
    path = out_dir / "runs.json"
    results = _load_matching(config, out_dir)
    if results is not None:
        results.document["config"]["arms"] = merge_arms(
            results.config.get("arms", []), [a.to_dict() for a in config.arms]
        )
        results.document["config"]["seeds"] = sorted(
            set(results.config.get("seeds", [])) | set(config.seeds)
        )
    else:
        document = {
            "format": "latentboost_lab.runs/1",
            "config": {
                "fixed": json.loads(json.dumps(config.fixed(), default=float)),
                "arms": [a.to_dict() for a in config.arms],
                "seeds": list(config.seeds),
                "device": config.device,
            },
            "commands": [],
            "environment": [],
            "runs": {},
        }
        results = Results(document, path)
    results.document["commands"].append(command or shlex.join(sys.argv))
    results.document["environment"].append(provenance())
    return results


def test_metrics(model, data, loss, pca_variance: float = 0.95, classifier: str = "head") -> dict:
    """Final test metrics of one run: accuracy and F1 of the arm's classifier (``head``: the
    softmax layer; ``clusters``: the loss's nearest-cluster rule), the softmax head's accuracy
    (``head_acc``) and the nearest-cluster accuracy (``cluster_acc``) where the loss has one,
    silhouette and Davies-Bouldin of the raw test latent and of its PCA (``pca_variance``)."""
    from .losses.pca import batch_pca
    from .metrics import davies_bouldin_score, embed, f1_score, silhouette_score

    # Every arm is measured in the same space, the classifier's input (the embedding), whichever
    # latent its distance term shaped: silhouettes of different spaces would not pair.
    shaped = model.latent
    model.latent = "embedding"
    try:
        latent, labels, logits = embed(model, data, "test", return_logits=True)
    finally:
        model.latent = shaped
    head_pred = logits.argmax(1)
    # The nearest-cluster scores of the same latents (as evaluate() does, without embedding the
    # test split a second time).
    scores = None
    if as_objective(loss).predicts:  # the nearest-cluster rule lives in the shaped latent
        scores = loss.predict(latent if shaped == "embedding" else embed(model, data, "test")[0])
    pred = scores.argmax(1) if classifier == "clusters" else head_pred
    pca = batch_pca(latent.double(), pca_variance)
    k = int(pca.k)
    pca_latent = pca.projected[:, :k].float()
    metrics = {
        "acc": float((pred == labels).float().mean()),
        "head_acc": float((head_pred == labels).float().mean()),
        "micro_f1": f1_score(pred, labels, average="micro"),
        "macro_f1": f1_score(pred, labels, average="macro"),
        "silhouette": silhouette_score(latent, labels),
        "silhouette_pca": silhouette_score(pca_latent, labels),
        "davies_bouldin": davies_bouldin_score(latent, labels),
        "davies_bouldin_pca": davies_bouldin_score(pca_latent, labels),
        "test_pca_k": k,
        "n_test": int(labels.numel()),
    }
    if scores is not None:
        metrics["cluster_acc"] = float((scores.argmax(1) == labels).float().mean())
    return {k: float(v) for k, v in metrics.items()}


def _clusters_used(loss, num_classes: int) -> dict:
    """The clusters per class a trained loss ended with: ``k_per_class`` (1 for every class
    where the loss has no cluster index: cross-entropy, Center, Latent Boost with K = 1) and,
    where the index chose them during training (``num_clusters="auto"``), ``k_selection``:
    the epoch, and per class the K, the rule and its score of every K tried."""
    index = getattr(loss, "index", None)
    if index is None:
        return {"k_per_class": [1] * num_classes}
    record = {"k_per_class": index.k_per_class(num_classes)}
    if index.selection is not None:
        record["k_selection"] = {
            "epoch": index.selected_epoch,
            "classes": [
                {**c, "scores": {str(k): v for k, v in c["scores"].items()}}
                for c in index.selection
            ],
        }
    return record


def subclass_metrics(model, data, k_per_class, seed: int = 0) -> dict:
    """:func:`latentboost_lab.subclasses.subclass_measures` of a trained model on a super-class
    task: the training and test latents at the classifier's input (the embedding, where
    :func:`test_metrics` measures every arm), ``k_per_class`` clusters per super-class (the
    arm's own: 1 for cross-entropy and Latent Boost with K = 1), k-means seeded with ``seed``;
    and ``subclass_nmi_k_sub``, ``subclass_ari_k_sub``: the within-super-class NMI and ARI of
    k-means with as many clusters as sub-classes, the same K for every arm."""
    from .inference import embed
    from .recipes import sub_classes_per_class
    from .subclasses import subclass_measures

    shaped = model.latent
    model.latent = "embedding"
    try:
        train_latent, train_labels = embed(model, data, "train")
        test_latent, test_labels = embed(model, data, "test")
    finally:
        model.latent = shaped

    def measures(ks):
        return subclass_measures(
            train_latent, train_labels, data.sub_labels("train"),
            test_latent, test_labels, data.sub_labels("test"),
            list(ks), num_classes=data.num_classes, seed=seed,
        )  # fmt: skip

    result = measures(k_per_class)
    # The same clustering for every arm, K = the number of sub-classes of each super-class:
    # the arm's own K = 1 scores 0 inside the super-classes by construction, this does not.
    k_sub = sub_classes_per_class(data)
    at_sub = result if list(k_per_class) == k_sub else measures(k_sub)
    result["subclass_nmi_k_sub"] = at_sub["subclass_nmi"]
    result["subclass_ari_k_sub"] = at_sub["subclass_ari"]
    return {k: float(v) for k, v in result.items()}


def _load_data(config: ExperimentConfig, seed: int):
    """One seed's data: the subsets and the validation split are drawn with that seed."""
    from .data import load_dataset

    return load_dataset(
        config.dataset,
        root=config.root,
        n_train=config.n_train,
        n_test=config.n_test,
        val_size=config.val_size,
        seed=seed,
        device=config.device,
        download=config.download,
        group=config.group,
    )


def _load_ood_sets(config: ExperimentConfig, data, seed: int) -> dict:
    """One seed's OOD sets (:func:`latentboost_lab.ood.load_ood`; the synthetic ones and any
    subsets drawn with that seed), in the data's image shape; {} without ``config.ood``."""
    from .ood import load_ood

    return {
        name: load_ood(
            name, data, n=config.n_ood, seed=seed, root=config.root, download=config.download
        )
        for name in config.ood
    }


def _ood_metrics(model, data, ood_sets: dict) -> dict:
    """``{set: {score: {auroc, aupr_in, aupr_out, fpr95}}}`` of one trained run: every default
    score of :class:`latentboost_lab.ood.OODScorer`, fitted on the training split, the test
    split against each OOD set (in the classifier's input space, as the test metrics)."""
    from .ood import OODScorer

    return OODScorer().fit(model, data).evaluate(ood_sets)


def build_run(arm: Arm, data, seed: int, *, model: str = "small_cnn", latent_dim=None):
    """The model and loss of one run of ``arm``; the model is built right after seeding, so
    every arm of a seed starts from the same weights (the runner's, ``demo``'s and ``train``'s
    runs alike)."""
    from .device import seed_everything
    from .models import build_model

    seed_everything(seed)
    network = build_model(model, data.info, latent_dim, latent=arm.latent)
    loss = make_loss(
        arm.loss, data=data, lam=arm.lam, latent_dim=network.latent_dim, **dict(arm.options)
    )
    return network, loss


def _build_run(config: ExperimentConfig, arm: Arm, data, seed: int):
    return build_run(arm, data, seed, model=config.model, latent_dim=config.latent_dim)


def _fit_kwargs(config: ExperimentConfig, arm: Arm, seed: int, progress: bool) -> dict:
    """The arguments of ``fit`` that a run and its time estimate share (all but the budget,
    early stopping and the checkpoint)."""
    return {
        "lr": config.lr,
        "batch_size": config.batch_size,
        "monitor": arm.monitor,
        "seed": seed,
        "bf16": config.bf16,
        "channels_last": CHANNELS_LAST[config.memory_format],
        "compile": config.compile,
        "eval_test": False,
        "progress": progress,
    }


def parse_shard(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"2/3"`` -> ``(2, 3)``: the second of three shards (1-based); None stays None."""
    if text is None:
        return None
    try:
        k, n = (int(v) for v in text.split("/")) if isinstance(text, str) else text
    except (ValueError, TypeError):
        raise ValueError(f"shard must be K/N with integers 1 <= K <= N, got {text!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"shard must be K/N with integers 1 <= K <= N, got {text!r}")
    return k, n


def planned_runs(config: ExperimentConfig, shard=None) -> list[tuple[int, Arm]]:
    """The runs of ``config`` as ``(seed, arm)`` in the runner's order (seeds, then arms), or
    shard K of N of them: every N-th from the K-th. The shards depend on the configuration only
    (not on what is done), so machines given the same command and K = 1..N split the runs
    between them, each run in exactly one shard, the arms spread over the shards."""
    todo = [(seed, arm) for seed in config.seeds for arm in config.arms]
    shard = parse_shard(shard)
    if shard is None:
        return todo
    k, n = shard
    return todo[k - 1 :: n]


def checkpoint_path(out_dir: Path, arm: Arm, seed: int) -> Path:
    """Where a run's last epoch is kept until the run is recorded (any launcher resumes it)."""
    return Path(out_dir) / "checkpoints" / f"{arm.name}_seed{seed}.pt".replace("/", "_")


def _train_one(
    config: ExperimentConfig, arm: Arm, seed: int, data, ood_sets: dict, out_dir: Path, progress
) -> dict | None:
    """Train, resuming from its checkpoint, and evaluate one run: its ``runs.json`` entry, or
    None when interrupted (the checkpoint then holds its last finished epoch)."""
    from .training import fit

    model, loss = _build_run(config, arm, data, seed)
    started = time.perf_counter()
    diverged = None
    try:
        history = fit(
            model,
            data,
            loss,
            **_fit_kwargs(config, arm, seed, progress),
            epochs=config.epochs,
            patience=config.patience,
            checkpoint=checkpoint_path(out_dir, arm, seed),
            resume=True,
        )
    except NonFiniteLossError as err:
        if not err.history or not err.history.epochs:
            raise  # not one epoch finished: nothing to evaluate, and likely a bug
        # A run that diverged is an outcome of its arm (issue 18: is an adaptive λ stable?):
        # recorded with its finished epochs, evaluated at the last of them, and counted.
        history = err.history
        diverged = {"message": str(err), "epoch": err.epoch, "step": err.step, "part": err.part}
    if history.interrupted:
        return None
    grouped = data.has_sub_labels
    clusters = _clusters_used(loss, data.num_classes)
    if grouped:  # a super-class task: the history says which
        history.config["group"] = data.info.group
    if "k_selection" in clusters:  # the K's chosen during training, and when
        history.config["k_selection"] = clusters["k_selection"]
    entry = {
        "arm": arm.name,
        "seed": seed,
        "arm_config": arm.to_dict(),
        "history": dataclasses.asdict(history),
        "monitor": arm.monitor,
        "test": test_metrics(model, data, loss, config.pca_variance, arm.classifier),
        "seconds": time.perf_counter() - started,  # this session's share when resumed
    }
    if diverged is not None:
        entry["diverged"] = diverged
    if grouped or "num_clusters" in dict(arm.options):
        entry["k_per_class"] = clusters["k_per_class"]
    if grouped:  # how much of the hidden sub-classes the latent keeps (issue 18)
        entry["subclass"] = subclass_metrics(model, data, clusters["k_per_class"], seed)
    if ood_sets:  # out-of-distribution detection (issue 16): after the test metrics
        entry["ood"] = _ood_metrics(model, data, ood_sets)
    return entry


def open_experiment(
    config: ExperimentConfig, out_dir, command: str | None = None, shard=None
) -> tuple[Path, Results, list]:
    """Check ``config`` and ``out_dir`` (writable, same settings as the runs already there), open
    its ``runs.json`` with this invocation's command and environment, and list the runs of
    ``shard`` still to do. Every runner starts here: sequential, worker processes, cluster jobs."""
    if not isinstance(config, ExperimentConfig):
        raise TypeError(f"config must be an ExperimentConfig, got {type(config).__name__}")
    todo = planned_runs(config, shard)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    (out_dir / "checkpoints").mkdir(exist_ok=True)
    results = _open_results(config, out_dir, command)
    # "auto" as the folder has it (read once by _open_results; a new folder records it).
    config.memory_format = resolve_memory_format(config, results.config["fixed"])
    results.save()
    return out_dir, results, [(s, a) for s, a in todo if run_key(a, s) not in results.runs]


def run_experiment(
    config: ExperimentConfig,
    out_dir: str | os.PathLike,
    *,
    progress: bool = True,
    command: str | None = None,
    report: bool = True,
    shard: str | tuple[int, int] | None = None,
) -> Results:
    """Train every arm with every seed (skipping the runs already in ``out_dir/runs.json``),
    evaluate each on the test split, and write ``runs.json`` after each run and the report at
    the end. Returns the :class:`Results`.

    shard: ``"K/N"``: only the K-th of N shards of the runs (:func:`planned_runs`).
    ``runs.json`` is written under a lock, keeping the runs other processes add meanwhile
    (:mod:`latentboost_lab.runstore`); several processes (and launchers,
    :mod:`latentboost_lab.launch`) can share one ``out_dir``.

    A KeyboardInterrupt stops at once: finished runs are saved, the run in progress keeps its
    last epoch's checkpoint in ``out_dir/checkpoints`` and continues from there next time;
    the KeyboardInterrupt is raised again so that a script stops too.
    """
    from tqdm.auto import tqdm

    out_dir, results, todo = open_experiment(config, out_dir, command, shard)
    data, data_seed, ood_sets = None, None, {}  # one seed's data at a time
    bar = tqdm(todo, desc="runs", disable=not progress)
    for seed, arm in bar:
        key = run_key(arm, seed)
        bar.set_postfix_str(key)
        if seed != data_seed:
            data, data_seed = _load_data(config, seed), seed
            ood_sets = _load_ood_sets(config, data, seed)
        entry = _train_one(config, arm, seed, data, ood_sets, out_dir, progress)
        if entry is None:
            results.save()
            raise KeyboardInterrupt(f"interrupted during {key}; run again to continue")
        results.runs[key] = entry
        results.save()
        checkpoint_path(out_dir, arm, seed).unlink(missing_ok=True)
    bar.close()
    if report:
        results.write_report()
    return results


_test_metrics = test_metrics  # the name it had
