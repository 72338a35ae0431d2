"""Shared fixtures: an isolated store per test and a real IPython shell with nbtrack loaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbtrack import config
from nbtrack.store.sqlite import Store


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh store folder that every nbtrack call in the test uses."""
    folder = tmp_path / "store"
    monkeypatch.setenv(config.ENV_STORE, str(folder))
    config.set_store_dir(None)
    return folder


@pytest.fixture
def store(store_dir: Path) -> Store:
    from nbtrack.store.routing import open_store

    return open_store(store_dir)


@pytest.fixture
def shell(store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A real IPython InteractiveShell with ``%load_ext nbtrack``, working in tmp_path."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    monkeypatch.chdir(tmp_path)
    ip = start_ipython() or InteractiveShell.instance()
    ip.run_cell("%load_ext nbtrack", store_history=True)
    # Each test starts with a clean user namespace and a new history session (the shell is a
    # process-wide singleton): a later test must not re-run, as a sweep worker or an export
    # slice does, the cells an earlier test left in the history.
    ip.reset(new_session=True)
    ip.run_cell("%load_ext nbtrack")
    os.environ.pop("NBTRACK_NOTEBOOK", None)
    yield ip
    config.set_store_dir(None)


def run_cell(ip, source: str):
    """Run a cell like the kernel does; re-raise what it raised so tests see failures."""
    result = ip.run_cell(source, store_history=True)
    return result


# -- a real PostgreSQL server (tests/pg_server.py), shared by the whole session ------------
@pytest.fixture(scope="session")
def pg_server():
    """One real PostgreSQL cluster on 127.0.0.1 for the session, stopped at the end."""
    from pg_server import PgServer

    server = PgServer()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """The URL of a fresh, empty PostgreSQL database on the session's server."""
    return pg_server.new_database()
