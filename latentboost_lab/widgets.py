"""The λ playground: train a Latent Boost model and steer λ, α, β and PCA *while* it trains.

``LambdaPlayground(data)`` builds an ipywidgets panel (``playground.widget``; display it in a
notebook) with

- a λ slider (``continuous_update=False``: a value is sent when the slider is released),
  α₀ / k_α (intra-cluster weight ``α(E) = max(α_min, α₀·exp(-k_α·E))``), β₀ / k_β (inter-cluster
  weight ``β(E) = min(β_max, β₀ + k_β·E)``), PCA on/off, the number of training images used;
- "Train N epochs": starts a run of N epochs in a background thread of the kernel and returns
  at once, so the kernel stays free to receive the controls' messages while the model trains.
  λ, α₀, k_α, β₀, k_β and PCA are read at **every optimisation step**; the number of training
  images and N are fixed for a run (they are greyed out while it lasts). Each run continues from
  the current weights and optimizer state;
- "Stop": the run ends when the epoch in progress ends (that epoch is finished, evaluated and
  recorded like any other: nothing trained is thrown away and no half epoch enters the
  history). ``stop(now=True)`` from code ends it at the next step instead, and then discards the
  partial epoch whole: the weights and Adam's state go back to the end of the last completed
  epoch, so that the model is always the one the last point of the curves describes;
- "Reset": a fresh model, optimizer and history (not while a run is going);
- a live view: a figure (an ``Image`` widget) redrawn every ``redraw_every`` steps and at the end
  of every epoch: the loss parts step by step, accuracy and silhouette per epoch, and a 2-D PCA of
  test latents coloured by class, with each change of λ marked where it took effect, to the step;
  under it one printed line per epoch (λ, α, β, the loss parts, accuracy, silhouette).
  Epochs are numbered from 0 everywhere (status line, printed lines, ``history``).

**No race: one consistent setting per step.** The controls' values live in one immutable
:class:`Settings` held by :class:`LiveSettings`. A control's callback (run by the kernel's main
thread when the browser's message arrives) builds a new ``Settings`` and swaps it in under a
lock; it never changes the one in use. At the start of each step the training thread takes the
current snapshot once (:class:`LiveLoss`), computes λ, α(E) and β(E) from it, sets them on the
:class:`~latentboost_lab.losses.LatentBoostLoss` and then runs the loss: a step sees either all
of a change or none of it, and a step's recorded λ is the λ its gradient was computed with.
Only the training thread touches the model, the optimizer, the loss and the history during a
run; the main thread touches only ``LiveSettings`` and the stop flags (``threading.Event``).
Every run and every redraw ends before :meth:`LambdaPlayground.wait` returns (the thread is
joined).

It is headless: building it and pressing its buttons from code (``playground.lam.value = 0.5;
playground.train_button.click(); playground.wait()``) works in plain Python without a browser,
which is how the tests and notebook 06 in CI run the callbacks. :meth:`LambdaPlayground.train`
is the blocking form (start, then wait). Nothing here re-implements training: a run is one call
of :func:`latentboost_lab.training.fit` with the playground's optimizer; :class:`LiveLoss` wraps
the loss, and ``fit``'s per-epoch callback records and draws each epoch.
"""

from __future__ import annotations

import copy
import io
import math
import threading
import time
from dataclasses import asdict, dataclass, replace
from functools import partial

import torch
from torch import nn

from . import schedules
from .data import TensorData, stratified_indices
from .losses import LatentBoostLoss
from .metrics import embed, silhouette_score
from .models import build_model
from .training import History, fit

__all__ = ["LambdaPlayground", "LiveLoss", "LiveSettings", "Settings", "StopTraining"]

WHY_NOT_MID_EPOCH = (
    "Training runs in a background thread of the kernel, so the kernel stays free to receive the "
    "controls while the model trains: λ, α₀, k_α, β₀, k_β and PCA are read at <i>every "
    "step</i> and a change applies from the next step (each step uses one setting, never half of "
    "a change). The number of training images and N apply to the next run. <i>Stop</i> ends the "
    "run when the epoch in progress ends."
)


@dataclass(frozen=True)
class Settings:
    """One consistent setting of the live controls (immutable: a change makes a new one)."""

    lam: float = 0.75
    alpha0: float = 1.0
    k_alpha: float = 0.05
    beta0: float = 0.5
    k_beta: float = 0.05
    pca: bool = True

    def weights(self, epoch: int) -> tuple[float, float, float]:
        """``(λ, α(epoch), β(epoch))`` with the library's schedules (``latentboost_lab.schedules``)."""
        alpha = schedules.alpha_schedule(epoch, alpha0=self.alpha0, k_alpha=self.k_alpha)
        beta = schedules.beta_schedule(epoch, beta0=self.beta0, k_beta=self.k_beta)
        return self.lam, alpha, beta


#: the names of the live controls, in the order of Settings' fields
SETTING_NAMES = tuple(asdict(Settings()))


class LiveSettings:
    """The current :class:`Settings`, swapped whole under a lock (see the module docstring).

    ``update(lam=0.5)`` may be called from any thread (the widgets' callbacks);
    ``snapshot()`` returns the one ``Settings`` in force, which nobody can change afterwards.
    ``version`` counts the updates.
    """

    def __init__(self, settings: Settings | None = None):
        if settings is not None and not isinstance(settings, Settings):
            raise TypeError(f"settings must be a Settings, got {type(settings).__name__}")
        self._lock = threading.Lock()
        self._current = settings or Settings()
        self.version = 0

    def snapshot(self) -> Settings:
        with self._lock:
            return self._current

    def update(self, **changes) -> Settings:
        unknown = sorted(set(changes) - set(SETTING_NAMES))
        if unknown:
            raise TypeError(f"update: unknown settings {unknown}; known: {list(SETTING_NAMES)}")
        with self._lock:
            self._current = replace(self._current, **changes)
            self.version += 1
            return self._current


class StopTraining(Exception):  # noqa: N818 (a request, not an error)
    """Raised by :class:`LiveLoss` at the start of a step once an immediate stop is asked for;
    :class:`LambdaPlayground` catches it and discards the partial epoch."""


class _Fixed:
    """A constant schedule ``epoch -> value`` (what LatentBoostLoss expects for α and β)."""

    def __init__(self, value: float):
        self.value = float(value)

    def __call__(self, epoch: int) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"_Fixed({self.value!r})"


class LiveLoss(nn.Module):
    """A :class:`LatentBoostLoss` whose λ, α, β and PCA come from one :class:`LiveSettings`
    snapshot taken at the start of every step; the loss's own terms are computed by it alone.

    Args:
        loss: the Latent Boost loss to drive (its ``lam``, ``alpha``, ``beta`` and
            ``pca_variance`` are overwritten at each step).
        settings: where the controls' values are read.
        epoch_offset: added to ``fit``'s epoch numbers (which start at 0 in each call) for the
            α/β schedules: the playground's epochs count on across runs.
        on_step: called after each step's loss as ``on_step(epoch, step, settings, loss)``
            with the global epoch.
        stop_now: a ``threading.Event``; once set, the next step raises :class:`StopTraining`.
        pca_variance: the share of variance the batch PCA keeps when ``settings.pca`` is on.
    """

    def __init__(self, loss: LatentBoostLoss, settings: LiveSettings, *, epoch_offset: int = 0,
                 on_step=None, stop_now: threading.Event | None = None, pca_variance: float = 0.95):  # fmt: skip
        super().__init__()
        if not isinstance(loss, LatentBoostLoss):
            raise TypeError(f"loss must be a LatentBoostLoss, got {type(loss).__name__}")
        if not isinstance(settings, LiveSettings):
            raise TypeError(f"settings must be a LiveSettings, got {type(settings).__name__}")
        self.loss, self.settings = loss, settings
        self.epoch_offset, self.on_step, self.pca_variance = (
            int(epoch_offset),
            on_step,
            pca_variance,
        )
        self.stop_now = stop_now or threading.Event()
        self.step = 0
        self.last_settings: Settings | None = None

    # fit reads these hooks and attributes from the loss it is given
    @property
    def wants_sample_ids(self) -> bool:
        return self.loss.wants_sample_ids

    @property
    def variance_gradient(self) -> bool:
        return self.loss.variance_gradient

    @property
    def parts(self) -> dict:
        return self.loss.parts

    @property
    def per_sample(self):
        return self.loss.per_sample

    def on_epoch_start(self, model, data, epoch: int) -> None:
        self.step = 0
        self.loss.on_epoch_start(model, data, epoch + self.epoch_offset)

    def forward(self, logits, latent, labels, epoch, **kwargs):
        if self.stop_now.is_set():
            raise StopTraining("stopped at the user's request")
        settings = self.settings.snapshot()  # the one read of the controls for this step
        epoch = int(epoch) + self.epoch_offset
        lam, alpha, beta = settings.weights(epoch)
        self.loss.lam, self.loss.alpha, self.loss.beta = lam, _Fixed(alpha), _Fixed(beta)
        self.loss.pca_variance = self.pca_variance if settings.pca else None
        value = self.loss(logits, latent, labels, epoch, **kwargs)
        self.last_settings = settings
        if self.on_step is not None:
            self.on_step(epoch, self.step, settings, value)
        self.step += 1
        return value


class LambdaPlayground:
    """Interactive Latent Boost training; see the module docstring.

    Args:
        data: a :class:`~latentboost_lab.data.TensorData` (its test split is plotted).
        lam, alpha0, k_alpha, beta0, k_beta, pca: the controls' initial values.
        n_train: initial number of training images (a stratified subset; None: all).
        epochs_per_click: initial value of N.
        model_name, latent_dim: the model built at each reset (see :func:`build_model`).
        lr, batch_size, seed: training settings (fixed).
        max_points: test points embedded for the scatter (a fixed stratified subset).
        redraw_every: the live figure is redrawn every this many steps (and after each epoch).
        live: draw the live figure (False: record only, e.g. in tests).
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
        redraw_every: int = 20,
        live: bool = True,
    ):
        import ipywidgets as w

        if not isinstance(data, TensorData):
            raise TypeError(f"data must be a TensorData, got {type(data).__name__}")
        if not isinstance(redraw_every, int) or isinstance(redraw_every, bool) or redraw_every < 1:
            raise ValueError(f"redraw_every must be an integer >= 1 (steps), got {redraw_every!r}")
        self.data = data
        self.model_name, self.latent_dim = model_name, latent_dim
        self.lr, self.batch_size, self.seed = lr, batch_size, seed
        self.max_points, self.redraw_every, self.live = max_points, redraw_every, live
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
        self.live_settings = LiveSettings(self._settings_from_controls())
        for control in (self.lam, self.alpha0, self.k_alpha, self.beta0, self.k_beta, self.pca):
            # runs in the thread that changed the control (the kernel's main thread, or the
            # caller's in headless use): swap in a new Settings; the training thread reads it
            control.observe(lambda _: self.live_settings.update(**asdict(
                self._settings_from_controls())), names="value")  # fmt: skip
        step = max(1, min(500, n_all // 10))
        self.n_train = w.IntSlider(value=n_train, min=min(step, n_all), max=n_all, step=step,
                                   continuous_update=False, style=style,
                                   description="training images")  # fmt: skip
        self.epochs = w.BoundedIntText(value=epochs_per_click, min=1, max=1000, description="N epochs",
                                       style=style, layout=w.Layout(width="150px"))  # fmt: skip
        self.train_button = w.Button(
            description="Train N epochs", button_style="primary", icon="play"
        )
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True,
                                    tooltip="end the run when the epoch in progress ends")  # fmt: skip
        self.reset_button = w.Button(description="Reset", icon="refresh")
        self.status = w.HTML()
        self.view = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.log = w.HTML()
        self.train_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        # ipywidgets' HTML has the line height of a control row: reset it for a paragraph
        help_text = w.HTML(
            f'<div style="line-height: 1.4"><small>{WHY_NOT_MID_EPOCH}</small></div>'
        )
        controls = w.VBox([
            self.lam, w.HBox([self.alpha0, self.k_alpha]), w.HBox([self.beta0, self.k_beta]),
            w.HBox([self.pca, self.n_train]),
            w.HBox([self.epochs, self.train_button, self.stop_button, self.reset_button]),
            self.status, help_text,
        ])  # fmt: skip
        self.widget = w.VBox([controls, self.view, self.log])
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stop_after_epoch, self._stop_now = threading.Event(), threading.Event()
        self._progress = threading.Condition()
        self._view_data = self._test_subset(max_points)
        self.reset()

    # -- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        """A fresh model and optimizer, an empty history, no fixed projection yet."""
        self._refuse_while_running("reset")
        torch.manual_seed(self.seed)
        self.model = build_model(self.model_name, self.data.info, latent_dim=self.latent_dim)
        self.model.to(self.data.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.loss = LatentBoostLoss(lam=float(self.lam.value))
        self.history = History(config={"model": self.model_name, "dataset": self.data.info.name,
                                       "lr": self.lr, "batch_size": self.batch_size,
                                       "seed": self.seed})  # fmt: skip
        #: one dict per optimisation step of the completed epochs and of the epoch in progress
        #: (epoch, step, the settings it used, its loss parts)
        self.steps: list[dict] = []
        #: how the last run ended: epochs asked and done, stopped (by Stop or stop(now=True)),
        #: steps of a partial epoch discarded, settings updates received while it ran
        self.last_run: dict = {}
        self.projection = None
        self._latent = None
        self._steps_per_epoch = 1  # of the run in progress (set by start)
        self._saved = self._state()
        self.view.value = b""
        self.log.value = ""
        self._set_status("fresh model: press <i>Train</i>")

    def settings(self) -> dict:
        """The controls' current values."""
        return {**asdict(self._settings_from_controls()), "n_train": int(self.n_train.value)}

    def _settings_from_controls(self) -> Settings:
        return Settings(lam=float(self.lam.value), alpha0=float(self.alpha0.value),
                        k_alpha=float(self.k_alpha.value), beta0=float(self.beta0.value),
                        k_beta=float(self.k_beta.value), pca=bool(self.pca.value))  # fmt: skip

    def _training_data(self, n_train: int) -> TensorData:
        x, y = self.data.split("train")
        if n_train >= len(y):
            return self.data
        keep = stratified_indices(y, n_train, torch.Generator().manual_seed(self.seed)).to(y.device)
        splits = {"train": (x[keep], y[keep]), "val": self.data.split("val"),
                  "test": self.data.split("test")}  # fmt: skip
        return TensorData(self.data.info, splits, self.data.source, self.data.device)

    def _test_subset(self, n: int) -> TensorData:
        """The test images embedded for the scatter at every redraw (the same ones each time)."""
        x, y = self.data.split("test")
        if len(y) > n:
            keep = stratified_indices(y, n, torch.Generator().manual_seed(self.seed)).to(y.device)
            x, y = x[keep], y[keep]
        return TensorData(self.data.info, {"test": (x, y)}, self.data.source, self.data.device)

    def _state(self) -> dict:
        return {"model": copy.deepcopy(self.model.state_dict()),
                "optimizer": copy.deepcopy(self.optimizer.state_dict())}  # fmt: skip

    # -- training --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Is a run going on (its thread alive)?"""
        return self._thread is not None and self._thread.is_alive()

    def start(self, epochs: int | None = None) -> None:
        """Start a run of ``epochs`` (default: the N box) in a background thread and return at
        once (what "Train N epochs" does). :meth:`wait` waits for it."""
        self._refuse_while_running("start")
        epochs = int(self.epochs.value if epochs is None else epochs)
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        self._error = None
        self._stop_after_epoch.clear()
        self._stop_now.clear()
        n_train = int(self.n_train.value)
        # set before the thread starts: wait(steps=...) must not read the previous run's count
        self.last_run = {"epochs_asked": epochs, "epochs_done": 0, "steps_done": 0,
                         "stopped": False, "discarded_steps": 0, "n_train": n_train}  # fmt: skip
        self._steps_per_epoch = math.ceil(min(n_train, len(self.data.y_train)) / self.batch_size)
        self._busy(True)
        self._set_status(f"starting {epochs} epoch(s) on {n_train} images ...")
        self._thread = threading.Thread(target=self._run, args=(epochs, n_train), daemon=True,
                                        name="latentboost-playground")  # fmt: skip
        self._thread.start()

    def stop(self, now: bool = False) -> None:
        """End the run when the epoch in progress ends (the Stop button), or with ``now=True``
        at the next step, discarding the partial epoch (weights and optimizer state go back to
        the end of the last completed epoch). Returns at once; :meth:`wait` waits for the end."""
        (self._stop_now if now else self._stop_after_epoch).set()
        if self.running:
            self._set_status("stopping now ..." if now else
                             "stopping when this epoch ends ...")  # fmt: skip

    def wait(self, timeout: float | None = None, *, steps: int | None = None) -> History:
        """Wait until the run has ended (its thread joined) and return the history; re-raise
        an error that ended it. With ``steps``: wait only until the current run has made that
        many steps (or has ended), e.g. to change a control mid-run from code."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if steps is not None:
            with self._progress:
                while self.running and self.last_run.get("steps_done", 0) < steps:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise TimeoutError(f"the run did not make {steps} steps in {timeout} s")
                    self._progress.wait(0.1 if left is None else min(0.1, left))
        elif self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the run did not end within {timeout} s")
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self.history

    def train(self, epochs: int | None = None) -> History:
        """Train ``epochs`` (default: the N box) more epochs and wait for them: :meth:`start`
        then :meth:`wait`."""
        self.start(epochs)
        return self.wait()

    def _run(self, epochs: int, n_train: int) -> None:
        """The training thread: one call of fit; the loss reads the controls at every step."""
        offset = len(self.history)
        version = self.live_settings.version
        live_loss = LiveLoss(self.loss, self.live_settings, epoch_offset=offset,
                             on_step=self._on_step, stop_now=self._stop_now)  # fmt: skip
        try:
            fit(self.model, self._training_data(n_train), live_loss, epochs=epochs,
                optimizer=self.optimizer, batch_size=self.batch_size, seed=self.seed + offset,
                progress=False, callbacks=[partial(self._end_of_epoch, offset, n_train)])  # fmt: skip
        except StopTraining:
            self._discard_partial_epoch()
        except BaseException as error:  # noqa: BLE001 (handed to wait(), shown in the status)
            self._discard_partial_epoch()
            self._error = error
            self._set_status(f"error: {type(error).__name__}: {error}")
        finally:
            try:
                run = self.last_run
                run["stopped"] = run["stopped"] or (
                    run["epochs_done"] < epochs and self._error is None
                )
                run["settings_updates"] = self.live_settings.version - version
                if run["stopped"] and self._error is None:
                    self._set_status(self._stopped_message())
                if self.live and (run["discarded_steps"] or self._error is not None):
                    self._draw()  # the view without the discarded steps
            finally:  # the buttons come back whatever happened above
                self._busy(False)
                with self._progress:
                    self._progress.notify_all()

    def _on_step(self, epoch: int, step: int, settings: Settings, value: torch.Tensor) -> None:
        """After each step's loss (training thread): record it, redraw every few steps."""
        parts = self.loss.parts
        record = {"epoch": epoch, "step": step, **asdict(settings),
                  "alpha": float(parts["alpha"]), "beta": float(parts["beta"]),
                  "train_loss": float(value.detach()), "ce": float(parts["ce"]),
                  "dist": float(parts["dist"]), "pca_k": float(parts["pca_k"])}  # fmt: skip
        self.steps.append(record)
        with self._progress:
            self.last_run["steps_done"] += 1
            self._progress.notify_all()
        self._set_status(f"training epoch {epoch}, step {step + 1}/{self._steps_per_epoch}: "
                         f"λ = {settings.lam:.2f}, α = {record['alpha']:.3f}, β = {record['beta']:.3f}, "
                         f"loss {record['train_loss']:.3f}")  # fmt: skip
        if self.live and (step + 1) % self.redraw_every == 0:
            self._draw()

    def _end_of_epoch(self, offset: int, n_train: int, run: History, model) -> bool:
        """fit's callback after each completed epoch (training thread): record, save, draw."""
        record = dict(run.last)
        epoch = offset + record["epoch"]
        steps = [s for s in self.steps if s["epoch"] == epoch]
        # "lam", "alpha", "beta" stay fit's means over the epoch's steps; the other settings are
        # those of its last step, with λ at its first and last step beside the mean
        settings = {k: steps[-1][k] for k in SETTING_NAMES if k != "lam"}
        record.update(epoch=epoch, **settings, n_train=n_train,
                      lam_start=steps[0]["lam"], lam_end=steps[-1]["lam"], steps=len(steps))  # fmt: skip
        latent, labels = embed(self.model, self.data, "test")
        record["test_silhouette"] = silhouette_score(latent, labels)
        self.history.epochs.append(record)
        self._saved = self._state()  # what a stop(now=True) in the next epoch goes back to
        self.last_run["epochs_done"] += 1
        self._latent = embed(self.model, self._view_data, "test")
        if self.projection is None:
            from .plots import fit_projection

            self.projection = fit_projection(self._latent[0])
        self._set_status(f"epoch {epoch} done: test accuracy {record.get('test_acc', float('nan')):.3f}, "
                         f"silhouette {record['test_silhouette']:.3f} (λ = {record['lam_end']:.2f})")  # fmt: skip
        if self.live:
            self._draw(embedded=True)
        return self._stop_after_epoch.is_set()

    def _discard_partial_epoch(self) -> None:
        """The epoch in progress did not end: back to the end of the last completed one."""
        partial_steps = [s for s in self.steps if s["epoch"] >= len(self.history)]
        if not partial_steps:
            return
        self.model.load_state_dict(self._saved["model"])
        self.optimizer.load_state_dict(self._saved["optimizer"])
        del self.steps[len(self.steps) - len(partial_steps) :]
        self.last_run["discarded_steps"] = len(partial_steps)
        self.last_run["stopped"] = True

    def _stopped_message(self) -> str:
        run = self.last_run
        text = f"stopped after {run['epochs_done']} of {run['epochs_asked']} epoch(s)"
        if run["discarded_steps"]:
            text += (f"; the {run['discarded_steps']} step(s) of the unfinished epoch were "
                     "discarded (the model is the one after the last epoch on the curves)")  # fmt: skip
        return text

    def _refuse_while_running(self, what: str) -> None:
        if self.running:
            raise RuntimeError(f"{what}: a run is in progress; press Stop (or call stop()) and "
                               "wait() for it to end")  # fmt: skip

    def _busy(self, busy: bool) -> None:
        for control in (self.train_button, self.reset_button, self.n_train, self.epochs):
            control.disabled = busy
        self.stop_button.disabled = not busy

    # -- the view --------------------------------------------------------------------------
    def _positions(self, steps: list[dict]) -> list[tuple[float, float]]:
        """Where each step begins and ends on the curves' axis, in epochs trained:
        ``epoch + step / n`` and ``epoch + (step + 1) / n``, with ``n`` the steps of that epoch
        (its planned number while it is in progress)."""
        counts: dict[int, int] = {}
        for s in steps:
            counts[s["epoch"]] = counts.get(s["epoch"], 0) + 1
        if steps and steps[-1]["epoch"] >= len(self.history):
            counts[steps[-1]["epoch"]] = max(counts[steps[-1]["epoch"]], self._steps_per_epoch)
        return [(s["epoch"] + s["step"] / counts[s["epoch"]],
                 s["epoch"] + (s["step"] + 1) / counts[s["epoch"]]) for s in steps]  # fmt: skip

    def lambda_marks(self) -> list[tuple[float, str]]:
        """``(x, "λ=...")`` at the first step and at each step whose λ differs from the step
        before it; ``x`` is where that step began, in epochs trained (2.25: a quarter into the
        third epoch), the axis of the curves."""
        steps = list(self.steps)  # the training thread appends to it
        marks, previous = [], None
        for step, (x, _) in zip(steps, self._positions(steps), strict=True):
            if step["lam"] != previous:
                marks.append((round(x, 6), f"λ={step['lam']:.2f}"))
                previous = step["lam"]
        return marks

    def figure(self):
        """The current view as a matplotlib Figure (also what the live view shows).

        Built without pyplot (``matplotlib.figure.Figure``), so that the training thread can draw
        it while the notebook's own cells use pyplot; a notebook displays it as an image."""
        from matplotlib.figure import Figure

        from .plots import plot_history, plot_latent_2d

        figure = Figure(figsize=(17, 3.8))
        axes = figure.subplots(1, 4)
        steps = list(self.steps)  # the training thread appends to it
        if not steps:
            for ax in axes:
                ax.set_axis_off()
            axes[0].text(0, 0.5, "no step trained yet", transform=axes[0].transAxes)
            return figure
        marks = self.lambda_marks()
        ends = [end for _, end in self._positions(steps)]
        per_step = [{"epoch": x, **{k: s[k] for k in ("ce", "dist", "train_loss")}}
                    for s, x in zip(steps, ends, strict=True)]  # fmt: skip
        plot_history(per_step, ("ce", "dist", "train_loss"), ax=axes[0], marks=marks)
        axes[0].set_title("loss parts (train), step by step")
        epochs = [{**r, "epoch": r["epoch"] + 1} for r in self.history.epochs]  # at their end
        if epochs:
            plot_history(epochs, ("train_acc", "test_acc"), ax=axes[1], marks=marks)
            plot_history(epochs, ("test_silhouette",), ax=axes[2], marks=marks)
        else:
            for ax in axes[1:3]:
                ax.text(0.05, 0.5, "after the first epoch", transform=ax.transAxes)
        axes[1].set_title("accuracy (after each epoch)")
        axes[2].set_title("test silhouette (after each epoch)")
        for ax in axes[:3]:
            ax.set_xlabel("epochs trained")
        if self._latent is not None:
            latent, labels = self._latent
            done = f"{ends[-1]:.2f}"
            fixed = "fixed PCA" if self.projection is not None else "PCA fixed after epoch 1"
            plot_latent_2d(latent, labels, self.data.classes, ax=axes[3], projection=self.projection,
                           max_points=None, seed=self.seed, legend=False,
                           title=f"test latents after {done} epochs ({fixed})")  # fmt: skip
        figure.tight_layout()
        return figure

    def png(self, dpi: int = 72) -> bytes:
        """:meth:`figure` as PNG bytes: what the live view shows; in a notebook,
        ``IPython.display.Image(playground.png())`` shows it as a static image."""
        buffer = io.BytesIO()
        self.figure().savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()

    def history_lines(self, last: int | None = 12) -> list[str]:
        """One line per epoch (the ``last`` ones; None: all) with the settings it trained with and
        what it measured: the numbers behind the curves, printed under the live figure. An epoch
        during which λ changed shows ``λ=first→last`` and the mean over its steps."""
        epochs = self.history.epochs if last is None else self.history.epochs[-last:]
        lines = [] if len(epochs) == len(self.history) else [
            f"... {len(self.history) - len(epochs)} earlier epochs (playground.history holds all)"
        ]  # fmt: skip
        for r in epochs:
            start, end = r.get("lam_start", r["lam"]), r.get("lam_end", r["lam"])
            lam = (
                f"{r['lam']:.2f}"
                if start == end
                else f"{start:.2f}→{end:.2f} (mean {r['lam']:.2f})"
            )
            lines.append(
                f"epoch {r['epoch']}: λ={lam} α={r['alpha']:.3f} β={r['beta']:.3f} "
                f"CE {r['ce']:.3f} L_dist {r['dist']:.3f} test acc {r.get('test_acc', float('nan')):.3f} "
                f"silhouette {r['test_silhouette']:.3f} PCA k {r['pca_k']:.1f}"
            )
        return lines

    def _draw(self, embedded: bool = False) -> None:
        """Redraw the live view: the figure as a PNG into the Image widget, the epoch lines into
        the HTML under it. Called by the training thread (the model is between two steps)."""
        from html import escape

        if not embedded and self.steps:
            self._latent = embed(self.model, self._view_data, "test")  # restores train mode
        self.view.value = self.png()
        self.log.value = f"<pre>{escape(chr(10).join(self.history_lines()))}</pre>"

    def _set_status(self, html: str) -> None:
        self.status.value = f"<b>{html}</b>"

    def _ipython_display_(self):  # ipywidgets 7 and 8: `playground` alone in a cell shows the panel
        from IPython.display import display

        display(self.widget)
