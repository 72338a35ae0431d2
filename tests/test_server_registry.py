"""The registry endpoints through a real in-process Jupyter server (pytest-jupyter's jp_fetch).

A notebook ``exp/train.ipynb`` under the server's root, its store next to it with two runs
registered as v1 and v2 of ``digits``, and ``exp/nbtrack.toml`` gating production on a
metric, "no worse than production" and two approvals from named people. Who acts is
``$NBTRACK_USER`` of the server process, switched between requests as people take turns.
Auth, XSRF and path confinement of these endpoints are covered by test_server_security.py.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import nbformat
import pytest
from registry_helpers import make_run, snapshot, write_policy
from tornado.httpclient import HTTPClientError

from nbtrack import config
from nbtrack.registry import Registry
from nbtrack.store.sqlite import Store

pytest_plugins = ["pytest_jupyter.jupyter_server"]

NB = "exp/train.ipynb"
POLICY = """\
[registry.stages.staging]
metrics = ["acc >= 0.5"]

[registry.stages.production]
metrics = ["acc >= 0.8"]
better_than_production = { metric = "acc", by = 0 }
approvals = 2
approvers = ["ana@example.org", "ben@example.org", "dev@example.org"]
self_approval = false
"""


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"nbtrack.server": True}}}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.ENV_STORE, raising=False)
    config.set_store_dir(None)
    monkeypatch.setenv(config.ENV_USER, "dev@example.org")


@pytest.fixture
def project(jp_root_dir: Path) -> dict[str, Any]:
    """v1 (acc 0.85) and v2 (acc 0.9) of ``digits``, registered by dev, in development."""
    folder = jp_root_dir / "exp"
    folder.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), folder / "train.ipynb")
    write_policy(folder, POLICY)
    store = Store(folder / ".nbtrack")
    reg = Registry(store, cwd=folder)
    first = make_run(store, {"acc": 0.85}, params={"lr": 0.1})
    second = make_run(store, {"acc": 0.9}, params={"lr": 0.2}, artifact=b"better")
    reg.register(first, "digits")
    reg.register(second, "digits")
    store.close()
    return {
        "folder": folder,
        "db": folder / ".nbtrack" / config.DB_FILENAME,
        "runs": [first, second],
    }


async def _get(jp_fetch: Any, *route: str, **params: str) -> dict[str, Any]:
    response = await jp_fetch("nbtrack", *route, params={"path": NB, **params})
    assert response.code == 200
    data: dict[str, Any] = json.loads(response.body)
    return data


async def _post(jp_fetch: Any, action: str, **body: Any) -> dict[str, Any]:
    response = await jp_fetch(
        "nbtrack", "models", action, method="POST", body=json.dumps({"path": NB, **body})
    )
    assert response.code == 200
    data: dict[str, Any] = json.loads(response.body)
    return data


async def _refused(jp_fetch: Any, action: str, **body: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(
            "nbtrack", "models", action, method="POST", body=json.dumps({"path": NB, **body})
        )
    response = info.value.response
    assert response is not None
    assert response.headers["Content-Type"].startswith("application/json")
    data = json.loads(response.body)
    assert set(data) == {"message", "reason"} and "\n" not in data["message"], data
    return info.value.code, data


async def test_models_lists_versions_stages_and_the_acting_user(jp_fetch, project) -> None:
    data = await _get(jp_fetch, "models")
    assert data["store_exists"] is True and data["message"] is None
    assert data["user"] == "dev@example.org"
    assert data["policy_file"] == str(project["folder"] / "nbtrack.toml")
    [model] = data["models"]
    assert (model["name"], model["versions"], model["latest"]) == ("digits", 2, 2)
    assert model["stages"] == {"development": [1, 2]} and model["production"] is None


async def test_models_of_a_notebook_without_store_says_so(jp_fetch, jp_root_dir) -> None:
    nbformat.write(nbformat.v4.new_notebook(), jp_root_dir / "fresh.ipynb")
    response = await jp_fetch("nbtrack", "models", params={"path": "fresh.ipynb"})
    data = json.loads(response.body)
    assert data["store_exists"] is False and data["models"] == []
    assert "no nbtrack store" in data["message"]
    assert not (jp_root_dir / ".nbtrack").exists()  # the server never creates a store


async def test_model_detail_has_lineage_decisions_history_and_gates(jp_fetch, project) -> None:
    data = await _get(jp_fetch, "models", model="digits")
    assert data["model"]["name"] == "digits" and data["stages"][0] == "development"
    v2, v1 = data["versions"]  # newest first
    assert (v2["version"], v2["stage"], v2["target"]) == (2, "development", "staging")
    # Lineage back to the run: number, id, status, params and metrics as registered.
    assert v2["run"]["number"] == project["runs"][1] and v2["run"]["status"] == "finished"
    assert v2["lineage"]["params"] == {"lr": 0.2} and v2["lineage"]["metrics"] == {"acc": 0.9}
    assert v2["artifact"]["name"] == "model" and v2["artifact"]["hash"]
    assert v2["periods"][0]["stage"] == "development" and v2["periods"][0]["until"] is None
    # The next stage's gates by default: staging needs acc >= 0.5.
    report = v2["gate"]["report"]
    assert report["stage"] == "staging" and report["passed"] is True
    assert [r["gate"] for r in report["results"]] == ["acc >= 0.5"]
    # For production: approvals are missing.
    data = await _get(jp_fetch, "models", model="digits", stage="production")
    v2 = data["versions"][0]
    report = v2["gate"]["report"]
    assert report["passed"] is False
    failed = [r for r in report["results"] if not r["passed"]]
    assert [(r["gate"], r["kind"]) for r in failed] == [("2 approvals", "approvals")]
    assert "0/2" in failed[0]["detail"]


async def test_unknown_model_and_bad_stage_are_one_line_json(jp_fetch, project) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("nbtrack", "models", params={"path": NB, "model": "nope"})
    assert info.value.code == 404
    data = json.loads(info.value.response.body)
    assert data["reason"] == "unknown-model" and "no model 'nope'" in data["message"]
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("nbtrack", "models", params={"path": NB, "model": "digits", "stage": "prod"})
    assert info.value.code == 400
    assert "'prod' is not a stage" in json.loads(info.value.response.body)["message"]


async def test_promote_dry_run_then_approve_then_promote(jp_fetch, project, monkeypatch) -> None:
    before = snapshot(project["db"])
    dry = await _post(
        jp_fetch, "promote", model="digits", version=2, stage="production", dry_run=True
    )
    assert dry["dry_run"] is True and dry["holders"] == []
    assert dry["report"]["passed"] is False and dry["version"]["stage"] == "development"
    assert snapshot(project["db"]) == before  # a dry run writes nothing, not even the gate

    code, err = await _refused(jp_fetch, "promote", model="digits", version=2, stage="production")
    assert (code, err["reason"]) == (409, "promotion-refused")
    assert "2 approvals" in err["message"]

    # The registrant may not approve their own version; nothing is recorded.
    code, err = await _refused(jp_fetch, "approve", model="digits", version=2, stage="production")
    assert (code, err["reason"]) == (409, "promotion-refused")
    assert "dev@example.org registered digits v2 and may not approve it" in err["message"]

    for person, expected in (("ana@example.org", "1/2"), ("ben@example.org", "2/2")):
        monkeypatch.setenv(config.ENV_USER, person)
        done = await _post(
            jp_fetch, "approve", model="digits", version=2, stage="production", comment="ok"
        )
        assert done["message"] == f"{person} approved digits v2 for production"
        assert done["entry"]["event"] == "approve" and done["entry"]["user"] == person
        approvals = done["report_after"]["results"][-1]
        assert approvals["gate"] == "2 approvals" and approvals["detail"].startswith(expected)

    dry = await _post(
        jp_fetch, "promote", model="digits", version=2, stage="production", dry_run=True
    )
    assert dry["report"]["passed"] is True
    done = await _post(
        jp_fetch, "promote", model="digits", version=2, stage="production", reason="beats v1"
    )
    assert done["dry_run"] is False and done["version"]["stage"] == "production"
    assert done["entry"]["event"] == "promote" and done["entry"]["reason"] == "beats v1"
    assert done["message"].startswith("digits v2 promoted to production")
    data = await _get(jp_fetch, "models")
    assert data["models"][0]["production"] == 2
    # v1 now: worse than production, and it would push v2 down to staging.
    dry = await _post(
        jp_fetch, "promote", model="digits", version=1, stage="production", dry_run=True
    )
    assert (dry["holders"], dry["replaces"], dry["replaced_to"]) == ([2], 2, "staging")
    failed = [r["gate"] for r in dry["report"]["results"] if not r["passed"]]
    assert failed == ["acc better than production by >= 0", "2 approvals"]

    code, err = await _refused(jp_fetch, "promote", model="digits", version=2, stage="production")
    assert (code, err["reason"]) == (409, "registry-refused")
    assert "already in production" in err["message"]


async def test_rollback_dry_run_shows_the_plan_then_rolls_back(jp_fetch, project) -> None:
    folder = project["folder"]
    store = Store(folder / ".nbtrack")
    reg = Registry(store, cwd=folder)
    # Two productions in a row, each approved by two others (a rollback needs a previous one).
    for version in (1, 2):
        for person in ("ana@example.org", "ben@example.org"):
            Registry(store, cwd=folder, user=person).approve("digits", version, "production")
        reg.promote("digits", version, "production")
    store.close()

    code, err = await _refused(jp_fetch, "rollback", model="digits", stage="staging")
    assert (code, err["reason"]) == (409, "registry-refused")
    assert "digits v1 is the only version staging has had" in err["message"]
    before = snapshot(project["db"])
    dry = await _post(jp_fetch, "rollback", model="digits", dry_run=True)
    assert dry["dry_run"] is True
    assert (dry["plan"]["event"], dry["plan"]["version"], dry["plan"]["step_down"]) == (
        "rollback",
        1,
        2,
    )
    assert dry["version"]["version"] == 1 and dry["leaving"]["stage"] == "production"
    # For information only: v1 is worse than v2, which is in production now.
    assert dry["report"]["passed"] is False
    assert snapshot(project["db"]) == before

    done = await _post(jp_fetch, "rollback", model="digits", reason="latency regression")
    assert done["entry"]["event"] == "rollback" and done["entry"]["reason"] == "latency regression"
    assert done["message"].startswith("rolled back production: digits v1 is back")
    versions = {
        v["version"]: v["stage"]
        for v in (await _get(jp_fetch, "models", model="digits"))["versions"]
    }
    assert versions == {1: "production", 2: "staging"}


async def test_audit_tail_and_verification(jp_fetch, project) -> None:
    data = await _get(jp_fetch, "models", "audit", limit="1", verify="1")
    assert data["total"] == 2 and len(data["entries"]) == 1
    assert data["entries"][0]["event"] == "register" and data["entries"][0]["version"] == 2
    assert data["check"]["ok"] is True and data["check"]["entries"] == 2
    assert (await _get(jp_fetch, "models", "audit"))["check"] is None  # verified on request

    conn = sqlite3.connect(project["db"])  # someone edits the log behind the registry's back
    conn.execute("DROP TRIGGER registry_audit_no_update")  # what someone covering tracks does
    conn.execute("UPDATE registry_audit SET user = 'mallory' WHERE seq = 2")
    conn.commit()
    conn.close()
    data = await _get(jp_fetch, "models", "audit", verify="1")
    assert data["check"]["ok"] is False and data["check"]["problems"]
    code, err = await _refused(jp_fetch, "promote", model="digits", version=1, stage="staging")
    assert (code, err["reason"]) == (409, "audit-log-failed")
    assert "tampered" in err["message"]


@pytest.mark.parametrize(
    "action,body,needle",
    [
        ("promote", {"version": 2, "stage": "staging"}, "missing 'model'"),
        ("promote", {"model": "digits", "version": "two", "stage": "staging"}, "'version'"),
        ("promote", {"model": "digits", "version": 10**30, "stage": "staging"}, "'version'"),
        ("promote", {"model": "digits", "version": True, "stage": "staging"}, "'version'"),
        ("promote", {"model": "digits", "version": 2}, "missing 'stage'"),
        ("promote", {"model": "digits", "version": 2, "stage": "prod"}, "'prod' is not a stage"),
        ("promote", {"model": "digits", "version": 2, "stage": "staging", "dry_run": "y"}, "true"),
        ("promote", {"model": "digits", "version": 9, "stage": "staging"}, "no version 9"),
        ("promote", {"model": "a/b", "version": 1, "stage": "staging"}, "not a model name"),
        (
            "approve",
            {"model": "digits", "version": 2, "stage": "staging", "decision": "x"},
            "'reject'",
        ),
        ("approve", {"model": "digits", "version": 2, "stage": "development"}, "approvals are"),
        ("rollback", {"model": "digits", "stage": 3}, "'stage' must be a string"),
    ],
)
async def test_bad_input_is_one_line_and_changes_nothing(
    jp_fetch, project, action: str, body: dict[str, Any], needle: str
) -> None:
    before = snapshot(project["db"])
    code, err = await _refused(jp_fetch, action, **body)
    assert code in (400, 404), (code, err)
    assert needle in err["message"], err
    assert snapshot(project["db"]) == before


async def test_a_broken_policy_file_is_named_and_blocks_only_what_needs_it(
    jp_fetch, project
) -> None:
    (project["folder"] / "nbtrack.toml").write_text("[registry.stages.prod]\nmetrics = []\n")
    data = await _get(jp_fetch, "models")
    assert data["models"][0]["name"] == "digits"  # listing needs no policy
    assert "registry.stages.prod: unknown stage" in data["policy_error"]
    detail = await _get(jp_fetch, "models", model="digits")
    assert detail["policy_error"] and detail["versions"][0]["gate"] is None
    code, err = await _refused(jp_fetch, "promote", model="digits", version=2, stage="staging")
    assert (code, err["reason"]) == (422, "registry-config")
    assert "nbtrack.toml" in err["message"] and "registry.stages.prod" in err["message"]
