"""The λ playground: train a Latent Boost model a few epochs at a time and watch its latent space.

``LambdaPlayground(data)`` builds an ipywidgets panel (``playground.widget``; display it in a
notebook) with

- a λ slider (``continuous_update=False``: a value is sent when the slider is released),
  α₀ / k_α (intra-cluster weight ``α(E) = max(α_min, α₀·exp(-k_α·E))``), β₀ / k_β (inter-cluster
  weight ``β(E) = min(β_max, β₀ + k_β·E)``), PCA on/off, the number of training images used;
- "Train N epochs": continues from the current weights and optimizer state with the values the
  controls hold *at the start of each epoch*; "Reset": a fresh model, optimizer and history;
- a live view in an ``Output`` widget, redrawn after each epoch: the loss parts, accuracy,
  silhouette and a 2-D PCA of the test latents coloured by class, and under it one printed line
  per epoch (λ, α, β, the loss parts, accuracy, silhouette). The PCA is fitted once (after
  the first epoch after a reset) and then kept, so the motion of the clusters is visible;
  λ changes are marked on the curves.

It is headless: building it and pressing its buttons from code (``playground.lam.value = 0.5;
playground.train_button.click()``) works in plain Python without a browser, which is how the
tests and notebook 06 in CI run the callbacks. Nothing here re-implements training: each epoch
is one call of :func:`latentboost_lab.training.fit` with the playground's optimizer.
"""

from __future__ import annotations

from functools import partial

import torch

from . import schedules
from .data import TensorData, stratified_indices
from .losses import LatentBoostLoss
from .metrics import embed, silhouette_score
from .models import build_model
from .training import History, fit

__all__ = ["LambdaPlayground"]

WHY_NOT_MID_EPOCH = (
    "The controls are read at the start of every epoch. In a live notebook, moving a control "
    "while <i>Train</i> is running takes effect only after the run ends: the kernel handles one "
    "message at a time, so the slider's new value waits in the queue until the training callback "
    "returns (and an epoch is never changed half-way, so that each point on the curves belongs "
    "to one setting). Set the values, then press <i>Train</i>."
)


def _shifted(epoch: int, *, offset: int, schedule, **kwargs) -> float:
    """``schedule(epoch + offset, **kwargs)``: fit numbers each call's epochs from 0, the
    playground continues its own epoch count."""
    return schedule(epoch + offset, **kwargs)


class LambdaPlayground:
    """Interactive Latent Boost training; see the module docstring.

    Args:
        data: a :class:`~latentboost_lab.data.TensorData` (its test split is plotted).
        lam, alpha0, k_alpha, beta0, k_beta, pca: the controls' initial values.
        n_train: initial number of training images (a stratified subset; None: all).
        epochs_per_click: initial value of N.
        model_name, latent_dim: the model built at each reset (see :func:`build_model`).
        lr, batch_size, seed: training settings (fixed).
        max_points: test points drawn in the scatter.
        live: draw into the Output widget after each epoch (False: record only, e.g. in tests).
    """

    def __init__(
        self,
        data: TensorData,
        *,
        lam: float = 0.75,
        alpha0: float = 1.0,
        k_alpha: float = 0.05,
        beta0: float = 0.5,
        k_beta: float = 0.05,
        pca: bool = True,
        n_train: int | None = None,
        epochs_per_click: int = 1,
        model_name: str = "small_cnn",
        latent_dim: int = 128,
        lr: float = 1e-3,
        batch_size: int = 128,
        seed: int = 0,
        max_points: int = 1000,
        live: bool = True,
    ):
        import ipywidgets as w

        if not isinstance(data, TensorData):
            raise TypeError(f"data must be a TensorData, got {type(data).__name__}")
        self.data = data
        self.model_name, self.latent_dim = model_name, latent_dim
        self.lr, self.batch_size, self.seed = lr, batch_size, seed
        self.max_points, self.live = max_points, live
        n_all = len(data.y_train)
        n_train = n_all if n_train is None else min(int(n_train), n_all)
        style = {"description_width": "initial"}
        slider = partial(w.FloatSlider, continuous_update=False, style=style, readout_format=".2f")
        self.lam = slider(value=lam, min=0.0, max=1.0, step=0.05, description="λ (share of L_dist)")
        self.alpha0 = slider(value=alpha0, min=0.0, max=3.0, step=0.1, description="α₀")
        self.k_alpha = slider(value=k_alpha, min=0.0, max=0.5, step=0.01, description="k_α")
        self.beta0 = slider(value=beta0, min=0.0, max=3.0, step=0.1, description="β₀")
        self.k_beta = slider(value=k_beta, min=0.0, max=0.5, step=0.01, description="k_β")
        self.pca = w.Checkbox(value=pca, description="batch PCA (95% of variance)", indent=False)
        step = max(1, min(500, n_all // 10))
        self.n_train = w.IntSlider(value=n_train, min=min(step, n_all), max=n_all, step=step,
                                   continuous_update=False, style=style,
                                   description="training images")  # fmt: skip
        self.epochs = w.BoundedIntText(value=epochs_per_click, min=1, max=100, description="N epochs",
                                       style=style, layout=w.Layout(width="140px"))  # fmt: skip
        self.train_button = w.Button(
            description="Train N epochs", button_style="primary", icon="play"
        )
        self.reset_button = w.Button(description="Reset", icon="refresh")
        self.status = w.HTML()
        self.output = w.Output()
        self.train_button.on_click(lambda _: self.train())
        self.reset_button.on_click(lambda _: self.reset())
        # ipywidgets' HTML has the line height of a control row: reset it for a paragraph
        help_text = w.HTML(
            f'<div style="line-height: 1.4"><small>{WHY_NOT_MID_EPOCH}</small></div>'
        )
        controls = w.VBox([
            self.lam, w.HBox([self.alpha0, self.k_alpha]), w.HBox([self.beta0, self.k_beta]),
            w.HBox([self.pca, self.n_train]), w.HBox([self.epochs, self.train_button, self.reset_button]),
            self.status, help_text,
        ])  # fmt: skip
        self.widget = w.VBox([controls, self.output])
        self.reset()

    # -- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        """A fresh model and optimizer, an empty history, no fixed projection yet."""
        torch.manual_seed(self.seed)
        self.model = build_model(self.model_name, self.data.info, latent_dim=self.latent_dim)
        self.model.to(self.data.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.loss = LatentBoostLoss(lam=float(self.lam.value))
        self.history = History(config={"model": self.model_name, "dataset": self.data.info.name,
                                       "lr": self.lr, "batch_size": self.batch_size,
                                       "seed": self.seed})  # fmt: skip
        self.projection = None
        self._latent = None
        self.output.clear_output()
        self._set_status("fresh model: press <i>Train</i>")

    def settings(self) -> dict:
        """The controls' current values."""
        return {"lam": float(self.lam.value), "alpha0": float(self.alpha0.value),
                "k_alpha": float(self.k_alpha.value), "beta0": float(self.beta0.value),
                "k_beta": float(self.k_beta.value), "pca": bool(self.pca.value),
                "n_train": int(self.n_train.value)}  # fmt: skip

    def _training_data(self, n_train: int) -> TensorData:
        x, y = self.data.split("train")
        if n_train >= len(y):
            return self.data
        keep = stratified_indices(y, n_train, torch.Generator().manual_seed(self.seed)).to(y.device)
        splits = {"train": (x[keep], y[keep]), "val": self.data.split("val"),
                  "test": self.data.split("test")}  # fmt: skip
        return TensorData(self.data.info, splits, self.data.source, self.data.device)

    # -- training --------------------------------------------------------------------------
    def train(self, epochs: int | None = None) -> History:
        """Train ``epochs`` (default: the N box) more epochs, reading the controls before each."""
        epochs = int(self.epochs.value if epochs is None else epochs)
        self.train_button.disabled = self.reset_button.disabled = True  # a visible "busy"
        try:
            for _ in range(epochs):
                self._train_one_epoch()
        finally:
            self.train_button.disabled = self.reset_button.disabled = False
        return self.history

    def _train_one_epoch(self) -> None:
        s = self.settings()
        epoch = len(self.history)
        loss = self.loss
        loss.lam = s["lam"]
        loss.alpha = partial(_shifted, offset=epoch, schedule=schedules.alpha_schedule,
                             alpha0=s["alpha0"], k_alpha=s["k_alpha"])  # fmt: skip
        loss.beta = partial(_shifted, offset=epoch, schedule=schedules.beta_schedule,
                            beta0=s["beta0"], k_beta=s["k_beta"])  # fmt: skip
        loss.pca_variance = 0.95 if s["pca"] else None
        self._set_status(f"training epoch {epoch + 1} with λ = {s['lam']:.2f} ...")
        run = fit(self.model, self._training_data(s["n_train"]), loss, epochs=1, optimizer=self.optimizer,
                  batch_size=self.batch_size, seed=self.seed + epoch, progress=False)  # fmt: skip
        record = dict(run.last)
        record.update(epoch=epoch, **s)
        latent, labels = embed(self.model, self.data, "test")
        record["test_silhouette"] = silhouette_score(latent, labels)
        self.history.epochs.append(record)
        self._latent = (latent, labels)
        if self.projection is None:
            from .plots import fit_projection

            self.projection = fit_projection(latent)
        self._set_status(f"epoch {epoch + 1}: test accuracy {record.get('test_acc', float('nan')):.3f}, "
                         f"silhouette {record['test_silhouette']:.3f} (λ = {s['lam']:.2f})")  # fmt: skip
        if self.live:
            self._draw()

    # -- the view --------------------------------------------------------------------------
    def lambda_marks(self) -> list[tuple[int, str]]:
        """``(epoch, "λ=...")`` at the first epoch and wherever λ changed."""
        marks, previous = [], None
        for record in self.history.epochs:
            if record["lam"] != previous:
                marks.append((record["epoch"], f"λ={record['lam']:.2f}"))
                previous = record["lam"]
        return marks

    def figure(self):
        """The current view as a matplotlib Figure (also what the live Output shows)."""
        import matplotlib.pyplot as plt

        from .plots import plot_history, plot_latent_2d

        figure, axes = plt.subplots(1, 4, figsize=(17, 3.8))
        if not self.history.epochs:
            for ax in axes:
                ax.set_axis_off()
            axes[0].text(0, 0.5, "no epoch trained yet", transform=axes[0].transAxes)
            return figure
        marks = self.lambda_marks()
        plot_history(self.history, ("ce", "dist", "train_loss"), ax=axes[0], marks=marks)
        axes[0].set_title("loss parts (train)")
        plot_history(self.history, ("train_acc", "test_acc"), ax=axes[1], marks=marks)
        axes[1].set_title("accuracy")
        plot_history(self.history, ("test_silhouette",), ax=axes[2], marks=marks)
        axes[2].set_title("test silhouette")
        latent, labels = self._latent
        plot_latent_2d(latent, labels, self.data.classes, ax=axes[3], projection=self.projection,
                       max_points=self.max_points, seed=self.seed, legend=False,
                       title=f"test latents, epoch {len(self.history)} (fixed PCA)")  # fmt: skip
        figure.tight_layout()
        return figure

    def history_lines(self, last: int | None = 12) -> list[str]:
        """One line per epoch (the ``last`` ones; None: all) with the settings it trained with and
        what it measured: the numbers behind the curves, printed under the live figure."""
        epochs = self.history.epochs if last is None else self.history.epochs[-last:]
        lines = [] if len(epochs) == len(self.history) else [
            f"... {len(self.history) - len(epochs)} earlier epochs (playground.history holds all)"
        ]  # fmt: skip
        for r in epochs:
            lines.append(
                f"epoch {r['epoch']}: λ={r['lam']:.2f} α={r['alpha']:.3f} β={r['beta']:.3f} "
                f"CE {r['ce']:.3f} L_dist {r['dist']:.3f} test acc {r.get('test_acc', float('nan')):.3f} "
                f"silhouette {r['test_silhouette']:.3f} PCA k {r['pca_k']:.1f}"
            )
        return lines

    def _draw(self) -> None:
        """Replace the Output's content by the current figure and the printed history.

        ``clear_output(wait=True)`` keeps the old view until the new one arrives (no flicker);
        the figure is displayed as an image and then closed, so the inline backend does not
        show it a second time at the end of the cell that clicked.
        """
        import matplotlib.pyplot as plt
        from IPython.display import display

        figure = self.figure()
        with self.output:
            self.output.clear_output(wait=True)
            display(figure)
            print("\n".join(self.history_lines()))
        plt.close(figure)

    def _set_status(self, html: str) -> None:
        self.status.value = f"<b>{html}</b>"

    def _ipython_display_(self):  # ipywidgets 7 and 8: `playground` alone in a cell shows the panel
        from IPython.display import display

        display(self.widget)
