"""Projects in the Runs panel, in a real browser: headless Chromium against a real
``jupyter lab`` serving the freshly built extension.

A notebook whose tracked cells name two projects (``%%track --project vision`` / ``nlp``)
and one that names none is run from the browser. The panel shows each run's project as a
chip and a project select beside the filter box; choosing ``vision`` leaves only its runs,
the choice survives a reload, and a run's details say its project and who ran it.
Screenshots go to ``test-artifacts/projects/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labserver import lab_folders, serve_lab, write_notebook
from playwright import sync_api

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "projects"
TOKEN = "nbtrack-projects-browser-test"
USER = "ana@example.org"
CELLS = [
    "%load_ext nbtrack",
    "%%track --name baseline\ntrack.log(acc=0.5)",
    "%%track --name cnn --project vision\ntrack.log(acc=0.91)",
    "%%track --name bert --project nlp\ntrack.log(acc=0.88)",
    "%%track --name vit --project vision\ntrack.log(acc=0.93)",
]


# pytest-jupyter (loaded by tests/test_server.py) drives an asyncio loop of this thread in
# two autouse fixtures; playwright's sync API runs its own. Neither is needed here.
@pytest.fixture
def jp_asyncio_loop() -> Iterator[None]:
    yield None


@pytest.fixture
def jp_server_cleanup() -> Iterator[None]:
    yield None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A ``jupyter lab`` whose root holds ``team/train.ipynb`` (its cells not run yet)."""
    folders = lab_folders(tmp_path_factory.mktemp("nbtrack-projects-lab"), auto_start_kernel=True)
    write_notebook(folders.root / "team" / "train.ipynb", CELLS)
    # No NBTRACK_PROJECT and no nbtrack.toml: the baseline run has no project.
    # NBTRACK_USER: the kernel inherits it (who ran each run).
    with serve_lab(folders, TOKEN, ARTIFACTS, {"NBTRACK_USER": USER}) as url:
        yield {"url": url}


def shot(target: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _open(page: Any, lab: dict[str, Any]) -> Any:
    """Open the notebook in a clean workspace and the Runs panel; returns the panel."""
    page.goto(f"{lab['url']}/lab/tree/team/train.ipynb?reset&token={TOKEN}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    tab = page.locator(".jp-SideBar [data-id='nbtrack-runs-panel']")
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
    return page.locator("#nbtrack-runs-panel")


def _run_all(page: Any, tries: int = 3) -> None:
    """Run menu → Run All Cells, again when no cell started within 10 s.

    Right after a fresh kernel reports idle, JupyterLab sometimes drops a Run All (the
    cells keep their empty ``[ ]``, nothing reaches the kernel); a user would click again.
    """
    started = (
        "() => [...document.querySelectorAll('.jp-NotebookPanel .jp-InputArea-prompt')]"
        ".some(p => /\\[(\\d+|\\*)\\]/.test(p.textContent))"
    )
    for attempt in range(tries):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(started, timeout=10_000)
            return
        except sync_api.TimeoutError:
            if attempt == tries - 1:
                raise


def test_project_chips_and_the_project_select(browser: Any, lab: dict[str, Any]) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        panel = _open(page, lab)
        select = panel.locator(".nbtrack-project-filter")
        sync_api.expect(panel.locator(".nbtrack-message")).to_contain_text("No runs yet")
        sync_api.expect(select).to_be_hidden()  # nothing names a project yet

        page.wait_for_selector(
            ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']",
            timeout=60_000,
        )
        _run_all(page)
        runs = panel.locator(".nbtrack-run")
        try:
            sync_api.expect(runs).to_have_count(4, timeout=60_000)
        except AssertionError as exc:
            # Say what the cells printed (a failed %load_ext, say), not only "0 runs".
            shot(page, "FAILED-no-runs")
            outputs = page.locator(".jp-NotebookPanel .jp-Cell-outputArea").all_inner_texts()
            raise AssertionError(f"{exc}\ncell outputs: {outputs}") from None

        # Each run with a project wears it as a chip; the baseline has none.
        chips = {
            "#4": "vision",
            "#3": "nlp",
            "#2": "vision",
        }
        for number, project in chips.items():
            row = runs.filter(has_text=number)
            sync_api.expect(row.locator(".nbtrack-project")).to_have_text(project)
        sync_api.expect(runs.filter(has_text="baseline").locator(".nbtrack-project")).to_have_count(
            0
        )
        sync_api.expect(select).to_be_visible()
        options = select.locator("option")
        sync_api.expect(options).to_have_text(["All projects", "nlp", "vision", "No project"])
        sync_api.expect(select).to_have_value("")
        shot(panel, "01-chips-all-projects")

        select.select_option("vision")
        sync_api.expect(runs).to_have_count(2)
        sync_api.expect(runs.nth(0)).to_contain_text("vit")  # still newest first
        sync_api.expect(runs.nth(1)).to_contain_text("cnn")
        # The text filter narrows within the project, and says where it looked.
        panel.locator(".nbtrack-filter").fill("bert")
        sync_api.expect(panel.locator(".nbtrack-empty")).to_have_text(
            "No run in project vision matches “bert”."
        )
        panel.locator(".nbtrack-filter").fill("")
        sync_api.expect(runs).to_have_count(2)
        shot(panel, "02-project-vision")

        select.select_option("(none)")
        sync_api.expect(runs).to_have_count(1)
        sync_api.expect(runs.nth(0)).to_contain_text("baseline")
        select.select_option("vision")

        # The choice outlives a reload of the page.
        panel = _open(page, lab)
        runs = panel.locator(".nbtrack-run")
        sync_api.expect(panel.locator(".nbtrack-project-filter")).to_have_value("vision")
        sync_api.expect(runs).to_have_count(2)

        # A run's details say its project and who ran it.
        runs.filter(has_text="cnn").click()
        details = panel.locator(".nbtrack-details")
        sync_api.expect(details).to_contain_text("#2 cnn")
        sync_api.expect(details.locator("tr:has(th:text-is('project')) td")).to_have_text("vision")
        sync_api.expect(details.locator("tr:has(th:text-is('user')) td")).to_have_text(USER)
        shot(panel, "03-details-project-user")
        assert not errors, errors
    finally:
        context.close()
