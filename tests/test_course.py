"""The course tools: the notebooks' settings (QUICK, MEDIUM, FULL), the repository URL written
from one place, and the instructor pack (nbgrader).

The instructor pack's test builds the nbgrader course folder, generates every student version
with nbgrader, runs a student version up to its first exercise, and runs every instructor
version (each notebook with its solutions and autograded test cells) on the digits fallback:
that is also the check that every notebook's own asserts hold on digits (issue 15, §3).
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from latentboost_lab import course, tutorial

ROOT = Path(__file__).resolve().parent.parent


# -- the settings ------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("LATENTBOOST_MODE", "LATENTBOOST_QUICK", "LATENTBOOST_TUTORIAL_DATA"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("mode_var", "quick_var", "expected"),
    [
        (None, None, "full"),
        (None, "1", "quick"),
        (None, "yes", "quick"),
        (None, "0", "full"),
        ("medium", None, "medium"),
        ("MEDIUM", "1", "medium"),  # LATENTBOOST_MODE decides when both are set
        (" quick ", None, "quick"),
        ("full", "1", "full"),
    ],
)
def test_mode_reads_the_environment(clean_env, mode_var, quick_var, expected):
    if mode_var is not None:
        clean_env.setenv("LATENTBOOST_MODE", mode_var)
    if quick_var is not None:
        clean_env.setenv("LATENTBOOST_QUICK", quick_var)
    assert tutorial.mode() == expected
    assert tutorial.quick_mode() == (expected == "quick")
    assert f"setting {expected.upper()}" in tutorial.environment_line("cpu")


def test_an_unknown_mode_is_an_error_naming_the_variable(clean_env):
    clean_env.setenv("LATENTBOOST_MODE", "fast")
    with pytest.raises(
        ValueError, match="LATENTBOOST_MODE must be one of quick, medium, full; got 'fast'"
    ):
        tutorial.mode()
    with pytest.raises(ValueError, match="mode must be one of"):
        tutorial.pick(1, 2, mode="slow")


def test_pick_per_setting(clean_env):
    for setting, expected in (("quick", 1), ("medium", 3), ("full", 2)):
        clean_env.setenv("LATENTBOOST_MODE", setting)
        assert tutorial.pick(1, 2, medium=3) == expected
    # without a MEDIUM value, MEDIUM runs the QUICK one (never FULL by surprise)
    clean_env.setenv("LATENTBOOST_MODE", "medium")
    assert tutorial.pick(1, 2) == 1
    assert tutorial.pick(1, 2, medium=None) is None  # None is a value (e.g. "all images")
    # the older keyword and an explicit mode override the environment
    assert tutorial.pick(1, 2, quick=False) == 2 and tutorial.pick(1, 2, True) == 1
    assert tutorial.pick(1, 2, medium=3, mode="full") == 2


def test_tutorial_dataset(clean_env):
    clean_env.setattr(tutorial, "available_datasets", lambda: {"fashion_mnist": None})
    assert tutorial.tutorial_dataset(mode="quick") == "digits"  # QUICK never downloads
    assert tutorial.tutorial_dataset(mode="medium") == "fashion_mnist"  # MEDIUM may
    clean_env.setattr(tutorial, "available_datasets", lambda: {"fashion_mnist": "/somewhere"})
    assert tutorial.tutorial_dataset(mode="quick") == "fashion_mnist"
    clean_env.setenv("LATENTBOOST_TUTORIAL_DATA", "digits")
    assert tutorial.tutorial_dataset(mode="full") == "digits"


def test_load_tutorial_data_sizes_per_setting(clean_env):
    calls = []

    def fake_load(name, n_train=None, n_test=None, download=False, **kwargs):
        calls.append((name, n_train, n_test, download))
        raise tutorial.DataNotFoundError("not here")

    clean_env.setattr(tutorial, "load_dataset", fake_load)
    for kwargs in ({"mode": "medium"}, {"mode": "full"}, {"quick": True}):
        with pytest.raises(tutorial.DataNotFoundError):  # the digits fallback calls it too
            tutorial.load_tutorial_data(100, 900, quick_n_test=10, full_n_test=90, verbose=False,
                                        **kwargs)  # fmt: skip
    with pytest.raises(tutorial.DataNotFoundError):  # sizes picked by the notebook win
        tutorial.load_tutorial_data(n_train=5000, n_test=None, mode="quick", verbose=False)
    wanted = [c for c in calls if c[0] == "fashion_mnist"]
    assert wanted == [
        ("fashion_mnist", 100, 10, True),  # MEDIUM: the QUICK sizes unless given; may download
        ("fashion_mnist", 900, 90, True),
        ("fashion_mnist", 100, 10, False),  # QUICK never downloads
        ("fashion_mnist", 5000, None, False),
    ]
    assert all(c == ("digits", None, None, False) for c in calls if c[0] != "fashion_mnist")


def test_the_notebooks_have_a_medium_setting_and_store_medium_outputs():
    """The notebooks whose configuration this task owns pick a MEDIUM value and were executed
    in MEDIUM (the environment line stored in their outputs says so)."""
    nbformat = pytest.importorskip("nbformat")
    for stem in ("01", "02", "03", "04", "05", "07", "08", "09"):
        (twin,) = ROOT.glob(f"tutorials/{stem}_*.py")
        assert "medium=" in twin.read_text(encoding="utf-8"), twin
        notebook = nbformat.read(ROOT / "notebooks" / f"{twin.stem}.ipynb", as_version=4)
        text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                       for o in c.outputs)  # fmt: skip
        assert "setting MEDIUM" in text, f"{twin.stem}.ipynb: outputs not from a MEDIUM run"


# -- the repository URL ------------------------------------------------------------------------


def test_committed_files_agree_with_pyproject_repository():
    assert course.check_repository(ROOT) == []
    assert course.repository_url(ROOT).startswith("https://")


def _copy_course(tmp_path: Path) -> Path:
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    shutil.copytree(ROOT / "tutorials", tmp_path / "tutorials")
    return tmp_path


def _outputs(path: Path) -> list:
    return [c.get("outputs") for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]


def test_set_repository_rewrites_every_install_cell_badge_and_the_guide(tmp_path, capsys):
    jupytext = pytest.importorskip("jupytext")
    root = _copy_course(tmp_path)
    before = {p.name: _outputs(p) for p in root.glob("notebooks/*.ipynb")}
    url = "https://github.com/my-university/dl-course"
    assert course.main(["set-repository", url, "--root", str(root), "--branch", "ws2027"]) == 0
    assert "Repository = https://github.com/my-university/dl-course" in capsys.readouterr().out
    assert course.check_repository(root) == []
    assert course.repository_url(root) == url
    assert 'Paper = "https://arxiv.org/abs/2412.08515"' in (root / "pyproject.toml").read_text()
    for path in sorted(root.glob("notebooks/*.ipynb")) + sorted(root.glob("tutorials/*.py")):
        text = course._text(path)
        assert f"install -q git+{url}" in text, path
        assert "latentboost-lab/latentboost_lab" not in text, path
        badge = f"colab.research.google.com/github/my-university/dl-course/blob/ws2027/notebooks/{path.stem}.ipynb"
        assert badge in text, path
    assert f"pip install git+{url}" in (root / "tutorials" / "README.md").read_text()
    for path in root.glob("notebooks/*.ipynb"):  # outputs kept, twins still agree
        assert _outputs(path) == before[path.name], path
        cells = [(c.cell_type, c.source.strip()) for c in jupytext.read(path).cells]
        twin = jupytext.read(root / "tutorials" / f"{path.stem}.py", fmt="py:percent")
        assert cells == [(c.cell_type, c.source.strip()) for c in twin.cells], path
    # another host: install lines follow, the Colab badges (GitHub only) stay as they were
    course.set_repository("https://gitlab.example.org/course/lab.git", root)
    text = course._text(root / "tutorials" / "01_cross_entropy_baseline.py")
    assert "install -q git+https://gitlab.example.org/course/lab.git" in text
    assert "github/my-university/dl-course/blob/ws2027/" in text


@pytest.mark.parametrize("bad", ["not a url", "https://x.org/a b", 'https://x.org/"q"', ""])
def test_set_repository_refuses_a_bad_url(tmp_path, bad, capsys):
    root = _copy_course(tmp_path)
    assert course.main(["set-repository", bad, "--root", str(root)]) == 2
    assert "url must be an http(s) URL" in capsys.readouterr().err
    assert course.check_repository(root) == []  # nothing was written


def test_check_repository_names_a_file_that_disagrees(tmp_path):
    root = _copy_course(tmp_path)
    twin = root / "tutorials" / "03_pca_in_the_latent_space.py"
    twin.write_text(twin.read_text().replace("git+https://github.com/", "git+https://github.org/"))
    (problem,) = course.check_repository(root)
    assert problem.startswith("tutorials/03_pca_in_the_latent_space.py: https://github.org/")


# -- the instructor pack -----------------------------------------------------------------------


def _nbgrader_api(folder: Path):
    pytest.importorskip("nbgrader", reason="the instructor pack needs nbgrader (the test extra)")
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(folder)
    config.CourseDirectory.course_id = "latentboost_lab"
    return NbGraderAPI(config=config)


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("course")
    sources = course.build_instructor_pack(folder, ROOT)
    api = _nbgrader_api(folder)
    for source in sources:
        result = api.generate_assignment(source.parent.name, force=True)
        assert result["success"], result.get("error") or result.get("log")
    return folder, sources


def test_every_exercise_has_a_solution_and_an_assignment(pack):
    folder, sources = pack
    names = {p.parent.name for p in sources}
    twins = {p.stem for p in ROOT.glob("tutorials/*.py")}
    assert names == twins | {"ablation"}
    nbformat = pytest.importorskip("nbformat")
    for source in sources:
        notebook = nbformat.read(source, as_version=4)
        roles = [c.metadata.get("nbgrader", {}) for c in notebook.cells]
        assert any(r.get("solution") and not r.get("grade") for r in roles), source  # code
        assert any(r.get("grade") and not r.get("solution") for r in roles), source  # tests
        assert any(r.get("grade") and r.get("solution") for r in roles), source  # answers
        assert not any(c.source.lstrip().startswith("# TODO") for c in notebook.cells), source


def test_student_versions_hold_no_solution(pack):
    folder, sources = pack
    nbformat = pytest.importorskip("nbformat")
    for source in sources:
        name = source.parent.name
        release = folder / "release" / name / f"{name}.ipynb"
        student = nbformat.read(release, as_version=4)
        text = "\n".join(c.source for c in student.cells)
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, release
        assert "raise NotImplementedError()" in text and "YOUR ANSWER HERE" in text, release
        # the autograded test cells travel unchanged
        instructor = nbformat.read(source, as_version=4)
        tests = [c.source for c in instructor.cells if c.metadata.get("nbgrader", {}).get("grade")
                 and not c.metadata["nbgrader"].get("solution")]  # fmt: skip
        for cell in tests:
            assert cell in text, (release, cell[:80])
    magnet = (folder / "release" / "02_magnet_loss" / "02_magnet_loss.ipynb").read_text()
    assert "torch.cdist(z, means)" not in magnet.split("Implement the Magnet loss yourself")[1]


def _run(groups: list[list[Path]], cwd: Path) -> dict[Path, dict]:
    """Runs each group of notebooks in its own process, the groups side by side (two groups use
    both cores of a 2-core machine); returns each notebook's result by path."""
    env = {**os.environ, "LATENTBOOST_MODE": "quick", "LATENTBOOST_TUTORIAL_DATA": "digits",
           "MPLBACKEND": "Agg", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # fmt: skip
    runner = str(ROOT / "tests" / "_notebook_runner.py")
    processes = [
        subprocess.Popen(
            [sys.executable, runner, *map(str, group)],
            cwd=cwd,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for group in groups
    ]
    results = {}
    for process, group in zip(processes, groups, strict=True):
        stdout, stderr = process.communicate(timeout=900)
        found = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"path"')]
        assert len(found) == len(group), stdout[-2000:] + stderr[-3000:]
        results.update({Path(r["path"]): r for r in found})
    return results


@pytest.fixture(scope="module")
def runs(pack):
    """The student version of notebook 02, then every instructor version, on digits in QUICK.
    Two processes (one import of torch each; a kernel per notebook would double the time), the
    assignment with the most training (07) in one and the rest in the other."""
    folder, sources = pack
    student = folder / "release" / "02_magnet_loss" / "02_magnet_loss.ipynb"
    heavy = [p for p in sources if p.parent.name.startswith(("07", "01", "02"))]
    light = [p for p in sources if p not in heavy]
    results = _run([heavy, [student, *light]], folder)
    return {"student": results[student], "instructor": [results[p] for p in sources]}


def test_student_version_runs_up_to_its_first_exercise(pack, runs):
    folder, _ = pack
    nbformat = pytest.importorskip("nbformat")
    release = folder / "release" / "02_magnet_loss" / "02_magnet_loss.ipynb"
    cells = nbformat.read(release, as_version=4).cells
    first = next(i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("solution")
                 and c.cell_type == "code")  # fmt: skip
    result = runs["student"]
    assert result["error"] is not None and result["error"]["type"] == "NotImplementedError"
    assert result["error"]["cell"] == first, result["error"]
    assert result["ran"] == sum(c.cell_type == "code" for c in cells[:first])


def test_instructor_versions_pass_their_autograded_cells_on_digits(runs):
    """Every instructor version runs from top to bottom on the digits fallback in QUICK: the
    notebook's own asserts, the solutions and the autograded test cells."""
    failures = [r for r in runs["instructor"] if r["error"] is not None]
    assert not failures, "\n\n".join(
        f"{r['path']} cell {r['error']['cell']}: {r['error']['type']}: {r['error']['message']}\n"
        f"{r['error']['traceback']}"
        for r in failures
    )
    assert all(r["ran"] > 5 for r in runs["instructor"])


def test_solution_files_are_checked(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("# %%\n# nbgrader: tests ex1\nassert True\n")
    with pytest.raises(ValueError, match="tests ex1 needs its points"):
        course.solution_cells(bad)
    bad.write_text("# %%\n# nbgrader: solution ex1\nx = 1\n")
    with pytest.raises(ValueError, match="solution ex1 has no ### BEGIN SOLUTION"):
        course.solution_cells(bad)
    bad.write_text("# %%\n# nbgrader: answer q 2\nx = 1\n")
    with pytest.raises(ValueError, match="answer q must be a markdown cell"):
        course.solution_cells(bad)
    assert re.search("names: no assignment called", _error(lambda: course.build_instructor_pack(
        tmp_path / "out", ROOT, names=["99_nothing"])))  # fmt: skip


def _error(call) -> str:
    try:
        call()
    except ValueError as err:
        return str(err)
    return ""
