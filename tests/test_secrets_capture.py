"""Secrets typed into cells never reach the store (issue #9): through a real IPython shell,
through ``with nbtrack.run(...)``, and through an exported script that reads them back from
the environment.

"Never reach the store" is checked on the SQLite files themselves: the raw bytes of the
database and its write-ahead log, and every blob decompressed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import nbtrack
from nbtrack.secrets import REDACTED
from nbtrack.summary import run_text

REPO = Path(__file__).resolve().parents[1]

# The example: a credential format, and a password only its name gives away.
OPENAI = "sk-proj-" + "Zq81xWv3Lm0pRt7Ys2Nb5Kc9"
PASSWORD = "hunter2"
HF = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWx"
SECRETS = (OPENAI, PASSWORD, HF, "s3cr3t-db-pass")


@pytest.fixture
def kernel(shell, monkeypatch):
    """The shared test shell; afterwards this module's cells are blanked out of its
    history (empty entries are skipped), so later tests that export runs from the same
    process-wide history never meet these secrets; ``%env`` is undone too."""
    monkeypatch.setenv("DB_PASSWORD", "unset-after-the-test")
    raw = shell.history_manager.input_hist_raw
    parsed = shell.history_manager.input_hist_parsed
    start = len(raw)
    yield shell
    for index in range(start, len(raw)):
        raw[index] = ""
    for index in range(start, len(parsed)):
        parsed[index] = ""


def store_bytes(folder: Path) -> bytes:
    """Everything the store's files hold: raw database and WAL bytes, every decompressed
    blob, and every row of every table as text."""
    raw = b"".join(p.read_bytes() for p in sorted(folder.glob("nbtrack.db*")))
    conn = sqlite3.connect(folder / "nbtrack.db")
    try:
        raw += b"".join(zlib.decompress(d) for (d,) in conn.execute("SELECT data FROM blobs"))
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            raw += repr(conn.execute(f"SELECT * FROM {table}").fetchall()).encode()
    finally:
        conn.close()
    return raw


def assert_absent(
    folder: Path, secrets: tuple[str, ...] = SECRETS, *, redacted: bool = True
) -> None:
    everything = store_bytes(folder)
    # The check looks where the secrets would have been.
    assert (b"<redacted>" in everything) is redacted
    for secret in secrets:
        assert secret.encode() not in everything, f"{secret[:4]}... reached the store"


def test_a_tracked_cell_stores_no_secret_it_was_typed(kernel, store_dir, tmp_path) -> None:
    kernel.run_cell("import os, pathlib", store_history=True)
    # Earlier, untracked cells: their text is the run's history.
    kernel.run_cell(f'hf_token = "{HF}"\nn_layers = 2', store_history=True)
    kernel.run_cell("%env DB_PASSWORD=s3cr3t-db-pass", store_history=True)
    result = kernel.run_cell(
        "%%track --name chat --set lr=0.2\n"
        f'OPENAI_API_KEY = "{OPENAI}"\n'
        f'password = "{PASSWORD}"\n'
        "lr = 0.1\n"
        "max_tokens = 256\n"
        "use_auth_token = True\n"
        "track.note(f'logged in with {password}')\n"
        "track.tag('key-' + OPENAI_API_KEY)\n"
        "path = pathlib.Path(f'out-{password}.txt')\n"
        "path.write_text('weights')\n"
        "track.artifact(str(path), name='weights')\n"
        "track.log(key_length=len(OPENAI_API_KEY), acc=0.5)\n"
        "raise PermissionError(f'login as ana:{password} with {OPENAI_API_KEY} refused')\n",
        store_history=True,
    )
    assert isinstance(result.error_in_exec, PermissionError)  # the user's cell is untouched
    assert kernel.user_ns["password"] == PASSWORD  # ... and so is what it computed

    record = nbtrack.get_run("last")
    assert record.params["OPENAI_API_KEY"] == REDACTED
    assert record.params["password"] == REDACTED
    assert record.params["lr"] == 0.2 and record.params["max_tokens"] == 256
    assert record.params["use_auth_token"] is True  # a bool is no secret
    assert sorted(record.extra["redacted_params"]) == ["OPENAI_API_KEY", "password"]
    assert record.metrics["key_length"] == len(OPENAI)
    assert f"password = {REDACTED!r}" in record.code
    assert "lr = 0.2" in record.code  # --set still applied, the rest of the code kept
    assert record.note == f"logged in with {REDACTED}"
    assert record.tags == [f"key-{REDACTED}"]
    assert record.error is not None and record.error["type"] == "PermissionError"
    assert PASSWORD not in record.error["message"] and REDACTED in record.error["message"]
    assert record.artifacts[0].meta["filename"] == f"out-{REDACTED}.txt"
    history = "\n".join(entry.source for entry in record.history)
    assert f"hf_token = {REDACTED!r}" in history and "n_layers = 2" in history
    # What people and programs see is what the store holds.
    shown = run_text(record, {}) + json.dumps(record.to_dict(), default=str)
    assert not any(secret in shown for secret in SECRETS)
    assert_absent(store_dir)


def test_with_nbtrack_run_stores_no_secret(store_dir, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--password", PASSWORD, f"--api-key={OPENAI}"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError):
        with nbtrack.run(
            name="script", params={"api_key": OPENAI, "lr": 0.1}, note=f"token {HF}"
        ) as track:
            track.log_params(db_password=PASSWORD, batch=32)
            track.tag(HF)
            track.artifact(PASSWORD * 2, name="text")
            raise RuntimeError(f"rate limited for {OPENAI}")
    record = nbtrack.get_run("last")
    assert record.params == {
        "api_key": REDACTED,
        "lr": 0.1,
        "db_password": REDACTED,
        "batch": 32,
    }
    assert sorted(record.extra["redacted_params"]) == ["api_key", "db_password"]
    assert record.extra["argv"] == ["train.py", "--password", REDACTED, f"--api-key={REDACTED}"]
    assert record.note == f"token {REDACTED}" and record.tags == [REDACTED]
    assert record.error is not None and record.error["message"] == f"rate limited for {REDACTED}"
    assert_absent(store_dir, (OPENAI, PASSWORD, HF))


def test_project_secret_names_and_patterns_apply_to_runs(kernel, store_dir, tmp_path) -> None:
    (tmp_path / "nbtrack.toml").write_text(
        '[secrets]\nnames = ["wandb"]\npatterns = ["acme-[0-9a-f]{12}"]\n', encoding="utf-8"
    )
    kernel.run_cell(
        "%%track -q\nwandb_login = 'w4ndb-login-x'\nendpoint = 'https://x/?k=acme-0123456789ab'\n"
        "seed_key = 'plain-value'\n",
        store_history=True,
    )
    record = nbtrack.get_run("last")
    assert record.params["wandb_login"] == REDACTED and record.params["endpoint"] == REDACTED
    assert record.params["seed_key"] == "plain-value"  # "key" alone is no secret
    assert_absent(store_dir, ("w4ndb-login-x", "acme-0123456789ab"))


def test_a_bad_project_pattern_is_one_warning_and_the_run_is_recorded(
    kernel, store_dir, tmp_path
) -> None:
    (tmp_path / "nbtrack.toml").write_text('[secrets]\npatterns = ["acme-("]\n', encoding="utf-8")
    kernel.run_cell(f"%%track -q\npassword = '{PASSWORD}'\nx = 1\n", store_history=True)
    record = nbtrack.get_run("last")
    (warning,) = [w for w in record.warnings if "[secrets]" in w]
    assert "patterns[0] 'acme-(' is not a valid regular expression" in warning
    assert "\n" not in warning
    assert record.params == {"password": REDACTED, "x": 1}  # the built-in rules still apply
    assert_absent(store_dir, (PASSWORD,))


def _env(store: Path) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k not in ("api_key", "API_KEY")}
    return env | {
        "NBTRACK_STORE": str(store),
        "NBTRACK_SUMMARY": "0",
        "PYTHONPATH": str(REPO) + (os.pathsep + path if path else ""),
    }


def test_an_exported_run_reads_its_secret_from_the_environment(kernel, store_dir, tmp_path) -> None:
    from nbtrack.export import export_run

    kernel.run_cell(f"greeting = 'hello'\nclient_secret = '{PASSWORD}-client'", store_history=True)
    kernel.run_cell(
        f"%%track -q --seed 1\napi_key = '{OPENAI}'\nlr = 0.5\n"
        "track.log(n=len(api_key) + len(client_secret) + lr)\n",
        store_history=True,
    )
    record = nbtrack.get_run("last")
    script = export_run(record).script
    assert not any(secret in script for secret in SECRETS)
    assert "api_key = _nbtrack_secret('api_key')" in script
    assert "client_secret = _nbtrack_secret('client_secret')" in script
    assert "--api-key" not in script and "--lr" in script  # a secret is never a flag
    docstring = script.split('"""')[1]
    assert "environment variable of the same name" in docstring and "api_key" in docstring
    path = tmp_path / "reproduce.py"
    path.write_text(script, encoding="utf-8")

    env = _env(tmp_path / "script-store")
    missing = subprocess.run(
        [sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 1  # the earlier cell's secret is the first one read
    assert missing.stderr.strip().splitlines() == [
        "error: client_secret is a secret the recorded run used and nbtrack did not store it; "
        "set the environment variable client_secret and run again"
    ]
    env |= {"api_key": OPENAI, "CLIENT_SECRET": f"{PASSWORD}-client"}  # either spelling
    done = subprocess.run(
        [sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    rerun = nbtrack.get_run("last", store=tmp_path / "script-store")
    assert rerun.metrics["n"] == record.metrics["n"] == len(OPENAI) + len(PASSWORD) + 7 + 0.5
    assert rerun.params.get("api_key") in (None, REDACTED)
    # The script's own run: its code reads the secrets, so there is nothing to redact.
    assert_absent(tmp_path / "script-store", (OPENAI, PASSWORD), redacted=False)
