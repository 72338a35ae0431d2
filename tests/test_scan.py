"""``nbtrack scan`` on a store written before secrets were redacted, as a real subprocess.

The "old store" is made the way an old nbtrack left it: runs recorded normally, then the
secrets written straight into the SQLite file (params, code and history blobs shared by
two runs, note, tags, error, git remote, argv, environment snapshot, artifact metadata).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

import nbtrack
from nbtrack.model import HistoryEntry
from nbtrack.secrets import REDACTED
from nbtrack.store.sqlite import Store, content_hash
from nbtrack.tracker import RunSpec, start_run

REPO = Path(__file__).resolve().parents[1]

OPENAI = "sk-" + "Qw3rTy7uIo9pAs1dFg5hJk"
PASSWORD = "hunter2"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0kLmN"
REMOTE_PASSWORD = "r3mote-pw"
HF = "hf_" + "ZyXwVuTsRqPoNmLkJiHgFe"
SECRETS = (OPENAI, PASSWORD, GITHUB, REMOTE_PASSWORD, HF)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ)
    env.pop("NBTRACK_STORE", None)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + path if path else "")
    return subprocess.run(
        [sys.executable, "-m", "nbtrack", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _blob(conn: sqlite3.Connection, kind: str, data: bytes) -> str:
    digest = content_hash(data)
    conn.execute(
        "INSERT OR IGNORE INTO blobs (hash, kind, data, created) VALUES (?,?,?,?)",
        (digest, kind, zlib.compress(data), time.time()),
    )
    return digest


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    """Two runs that share a history cell, with secrets written in as an old nbtrack did."""
    folder = tmp_path / ".nbtrack"
    store = Store(folder)
    ids = []
    for lr in (0.1, 0.2):
        run = start_run(
            RunSpec(
                name="chat",
                source=f"lr = {lr}\n",
                code=f"lr = {lr}\n",
                capture_env=False,
                history=[HistoryEntry(1, "import os\n"), HistoryEntry(2, f"lr = {lr}\n")],
                cwd=str(tmp_path),
            ),
            store=store,
        )
        run.log(acc=lr)
        run.finish()
        ids.append(run.id)
    store.close()

    conn = sqlite3.connect(folder / "nbtrack.db")
    with conn:
        shared = _blob(conn, "code", f'OPENAI_API_KEY = "{OPENAI}"\nmodel = "gpt"\n'.encode())
        code = _blob(conn, "code", f'password = "{PASSWORD}"\nlr = 0.1\n'.encode())
        env = {
            "packages": {"google-auth": "2.30.0", "numpy": "2.0.0"},
            "env_vars": {"NBTRACK_MIRROR": f"https://pypi.example/?token={HF}"},
        }
        env_hash = _blob(conn, "env", json.dumps(env, sort_keys=True).encode())
        for run_id in ids:
            conn.execute(
                "UPDATE runs SET code_hash=?, env_hash=?, history=? WHERE id=?",
                (code, env_hash, json.dumps([[1, shared], [2, code]]), run_id),
            )
        conn.execute(
            "UPDATE runs SET params=?, note=?, tags=?, error=?, git=?, extra=? WHERE id=?",
            (
                json.dumps({"password": PASSWORD, "lr": 0.1, "use_auth": True}),
                f"worked with {GITHUB}",
                json.dumps(["baseline", OPENAI]),
                json.dumps(
                    {
                        "type": "AuthError",
                        "message": f"bad password {PASSWORD}",
                        "traceback": f'  File "x", line 1\nAuthError: bad password {PASSWORD}\n',
                    }
                ),
                json.dumps({"remotes": {"origin": f"https://ana:{REMOTE_PASSWORD}@git.example/r"}}),
                json.dumps({"argv": ["train.py", "--api-key", "k-3829-xyz"], "cwd": "/w"}),
                ids[0],
            ),
        )
        conn.execute(
            "INSERT INTO artifacts (run_id, name, kind, hash, size, meta, created) "
            "VALUES (?,?,?,?,?,?,?)",
            (ids[1], "weights", "file", "0" * 32, 1, json.dumps({"source": f"/d/{HF}/w.pt"}), 1.0),
        )
        # A sweep keeps its cell's code and history as text.
        conn.execute(
            "INSERT INTO sweeps (id, number, name, status, start_time, objective, direction,"
            " sampler, pruner, n_trials, study_name, storage, code, history, extra)"
            " VALUES ('s1', 1, 'tune', 'finished', 1.0, 'acc', 'max', 'tpe', 'none', 2,"
            " 'study', 'j.log', ?, ?, ?)",
            (
                f"lr = 0.1\nhf_token = '{HF}'\n",
                json.dumps([[1, f"password = '{PASSWORD}'"]]),
                json.dumps({"template": f"hf_token = '{HF}'\n", "workers": 1}),
            ),
        )
    conn.close()
    return tmp_path


def test_scan_names_run_field_and_rule_never_the_value(old_store: Path) -> None:
    result = cli("scan", cwd=old_store)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert not any(secret in out + result.stderr for secret in SECRETS)
    assert "k-3829-xyz" not in out
    widths = [len(dashes) for dashes in out.splitlines()[1].split()]  # the table's columns
    lines = set()
    for line in out.splitlines()[2:-1]:
        run, field, rule = (
            line[: widths[0]],
            line[widths[0] + 2 : sum(widths[:2]) + 2],
            line[sum(widths[:2]) + 4 :],
        )
        lines.add((run.strip(), field.strip(), rule.strip()))
    expected = {
        ("#1", "params.password", "name 'password'"),
        ("#1", "note", "GitHub token"),
        ("#1", "tags[1]", "OpenAI/Anthropic key"),
        ("#1", "error.message", "a secret value found elsewhere"),
        ("#1", "git.remotes.origin", "password in a URL"),
        ("#1", "extra.argv[2]", "the value of a secret-named flag"),
        ("#1", "code", "name 'password'"),
        ("#2", "history In[1]", "name 'api_key'; OpenAI/Anthropic key"),
        ("#2", "environment.env_vars.NBTRACK_MIRROR", "Hugging Face token"),
        ("#2", "artifact 'weights' meta.source", "Hugging Face token"),
        ("sweep #1", "code", "name 'token'; Hugging Face token"),
        ("sweep #1", "history In[1]", "name 'password'"),
        ("sweep #1", "extra.template", "name 'token'; Hugging Face token"),
    }
    assert expected <= lines, lines - expected
    assert not any("google-auth" in line or "use_auth" in line for line in out.splitlines())
    assert len(lines) == 19  # the history cell two runs share is reported for each
    assert out.splitlines()[-1].startswith("19 possible secret(s) in 2 of 2 run(s) and 1 sweep")

    data = json.loads(cli("scan", "--json", cwd=old_store).stdout)
    assert data["clean"] is False and data["runs_scanned"] == 2
    assert len(data["findings"]) == 19
    assert {"run": 1, "field": "params.password", "rule": "name 'password'"} in [
        {k: f[k] for k in ("run", "field", "rule")} for f in data["findings"]
    ]
    assert PASSWORD not in json.dumps(data)


def test_scan_redact_removes_every_copy_and_leaves_a_sound_store(old_store: Path) -> None:
    folder = old_store / ".nbtrack"
    redacted = cli("scan", "--redact", cwd=old_store)
    assert redacted.returncode == 0, redacted.stderr
    assert "redacted 19 secret(s) in 2 run(s) and 1 sweep(s)" in redacted.stdout
    assert "note:" not in redacted.stdout  # nothing held the store: the file was rebuilt

    again = cli("scan", cwd=old_store)
    assert again.returncode == 0, again.stdout
    assert again.stdout.strip() == f"no secrets found in 2 run(s) in {folder.resolve()}"

    conn = sqlite3.connect(folder / "nbtrack.db")
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    blobs = dict(conn.execute("SELECT hash, data FROM blobs").fetchall())
    everything = b"".join(p.read_bytes() for p in folder.glob("nbtrack.db*"))
    everything += b"".join(zlib.decompress(data) for data in blobs.values())
    for table in ("runs", "artifacts", "metrics", "meta", "sweeps"):
        everything += repr(conn.execute(f"SELECT * FROM {table}").fetchall()).encode()
    # Every reference points at a blob that exists; the old blobs are gone.
    for code_hash, env_hash, history in conn.execute(
        "SELECT code_hash, env_hash, history FROM runs"
    ):
        assert {code_hash, env_hash, *(h for _, h in json.loads(history))} <= set(blobs)
    conn.close()
    for secret in (*SECRETS, "k-3829-xyz"):
        assert secret.encode() not in everything, secret[:4]

    first, second = nbtrack.get_run(1, store=folder), nbtrack.get_run(2, store=folder)
    assert first.params == {"password": REDACTED, "lr": 0.1, "use_auth": True}
    assert first.extra["redacted_params"] == ["password"]
    assert first.extra["argv"] == ["train.py", "--api-key", REDACTED]
    assert first.git["remotes"]["origin"] == f"https://ana:{REDACTED}@git.example/r"
    assert first.error is not None and first.error["message"] == f"bad password {REDACTED}"
    assert first.tags == ["baseline", REDACTED] and first.note == f"worked with {REDACTED}"
    assert first.code == f"password = {REDACTED!r}\nlr = 0.1\n"
    assert second.history[0].source == f'OPENAI_API_KEY = {REDACTED!r}\nmodel = "gpt"\n'
    assert first.history[0].source == second.history[0].source  # still one shared blob
    assert second.environment["packages"] == {"google-auth": "2.30.0", "numpy": "2.0.0"}
    assert second.artifacts[0].meta == {"source": f"/d/{REDACTED}/w.pt"}
    assert first.metrics == {"acc": 0.1}  # nothing else changed
    sweep = Store(folder).sweep_row("s1")
    assert sweep["code"] == f"lr = 0.1\nhf_token = {REDACTED!r}\n"
    assert sweep["extra"] == {"template": f"hf_token = {REDACTED!r}\n", "workers": 1}


def test_project_patterns_and_a_bad_pattern(old_store: Path) -> None:
    folder = old_store / ".nbtrack"
    conn = sqlite3.connect(folder / "nbtrack.db")
    with conn:
        conn.execute("UPDATE runs SET note='ticket acme-0123456789ab' WHERE number=2")
    conn.close()
    config = old_store / "nbtrack.toml"
    config.write_text('[secrets]\npatterns = ["acme-[0-9a-f]{12}"]\n', encoding="utf-8")
    found = cli("scan", "--json", cwd=old_store)
    assert found.returncode == 1
    findings = json.loads(found.stdout)["findings"]
    assert {"run": 2, "field": "note", "rule": "configured pattern 'acme-[0-9a-f]{12}'"} in [
        {k: f[k] for k in ("run", "field", "rule")} for f in findings
    ]

    config.write_text('[secrets]\npatterns = ["acme-("]\n', encoding="utf-8")
    bad = cli("scan", cwd=old_store)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.splitlines() == [
        f"nbtrack: error: {config}: [secrets] patterns[0] 'acme-(' is not a valid regular "
        "expression (missing ), unterminated subpattern at position 5); fix it or remove it"
    ]


def test_scan_redact_is_recorded_in_the_registrys_audit_trail(old_store: Path) -> None:
    # A store with a model registry has an audit trail: the redaction is appended to it
    # (where and by which rule, never a value) and the chain still verifies.
    from registry_helpers import make_run

    from nbtrack.registry.api import registry

    folder = old_store / ".nbtrack"
    store = Store(folder)
    number = make_run(store, {"acc": 0.9})
    nbtrack.register(number, "clf", artifact="model", store=store)
    store.close()

    redacted = cli("scan", "--redact", cwd=old_store)
    assert redacted.returncode == 0, redacted.stderr
    reader = registry(Store(folder))
    last = reader.audit()[-1]
    assert str(last.event) == "secrets-redacted"
    assert {"kind": "run", "number": 1, "field": "params.password"}.items() <= next(
        r for r in last.data["redacted"] if r["field"] == "params.password"
    ).items()
    assert not any(secret in json.dumps(last.data) for secret in SECRETS)
    check = reader.verify_audit()
    assert check.ok, check
