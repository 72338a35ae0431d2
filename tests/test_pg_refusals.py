"""A PostgreSQL store that refuses a connection is told apart from one that cannot be
reached, against a real server that asks for passwords (scram-sha-256).

A refusal (no password to send, a wrong one, no such role or database, pg_hba.conf, SSL
the server does not offer…) needs the configuration fixed: it is one line saying the
server refused and what to check, and a run start is "not recorded" (never parked in the
outbox, which could not be pushed either). Unreachable (nothing listening) keeps "cannot
reach …; check that the server runs" and parks the run. A script's ``nbtrack.run`` on a
store it cannot use runs its block as a notebook cell does.

The session's server trusts every connection, so this module starts a second small
cluster with tests/pg_server.py's helper and gives it a pg_hba.conf that asks for
passwords (and refuses some roles outright).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from nbtrack import config
from nbtrack.errors import StoreError, StoreUnreachableError
from nbtrack.store.postgres import close_pg_stores
from nbtrack.store.routing import connect_store
from nbtrack.sync import outbox

SECRET = "s3cret-Kq7-never-shown"

# First match wins: the admin (the helper's superuser) and `ghost` (a role that does not
# exist) are trusted, `blocked` is rejected, `outsider` has no line at all; the rest must
# give a password.
HBA = """\
host all nbtrack 127.0.0.1/32 trust
host all ghost 127.0.0.1/32 trust
host all blocked 127.0.0.1/32 reject
host all ana,nolog,noconn 127.0.0.1/32 scram-sha-256
"""


@pytest.fixture(scope="module")
def scram() -> Iterator[Any]:
    """A running cluster whose roles log in with passwords (scram-sha-256)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from pg_server import PgServer

    server = PgServer()
    try:
        (server.data / "pg_hba.conf").write_text(HBA, encoding="utf-8")
        server._run("pg_ctl", "-D", str(server.data), "-w", "reload")
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            for role in ("ana", "noconn", "blocked", "outsider"):
                conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
            conn.execute(f"CREATE ROLE nolog NOLOGIN PASSWORD '{SECRET}'")
            conn.execute("CREATE DATABASE nbtrack OWNER ana")
            conn.execute("REVOKE CONNECT ON DATABASE nbtrack FROM PUBLIC")
            conn.execute("GRANT CONNECT ON DATABASE nbtrack TO ana, nolog, blocked, outsider")
        yield server
    finally:
        server.stop()


@pytest.fixture
def no_saved_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No password but the one a test gives: no ~/.pgpass, no $PGPASSWORD."""
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    for name in ("PGUSER", "PGSSLMODE", "PGCHANNELBINDING", "PGREQUIREAUTH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    close_pg_stores()


def _url(server: Any, user: str, database: str = "nbtrack", query: str = "") -> str:
    return f"postgresql://{user}@127.0.0.1:{server.port}/{database}{query}"


AUTH = "check the role, its password (~/.pgpass or PGPASSWORD) and the database name"
ADMIN = "the server's administrator decides who may connect"
SSL = "check the store URL's SSL settings"
PARAMS = "check the parameters in the store URL"

# (case, role, database, URL query, $PGPASSWORD, the reason shown, the advice)
REFUSALS = [
    ("no password", "ana", "nbtrack", "", None, "no password supplied", AUTH),
    (
        "wrong password",
        "ana",
        "nbtrack",
        "",
        "wrong",
        'password authentication failed for user "ana"',
        AUTH,
    ),
    ("no such role", "ghost", "nbtrack", "", None, 'role "ghost" does not exist', AUTH),
    ("no such database", "ana", "nosuch", "", SECRET, 'database "nosuch" does not exist', AUTH),
    (
        "no pg_hba.conf entry",
        "outsider",
        "nbtrack",
        "",
        SECRET,
        'no pg_hba.conf entry for host "127.0.0.1", user "outsider"',
        ADMIN,
    ),
    ("pg_hba.conf reject", "blocked", "nbtrack", "", SECRET, "pg_hba.conf rejects", ADMIN),
    ("no login", "nolog", "nbtrack", "", SECRET, 'role "nolog" is not permitted to log in', ADMIN),
    (
        "no CONNECT",
        "noconn",
        "nbtrack",
        "",
        SECRET,
        'permission denied for database "nbtrack"',
        ADMIN,
    ),
    (
        "SSL required",
        "ana",
        "nbtrack",
        "?sslmode=require",
        SECRET,
        "server does not support SSL, but SSL was required",
        SSL,
    ),
    (
        "channel binding required",
        "ana",
        "nbtrack",
        "?channel_binding=require",
        SECRET,
        "channel binding required",
        SSL,
    ),
    (
        "require_auth not met",
        "ana",
        "nbtrack",
        "?require_auth=md5",
        SECRET,
        'authentication method requirement "md5" failed',
        PARAMS,
    ),
    (
        "bad sslmode",
        "ana",
        "nbtrack",
        "?sslmode=bogus",
        SECRET,
        'invalid sslmode value: "bogus"',
        SSL,
    ),
]


@pytest.mark.parametrize(
    ("role", "database", "query", "password", "reason", "advice"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
@pytest.mark.usefixtures("no_saved_password")
def test_a_refusal_says_the_server_refused_and_what_to_check(
    scram: Any,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
    database: str,
    query: str,
    password: str | None,
    reason: str,
    advice: str,
) -> None:
    if password is not None:
        monkeypatch.setenv("PGPASSWORD", password)
    url = _url(scram, role, database, query)
    with pytest.raises(StoreError) as info:
        connect_store(url)
    assert not isinstance(info.value, StoreUnreachableError), str(info.value)
    message = str(info.value)
    assert message.startswith(f"the PostgreSQL store {url} refused the connection: {reason}")
    assert message.endswith(advice) or f"; {advice}" in message
    assert "\n" not in message and SECRET not in message
    assert "cannot reach" not in message and config.ENV_STORE not in message

    # A run starting now is not parked: the refusal reaches the caller (the notebook says
    # "this run is not recorded"), and no outbox is made for that database.
    with pytest.raises(StoreError) as start:
        outbox.open_run_store(url)
    assert not isinstance(start.value, StoreUnreachableError)
    assert not outbox.outbox_dir(url).exists()


@pytest.mark.usefixtures("no_saved_password")
def test_a_password_in_the_url_is_redacted_in_a_refusal(scram: Any) -> None:
    url = f"postgresql://ana:{SECRET}x@127.0.0.1:{scram.port}/nbtrack"
    with pytest.raises(StoreError) as info:
        connect_store(url)
    message = str(info.value)
    assert SECRET not in message
    assert message.startswith(
        f"the PostgreSQL store postgresql://ana:<redacted>@127.0.0.1:{scram.port}/nbtrack "
        'refused the connection: password authentication failed for user "ana"; '
    )


@pytest.mark.usefixtures("no_saved_password")
def test_nothing_listening_is_unreachable_and_parks_the_run(scram: Any) -> None:
    with __import__("socket").socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://ana:{SECRET}@127.0.0.1:{port}/nbtrack"
    with pytest.raises(StoreUnreachableError) as info:
        connect_store(url)
    message = str(info.value)
    assert message.startswith("cannot reach the PostgreSQL store postgresql://ana:<redacted>@")
    assert message.endswith("; check that the server runs and the store URL is right")
    assert "Connection refused" in message and SECRET not in message
    assert config.ENV_STORE not in message
    store, parked = outbox.open_run_store(url)
    assert parked is not None and store.path == outbox.outbox_dir(url)


def _script(tmp_path: Path, store: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A script whose `with nbtrack.run(...)` block uses `track` and prints as it goes."""
    code = (
        "import nbtrack\n"
        "with nbtrack.run(name='x', params={'lr': 0.1}) as track:\n"
        "    print('body ran')\n"
        "    track.log(loss=0.5)\n"
        "    track.artifact(b'bytes', 'blob')\n"
        "    track.tag('t')\n"
        "    track.note('n')\n"
        "print('after', track.id)\n"
    )
    variables = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PGPASSWORD", "NBTRACK_USER") and not key.startswith("NBTRACK_")
    }
    variables.update(
        {
            config.ENV_STORE: store,
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "PGPASSFILE": str(tmp_path / "no-pgpass"),
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=variables,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def _not_recorded(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a script's refused run prints; the block ran and the script went on."""
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["body ran", "after None"]
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("nbtrack:")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("nbtrack: this run is not recorded: ")
    return lines[0]


def test_a_script_on_a_refused_store_runs_its_block_unrecorded(scram: Any, tmp_path: Path) -> None:
    url = _url(scram, "ana")
    line = _not_recorded(_script(tmp_path, url, PGPASSWORD="wrong"))
    assert f"the PostgreSQL store {url} refused the connection: password authentication" in line
    assert "wrong" not in line.replace("wrong password", "")
    # No password at all: the same, and nothing parked in the outbox.
    line = _not_recorded(_script(tmp_path, url))
    assert "refused the connection: no password supplied" in line
    assert not (tmp_path / "cache" / "nbtrack" / "outbox").exists()


def test_a_script_on_an_unusable_folder_store_follows_the_same_rule(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    line = _not_recorded(_script(tmp_path, str(blocker / "store")))
    assert "cannot create the store folder" in line
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / config.DB_FILENAME).write_bytes(b"not a database" * 100)
    _not_recorded(_script(tmp_path, str(corrupt)))
