"""The command line: --help everywhere, the demo end to end, one-line errors."""

from __future__ import annotations

import json
import os
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


def test_runtime_errors_are_one_line_and_exit_1(capsys):
    code = main(["demo", "--n-train", "100000", "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert "n_train must be <=" in err and "Traceback" not in err and len(err.splitlines()) == 1


CUDA = pytest.importorskip("torch").cuda.is_available()


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["demo", "--epochs", "0"], "--epochs"),
        (["demo", "--epochs", "-2"], "--epochs"),
        (["train", "--epochs", "1.5"], "--epochs"),
        (["demo", "--batch-size", "0"], "--batch-size"),
        (["demo", "--lr", "0"], "--lr"),
        (["demo", "--lr", "nan"], "--lr"),
        (["train", "--lr", "fast"], "--lr"),
        (["demo", "--patience", "0"], "--patience"),
        (["demo", "--n-train", "0"], "--n-train"),
        (["demo", "--n-test", "-5"], "--n-test"),
        (["demo", "--seed", "-1"], "--seed"),
        (["demo", "--latent-dim", "0"], "--latent-dim"),
        (["demo", "--lam", "1.5"], "--lam"),
        (["train", "--lam", "-0.1"], "--lam"),
        (["demo", "--dataset", "imagenet"], "--dataset"),
        (["train", "--dataset", "missing.npz"], "--dataset"),
        (["demo", "--root", "/no/such/folder"], "--root"),
        (["data", "--root", "/no/such/folder"], "--root"),
        (["demo", "--device", "tpu"], "--device"),
        (["demo", "--model", "alexnet"], "--model"),
        (["train", "--loss", "hinge"], "--loss"),
        (["data", "--download", "imagenet"], "--download"),
        pytest.param(
            ["train", "--device", "cuda"],
            "CUDA is not available",
            marks=pytest.mark.skipif(CUDA, reason="CUDA is available here"),
        ),
    ],
)
def test_bad_option_values_exit_2_with_one_line_naming_the_option(args, option, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2
    assert option in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"latentboost-lab {args[0]}: error: argument")


def test_every_option_that_takes_a_value_is_checked():
    """Each option with a value has a type= or choices= that rejects bad values at parse time;
    --out is checked when the command starts (it is created then)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, action in sub.choices.items():
        for option in action._actions:
            takes_value = option.nargs != 0 and option.option_strings
            if takes_value and option.dest != "out" and option.dest != "help":
                assert option.type is not None or option.choices is not None, (name, option)


@pytest.mark.parametrize("command", ["demo", "train"])
def test_unwritable_out_is_reported_before_training(command, tmp_path, capsys, monkeypatch):
    import latentboost_lab.cli as cli

    def no_training(args):
        raise AssertionError("the data was loaded: the --out check came too late")

    monkeypatch.setattr(cli, "_load", no_training)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    # Under a regular file nothing can be created, even as root (chmod does not stop root).
    code = main([command, "--out", str(blocker / "sub" / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "--out" in err and "a_file" in err and len(err.splitlines()) == 1


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_out_folder_is_reported(tmp_path, capsys):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code = main(["demo", "--out", str(folder), "--no-progress"])
    finally:
        folder.chmod(0o755)
    assert code == 1 and "--out: cannot write in the folder" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="n_train"):
        main(["--debug", "demo", "--n-train", "100000", "--out", str(tmp_path)])


def test_site_subcommand_builds_the_site_with_build_site(tmp_path, capsys, monkeypatch):
    """`latentboost-lab site` is listed by --help and hands --out to site.build_site (the real
    build is tests/test_site.py's: here build_site is replaced)."""
    import latentboost_lab.site as site

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "site" in capsys.readouterr().out
    calls = []

    def fake_build_site(out=None, *, root=None, quiet=True):
        calls.append((out, quiet))
        return tmp_path / "index.html"

    monkeypatch.setattr(site, "build_site", fake_build_site)
    assert main(["site", "--out", str(tmp_path)]) == 0
    assert calls == [(str(tmp_path), False)]
    assert f"built: {tmp_path / 'index.html'}" in capsys.readouterr().out
    assert main(["site"]) == 0 and calls[-1] == (None, False)  # default: build/site


def test_site_subcommand_errors_are_one_line(capsys, monkeypatch):
    import latentboost_lab.site as site

    def failing(out=None, *, root=None, quiet=True):
        raise ImportError("building the site needs sphinx: pip install -e '.[site]'")

    monkeypatch.setattr(site, "build_site", failing)
    assert main(["site"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("latentboost-lab site: error: building the site needs sphinx")
    assert len(err.splitlines()) == 1
