"""Plots of a latent space, its silhouette, a confusion matrix and a training history.

Each function draws on the ``ax`` it is given (or on a new figure) and returns the Axes (or the
Figure for multi-panel plots); none calls ``plt.show()``, so notebooks, live widgets and the CLI
(which saves to a file) use them alike. Inputs may be torch tensors on any device or NumPy
arrays; they are validated with the package's shared checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.transforms import blended_transform_factory

from ._checks import check_choice, check_int, check_latent
from .losses.pca import principal_basis
from .metrics import _as_tensor, silhouette_samples
from .metrics import _latent_and_labels as metrics_latent_and_labels

__all__ = [
    "PCAProjection",
    "fit_projection",
    "plot_comparison_latents",
    "plot_confusion_matrix",
    "plot_history",
    "plot_latent_2d",
    "plot_silhouette",
]


def _latent_and_labels(latent, labels):
    return metrics_latent_and_labels(latent, labels, name="latent")


def _class_colours(num_classes: int):
    """Distinct colours: tab10 / tab20 for up to 20 classes, evenly spaced turbo beyond."""
    if num_classes <= 10:
        return [colormaps["tab10"](k) for k in range(num_classes)]
    if num_classes <= 20:
        return [colormaps["tab20"](k) for k in range(num_classes)]
    return [colormaps["turbo"](k / (num_classes - 1)) for k in range(num_classes)]


def _class_name(class_names, k: int) -> str:
    return str(k) if class_names is None else str(class_names[k])


def _check_class_names(class_names, labels: torch.Tensor):
    if class_names is None or labels.numel() == 0:
        return
    needed = int(labels.max()) + 1
    if len(class_names) < needed:
        raise ValueError(
            f"class_names must name every class index in labels (at least {needed}), "
            f"got {len(class_names)}"
        )


def _new_axes(ax, figsize=(5.5, 4.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    elif not isinstance(ax, plt.Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _subset(n: int, max_points: int | None, seed: int) -> torch.Tensor | None:
    """A seeded random subset of ``max_points`` indices, or None when all points are kept."""
    if max_points is None or n <= max_points:
        return None
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[:max_points].sort().values


# ----------------------------------------------------------------------------- projections


class PCAProjection:
    """A fitted 2-D PCA: ``projection(latent) -> (n, 2)`` float32 tensor on latent's device.

    Fit once (e.g. on the first epoch's latents) and reuse it, so that successive plots of a
    changing latent space share the same axes. ``explained_variance_ratio`` holds the fraction
    of the variance along each axis.
    """

    def __init__(self, mean: torch.Tensor, components: torch.Tensor, explained_variance_ratio):
        self.mean = mean  # (width,) float64, CPU
        self.components = components  # (width, 2) float64, CPU
        self.explained_variance_ratio = tuple(float(r) for r in explained_variance_ratio)

    def __call__(self, latent) -> torch.Tensor:
        latent = check_latent(_as_tensor(latent), name="latent")
        if latent.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"latent must have width {self.mean.shape[0]} (the fitted projection's), "
                f"got {latent.shape[1]}"
            )
        mean = self.mean.to(latent.device)
        components = self.components.to(latent.device)
        return ((latent.double() - mean) @ components).float()

    def __repr__(self) -> str:
        ratios = ", ".join(f"{r:.1%}" for r in self.explained_variance_ratio)
        return f"PCAProjection(width={self.mean.shape[0]}, explained variance {ratios})"


def fit_projection(latent) -> PCAProjection:
    """Fit a 2-D PCA of ``latent (n, width)`` and return it as a reusable callable.

    The principal axes come from the loss's own PCA (:func:`~latentboost_lab.losses.pca.
    principal_basis`: float64, the scatter or the Gram matrix, whichever is smaller), so a plot
    and the batch PCA of Latent Boost are one computation. Each axis's sign is fixed so that its
    largest-magnitude coefficient is positive (scikit-learn's convention), so refitting on the
    same data always gives the same picture rather than a mirrored one.
    """
    latent = check_latent(_as_tensor(latent), name="latent")
    if latent.shape[0] < 1:
        raise ValueError("latent must hold at least one sample, got 0")
    x = latent.detach().to("cpu", torch.float64)
    mean = x.mean(dim=0)
    basis, variances = principal_basis(x - mean)  # largest first
    top = min(2, basis.shape[1])
    components = basis[:, :top]
    largest = components.abs().argmax(dim=0)
    signs = torch.sign(components[largest, torch.arange(top)])
    components = components * torch.where(signs == 0, 1.0, signs)
    total = variances.sum()
    ratios = (variances[:top] / total).tolist() if total > 0 else [0.0] * top
    if top < 2:  # a 1-D latent or a single sample: the second axis is constant
        components = torch.cat([components, torch.zeros(x.shape[1], 2 - top, dtype=x.dtype)], dim=1)
        ratios = ratios + [0.0] * (2 - top)
    return PCAProjection(mean, components, ratios)


def _tsne(latent: torch.Tensor, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE  # imported here: slow to import, rarely needed

    n = latent.shape[0]
    # scikit-learn requires perplexity < n; 30 is its default for large n
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed)
    return tsne.fit_transform(latent.detach().cpu().double().numpy())


# ----------------------------------------------------------------------------- plots


def plot_latent_2d(
    latent,
    labels,
    class_names: Sequence[str] | None = None,
    method: str = "pca",
    ax=None,
    title: str | None = None,
    projection: Callable | None = None,
    *,
    max_points: int | None = 5000,
    seed: int = 0,
    legend: bool = True,
):
    """Scatter of a 2-D projection of ``latent (n, width)``, one colour per class.

    ``method="pca"`` (fast, linear, axes comparable across epochs) or ``"tsne"`` (slow, shows
    local neighbourhoods; distances between far clusters mean little). ``projection``: a
    fitted :func:`fit_projection` (or any callable ``latent -> (n, 2)``) to keep the axes fixed
    across calls, e.g. in a live widget during training; PCA only. At most ``max_points``
    randomly chosen points (``seed``) are drawn, which keeps scatters legible and t-SNE quick
    (a PCA is still fitted on all points). Returns the Axes.
    """
    latent, labels = _latent_and_labels(latent, labels)
    check_choice("method", method, ("pca", "tsne"))
    _check_class_names(class_names, labels)
    if max_points is not None:
        max_points = check_int("max_points", max_points, 1)
    if projection is not None and method != "pca":
        raise ValueError("projection can only be used with method='pca' (t-SNE has no fixed map)")
    if projection is not None and not callable(projection):
        raise TypeError(f"projection must be callable, got {type(projection).__name__}")
    ax = _new_axes(ax)
    subset = _subset(latent.shape[0], max_points, seed)
    labels_cpu = labels.detach().cpu()
    if method == "pca":
        if projection is None:
            projection = fit_projection(latent)
        points = projection(latent.detach())
        if isinstance(points, torch.Tensor):
            points = points.detach().cpu().double().numpy()
        points = np.asarray(points, dtype=float)
        if points.ndim != 2 or points.shape[1] < 2 or points.shape[0] != latent.shape[0]:
            raise ValueError(f"projection must return an (n, 2) array, got shape {points.shape}")
        if subset is not None:
            points = points[subset.numpy()]
        ratios = getattr(projection, "explained_variance_ratio", None)
        axis_names = [
            f"PC {i + 1}" + (f" ({ratios[i]:.0%} of variance)" if ratios else "") for i in (0, 1)
        ]
    else:
        chosen = latent.detach().cpu() if subset is None else latent.detach().cpu()[subset]
        points = _tsne(chosen, seed)
        axis_names = ["t-SNE 1", "t-SNE 2"]
    if subset is not None:
        labels_cpu = labels_cpu[subset]
    labels_np = labels_cpu.numpy()
    classes = np.unique(labels_np)
    num_classes = int(labels_np.max()) + 1 if labels_np.size else 0
    colours = _class_colours(max(num_classes, 1))
    size = 4 if len(labels_np) > 2000 else 12
    for k in classes:
        mask = labels_np == k
        ax.scatter(
            points[mask, 0],
            points[mask, 1],
            s=size,
            alpha=0.7,
            color=colours[k],
            label=_class_name(class_names, int(k)),
            linewidths=0,
        )
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    if title is not None:
        ax.set_title(title)
    if legend and 0 < len(classes) <= 20:
        ax.legend(markerscale=2, fontsize="small", loc="best", frameon=False)
    return ax


def plot_silhouette(
    latent,
    labels,
    class_names: Sequence[str] | None = None,
    ax=None,
    *,
    max_points: int | None = 10000,
    seed: int = 0,
):
    """The classic silhouette plot: per class, the silhouette values of its samples sorted as
    horizontal bars, and a dashed line at the mean (the silhouette score).

    Bars right of the line mean a well-separated class; bars below 0 are samples nearer another
    class. Values come from :func:`~latentboost_lab.metrics.silhouette_samples`, on at most
    ``max_points`` randomly chosen samples (``seed``; ``None`` for all, which on a CPU takes
    about a minute for 60,000). Returns the Axes.
    """
    latent, labels = _latent_and_labels(latent, labels)
    _check_class_names(class_names, labels)
    if max_points is not None:
        max_points = check_int("max_points", max_points, 3)
    subset = _subset(latent.shape[0], max_points, seed)
    if subset is not None:
        subset = subset.to(latent.device)
        latent, labels = latent[subset], labels[subset]
    values = silhouette_samples(latent, labels).detach().cpu().double().numpy()
    labels_np = labels.detach().cpu().numpy()
    ax = _new_axes(ax)
    classes = np.unique(labels_np)
    colours = _class_colours(int(labels_np.max()) + 1)
    gap = max(2, len(values) // 100)  # blank rows between classes
    y = gap
    for k in classes:
        class_values = np.sort(values[labels_np == k])
        rows = np.arange(y, y + len(class_values))
        ax.fill_betweenx(
            rows, 0, class_values, facecolor=colours[k], edgecolor=colours[k], alpha=0.8
        )
        ax.text(
            -0.02,
            y + len(class_values) / 2,
            _class_name(class_names, int(k)),
            ha="right",
            va="center",
            fontsize="small",
            transform=ax.get_yaxis_transform(),
        )
        y += len(class_values) + gap
    mean = float(values.mean())
    ax.axvline(mean, color="red", linestyle="--", label=f"mean {mean:.3f}")
    ax.axvline(0, color="black", linewidth=0.5)
    ax.set_xlim(min(-0.1, float(values.min()) - 0.05), 1.0)
    ax.set_ylim(0, y)
    ax.set_yticks([])
    ax.set_xlabel("silhouette value")
    ax.set_title(f"silhouette per class (n = {len(values)})")
    ax.legend(loc="lower right", fontsize="small")
    return ax


def plot_confusion_matrix(cm, class_names: Sequence[str] | None = None, ax=None, normalize=True):
    """Heat map of a confusion matrix (rows: true class, columns: predicted class).

    ``cm``: counts from :func:`~latentboost_lab.metrics.confusion_matrix` (tensor or array).
    ``normalize=True`` divides each row by its total, so the diagonal reads as per-class recall
    (an empty row stays 0). Cells are annotated up to 20 classes. Returns the Axes.
    """
    matrix = _as_tensor(cm)
    if not isinstance(matrix, torch.Tensor):
        raise TypeError(f"cm must be a torch.Tensor or numpy array, got {type(cm).__name__}")
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(
            f"cm must be a non-empty square 2-D matrix, got shape {tuple(matrix.shape)}"
        )
    matrix = matrix.detach().cpu().double()
    if not torch.isfinite(matrix).all() or (matrix < 0).any():
        raise ValueError("cm must hold finite, non-negative counts")
    num_classes = matrix.shape[0]
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(
            f"class_names must have {num_classes} entries (cm's size), got {len(class_names)}"
        )
    if normalize:
        totals = matrix.sum(dim=1, keepdim=True)
        matrix = torch.where(totals > 0, matrix / totals.clamp(min=1e-300), 0.0)
    values = matrix.numpy()
    ax = _new_axes(
        ax, figsize=(max(4.0, 0.45 * num_classes + 2), max(3.5, 0.45 * num_classes + 1.5))
    )
    vmax = 1.0 if normalize else max(float(values.max()), 1.0)
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    names = [_class_name(class_names, k) for k in range(num_classes)]
    ax.set_xticks(range(num_classes), names, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(num_classes), names, fontsize="small")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if num_classes <= 20:
        for row in range(num_classes):
            for col in range(num_classes):
                value = values[row, col]
                text = f"{value:.2f}" if normalize else f"{int(round(value))}"
                colour = "white" if value > vmax / 2 else "black"
                ax.text(col, row, text, ha="center", va="center", color=colour, fontsize="x-small")
    return ax


def _records(history) -> list[Mapping]:
    records = getattr(history, "epochs", history)
    if isinstance(records, Mapping) or not isinstance(records, Sequence):
        raise TypeError(
            f"history must be a History or a list of per-epoch dicts, got {type(history).__name__}"
        )
    for record in records:
        if not isinstance(record, Mapping):
            raise TypeError(f"history must hold one dict per epoch, got {type(record).__name__}")
    return list(records)


def _number(value) -> float:
    if isinstance(value, torch.Tensor):
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def plot_history(history, keys=("train_loss", "val_acc"), ax=None, marks=None):
    """One curve per key over the epochs of a training ``History`` (or a list of per-epoch dicts,
    with an ``"epoch"`` entry or else numbered from 1). Epochs where a key is missing or not
    finite are skipped. ``marks``: ``[(epoch, label), ...]`` drawn as labelled vertical lines,
    e.g. where λ changes. Returns the Axes.
    """
    records = _records(history)
    if isinstance(keys, str):
        keys = (keys,)
    keys = tuple(keys)
    if not keys:
        raise ValueError("keys must name at least one entry of the history")
    available = sorted({key for record in records for key in record})
    missing = [key for key in keys if key not in available]
    if missing:
        raise ValueError(f"keys {missing} are not in the history; it has {available}")
    epochs = [_number(record.get("epoch", i + 1)) for i, record in enumerate(records)]
    ax = _new_axes(ax, figsize=(6, 4))
    for key in keys:
        pairs = [(e, _number(r.get(key))) for e, r in zip(epochs, records, strict=True)]
        pairs = [(e, v) for e, v in pairs if math.isfinite(e) and math.isfinite(v)]
        xs, ys = zip(*pairs, strict=True) if pairs else ((), ())
        ax.plot(xs, ys, marker="o" if len(xs) <= 30 else None, markersize=3, label=key)
    if marks:
        labelled = blended_transform_factory(ax.transData, ax.transAxes)
        for mark in marks:
            if not isinstance(mark, Sequence) or len(mark) != 2:
                raise ValueError(f"marks must be (epoch, label) pairs, got {mark!r}")
            epoch, label = mark
            # Drawn to be seen at a glance in the playground's small panels.
            ax.axvline(_number(epoch), color="tab:purple", linestyle="--", linewidth=1.5, alpha=0.8)
            ax.text(
                _number(epoch),
                0.98,
                f" {label}",
                transform=labelled,
                rotation=90,
                va="top",
                ha="left",
                fontsize="small",
                fontweight="bold",
                color="tab:purple",
            )
    ax.set_xlabel("epoch")
    ax.legend(fontsize="small", frameon=False)
    ax.grid(alpha=0.3)
    return ax


def plot_comparison_latents(
    results: Mapping[str, tuple],
    class_names: Sequence[str] | None = None,
    method: str = "pca",
    *,
    max_points: int | None = 5000,
    seed: int = 0,
):
    """One :func:`plot_latent_2d` panel per arm, side by side, e.g. cross-entropy against
    Latent Boost. ``results``: ``{name: (latent, labels)}``; each latent gets its own PCA (the
    arms' latent spaces are different spaces). The legend is drawn on the last panel only.
    Returns the Figure.
    """
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty dict {name: (latent, labels)}")
    check_choice("method", method, ("pca", "tsne"))
    for name, pair in results.items():
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"results[{name!r}] must be a (latent, labels) pair")
    figure, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.5), squeeze=False)
    for index, (ax, (name, (latent, labels))) in enumerate(
        zip(axes[0], results.items(), strict=True)
    ):
        plot_latent_2d(
            latent,
            labels,
            class_names,
            method=method,
            ax=ax,
            title=str(name),
            max_points=max_points,
            seed=seed,
            legend=index == len(results) - 1,
        )
    figure.tight_layout()
    return figure
