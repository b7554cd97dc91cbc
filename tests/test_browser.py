"""The tutorial notebooks as a student sees them: JupyterLab in a real (headless) Chromium.

nbval proves that the notebooks' code runs; it cannot see a widget that fails to render
("Error displaying widget", version skew between ipywidgets and JupyterLab), a plot that never
updates, or a progress bar printed as raw text. This test starts JupyterLab from this Python
environment on a temporary copy of ``notebooks/`` (outputs cleared: everything checked comes
from this run), drives it with Playwright through the system's Chromium, and

1. opens ``06_lambda_playground``, runs all cells, checks that the panel renders its controls;
2. asks for 20 epochs, clicks "Train N epochs" and, while the run trains in the kernel's
   background thread, drags the λ slider with the mouse: the same run reports the new λ at its
   next steps, the live figure is redrawn, and "Stop" ends the run after the epoch in progress
   with every epoch kept (``playground-live-lambda.png`` is the panel mid-run);
3. runs every other notebook (``notebooks/*.ipynb``: new ones are picked up) and checks that
   it ends without an error and shows its figures;
4. leaves screenshots in ``tests/artifacts/browser/`` (git-ignored) for a reviewer.

Marked ``browser``; skipped, saying why, where Chromium or Playwright is missing
(``.ci/run`` installs Debian's ``chromium``; ``pip install -e ".[dev]"`` installs Playwright).
Run it alone with ``python -m pytest tests/test_browser.py -m browser``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import _browser as lab_ui
import pytest

pytestmark = pytest.mark.browser

NOTEBOOK_PATHS = sorted(lab_ui.NOTEBOOKS.glob("*.ipynb"))
PLAYGROUND = "06_lambda_playground.ipynb"
OTHERS = [p.name for p in NOTEBOOK_PATHS if p.name != PLAYGROUND]
ARTIFACTS = lab_ui.ROOT / "tests" / "artifacts" / "browser"
#: limit for one notebook's Run All (the whole module should stay under 5 minutes on a 2-core
#: CPU; this only turns a hang into a failure with a screenshot)
RUN_ALL_TIMEOUT_MS = 300_000
VIEWPORT = {"width": 1400, "height": 1000}


def _chromium() -> str:
    """The system Chromium (Playwright's own browser download is not used)."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium found (chromium, chromium-browser or google-chrome on PATH): "
                "install Debian's `chromium` (apt-get install chromium) to run the browser test")  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="Playwright is not installed: pip install -e '.[dev]' (or pip install playwright)",
    )
    executable = _chromium()
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed: pip install -e '.[dev]'")
    pytest.importorskip("ipywidgets", reason="ipywidgets is not installed: pip install -e '.[dev]'")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    """JupyterLab on a cleared copy of notebooks/, QUICK setting, the real data if available.

    The kernels get one thread each (``OMP_NUM_THREADS=1`` unless set already): two notebooks
    run side by side, and on the shared 2-core machine one thread was faster than two even for
    one process (``fit`` of one cross-entropy epoch of SmallCNN on 2,000 Fashion-MNIST images,
    load average about 7: 11.8 s with ``torch.set_num_threads(1)``, 28.1 s with 2)."""
    folder = tmp_path_factory.mktemp("browser")
    root = folder / "notebooks"
    root.mkdir()
    for path in NOTEBOOK_PATHS:
        lab_ui.copy_cleared(path, root)
    env = {"LATENTBOOST_QUICK": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if os.environ.get("LATENTBOOST_DATA"):
        env["LATENTBOOST_DATA"] = os.environ["LATENTBOOST_DATA"]
    server = lab_ui.LabServer(root, folder / "home", env=env)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _selected_notebooks(session) -> list[Path]:
    """The notebooks of this module's selected tests (``-k`` and friends are respected)."""
    names = set()
    for item in session.items:
        module = getattr(item, "module", None)  # nbval's notebook cells have none
        if module is None or module.__name__ != __name__:
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "name" in callspec.params:
            names.add(callspec.params["name"])
        elif item.originalname == "test_playground_renders_and_answers_a_person":
            names.add(PLAYGROUND)
    return [path for path in NOTEBOOK_PATHS if path.name in names]


@pytest.fixture(scope="module")
def runner(browser, lab, request):
    """Two JupyterLab tabs running the selected notebooks, the playground first (its test is
    the first and uses its tab), then the longest first. Each notebook's Run All is timed."""
    notebooks = lab_ui.Runner(browser, lab, _selected_notebooks(request.session),
                              first=[PLAYGROUND], keep_open=[PLAYGROUND], tabs=2,
                              timeout_ms=RUN_ALL_TIMEOUT_MS, viewport=VIEWPORT,
                              screenshots=ARTIFACTS)  # fmt: skip
    try:
        yield notebooks
    finally:
        notebooks.close()
        for name, result in notebooks.finished.items():
            print(f"Run All {name}: {result.seconds:.1f} s")


def _ran_cleanly(result) -> None:
    name, notebook = result.name, result.notebook
    assert lab_ui.error_outputs(notebook) == [], f"{name} shows an error (see its screenshot)"
    assert lab_ui.unexecuted_code_cells(notebook) == [], f"Run All stopped early in {name}"
    assert _figures_as_text(notebook) == [], f"{name}: figures shown as text, not drawn"
    assert "IProgress not found" not in result.text, f"{name}: tqdm could not draw its bar"
    for error in lab_ui.WIDGET_ERRORS:
        assert error not in result.text, f"{name} shows {error!r}"


def _image_outputs(notebook: dict) -> int:
    return sum("image/png" in output.get("data", {})
               for cell in notebook["cells"] for output in cell.get("outputs", []))  # fmt: skip


def _figures_as_text(notebook: dict) -> list[str]:
    """Figures that reached the page as their text repr only (``<Figure size 640x480 ...>``):
    what a matplotlib Figure displays as when no inline backend was ever activated."""
    found = []
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text = "".join(data.get("text/plain", ""))
            if text.startswith("<Figure size") and "image/png" not in data:
                found.append(f"cell {index}: {text}")
    return found


def _page_text(page) -> str:
    return page.locator(lab_ui.PANEL).inner_text()


@pytest.mark.skipif(not (lab_ui.NOTEBOOKS / PLAYGROUND).exists(), reason=f"no {PLAYGROUND}")
def test_playground_renders_and_answers_a_person(runner):
    result = runner.result(PLAYGROUND)
    page = runner.page(PLAYGROUND)
    try:
        _ran_cleanly(result)
        _a_person_uses_the_playground(page)
    finally:
        runner.release(PLAYGROUND)  # whole-notebook screenshot after the click


def _a_person_uses_the_playground(page) -> None:
    # (1) the panel rendered (no widget error: checked by _ran_cleanly), its controls are there
    slider = page.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text="λ (share of L_dist)")
    )
    train = page.get_by_role("button", name="Train N epochs")
    stop = page.get_by_role("button", name="Stop")
    expect = lab_ui.expect()
    expect(slider).to_have_count(1)
    expect(train).to_be_enabled()
    expect(stop).to_be_disabled()  # nothing runs
    expect(page.get_by_role("button", name="Reset")).to_be_enabled()
    panel = page.locator(f"{lab_ui.PANEL} .jupyter-widgets.widget-vbox").first
    live = page.locator(f"{lab_ui.PANEL} .widget-image")
    log = page.locator(f"{lab_ui.PANEL} .widget-html pre")
    expect(live).to_have_count(1)  # the scripted runs drew into the live view
    readout = slider.locator(".widget-readout")
    assert float(readout.inner_text()) == pytest.approx(0.25)  # where the notebook left it
    history_before = log.inner_text()
    assert "epoch 3: λ=0.25" in history_before and "epoch 4" not in history_before
    live.scroll_into_view_if_needed()
    panel.screenshot(path=ARTIFACTS / "playground-before.png")

    # (2) a person asks for 20 epochs, clicks Train, and drags λ to 0.50 while it trains
    epochs = page.locator(f"{lab_ui.PANEL} .widget-inline-hbox").filter(
        has=page.locator(".widget-label", has_text="N epochs")
    ).locator("input")  # fmt: skip
    epochs.fill("20")
    epochs.press("Enter")
    train.click()
    expect(stop).to_be_enabled(timeout=30_000)  # the run started, the kernel is free again
    status = page.locator(".widget-html", has_text=re.compile(r"training epoch \d+, step"))
    expect(status).to_contain_text("λ = 0.25", timeout=60_000)
    image_before = live.get_attribute("src")
    new_lam = 0.5
    dragged = lab_ui.drag_slider(page, slider, new_lam, minimum=0.0, maximum=1.0)
    assert dragged == pytest.approx(new_lam, abs=0.051), f"the mouse moved λ to {dragged}"
    expect(readout).to_have_text(f"{new_lam:.2f}")
    # the same run takes the new λ: a step reports it while Stop is still enabled (running)
    page.wait_for_function(
        """([lam]) => {
            const stop = [...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Stop');
            const text = [...document.querySelectorAll('.widget-html')].map(e => e.innerText).join(' ');
            return stop && !stop.disabled && /training epoch \\d+, step/.test(text)
                   && text.includes('λ = ' + lam);
        }""",
        arg=[f"{new_lam:.2f}"],
        timeout=60_000,
    )
    # an epoch that ran (part of it) at the new λ is printed, and the figure was redrawn
    expect(log).to_contain_text(re.compile(rf"λ=(0\.25→)?{new_lam:.2f}"), timeout=120_000)
    assert not stop.is_disabled(), "the run ended before the change could be seen in it"
    deadline = time.monotonic() + 60
    while live.get_attribute("src") == image_before:
        assert time.monotonic() < deadline, "the live figure did not change during the run"
        page.wait_for_timeout(200)
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", live.element_handle()), (
        "the new live figure is not displayed"
    )
    live.scroll_into_view_if_needed()
    panel.screenshot(path=ARTIFACTS / "playground-live-lambda.png")

    # (3) Stop: the run ends when the epoch in progress ends, every epoch so far is kept
    stop.click()
    expect(train).to_be_enabled(timeout=120_000)
    expect(stop).to_be_disabled()
    expect(page.locator(".widget-html", has_text="stopped after")).to_have_count(1)
    history_after = log.inner_text()
    assert history_after.startswith(history_before.rstrip("\n"))  # the earlier epochs are kept
    assert "epoch 4:" in history_after and "epoch 19:" not in history_after
    panel.screenshot(path=ARTIFACTS / "playground-after.png")
    assert not any(error in _page_text(page) for error in lab_ui.WIDGET_ERRORS)


@pytest.mark.parametrize("name", OTHERS)
def test_notebook_runs_and_shows_its_figures(runner, name):
    result = runner.result(name)
    _ran_cleanly(result)
    stored = _image_outputs(result.notebook)
    assert stored >= 1, f"{name} produced no figure"
    assert result.images_shown == stored, (
        f"{name}: {stored} figures in the outputs, {result.images_shown} displayed"
    )
