"""The JupyterLab extension in a real browser: headless Chromium against a real ``jupyter lab``.

Opens a notebook, runs its tracked cells, and checks what a user sees: the Runs panel lists
the runs with their metrics (and a running run live), each ``%%track`` cell has a badge that
opens its run, two ticked runs show their diff, the filter box filters, a notebook with a
corrupt store says so in words, the compare command inserts its cell, and the export command
writes a script that runs. Screenshots go to ``test-artifacts/labextension/``.

Skipped when Chromium, playwright or the built extension is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "labextension"
TOKEN = "nbtrack-browser-test"

# Missing prerequisites fail loudly: CI installs chromium and builds the extension.
assert Path(CHROMIUM).exists(), "no chromium: apt-get install chromium (tests/run_all.sh does)"
from labserver import lab_folders, serve_lab, write_notebook  # noqa: E402
from playwright import sync_api  # noqa: E402

TRACKED_1 = "%%track --name demo\nlr = 0.1\ntrack.log(acc=0.9, loss=0.1)"
TRACKED_2 = "%%track --name demo\nlr = 0.2\ntrack.log(acc=0.95, loss=0.05)"
SLOW = "%%track --name slow\nimport time\ntime.sleep(8)\ntrack.log(acc=1.0)"


# pytest-jupyter (loaded by tests/test_server.py) has two autouse fixtures that drive an
# asyncio loop of this thread; playwright's sync API runs its own loop here. Neither is
# needed by a test that talks to a separate `jupyter lab` process, so they are switched off.
@pytest.fixture
def jp_asyncio_loop():
    yield None


@pytest.fixture
def jp_server_cleanup():
    yield None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A ``jupyter lab`` on 127.0.0.1 serving a temporary root, with nbtrack enabled."""
    folders = lab_folders(tmp_path_factory.mktemp("nbtrack-lab"))
    root = folders.root
    write_notebook(
        root / "exp" / "train.ipynb",
        ["%load_ext nbtrack", TRACKED_1, TRACKED_2, "print('untracked')"],
    )
    write_notebook(root / "exp" / "slow.ipynb", ["%load_ext nbtrack", SLOW])
    write_notebook(root / "bad" / "broken.ipynb", ["%load_ext nbtrack"])
    (root / "bad" / ".nbtrack").mkdir()
    (root / "bad" / ".nbtrack" / "nbtrack.db").write_bytes(b"not a database " * 200)
    with serve_lab(folders, TOKEN, ARTIFACTS) as url:
        yield {"url": url, "root": root, "log": folders.base / "lab.log"}


@pytest.fixture(scope="module")
def page(lab: dict) -> Iterator:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        context = browser.new_context(viewport={"width": 1500, "height": 950})
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        console: list[str] = []
        pg.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
        pg.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
        try:
            yield pg
        finally:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "console.log").write_text("\n".join(console))
            browser.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def open_notebook(page, lab: dict, path: str) -> None:
    page.goto(f"{lab['url']}/lab/tree/{path}?reset&token={TOKEN}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    select = page.locator(".jp-Dialog button.jp-mod-accept")
    try:
        select.wait_for(timeout=3000)
        select.click()
    except sync_api.TimeoutError:
        pass
    page.wait_for_selector(
        ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000
    )


def command(page, label: str) -> None:
    """Run a command through the command palette, as a user would."""
    page.keyboard.press("Control+Shift+C")
    box = page.locator(".jp-ModalCommandPalette input")
    box.fill(label)
    page.locator(".jp-ModalCommandPalette .lm-CommandPalette-item", has_text=label).first.click()


def run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def open_panel(page) -> None:
    tab = page.locator(".jp-SideBar [data-id='nbtrack-runs-panel']")
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
    page.wait_for_selector("#nbtrack-runs-panel:visible")


def test_panel_badges_details_diff_and_filter(page, lab) -> None:
    open_notebook(page, lab, "exp/train.ipynb")
    open_panel(page)
    panel = page.locator("#nbtrack-runs-panel")
    sync_api.expect(panel.locator(".nbtrack-message")).to_contain_text("No runs yet")
    run_all(page)
    runs = panel.locator(".nbtrack-run")
    sync_api.expect(runs).to_have_count(2, timeout=30_000)
    sync_api.expect(runs.nth(0)).to_contain_text("#2")  # newest first
    sync_api.expect(runs.nth(0)).to_contain_text("finished")
    sync_api.expect(runs.nth(0)).to_contain_text("acc 0.95")
    sync_api.expect(runs.nth(1)).to_contain_text("acc 0.9")
    sync_api.expect(runs.nth(1)).to_contain_text("loss 0.1")

    badges = page.locator(".jp-NotebookPanel .nbtrack-badge")
    sync_api.expect(badges).to_have_count(2)
    sync_api.expect(badges.nth(0)).to_contain_text("#1")
    sync_api.expect(badges.nth(1)).to_contain_text("#2")
    sync_api.expect(badges.nth(1)).to_contain_text("acc 0.95")
    shot(page, "01-panel-and-badges")

    badges.nth(0).click()  # opens run #1 in the panel
    details = panel.locator(".nbtrack-details")
    sync_api.expect(details).to_contain_text("#1 demo")
    sync_api.expect(details.locator("tr", has_text="lr")).to_contain_text("0.1")
    sync_api.expect(details).to_contain_text("Environment")
    sync_api.expect(details).to_contain_text("python")
    shot(page, "02-run-details")

    runs.nth(0).locator(".nbtrack-check").check()
    runs.nth(1).locator(".nbtrack-check").check()
    sync_api.expect(details).to_contain_text("#1 demo ↔ #2 demo")
    row = details.locator(".nbtrack-diff tr", has_text="lr")
    sync_api.expect(row.locator(".nbtrack-diff-a")).to_have_text("0.1")
    sync_api.expect(row.locator(".nbtrack-diff-b")).to_have_text("0.2")
    sync_api.expect(details.locator(".nbtrack-diff-add").first).to_contain_text("+lr = 0.2")
    shot(page, "03-diff")

    panel.locator(".nbtrack-filter").fill("lr=0.1")
    sync_api.expect(runs).to_have_count(1)
    sync_api.expect(runs.nth(0)).to_contain_text("#1")
    panel.locator(".nbtrack-filter").fill("nothing-matches")
    sync_api.expect(panel.locator(".nbtrack-runs")).to_contain_text("No run matches")
    panel.locator(".nbtrack-filter").fill("")
    sync_api.expect(runs).to_have_count(2)


def test_compare_command_inserts_and_runs_the_compare_cell(page, lab) -> None:
    cells = page.locator(".jp-NotebookPanel .jp-Cell")
    before = cells.count()
    page.locator(".jp-NotebookPanel .jp-Cell").nth(2).click()  # select the second tracked cell
    command(page, "Compare runs")
    sync_api.expect(cells).to_have_count(before + 1)
    inserted = cells.nth(3)
    sync_api.expect(inserted.locator(".cm-content")).to_have_text(
        "import nbtrack\nnbtrack.compare()", use_inner_text=True
    )
    # It was run: an execution count appears (its output is the compare widget's business).
    sync_api.expect(inserted.locator(".jp-InputPrompt")).to_contain_text("[", timeout=30_000)
    sync_api.expect(inserted.locator(".jp-InputPrompt")).not_to_contain_text("[*]", timeout=60_000)
    shot(page, "04-compare-cell")


def test_export_run_command_writes_a_script_that_runs(page, lab) -> None:
    command(page, "Export run to script")
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill("2")
    dialog.locator("button.jp-mod-accept").click()
    script = lab["root"] / "exp" / "train_run2.py"
    # The script opens in an editor tab, and it runs.
    sync_api.expect(
        page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="train_run2.py")
    ).to_be_visible()
    shot(page, "05-exported-script")
    assert script.is_file()
    env = {**os.environ, "NBTRACK_STORE": str(lab["root"] / "exported-store")}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_running_run_is_shown_live(page, lab) -> None:
    open_notebook(page, lab, "exp/slow.ipynb")
    open_panel(page)
    panel = page.locator("#nbtrack-runs-panel")
    run_all(page)
    run = panel.locator(".nbtrack-run", has_text="slow")
    sync_api.expect(run).to_contain_text("running", timeout=15_000)
    sync_api.expect(page.locator(".jp-NotebookPanel .nbtrack-badge")).to_contain_text("running")
    shot(page, "06-running")
    sync_api.expect(run).to_contain_text("finished", timeout=30_000)
    sync_api.expect(run).to_contain_text("acc 1")


def test_corrupt_store_is_reported_in_words_and_the_panel_recovers(page, lab) -> None:
    open_notebook(page, lab, "bad/broken.ipynb")
    open_panel(page)
    message = page.locator("#nbtrack-runs-panel .nbtrack-message")
    sync_api.expect(message).to_contain_text("Cannot read this notebook's runs")
    sync_api.expect(message).to_contain_text("not a readable nbtrack store")
    shot(page, "07-corrupt-store")
    # Switching to a healthy notebook shows its runs again.
    open_notebook(page, lab, "exp/train.ipynb")
    open_panel(page)
    sync_api.expect(page.locator("#nbtrack-runs-panel .nbtrack-run")).to_have_count(2)
