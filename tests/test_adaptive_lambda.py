"""A λ that adapts (issue 18 §2): each strategy's value against a float64 hand computation, the
gradient ratio's balance, the controller's rule step by step, and that every strategy trains
through fit, records its λ, and resumes to the uninterrupted run."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from latentboost_lab import SmallCNN, fit, load_dataset
from latentboost_lab.experiments import parse_arms
from latentboost_lab.losses import (
    GradientRatio,
    LatentBoostLoss,
    UncertaintyWeighting,
    ValidationController,
)
from latentboost_lab.recipes import LAMBDA_STRATEGIES, WARMUP_EPOCHS, make_loss

pytestmark = pytest.mark.usefixtures("one_thread")
TIMES = ("seconds", "train_seconds")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_train=500, val_size=0.2, seed=0)


def small_model(seed=0):
    torch.manual_seed(seed)
    return SmallCNN(in_channels=1, num_classes=10, latent_dim=16, image_size=8)


def batch(seed=0, n=40, d=6, classes=4):
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.arange(n) % classes
    head = torch.randn(d, classes, generator=g, dtype=torch.float64)
    return latent, labels, head


def test_uncertainty_weighting_is_kendalls_sum():
    strategy = UncertaintyWeighting().double()
    with torch.no_grad():
        strategy.log_var_ce.fill_(0.3)
        strategy.log_var_dist.fill_(-0.7)
    ce, dist = torch.tensor(1.2, dtype=torch.float64), torch.tensor(0.4, dtype=torch.float64)
    value, lam, parts = strategy.combine(ce, dist, None, 0)
    expected = math.exp(-0.3) * 1.2 + math.exp(0.7) * 0.4 + 0.5 * (0.3 - 0.7)
    assert value.item() == pytest.approx(expected, abs=1e-12)
    assert lam.item() == pytest.approx(math.exp(0.7) / (math.exp(0.7) + math.exp(-0.3)), abs=1e-12)
    assert not lam.requires_grad and parts["log_var_dist"].item() == pytest.approx(-0.7)
    value.backward()
    # d/ds (exp(-s) L + s/2) = -exp(-s) L + 1/2: the weight moves towards 1 / (2 L).
    assert strategy.log_var_ce.grad.item() == pytest.approx(-math.exp(-0.3) * 1.2 + 0.5)
    assert strategy.log_var_dist.grad.item() == pytest.approx(-math.exp(0.7) * 0.4 + 0.5)


def test_gradient_ratio_balances_the_weighted_gradients_at_the_latent():
    latent, labels, head = batch()
    ce = torch.nn.functional.cross_entropy(latent @ head, labels)
    dist = (latent - latent.mean(0)).pow(2).sum(1).mean() * 0.3  # any term of the latent
    strategy = GradientRatio(start=0.5, momentum=0.0, low=0.0, high=1.0).double()
    value, lam, _ = strategy.combine(ce, dist, latent, 0)
    g_ce = torch.autograd.grad(ce, latent, retain_graph=True)[0].norm()
    g_dist = torch.autograd.grad(dist, latent, retain_graph=True)[0].norm()
    assert (lam * g_dist).item() == pytest.approx(((1 - lam) * g_ce).item(), rel=1e-10)
    assert value.item() == pytest.approx((lam * dist + (1 - lam) * ce).item(), abs=1e-12)
    # With momentum the λ is the moving average, kept in its range.
    smooth = GradientRatio(start=0.75, momentum=0.9, low=0.2, high=0.8).double()
    _, lam_smooth, parts = smooth.combine(ce, dist, latent, 0)
    target = parts["lam_target"].item()
    assert lam_smooth.item() == pytest.approx(min(0.8, max(0.2, 0.9 * 0.75 + 0.1 * target)))
    with torch.no_grad():  # no graph (evaluation): λ as it stands, unchanged
        _, lam_eval, _ = smooth.combine(ce.detach(), dist.detach(), latent.detach(), 0)
    assert lam_eval.item() == lam_smooth.item()


def test_the_controller_follows_its_rule():
    controller = ValidationController(start=0.5, step=0.1, low=0.0, high=0.9, tolerance=0.005)
    # first epoch: no best yet -> up; holds within tolerance -> up; drops -> down; capped.
    steps = [(0.80, 0.6), (0.798, 0.7), (0.78, 0.6), (0.81, 0.7), (0.82, 0.8), (0.83, 0.9),
             (0.84, 0.9), (0.70, 0.8)]  # fmt: skip
    for acc, expected in steps:
        assert controller.decide(acc) == pytest.approx(expected)
    assert controller.best_val_acc.item() == pytest.approx(0.84)


@pytest.mark.parametrize("name, make", [
    ("bad start", lambda: GradientRatio(start=0.99, high=0.95)),
    ("bad momentum", lambda: GradientRatio(momentum=1.0)),
    ("bad step", lambda: ValidationController(step=-0.1)),
])  # fmt: skip
def test_bad_settings_are_named(name, make):
    with pytest.raises(ValueError, match="start|momentum|step"):
        make()


@pytest.mark.parametrize("strategy", LAMBDA_STRATEGIES)
def test_every_strategy_trains_and_records_its_lambda(digits, strategy):
    loss = make_loss("latentboost", data=digits, lam=0.75, lam_strategy=strategy)
    history = fit(small_model(), digits, loss, epochs=WARMUP_EPOCHS + 1, batch_size=64,
                  lr=3e-3, progress=False)  # fmt: skip
    lams = history["lam"]
    assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in lams), lams
    assert history.last["train_loss"] < history.epochs[0]["train_loss"] or strategy == "uncertainty"
    assert history.last["val_acc"] > 0.5, history.epochs
    if strategy == "constant":
        assert lams == [0.75] * len(lams)
    if strategy == "warmup":
        assert lams[0] == 0.0 and lams[-1] == 0.75
    if strategy == "controller":
        assert lams[0] == pytest.approx(0.5)  # steps of 0.1, or none where capped
        assert all(round(abs(b - a), 5) in (0.0, 0.1) for a, b in itertools.pairwise(lams))
    if strategy == "uncertainty":
        assert "log_var_dist" in history.last and len(set(lams)) > 1
    if strategy == "grad_ratio":
        assert "lam_target" in history.last and len(set(lams)) > 1


@pytest.mark.parametrize("strategy", ["uncertainty", "grad_ratio", "controller"])
def test_a_resumed_run_continues_the_strategy_exactly(digits, tmp_path, strategy):
    def make():
        return make_loss("latentboost", data=digits, lam=0.75, lam_strategy=strategy)

    whole = fit(small_model(), digits, make(), epochs=3, batch_size=64, seed=1, progress=False)

    def stop_after_one(history, model):
        if len(history) == 1:
            raise KeyboardInterrupt

    ckpt = tmp_path / "run.pt"
    fit(small_model(), digits, make(), epochs=3, batch_size=64, seed=1, checkpoint=ckpt,
        callbacks=[stop_after_one], progress=False)  # fmt: skip
    resumed = fit(small_model(seed=9), digits, make(), epochs=3, batch_size=64, seed=1,
                  checkpoint=ckpt, resume=True, progress=False)  # fmt: skip
    strip = lambda h: [{k: v for k, v in e.items() if k not in TIMES} for e in h.epochs]  # noqa: E731
    assert strip(resumed) == strip(whole)


def test_the_runner_names_the_strategy_arms():
    arms = parse_arms("ce,latentboost", lam_strategies=["warmup", "controller"])
    assert [a.name for a in arms] == ["ce", "latentboost", "latentboost-lam_warmup",
                                      "latentboost-lam_controller"]  # fmt: skip
    assert dict(arms[2].options) == {"lam_strategy": "warmup"}
    with pytest.raises(ValueError, match="lam_strategies"):
        parse_arms("ce", lam_strategies=["gradnorm"])
    with pytest.raises(ValueError, match="lam_strategy applies to latentboost"):
        make_loss("ce", lam_strategy="warmup")
    assert isinstance(
        make_loss("latentboost", lam_strategy="uncertainty").lam, UncertaintyWeighting
    )
    assert LatentBoostLoss(lam=GradientRatio()).adaptive


def test_a_run_that_diverges_is_recorded_and_counted_not_fatal(tmp_path, monkeypatch):
    # Stability is measured, not assumed: the runner keeps a diverged run (its finished epochs,
    # evaluated at the last of them), goes on with the others, and the report counts it.
    from latentboost_lab import training
    from latentboost_lab.experiments import ExperimentConfig, run_experiment
    from latentboost_lab.nonfinite import NonFiniteLossError

    real_fit = training.fit

    def fit_that_diverges_in_epoch_2(model, data, loss, **kwargs):
        if not getattr(loss, "adaptive", False):
            return real_fit(model, data, loss, **kwargs)
        history = real_fit(model, data, loss, **{**kwargs, "epochs": 1, "checkpoint": None,
                                                 "resume": False})  # fmt: skip
        err = NonFiniteLossError("the loss became nan at epoch 1, step 3 (L_dist)", 1, 3, "L_dist")
        err.history = history
        raise err

    monkeypatch.setattr(training, "fit", fit_that_diverges_in_epoch_2)
    config = ExperimentConfig(dataset="digits", arms=parse_arms("latentboost",
                              lam_strategies=["grad_ratio"]), seeds=(0, 1), epochs=2,
                              n_train=200, n_test=100, batch_size=64, device="cpu")  # fmt: skip
    results = run_experiment(config, tmp_path, progress=False)
    run = results.runs["latentboost-lam_grad_ratio/seed0"]
    assert run["diverged"]["part"] == "L_dist" and run["diverged"]["epoch"] == 1
    assert len(run["history"]["epochs"]) == 1 and 0.0 <= run["test"]["acc"] <= 1.0
    assert "diverged" not in results.runs["latentboost/seed0"]
    summary = results.summary(reference="latentboost")
    assert summary["lambda"]["latentboost-lam_grad_ratio"]["diverged"] == 2
    text = (tmp_path / "summary.md").read_text()
    assert "## λ during training" in text and "| 2 of 2 |" in text


def test_compare_reports_against_the_reference_arm_it_is_given(tmp_path, capsys):
    from latentboost_lab import cli

    out = tmp_path / "lam"
    argv = ["compare", "--dataset", "digits", "--arms", "latentboost", "--lam-strategies",
            "warmup", "--epochs", "2", "--seeds", "1", "--n-train", "200", "--n-test", "100",
            "--device", "cpu", "--no-progress", "--out", str(out), "--reference", "latentboost"]  # fmt: skip
    assert cli.main(argv) == 0
    text = (out / "summary.md").read_text()
    assert "## Against `latentboost`" in text and "| latentboost-lam_warmup |" in text
    assert "## λ during training" in text  # the warm-up's λ moved: 0 at epoch 0
    code = cli.main(["compare", "--report-only", "--out", str(out), "--reference", "ce"])
    assert code != 0 and "--reference: 'ce' is not an arm" in capsys.readouterr().err
    # the reference is recorded: --report-only without it reports against latentboost again
    assert cli.main(["compare", "--report-only", "--out", str(out)]) == 0
    assert "## Against `latentboost`" in (out / "summary.md").read_text()
    assert json.loads((out / "runs.json").read_text())["config"]["reference"] == "latentboost"
    # a folder without ce and no reference ever given still reports (no paired tests)
    other = tmp_path / "plain"
    argv = ["compare", "--dataset", "digits", "--arms", "latentboost", "--epochs", "1", "--seeds",
            "1", "--n-train", "200", "--n-test", "100", "--device", "cpu", "--no-progress",
            "--out", str(other)]  # fmt: skip
    assert cli.main(argv) == 0 and cli.main(["compare", "--report-only", "--out", str(other)]) == 0
    assert "## Against" not in (other / "summary.md").read_text()


def test_strategies_refuse_what_they_cannot_do_before_training(digits):
    # The gradient ratio needs the logits to depend on the latent it is given (not the
    # 'features' reading); the controller needs a validation split, checked at epoch 0.
    model = small_model()
    model.latent = "features"
    loss = make_loss("latentboost", data=digits, lam_strategy="grad_ratio")
    with pytest.raises(ValueError, match="'embedding' or 'pooled' latent"):
        fit(model, digits, loss, epochs=1, progress=False)
    no_val = load_dataset("digits", n_train=300, val_size=0.0, seed=0)
    controller = make_loss("latentboost", data=no_val, lam_strategy="controller")
    trained = []
    with pytest.raises(ValueError, match="needs a validation split"):
        fit(small_model(), no_val, controller, epochs=2, progress=False,
            callbacks=[lambda h, m: trained.append(len(h))])  # fmt: skip
    assert trained == []  # refused before the first epoch


def test_learned_weights_left_out_of_a_given_optimizer_are_named(digits):
    model = small_model()
    loss = make_loss("latentboost", data=digits, lam_strategy="uncertainty")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # without the loss's parameters
    with pytest.warns(UserWarning, match="log_var_ce"):
        fit(model, digits, loss, epochs=1, optimizer=optimizer, progress=False)
    with pytest.raises(ValueError, match="need val_size > 0"):
        from latentboost_lab.experiments import ExperimentConfig

        ExperimentConfig(arms=parse_arms("latentboost", lam_strategies=["controller"]), val_size=0)
