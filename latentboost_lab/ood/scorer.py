""":class:`OODScorer`: every OOD score of one model, fitted once on its training split.

    scorer = OODScorer().fit(model, data)             # embeds the training split once
    scores = scorer.score(ood_images)                 # {"msp": (n,), "energy": (n,), ...}
    table = scorer.evaluate({"mnist": mnist_images})  # {"mnist": {"energy": {"auroc": ...}}}

The scores are taken in the model's **embedding**, the input of its classifier (``logits =
model.classifier(latent)``), whichever latent the model returns otherwise (``model.latent``):
the logit scores and the latent scores then look at the same network state, and every arm of
a comparison is scored in the same space, as the experiment runner's test metrics are.
"""

from __future__ import annotations

import re

import torch

from .._checks import check_in_range, check_int
from .metrics import ood_metrics
from .scores import (
    DEFAULT_BLOCK_BYTES,
    cluster_likelihood,
    energy,
    fit_clusters,
    fit_gaussian,
    knn,
    mahalanobis,
    max_logit,
    msp,
    normalize_rows,
)

__all__ = ["DEFAULT_SCORES", "LOGIT_SCORES", "OODScorer", "check_score_names"]

#: The scores computed from the logits alone.
LOGIT_SCORES = ("msp", "max_logit", "energy")
#: What :class:`OODScorer` computes by default: ``cluster`` is the cluster likelihood with one
#: cluster per class, ``cluster_k4`` with four (any ``cluster_kN``, N >= 2, may be asked for).
DEFAULT_SCORES = ("msp", "max_logit", "energy", "mahalanobis", "knn", "cluster", "cluster_k4")
_CLUSTER = re.compile(r"cluster(?:_k([0-9]+))?$")


def check_score_names(scores) -> tuple[str, ...]:
    """``scores`` as a tuple of known names (clear error otherwise)."""
    if isinstance(scores, str):
        scores = [s.strip() for s in scores.split(",") if s.strip()]
    scores = tuple(scores)
    known = (*LOGIT_SCORES, "mahalanobis", "knn", "cluster", "cluster_kN")
    for s in scores:
        match = _CLUSTER.match(s) if isinstance(s, str) else None
        ok = s in LOGIT_SCORES or s in ("mahalanobis", "knn") or match is not None
        if ok and match is not None and match.group(1) is not None and int(match.group(1)) < 2:
            ok = False
        if not ok:
            raise ValueError(f"scores must be among {list(known)} (N >= 2), got {s!r}")
    if not scores or len(set(scores)) != len(scores):
        raise ValueError(f"scores must be a non-empty list of distinct names, got {list(scores)}")
    return scores


def _num_clusters(name: str) -> int:
    k = _CLUSTER.match(name).group(1)
    return 1 if k is None else int(k)


class OODScorer:
    """Fit once on the training split of a model, then score any images or latents.

    Args:
        scores: the names to compute (:data:`DEFAULT_SCORES`; see :mod:`.scores` for each one's
            paper and equation): msp, max_logit, energy, mahalanobis, knn, cluster, cluster_kN.
        k: the kNN score's neighbour (Sun et al.'s k; 50, their CIFAR-10 choice), at most the
            number of training latents.
        temperature: of msp and energy (1: the plain scores).
        cluster_variance: ``"cluster"`` (Latent Boost's per-cluster variances) or ``"shared"``
            (Magnet's), for the cluster scores.
        seed: of the k-means of the cluster scores with K > 1.
        batch_size: images per forward pass.
        block_bytes: memory of one block of the distance computations (see :func:`.scores.knn`).

    After :meth:`fit` (or :meth:`fit_latents`) it holds only what the scores need, on the data's
    device: the kNN bank (the normalised training latents, float32, ``4 N d`` bytes), the class
    means and a ``d x r`` float64 whitening (Mahalanobis), the cluster centres and variances
    (``8 C K d`` bytes), and references to the model and the data (no copies).

    Memory, measured as the peak resident memory a call adds on the CPU (one thread, fresh
    process; ``python benchmarks/bench_ood_knn.py --threads 1``: a 60,000 x 128 float32 bank of
    training latents with 10 classes, 10,000 query latents, every default score):
    ``fit_latents`` 142 MiB (3.2 s) and ``score_latents`` 42 MiB (20.7 s, most of it the kNN
    search; the machine was at load average 7), ``benchmarks/results/bench_ood_knn.md``. The kNN
    bank of the whole Fashion-MNIST training split with SmallCNN's 128-wide latent is 29 MiB.
    """

    def __init__(
        self,
        scores=DEFAULT_SCORES,
        *,
        k: int = 50,
        temperature: float = 1.0,
        cluster_variance: str = "cluster",
        seed: int = 0,
        batch_size: int = 1024,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
    ):
        self.scores = check_score_names(scores)
        self.k = check_int("k", k, 1)
        self.temperature = check_in_range(
            "temperature", temperature, 0.0, None, low_inclusive=False
        )
        if cluster_variance not in ("cluster", "shared"):
            raise ValueError(
                f"cluster_variance must be 'cluster' or 'shared', got {cluster_variance!r}"
            )
        self.cluster_variance = cluster_variance
        self.seed = check_int("seed", seed, 0)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.block_bytes = check_int("block_bytes", block_bytes, 1)
        self.model = None
        self.data = None
        self.gaussian = None
        self.bank: torch.Tensor | None = None
        self.clusters: dict = {}
        self.width: int | None = None

    def __repr__(self) -> str:
        state = f"fitted on {self.bank_size} latents" if self.fitted else "not fitted"
        return f"OODScorer(scores={list(self.scores)}, k={self.k}, {state})"

    @property
    def fitted(self) -> bool:
        return self.width is not None

    @property
    def bank_size(self) -> int:
        return 0 if self.bank is None else int(self.bank.shape[0])

    def _require_fit(self, what: str) -> None:
        if not self.fitted:
            raise RuntimeError(
                f"OODScorer.{what}: the scorer is not fitted yet; call fit(model, data) or "
                "fit_latents(latent, labels) first"
            )

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, model, data, split: str = "train") -> OODScorer:
        """Embed ``data``'s ``split`` (the training split) with ``model`` and fit every score
        on those latents; keep the model and the data for :meth:`score`."""
        latent, labels, _ = self._embed_split(model, data, split)
        self.model, self.data = model, data
        return self.fit_latents(latent, labels, num_classes=getattr(data, "num_classes", None))

    def fit_latents(self, latent, labels, num_classes: int | None = None) -> OODScorer:
        """Fit the latent scores on training latents ``(N, d)`` and labels ``(N,)``."""
        from .scores import _check

        latent = _check(latent, "latent")
        if "knn" in self.scores and self.k > latent.shape[0]:
            raise ValueError(
                f"k must be <= the number of training latents ({latent.shape[0]}), got {self.k}"
            )
        self.gaussian = (
            fit_gaussian(latent, labels, num_classes) if "mahalanobis" in self.scores else None
        )
        self.bank = normalize_rows(latent.float()).contiguous() if "knn" in self.scores else None
        self.clusters = {
            name: fit_clusters(
                latent,
                labels,
                _num_clusters(name),
                variance=self.cluster_variance,
                num_classes=num_classes,
                seed=self.seed,
            )
            for name in self.scores
            if _CLUSTER.match(name)
        }
        self.width = int(latent.shape[1])
        return self

    # -- scoring ---------------------------------------------------------------------------
    def score_latents(self, latent, logits=None) -> dict[str, torch.Tensor]:
        """Every score (float64, higher = more in-distribution) of latents ``(n, d)``; the logit
        scores need ``logits (n, classes)`` (without them, with a fitted model whose latent is
        its embedding, they are ``model.classifier(latent)``)."""
        from .scores import _check

        self._require_fit("score_latents")
        latent = _check(latent, "latent")
        if latent.shape[1] != self.width:
            raise ValueError(
                f"latent must have width {self.width} (the fitted one), got {latent.shape[1]}"
            )
        wanted_logits = [s for s in self.scores if s in LOGIT_SCORES]
        if wanted_logits and logits is None:
            classifier = getattr(self.model, "classifier", None)
            if classifier is None:
                raise ValueError(
                    f"logits: the scores {wanted_logits} need the logits; pass logits= or fit with "
                    "a model whose classifier takes the latent"
                )
            with torch.no_grad():
                logits = classifier(latent.to(next(classifier.parameters()).device))
        if logits is not None:
            logits = _check(logits, "logits")
            if logits.shape[0] != latent.shape[0]:
                raise ValueError(
                    f"logits and latent must have the same number of rows, got {logits.shape[0]} and {latent.shape[0]}"
                )
        out = {}
        for name in self.scores:
            if name == "msp":
                out[name] = msp(logits, self.temperature)
            elif name == "max_logit":
                out[name] = max_logit(logits)
            elif name == "energy":
                out[name] = energy(logits, self.temperature)
            elif name == "mahalanobis":
                out[name] = mahalanobis(latent, self.gaussian, block_bytes=self.block_bytes)
            elif name == "knn":
                out[name] = knn(
                    latent, self.bank, self.k, normalized_bank=True, block_bytes=self.block_bytes
                )
            else:
                out[name] = cluster_likelihood(
                    latent, self.clusters[name], block_bytes=self.block_bytes
                )
        return out

    def score(self, images) -> dict[str, torch.Tensor]:
        """Every score of uint8 images ``(n, C, H, W)`` in the in-distribution image shape
        (see :func:`~latentboost_lab.ood.to_shape`), normalised with the fitted data's
        statistics, embedded with the fitted model."""
        self._require_fit("score")
        if self.model is None:
            raise RuntimeError(
                "OODScorer.score: fitted on latents only; use score_latents, or fit(model, data)"
            )
        latent, logits = self.embed_images(images)
        return self.score_latents(latent, logits)

    def score_split(self, split: str = "test") -> dict[str, torch.Tensor]:
        """Every score of the fitted data's ``split`` (the in-distribution test samples)."""
        self._require_fit("score_split")
        if self.model is None:
            raise RuntimeError(
                "OODScorer.score_split: fitted on latents only; fit(model, data) first"
            )
        latent, _, logits = self._embed_split(self.model, self.data, split)
        return self.score_latents(latent, logits)

    def evaluate(
        self, ood_sets: dict, in_scores: dict | None = None
    ) -> dict[str, dict[str, dict[str, float]]]:
        """``{set: {score: {"auroc", "aupr_in", "aupr_out", "fpr95"}}}`` of the fitted data's
        test split (in-distribution) against each OOD set. ``ood_sets``: ``{name: images}``
        (uint8 tensors or :class:`~latentboost_lab.ood.OODSet`); ``in_scores``: the test
        split's scores when already computed."""
        self._require_fit("evaluate")
        if not isinstance(ood_sets, dict) or not ood_sets:
            raise ValueError("ood_sets must be a non-empty dict {name: images}")
        in_scores = self.score_split("test") if in_scores is None else in_scores
        result = {}
        for name, images in ood_sets.items():
            images = getattr(images, "images", images)
            out_scores = self.score(images)
            result[name] = {s: ood_metrics(in_scores[s], out_scores[s]) for s in self.scores}
        return result

    # -- embedding -------------------------------------------------------------------------
    def _embed_split(self, model, data, split):
        from ..metrics import embed

        with _embedding_latent(model):
            latent, labels, logits = embed(model, data, split, self.batch_size, return_logits=True)
        if labels.numel() == 0:
            raise ValueError(f"data: its {split} split is empty")
        return latent, labels, logits

    def embed_images(self, images) -> tuple[torch.Tensor, torch.Tensor]:
        """``(latent, logits)`` of uint8 images with the fitted model (its embedding; the
        images normalised with the fitted data's statistics), after the shape checks."""
        from ..data import TensorData
        from ..metrics import embed

        shape = tuple(self.data.info.image_shape)
        if not isinstance(images, torch.Tensor):
            raise TypeError(
                f"images must be a uint8 torch.Tensor (n, C, H, W), got {type(images).__name__}"
            )
        if images.dtype != torch.uint8:
            raise ValueError(
                f"images must be uint8 (0..255, normalised here with the in-distribution statistics), got {images.dtype}"
            )
        if images.dim() != 4 or tuple(images.shape[1:]) != shape:
            raise ValueError(
                f"images must have shape (n, {', '.join(map(str, shape))}) to fit the model "
                f"(trained on {self.data.info.name}), got {tuple(images.shape)}; convert them with "
                "latentboost_lab.ood.to_shape(images, data.info.image_shape)"
            )
        if images.shape[0] == 0:
            raise ValueError("images: the OOD set is empty (0 images)")
        labels = torch.zeros(images.shape[0], dtype=torch.long)
        wrapped = TensorData(
            self.data.info, {"test": (images, labels)}, "OOD images", self.data.device
        )
        with _embedding_latent(self.model):
            latent, _, logits = embed(
                self.model, wrapped, "test", self.batch_size, return_logits=True
            )
        return latent, logits


class _embedding_latent:
    """Within the block the model returns its embedding as the latent (see the module docs)."""

    def __init__(self, model):
        self.model = model
        self.saved = getattr(model, "latent", None)

    def __enter__(self):
        if self.saved not in (None, "embedding"):
            self.model.latent = "embedding"

    def __exit__(self, *exc):
        if self.saved not in (None, "embedding"):
            self.model.latent = self.saved
