"""A real PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temporary folder on
127.0.0.1 and a free port, run as the ``postgres`` user when the tests run as root
(PostgreSQL refuses to run as root). Never a mock: the conformance suite and the sync
tests talk to this server through the PostgreSQL store.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def _bin_dir() -> Path:
    """Where Debian's (or the PATH's) PostgreSQL server binaries are."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries not found; install them (`apt-get install -y "
            "postgresql`, as tests/run_all.sh does)"
        )
    return Path(candidates[0]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """A throwaway PostgreSQL cluster; :meth:`new_database` gives each test its own DB."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="nbtrack-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "nbtrack"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        # `trust` on 127.0.0.1 only: the cluster lives for one test session.
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        conf = (
            f"listen_addresses='127.0.0.1'\nport={self.port}\n"
            f"unix_socket_directories='{self.root}'\nfsync=off\nsynchronous_commit=off\n"
            "full_page_writes=off\nmax_connections=200\nshared_buffers=128MB\n"
        )
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as fh:
            fh.write(conf)
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.root)

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """A ``postgresql://`` URL for ``database`` on this server."""
        auth = self.user if password is None else f"{self.user}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database; returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    """A running server for the duration of the block."""
    server = PgServer()
    try:
        yield server
    finally:
        server.stop()
