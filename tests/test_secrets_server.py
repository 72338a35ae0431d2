"""The JupyterLab panel's JSON shows only what the store holds: no secret typed into a cell
(through a real in-process Jupyter server, pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from nbtrack import config
from nbtrack.model import HistoryEntry
from nbtrack.secrets import REDACTED
from nbtrack.store.sqlite import Store
from nbtrack.tracker import RunSpec, start_run

pytest_plugins = ["pytest_jupyter.jupyter_server"]

KEY = "sk-" + "Pl4nT3xTk3yV4lu3Aaaa"
PASSWORD = "hunter2-pw"
CELL = f'%%track --name chat\napi_key = "{KEY}"\npassword = "{PASSWORD}"\nlr = 0.1\n'


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"nbtrack.server": True}}}


@pytest.fixture
def notebook(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(config.ENV_STORE, raising=False)
    config.set_store_dir(None)
    path = jp_root_dir / "exp" / "chat.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)]), path)
    store = Store(path.parent / ".nbtrack")
    body = CELL.split("\n", 1)[1]
    run = start_run(
        RunSpec(
            name="chat",
            source=body,
            code=body,
            capture_env=False,
            history=[HistoryEntry(1, CELL)],
            notebook=str(path),
            cwd=str(path.parent),
            extra={"execution_count": 1},
        ),
        store=store,
    )
    run.log(acc=0.5)
    run.finish(PermissionError(f"{PASSWORD} refused"))
    store.close()
    return path


async def test_the_panels_json_holds_no_secret(jp_fetch, notebook: Path) -> None:
    bodies = []
    for endpoint, params in (
        ("runs", {"path": "exp/chat.ipynb"}),
        ("run", {"path": "exp/chat.ipynb", "run": "1"}),
    ):
        response = await jp_fetch("nbtrack", endpoint, params=params)
        assert response.code == 200
        bodies.append(response.body.decode())
    run = json.loads(bodies[1])
    assert run["params"] == {"api_key": REDACTED, "password": REDACTED, "lr": 0.1}
    assert run["code"] == f"api_key = {REDACTED!r}\npassword = {REDACTED!r}\nlr = 0.1\n"
    assert run["error"]["message"] == f"{REDACTED} refused"
    assert json.loads(bodies[0])["runs"][0]["params"]["password"] == REDACTED
    for body in bodies:
        assert KEY not in body and PASSWORD not in body
