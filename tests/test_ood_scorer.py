"""OODScorer on a model, its errors, the experiment runner's OOD evaluation and report, and
the ``latentboost-lab ood`` command."""

from __future__ import annotations

import json

import pytest
import torch

import latentboost_lab as lb
from latentboost_lab.ood import DEFAULT_SCORES, OODScorer, evaluate_ood, format_ood_table, load_ood

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return lb.load_dataset("digits", seed=0, device="cpu")


@pytest.fixture(scope="module")
def model(digits):
    torch.manual_seed(0)
    return lb.build_model("small_cnn", digits.info, 16)


def test_scorer_scores_images_latents_and_the_test_split(model, digits):
    scorer = OODScorer(k=5).fit(model, digits)
    assert scorer.fitted and scorer.bank_size == len(digits.y_train)
    noise = load_ood("uniform", digits, n=30)
    scores = scorer.score(noise.images)
    assert list(scores) == list(DEFAULT_SCORES)
    assert all(v.shape == (30,) and v.dtype == torch.float64 for v in scores.values())
    # the same numbers from the latents and logits, or from the latents alone (the head)
    latent, _, logits = lb.metrics.embed(model, digits, "test", return_logits=True)
    a = scorer.score_latents(latent, logits)
    b = scorer.score_latents(latent)
    c = scorer.score_split("test")
    for name in DEFAULT_SCORES:
        torch.testing.assert_close(a[name], c[name])
        torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6)
    result = scorer.evaluate({"uniform": noise})
    assert set(result["uniform"]) == set(DEFAULT_SCORES)
    assert all(0.0 <= m["auroc"] <= 1.0 for m in result["uniform"].values())
    table = format_ood_table(result)
    assert table.splitlines()[0].startswith("| OOD set (auroc %") and "| uniform |" in table


def test_scorer_reads_the_embedding_whatever_the_models_latent(model, digits):
    reference = OODScorer(["knn", "energy"], k=3).fit(model, digits).score_split()
    model.latent = "pooled"
    try:
        other = OODScorer(["knn", "energy"], k=3).fit(model, digits).score_split()
        assert model.latent == "pooled"  # put back
    finally:
        model.latent = "embedding"
    for name in reference:
        torch.testing.assert_close(other[name], reference[name])


def test_scorer_errors_name_the_problem(model, digits):
    fresh = OODScorer()
    for call in (
        lambda: fresh.score(torch.zeros(2, 1, 8, 8, dtype=torch.uint8)),
        lambda: fresh.score_latents(torch.zeros(2, 16)),
        lambda: fresh.evaluate({"x": torch.zeros(2, 1, 8, 8, dtype=torch.uint8)}),
    ):
        with pytest.raises(RuntimeError, match="not fitted yet"):
            call()
    scorer = OODScorer(k=5).fit(model, digits)
    with pytest.raises(ValueError, match=r"shape \(n, 1, 8, 8\) to fit the model.*to_shape"):
        scorer.score(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="OOD set is empty"):
        scorer.score(torch.zeros(0, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="must be uint8"):
        scorer.score(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="latent contains NaN"):
        scorer.score_latents(torch.full((2, 16), float("nan")))
    with pytest.raises(ValueError, match="width 16"):
        scorer.score_latents(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="same number of rows"):
        scorer.score_latents(torch.zeros(3, 16), torch.zeros(2, 10))
    with pytest.raises(ValueError, match="k must be <="):
        OODScorer(k=10).fit_latents(torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 0]))
    with pytest.raises(ValueError, match="scores must be among"):
        OODScorer(["msp", "cluster_k1"])
    with pytest.raises(ValueError, match="logits: the scores"):
        OODScorer(["msp"]).fit_latents(torch.randn(6, 3), torch.arange(6) % 2).score_latents(
            torch.randn(2, 3)
        )


def test_evaluate_ood_and_the_runner_store_and_report_ood(digits, tmp_path):
    from latentboost_lab.experiments import ExperimentConfig, Results, parse_arms, run_experiment

    config = ExperimentConfig(
        dataset="digits",
        arms=parse_arms("ce,latentboost"),
        seeds=(0, 1),
        epochs=1,
        batch_size=256,
        device="cpu",
        ood="noise",
        n_ood=40,
    )
    assert config.ood == ["gaussian", "uniform"] and config.fixed()["ood"] == config.ood
    results = run_experiment(config, tmp_path / "cmp", progress=False)
    for run in results.runs.values():
        assert set(run["ood"]) == {"gaussian", "uniform"}
        assert set(run["ood"]["uniform"]) == set(DEFAULT_SCORES)
    again = Results.load(tmp_path / "cmp")
    summary = again.summary()
    cell = summary["ood"]["uniform"]["latentboost"]["knn"]
    assert cell["auroc"]["n"] == 2 and "vs_reference" in cell
    markdown = again.markdown()
    assert "## Out-of-distribution detection" in markdown
    assert "### digits vs gaussian" in markdown and "Δ AUROC against `ce`" in markdown
    # the latent's own score against the others, inside each arm, paired over the seeds
    own = summary["ood"]["uniform"]["latentboost"]["cluster"]["vs_scores"]["knn"]
    pairs = [again.runs[f"latentboost/seed{s}"]["ood"]["uniform"] for s in (0, 1)]
    expected = sum(r["cluster"]["auroc"] - r["knn"]["auroc"] for r in pairs) / 2
    assert own["n"] == 2 and own["mean_diff"] == pytest.approx(expected, abs=1e-12)
    assert "The latent's own score (`cluster`) against each other score" in markdown
    # the runner's numbers are evaluate_ood's on the same model and sets
    one = evaluate_ood(lb.build_model("small_cnn", digits.info), digits, "uniform", n=40)
    assert set(one["uniform"]) == set(DEFAULT_SCORES)


def test_results_without_ood_stay_readable_and_unchanged(tmp_path):
    from latentboost_lab.experiments import ExperimentConfig, Results, parse_arms, run_experiment

    config = ExperimentConfig(
        dataset="digits", arms=parse_arms("ce"), seeds=(0,), epochs=1, batch_size=256
    )
    assert "ood" not in config.fixed() and "n_ood" not in config.fixed()
    results = run_experiment(config, tmp_path / "plain", progress=False)
    assert "ood" not in next(iter(results.runs.values()))
    assert "ood" not in results.summary() and "Out-of-distribution" not in results.markdown()
    # adding --ood to a folder of runs made without it is refused, naming the setting
    with pytest.raises(ValueError, match="ood"):
        run_experiment(
            ExperimentConfig(**{**config.__dict__, "ood": ["uniform"]}), tmp_path / "plain"
        )
    before = (tmp_path / "plain" / "summary.md").read_text()
    Results.load(tmp_path / "plain").write_report()
    assert (tmp_path / "plain" / "summary.md").read_text() == before


def test_cli_ood_scores_a_checkpoint(tmp_path, capsys):
    from latentboost_lab.cli import main

    prefix = tmp_path / "run"
    args = ["train", "--dataset", "digits", "--epochs", "1", "--checkpoint", "--no-progress"]
    assert main([*args, "--out", str(prefix), "--latent-dim", "16"]) == 0
    out = tmp_path / "ood.json"
    code = main(
        ["ood", str(prefix) + ".pt", "--sets", "uniform,shuffled", "--n-ood", "50"]
        + ["--k", "5", "--json", str(out), "--threads", "1"]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "| uniform |" in printed and "fpr95 %" in printed
    document = json.loads(out.read_text())
    assert set(document["metrics"]) == {"uniform", "shuffled"}
    assert document["sets"]["uniform"]["size"] == 50 and document["model"] == "small_cnn"
    # errors: one line, exit status 1 or 2
    assert main(["ood", str(tmp_path / "missing.pt")]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["ood", str(prefix) + ".pt", "--sets", "svhn"])
    assert exit_info.value.code == 2 and "ood must name" in capsys.readouterr().err
    assert main(["ood", str(prefix) + ".pt", "--sets", "uniform", "--model", "resnet18"]) == 1
    assert "fit none of ['resnet18']" in capsys.readouterr().err
