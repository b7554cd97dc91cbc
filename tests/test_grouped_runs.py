"""Super-class tasks in the runner, the report and the commands (issue 18): ``group=`` reaches
the data and is recorded; the K > 1 arms (one cluster per sub-class, or K chosen by the
silhouette rule); the hidden sub-class measures of every run and their table; the result
folders committed before the option stay readable and their reports unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sklearn.metrics import normalized_mutual_info_score

from latentboost_lab import cli
from latentboost_lab.data import load_dataset
from latentboost_lab.experiments import (
    CLUSTER_ARMS,
    ExperimentConfig,
    Results,
    parse_arms,
    run_experiment,
)
from latentboost_lab.recipes import make_loss
from latentboost_lab.report import SUBCLASS_METRICS, markdown, summarise

pytestmark = pytest.mark.usefixtures("one_thread")

RESULTS = sorted(Path(__file__).resolve().parents[1].glob("results/*/runs.json"))
ISSUE_ARMS = ["latentboost-k_sub", "latentboost-k_auto", "magnet-k_sub"]


def grouped_config(**overrides) -> ExperimentConfig:
    settings = dict(
        dataset="digits",
        group="digits_parity",
        arms=parse_arms("ce,latentboost", clusters=ISSUE_ARMS),
        seeds=(0, 1),
        epochs=2,
        n_train=300,
        n_test=150,
        batch_size=64,
        device="cpu",
    )
    settings.update(overrides)
    return ExperimentConfig(**settings)


# ------------------------------------------------------------------------ arms and settings


def test_cluster_arms_are_named_as_the_issue_names_them():
    arms = parse_arms("ce", lams=[0.5], clusters=["latentboost-k_auto", "magnet-k_sub"])
    assert [(a.name, a.loss, a.lam, dict(a.options)) for a in arms[1:]] == [
        ("latentboost-k_auto", "latentboost", 0.5, {"num_clusters": "auto"}),
        ("magnet-k_sub", "magnet", None, {"num_clusters": "sub"}),
    ]
    assert arms[2].classifier == "clusters"  # Magnet classifies by its clusters, K or not
    with pytest.raises(ValueError, match="clusters"):
        parse_arms("ce", clusters=["latentboost-k_3"])
    with pytest.raises(ValueError, match="must not repeat"):
        parse_arms("ce", clusters=["magnet-k_sub", "magnet-k_sub"])
    assert set(CLUSTER_ARMS) >= set(ISSUE_ARMS)


def test_group_is_a_setting_only_when_given():
    """runs.json written before the option had no "group": a config without one still
    matches them; with one it is a setting like the others."""
    assert "group" not in grouped_config(group=None, arms=parse_arms("ce")).fixed()
    assert grouped_config().fixed()["group"] == "digits_parity"
    own = grouped_config(
        group={"low": ["0", "1", "2", "3", "4"], "high": ("5", "6", "7", "8", "9")}
    )
    assert own.fixed()["group"] == {
        "low": ["0", "1", "2", "3", "4"],
        "high": ["5", "6", "7", "8", "9"],
    }
    json.dumps(own.to_dict())  # runs.json keeps it


def test_bad_groups_and_k_sub_without_a_group_are_refused_before_training():
    with pytest.raises(ValueError, match="groups the classes of fashion_mnist, not of digits"):
        grouped_config(group="fmnist_super")
    with pytest.raises(ValueError, match="group must be one of"):
        grouped_config(group="parity")
    with pytest.raises(ValueError, match=r"\['latentboost-k_sub', 'magnet-k_sub'\].*need a super"):
        grouped_config(group=None)
    grouped_config(group=None, arms=parse_arms("ce", clusters=["latentboost-k_auto"]))  # fine


def test_make_loss_counts_the_sub_classes_and_sets_up_the_choice():
    data = load_dataset("digits", group="digits_parity", n_train=100, n_test=50, device="cpu")
    k_sub = make_loss("latentboost", data=data, num_clusters="sub")
    assert k_sub.index.k_per_class(2) == [5, 5]
    assert make_loss("magnet", data=data, num_clusters="sub").index.num_clusters == (5, 5)
    auto = make_loss("latentboost", data=data, num_clusters="auto")
    assert auto.index.num_clusters == 1 and auto.index.select_k_epoch == 1
    assert auto.index.select_k is not None
    plain = load_dataset("digits", n_train=100, n_test=50, device="cpu")
    with pytest.raises(ValueError, match="needs a super-class task.*group="):
        make_loss("latentboost", data=plain, num_clusters="sub")
    with pytest.raises(ValueError, match="applies to latentboost and magnet, not ce"):
        make_loss("ce", data=data, num_clusters="sub")
    with pytest.raises(ValueError, match="num_clusters"):
        make_loss("latentboost", data=data, num_clusters="many")


# ------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def grouped_runs(tmp_path_factory):
    """The issue's five arms on digits_parity, two seeds, two epochs (so that the silhouette
    rule chooses, at the refresh of epoch 1), tiny."""
    out = tmp_path_factory.mktemp("grouped")
    return run_experiment(grouped_config(), out, progress=False), out


def test_every_run_records_its_clusters_and_the_hidden_sub_classes(grouped_runs):
    results, _ = grouped_runs
    assert results.config["fixed"]["group"] == "digits_parity"
    expected_k = {"ce": [1, 1], "latentboost": [1, 1], "latentboost-k_sub": [5, 5]}
    expected_k["magnet-k_sub"] = [5, 5]
    for seed in (0, 1):
        data = load_dataset("digits", group="digits_parity", n_train=300, n_test=150,
                            seed=seed, device="cpu")  # fmt: skip
        y, sub = data.split("test")[1].numpy(), data.sub_labels("test").numpy()
        for arm in ["ce", "latentboost", *ISSUE_ARMS]:
            run = results.runs[f"{arm}/seed{seed}"]
            config = run["history"]["config"]
            assert config["group"] == "digits_parity" and config["num_classes"] == 2
            measures = run["subclass"]
            assert set(measures) == set(SUBCLASS_METRICS)
            ks = run["k_per_class"]
            if arm in expected_k:
                assert ks == expected_k[arm]
            assert measures["total_clusters"] == sum(ks)
            for key in ("subclass_nmi", "subclass_ari", "subclass_nmi_k_sub"):
                assert -1.0 <= measures[key] <= 1.0
            assert 0.0 <= measures["subclass_knn_accuracy"] <= 1.0
            if ks == [1, 1]:
                # one cluster per super-class: nothing inside them, and over all test images
                # the clusters are the super-classes themselves (an oracle from the labels)
                assert measures["subclass_nmi"] == measures["subclass_ari"] == 0.0
                assert measures["subclass_nmi_all"] == pytest.approx(
                    normalized_mutual_info_score(sub, y), abs=1e-12
                )
            if ks == [5, 5]:  # the arm's own K is the sub-class count: the same clustering
                assert measures["subclass_nmi_k_sub"] == measures["subclass_nmi"]
            assert measures["silhouette_super"] == pytest.approx(
                run["test"]["silhouette"], abs=1e-6
            )
        chosen = results.runs[f"latentboost-k_auto/seed{seed}"]
        selection = chosen["history"]["config"]["k_selection"]
        assert selection["epoch"] == 1  # after one epoch of training
        assert [c["k"] for c in selection["classes"]] == chosen["k_per_class"]
        for c in selection["classes"]:
            assert c["rule"] == "silhouette" and set(c["scores"]) == {str(k) for k in range(2, 9)}
            best = max(c["scores"], key=c["scores"].get)
            assert c["k"] == (int(best) if c["scores"][best] >= 0.25 else 1)


def test_the_report_tables_the_sub_class_measures_against_ce(grouped_runs):
    results, out = grouped_runs
    summary = summarise(results)
    assert summary["group"] == "digits_parity"
    table = summary["subclass"]
    assert list(table) == ["ce", "latentboost", *ISSUE_ARMS]
    assert table["latentboost-k_sub"]["k_per_class"] == {"5, 5": 2}
    for arm in ["latentboost", *ISSUE_ARMS]:
        test = table[arm]["vs_reference"]["subclass_knn_accuracy"]
        mine = [results.runs[f"{arm}/seed{s}"]["subclass"]["subclass_knn_accuracy"] for s in (0, 1)]
        ref = [results.runs[f"ce/seed{s}"]["subclass"]["subclass_knn_accuracy"] for s in (0, 1)]
        assert test["n"] == 2 and test["verdict"] == "inconclusive (n < 3)"
        assert test["mean_diff"] == pytest.approx((mine[0] - ref[0] + mine[1] - ref[1]) / 2)
    text = (out / "summary.md").read_text()
    assert text.startswith("# digits, super-classes digits_parity: ce, latentboost,")
    assert "## Hidden sub-classes" in text and "| magnet-k_sub | 2 | 5, 5 (2) |" in text
    assert "Against `ce` (paired over seeds; 95% interval; two-sided p; verdict):" in text
    assert markdown(results) == text


def test_a_grouped_folder_refuses_runs_of_another_task(grouped_runs):
    _, out = grouped_runs
    with pytest.raises(ValueError, match="group: 'digits_parity' there, None now"):
        run_experiment(grouped_config(group=None, arms=parse_arms("ce")), out, progress=False)


# --------------------------------------------------------- result folders from before issue 18


@pytest.mark.parametrize("runs_json", RESULTS, ids=[p.parent.name for p in RESULTS])
def test_committed_reports_are_rewritten_unchanged(runs_json, tmp_path):
    """Every committed folder loads, and its report (summary.md, summary.json) comes out byte
    for byte as committed (the figures too: checked by hand with cmp on copies)."""
    copy = tmp_path / "runs.json"
    copy.write_bytes(runs_json.read_bytes())
    results = Results.load(copy)
    summary = summarise(results)
    assert markdown(results, summary=summary) == (runs_json.parent / "summary.md").read_text()
    written = json.dumps(summary, indent=1, default=float)
    assert written == (runs_json.parent / "summary.json").read_text()


# ---------------------------------------------------------------------------- the commands


def test_cli_group_options_are_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["compare", "--group", "parity"])
    assert info.value.code == 2 and "argument --group: expected one of" in capsys.readouterr().err
    code = cli.main(["compare", "--group", "fmnist_super", "--out", str(tmp_path / "x"),
                     "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "groups the classes of fashion_mnist, not of digits" in err
    code = cli.main(["compare", "--arms", "ce", "--clusters", "magnet-k_sub", "--out",
                     str(tmp_path / "y"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and "need a super-class task" in err and "--group" in err


def test_cli_data_shows_a_grouping(capsys):
    assert cli.main(["data", "--group", "digits_parity"]) == 0
    out = capsys.readouterr().out
    assert "0 even = 0, 2, 4, 6, 8: " in out and "1 odd = 1, 3, 5, 7, 9: " in out
    assert "--group digits_parity" in out


def test_train_and_ood_reload_a_grouped_checkpoint(tmp_path, capsys):
    prefix = tmp_path / "parity"
    train = ["train", "--group", "digits_parity", "--loss", "latentboost", "--epochs", "1",
             "--n-train", "200", "--n-test", "100", "--device", "cpu", "--no-progress",
             "--checkpoint", "--out", str(prefix)]  # fmt: skip
    assert cli.main(train) == 0
    history = json.loads(prefix.with_suffix(".json").read_text())
    assert history["config"]["group"] == "digits_parity" and history["config"]["num_classes"] == 2
    ood = ["ood", str(prefix.with_suffix(".pt")), "--sets", "gaussian", "--scores", "msp",
           "--n-ood", "50", "--n-test", "100", "--device", "cpu"]  # fmt: skip
    capsys.readouterr()
    # told the task, it reloads the 2-class model
    assert cli.main([*ood, "--group", "digits_parity"]) == 0
    assert "trained on digits (super-classes digits_parity)" in capsys.readouterr().out
    # not told, and the checkpoint does not name it: the error says what to give
    state = torch.load(prefix.with_suffix(".pt"), weights_only=True)
    if "group" not in state["config"]:
        assert cli.main(ood) == 1
        err = capsys.readouterr().err
        assert "the checkpoint's model has 2 classes" in err and "--group NAME" in err
    # a checkpoint that names its task is reloaded with it
    state["config"]["group"] = "digits_parity"
    named = tmp_path / "named.pt"
    torch.save(state, named)
    assert cli.main(["ood", str(named), *ood[2:]]) == 0
    assert "(super-classes digits_parity)" in capsys.readouterr().out
    assert cli.main(["ood", str(named), *ood[2:], "--group", "digits_parity"]) == 0


def test_the_readmes_super_class_commands_parse_and_name_real_arms():
    """README.md's "Super-class tasks" commands: valid options, arms that exist, a grouping
    made for the data set named (checked as the runner checks it, without training)."""
    import shlex

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Super-class tasks", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    commands = [line.split("#")[0] for line in block.splitlines() if line.startswith("latent")]
    assert len(commands) == 2
    parser = cli.build_parser()
    for command in commands:
        args = parser.parse_args(shlex.split(command)[1:])
        if args.command == "compare":
            arms = parse_arms(args.arms, args.lam, args.ablations, args.readings, args.clusters)
            config = ExperimentConfig(dataset=args.dataset, group=args.group, arms=arms)
            assert [a.name for a in config.arms] == ["ce", "latentboost", *ISSUE_ARMS]
