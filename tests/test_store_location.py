"""Where the store is: ``[store] location`` in ``nbtrack.toml`` in the one store-choice order,
and PostgreSQL URLs of every form libpq takes (a Unix socket, ``?host=``, ``postgres://``,
query parameters), kept as text from the user to libpq. Against the session's real server
(tests/pg_server.py), which listens on 127.0.0.1 and on a Unix socket in its folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack import config
from nbtrack.errors import UsageError
from nbtrack.registry import Registry
from nbtrack.store.postgres import PostgresStore, open_pg_store
from nbtrack.store.routing import connect_store, open_store
from nbtrack.store.sqlite import Store


def _toml(folder: Path, body: str) -> Path:
    path = folder / config.PROJECT_CONFIG_FILENAME
    path.write_text(body, encoding="utf-8")
    return path


def _dbname(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _server_address(store: PostgresStore) -> Any:
    """``inet_server_addr()``: the server's IP, or ``None`` over a Unix socket."""
    rows = store._query("SELECT inet_server_addr()")
    return rows[0][0]


@pytest.fixture
def no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.ENV_STORE, raising=False)
    config.set_store_dir(None)
    yield
    config.set_store_dir(None)


# -- [store] location in nbtrack.toml ---------------------------------------------------------
def test_toml_location_takes_its_place_in_the_one_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_store_env: None
) -> None:
    project = tmp_path / "project"
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    Store(deep / config.STORE_DIRNAME).close()  # a nearer .nbtrack/ than the toml's choice
    _toml(project, '[store]\nlocation = "../shared"\n')
    shared = (project / ".." / "shared").resolve()
    # Relative to the toml's folder, from anywhere below it; before the nearest .nbtrack/.
    assert config.command_store_dir(search_upwards=True, cwd=deep).resolve() == shared
    assert config.default_store_dir(cwd=deep).resolve() == shared
    # A folder holding .nbtrack/ means that store, as for --store.
    Store(shared / config.STORE_DIRNAME).close()
    assert config.command_store_dir(search_upwards=False, cwd=deep).resolve() == (
        shared / config.STORE_DIRNAME
    )
    # NBTRACK_STORE and %nbtrack store come first; --store before everything.
    monkeypatch.setenv(config.ENV_STORE, str(tmp_path / "env"))
    assert config.command_store_dir(search_upwards=True, cwd=deep) == tmp_path / "env"
    config.set_store_dir("postgresql:///chosen")
    assert config.command_store_dir(search_upwards=True, cwd=deep) == "postgresql:///chosen"
    assert config.command_store_dir(str(tmp_path / "x"), search_upwards=True) == tmp_path / "x"


def test_toml_refuses_a_password_and_a_misnamed_key(tmp_path: Path, no_store_env: None) -> None:
    _toml(tmp_path, '[store]\nlocation = "postgresql://ana:hunter2@db/nbtrack"\n')
    with pytest.raises(UsageError) as caught:
        config.command_store_dir(search_upwards=True, cwd=tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "hunter2" not in message
    assert "~/.pgpass" in message and "PGPASSWORD" in message
    _toml(tmp_path, '[store]\nlocation = "postgresql://ana@db/nbtrack?password=hunter2"\n')
    with pytest.raises(UsageError, match="carries a password"):
        config.default_store_dir(cwd=tmp_path)
    _toml(tmp_path, '[store]\nurl = "postgresql://ana@db/nbtrack"\n')
    with pytest.raises(UsageError, match="location"):
        config.default_store_dir(cwd=tmp_path)
    # [store] with only artifacts (docs/team.md) chooses no store.
    _toml(tmp_path, '[store]\nartifacts = "s3://bucket/x"\n')
    assert config.default_store_dir(cwd=tmp_path) == tmp_path / config.STORE_DIRNAME


def test_kernel_cli_and_server_follow_the_toml_to_postgresql(
    shell: Any,
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(config.ENV_STORE, raising=False)
    config.set_store_dir(None)
    _toml(tmp_path, f'[store]\nlocation = "{pg_url}"\n')
    monkeypatch.setenv(config.ENV_USER, "ana@example.com")
    result = shell.run_cell("%%track --quiet --name toml-run\nlr = 0.1\nloss = 0.5", True)
    assert result.error_in_exec is None
    db = connect_store(pg_url, create=False)
    try:
        assert [r[2] for r in db.list_runs()] == ["toml-run"]
    finally:
        db.close()
    assert not (tmp_path / config.STORE_DIRNAME).exists()  # nothing went to a local store
    capsys.readouterr()
    shell.run_cell("%nbtrack", True)
    assert f"nbtrack store: {pg_url}\n  runs: 1" in capsys.readouterr().out

    # The command line, run from a folder below the project, reads the same database.
    below = tmp_path / "sub"
    below.mkdir()
    environ = {k: v for k, v in os.environ.items() if k != config.ENV_STORE}
    out = subprocess.run(
        [sys.executable, "-m", "nbtrack", "runs", "--json"],
        cwd=below,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert [r["name"] for r in json.loads(out)] == ["toml-run"]

    # The server's panel (a notebook in the project): the same store, and who ran it.
    from nbtrack.server.payloads import run_payload, runs_payload

    notebook = tmp_path / "analysis.ipynb"
    listing = runs_payload(notebook)
    assert listing["store_exists"] and listing["store"] == pg_url
    assert run_payload(notebook, "last")["user"] == "ana@example.com"


# -- URLs of every form libpq takes -----------------------------------------------------------
def test_socket_and_parameter_urls_reach_the_server_as_written(
    pg_server: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch, no_store_env: None
) -> None:
    db, socket_dir = _dbname(pg_url), str(pg_server.root)
    user, port = pg_server.user, pg_server.port
    forms = {
        # libpq's host parameter: a Unix socket folder.
        "socket": f"postgresql://{user}@/{db}?host={socket_dir}&port={port}",
        # libpq's other scheme spelling, and query parameters passed through.
        "postgres-scheme": f"postgres://{user}@127.0.0.1:{port}/{db}?application_name=nbt-x"
        "&sslmode=disable",
        # libpq takes the password as a parameter too: it is never shown.
        "query-password": f"postgresql://{user}@127.0.0.1:{port}/{db}?password=Qp-9-hidden",
    }
    for how, url in forms.items():
        config.set_store_dir(url)
        location = config.command_store_dir(search_upwards=True)
        assert location == url, how  # the text as written, not a Path
        store = connect_store(location)
        try:
            assert isinstance(store, PostgresStore), how
            assert "Qp-9-hidden" not in repr(store) + config.shown_location(location)
            address = _server_address(store)
            if how == "socket":
                assert address is None  # a Unix socket, not TCP
            elif how == "postgres-scheme":
                assert str(address) == "127.0.0.1"
                name = store._query("SELECT current_setting('application_name')")[0][0]
                assert name == "nbt-x"
        finally:
            store.close()

    # postgresql:///db: no host at all, libpq's default socket (here PGHOST names it). A
    # Path would fold the three slashes and connect to a host called `db`.
    monkeypatch.setenv("PGHOST", socket_dir)
    monkeypatch.setenv("PGPORT", str(port))
    monkeypatch.setenv("PGUSER", user)
    config.set_store_dir(None)
    monkeypatch.setenv(config.ENV_STORE, f"postgresql:///{db}")
    store = open_store()
    assert isinstance(store, PostgresStore)
    assert _server_address(store) is None
    assert store is open_pg_store(f"postgresql:///{db}")
    with nbtrack.run(name="via-socket", capture_env=False) as track:
        track.log(loss=0.25)
    assert nbtrack.get_run("last").name == "via-socket"


def test_magic_store_takes_a_socket_url(
    shell: Any, pg_server: Any, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = (
        f"postgresql://{pg_server.user}@/{_dbname(pg_url)}"
        f"?host={pg_server.root}&port={pg_server.port}"
    )
    result = shell.run_cell(f"%nbtrack store {url}", True)
    assert result.error_in_exec is None
    assert config.command_store_dir(search_upwards=False) == url
    shell.run_cell("%%track --quiet --name socket-cell\nx = 1", True)
    db = connect_store(pg_url, create=False)
    try:
        assert [r[2] for r in db.list_runs()] == ["socket-cell"]
    finally:
        db.close()
    assert "using the store at postgresql://" in capsys.readouterr().out


def test_push_from_the_projects_postgresql_store(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_store_env: None
) -> None:
    from nbtrack.sync import push

    monkeypatch.setenv("NBTRACK_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.chdir(tmp_path)
    _toml(tmp_path, f'[store]\nlocation = "{pg_url}"\n')
    with nbtrack.run(name="team-run", capture_env=False) as track:
        track.log(loss=0.5)
    report = push(tmp_path / "laptop")  # from the toml's database, the local store's default
    assert len(report.copied) == 1
    assert nbtrack.get_run("last", store=tmp_path / "laptop").name == "team-run"


def test_a_password_in_the_toml_never_breaks_the_cell(
    shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(config.ENV_STORE, raising=False)
    _toml(tmp_path, '[store]\nlocation = "postgresql://ana:hunter2@db/nbtrack"\n')
    result = shell.run_cell("%%track --quiet\ny = 41 + 1", True)
    assert result.error_in_exec is None and shell.user_ns["y"] == 42
    captured = capsys.readouterr()
    said = [line for line in (captured.out + captured.err).splitlines() if "nbtrack" in line]
    assert len(said) == 1 and "carries a password" in said[0] and "hunter2" not in said[0]


def test_export_verify_reproduces_a_run_of_a_postgresql_store(
    shell: Any, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The re-run script must write to the same database, not to a folder named after it.
    from nbtrack.export.command import magic_export

    monkeypatch.setenv("NBTRACK_ARTIFACTS", str(tmp_path / "artifacts"))
    shell.reset(new_session=True)
    for cell in (
        f"%nbtrack store {pg_url}",
        "base = 10",
        "%%track --name pg/verify --seed 5 --quiet\nstep = 2\ntrack.log(v=base + step)",
    ):
        assert shell.run_cell(cell, store_history=True).error_in_exec is None
    out = tmp_path / "verify_pg.py"
    status, message = magic_export(f"--run last -o {out} --verify")
    assert status == 0, message
    assert "reproduced" in message
    assert list(nbtrack.runs(store=pg_url)["name"]) == ["pg/verify", "pg/verify"]


def test_a_store_dropped_unclosed_closes_its_connection(pg_url: str) -> None:
    # A command that opens a store, reads and returns (nbtrack sweep ls) leaves nothing open.
    import gc
    import warnings

    store = connect_store(pg_url)
    raw = store._pg.raw
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del store
        gc.collect()
    assert raw.closed
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_the_cli_names_an_empty_database_by_its_url(pg_url: str, tmp_path: Path) -> None:
    connect_store(pg_url).close()  # nbtrack's tables, no runs
    environ = {k: v for k, v in os.environ.items() if k != config.ENV_STORE}
    out = subprocess.run(
        [sys.executable, "-m", "nbtrack", "runs", "--store", pg_url],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out.strip() == f"no runs in {pg_url}"


def test_registry_messages_name_a_database_by_its_redacted_url(pg_url: str) -> None:
    # The test server trusts local connections, so a password in the URL is accepted and
    # ignored: what matters is that no message shows it.
    url = pg_url.replace("@", ":hunter2-pw@", 1)
    assert "hunter2-pw" in url
    store = connect_store(url)
    try:
        with pytest.raises(nbtrack.errors.NbtrackError) as caught:
            nbtrack.load_model("nosuchmodel/1", store=store)
        message = str(caught.value)
        assert "nosuchmodel" in message
        assert "hunter2-pw" not in message and "<redacted>" in message
        assert store.shown in message and store.location == url
        assert "hunter2-pw" not in repr(Registry(store))
    finally:
        store.close()


def test_unknown_runs_and_sweeps_are_named_in_the_database_not_its_local_folder(
    pg_url: str, tmp_path: Path
) -> None:
    url = pg_url.replace("@", ":hunter2-pw@", 1)
    connect_store(url).close()  # nbtrack's tables, no runs
    proc = subprocess.run(
        [sys.executable, "-m", "nbtrack", "show", "999", "--store", url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    shown = url.replace(":hunter2-pw@", ":<redacted>@")
    assert f"no run matches '999' in the store at {shown};" in line
    store = connect_store(url)
    try:
        with pytest.raises(nbtrack.errors.UnknownSweepError) as caught:
            store.resolve_sweep("7")
        assert f"in the store at {shown};" in str(caught.value)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("location", "hint"),
    [
        ("postgresql+psycopg://ana:s3cret-pw@127.0.0.1:5432/nbtrack", "(write postgresql://…)"),
        ("POSTGRESQL://ana:s3cret-pw@127.0.0.1/nbtrack", "(write postgresql://…)"),
        ("mysql://ana:s3cret-pw@127.0.0.1/nbtrack", ""),
        ("https://ana:s3cret-pw@example.com/store", ""),
    ],
)
def test_a_url_that_is_not_postgresql_is_refused_not_made_a_folder(
    location: str, hint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taken as a folder, such a URL used to become nested directories holding the
    password in their names, and runs went there silently. Every way a store is chosen
    refuses it in one line, password redacted; a cell and a script still run."""
    monkeypatch.chdir(tmp_path)
    scheme = location.split("://", 1)[0]
    shown = location.replace(":s3cret-pw@", ":<redacted>@")
    expected = f"{shown}: unknown store URL scheme {scheme!r}"
    for opener in (connect_store, open_store):
        with pytest.raises(nbtrack.errors.StoreError) as caught:
            opener(location)
        assert str(caught.value).startswith(expected) and hint in str(caught.value)
    proc = subprocess.run(
        [sys.executable, "-m", "nbtrack", "runs", "--store", location],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and expected in proc.stderr and "s3cret" not in proc.stderr
    monkeypatch.setenv(config.ENV_STORE, location)
    config.set_store_dir(None)
    with pytest.raises(nbtrack.errors.StoreError):
        nbtrack.runs()
    config.set_store_dir(None)
    assert [p.name for p in tmp_path.iterdir()] == []  # no folder made of the URL
