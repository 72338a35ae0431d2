"""The JupyterLab panel's endpoints (a real in-process Jupyter server, jp_fetch) follow the
project's ``nbtrack.toml`` ``[store] location`` to a PostgreSQL database (the session's real
server), name it with its password redacted, and say who ran each run."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

import nbtrack
from nbtrack import config
from nbtrack.store.routing import connect_store

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"nbtrack.server": True}}}


async def test_the_panel_reads_the_database_the_projects_toml_names(
    jp_fetch, jp_root_dir: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(config.ENV_STORE, raising=False)
    monkeypatch.setenv("NBTRACK_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv(config.ENV_USER, "ana@example.com")
    config.set_store_dir(None)
    project = jp_root_dir / "team"
    (project / "notebooks").mkdir(parents=True)
    notebook = project / "notebooks" / "train.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    (project / config.PROJECT_CONFIG_FILENAME).write_text(
        f'[store]\nlocation = "{pg_url}?password=Sv-7-hidden"\n', encoding="utf-8"
    )
    store = connect_store(pg_url)
    try:
        with nbtrack.run(name="panel", store=store, capture_env=False) as track:
            track.log(acc=0.5)
    finally:
        store.close()

    # A password in the shared file: a one-line JSON error, the password redacted in it.
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("nbtrack", "runs", params={"path": "team/notebooks/train.ipynb"})
    assert refused.value.code == 400 and refused.value.response is not None
    error = json.loads(refused.value.response.body)["message"]
    assert "carries a password" in error and "Sv-7-hidden" not in error and "\n" not in error

    (project / config.PROJECT_CONFIG_FILENAME).write_text(
        f'[store]\nlocation = "{pg_url}"\n', encoding="utf-8"
    )
    reply = await jp_fetch("nbtrack", "runs", params={"path": "team/notebooks/train.ipynb"})
    runs = json.loads(reply.body)
    assert runs["store"] == pg_url and runs["store_exists"] is True
    assert runs["other_runs"] == 1  # the script's run: in the store, not this notebook's
    reply = await jp_fetch(
        "nbtrack", "run", params={"path": "team/notebooks/train.ipynb", "run": "last"}
    )
    assert json.loads(reply.body)["user"] == "ana@example.com"
