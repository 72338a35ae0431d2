"""The server extension through a real in-process Jupyter server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

from nbtrack import config
from nbtrack.model import HistoryEntry
from nbtrack.store.sqlite import Store
from nbtrack.tracker import RunSpec, start_run

pytest_plugins = ["pytest_jupyter.jupyter_server"]

CELL = "%%track --name train\nlr = {lr}\nepochs = 2\n"


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"nbtrack.server": True}}}


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The store must be found next to the notebook, as the kernel's would be.
    monkeypatch.delenv(config.ENV_STORE, raising=False)
    config.set_store_dir(None)


def _notebook(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL.format(lr=0.1))])
    nbformat.write(nb, path)
    return path


def _record(
    store: Store,
    notebook: Path | None,
    lr: float,
    acc: float,
    count: int,
    fail: bool = False,
    history: bool = True,
) -> int:
    cell = CELL.format(lr=lr)
    body = cell.split("\n", 1)[1]  # the magic records the cell's body as the run's code
    run = start_run(
        RunSpec(
            name="train",
            source=body,
            code=body,
            capture_env=False,
            history=[HistoryEntry(count, cell)] if history else [],
            notebook=str(notebook) if notebook else None,
            cwd=str(store.path.parent),
            namespace={"lr": lr},
            extra={"execution_count": count},
        ),
        store=store,
    )
    run.log(acc=acc, loss=1 - acc)
    run.finish(RuntimeError("diverged") if fail else None)
    return run.number


@pytest.fixture
def project(jp_root_dir: Path) -> dict:
    """A folder ``exp/`` under the server root with two notebooks sharing one store."""
    train = _notebook(jp_root_dir / "exp" / "train.ipynb")
    other = _notebook(jp_root_dir / "exp" / "other.ipynb")
    store = Store(jp_root_dir / "exp" / ".nbtrack")
    numbers = [
        _record(store, train, 0.1, 0.8, 1, history=False),
        _record(store, train, 0.2, 0.9, 2),
        _record(store, other, 0.3, 0.5, 1),
        _record(store, train, 0.4, float("nan"), 3, fail=True),
    ]
    store.close()
    return {
        "root": jp_root_dir,
        "train": train,
        "other": other,
        "numbers": numbers,
        "store": jp_root_dir / "exp" / ".nbtrack",
    }


async def _get(jp_fetch, endpoint: str, **params: str) -> dict:
    response = await jp_fetch("nbtrack", endpoint, params=params)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


async def _error(
    jp_fetch, endpoint: str, method: str = "GET", body: str | None = None, **params: str
) -> tuple[int, dict]:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("nbtrack", endpoint, params=params, method=method, body=body)
    response = info.value.response
    assert response.headers["Content-Type"].startswith("application/json")
    data = json.loads(response.body)
    assert set(data) == {"message", "reason"}, data  # never a traceback
    return info.value.code, data


async def test_runs_lists_this_notebooks_runs_newest_first(jp_fetch, project) -> None:
    data = await _get(jp_fetch, "runs", path="exp/train.ipynb")
    assert data["store_exists"] is True
    assert [r["number"] for r in data["runs"]] == [4, 2, 1]
    assert [r["status"] for r in data["runs"]] == ["failed", "finished", "finished"]
    assert data["other_runs"] == 1
    newest, second = data["runs"][0], data["runs"][1]
    assert second["metrics"] == {"acc": 0.9, "loss": pytest.approx(0.1)}
    assert second["params"]["lr"] == 0.2
    assert second["execution_count"] == 2
    assert second["duration"] >= 0
    assert newest["metrics"]["acc"] is None  # NaN travels as null, which JSON.parse accepts
    assert "diverged" in newest["error"]
    assert data["codes"][second["code_hash"]] == "lr = 0.2\nepochs = 2\n"


async def test_runs_of_a_notebook_without_store_says_so(jp_fetch, jp_root_dir) -> None:
    _notebook(jp_root_dir / "fresh" / "new.ipynb")
    data = await _get(jp_fetch, "runs", path="fresh/new.ipynb")
    assert data["store_exists"] is False
    assert data["runs"] == []
    assert "no nbtrack store" in data["message"]
    assert not (jp_root_dir / "fresh" / ".nbtrack").exists()  # the server never creates one


async def test_deleted_store_is_noticed_on_the_next_request(jp_fetch, project) -> None:
    assert (await _get(jp_fetch, "runs", path="exp/train.ipynb"))["runs"]
    for item in sorted(project["store"].rglob("*"), reverse=True):
        item.unlink() if item.is_file() else item.rmdir()
    project["store"].rmdir()
    data = await _get(jp_fetch, "runs", path="exp/train.ipynb")
    assert data["store_exists"] is False and data["runs"] == []


async def test_corrupt_store_is_a_json_error(jp_fetch, jp_root_dir) -> None:
    _notebook(jp_root_dir / "bad" / "nb.ipynb")
    (jp_root_dir / "bad" / ".nbtrack").mkdir()
    (jp_root_dir / "bad" / ".nbtrack" / "nbtrack.db").write_bytes(b"this is not sqlite" * 100)
    code, data = await _error(jp_fetch, "runs", path="bad/nb.ipynb")
    assert code == 500
    assert data["reason"] == "store-corrupt"
    assert "not a readable nbtrack store" in data["message"]


async def test_run_details(jp_fetch, project) -> None:
    data = await _get(jp_fetch, "run", path="exp/train.ipynb", run="2")
    assert data["number"] == 2 and data["status"] == "finished"
    assert data["params"]["lr"] == 0.2
    assert data["metrics"]["acc"] == 0.9
    assert data["metric_points"] == {"acc": 1, "loss": 1}
    # The directions the run used travel with it, for the panel (and later gates).
    assert data["goals"]["loss"] == {"direction": "min", "source": "heuristic"}
    assert data["goals"]["acc"]["direction"] == "max"
    assert data["code"] == "lr = 0.2\nepochs = 2\n"
    assert data["notice"] is None
    assert "rng_state" not in data


async def test_run_from_another_notebook_carries_a_notice(jp_fetch, project) -> None:
    data = await _get(jp_fetch, "run", path="exp/train.ipynb", run="3")
    assert data["number"] == 3
    assert "another notebook" in data["notice"]
    assert str(project["other"]) in data["notice"]


async def test_unknown_and_missing_run_refs(jp_fetch, project) -> None:
    code, data = await _error(jp_fetch, "run", path="exp/train.ipynb", run="99")
    assert (code, data["reason"]) == (404, "unknown-run")
    assert "99" in data["message"]
    code, data = await _error(jp_fetch, "run", path="exp/train.ipynb")
    assert (code, data["reason"]) == (400, "bad-request")
    code, data = await _error(jp_fetch, "runs")
    assert (code, data["reason"]) == (400, "bad-request")
    code, data = await _error(jp_fetch, "runs", path="exp/notes.txt")
    assert (code, data["reason"]) == (400, "bad-request")


async def test_run_of_notebook_without_store_is_404(jp_fetch, jp_root_dir) -> None:
    _notebook(jp_root_dir / "new.ipynb")
    code, data = await _error(jp_fetch, "run", path="new.ipynb", run="1")
    assert (code, data["reason"]) == (404, "no-store")


async def test_diff(jp_fetch, project) -> None:
    data = await _get(jp_fetch, "diff", path="exp/train.ipynb", a="1", b="2")
    assert (data["a"], data["b"]) == (1, 2)
    assert {"key": "lr", "a": 0.1, "b": 0.2} in data["sections"]["params"]
    assert any(row["key"] == "acc" for row in data["sections"]["metrics"])
    assert "-lr = 0.1" in data["code_diff"] and "+lr = 0.2" in data["code_diff"]
    code, err = await _error(jp_fetch, "diff", path="exp/train.ipynb", a="1")
    assert (code, err["reason"]) == (400, "bad-request")


@pytest.mark.parametrize(
    "path",
    [
        "../outside.ipynb",
        "exp/../../outside.ipynb",
        "/etc/passwd.ipynb",
        "//etc/x.ipynb",
        "escape/link.ipynb",
    ],
)
async def test_paths_outside_the_root_are_refused(jp_fetch, project, tmp_path, path) -> None:
    outside = _notebook(tmp_path / "outside" / "link.ipynb")
    store = Store(outside.parent / ".nbtrack")
    _record(store, outside, 0.5, 0.5, 1)
    store.close()
    os.symlink(outside.parent, project["root"] / "escape")
    for endpoint, extra in (("runs", {}), ("run", {"run": "1"}), ("diff", {"a": "1", "b": "1"})):
        code, data = await _error(jp_fetch, endpoint, path=path, **extra)
        assert (code, data["reason"]) == (403, "path-refused"), (endpoint, path)
    code, data = await _error(jp_fetch, "export", method="POST", body=json.dumps({"path": path}))
    assert (code, data["reason"]) == (403, "path-refused")


@pytest.mark.parametrize(
    "endpoint,method,body",
    [
        ("runs", "GET", None),
        ("run", "GET", None),
        ("diff", "GET", None),
        ("export", "POST", json.dumps({"path": "exp/train.ipynb"})),
    ],
)
async def test_every_endpoint_needs_auth(jp_fetch, project, endpoint, method, body) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(
            "nbtrack",
            endpoint,
            params={"path": "exp/train.ipynb", "run": "1"},
            method=method,
            body=body,
            headers={"Authorization": ""},
        )
    assert info.value.code == 403


async def test_export_rejects_bad_bodies(jp_fetch, project) -> None:
    code, data = await _error(jp_fetch, "export", method="POST", body="not json")
    assert (code, data["reason"]) == (400, "bad-request")
    code, data = await _error(jp_fetch, "export", method="POST", body=json.dumps([1]))
    assert (code, data["reason"]) == (400, "bad-request")
    code, data = await _error(
        jp_fetch,
        "export",
        method="POST",
        body=json.dumps({"path": "exp/train.ipynb", "run": {"x": 1}}),
    )
    assert (code, data["reason"]) == (400, "bad-request")


async def test_export_writes_scripts_next_to_the_notebook(jp_fetch, project) -> None:
    response = await jp_fetch(
        "nbtrack", "export", method="POST", body=json.dumps({"path": "exp/train.ipynb", "run": 2})
    )
    data = json.loads(response.body)
    assert data["path"] == "exp/train_run2.py" and data["run"] == 2
    assert "lr" in (project["root"] / "exp" / "train_run2.py").read_text()
    again = json.loads(
        (
            await jp_fetch(
                "nbtrack",
                "export",
                method="POST",
                body=json.dumps({"path": "exp/train.ipynb", "run": 2}),
            )
        ).body
    )
    assert again["path"] == "exp/train_run2-2.py"  # an existing file is never overwritten
    code, err = await _error(
        jp_fetch, "export", method="POST", body=json.dumps({"path": "exp/train.ipynb", "run": 1})
    )
    assert (code, err["reason"]) == (422, "export-failed")
    assert "execution history" in err["message"]
    whole = json.loads(
        (
            await jp_fetch(
                "nbtrack", "export", method="POST", body=json.dumps({"path": "exp/train.ipynb"})
            )
        ).body
    )
    assert whole["path"] == "exp/train_script.py"
    assert (project["root"] / "exp" / "train_script.py").is_file()


async def test_runs_of_a_team_store_on_postgresql(
    jp_fetch, jp_root_dir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NBTRACK_STORE names a PostgreSQL database: the panel reads the runs from it, the
    # same store the notebook's kernel writes to (it used to look for a folder of that name).
    from nbtrack.store.routing import connect_store

    notebook = _notebook(jp_root_dir / "team" / "train.ipynb")
    store = connect_store(pg_url)
    try:
        number = _record(store, notebook, 0.3, 0.7, 1)
    finally:
        store.close()
    monkeypatch.setenv(config.ENV_STORE, pg_url)
    config.set_store_dir(None)
    data = await _get(jp_fetch, "runs", path="team/train.ipynb")
    assert data["store_exists"] is True
    assert [r["number"] for r in data["runs"]] == [number]
    assert data["runs"][0]["params"]["lr"] == 0.3


async def test_runs_carry_their_project_and_filter_by_it(jp_fetch, jp_root_dir: Path) -> None:
    """Each run in the payload names its project (docs/team.md#projects); ``project=``
    keeps one project's runs, and no filter lists them all."""
    train = _notebook(jp_root_dir / "team" / "train.ipynb")
    store = Store(jp_root_dir / "team" / ".nbtrack")
    for project in ("vision", None, "nlp"):
        run = start_run(
            RunSpec(name="fit", capture_env=False, notebook=str(train), project=project),
            store=store,
        )
        run.finish(None)
    store.close()
    data = await _get(jp_fetch, "runs", path="team/train.ipynb")
    assert [(r["number"], r["project"]) for r in data["runs"]] == [
        (3, "nlp"),
        (2, None),
        (1, "vision"),
    ]
    data = await _get(jp_fetch, "runs", path="team/train.ipynb", project="vision")
    assert [r["number"] for r in data["runs"]] == [1] and data["other_runs"] == 2
    detail = await _get(jp_fetch, "run", path="team/train.ipynb", run="3")
    assert detail["project"] == "nlp"
