"""The course site (``python -m latentboost_lab.site``): built once for this module from the
committed notebooks, course guide, README and results, then checked as files (every page there,
every internal link and image resolving, the saved outputs shown, the repository address from
pyproject.toml) and, where Chromium and Playwright are installed, in a real browser with the
network cut off (every page renders, its figures and formulas display).

Skips, saying why, without the site extra (``pip install -e ".[site]"``)."""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from pathlib import Path

import pytest

from latentboost_lab import site

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
RESULTS = sorted((ROOT / "results").glob("*/summary.md"))
ARTIFACTS = ROOT / "tests" / "artifacts" / "site"


def expected_pages() -> list[str]:
    """Every page the site must have, as paths of its HTML files."""
    pages = ["index.html", "README.html", "tutorials/README.html", "results/README.html"]
    pages += [f"notebooks/{p.stem}.html" for p in NOTEBOOKS]
    pages += [f"results/{p.parent.name}/summary.html" for p in RESULTS]
    return pages


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
        pytest.importorskip(module, reason=f"the site needs {module}: pip install -e '.[site]'")
    index = site.build_site(tmp_path_factory.mktemp("site") / "site")
    return index.parent


def _links(page: Path) -> list[str]:
    """The href and src addresses of a page (the theme's own assets included)."""
    return [html.unescape(url) for url in re.findall(r'(?:href|src)="([^"]+)"', page.read_text())]


def broken_links(folder: Path) -> list[str]:
    """``page -> address`` for every relative address of every page that names no file of
    the site, or an anchor that the target page lacks."""
    broken = []
    for page in sorted(folder.rglob("*.html")):
        if "_static" in page.parts:
            continue
        for url in _links(page):
            if re.match(r"[a-z][a-z0-9+.-]*:", url, re.I):
                continue  # an address elsewhere (the repository, arXiv, Colab)
            path, _, anchor = url.split("?")[0].partition("#")
            target = (page.parent / urllib.parse.unquote(path)).resolve() if path else page
            if not target.is_file():
                broken.append(f"{page.relative_to(folder)} -> {url}")
            elif anchor and target.suffix == ".html" and f'id="{anchor}"' not in target.read_text():
                broken.append(f"{page.relative_to(folder)} -> {url} (no such anchor)")
    return broken


def test_every_source_has_a_page(built):
    missing = [page for page in expected_pages() if not (built / page).is_file()]
    assert missing == []
    index = (built / "index.html").read_text()
    for page in expected_pages()[1:]:  # every page is in the navigation
        assert f'href="{page}"' in index, page


def test_internal_links_and_images_resolve(built):
    assert broken_links(built) == []


def test_figures_and_saved_outputs_are_on_the_pages(built):
    for path in NOTEBOOKS:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        outputs = [o for c in notebook["cells"] for o in c.get("outputs", [])]
        figures = sum("image/png" in o.get("data", {}) for o in outputs)
        page = (built / "notebooks" / f"{path.stem}.html").read_text()
        shown = len(re.findall(r'<img[^>]+src="\.\./_images/', page))
        assert shown >= figures >= 1, (path.name, figures, shown)
        # not executed: the first printed line saved in the notebook is on the page
        streams = ["".join(o["text"]) for o in outputs if o.get("output_type") == "stream"]
        assert streams and html.escape(streams[0].splitlines()[0], quote=False) in page, path.name
    for summary in RESULTS:
        page = (built / "results" / summary.parent.name / "summary.html").read_text()
        for figure in summary.parent.glob("*.png"):  # Sphinx renames equal names in _images/
            alt = figure.stem.replace("_", " ")
            assert re.search(rf'<img alt="{alt}" src="\.\./\.\./_images/[^"]+\.png"', page), figure
    readme = (built / "README.html").read_text()
    for figure in (ROOT / "docs").glob("*.png"):
        if f"docs/{figure.name}" in (ROOT / "README.md").read_text():
            assert figure.name in readme, figure


def test_the_repository_address_is_pyprojects(built):
    repository = site.repository_url()
    assert re.match(r"https?://", repository)
    assert f'href="{repository}"' in (built / "index.html").read_text()  # the repository button
    owner_name = urllib.parse.urlparse(repository).path.strip("/")
    colab = f"https://colab.research.google.com/github/{owner_name}/blob/{site.BRANCH}/notebooks/"
    assert colab in (built / "notebooks" / f"{NOTEBOOKS[0].stem}.html").read_text()


def test_the_site_loads_nothing_from_the_network(built):
    for page in expected_pages():
        text = (built / page).read_text()
        scripts = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', text)
        assert scripts == [], (page, scripts)  # no CDN: theme, MathJax and widgets are local
    assert (built / "_static" / "mathjax" / "tex-chtml.js").is_file()


def _fake_repository(root: Path) -> None:
    (root / "notebooks").mkdir(parents=True)
    (root / "tutorials").mkdir()
    (root / "results" / "run_a").mkdir(parents=True)
    (root / "site").mkdir()
    (root / "latentboost_lab").mkdir()
    (root / "latentboost_lab" / "fit.py").write_text("")
    (root / "site" / "index.md").write_text("# index\n")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[project.urls]\nPaper = "https://arxiv.org/abs/1"\n'
        'Repository = "https://example.org/course/lab"  # the course\'s copy\n'
    )
    (root / "README.md").write_text("# lab\n")
    (root / "tutorials" / "README.md").write_text(
        "[code](../latentboost_lab/fit.py#L3) [nb](../notebooks/01_a.ipynb) "
        "[web](https://arxiv.org/abs/1) [here](#top) [results](../results/README.md) "
        "[folder](../latentboost_lab)\n"
    )
    (root / "results" / "README.md").write_text("![a figure](run_a/curve.png)\n")
    (root / "results" / "run_a" / "summary.md").write_text("# run a\n")
    (root / "results" / "run_a" / "curve.png").write_bytes(b"\x89PNG")
    notebook = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["[guide](../tutorials/README.md) ",
                                                             "[cli](../latentboost_lab/fit.py)"]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "panel",
         "outputs": [{"output_type": "display_data", "metadata": {}, "data": {
             "application/vnd.jupyter.widget-view+json": {"model_id": "m"}, "text/plain": "VBox()"}}]},
    ], "metadata": {"widgets": {"state": {}}}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    (root / "notebooks" / "01_a.ipynb").write_text(json.dumps(notebook))


def test_staging_points_outside_links_at_the_repository(tmp_path):
    root, stage = tmp_path / "repo", tmp_path / "stage"
    _fake_repository(root)
    pages = site.stage_sources(stage, root)
    assert sorted(p.as_posix() for p in pages) == [
        "README.md", "notebooks/01_a.ipynb", "results/README.md", "results/run_a/summary.md",
        "tutorials/README.md"]  # fmt: skip
    guide = (stage / "tutorials" / "README.md").read_text()
    repo = "https://example.org/course/lab"
    assert f"[code]({repo}/blob/main/latentboost_lab/fit.py#L3)" in guide
    assert f"[folder]({repo}/tree/main/latentboost_lab)" in guide
    for kept in ("[nb](../notebooks/01_a.ipynb)", "[web](https://arxiv.org/abs/1)", "[here](#top)",
                 "[results](../results/README.md)"):  # fmt: skip
        assert kept in guide
    notebook = json.loads((stage / "notebooks" / "01_a.ipynb").read_text())
    assert notebook["cells"][0]["source"] == (
        f"[guide](../tutorials/README.md) [cli]({repo}/blob/main/latentboost_lab/fit.py)"
    )
    assert notebook["cells"][1]["outputs"][0]["data"] == {"text/plain": site.WIDGET_NOTE}
    assert "widgets" not in notebook["metadata"]
    summary = (stage / "results" / "run_a" / "summary.md").read_text()
    assert "![curve](curve.png)" in summary and (stage / "results" / "run_a" / "curve.png").exists()
    assert (stage / "index.md").read_text() == "# index\n"


def test_repository_address_errors_name_the_setting(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n\n[project.urls]\nPaper = "https://a.b"\n')
    with pytest.raises(ValueError, match=r"\[project.urls\] Repository"):
        site.repository_url(pyproject)
    pyproject.write_text('[project.urls]\nRepository = "github.com/x/y"\n')
    with pytest.raises(ValueError, match="must be an http"):
        site.repository_url(pyproject)
    pyproject.write_text('[tool.x]\nRepository = "https://elsewhere"\n')  # another table's key
    with pytest.raises(ValueError, match="has no"):
        site.repository_url(pyproject)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="source checkout"):
        site.stage_sources(tmp_path / "stage", empty, repo="https://example.org/x")


@pytest.mark.browser
def test_every_page_renders_in_chromium_offline(built):
    """Each page in headless Chromium, every request outside the site refused: it has its
    title and text, its images are decoded, its formulas are typeset by the local MathJax, and
    every address of the site it links to answers."""
    import _browser as lab_ui

    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    chromium = lab_ui.find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found: install Debian's `chromium` to run the browser checks")
    outside, failed = [], []
    with lab_ui.StaticServer(built) as server, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 900})

            def route(request_route):
                url = request_route.request.url
                if url.startswith(server.base):
                    request_route.continue_()
                else:
                    outside.append(url)
                    request_route.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("pageerror", lambda error: failed.append(str(error)))
            linked = set()
            for name in expected_pages():
                response = page.goto(server.base + name, wait_until="load")  # images too
                assert response is not None and response.ok, name
                assert page.title().endswith("Latent Boost lab"), (name, page.title())
                assert len(page.locator("article").inner_text()) > 200, name
                images = page.evaluate("""() => [...document.querySelectorAll('article img')]
                    .filter(img => img.src.startsWith(location.origin))
                    .map(img => [img.src, img.complete && img.naturalWidth > 0])""")
                assert all(ok for _, ok in images), (name, [s for s, ok in images if not ok])
                if name.startswith("notebooks/"):
                    assert images, f"{name} shows no figure"
                if page.locator("article .math").count():
                    page.wait_for_function("document.querySelectorAll('mjx-container').length > 0")
                linked |= {
                    href.split("#")[0] for href in page.evaluate(
                        "() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
                    if href.startswith(server.base)
                }  # fmt: skip
            for url in sorted(linked):
                assert page.request.get(url).ok, url
            # for a reviewer (tests/artifacts/ is git-ignored)
            page.goto(server.base + "notebooks/06_lambda_playground.html", wait_until="networkidle")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=ARTIFACTS / "site-06_lambda_playground.png")
        finally:
            browser.close()
    assert failed == [], failed  # no script error on any page
    # the only addresses elsewhere that the pages load: the Colab badges' images
    assert {urllib.parse.urlparse(u).netloc for u in outside} <= {"colab.research.google.com"}
