"""The front door (issue 19): what a newcomer reads (README.md, environment.yml, --help) matches
what a newcomer gets. Nothing here touches the network: every download is a stand-in for
torchvision's data set class, and the user cache is a temporary folder (conftest.py)."""

from __future__ import annotations

import inspect
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latentboost_lab import cli, tutorial
from latentboost_lab.data import DataNotFoundError, load_dataset, sources

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOWNLOADABLE = ("fashion_mnist", "cifar10", "cifar100")


@pytest.fixture
def nothing_on_disk(monkeypatch, tmp_path):
    """No copy anywhere: no $LATENTBOOST_DATA, no Debian package (the cache is conftest's)."""
    monkeypatch.delenv("LATENTBOOST_DATA", raising=False)
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-copy")


def offline(monkeypatch, name: str) -> list:
    """torchvision's class for ``name`` replaced by one that behaves as torchvision does offline:
    it creates its folders and a partial file in ``root``, then fails. Returns its calls."""
    import torchvision.datasets as tvd

    calls = []

    class Offline:
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            raw = Path(root) / "FashionMNIST" / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b partial")
            raise RuntimeError(
                "Error downloading train-images-idx3-ubyte.gz:\nTried http://example.invalid/, "
                "got:\n<urlopen error [Errno -2] Name or service not known>"
            )

    cls = {"fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}[name]
    monkeypatch.setattr(tvd, cls, Offline)
    return calls


def online_cifar10(monkeypatch) -> list:
    """torchvision's CIFAR10 replaced by one that 'downloads' what torchvision leaves on disk
    (the archive and cifar-10-batches-py/ with its pickles) and reads it back."""
    import torchvision.datasets as tvd

    calls = []
    names = [f"class{i}" for i in range(10)]

    class Online:
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            folder = Path(root) / "cifar-10-batches-py"
            if not folder.is_dir():
                folder.mkdir(parents=True)
                (Path(root) / "cifar-10-python.tar.gz").write_bytes(b"archive")
                rng = np.random.default_rng(0)
                for file in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
                    content = {
                        "data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                        "labels": list(np.arange(20) % 10),
                    }
                    (folder / file).write_bytes(pickle.dumps(content))
                (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
            files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
            parts = [pickle.loads((folder / f).read_bytes()) for f in files]
            self.data = np.concatenate([p["data"] for p in parts]).reshape(-1, 3, 32, 32)
            self.data = self.data.transpose(0, 2, 3, 1)
            self.targets = [t for p in parts for t in p["labels"]]
            self.classes = names

    monkeypatch.setattr(tvd, "CIFAR10", Online)
    return calls


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# -- 1. Downloads: the README's data table, the loader and the command line agree -----------


def readme_data_table() -> dict[str, str]:
    """The README's data table: name -> its "how to get it" cell."""
    section = README.split("## The data sets", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[2]
    return rows


def test_readme_data_table_says_what_the_loader_does():
    table = readme_data_table()
    assert set(DOWNLOADABLE) <= set(table), table.keys()
    default = inspect.signature(load_dataset).parameters["download"].default
    assert default is True  # the table's promise: downloaded on first use
    for name in DOWNLOADABLE:
        cell = table[name]
        assert "downloaded by torchvision on first use" in cell, (name, cell)
        assert f"about {sources.DOWNLOAD_SIZES[name]}" in cell, (name, cell)
    assert "download" not in table["digits"]


@pytest.mark.parametrize("command", ["demo", "train", "compare"])
def test_the_commands_download_like_the_loader(command):
    parser = cli.build_parser()
    assert parser.parse_args([command]).download is True
    assert parser.parse_args([command, "--download"]).download is True  # old commands work
    assert parser.parse_args([command, "--no-download"]).download is False


def test_the_runner_downloads_like_the_loader():
    from latentboost_lab.experiments import ExperimentConfig

    assert ExperimentConfig().download is True
    assert "download" not in ExperimentConfig().fixed()  # where the data came from is no setting


def test_first_use_downloads_into_the_cache_with_one_line_saying_so(
    nothing_on_disk, monkeypatch, capsys
):
    calls = online_cifar10(monkeypatch)
    data = load_dataset("cifar10", val_size=0, device="cpu")  # no download= given
    assert [download for _, _, download in calls] == [True, True]
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1, notice
    assert notice[0].startswith("latentboost_lab: no copy of cifar10 here; downloading it")
    assert str(sources.cache_dir()) in notice[0] and "about 163 MB" in notice[0]
    assert "--no-download" in notice[0] and "download=False" in notice[0]
    assert len(data.y_train) == 100 and data.source.startswith("downloaded to")
    # The files are in the cache, with no temporary folder left, and are found from now on.
    files = listing(sources.cache_dir())
    assert {"cifar-10-batches-py/test_batch", "cifar-10-python.tar.gz"} <= set(files), files
    assert not [p for p in files if ".download-" in p]
    calls.clear()
    again = load_dataset("cifar10", val_size=0, device="cpu")
    assert calls == [] and again.source == str(sources.cache_dir() / "cifar-10-batches-py")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name", DOWNLOADABLE)
def test_a_failed_download_leaves_nothing_behind(name, nothing_on_disk, monkeypatch):
    cache = sources.cache_dir()
    assert not cache.exists()  # conftest: an empty XDG_CACHE_HOME
    calls = offline(monkeypatch, name)
    with pytest.raises(DataNotFoundError, match="(?s)download failed.*Name or service not known"):
        load_dataset(name, device="cpu")
    assert calls and str(cache) in calls[0][0]
    assert not cache.exists(), listing(cache)


def test_a_failed_download_keeps_what_the_cache_held(nothing_on_disk, monkeypatch):
    cache = sources.cache_dir()
    (cache / "FashionMNIST" / "raw").mkdir(parents=True)
    (cache / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"kept")
    (cache / "notes.txt").write_text("mine")
    before = listing(cache)
    offline(monkeypatch, "fashion_mnist")
    with pytest.raises(DataNotFoundError):
        load_dataset("fashion_mnist", device="cpu")
    assert listing(cache) == before
    assert (cache / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").read_bytes() == b"kept"


def test_data_download_offline_leaves_nothing(nothing_on_disk, monkeypatch, capsys):
    """The issue's case: `latentboost-lab data --download fashion_mnist` offline."""
    offline(monkeypatch, "fashion_mnist")
    assert cli.main(["data", "--download", "fashion_mnist"]) == 1
    err = capsys.readouterr().err
    assert "download failed" in err and "Name or service not known" in err
    assert not sources.cache_dir().exists()


def test_no_download_never_calls_torchvision(nothing_on_disk, monkeypatch, tmp_path, capsys):
    calls = offline(monkeypatch, "fashion_mnist")
    code = cli.main(["train", "--dataset", "fashion_mnist", "--no-download", "--no-progress",
                     "--out", str(tmp_path / "runs" / "run")])  # fmt: skip
    assert code == 1 and calls == []
    assert "not attempted (download=False, or --no-download" in capsys.readouterr().err


def test_quick_notebooks_never_download(nothing_on_disk, monkeypatch, capsys):
    """The notebooks' QUICK setting (what the tests run) falls back to digits, offline."""

    def no_network(name):
        raise AssertionError(f"QUICK mode tried to download {name}")

    monkeypatch.setattr(sources, "_download", no_network)
    monkeypatch.delenv("LATENTBOOST_TUTORIAL_DATA", raising=False)
    data = tutorial.load_tutorial_data(quick=True, device="cpu")
    assert data.info.name == "digits" and "FALLING BACK" in capsys.readouterr().out


# -- 2 and 3. Installing: the README says what it costs and which Pythons -------------------


def pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli", reason="Python 3.10 reads TOML with tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_readme_python_versions_match_pyproject():
    project = pyproject()["project"]
    floor = re.fullmatch(r">=3\.(\d+)", project["requires-python"])
    assert floor, project["requires-python"]
    classified = sorted(
        int(c.rsplit(".", 1)[1])
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    assert classified and classified[0] == int(floor.group(1))
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    versions = ", ".join(f"3.{v}" for v in classified)
    assert f"Python {versions}" in quick_start, versions
    assert "python -m venv" in quick_start  # a virtual environment first
    assert "--index-url https://download.pytorch.org/whl/cpu" in quick_start


# -- 4. Small truths -------------------------------------------------------------------------


def every_help_text() -> dict[str, str]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {"": parser.format_help()} | {n: p.format_help() for n, p in sub.choices.items()}


def test_help_is_plain_text_without_rest_markup():
    for command, text in every_help_text().items():
        assert "``" not in text, (command, text)
        assert not re.search(r":(func|class|mod|meth|attr|data|ref):`", text), command
    assert "The latentboost-lab command (also python -m latentboost_lab)." in every_help_text()[""]


@pytest.mark.parametrize("name", DOWNLOADABLE)
def test_the_long_errors_are_the_ones_the_readme_names(name, nothing_on_disk, tmp_path, capsys):
    """The README: other errors are one line; data not found is 10 to 30, on purpose."""
    assert "data set that is not found" in README and "10 to 30 lines" in README
    root = tmp_path / "empty"
    root.mkdir()
    code = cli.main(["train", "--dataset", name, "--no-download", "--root", str(root),
                     "--no-progress", "--out", str(tmp_path / "runs" / "run")])  # fmt: skip
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and 10 <= len(lines) <= 30, lines
    assert lines[0] == f"latentboost-lab train: error: data set {name!r} was not found. " \
        "Places looked at, in order:"  # fmt: skip
    assert str(root) in lines[1] and "How to get it:" in lines


def test_train_writes_runs_run_json_by_default_as_the_readme_says():
    assert cli.build_parser().parse_args(["train"]).out == "runs/run"
    assert "`runs/run.json`" in README
    assert "runs/run.json" in every_help_text()["train"].replace("\n", " ").replace("  ", " ")


_DEMO_PROBE = r"""
import json, sys
from latentboost_lab import cli
state = {"dynamo_before": "torch._dynamo" in sys.modules, "dynamo_at_arms": []}
train_arm = cli._train_arm

def spy(*args, **kwargs):  # the one-off import is done before an arm's clock starts, or not
    state["dynamo_at_arms"].append("torch._dynamo" in sys.modules)
    return train_arm(*args, **kwargs)

cli._train_arm = spy
state["code"] = cli.main(["demo", "--epochs", "1", "--n-train", "120", "--n-test", "60",
                          "--no-progress", "--device", "cpu", "--out", sys.argv[1]])
print(json.dumps(state))
"""


def test_demo_times_both_arms_alike(tmp_path):
    """In a fresh process (where the one-off costs are real): the first optimizer's import of
    torch._dynamo happens in the warm-up, before either arm is timed, and the output says what
    the seconds column includes."""
    result = subprocess.run(
        [sys.executable, "-c", _DEMO_PROBE, str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state["code"] == 0
    if state["dynamo_before"]:
        pytest.skip("torch imports torch._dynamo at start-up here: no one-off import to move")
    assert state["dynamo_at_arms"] == [True, True]
    assert "seconds: each arm's training (fit, with its per-epoch evaluation), timed alike" in (
        result.stdout
    )
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert results["warm_up_seconds"] > 0 and len(results["rows"]) == 2


# -- 5. environment.yml is the dev extra ----------------------------------------------------

CONDA_TO_PYPI = {"pytorch": "torch", "pytorch-cpu": "torch"}


def normalise(requirement: str) -> tuple[str, str]:
    """'jupyterlab_widgets>=1.1.8' -> ('jupyterlab-widgets', '>=1.1.8'); conda names to PyPI's."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", requirement)
    assert match, requirement
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return CONDA_TO_PYPI.get(name, name), match.group(2).replace(" ", "")


def environment_yml() -> tuple[list[str], list[str]]:
    """environment.yml's conda dependencies and its pip list (a plain reader: no PyYAML)."""
    conda, pip, section = [], [], None
    for line in (ROOT / "environment.yml").read_text(encoding="utf-8").splitlines():
        text = line.split(" #", 1)[0].rstrip()
        if text and not text.startswith((" ", "#")):
            section = text.rstrip(":")  # name, channels, dependencies
        elif not section or not section.startswith("dependencies"):
            continue
        elif text.startswith("  - pip:"):
            section = "dependencies/pip"
        elif text.startswith("  - "):
            section = "dependencies"
            conda.append(text[4:].strip())
        elif section == "dependencies/pip" and text.startswith("      - "):
            pip.append(text[8:].strip())
    return conda, pip


def dev_requirements() -> dict[str, str]:
    project = pyproject()["project"]
    extras = project["optional-dependencies"]

    def expand(extra: str) -> list[str]:
        out = []
        for requirement in extras[extra]:
            own = re.fullmatch(r"latentboost-lab\[(.+)\]", requirement)
            out += [r for e in own.group(1).split(",") for r in expand(e)] if own else [requirement]
        return out

    return dict(normalise(r) for r in [*project["dependencies"], *expand("dev")])


def test_environment_yml_installs_the_dev_extra():
    conda, pip = environment_yml()
    assert "-e .[dev]" in pip  # the package itself, editable, with the dev extra
    listed = [normalise(r) for r in conda + [p for p in pip if not p.startswith("-e ")]]
    names = [name for name, _ in listed]
    assert len(names) == len(set(names)), "listed twice"
    listed = dict(listed)
    python = listed.pop("python")
    listed.pop("pip")
    assert python == pyproject()["project"]["requires-python"]  # the same floor
    assert listed == dev_requirements()


def test_environment_yml_reader_sees_the_pins_the_issue_named():
    conda, pip = environment_yml()
    assert "jupyterlab_widgets>=1.1.8" in conda and "playwright>=1.27" in pip
    try:  # where PyYAML is installed (JupyterLab brings it), it reads the same lists
        import yaml
    except ImportError:
        return
    document = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert document["dependencies"] == [*conda, {"pip": pip}]
