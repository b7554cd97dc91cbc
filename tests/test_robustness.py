"""Reliability: non-finite training, bad arguments, damaged data files, unwritable outputs,
memory bounds.

Related cases live beside the code they test: interrupts, resume and checkpoint mismatch in
test_training.py; fit's basic argument table there too; the loss, metric and data-subset
argument tables in test_*_loss.py, test_metrics.py and test_data.py; the property-based
numerics in test_properties.py.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentboost_lab import SmallCNN, build_model, evaluate, fit, load_dataset, nonfinite
from latentboost_lab.clusters import kmeans
from latentboost_lab.losses import CenterLoss, LatentBoostLoss
from latentboost_lab.metrics import embed
from latentboost_lab.plots import plot_history
from latentboost_lab.training import NonFiniteLossError, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_train=300, val_size=0.2, seed=0, device="cpu")


def small_model(seed=0):
    torch.manual_seed(seed)
    return SmallCNN(in_channels=1, num_classes=10, latent_dim=16, image_size=8)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


class Faulty(torch.nn.Module):
    """Cross-entropy plus a distance-like term on the latent, with a fault injected at chosen
    (epoch, step) pairs: ``nan`` makes the term NaN, ``grad`` keeps it finite (0) but gives it
    a NaN gradient on the latent, ``ce_grad`` the same on the logits. A step is a new batch
    (fit may call the loss twice on one batch, to say where a bad gradient comes from)."""

    def __init__(self, fault: str, at: set[tuple[int, int]]):
        super().__init__()
        self.fault, self.at, self.step, self.epoch, self.labels = fault, at, -1, None, None

    def forward(self, logits, latent, labels, epoch):
        if epoch != self.epoch:
            self.epoch, self.step = epoch, -1
        if labels is not self.labels:
            self.labels, self.step = labels, self.step + 1
        bad = (epoch, self.step) in self.at
        ce = torch.nn.functional.cross_entropy(logits.float(), labels)
        dist = 0.01 * latent.float().pow(2).mean()
        if bad and self.fault == "nan":
            dist = dist * math.nan
        if bad and self.fault == "grad":  # sqrt at 0: value 0, gradient inf * 0 = NaN
            dist = dist + torch.sqrt((latent.float() * 0).sum())
        if bad and self.fault == "ce_grad":
            ce = ce + torch.sqrt((logits.float() * 0).sum())
        self.parts = {"ce": ce.detach(), "dist": dist.detach()}
        return ce + dist


# ----------------------------------------------------------------------------- non-finite


@pytest.mark.parametrize(
    ("fault", "part", "message"),
    [
        ("nan", "L_dist", r"epoch 1, step 2, in the loss \(non-finite parts: dist = L_dist\)"),
        ("grad", "L_dist", r"epoch 1, step 2, in the gradient of the loss's term on the latent"),
        ("ce_grad", "CE", r"epoch 1, step 2, in the gradient of the loss's term on the logits"),
    ],
)
def test_nonfinite_loss_or_gradient_stops_at_once_and_keeps_the_last_good_epoch(
    digits, tmp_path, fault, part, message
):
    reference = small_model()
    fit(reference, digits, Faulty(fault, set()), epochs=1, batch_size=64, progress=False)
    model, ckpt = small_model(), tmp_path / "run.pt"
    with pytest.raises(NonFiniteLossError, match=message) as info:
        fit(
            model,
            digits,
            Faulty(fault, {(1, 2)}),
            epochs=3,
            batch_size=64,
            checkpoint=ckpt,
            progress=False,
        )
    err = info.value
    assert (err.epoch, err.step, err.part) == (1, 2, part)
    assert len(err.history) == 1  # the completed epoch 0
    # The model went back to the end of epoch 0, and so is the checkpoint on disk.
    assert same_weights(model, reference)
    state = load_checkpoint(ckpt)
    assert len(json.loads(state["history"])["epochs"]) == 1
    assert all(torch.equal(state["model"][k], v) for k, v in reference.state_dict().items())


class NaNInside(torch.autograd.Function):
    """Identity forward, NaN backward: a fault inside the model, not in the loss."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * math.nan


class FaultyModel(SmallCNN):
    """SmallCNN with a fault at chosen training calls of forward: ``output`` makes the input NaN
    (so the latent, and BatchNorm's running statistics, would be NaN); ``backward`` a NaN
    gradient inside the network, between the convolutions and the embedding."""

    def __init__(self, fault: str, at_calls: set[int]):
        torch.manual_seed(0)
        super().__init__(in_channels=1, num_classes=10, latent_dim=16, image_size=8)
        self.fault, self.at_calls, self.calls = fault, at_calls, 0

    def forward(self, x):
        bad = False
        if self.training:
            self.calls += 1
            bad = self.calls in self.at_calls
        if bad and self.fault == "output":
            x = x * math.nan
        features = self.backbone(x)
        if bad and self.fault == "backward":
            features = NaNInside.apply(features)
        latent = self.embedding(features)
        return self.classifier(latent), latent


@pytest.mark.parametrize(
    ("fault", "loss", "message"),
    [
        ("output", None, r"in the model's output"),
        ("output", "latentboost", r"in the model's output"),
        ("backward", None, r"in a gradient inside the model's backward pass"),
    ],
)
def test_faults_in_the_model_are_named(digits, fault, loss, message):
    loss = LatentBoostLoss() if loss else None
    with pytest.raises(NonFiniteLossError, match=r"epoch 0, step 1, " + message):
        fit(FaultyModel(fault, {2}), digits, loss, epochs=1, batch_size=64, progress=False)


def test_skip_nonfinite_skips_counts_and_leaves_no_trace(digits):
    # Calls 2 and 7 of forward (epoch 0 step 1, epoch 1 step 2) get a NaN input; the loss's
    # gradient is NaN at epoch 1, step 0.
    model = FaultyModel("output", {2, 7})
    history = fit(
        model,
        digits,
        Faulty("grad", {(1, 0)}),
        epochs=2,
        batch_size=64,
        skip_nonfinite=True,
        progress=False,
    )
    assert history["skipped_steps"] == [1, 2]
    # No NaN reached the weights, BatchNorm's running statistics or the record.
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert all(math.isfinite(v) for v in history["train_loss"] + history["test_acc"])
    assert history.last["test_acc"] > 0.15  # it learns (chance: 0.1)


class CenterWithForward(CenterLoss):
    """A Center loss whose subclass overrides forward: fit calls it through forward (wrapped)."""

    def forward(self, logits, latent, labels, epoch=0, cluster_ids=None, sample_ids=None):
        return super().forward(logits, latent, labels, epoch)


@pytest.mark.parametrize("loss_class", [CenterLoss, CenterWithForward])
def test_a_skipped_step_puts_the_loss_buffers_back(digits, loss_class):
    # A NaN input at the third training call: the Center loss's forward has already moved its
    # centres (a buffer) towards that NaN batch; skipping the step must put them back, whether
    # fit calls the loss through its contract or through an overridden forward.
    loss = loss_class(10, 16, lam=0.1)
    history = fit(FaultyModel("output", {3}), digits, loss, epochs=1, batch_size=64,
                  skip_nonfinite=True, progress=False)  # fmt: skip
    assert history["skipped_steps"] == [1]
    assert torch.isfinite(loss.centers).all() and loss.centers.abs().sum() > 0


def test_an_epoch_of_only_skipped_steps_raises(digits):
    every = {(0, s) for s in range(10)}
    with pytest.raises(NonFiniteLossError, match="every step of epoch 0"):
        fit(
            small_model(),
            digits,
            Faulty("nan", every),
            epochs=2,
            batch_size=64,
            skip_nonfinite=True,
            progress=False,
        )


def test_on_a_gpu_the_check_is_read_once_per_epoch(digits, tmp_path, monkeypatch):
    """Where reading a flag waits for the device (a GPU), the flags are combined on the device
    and read at the end of the epoch: the error still names the first bad step and the part,
    and nothing of the bad epoch is kept. Simulated on the CPU."""
    monkeypatch.setattr(nonfinite, "_syncs_are_free", lambda device: False)
    reference = small_model()
    fit(reference, digits, Faulty("nan", set()), epochs=1, batch_size=64, progress=False)
    model = small_model()
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 2.*dist = L_dist.*end of") as info:
        fit(
            model,
            digits,
            Faulty("nan", {(1, 2), (1, 3)}),
            epochs=3,
            batch_size=64,
            checkpoint=tmp_path / "run.pt",
            progress=False,
        )
    assert (info.value.step, info.value.part) == (2, "L_dist")
    assert same_weights(model, reference)
    assert len(json.loads(load_checkpoint(tmp_path / "run.pt")["history"])["epochs"]) == 1
    with pytest.raises(NonFiniteLossError, match=r"epoch 0, step 1, in a gradient"):
        fit(small_model(), digits, Faulty("grad", {(0, 1)}), epochs=1, progress=False)


# ----------------------------------------------------------------------------- arguments


def _plain_classifier():
    """A model that returns logits only (not the (logits, latent) pair)."""
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))


BAD_ARGUMENTS = [
    # (call, argument the message must name, error type)
    (lambda d: load_dataset("digits", seed=1.5), "seed", TypeError),
    (lambda d: load_dataset("digits", seed=-1), "seed", ValueError),
    (lambda d: load_dataset("cifar10", root=5, download=False), "root", TypeError),
    (lambda d: load_dataset("cifar10", download="no"), "download", TypeError),
    (lambda d: load_dataset("digits", device="tpu"), "device", ValueError),
    (lambda d: load_dataset("digits", val_size=1.5), "val_size", ValueError),
    (lambda d: d.to("tpu"), "device", ValueError),
    (lambda d: fit("model", d, progress=False), "model", TypeError),
    (lambda d: fit(small_model(), torch.zeros(3), progress=False), "data", TypeError),
    (lambda d: fit(small_model(), d, weight_decay=-1, progress=False), "weight_decay", ValueError),
    (lambda d: fit(small_model(), d, seed=-3, progress=False), "seed", ValueError),
    (lambda d: fit(small_model(), d, bf16="yes", progress=False), "bf16", TypeError),
    (lambda d: fit(small_model(), d, resume=True, progress=False), "resume", ValueError),
    (lambda d: fit(small_model(), d, callbacks=print, progress=False), "callbacks", TypeError),
    (lambda d: fit(small_model(), d, optimizer="adam", progress=False), "optimizer", TypeError),
    (lambda d: fit(small_model(), d, monitor=3, progress=False), "monitor", TypeError),
    (
        lambda d: fit(small_model(), d.without_val, patience=2, progress=False),
        "patience",
        ValueError,
    ),
    (
        lambda d: fit(small_model(), d, epochs=1, patience=1, monitor="val_f1"),
        "monitor",
        ValueError,
    ),
    (lambda d: fit(_plain_classifier(), d, epochs=1, progress=False), "model", ValueError),
    (lambda d: embed(None, d), "model", TypeError),
    (lambda d: embed(small_model(), torch.zeros(3)), "data", TypeError),
    (lambda d: embed(_plain_classifier(), d), r"model must return \(logits, latent\)", ValueError),
    (
        lambda d: embed(small_model().to("meta"), d),
        "model is on meta but data is on cpu",
        ValueError,
    ),
    (lambda d: embed(small_model(), d, return_logits="yes"), "return_logits", ValueError),
    (lambda d: evaluate(small_model(), d, "dev"), "split", ValueError),
    (lambda d: kmeans(torch.randn(5), 2), "x", ValueError),
    (lambda d: kmeans(torch.randn(5, 2), 0), "k", ValueError),
    (lambda d: build_model("small_cnn", "digits"), "info must be a DatasetInfo", TypeError),
    (lambda d: build_model("lenet", d.info), "model must be one of", ValueError),
    (lambda d: plot_history(_history(), ax="left"), "ax must be a matplotlib Axes", TypeError),
]


def _history():
    from latentboost_lab import History

    return History(epochs=[{"epoch": 0, "train_loss": 1.0, "val_acc": 0.5}])


@pytest.fixture(scope="module")
def digits_no_val(digits):
    return load_dataset("digits", n_train=300, val_size=0, seed=0, device="cpu")


@pytest.mark.parametrize(("call", "argument", "error"), BAD_ARGUMENTS)
def test_bad_arguments_raise_naming_the_argument(digits, digits_no_val, call, argument, error):
    digits.without_val = digits_no_val
    with pytest.raises(error, match=argument):
        call(digits)


# ----------------------------------------------------------------------------- outputs


def test_unwritable_checkpoint_folder_is_reported_before_training(digits, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # Under a regular file nothing can be written, even as root (chmod does not stop root).
    for path, problem in (
        (blocker / "run.pt", "does not exist"),
        (tmp_path, "is a folder"),
    ):
        with pytest.raises(ValueError, match=f"checkpoint: .*{problem}"):
            fit(model, digits, epochs=1, checkpoint=path, progress=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # not trained


# ----------------------------------------------------------------------------- memory


@pytest.fixture(scope="module")
def peak_memory() -> dict:
    """Peak memory of embed (60,000 images) and silhouette_score (20,000 latents), measured by
    tests/_memory_probe.py, each call in a fresh process (one thread)."""
    if not os.access("/proc/self/clear_refs", os.W_OK) or not hasattr(os, "fork"):
        pytest.skip("peak memory needs Linux's /proc/self/clear_refs and fork")
    jobs = ["embed", "60000", "silhouette", "20000", "--model", "linear", "--threads", "1"]
    result = subprocess.run(
        [sys.executable, str(TESTS / "_memory_probe.py"), *jobs],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    return {line["what"]: line for line in lines}


def test_embed_of_60000_images_stays_within_its_memory_bound(peak_memory):
    """embed holds one copy of its outputs (60,000 x (128 + 10) float32 = 32 MiB) and one
    batch's activations; measured 40-64 MiB with this one-layer model. The bound is generous:
    keeping every batch's activations or autograd graph would need gigabytes."""
    assert peak_memory["embed"]["peak_mib"] < 96, peak_memory


def test_silhouette_memory_grows_linearly_not_quadratically(peak_memory):
    """20,000 x 128 float32 latents, 10 classes: measured 126-169 MiB (a distance block of
    1024 x n, four copies of the points and an n x classes accumulator); the n x n distance
    matrix alone would be 1,526 MiB. 60,000 points took 19-209 s on one thread of the shared
    machine, too long for the suite: their figure is in silhouette_samples's docstring."""
    assert peak_memory["silhouette"]["peak_mib"] < 320, peak_memory
