"""``nbtrack.models_widget()``: the registry view in the notebook, driven from Python.

A real store with two versions of ``digits`` and a policy file in the working directory
(production: a metric threshold, "no worse than production" and two approvals). The view
shows versions, stages, gate results, approvals, lineage back to the run and stage history,
follows the registry after ``refresh()``, and never writes.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import ipywidgets  # noqa: F401 -- a test dependency; missing is a failure
import pytest
from registry_helpers import make_run, snapshot, write_policy

import nbtrack
from nbtrack import config
from nbtrack.errors import NbtrackError
from nbtrack.registry import Registry
from nbtrack.store.sqlite import Store
from nbtrack.widgets.models import ModelsWidget

POLICY = """\
[registry.stages.staging]
metrics = ["acc >= 0.8"]

[registry.stages.production]
metrics = ["acc >= 0.85"]
approvals = 2
approvers = ["ana", "ben"]
"""


def badges(html: str) -> list[tuple[str, str]]:
    """(stage, text) of every stage badge the view drew."""
    return re.findall(r"<span class='nbtrack-stage' data-stage='(\w+)'[^>]*>([^<]*)</span>", html)


@pytest.fixture
def project(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """v1 (acc 0.82) and v2 (acc 0.9) of ``digits``, registered by dev; v1 in staging."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(config.ENV_USER, "dev")
    write_policy(tmp_path, POLICY)
    reg = Registry(store, cwd=tmp_path)
    first = make_run(store, {"acc": 0.82}, params={"lr": 0.1})
    second = make_run(store, {"acc": 0.9}, params={"lr": 0.2}, artifact=b"v2")
    reg.register(first, "digits")
    reg.register(second, "digits")
    reg.promote("digits", 1, "staging", reason="first candidate")
    return {"store": store, "reg": reg, "runs": [first, second], "cwd": tmp_path}


def test_the_view_shows_versions_stages_gates_approvals_and_lineage(project) -> None:
    w = nbtrack.models_widget(store=project["store"])
    assert isinstance(w, ModelsWidget) and w.error == ""
    assert w.model == "digits" and w.version == 2  # the first model, its newest version
    html = w.html
    assert "digits</b>" in html and "2 versions" in html
    assert badges(w._summary.value) == [
        ("development", "development v2"),
        ("staging", "staging v1"),
    ]
    # The versions table, newest first, each with its next stage's verdict.
    table = w._table.value
    assert table.index("data-version='2'") < table.index("data-version='1'")
    assert "→ staging: passed" in table and "→ canary: no gates declared" in table
    # v2 in full: its gates for staging, no decisions, its run, its stage history.
    detail = w._detail.value
    assert "acc &gt;= 0.8" in detail and "0.9 (needs &gt;= 0.8)" in detail
    assert "no approvals or rejections yet" in detail
    assert f"#{project['runs'][1]} digits (finished)" in detail
    assert "lr=0.2" in detail and "acc=0.9" in detail and "seed</th>" in detail
    assert re.search(r"data-stage='development'[^>]*>development</span> [\d:\- ]+ → now", detail)

    w.version = 1
    detail = w._detail.value
    assert f"#{project['runs'][0]} digits (finished)" in detail
    assert "by dev (first candidate)" in detail  # v1's move into staging, who and why


def test_gates_for_a_chosen_stage_follow_approvals_after_refresh(project) -> None:
    w = nbtrack.models_widget("digits", store=project["store"], stage="production")
    report = w.gates[2]
    assert not isinstance(report, str) and report is not None
    assert [r.gate for r in report.failed] == ["2 approvals"]
    assert "→ production: 1 of 2 failed" in w._table.value
    assert "✗" in w._detail.value and "0/2: none yet" in w._detail.value
    # v1 fails the threshold too.
    assert {r.gate for r in w.gates[1].failed} == {"acc >= 0.85", "2 approvals"}  # type: ignore[union-attr]

    store, cwd = project["store"], project["cwd"]
    for person in ("ana", "ben"):
        Registry(store, user=person, cwd=cwd).approve("digits", 2, "production", "looks right")
    w.refresh()
    assert w.version == 2 and w.stage == "production"  # what was shown stays shown
    assert "→ production: passed" in w._table.value
    assert "approved for production by ana" in w._detail.value
    assert ": looks right" in w._detail.value

    w.stage = None  # back to each version's next stage
    assert w.gates[2].stage == "staging"  # type: ignore[union-attr]
    project["reg"].promote("digits", 2, "staging")
    w.refresh()
    assert badges(w._summary.value) == [("staging", "staging v1 v2")]


def test_bad_choices_are_one_line_and_the_view_never_writes(project) -> None:
    db = project["store"].path / config.DB_FILENAME
    before = snapshot(db)
    w = nbtrack.models_widget("nope", store=project["store"])
    assert w.error == "no model 'nope' in the registry (models: digits)"
    assert "no model 'nope'" in unescape(w._error.value) and w._error.layout.display is None
    assert w.model == "digits"  # it shows what there is
    with pytest.raises(NbtrackError, match=r"digits has no version 9 \(versions: 1, 2\)"):
        w.version = 9
    with pytest.raises(NbtrackError, match="'prod' is not a stage"):
        w.stage = "prod"
    with pytest.raises(NbtrackError, match="no model 'other'"):
        w.model = "other"
    w.refresh("digits")
    assert w.error == "" and w._error.layout.display == "none"
    w.stage = "production"
    w.version = 1
    assert snapshot(db) == before  # reading gates records nothing, unlike `models gate`


def test_a_broken_policy_shows_its_line_per_version(project) -> None:
    (project["cwd"] / "nbtrack.toml").write_text("[registry.stages.production]\naprovals = 2\n")
    w = nbtrack.models_widget(store=project["store"])
    line = "registry.stages.production.aprovals: unknown key"
    assert isinstance(w.gates[2], str) and line in w.gates[2]
    assert line in w._detail.value and line in w._table.value


def test_an_empty_registry_says_how_to_register(store: Store) -> None:
    w = nbtrack.models_widget(store=store)
    assert w.model is None and w.versions == []
    assert "no registered models" in w.html and "track.register" in w.html
    assert "models_widget" in nbtrack.__all__
