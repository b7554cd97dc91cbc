"""The λ playground, headless: built and driven from code while it trains in its thread.

A run trains in a background thread (as in a notebook, where the kernel must stay free for the
sliders); these tests move the controls from the test's thread while it runs, as the kernel's
main thread does when a person drags a slider."""

import copy
import threading

import pytest
import torch

pytest.importorskip("ipywidgets")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from latentboost_lab import load_dataset  # noqa: E402
from latentboost_lab.training import evaluate  # noqa: E402
from latentboost_lab.widgets import (  # noqa: E402
    WHY_NOT_MID_EPOCH,
    LambdaPlayground,
    LiveLoss,
    LiveSettings,
    Settings,
)


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits", n_train=400, n_test=200, val_size=0.1, seed=0, download=False)


def _loss_from_parts(step: dict) -> float:
    """The paper's eq. 5 with the λ the step recorded: one λ for the whole step."""
    return step["lam"] * step["dist"] + (1 - step["lam"]) * step["ce"]


def test_lambda_moved_mid_run_applies_from_the_next_step_of_the_same_run(data):
    # 300 images in batches of 30: 10 steps per epoch, 30 in the run
    playground = LambdaPlayground(data, lam=0.75, n_train=300, batch_size=30, live=False)
    assert playground.lam.continuous_update is False
    playground.epochs.value = 3
    playground.train_button.click()  # returns at once: the run goes on in its thread
    assert playground.running and playground.train_button.disabled
    assert not playground.stop_button.disabled and playground.n_train.disabled
    playground.wait(steps=3)
    playground.lam.value = 0.25  # what the slider's message does in the kernel
    history = playground.wait()
    assert not playground.running and not playground._thread.is_alive()  # joined
    assert not playground.train_button.disabled and playground.stop_button.disabled

    lams = [s["lam"] for s in playground.steps]
    changed_at = lams.index(0.25)
    assert 3 <= changed_at < 30 and lams == [0.75] * changed_at + [0.25] * (30 - changed_at)
    for step in playground.steps:  # each step computed its loss with the λ it recorded
        assert step["train_loss"] == pytest.approx(_loss_from_parts(step), rel=1e-5, abs=1e-6)
    # no epoch lost: three whole epochs, numbered on, each the mean λ of its steps
    assert [r["epoch"] for r in history.epochs] == [0, 1, 2]
    assert [r["steps"] for r in history.epochs] == [10, 10, 10]
    for record in history.epochs:
        own = [s["lam"] for s in playground.steps if s["epoch"] == record["epoch"]]
        assert record["lam"] == pytest.approx(sum(own) / len(own))
        assert (record["lam_start"], record["lam_end"]) == (own[0], own[-1])
    assert playground.last_run["stopped"] is False and playground.last_run["settings_updates"] == 1
    # the mark sits where the new λ took effect, in epochs trained
    assert playground.lambda_marks() == [(0.0, "λ=0.75"), (changed_at / 10, "λ=0.25")]
    line = playground.history_lines()[changed_at // 10]
    assert "λ=0.75→0.25" in line or changed_at % 10 == 0
    # α falls and β grows with the playground's epoch count
    assert history["alpha"][2] < history["alpha"][0] and history["beta"][2] > history["beta"][0]
    for key in ("ce", "dist", "train_acc", "test_acc", "test_silhouette"):
        assert key in history.last


def test_a_step_never_sees_half_of_a_change(data):
    """Settings changed together (λ and α₀ coupled, α₀ = 2λ) from another thread, as fast as it
    can, while the model trains: every step used a pair that was set together."""
    playground = LambdaPlayground(data, lam=0.5, alpha0=1.0, n_train=300, batch_size=30, live=False)
    playground.start(2)
    done, values = threading.Event(), [0.1, 0.3, 0.5, 0.7, 0.9]

    def hammer():
        i = 0
        while not done.is_set():
            lam = values[i % len(values)]
            playground.live_settings.update(lam=lam, alpha0=2 * lam)
            i += 1

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        playground.wait()
    finally:
        done.set()
        thread.join()
    assert len(playground.steps) == 20
    assert {s["lam"] for s in playground.steps} - {0.5} <= set(values)
    assert len({s["lam"] for s in playground.steps}) > 1  # the changes did reach the loss
    for step in playground.steps:
        assert step["alpha0"] == pytest.approx(2 * step["lam"])
        assert step["train_loss"] == pytest.approx(_loss_from_parts(step), rel=1e-5, abs=1e-6)


def test_stop_button_ends_the_run_when_the_epoch_in_progress_ends(data):
    playground = LambdaPlayground(data, n_train=300, batch_size=10, live=False)  # 30 steps/epoch
    playground.start(50)
    playground.wait(steps=3)
    playground.stop_button.click()
    history = playground.wait()
    assert not playground._thread.is_alive()
    done = len(history)
    assert 1 <= done <= 2  # the epoch in progress was finished, then the run ended
    assert [r["steps"] for r in history.epochs] == [30] * done
    assert len(playground.steps) == 30 * done  # no step of an unfinished epoch anywhere
    assert playground.last_run["stopped"] and playground.last_run["discarded_steps"] == 0
    # the model is the one the last record describes
    assert evaluate(playground.model, data, "test")["acc"] == history.last["test_acc"]
    assert not playground.train_button.disabled and playground.stop_button.disabled
    playground.train(1)  # a new run continues the numbering
    assert [r["epoch"] for r in playground.history.epochs] == list(range(done + 1))


def test_stop_now_discards_the_partial_epoch_whole(data):
    playground = LambdaPlayground(data, n_train=300, batch_size=10, live=False)
    playground.train(1)
    weights = copy.deepcopy(playground.model.state_dict())
    adam = copy.deepcopy(playground.optimizer.state_dict())
    playground.start(50)
    playground.wait(steps=3)
    playground.stop(now=True)
    playground.wait()
    run = playground.last_run
    assert (
        run["stopped"]
        and run["epochs_done"] == 0
        and run["discarded_steps"] == run["steps_done"] >= 3
    )
    assert len(playground.history) == 1 and len(playground.steps) == 30
    for name, tensor in playground.model.state_dict().items():
        assert torch.equal(tensor, weights[name]), name  # back to the end of epoch 0
    state = playground.optimizer.state_dict()["state"]
    assert all(int(state[k]["step"]) == int(adam["state"][k]["step"]) == 30 for k in state)
    assert "discarded" in playground.status.value


def test_controls_reach_the_loss_and_reset_starts_again(data):
    playground = LambdaPlayground(data, n_train=300, live=False)
    playground.pca.value = False
    playground.alpha0.value = 2.0
    playground.train(1)
    record = playground.history.last
    assert record["pca_k"] == pytest.approx(playground.latent_dim)  # PCA off: the full width
    assert record["alpha"] == pytest.approx(2.0)  # alpha0 * exp(-k_alpha * 0)
    assert playground.loss.pca_variance is None
    assert record["n_train"] == 300 and record["pca"] is False and record["alpha0"] == 2.0

    playground.start(50)
    with pytest.raises(RuntimeError, match="a run is in progress"):
        playground.reset()
    with pytest.raises(RuntimeError, match="a run is in progress"):
        playground.start(1)
    playground.stop(now=True)
    playground.wait()

    trained = [p.detach().clone() for p in playground.model.parameters()]
    playground.reset_button.click()
    assert len(playground.history) == 0 and playground.steps == []
    assert playground.projection is None
    # same seed: the fresh model starts from the same initial weights, not the trained ones
    fresh = LambdaPlayground(data, n_train=300, live=False)
    pairs = list(zip(playground.model.parameters(), fresh.model.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in pairs)
    assert not all(torch.equal(a, c) for (a, _), c in zip(pairs, trained, strict=True))


def test_an_error_in_the_run_reaches_wait_and_the_panel(data, monkeypatch):
    playground = LambdaPlayground(data, n_train=300, batch_size=30, live=False)
    playground.train(1)
    weights = copy.deepcopy(playground.model.state_dict())
    forward, calls = playground.loss.forward, []

    def failing(*args, **kwargs):  # the third step of the run fails
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("boom in the loss")
        return forward(*args, **kwargs)

    monkeypatch.setattr(playground.loss, "forward", failing)
    playground.start(2)
    with pytest.raises(RuntimeError, match="boom in the loss"):
        playground.wait()
    assert "boom in the loss" in playground.status.value and not playground.train_button.disabled
    assert len(playground.history) == 1 and len(playground.steps) == 10  # partial epoch dropped
    assert all(torch.equal(t, weights[k]) for k, t in playground.model.state_dict().items())


def test_live_view_is_redrawn_every_few_steps(data):
    playground = LambdaPlayground(data, n_train=300, batch_size=30, redraw_every=5)
    images = []
    playground.view.observe(lambda change: images.append(change["new"]), names="value")
    assert playground.figure() is not None  # nothing trained yet: an empty figure
    playground.train(1)
    # 10 steps: a redraw every 5 steps, then one after the epoch (its accuracy and silhouette)
    images = [bytes(image) for image in images]
    assert len(images) == 3 and all(image.startswith(b"\x89PNG") for image in images)
    assert len(set(images)) == 3  # each redraw shows something new
    assert len(playground.figure().axes) >= 4
    assert "epoch 0: λ=0.75" in playground.log.value
    assert "every step" in WHY_NOT_MID_EPOCH
    assert playground.widget.children  # a VBox of controls, the figure and the epoch lines


def test_bad_arguments_are_named(data):
    with pytest.raises(ValueError, match="redraw_every"):
        LambdaPlayground(data, redraw_every=0, live=False)
    with pytest.raises(TypeError, match="data must be a TensorData"):
        LambdaPlayground([1, 2, 3])
    with pytest.raises(TypeError, match="unknown settings"):
        LiveSettings().update(lamda=0.5)
    with pytest.raises(TypeError, match="loss must be a LatentBoostLoss"):
        LiveLoss(torch.nn.CrossEntropyLoss(), LiveSettings())
    playground = LambdaPlayground(data, n_train=300, live=False)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        playground.start(0)
    assert Settings(lam=0.3).weights(0) == (0.3, 1.0, 0.5)
