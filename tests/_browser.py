"""Helpers for tests/test_browser.py: a throw-away JupyterLab server and what a person does in it.

Why a helper module: the server's life cycle (free port, token, isolated settings, shutdown of
the server *and* its kernels) and the page actions (open a notebook, Run All, wait, read what is
shown) are plumbing; the test module then reads as the list of things a student would check.

Nothing here touches the user's Jupyter settings, kernels or the committed notebooks: the server
runs on a temporary copy of ``notebooks/`` with its own config, data, runtime and settings dirs.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

#: JupyterLab settings for the test server (written to its own user-settings dir):
#: no virtual scrolling, so every cell and output is in the DOM and can be checked;
#: no news/update pop-up over the screenshots.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

#: text a widget that failed to render leaves in the page (ipywidgets 7 and 8)
WIDGET_ERRORS = ("Error displaying widget", "Failed to load model class", "Loading widget...")


def copy_cleared(source: Path, folder: Path) -> Path:
    """Copy a notebook into ``folder`` without its stored outputs, so that every output the page
    shows later comes from the run the test made (the committed file is never touched)."""
    notebook = json.loads(Path(source).read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    notebook.get("metadata", {}).pop("widgets", None)  # stored widget state of the last run
    target = Path(folder) / Path(source).name
    target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False), encoding="utf-8")
    return target


def free_port() -> int:
    """A port nobody listens on now (the server is told not to try others: port_retries=0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """PIDs of every process below ``pid`` (kernels), read from /proc (no psutil needed)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class LabServer:
    """``jupyter lab`` from this Python environment on 127.0.0.1, a free port and a token.

    Args:
        root_dir: the folder the server shows (a temporary copy of the notebooks).
        home: a scratch folder for the server's config/data/runtime/settings dirs and its log.
        env: extra environment variables for the server and so for its kernels.
    """

    def __init__(self, root_dir: Path, home: Path, env: dict[str, str] | None = None):
        self.root_dir, self.home = Path(root_dir), Path(home)
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.home / "jupyterlab.log"
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None

    # -- life cycle ------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> LabServer:
        settings = self.home / "lab-settings"
        for name, value in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        env = dict(os.environ)
        for name in ("config", "data", "runtime"):
            (self.home / name).mkdir(parents=True, exist_ok=True)
        env.update(
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            JUPYTER_DATA_DIR=str(self.home / "data"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        env.update(self.extra_env)
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={self.home / 'workspaces'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=",
        ]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            command.append("--allow-root")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(command, cwd=self.root_dir, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}:\n"
                                   f"{self.log_tail()}")  # fmt: skip
            try:
                self.api("GET", "/api/status")
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Shut the server and its kernels down: politely, then by signal (also on failure)."""
        if self.process is None:
            return
        kernels = _descendants(self.process.pid)
        if self.process.poll() is None:
            try:
                self.api("POST", "/api/shutdown")  # also shuts its kernels down
                self.process.wait(20)
            except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
                pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        for pid in kernels:  # a kernel left behind by a crash of the server
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()
        self.process = None

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- REST ------------------------------------------------------------------------------
    def api(self, method: str, path: str, timeout: float = 10.0):
        request = urllib.request.Request(
            f"{self.base}{path}", method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method in ("POST", "PUT") else None,
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def notebook(self, name: str) -> dict:
        """The notebook as saved on the server (outputs included)."""
        return self.api("GET", f"/api/contents/{name}?content=1")["content"]

    def sessions(self, name: str | None = None) -> list[dict]:
        """The server's notebook sessions (those of notebook ``name`` only, if given)."""
        return [s for s in self.api("GET", "/api/sessions") if name in (None, s.get("name"))]

    def shutdown_kernels(self, name: str | None = None) -> None:
        """Free the CPU and memory of a notebook already checked (None: of every notebook)."""
        for session in self.sessions(name):
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def url(self, path: str) -> str:
        return f"{self.base}{path}?token={self.token}"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"


# -- what a person does in the page --------------------------------------------------------
def open_lab(pages, server: LabServer, timeout_ms: float = 120_000) -> None:
    """Load JupyterLab in each page, each in a fresh workspace of its own (loaded side by
    side), and wait for their file browsers."""
    for index, page in enumerate(pages):
        page.goto(server.url(f"/lab/workspaces/browser-test-{index}") + "&reset",
                  timeout=timeout_ms, wait_until="commit")  # fmt: skip
    for page in pages:
        page.locator(".jp-DirListing-item").first.wait_for(timeout=timeout_ms)


def open_notebook(page, server: LabServer, name: str, timeout_ms: float = 120_000) -> None:
    """Double-click ``name`` in the file browser (no reload of the app between notebooks) and
    wait until its kernel has started and is idle."""
    page.locator(".jp-DirListing-item", has_text=name).dblclick()
    page.locator(f"{PANEL} .jp-Notebook").wait_for(timeout=timeout_ms)
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    assert tab.first.inner_text() == name, f"opened {tab.first.inner_text()!r}, not {name!r}"
    wait_kernel_idle(page, server, name, timeout_ms)


def close_notebook(page, server: LabServer, name: str) -> threading.Thread:
    """Shut the notebook's kernel down and close every tab of the page, discarding unsaved
    changes (the notebooks are temporary copies), so the next notebook gets the CPU.

    The shutdown (a second or two of waiting for the kernel to exit) runs in a thread, beside
    the closing of the tabs; the thread is returned, to be joined."""
    shutdown = threading.Thread(target=server.shutdown_kernels, args=(name,), daemon=True)
    shutdown.start()
    _close_tabs(page)
    return shutdown


def _close_tabs(page) -> None:
    if not page.locator(".jp-NotebookPanel").count():
        return
    menu(page, "File", "Close All Tabs")
    dialog = page.locator(".jp-Dialog")
    for _ in range(20):
        if not page.locator(".jp-NotebookPanel").count():
            return
        if dialog.count():
            dialog.get_by_role("button", name=re.compile("Discard|Don.t Save|Close")).first.click()
        page.wait_for_timeout(300)


#: the notebook panel in front (each page shows one notebook at a time)
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def kernel_state(page, server: LabServer, name: str) -> str:
    """What the page says about the notebook's kernel, and what the server says: ``"idle"``
    when both do."""
    shown = page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator")
    status = shown.first.get_attribute("data-status") if shown.count() else None
    bar = " ".join(page.locator(".jp-StatusBar-Widget").all_inner_texts())
    states = {s["kernel"]["execution_state"] for s in server.sessions(name) if s.get("kernel")}
    if status == "idle" and states == {"idle"} and "| Idle" in bar:
        return "idle"
    return f"page {status!r}, status bar {bar!r}, server {sorted(states)}"


def wait_kernel_idle(page, server: LabServer, name: str, timeout_ms: float) -> None:
    """Wait until the page shows a started kernel that is idle (a fresh page shows "idle"
    before the kernel has even started, so the server and the status bar are asked too)."""
    deadline = time.monotonic() + timeout_ms / 1000
    state = kernel_state(page, server, name)
    while state != "idle":
        if time.monotonic() > deadline:
            raise TimeoutError(f"the kernel of {name} was not idle within "
                               f"{timeout_ms / 1000:.0f} s: {state}")  # fmt: skip
        page.wait_for_timeout(300)
        state = kernel_state(page, server, name)


def menu(page, top: str, item: str) -> None:
    """Click ``top`` in the menu bar, then the entry ``item`` (exact label)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def prompts(page) -> list[str]:
    """The execution prompts of the code cells, e.g. ``['[1]:', '[*]:', '[ ]:']``."""
    return page.locator(f"{PANEL} .jp-CodeCell .jp-InputPrompt").all_inner_texts()


def start_run_all(page, timeout_ms: float = 30_000) -> None:
    """Run > Run All Cells, and wait until the cells show they are queued (``[*]``).

    The notebook must start without outputs (:func:`copy_cleared`): the cells show ``[*]`` once
    queued, then a number each as they finish; an error stops the run (the rest show ``[ ]``).
    """
    menu(page, "Run", "Run All Cells")
    deadline = time.monotonic() + timeout_ms / 1000
    while not any("*" in t or re.search(r"\d", t) for t in prompts(page)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"Run All did not start: prompts {prompts(page)}")
        page.wait_for_timeout(200)


def save(page, server: LabServer, name: str, timeout_s: float = 30.0) -> dict:
    """File > Save Notebook, then the saved notebook as the server holds it."""
    before = server.api("GET", f"/api/contents/{name}?content=0")["last_modified"]
    menu(page, "File", "Save Notebook")  # the label when a notebook is in front
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.api("GET", f"/api/contents/{name}?content=0")["last_modified"] != before:
            return server.notebook(name)
        time.sleep(0.3)
    raise TimeoutError(f"{name} was not saved within {timeout_s:.0f} s")


def error_outputs(notebook: dict) -> list[str]:
    """``"cell N: EName: value"`` for every error output of a saved notebook."""
    errors = []
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(f"cell {index}: {output['ename']}: {output['evalue']}")
    return errors


def unexecuted_code_cells(notebook: dict) -> list[int]:
    return [i for i, cell in enumerate(notebook["cells"])
            if cell["cell_type"] == "code" and cell["source"].strip()
            and cell.get("execution_count") is None]  # fmt: skip


def screenshot_notebook(page, path: Path, max_height: int = 15_000) -> None:
    """A screenshot of the whole notebook in front, top to bottom (the tab is made as tall as
    the notebook for the shot, at most ``max_height`` pixels, then given its size back)."""
    size = page.viewport_size
    scroller = f"""(document.querySelector('{PANEL} .jp-WindowedPanel-outer')
                    || document.querySelector('{PANEL} .jp-Notebook'))"""
    content = page.evaluate(f"() => {{ const s = {scroller}; "
                            "return s ? s.scrollHeight - s.clientHeight : 0; }")  # fmt: skip
    height = min(max_height, size["height"] + int(content))
    try:
        page.set_viewport_size({"width": size["width"], "height": height})
        page.wait_for_timeout(300)  # let JupyterLab lay the taller panel out
        page.evaluate(f"() => {{ const s = {scroller}; if (s) s.scrollTop = 0; }}")
        page.wait_for_timeout(200)
        page.screenshot(path=path)
    finally:
        page.set_viewport_size(size)


def displayed_images(page) -> int:
    """How many output images the page shows, decoded (non-zero natural size)."""
    return page.evaluate(
        f"""() => [...document.querySelectorAll('{PANEL} .jp-OutputArea-output img')]
            .filter(img => img.complete && img.naturalWidth > 0).length"""
    )


def drag_slider(page, slider, value: float, *, minimum: float, maximum: float) -> float:
    """Drag an ipywidgets slider's handle with the mouse to ``value``, as a person would: press
    on the handle, move along the track, release (``continuous_update=False`` sliders send
    their value on release). If the pixel grid lands one step off, the arrow keys (which the
    focused handle accepts, like for any slider) finish the job. Returns the value the slider
    showed right after the mouse was released."""
    slider.scroll_into_view_if_needed()
    # ipywidgets 8 draws sliders with noUiSlider, ipywidgets 7 with jQuery UI
    handle = slider.locator(".noUi-handle, .ui-slider-handle")
    track = slider.locator(".noUi-base, .ui-slider").first.bounding_box()
    box = handle.bounding_box()
    start_x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    target_x = track["x"] + (value - minimum) / (maximum - minimum) * track["width"]
    page.mouse.move(start_x, y)
    page.mouse.down()
    page.mouse.move(target_x, y, steps=12)
    page.mouse.up()
    readout = slider.locator(".widget-readout")
    dragged = float(readout.inner_text())
    for _ in range(5):
        shown = float(readout.inner_text())
        if abs(shown - value) < 1e-9:
            break
        handle.press("ArrowRight" if shown < value else "ArrowLeft")
        page.wait_for_timeout(100)
    return dragged


def expect():
    """Playwright's ``expect`` (imported late: this module must import without Playwright)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def stored_seconds(path: Path) -> float:
    """How long the committed run of a notebook took, from the execution times nbconvert/JupyterLab
    store in each cell's metadata (``inf`` when none are stored: unknown, assume long)."""
    from datetime import datetime

    total, found = 0.0, False
    for cell in json.loads(Path(path).read_text(encoding="utf-8"))["cells"]:
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "iopub.status.idle" in timing:
            began, ended = (datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                            for k in ("iopub.execute_input", "iopub.status.idle"))  # fmt: skip
            total += (ended - began).total_seconds()
            found = True
    return total if found else float("inf")


class Finished:
    """What a person saw when a notebook's Run All had ended: the notebook as saved, how many
    output images the page showed decoded, the page's text, and the Run All seconds; or the
    error that stopped the run (re-raised when a test asks for the notebook)."""

    def __init__(self, name: str, seconds: float = float("nan"), notebook: dict | None = None,
                 images_shown: int = 0, text: str = "", error: BaseException | None = None):  # fmt: skip
        self.name, self.seconds, self.notebook = name, seconds, notebook
        self.images_shown, self.text, self.error = images_shown, text, error


class Runner:
    """Runs notebooks in a few JupyterLab tabs at once, the longest first.

    A student's view is the same whichever tab a notebook runs in; on a 2-core machine two
    one-thread kernels side by side finish the sequence in about half the time of one, and
    starting the longest first leaves no long notebook running alone at the end. When a
    notebook ends, what the page shows is read off at once (:class:`Finished`) and the tab is
    given to the next notebook, so the tests may ask for the notebooks in any order; the
    notebooks in ``keep_open`` keep their tab until :meth:`release` (a test interacts with them).

    Args:
        browser: a Playwright Browser.
        server: the :class:`LabServer`.
        paths: the notebooks to run (committed paths: their stored run times set the order).
        first: notebooks to start before all others (e.g. the one the first test needs).
        keep_open: notebooks whose tab stays open after Run All, for the test to use.
        tabs: how many notebooks may run at the same time.
        timeout_ms: limit for one notebook's Run All, from the moment it started.
        viewport: the tabs' size.
        screenshots: folder for a whole-notebook screenshot of each at its end.
    """

    def __init__(self, browser, server: LabServer, paths: list[Path], *, first=(), keep_open=(),
                 tabs: int = 2, timeout_ms: float = 300_000, viewport: dict | None = None,
                 screenshots: Path | None = None):  # fmt: skip
        self.server, self.timeout_ms, self.screenshots = server, timeout_ms, screenshots
        self.keep_open = set(keep_open)
        longest_first = sorted(paths, key=stored_seconds, reverse=True)
        self.queue = [p.name for p in paths if p.name in first]
        self.queue += [p.name for p in longest_first if p.name not in self.queue]
        self.contexts = [browser.new_context(viewport=viewport) for _ in range(max(1, tabs))]
        self.pages = [context.new_page() for context in self.contexts]
        open_lab(self.pages, server)
        self.free = list(self.pages)
        self.running: dict[str, tuple] = {}  # name -> (page, monotonic start)
        self.open: dict[str, object] = {}  # kept-open name -> page
        self.finished: dict[str, Finished] = {}
        self.shutdowns: list[threading.Thread] = []

    # -- scheduling ------------------------------------------------------------------------
    def _start(self, name: str) -> None:
        self.queue.remove(name)
        page = self.free.pop(0)
        try:
            open_notebook(page, self.server, name)
            start_run_all(page)
        except Exception as error:  # noqa: BLE001 (kept for the test that asks for it)
            self.finished[name] = Finished(name, error=error)
            self._close(page, name)
            return
        self.running[name] = (page, time.monotonic())

    def _collect(self, name: str) -> None:
        """Run All of ``name`` has ended (or timed out): read what the page shows."""
        page, started = self.running.pop(name)
        try:
            wait_kernel_idle(page, self.server, name, 60_000)
            seconds = time.monotonic() - started
            notebook = save(page, self.server, name)
            result = Finished(name, seconds, notebook, displayed_images(page),
                              page.locator(PANEL).inner_text())  # fmt: skip
        except Exception as error:  # noqa: BLE001
            result = Finished(name, time.monotonic() - started, error=error)
        self.finished[name] = result
        if name in self.keep_open and result.error is None:
            self.open[name] = page
        else:
            self._close(page, name)

    def _close(self, page, name: str) -> None:
        try:
            if self.screenshots is not None:
                screenshot_notebook(page, self.screenshots / f"{Path(name).stem}.png")
        finally:
            self.shutdowns.append(close_notebook(page, self.server, name))
            self.free.append(page)

    def _step(self) -> None:
        """Start what can start, collect what has ended or timed out."""
        while self.free and self.queue:
            self._start(self.queue[0])
        for name, (page, started) in list(self.running.items()):
            timed_out = time.monotonic() - started > self.timeout_ms / 1000
            if timed_out:
                self.running.pop(name)
                error = TimeoutError(f"Run All of {name} did not end within "
                                     f"{self.timeout_ms / 1000:.0f} s: prompts {prompts(page)}")  # fmt: skip
                self.finished[name] = Finished(name, error=error)
                self._close(page, name)
            elif not any("*" in t for t in prompts(page)):
                self._collect(name)

    def result(self, name: str) -> Finished:
        """Wait until ``name`` has run; re-raise what stopped it. The order of the queue is kept
        (longest first), whatever order the tests ask in: every tab that frees takes the next
        notebook, so the one asked for runs in its turn."""
        while name not in self.finished:
            if not self.running and not self.free:
                raise RuntimeError(f"no tab free to run {name}: release the kept-open notebooks")
            if name not in self.running and name not in self.queue:
                raise KeyError(f"{name} is not one of the notebooks given to the Runner")
            self._step()
            (
                next(iter(self.running.values()))[0] if self.running else self.pages[0]
            ).wait_for_timeout(500)
        result = self.finished[name]
        if result.error is not None:
            raise result.error
        return result

    def page(self, name: str):
        """The tab of a kept-open notebook."""
        return self.open[name]

    def release(self, name: str) -> None:
        """Give a kept-open notebook's tab back (screenshot, kernel shut down, tab closed)."""
        page = self.open.pop(name, None)
        if page is not None:
            self._close(page, name)

    def close(self) -> None:
        for name in list(self.open):
            self.release(name)
        for thread in self.shutdowns:
            thread.join(30)
        for context in self.contexts:
            context.close()


# -- a static site (tests/test_site.py) ------------------------------------------------------
def find_chromium() -> str | None:
    """The system Chromium's path (Playwright's own browser download is not used), or None."""
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class StaticServer:
    """A folder served over HTTP on 127.0.0.1 and a free port, in a thread (as a web host
    would serve a built site: some of a theme's scripts refuse file:// addresses)."""

    def __init__(self, folder: Path):
        import functools
        import http.server

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # no line per request on stderr
                pass

        handler = functools.partial(Quiet, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StaticServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
