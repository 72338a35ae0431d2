"""The Models section of the Runs panel in a real browser: headless Chromium against a real
``jupyter lab`` serving the freshly built extension.

A notebook whose store (next to it) holds two versions of ``digits-classifier`` and whose
``nbtrack.toml`` gates staging on ``val_acc >= 0.9``. The user opens the Models section,
tries to promote v1 (the dialog shows the failed gate and will not promote), then promotes
v2 (the dialog shows the gate passed; confirming moves it) and sees its stage badge change.
Screenshots go to ``test-artifacts/registry/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labserver import lab_folders, serve_lab, write_notebook
from playwright import sync_api
from registry_helpers import make_run, write_policy

from nbtrack.registry import Registry
from nbtrack.store.sqlite import Store

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "registry"
TOKEN = "nbtrack-registry-browser-test"
MODEL = "digits-classifier"
POLICY = """\
[registry.stages.staging]
metrics = ["val_acc >= 0.9"]
run_finished = true
"""


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
    """A ``jupyter lab`` whose root holds ``reg/train.ipynb``, its policy and its store."""
    folders = lab_folders(tmp_path_factory.mktemp("nbtrack-registry-lab"), auto_start_kernel=True)
    notebook = write_notebook(folders.root / "reg" / "train.ipynb", ["%load_ext nbtrack"])
    write_policy(notebook.parent, POLICY)
    store = Store(notebook.parent / ".nbtrack")
    reg = Registry(store, user="dev@example.org", cwd=notebook.parent)
    runs = [
        make_run(store, {"val_acc": 0.85}, params={"hidden": 16}),
        make_run(store, {"val_acc": 0.95}, params={"hidden": 64}, artifact=b"v2"),
    ]
    for run in runs:
        reg.register(run, MODEL)
    store.close()
    # NBTRACK_USER: who the server's registry acts as.
    with serve_lab(folders, TOKEN, ARTIFACTS, {"NBTRACK_USER": "ana@example.org"}) as url:
        yield {"url": url, "store": notebook.parent / ".nbtrack", "runs": runs}


def shot(target: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_promote_shows_the_gates_first_and_the_badge_changes(browser: Any, lab: dict) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(f"{lab['url']}/lab/tree/reg/train.ipynb?reset&token={TOKEN}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
        tab = page.locator(".jp-SideBar [data-id='nbtrack-runs-panel']")
        if tab.get_attribute("aria-selected") != "true":
            tab.click()
        panel = page.locator("#nbtrack-runs-panel")
        section = panel.locator(".nbtrack-models-section")
        model = section.locator(".nbtrack-model", has_text=MODEL)
        sync_api.expect(model).to_contain_text("2 versions", timeout=30_000)
        head = model.locator(".nbtrack-model-head")
        sync_api.expect(head.locator(".nbtrack-stage-development")).to_have_text(
            "development v1 v2"
        )
        sync_api.expect(section).to_contain_text("acting as ana@example.org")

        head.click()
        v1 = model.locator(".nbtrack-version[data-version='1']")
        v2 = model.locator(".nbtrack-version[data-version='2']")
        sync_api.expect(v2.locator(".nbtrack-gate-line")).to_have_text("→ staging: passed")
        sync_api.expect(v1.locator(".nbtrack-gate-line")).to_have_text(
            "→ staging: 1 of 2 checks failed"
        )
        sync_api.expect(v2.locator(".nbtrack-run-link")).to_have_text(f"run #{lab['runs'][1]}")
        shot(panel, "01-models-section")

        # v1 fails the gate: the dialog says so and will not promote (only force, with a reason).
        v1.locator(".nbtrack-promote").click()
        dialog = page.locator(".jp-Dialog")
        sync_api.expect(dialog.locator(".nbtrack-gate-failed")).to_contain_text("val_acc >= 0.9")
        sync_api.expect(dialog.locator(".nbtrack-gate-failed")).to_contain_text("0.85")
        accept = dialog.locator(".jp-Dialog-footer .jp-mod-accept")
        sync_api.expect(accept).to_be_disabled()
        sync_api.expect(dialog.locator(".nbtrack-dialog-force")).to_be_visible()
        shot(dialog.locator(".jp-Dialog-content"), "02-promote-refused")
        dialog.locator(".jp-Dialog-footer .jp-mod-reject").click()
        sync_api.expect(dialog).to_have_count(0)

        # v2 passes: the dialog shows the gates first, and only the confirmation promotes.
        v2.locator(".nbtrack-promote").click()
        sync_api.expect(dialog.locator(".nbtrack-gate-passed")).to_have_count(2)
        sync_api.expect(dialog.locator(".nbtrack-promote-summary")).to_contain_text(
            f"{MODEL} v2: development → staging"
        )
        assert _stage_of(lab, 2) == "development"  # nothing happened before the confirmation
        dialog.locator(".nbtrack-reason").fill("beats v1 on val_acc")
        shot(dialog.locator(".jp-Dialog-content"), "03-promote-dialog")
        sync_api.expect(accept).to_be_enabled()
        accept.click()
        sync_api.expect(dialog).to_have_count(0)
        sync_api.expect(head.locator(".nbtrack-stage-staging")).to_have_text("staging v2")
        sync_api.expect(v2.locator(".nbtrack-version-head .nbtrack-stage")).to_have_text("staging")
        sync_api.expect(model.locator(".nbtrack-audit")).to_contain_text("promote v2 → staging")
        shot(panel, "04-promoted")

        assert _stage_of(lab, 2) == "staging"
        store = Store(lab["store"], create=False)
        try:
            entry = Registry(store).audit(MODEL)[-1]
        finally:
            store.close()
        assert (entry.event, entry.user, entry.reason) == (
            "promote",
            "ana@example.org",
            "beats v1 on val_acc",
        )

        # The version's run opens in the Runs panel.
        v2.locator(".nbtrack-run-link").click()
        sync_api.expect(panel.locator(".nbtrack-details")).to_contain_text(f"#{lab['runs'][1]}")
        assert not errors, errors
    finally:
        context.close()


def _stage_of(lab: dict, version: int) -> str:
    store = Store(lab["store"], create=False)
    try:
        return str(Registry(store).version(MODEL, version).stage)
    finally:
        store.close()
