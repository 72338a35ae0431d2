"""Real-browser fixtures: one ``jupyter lab`` server and one headless Chromium per session.

    jupyter_lab   the server (session): root folder, store folder, URL and token
    browser       headless Chromium through Python playwright (session)
    lab_page      a fresh browser page with helpers to open notebooks and run cells

The server runs on 127.0.0.1 on a free port with a token, its config and runtime folders in
a temporary folder (so the user's settings and extensions config never leak in), and
``NBTRACK_STORE`` pointing into that folder, so every kernel it starts tracks into a fresh
store. Chromium is the system one (``/usr/bin/chromium`` or ``$NBTRACK_CHROMIUM``); nothing
is downloaded. A missing Chromium or playwright fails these tests with what to install: a
browser test that silently skips proves nothing.

Screenshots go to ``test-artifacts/`` (ignored by git).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("NBTRACK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: Flags checked on this project's machines (docs: LABEXTENSION.md).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LAB_START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class JupyterLab:
    """A running ``jupyter lab``: where it serves, what it serves, where kernels track."""

    url: str
    token: str
    root: Path
    store: Path
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def lab_url(self, path: str = "") -> str:
        """The URL that opens ``path`` (relative to the root) in a clean workspace."""
        tree = f"/tree/{path}" if path else ""
        return f"{self.url}lab{tree}?reset&token={self.token}"

    def write_notebook(self, name: str, sources: list[str]) -> Path:
        """Write a notebook of code cells into the server's root folder."""
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        path = self.root / name
        nbformat.write(nb, path)
        return path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """A ``jupyter lab`` server for the whole session (about 5 s to start)."""
    base = tmp_path_factory.mktemp("jupyter-lab")
    root, config, runtime, store = (base / n for n in ("root", "config", "runtime", "store"))
    for folder in (root, config, runtime):
        folder.mkdir()
    settings = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No "Would you like to get notified about news?" toast over the notebook.
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    # Start the notebook's kernel on open instead of asking in a "Select Kernel" dialog.
    tracker = config / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True})
    )
    port, token = _free_port(), "nbtrack-browser-tests"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "NBTRACK_STORE": str(store),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("JUPYTER_PATH", None)
    log = base / "jupyter-lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--allow-root",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
            ],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    lab = JupyterLab(
        url=f"http://127.0.0.1:{port}/",
        token=token,
        root=root,
        store=store,
        log=log,
        process=process,
    )
    deadline = time.monotonic() + LAB_START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited with code {process.returncode}:\n{lab.log_tail()}")
        try:
            with urllib.request.urlopen(f"{lab.url}api/status?token={token}", timeout=2):
                break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                process.terminate()
                pytest.fail(
                    f"jupyter lab did not answer within {LAB_START_TIMEOUT:.0f} s:\n"
                    f"{lab.log_tail()}"
                )
            time.sleep(0.25)
    try:
        yield lab
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _SharedChromium:
    """One Chromium for the session, started on first use.

    Playwright's sync API allows one running instance per thread, so the shared browser is
    stopped before a test that does not use it (such a test may start playwright itself) and
    started again, if needed, for the next one that does.
    """

    def __init__(self) -> None:
        self._playwright: Any = None
        self._browser: Any = None

    def get(self) -> Any:
        if self._browser is None:
            if not Path(CHROMIUM).exists():
                pytest.fail(
                    f"Chromium not found at {CHROMIUM}: install it (apt-get install -y "
                    "--no-install-recommends chromium fonts-dejavu-core) or set "
                    "NBTRACK_CHROMIUM; browser tests never skip silently",
                    pytrace=False,
                )
            try:
                from playwright.sync_api import sync_playwright
            except ImportError:
                pytest.fail(
                    "Python playwright is missing: pip install playwright (no browser "
                    "download is needed: the system Chromium is used)",
                    pytrace=False,
                )
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS
            )
        return self._browser

    def stop(self) -> None:
        if self._browser is not None:
            try:
                self._browser.close()
            finally:
                self._browser = None
                self._playwright.stop()
                self._playwright = None


_CHROMIUM = _SharedChromium()
#: Fixtures whose tests use the shared Chromium.
_USES_CHROMIUM = {"browser", "lab_page"}


@pytest.fixture
def browser() -> Any:
    """Headless system Chromium (a playwright ``Browser``), shared by the session's tests."""
    return _CHROMIUM.get()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield  # first the test's own fixtures (pages, contexts) are torn down
    if nextitem is None or not _USES_CHROMIUM & set(getattr(nextitem, "fixturenames", ())):
        _CHROMIUM.stop()


class LabPage:
    """A browser page on the lab, with the few JupyterLab moves tests need."""

    def __init__(self, page: Any, lab: JupyterLab) -> None:
        self.page = page
        self.lab = lab

    def open_notebook(self, name: str) -> None:
        """Open ``name`` in a clean workspace and wait until its kernel is idle."""
        page = self.page
        page.goto(self.lab.lab_url(name))
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
        self.wait_for_idle_kernel()

    def accept_dialogs(self) -> None:
        """Accept a dialog (such as "Select Kernel") if one is open."""
        dialog = self.page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.first.click()

    def wait_for_idle_kernel(self, timeout: float = 60.0) -> None:
        """Wait until the notebook's kernel is started and idle (the toolbar says so)."""
        self.page.wait_for_function(
            "() => { const s = document.querySelector("
            "'.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');"
            " const name = document.querySelector('.jp-NotebookPanel .jp-KernelName');"
            " return s && s.getAttribute('data-status') === 'idle' && name"
            " && !/No Kernel|Select Kernel/.test(name.textContent); }",
            timeout=timeout * 1000,
        )

    def run_all_cells(self) -> None:
        """Run menu → Run All Cells."""
        page = self.page
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

    def wait_until_cells_ran(self, count: int, timeout: float = 90.0) -> None:
        """Wait until the first ``count`` cells have an execution number and none is busy."""
        self.page.wait_for_function(
            """(count) => {
                const prompts = [...document.querySelectorAll(
                    '.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')];
                const done = prompts.slice(0, count)
                    .filter(p => /\\[\\d+\\]/.test(p.textContent)).length;
                return done >= count && !prompts.some(p => p.textContent.includes('*'));
            }""",
            arg=count,
            timeout=timeout * 1000,
        )

    def cell_output(self, index: int) -> Any:
        """The output area of code cell ``index`` (from 0)."""
        return (
            self.page.locator(".jp-NotebookPanel .jp-CodeCell")
            .nth(index)
            .locator(".jp-Cell-outputArea")
        )

    def screenshot(self, name: str, locator: Any = None) -> Path:
        """Save a PNG under ``test-artifacts/`` (the page, or just ``locator``)."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        (locator or self.page).screenshot(path=str(path))
        return path


@pytest.fixture
def lab_page(browser: Any, jupyter_lab: JupyterLab) -> Iterator[LabPage]:
    """A fresh page (its own browser context) on the session's lab."""
    context = browser.new_context(viewport={"width": 1500, "height": 2200})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield LabPage(page, jupyter_lab)
    finally:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failed browser test, save what the page showed as test-artifacts/FAILED-<test>.png."""
    outcome = yield
    report = outcome.get_result()
    lab_page = getattr(item, "funcargs", {}).get("lab_page")
    if report.when == "call" and report.failed and isinstance(lab_page, LabPage):
        try:
            lab_page.screenshot(f"FAILED-{item.name}.png")
        except Exception:  # the page may be gone; the failure itself is what matters
            pass
