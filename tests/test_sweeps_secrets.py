"""A sweep cell with a secret in it: the trials run, the store never holds the secret."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import nbtrack

KEY = "sk-" + "Zq9x" * 8  # an OpenAI-style key: the credential format rule matches it
CELL = f'api_key = "{KEY}"\nx = 0.5\ntrack.log(m=x + len(api_key))\n'


def _stored_bytes(store_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in store_dir.rglob("*") if p.is_file())


def test_a_sweep_runs_with_its_secret_but_never_stores_it(shell, store_dir: Path) -> None:
    result = shell.run_cell(
        "%%track --name t/secret --sweep 2 --objective m --space x=uniform(0,1) "
        "--no-env --quiet\n" + CELL,
        store_history=True,
    )
    assert result.success, result.error_in_exec
    sweep = nbtrack.get_sweep("last")
    assert len(sweep.trials) == 2
    # The trials ran with the real key (its length is in the metric) ...
    assert all(v > len(KEY) for v in sweep.trials["value"])
    # ... and neither the sweep's record nor any run, blob or journal holds it.
    assert KEY.encode() not in _stored_bytes(store_dir)
    with sqlite3.connect(store_dir / "nbtrack.db") as db:
        code, extra = db.execute("SELECT code, extra FROM sweeps").fetchone()
    assert "api_key = '<redacted>'" in code and "<redacted>" in extra


def test_workers_are_refused_in_one_line_when_the_cell_holds_a_secret(
    shell, store_dir: Path, capsys
) -> None:
    result = shell.run_cell(
        "%%track --name t/secret-workers --sweep 2 --objective m --space x=uniform(0,1) "
        "--workers 2 --no-env --quiet\n" + CELL,
        store_history=True,
    )
    assert not result.success
    message = str(result.error_in_exec)
    assert "--workers" in message and "environment variable" in message
    assert "\n" not in message
    assert KEY.encode() not in _stored_bytes(store_dir)
