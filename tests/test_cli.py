"""The command line: --help everywhere, the demo end to end, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from latentboost_lab.cli import build_parser, main


@pytest.mark.parametrize("command", [[], ["demo"], ["data"], ["train"]])
def test_help_on_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: latentboost-lab" in out
    if command:
        assert "--dataset" in out or "--root" in out


def test_every_subcommand_has_help_text():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, action in sub.choices.items():
        assert action.description, name
        for option in action._actions:
            assert option.help, f"{name} {option.option_strings}"


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "latentboost_lab", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "latentboost-lab" in result.stdout


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--epochs",
            "2",
            "--n-train",
            "400",
            "--no-progress",
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| cross-entropy |" in printed and "| Latent Boost (λ=0.75) |" in printed
    results = json.loads((out / "results.json").read_text())
    assert [row["epochs"] for row in results["rows"]] == [2, 2]
    for row in results["rows"]:
        assert 0.0 <= row["test_acc"] <= 1.0 and -1.0 <= row["silhouette"] <= 1.0
    assert (out / "latent_spaces.png").stat().st_size > 10_000


def test_train_writes_history_and_resumes(tmp_path, capsys):
    prefix = tmp_path / "runs" / "ce"
    args = [
        "train",
        "--loss",
        "ce",
        "--epochs",
        "1",
        "--n-train",
        "300",
        "--no-progress",
        "--out",
        str(prefix),
        "--checkpoint",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    assert len(json.loads(prefix.with_suffix(".json").read_text())["epochs"]) == 1
    assert prefix.with_suffix(".pt").is_file()
    assert main([*args[:4], "2", *args[5:], "--resume"]) == 0
    assert len(json.loads(prefix.with_suffix(".json").read_text())["epochs"]) == 2


def test_data_lists_what_was_found(capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "scikit-learn (embedded)" in out and "fashion_mnist" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--dataset", "imagenet"], "must be one of ['cifar10'"),
        (["train", "--loss", "hinge", "--epochs", "1"], "loss must be one of"),
        (["demo", "--dataset", "digits", "--epochs", "-2"], "epochs"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(args, message, capsys, tmp_path):
    code = main([*args, "--no-progress", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="imagenet"):
        main(["--debug", "demo", "--dataset", "imagenet", "--out", str(tmp_path)])
