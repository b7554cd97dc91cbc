"""The course as a static web site: ``python -m latentboost_lab.site`` (in a source checkout).

Sphinx with myst-nb and sphinx-book-theme (``pip install -e ".[site]"``) builds the notebooks
with the outputs saved in them (nothing is executed), the course guide
(``tutorials/README.md``), the README, ``results/README.md`` and one page per results folder
into ``build/site/`` (open ``build/site/index.html``). The build reads nothing from the network
and the built site loads nothing from it (the theme's assets and MathJax are copied from the
installed packages), except the Colab badges' images.

How: the sources are staged into ``build/site-source/`` in the repository's own layout, so that
the relative links between them keep working; on the way,

- a link to a repository file that is not part of the site (a ``.py``, ``runs.json``, ...)
  becomes a link to that file in the course's repository, whose address is read from
  ``pyproject.toml`` (``[project.urls] Repository``; see :func:`repository_url`);
- each results folder's page is its ``summary.md`` followed by the folder's figures;
- a notebook's saved widget views are replaced by a line saying that the widget runs in
  Jupyter (showing them would need a widget manager from a CDN);

then ``python -m sphinx`` runs with the configuration in ``site/conf.py``. Sphinx's warnings
(a broken cross-reference, a missing image) make the build fail: :class:`SiteBuildError`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["BRANCH", "SiteBuildError", "build_site", "repository_url", "stage_sources"]

ROOT = Path(__file__).resolve().parent.parent
#: the branch the links to repository files and the launch buttons point at
BRANCH = "main"
#: what a notebook's widget view is replaced by on the site
WIDGET_NOTE = "[an interactive widget: it appears when the notebook runs in Jupyter]"
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")


class SiteBuildError(RuntimeError):
    """Sphinx failed or warned; the message holds its output."""


def repository_url(pyproject: str | os.PathLike | None = None) -> str:
    """The course repository's address: ``[project.urls] Repository`` in ``pyproject.toml``.

    The one place a course sets it (the site's repository button and launch buttons, and its
    links to source files, use it). Read with a plain parser of that table (no TOML library:
    Python 3.10 has none built in)."""
    path = Path(pyproject) if pyproject is not None else ROOT / "pyproject.toml"
    table = None
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            table = stripped
            continue
        match = re.fullmatch(r"Repository\s*=\s*\"([^\"]+)\"\s*(#.*)?", stripped)
        if table == "[project.urls]" and match:
            url = match.group(1).rstrip("/")
            if not re.match(r"https?://", url):
                raise ValueError(f"{path}: [project.urls] Repository must be an http(s) address, "
                                 f"got {url!r}")  # fmt: skip
            return url
    raise ValueError(
        f"{path} has no [project.urls] Repository: set it to the course repository's address "
        '(e.g. Repository = "https://github.com/you/latentboost_lab"); the site links to it'
    )


def _sources(root: Path) -> tuple[list[Path], list[Path]]:
    """The pages (repository-relative paths) and the other files the site shows (figures)."""
    notebooks = sorted(p.relative_to(root) for p in (root / "notebooks").glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(
            f"no notebooks in {root / 'notebooks'}: the site is built from a source checkout "
            "(git clone), where notebooks/, tutorials/ and results/ are"
        )
    pages = [Path("README.md"), Path("tutorials/README.md"), Path("results/README.md"), *notebooks]
    pages += sorted(p.relative_to(root) for p in (root / "results").glob("*/summary.md"))
    assets = sorted(p.relative_to(root) for p in (root / "results").glob("*/*.png"))
    assets += sorted(p.relative_to(root) for p in (root / "docs").glob("*.png"))
    return [p for p in pages if (root / p).exists()], assets


def _rewrite_links(text: str, page: Path, staged: set[Path], root: Path, repo: str) -> str:
    """Links of ``text`` (on ``page``) to repository files outside the site point at the repository."""

    def replace(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
            return match.group(0)  # an address, an anchor on the page, or site-absolute
        path, _, anchor = target.partition("#")
        resolved = Path(os.path.normpath(page.parent / path))
        if resolved in staged or str(resolved).startswith(".."):
            return match.group(0)
        if (root / resolved).exists():
            kind = "tree" if (root / resolved).is_dir() else "blob"
            url = f"{repo}/{kind}/{BRANCH}/{resolved.as_posix()}" + (f"#{anchor}" if anchor else "")
            return f"{match.group(1)}{url}{match.group(3)}"
        return match.group(0)  # a broken link: left for Sphinx to report

    return _LINK.sub(replace, text)


def _notebook_for_site(text: str, page: Path, staged, root, repo) -> str:
    notebook = json.loads(text)
    notebook.get("metadata", {}).pop("widgets", None)  # saved widget state: needs a CDN to show
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"])
            cell["source"] = _rewrite_links(source, page, staged, root, repo)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if _WIDGET_MIME in data:
                output["data"] = {"text/plain": WIDGET_NOTE}
    return json.dumps(notebook, indent=1, ensure_ascii=False)


def _results_page(text: str, page: Path, root: Path) -> str:
    """A results folder's summary, then its figures (the summaries do not show them)."""
    figures = sorted((root / page.parent).glob("*.png"))
    if not figures:
        return text
    lines = ["", "## Figures", ""]
    for figure in figures:
        lines += [f"![{figure.stem.replace('_', ' ')}]({figure.name})", ""]
    return text.rstrip("\n") + "\n" + "\n".join(lines)


def stage_sources(stage: str | os.PathLike, root: str | os.PathLike | None = None,
                  repo: str | None = None) -> list[Path]:  # fmt: skip
    """Copy the site's sources from ``root`` (the repository) into ``stage`` (emptied first),
    as the module docstring describes; returns the staged pages (repository-relative)."""
    root = Path(root) if root is not None else ROOT
    repo = repo or repository_url(root / "pyproject.toml")
    stage = Path(stage)
    if stage.exists():
        shutil.rmtree(stage)
    pages, assets = _sources(root)
    staged = set(pages) | set(assets)
    for asset in assets:
        (stage / asset).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / asset, stage / asset)
    for page in pages:
        text = (root / page).read_text(encoding="utf-8")
        if page.suffix == ".ipynb":
            text = _notebook_for_site(text, page, staged, root, repo)
        else:
            text = _rewrite_links(text, page, staged, root, repo)
            if page.name == "summary.md":
                text = _results_page(text, page, root)
        (stage / page).parent.mkdir(parents=True, exist_ok=True)
        (stage / page).write_text(text, encoding="utf-8")
    shutil.copyfile(root / "site" / "index.md", stage / "index.md")
    return pages


def build_site(out: str | os.PathLike | None = None, *, root: str | os.PathLike | None = None,
               quiet: bool = True) -> Path:  # fmt: skip
    """Build the site into ``out`` (default ``build/site`` of the repository); returns the
    path of its ``index.html``. Raises :class:`SiteBuildError` when Sphinx fails or warns."""
    root = Path(root) if root is not None else ROOT
    out = Path(out) if out is not None else root / "build" / "site"
    for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
        try:
            __import__(module)
        except ImportError as err:
            raise ImportError(
                f"building the site needs {module}: pip install -e '.[site]'"
            ) from err
    stage = out.parent / f"{out.name}-source"
    stage_sources(stage, root)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(root / "site"),
               "-W", "--keep-going", "-E", str(stage), str(out)]  # fmt: skip
    if quiet:
        command.insert(3, "-q")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SiteBuildError(
            f"sphinx-build failed (exit {done.returncode}):\n{done.stderr}{done.stdout}"
        )
    return out / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m latentboost_lab.site",
        description="Build the course site (notebooks with their saved outputs, course guide, "
        "README, results) with Sphinx into a folder of static HTML. Needs the site extra: "
        "pip install -e '.[site]'.",
    )
    parser.add_argument("--out", default=None, help="output folder (default: build/site)")
    args = parser.parse_args(argv)
    try:
        index = build_site(args.out, quiet=False)
    except (SiteBuildError, ValueError, FileNotFoundError, ImportError) as err:
        print(f"python -m latentboost_lab.site: error: {err}", file=sys.stderr)
        return 1
    print(f"built: {index}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
