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

    def shutdown_kernels(self) -> None:
        """Free the CPU and memory of the notebooks already checked."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def url(self, path: str) -> str:
        return f"{self.base}{path}?token={self.token}"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"


# -- what a person does in the page --------------------------------------------------------
def open_lab(page, server: LabServer, timeout_ms: float = 120_000) -> None:
    """Load JupyterLab (a fresh workspace) and wait for its file browser."""
    page.goto(server.url("/lab") + "&reset", timeout=timeout_ms)
    page.locator(".jp-DirListing-item").first.wait_for(timeout=timeout_ms)


def open_notebook(page, server: LabServer, name: str, timeout_ms: float = 120_000) -> None:
    """Double-click ``name`` in the file browser (no reload of the app between notebooks) and
    wait until its kernel has started and is idle."""
    page.locator(".jp-DirListing-item", has_text=name).dblclick()
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator(".jp-Notebook").wait_for(timeout=timeout_ms)
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    assert tab.first.inner_text() == name, f"opened {tab.first.inner_text()!r}, not {name!r}"
    wait_kernel_idle(page, server, timeout_ms)


def close_everything(page, server: LabServer) -> None:
    """Shut the kernels down and close every tab, discarding unsaved changes (the notebooks are
    temporary copies), so that the next notebook starts alone with the whole CPU."""
    server.shutdown_kernels()
    if not page.locator(".jp-NotebookPanel").count():
        return
    menu(page, "File", "Close All Tabs")
    dialog = page.locator(".jp-Dialog")
    for _ in range(10):
        if not page.locator(".jp-NotebookPanel").count():
            return
        if dialog.count():
            dialog.get_by_role("button", name=re.compile("Discard|Don.t Save|Close")).first.click()
        page.wait_for_timeout(300)


def kernel_state(page, server: LabServer) -> str:
    """What the page says about the kernel, and what the server says: ``"idle"`` when both do."""
    shown = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator")
    status = shown.first.get_attribute("data-status") if shown.count() else None
    bar = " ".join(page.locator(".jp-StatusBar-Widget").all_inner_texts())
    sessions = server.api("GET", "/api/sessions")
    states = {s["kernel"]["execution_state"] for s in sessions if s.get("kernel")}
    if status == "idle" and states == {"idle"} and "| Idle" in bar:
        return "idle"
    return f"page {status!r}, status bar {bar!r}, server {sorted(states)}"


def wait_kernel_idle(page, server: LabServer, timeout_ms: float) -> None:
    """Wait until the page shows a started kernel that is idle (a fresh page shows "idle"
    before the kernel has even started, so the server and the status bar are asked too)."""
    deadline = time.monotonic() + timeout_ms / 1000
    state = kernel_state(page, server)
    while state != "idle":
        if time.monotonic() > deadline:
            raise TimeoutError(f"the kernel was not idle within {timeout_ms / 1000:.0f} s: {state}")
        page.wait_for_timeout(300)
        state = kernel_state(page, server)


def menu(page, top: str, item: str) -> None:
    """Click ``top`` in the menu bar, then the entry ``item`` (exact label)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def prompts(page) -> list[str]:
    """The execution prompts of the code cells, e.g. ``['[1]:', '[*]:', '[ ]:']``."""
    return page.locator(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt"
    ).all_inner_texts()


def run_all(page, server: LabServer, timeout_ms: float) -> float:
    """Run > Run All Cells, then wait until no cell is queued or running; returns the seconds.

    The notebook must start without outputs (:func:`copy_cleared`): the cells show ``[*]`` once
    queued, then a number each as they finish; an error stops the run (the rest show ``[ ]``).
    """
    start = time.monotonic()
    deadline = start + timeout_ms / 1000
    menu(page, "Run", "Run All Cells")
    started = False
    while time.monotonic() < deadline:
        texts = prompts(page)
        busy = any("*" in t for t in texts)
        started = started or busy or any(re.search(r"\d", t) for t in texts)
        if started and not busy:
            break
        page.wait_for_timeout(500)
    else:
        raise TimeoutError(f"Run All did not finish within {timeout_ms / 1000:.0f} s: "
                           f"prompts {prompts(page)}")  # fmt: skip
    wait_kernel_idle(page, server, max(1.0, (deadline - time.monotonic()) * 1000))
    return time.monotonic() - start


def save(page, server: LabServer, name: str, timeout_s: float = 30.0) -> dict:
    """File > Save Notebook, then the saved notebook as the server holds it."""
    before = server.api("GET", f"/api/contents/{name}?content=0")["last_modified"]
    menu(page, "File", "Save Notebook")
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


def displayed_images(page) -> int:
    """How many output images the page shows, decoded (non-zero natural size)."""
    return page.evaluate(
        """() => [...document.querySelectorAll(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img')]
            .filter(img => img.complete && img.naturalWidth > 0).length"""
    )


def drag_slider(page, slider, value: float, *, minimum: float, maximum: float) -> float:
    """Drag an ipywidgets slider's handle with the mouse to ``value``, as a person would: press
    on the handle, move along the track, release (``continuous_update=False`` sliders send
    their value on release). If the pixel grid lands one step off, the arrow keys (which the
    focused handle accepts, like for any slider) finish the job. Returns the value the slider
    showed right after the mouse was released."""
    slider.scroll_into_view_if_needed()
    handle = slider.locator(".noUi-handle")
    track = slider.locator(".noUi-base").bounding_box()
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
