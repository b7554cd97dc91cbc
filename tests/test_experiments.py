"""The experiment runner and its report: fairness between arms, resuming, the paired test
against scipy, the summary arithmetic on hand-made runs, and the command line."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from latentboost_lab import cli, training
from latentboost_lab.estimate import estimate_time, format_estimate
from latentboost_lab.experiments import (
    ABLATIONS,
    Arm,
    ExperimentConfig,
    Results,
    parse_arms,
    run_experiment,
)
from latentboost_lab.report import markdown, paired_test, summarise, verdict, write_report

pytestmark = pytest.mark.usefixtures("one_thread")

TIMING = {"seconds", "train_seconds"}


def tiny_config(**overrides) -> ExperimentConfig:
    settings = dict(
        dataset="digits",
        arms=parse_arms("ce,latentboost"),
        seeds=(0,),
        epochs=2,
        n_train=300,
        n_test=200,
        batch_size=64,
        device="cpu",
    )
    settings.update(overrides)
    return ExperimentConfig(**settings)


def without_timing(history: dict) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in TIMING} for e in history["epochs"]]


# ----------------------------------------------------------------------------- arms and config


def test_parse_arms_names_lambda_sweep_and_ablations():
    arms = parse_arms("ce, magnet,latentboost", lams=[0.5, 0.75], ablations=["no_pca"])
    assert [a.name for a in arms] == [
        "ce",
        "magnet",
        "latentboost(λ=0.5)",
        "latentboost(λ=0.75)",
        "latentboost-no_pca",
    ]
    assert arms[2].lam == 0.5 and arms[2].loss == "latentboost"
    assert dict(arms[-1].options) == ABLATIONS["no_pca"] and arms[-1].lam == 0.5
    assert arms[1].classifier == "clusters" and arms[1].monitor == "val_cluster_acc"
    assert arms[0].classifier == "head" and arms[0].monitor == "val_acc"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"arms": "ce,softmax"}, "arms must be one of"),
        ({"arms": ""}, "arms must name at least one"),
        ({"arms": "ce,ce"}, "arms must not repeat"),
        ({"arms": "latentboost", "lams": [1.5]}, "lam must be in"),
        ({"arms": "latentboost", "lams": [0.5, 0.5]}, "lam must not repeat"),
        ({"arms": "ce", "ablations": ["no_margin"]}, "ablations must be one of"),
    ],
)
def test_parse_arms_rejects_bad_input_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        parse_arms(**kwargs)


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        ({"seeds": ()}, ValueError, "seeds must be a non-empty list"),
        ({"seeds": (0, 0)}, ValueError, "seeds must be a non-empty list of distinct"),
        ({"seeds": (-1,)}, ValueError, "seeds must be >= 0"),
        ({"epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"lr": 0.0}, ValueError, "lr must be in"),
        ({"patience": 0}, ValueError, "patience must be >= 1"),
        ({"arms": ["ce"]}, TypeError, "arms must be a non-empty list of Arm"),
        ({"arms": [Arm("a", "ce"), Arm("a", "latentboost")]}, ValueError, "distinct names"),
    ],
)
def test_config_rejects_bad_settings_by_name(overrides, error, message):
    with pytest.raises(error, match=message):
        tiny_config(**overrides)


def test_run_experiment_rejects_a_config_that_is_not_one(tmp_path):
    with pytest.raises(TypeError, match="config must be an ExperimentConfig"):
        run_experiment({"dataset": "digits"}, tmp_path)


def test_unwritable_output_is_reported_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("trained anyway"))
    with pytest.raises(ValueError, match="out_dir: cannot create"):
        run_experiment(tiny_config(), blocker / "results", progress=False)


# ----------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    """ce, Latent Boost with λ = 0 (the same objective as ce) and Magnet, two seeds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("tiny")
        arms = parse_arms("ce,magnet,latentboost", lams=[0.0])
        config = tiny_config(arms=arms, seeds=(0, 1))
        return run_experiment(config, out, progress=False, command="test"), config, out
    finally:
        torch.set_num_threads(threads)


def test_every_run_is_recorded_with_its_metrics(tiny_results):
    results, config, out = tiny_results
    assert sorted(results.runs) == sorted(
        f"{a.name}/seed{s}" for a in config.arms for s in config.seeds
    )
    for run in results.runs.values():
        assert len(run["history"]["epochs"]) == config.epochs
        test = run["test"]
        for key in ("acc", "micro_f1", "macro_f1", "silhouette", "silhouette_pca", "head_acc"):
            assert math.isfinite(test[key]), key
        assert test["n_test"] == 200
        assert 1 <= test["test_pca_k"] <= 128
        assert test["micro_f1"] == pytest.approx(test["acc"])  # single-label classes
    saved = json.loads((out / "runs.json").read_text())
    assert saved["runs"].keys() == results.runs.keys()
    assert saved["environment"][0]["torch"] == torch.__version__
    git = saved["environment"][0]["git"]  # the source's commit, when run from a checkout
    assert git is None or len(git.split("+")[0]) == 40
    assert saved["commands"] == ["test"]
    for name in ("summary.md", "summary.json", "accuracy_silhouette.png", "pca_components.png"):
        assert (out / name).stat().st_size > 0, name
    assert not list((out / "checkpoints").iterdir())  # finished runs leave no checkpoint


def test_arms_share_data_weights_and_batches(tiny_results):
    """Latent Boost with λ = 0 is cross-entropy: with the same data, initial weights and
    batches, its run must repeat the ce run exactly. Only the loss may differ between arms."""
    results, _, _ = tiny_results
    for seed in (0, 1):
        ce = results.runs[f"ce/seed{seed}"]
        lb = results.runs[f"latentboost(λ=0)/seed{seed}"]
        ce_epochs = without_timing(ce["history"])
        lb_epochs = without_timing(lb["history"])
        for a, b in zip(ce_epochs, lb_epochs, strict=True):
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
            assert b["val_acc"] == a["val_acc"]
        assert lb["test"]["acc"] == ce["test"]["acc"]
    assert results.runs["ce/seed0"]["test"] != results.runs["ce/seed1"]["test"]


def test_magnet_is_judged_by_its_nearest_cluster_classifier(tiny_results):
    results, _, _ = tiny_results
    run = results.runs["magnet/seed0"]
    assert run["monitor"] == "val_cluster_acc"
    assert run["test"]["acc"] == run["test"]["cluster_acc"]
    assert "val_cluster_acc" in run["history"]["epochs"][0]


def test_finished_runs_are_not_redone_and_new_seeds_are_added(tiny_results, monkeypatch):
    results, config, out = tiny_results
    before = json.loads((out / "runs.json").read_text())["runs"]
    real_fit = training.fit
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("a finished run ran again"))
    again = run_experiment(config, out, progress=False, report=False)
    assert again.runs == before
    calls = []

    def counting_fit(*args, **kwargs):
        calls.append(kwargs["seed"])
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit", counting_fit)
    more = run_experiment(
        tiny_config(arms=config.arms[:1], seeds=(2,)), out, progress=False, report=False
    )
    assert calls == [2]
    assert "ce/seed2" in more.runs and len(more.runs) == len(before) + 1
    assert more.config["seeds"] == [0, 1, 2]


def test_other_settings_in_the_same_folder_are_refused(tiny_results):
    _, config, out = tiny_results
    with pytest.raises(ValueError, match=r"other settings \(epochs: 2 there, 3 now\)"):
        run_experiment(tiny_config(arms=config.arms, epochs=3), out, progress=False)


def test_interrupted_run_resumes_to_the_same_history(tmp_path, monkeypatch):
    config = tiny_config(arms=parse_arms("latentboost"), epochs=3)
    whole = run_experiment(config, tmp_path / "whole", progress=False, report=False)

    real_save = training.save_checkpoint
    saves = []

    def save_then_interrupt(path, state):
        real_save(path, state)
        saves.append(path)
        if len(saves) == 2:  # the stop button, right after epoch 1 was saved
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_checkpoint", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt, match="run again to continue"):
        run_experiment(config, tmp_path / "cut", progress=False, report=False)
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    assert Results.load(tmp_path / "cut").runs == {}
    assert saves[-1].exists()

    resumed = run_experiment(config, tmp_path / "cut", progress=False, report=False)
    key = "latentboost/seed0"
    assert without_timing(resumed.runs[key]["history"]) == without_timing(
        whole.runs[key]["history"]
    )
    assert resumed.runs[key]["test"] == whole.runs[key]["test"]


# ----------------------------------------------------------------------------- the report


@pytest.mark.parametrize("n", [2, 3, 7])
def test_paired_test_matches_scipy(n):
    from scipy import stats

    rng = np.random.default_rng(n)
    a, b = rng.normal(size=n), rng.normal(size=n)
    ours = paired_test(a, b)
    theirs = stats.ttest_rel(a, b)
    assert ours["t"] == pytest.approx(theirs.statistic)
    assert ours["p"] == pytest.approx(theirs.pvalue)
    low, high = ours["ci95"]
    assert low < ours["mean_diff"] < high
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (low, high) == pytest.approx((ci.low, ci.high))


def test_paired_test_edge_cases():
    assert math.isnan(paired_test([1.0], [0.0])["p"])
    assert paired_test([1.0, 2.0], [0.5, 1.5])["p"] == 0.0  # the same gain every seed
    assert paired_test([1.0, 2.0], [1.0, 2.0])["p"] == 1.0
    with pytest.raises(ValueError, match="same length"):
        paired_test([1.0, 2.0], [1.0])


def test_verdict_needs_significance():
    small_noisy = paired_test([0.80, 0.81, 0.79], [0.80, 0.80, 0.795])
    assert verdict(small_noisy, True) == "no significant difference"
    clear = paired_test([0.90, 0.91, 0.92], [0.80, 0.805, 0.81])
    assert verdict(clear, True) == "better" and verdict(clear, False) == "worse"
    assert verdict(paired_test([1.0], [0.0]), True) == "inconclusive (n < 3)"
    # two seeds, both far worse: still no verdict (a t quantile of 12.7 decides nothing)
    assert verdict(paired_test([0.50, 0.52], [0.70, 0.69]), True) == "inconclusive (n < 3)"


def fake_run(arm, seed, val_accs, acc, silhouette, monitor="val_acc", pca_k=None):
    epochs = []
    for i, v in enumerate(val_accs):
        record = {"epoch": i, monitor: v, "seconds": 10.0}
        if pca_k is not None:
            record["pca_k"] = pca_k
        epochs.append(record)
    best = int(np.argmax(val_accs))
    return {
        "arm": arm,
        "seed": seed,
        "monitor": monitor,
        "history": {"epochs": epochs, "config": {}, "best_epoch": best},
        "test": {"acc": acc, "micro_f1": acc, "silhouette": silhouette},
    }


def fake_results(tmp_path, dataset="fashion_mnist") -> Results:
    runs = {}
    for seed, (ce_acc, lb_acc) in enumerate([(0.90, 0.92), (0.91, 0.935), (0.89, 0.915)]):
        runs[f"ce/seed{seed}"] = fake_run("ce", seed, [0.8, 0.85, 0.88], ce_acc, 0.20)
        runs[f"latentboost/seed{seed}"] = fake_run(
            "latentboost", seed, [0.82, 0.88, 0.9], lb_acc, 0.30 + 0.01 * seed, pca_k=5.0
        )
    document = {
        "config": {
            "fixed": {"dataset": dataset, "epochs": 3, "model": "small_cnn"},
            "arms": [
                {"name": "ce", "loss": "ce", "lam": None, "options": {}},
                {"name": "latentboost", "loss": "latentboost", "lam": None, "options": {}},
            ],
        },
        "commands": ["latentboost-lab compare ..."],
        "environment": [{"torch": "x"}],
        "runs": runs,
    }
    return Results(document, tmp_path / "runs.json")


def test_summary_arithmetic_on_hand_made_runs(tmp_path):
    summary = summarise(fake_results(tmp_path))
    lb = summary["arms"]["latentboost"]
    assert lb["metrics"]["acc"]["mean"] == pytest.approx((0.92 + 0.935 + 0.915) / 3)
    assert lb["metrics"]["acc"]["std"] == pytest.approx(np.std([0.92, 0.935, 0.915], ddof=1))
    # ce's best validation accuracy is 0.88; Latent Boost passes it at its 2nd epoch, 20 s in.
    assert lb["metrics"]["epochs_to_ref"]["values"] == [2.0, 2.0, 2.0]
    assert lb["metrics"]["seconds_to_ref"]["mean"] == pytest.approx(20.0)
    assert lb["reached_ref"] == 3
    assert lb["metrics"]["pca_k"]["mean"] == 5.0
    gain = lb["vs_reference"]["acc"]
    assert gain["mean_diff"] == pytest.approx(np.mean([0.02, 0.025, 0.025]))
    assert gain["verdict"] == "better"
    assert "vs_reference" not in summary["arms"]["ce"]


def test_markdown_sets_our_delta_beside_the_papers(tmp_path):
    text = markdown(fake_results(tmp_path))
    row = next(
        line for line in text.splitlines() if line.startswith("| latentboost |") and "+2.56" in line
    )
    assert "+2.33" in row  # our mean gain in points
    assert "better" in row
    assert "latentboost-lab compare ..." in text
    other = markdown(fake_results(tmp_path, dataset="digits"))
    assert "+2.56" not in other  # the paper has no claim for digits


def test_write_report_files(tmp_path):
    written = write_report(fake_results(tmp_path))
    names = sorted(p.name for p in written)
    assert names == ["accuracy_silhouette.png", "pca_components.png", "summary.json", "summary.md"]
    assert json.loads((tmp_path / "summary.json").read_text())["dataset"] == "fashion_mnist"


def test_the_papers_delta_stands_only_beside_the_papers_setting(tmp_path):
    results = fake_results(tmp_path)
    for run in list(results.runs.values()):
        if run["arm"] == "latentboost":
            for lam in (0.5, 0.75):
                name = f"latentboost(λ={lam:g})"
                results.runs[f"{name}/seed{run['seed']}"] = {**run, "arm": name}
    for lam in (0.5, 0.75):
        results.config["arms"].append(
            {"name": f"latentboost(λ={lam:g})", "loss": "latentboost", "lam": lam, "options": {}}
        )
    rows = {
        line.split(" | ")[0]: line for line in markdown(results).splitlines() if "| p |" not in line
    }
    assert "+2.56" in rows["| latentboost(λ=0.75)"] and "+2.56" in rows["| latentboost"]
    assert "+2.56" not in rows["| latentboost(λ=0.5)"]  # the paper's best λ is 0.75 here


def test_results_load_reports_a_foreign_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no comparison has been run into"):
        Results.load(tmp_path)
    (tmp_path / "runs.json").write_text('{"something": 1}')
    with pytest.raises(ValueError, match="not a runs.json written by run_experiment"):
        Results.load(tmp_path)
    (tmp_path / "runs.json").write_text("{half")
    with pytest.raises(ValueError, match="is not a readable runs.json"):
        Results.load(tmp_path)


# ----------------------------------------------------------------------------- time estimate


def _fit_spy(monkeypatch):
    calls = []
    real_fit = training.fit

    def spy(model, data, loss, **kwargs):
        calls.append(kwargs)
        return real_fit(model, data, loss, **kwargs)

    monkeypatch.setattr(training, "fit", spy)
    return calls


def test_estimate_trains_as_the_comparison_does(tmp_path, monkeypatch):
    calls = _fit_spy(monkeypatch)
    config = tiny_config(arms=parse_arms("ce,magnet"), seeds=(4,), epochs=3, lr=3e-3, patience=2)
    run_experiment(config, tmp_path / "real", progress=False, report=False)
    real = calls[:]
    calls.clear()
    estimate_time(config, epochs=2, progress=False)
    own = {"epochs", "patience", "checkpoint", "resume", "callbacks"}
    assert [{k: v for k, v in c.items() if k not in own} for c in calls] == [
        {k: v for k, v in c.items() if k not in own} for c in real
    ]
    assert [c["monitor"] for c in calls] == ["val_acc", "val_cluster_acc"]
    assert all(c["epochs"] == 2 and c["checkpoint"] is not None for c in calls)


def test_estimate_projects_the_comparison_from_measured_epochs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tiny_config(
        arms=parse_arms("ce,magnet,latentboost"), seeds=(4, 5, 6), epochs=10, patience=3
    )
    estimate = estimate_time(config, epochs=4, progress=False)

    assert [r["arm"] for r in estimate["rows"]] == ["ce", "magnet", "latentboost"]
    assert estimate["n_train"] == 270  # 300 less the 10% validation share
    assert estimate["steps_per_epoch"] == math.ceil(270 / 64)
    for row in estimate["rows"]:
        times = row["epoch_times"]
        assert len(times) == 4 and row["first_epoch_seconds"] == times[0]
        # The first epoch carries the start-up costs: the later ones give the median.
        assert row["epoch_seconds"] == sorted(times[1:])[1]
        assert row["epoch_range"] == (min(times[1:]), max(times[1:]))
        assert 0 < row["train_seconds"] <= row["epoch_seconds"]
        assert row["run_seconds"] == pytest.approx(
            row["build_seconds"]
            + times[0]
            + 9 * row["epoch_seconds"]
            + row["end_seconds"]
            + row["test_seconds"]
        )
        assert row["seconds_per_1000_images"] == pytest.approx(1000 * row["epoch_seconds"] / 270)
        assert row["runs_left"] == 3
    assert estimate["total_seconds"] == pytest.approx(
        3 * estimate["data_seconds"] + 3 * sum(r["run_seconds"] for r in estimate["rows"])
    )
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a checkpoint
    text = format_estimate(estimate)
    assert "(3 arms x 3 seeds: 9 runs to go)" in text and "patience 3" in text
    assert "median (and range) of epochs 2-4" in text and "| magnet |" in text


def test_estimate_counts_only_the_runs_not_yet_done(tiny_results):
    results, config, out = tiny_results  # ce, magnet, latentboost(λ=0) with seeds 0 and 1
    more = dataclasses.replace(config, seeds=(0, 1, 3))
    estimate = estimate_time(more, epochs=1, out_dir=out, progress=False)
    assert estimate["runs_done"] == 6
    assert [r["runs_left"] for r in estimate["rows"]] == [1, 1, 1]
    assert estimate["total_seconds"] == pytest.approx(
        estimate["data_seconds"] + sum(r["run_seconds"] for r in estimate["rows"])
    )
    assert "3 runs to go, 6 already done" in format_estimate(estimate)
    with pytest.raises(ValueError, match="holds runs made with other settings"):
        estimate_time(dataclasses.replace(config, lr=0.5), epochs=1, out_dir=out)


def test_estimate_names_the_hardware_it_ran_on():
    row = dict(
        arm="ce",
        epoch_times=[2.0],
        epoch_range=(2.0, 2.0),
        first_epoch_seconds=2.0,
        epoch_seconds=2.0,
        train_seconds=1.5,
        overhead_seconds=0.1,
        build_seconds=0.1,
        end_seconds=0.0,
        test_seconds=1.0,
        run_seconds=21.1,
        seconds_per_1000_images=0.2,
        runs_left=3,
    )
    estimate = dict(
        dataset="cifar10",
        model="resnet18",
        device="cuda:0",
        budget_epochs=10,
        patience=None,
        seeds=3,
        measured_epochs=1,
        n_train=9000,
        batch_size=128,
        steps_per_epoch=71,
        data_seconds=1.0,
        rows=[row],
        runs_done=0,
        total_seconds=64.3,
        environment={"cuda": "NVIDIA H200", "processor": "x86_64", "torch_threads": 16},
    )
    assert "Measured on cuda:0 (NVIDIA H200)" in format_estimate(estimate)
    on_cpu = format_estimate({**estimate, "device": "cpu"})
    assert "Measured on cpu (x86_64, 16 torch threads)" in on_cpu and "H200" not in on_cpu
    assert "about 64.3 s" in on_cpu and "| 21.1 s |" in on_cpu
    assert "about 3.0 h" in format_estimate({**estimate, "total_seconds": 3 * 3600.0})


def test_estimate_rejects_bad_input_by_name():
    with pytest.raises(ValueError, match="epochs"):
        estimate_time(tiny_config(), epochs=0)
    with pytest.raises(ValueError, match="epochs: the estimate would train 3 epochs, more than"):
        estimate_time(tiny_config(epochs=2), epochs=3)
    with pytest.raises(TypeError, match="config must be an ExperimentConfig"):
        estimate_time({"dataset": "digits"})


# ----------------------------------------------------------------------------- command line


def test_cli_compare_writes_the_report_and_rewrites_it(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--n-train", "200", "--n-test", "100", "--epochs", "1", "--seeds", "2"]
    args += ["--arms", "ce,latentboost", "--lam", "0.25,0.75", "--out", str(out)]
    assert cli.main(args + ["--no-progress", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "latentboost(λ=0.25)" in printed and "Against `ce`" in printed
    assert (out / "lambda_sweep.png").stat().st_size > 0
    (out / "summary.md").unlink()
    assert cli.main(["compare", "--report-only", "--out", str(out)]) == 0
    assert "latentboost(λ=0.75)" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "0"], "argument --seeds: expected an integer >= 1"),
        (["--lam", "0.5,2"], "argument --lam: expected a number in [0, 1]"),
        (["--threads", "-1"], "argument --threads: expected an integer >= 1"),
        (["--val-size", "1"], "argument --val-size: expected a number in [0, 1)"),
        (["--estimate", "0"], "argument --estimate: expected an integer >= 1"),
    ],
)
def test_cli_compare_rejects_bad_options(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compare", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_compare_names_an_unknown_arm_in_one_line(tmp_path, capsys):
    assert cli.main(["compare", "--arms", "ce,foo", "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("latentboost-lab compare: error: arms must be one of")
    assert "\n" not in err
    assert not (tmp_path / "x").exists()


def test_cli_compare_estimate_prints_the_time_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    args = ["compare", "--n-train", "200", "--n-test", "100", "--epochs", "7", "--seeds", "2"]
    args += ["--arms", "ce,latentboost", "--out", str(out), "--estimate", "1"]
    assert cli.main(args + ["--no-progress", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "one run of 7 epochs |" in printed and "| latentboost |" in printed
    assert "(2 arms x 2 seeds: 4 runs to go), every run to its full budget: about" in printed
    assert "later epochs are taken to cost as much as the first" in printed
    assert not out.exists()


def test_cli_compare_estimate_and_report_only_exclude_each_other(tmp_path, capsys):
    assert cli.main(["compare", "--estimate", "--report-only", "--out", str(tmp_path)]) == 1
    assert "--report-only and --estimate exclude each other" in capsys.readouterr().err
