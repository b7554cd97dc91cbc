"""Every notebook in notebooks/ has a py:percent twin in tutorials/ (and vice versa), and the two
hold the same cells. Outputs are ignored: only the notebook carries them.

After editing either file: ``jupytext --sync notebooks/NAME.ipynb`` (pairing in jupytext.toml).
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TUTORIALS = ROOT / "tutorials"


def _stems(folder: Path, suffix: str) -> set[str]:
    return {p.stem for p in folder.glob(f"*{suffix}")} if folder.is_dir() else set()


def test_every_notebook_has_a_twin_and_vice_versa():
    notebooks, twins = _stems(NOTEBOOKS, ".ipynb"), _stems(TUTORIALS, ".py")
    assert notebooks, "notebooks/ holds no notebook"
    assert notebooks - twins == set(), (
        f"notebooks without a tutorials/ twin: {sorted(notebooks - twins)}"
    )
    assert twins - notebooks == set(), (
        f"tutorials/ files without a notebook: {sorted(twins - notebooks)}"
    )


def _cells(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


@pytest.mark.parametrize("name", sorted(_stems(NOTEBOOKS, ".ipynb")))
def test_notebook_and_twin_agree(name):
    jupytext = pytest.importorskip("jupytext", reason="jupytext is needed to compare the twins")
    notebook = jupytext.read(NOTEBOOKS / f"{name}.ipynb")
    twin_path = TUTORIALS / f"{name}.py"
    if not twin_path.exists():
        pytest.fail(f"{twin_path} is missing")
    twin = jupytext.read(twin_path, fmt="py:percent")
    assert _cells(notebook) == _cells(twin), (
        f"notebooks/{name}.ipynb and tutorials/{name}.py differ: run `jupytext --sync "
        f"notebooks/{name}.ipynb`"
    )


@pytest.mark.parametrize("name", sorted(_stems(NOTEBOOKS, ".ipynb")))
def test_committed_notebooks_are_small_and_executed(name):
    path = NOTEBOOKS / f"{name}.ipynb"
    assert path.stat().st_size < 1_000_000, f"{path} is {path.stat().st_size} bytes (limit 1 MB)"
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert any(c.get("outputs") for c in code), f"{path} was committed without outputs"
