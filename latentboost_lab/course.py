"""Running the notebooks as a course: where the repository lives, and the instructor pack.

Two commands (``python -m latentboost_lab.course --help``):

- ``set-repository URL``: the one place a course sets is ``[project.urls] Repository`` in
  ``pyproject.toml``. This command writes URL there and rewrites, from it, every notebook's
  guarded install cell (``pip install -q git+URL``), its "Open in Colab" badge (GitHub URLs
  only: Colab opens notebooks from GitHub) in both ``notebooks/*.ipynb`` and their
  ``tutorials/*.py`` twins, and the install line of the course guide (``tutorials/README.md``).
  Outputs stored in the notebooks are kept. ``check-repository`` says which files disagree with
  ``pyproject.toml`` (the test suite runs it).
- ``instructor OUT``: the instructor pack as an nbgrader course folder (nbgrader, PyPI: the tool
  that generates the student release and grades it). Each assignment's *source* notebook (the
  instructor version, with solutions) is the tutorial notebook with its exercise cells replaced
  by the cells of ``instructor/solutions/NN_name.py`` and its questions answered; the ablation
  assignment is ``instructor/assignments/ablation.py``. Solutions are written between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``; autograded test cells hold asserts. Then, in
  OUT, ``nbgrader generate_assignment NN_name`` writes the student version (``release/``).

In a solution file every cell's first line says what the cell is to nbgrader::

    # nbgrader: solution ex1-per-class          a code cell with a solution region (autograded answer)
    # nbgrader: tests ex1-per-class 2           an autograded test cell worth 2 points
    # nbgrader: answer questions 3              a markdown cell, graded by hand, worth 3 points
    # nbgrader: task ex1                        a markdown cell shown to the student, read-only

Untagged cells are plain cells. ``answer`` cells go after the notebook's questions, all others
replace its ``# TODO`` exercise cell. The tag line itself is dropped.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "build_instructor_pack",
    "check_repository",
    "repository_url",
    "set_repository",
    "solution_cells",
]

PLACEHOLDER = "https://github.com/latentboost-lab/latentboost_lab"

# `"pip", "install -q git+URL"` in the install cells, `pip install git+URL` in the course guide
_INSTALL = re.compile(r"(\binstall (?:-q )?git\+)(https?://[^\s\"'`()\\]+)")
# https://colab.research.google.com/github/OWNER/NAME/blob/BRANCH/notebooks/...
_COLAB = re.compile(
    r"(https://colab\.research\.google\.com/github/)([^/\s]+/[^/\s]+)/blob/([^/\s]+)/"
)
_GITHUB = re.compile(
    r"https://github\.com/([A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+?)(?:\.git)?/?"
)
_URLS_LINE = re.compile(r'^Repository\s*=\s*"([^"]*)"\s*$', re.MULTILINE)


def _root(root: str | Path | None) -> Path:
    root = Path.cwd() if root is None else Path(root)
    if not (root / "pyproject.toml").is_file() or not (root / "notebooks").is_dir():
        raise FileNotFoundError(
            f"root must be the repository's top folder (with pyproject.toml and notebooks/); "
            f"got {root}"
        )
    return root


def repository_url(root: str | Path | None = None) -> str:
    """``[project.urls] Repository`` of ``pyproject.toml`` (where the course's copy lives), read
    by the site's parser (:func:`latentboost_lab.site.repository_url`): one reader of the one
    place."""
    from .site import repository_url as read_repository_url

    return read_repository_url(_root(root) / "pyproject.toml")


def _check_url(url: str) -> str:
    if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s\"'`()]+", url):
        raise ValueError(f"url must be an http(s) URL without spaces or quotes; got {url!r}")
    return url.rstrip("/")


def _files(root: Path) -> list[Path]:
    files = sorted(root.glob("notebooks/*.ipynb")) + sorted(root.glob("tutorials/*.py"))
    guide = root / "tutorials" / "README.md"
    return files + ([guide] if guide.is_file() else [])


def _rewrite(text: str, url: str, branch: str) -> str:
    text = _INSTALL.sub(lambda m: m.group(1) + url, text)
    github = _GITHUB.fullmatch(url)
    if github:  # Colab opens notebooks from GitHub only: other hosts keep their badges
        text = _COLAB.sub(lambda m: f"{m.group(1)}{github.group(1)}/blob/{branch}/", text)
    return text


def _rewrite_notebook(path: Path, url: str, branch: str) -> bool:
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    changed = False
    for cell in notebook.cells:
        new = _rewrite(cell.source, url, branch)
        if new != cell.source:
            cell.source, changed = new, True
    if changed:
        nbformat.write(notebook, path)
    return changed


def set_repository(url: str, root: str | Path | None = None, branch: str = "main") -> list[Path]:
    """Writes ``url`` to ``[project.urls] Repository`` and rewrites the install cells, the Colab
    badges (GitHub URLs) and the course guide's install line from it. Returns the files changed."""
    root, url = _root(root), _check_url(url)
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", branch):
        raise ValueError(f"branch must be a git branch name; got {branch!r}")
    changed = []
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    if "[project.urls]" not in text:
        raise ValueError("pyproject.toml has no [project.urls] table")
    head, tail = text.split("[project.urls]", 1)
    table, rest = (tail.split("\n[", 1) + [None])[:2]
    line = f'Repository = "{url}"'
    table = _URLS_LINE.sub(line, table) if _URLS_LINE.search(table) else f"\n{line}" + table
    new = head + "[project.urls]" + table + ("\n[" + rest if rest is not None else "")
    if new != text:
        pyproject.write_text(new, encoding="utf-8")
        changed.append(pyproject)
    for path in _files(root):
        if path.suffix == ".ipynb":
            if _rewrite_notebook(path, url, branch):
                changed.append(path)
            continue
        old = path.read_text(encoding="utf-8")
        new = _rewrite(old, url, branch)
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def _text(path: Path) -> str:
    """A file's text; a notebook's cell sources (not its JSON, where quotes are escaped)."""
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    import nbformat

    return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)


def check_repository(root: str | Path | None = None) -> list[str]:
    """Every install line (and, for a GitHub URL, every Colab badge) that does not use
    ``pyproject.toml``'s Repository URL, as ``"file: found"``; empty when all agree."""
    root = _root(root)
    url = repository_url(root)
    github = _GITHUB.fullmatch(url)
    problems = []
    for path in _files(root):
        text = _text(path)
        rel = path.relative_to(root)
        installs = [m.group(2) for m in _INSTALL.finditer(text)]
        if path.suffix in (".ipynb", ".py") and not installs:
            problems.append(f"{rel}: no install line (pip install -q git+URL)")
        problems += [f"{rel}: {found}" for found in installs if found != url]
        if github:
            problems += [f"{rel}: Colab badge for {m.group(2)}" for m in _COLAB.finditer(text)
                         if m.group(2) != github.group(1)]  # fmt: skip
    return problems


# -- the instructor pack (nbgrader) ------------------------------------------------------------

INSTRUCTOR = "instructor"
_TAG = re.compile(r"^# nbgrader: (solution|tests|answer|task) ([A-Za-z0-9_-]+)(?: (\d+))?\s*$")


@dataclass
class _Tagged:
    kind: str | None  # None: a plain cell
    grade_id: str | None
    points: int
    cell: object


def solution_cells(path: str | Path) -> list[_Tagged]:
    """The cells of a solution file (py:percent), each with its nbgrader role (module docstring)."""
    import jupytext

    notebook = jupytext.read(Path(path), fmt="py:percent")
    cells, seen = [], set()
    for cell in notebook.cells:
        lines = cell.source.split("\n")
        match = _TAG.match(lines[0])
        if match is None:
            if lines[0].startswith("# nbgrader"):
                raise ValueError(f"{path}: unreadable tag line {lines[0]!r} (see course.py)")
            cells.append(_Tagged(None, None, 0, cell))
            continue
        kind, grade_id, points = match.group(1), match.group(2), int(match.group(3) or 0)
        key = f"{kind}-{grade_id}"
        if key in seen:
            raise ValueError(f"{path}: {key} appears twice (nbgrader ids must be unique)")
        seen.add(key)
        if kind in ("tests", "answer") and points <= 0:
            raise ValueError(f"{path}: {kind} {grade_id} needs its points, e.g. '... {grade_id} 2'")
        if kind in ("answer", "task") and cell.cell_type != "markdown":
            raise ValueError(f"{path}: {kind} {grade_id} must be a markdown cell")
        if kind in ("solution", "tests") and cell.cell_type != "code":
            raise ValueError(f"{path}: {kind} {grade_id} must be a code cell")
        if kind == "solution" and "### BEGIN SOLUTION" not in cell.source:
            raise ValueError(f"{path}: solution {grade_id} has no ### BEGIN SOLUTION region")
        cell.source = "\n".join(lines[1:]).strip("\n")
        cells.append(_Tagged(kind, grade_id, points, cell))
    return cells


def _nbgrader_metadata(tagged: _Tagged) -> dict | None:
    base = {"schema_version": 3, "grade_id": None, "locked": False, "solution": False,
            "grade": False, "task": False}  # fmt: skip
    if tagged.kind is None:
        return None
    grade_id = f"{tagged.kind}-{tagged.grade_id}"
    if tagged.kind == "solution":
        return {**base, "grade_id": grade_id, "solution": True}
    if tagged.kind == "tests":
        return {**base, "grade_id": grade_id, "grade": True, "locked": True,
                "points": tagged.points}  # fmt: skip
    if tagged.kind == "answer":
        return {**base, "grade_id": grade_id, "solution": True, "grade": True,
                "points": tagged.points}  # fmt: skip
    return {**base, "grade_id": grade_id, "locked": True, "task": False}


def _as_cells(tagged_cells: list[_Tagged]) -> list:
    import nbformat

    out = []
    for tagged in tagged_cells:
        cell = tagged.cell
        new = (nbformat.v4.new_code_cell(cell.source) if cell.cell_type == "code"
               else nbformat.v4.new_markdown_cell(cell.source))  # fmt: skip
        metadata = _nbgrader_metadata(tagged)
        if metadata is not None:
            new.metadata["nbgrader"] = metadata
        out.append(new)
    return out


def _instructor_notebook(tutorial: Path, solutions: Path):
    """The tutorial's cells with its TODO cell replaced and its questions answered."""
    import jupytext
    import nbformat

    notebook = jupytext.read(tutorial, fmt="py:percent")
    tagged = solution_cells(solutions)
    answers = [t for t in tagged if t.kind == "answer"]
    work = [t for t in tagged if t.kind != "answer"]
    todo = [i for i, c in enumerate(notebook.cells)
            if c.cell_type == "code" and c.source.lstrip().startswith("# TODO")]  # fmt: skip
    questions = [i for i, c in enumerate(notebook.cells)
                 if c.cell_type == "markdown" and "**Questions.**" in c.source]  # fmt: skip
    if len(todo) != 1 or len(questions) != 1 or questions[0] < todo[0]:
        raise ValueError(f"{tutorial}: expected one '# TODO' exercise cell followed by one "
                         f"'**Questions.**' cell; found {len(todo)} and {len(questions)}")  # fmt: skip
    cells = [nbformat.v4.new_code_cell(c.source) if c.cell_type == "code"
             else nbformat.v4.new_markdown_cell(c.source) for c in notebook.cells]  # fmt: skip
    q = questions[0]
    text = notebook.cells[q].source
    before, summary = (text.split("\n## Summary", 1) + [None])[:2]
    tail = [nbformat.v4.new_markdown_cell("## Summary" + summary)] if summary is not None else []
    cells = (cells[:todo[0]] + _as_cells(work) + cells[todo[0] + 1:q]
             + [nbformat.v4.new_markdown_cell(before.rstrip())] + _as_cells(answers) + tail
             + cells[q + 1:])  # fmt: skip
    result = nbformat.v4.new_notebook(cells=cells)
    result.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                     "name": "python3"}  # fmt: skip
    return result


def _standalone_notebook(path: Path):
    import nbformat

    result = nbformat.v4.new_notebook(cells=_as_cells(solution_cells(path)))
    result.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                     "name": "python3"}  # fmt: skip
    return result


def build_instructor_pack(out: str | Path, root: str | Path | None = None,
                          names: list[str] | None = None) -> list[Path]:  # fmt: skip
    """Writes an nbgrader course folder to ``out``: ``nbgrader_config.py`` and
    ``source/<assignment>/<assignment>.ipynb`` for every solution file (``names``: only these
    assignments). Returns the source notebooks written."""
    import nbformat

    root = _root(root)
    pack = root / INSTRUCTOR
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pack / "nbgrader_config.py", out / "nbgrader_config.py")
    sources = {p.stem: (root / "tutorials" / p.name, p)
               for p in sorted((pack / "solutions").glob("*.py"))}  # fmt: skip
    sources.update({p.stem: (None, p) for p in sorted((pack / "assignments").glob("*.py"))})
    unknown = sorted(set(names or ()) - set(sources))
    if unknown:
        raise ValueError(f"names: no assignment called {unknown}; there are {sorted(sources)}")
    written = []
    for name, (tutorial, solutions) in sources.items():
        if names and name not in names:
            continue
        if tutorial is not None and not tutorial.is_file():
            raise FileNotFoundError(f"{solutions} has no tutorial {tutorial}")
        notebook = (_instructor_notebook(tutorial, solutions) if tutorial is not None
                    else _standalone_notebook(solutions))  # fmt: skip
        target = out / "source" / name / f"{name}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m latentboost_lab.course",
        description="Course tools: the repository URL in the notebooks, and the instructor pack.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("set-repository", help="write URL to pyproject.toml and every install cell")
    p.add_argument("url", help="where the course's copy lives, e.g. https://github.com/ORG/REPO")
    p.add_argument("--branch", default="main", help="the branch the Colab badges open (main)")
    p.add_argument("--root", default=None, help="the repository's top folder (the current one)")
    p = sub.add_parser("check-repository", help="files whose install line or badge disagree")
    p.add_argument("--root", default=None)
    p = sub.add_parser("instructor", help="write the nbgrader course folder (source notebooks)")
    p.add_argument("out", help="the course folder to write (e.g. course/)")
    p.add_argument("--only", default=None, help="comma-separated assignment names")
    p.add_argument("--root", default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "set-repository":
            changed = set_repository(args.url, args.root, args.branch)
            for path in changed:
                print(f"rewrote {path}")
            print(f"{len(changed)} files changed; Repository = {_check_url(args.url)}")
        elif args.command == "check-repository":
            problems = check_repository(args.root)
            for problem in problems:
                print(problem)
            if problems:
                return 1
            print(f"every install line uses {repository_url(args.root)}")
        else:
            names = args.only.split(",") if args.only else None
            for path in build_instructor_pack(args.out, args.root, names):
                print(f"wrote {path}")
            print(
                f"next: cd {args.out} && nbgrader generate_assignment NAME  (the student "
                "version, in release/)"
            )
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
