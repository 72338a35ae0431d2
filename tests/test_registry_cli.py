"""`nbtrack models ...` as a real subprocess: exit codes, JSON, one-line errors that change
nothing, audit tampering in the database file, four processes promoting at once, and the
CI shell recipe of docs/registry.md run for real."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from registry_helpers import make_run, snapshot, write_policy

from nbtrack.store.sqlite import Store

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def env_for(store: Path, user: str = "ana") -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        NBTRACK_STORE=str(store),
        NBTRACK_USER=user,
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
    )
    return env


def cli(
    project: Path, store: Path, *args: str, user: str = "ana"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbtrack", "models", *args],
        cwd=project,
        env=env_for(store, user),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


@pytest.fixture
def two_versions(store: Store, store_dir: Path, project: Path) -> Path:
    """digits v1 (val_acc 0.90) and v2 (0.96), registered by ana; returns the db path."""
    for acc in (0.90, 0.96):
        number = make_run(store, {"val_acc": acc})
        assert cli(project, store_dir, "register", str(number), "digits").returncode == 0
    return store.db_path


def test_register_promote_gate_and_json(store_dir: Path, project: Path, two_versions: Path) -> None:
    write_policy(project, '[registry.stages.production]\nmetrics = ["val_acc >= 0.95"]\n')
    listed = json.loads(cli(project, store_dir, "list", "--json").stdout)
    assert [(m["name"], m["versions"]) for m in listed] == [("digits", 2)]
    failed = cli(project, store_dir, "gate", "digits", "1", "--stage", "production")
    assert failed.returncode == 1 and "FAILED (1 of 1)" in failed.stdout
    assert "0.9 (needs >= 0.95)" in failed.stdout
    passed = cli(project, store_dir, "gate", "digits", "v2", "--stage", "production", "--json")
    assert passed.returncode == 0 and json.loads(passed.stdout)["passed"] is True
    refused = cli(project, store_dir, "promote", "digits", "1", "--stage", "production")
    assert refused.returncode == 1
    assert "val_acc >= 0.95  FAILED" in refused.stdout  # the table of checks
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith(
        "nbtrack: error: digits v1"
    )
    done = cli(
        project, store_dir, "promote", "digits", "2", "--stage", "production", "--reason", "best"
    )
    assert done.returncode == 0 and "digits v2 promoted to production" in done.stdout
    shown = json.loads(cli(project, store_dir, "show", "digits@production", "--json").stdout)
    assert shown["version"] == 2 and shown["stages"][-1]["reason"] == "best"
    history = cli(project, store_dir, "history", "digits", "--at", "2000-01-01")
    assert "no version of digits was in production at 2000-01-01" in history.stdout
    lines = cli(project, store_dir, "audit", "--json").stdout.splitlines()
    assert [json.loads(line)["event"] for line in lines] == [
        "register",
        "register",
        "gate",
        "gate",
        "gate",
        "promote",
    ]


def test_audit_verify_sees_an_edited_entry_in_the_database_file(
    store_dir: Path, project: Path, two_versions: Path
) -> None:
    assert (
        cli(project, store_dir, "promote", "digits", "2", "--stage", "production").returncode == 0
    )
    ok = cli(project, store_dir, "audit", "--verify")
    assert ok.returncode == 0 and ok.stdout.startswith("audit log verified: 3 entries")
    conn = sqlite3.connect(two_versions, isolation_level=None)
    conn.execute("DROP TRIGGER registry_audit_no_update")  # what someone covering tracks does
    conn.execute("UPDATE registry_audit SET user='mallory' WHERE seq=3")
    conn.close()
    bad = cli(project, store_dir, "audit", "--verify")
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[0].startswith("audit log FAILED verification: 1 problem")
    assert "entry 3 was edited" in bad.stdout
    assert json.loads(cli(project, store_dir, "audit", "--verify", "--json").stdout)["ok"] is False


def test_audit_verify_sees_a_deleted_entry(
    store_dir: Path, project: Path, two_versions: Path
) -> None:
    assert cli(project, store_dir, "promote", "digits", "1", "--stage", "staging").returncode == 0
    conn = sqlite3.connect(two_versions, isolation_level=None)
    conn.execute("DROP TRIGGER registry_audit_no_delete")
    conn.execute("DELETE FROM registry_audit WHERE seq=2")
    conn.close()
    bad = cli(project, store_dir, "audit", "--verify")
    assert bad.returncode == 1
    assert "entry 2 is missing (deleted)" in bad.stdout
    assert "entry 3 does not follow the entry before it" in bad.stdout


BAD_INPUTS = [
    (("show", "nosuch"), "no model 'nosuch' in the registry"),
    (("show", "digits", "9"), "digits has no version 9 (versions 1..2)"),
    (("promote", "digits", "1", "--stage", "production", "--force"), "--force needs --reason"),
    (("approve", "digits", "2", "--stage", "production"), "ana registered digits v2"),
    (("promote", "digits", "3", "--stage", "production"), "digits has no version 3"),
    (("rollback", "digits"), "no version of digits is in production"),
    (("alias", "digits", "production", "1"), "cannot be an alias"),
    (("show", "digits@nope"), "digits has no alias 'nope'"),
    (("history", "digits", "--at", "yesterday"), "--at 'yesterday' is not a date"),
    (("register", "99", "digits"), "no run matches '99'"),
    (("register", "1", "bad/name"), "is not a model name"),
]


def test_every_bad_input_is_one_line_and_changes_nothing(
    store_dir: Path, project: Path, two_versions: Path
) -> None:
    write_policy(project, "[registry.stages.production]\napprovals = 1\nself_approval = false\n")
    before = snapshot(two_versions)
    for args, message in BAD_INPUTS:
        result = cli(project, store_dir, *args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stdout == "", args
        assert result.stderr.count("\n") == 1, (args, result.stderr)
        assert result.stderr.startswith("nbtrack: error: ") and message in result.stderr, (
            args,
            result.stderr,
        )
    # An unknown stage is a usage error (2) naming the choices; a bad policy file is one line.
    unknown = cli(project, store_dir, "promote", "digits", "1", "--stage", "prod")
    assert unknown.returncode == 2 and "invalid choice: 'prod'" in unknown.stderr
    write_policy(project, '[registry.stages.production]\nmetrics = ["val_acuracy > 0.9"]\n')
    typo = cli(project, store_dir, "promote", "digits", "1", "--stage", "production")
    assert typo.returncode == 1 and typo.stderr.count("\n") == 1
    assert "registry.stages.production.metrics: 'val_acuracy' is not a metric" in typo.stderr
    write_policy(project, "[registry.stages.production\n")
    broken = cli(project, store_dir, "promote", "digits", "1", "--stage", "production")
    assert broken.returncode == 1 and "nbtrack.toml cannot be read" in broken.stderr
    assert snapshot(two_versions) == before
    # Archived versions stay archived.
    write_policy(project, "")
    assert cli(project, store_dir, "promote", "digits", "1", "--stage", "archived").returncode == 0
    middle = snapshot(two_versions)
    archived = cli(project, store_dir, "promote", "digits", "1", "--stage", "staging")
    assert archived.returncode == 1 and "archived version cannot move again" in archived.stderr
    assert snapshot(two_versions) == middle


CONTENDER = """
import os, sys, time
from pathlib import Path
from nbtrack.errors import RegistryError
from nbtrack.registry import Registry
from nbtrack.store.sqlite import Store

folder, version, barrier = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
reg = Registry(Store(folder), user=f"user{version}")
plan = reg.plan_promotion("digits", version, "production")
(barrier / f"ready-{version}").touch()
deadline = time.time() + 60
while len(list(barrier.glob("ready-*"))) < 4 and time.time() < deadline:
    time.sleep(0.01)
try:
    print(reg.commit(plan).message)
except RegistryError as exc:
    print(f"refused: {exc}")
    sys.exit(1)
"""


def test_four_processes_promoting_different_versions_at_once_one_wins(
    store: Store, store_dir: Path, project: Path, tmp_path: Path
) -> None:
    for acc in (0.90, 0.91, 0.92, 0.93):
        number = make_run(store, {"val_acc": acc})
        assert cli(project, store_dir, "register", str(number), "digits").returncode == 0
    script = tmp_path / "contender.py"
    script.write_text(CONTENDER, encoding="utf-8")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(store_dir), str(v), str(barrier)],
            env=env_for(store_dir),
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in (1, 2, 3, 4)
    ]
    results = [(p.wait(timeout=120), p.communicate()) for p in procs]
    winners = [out for code, (out, _err) in results if code == 0]
    losers = [out for code, (out, _err) in results if code == 1]
    assert len(winners) == 1 and len(losers) == 3, results
    for out in losers:
        assert out.count("\n") == 1 and "changed while digits v" in out
    rows = sqlite3.connect(store.db_path).execute(
        "SELECT COUNT(*) FROM registry_stages WHERE stage='production'"
    )
    assert rows.fetchone()[0] == 1
    promotes = [e for e in cli(project, store_dir, "audit", "--json").stdout.splitlines()]
    assert sum(json.loads(e)["event"] == "promote" for e in promotes) == 1


def test_four_cli_processes_promoting_the_same_version(
    store_dir: Path, project: Path, two_versions: Path
) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "nbtrack", "models", "promote", "digits", "2"]
            + ["--stage", "production"],
            env=env_for(store_dir, f"user{i}"),
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    results = [(p.wait(timeout=120), p.communicate()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 1, 1, 1], results
    for code, (_out, err) in results:
        if code:
            assert err.count("\n") == 1
            assert re.search(r"already in production|changed while digits v2", err), err
    open_production = sqlite3.connect(two_versions).execute(
        "SELECT version FROM registry_stages WHERE stage='production' AND until IS NULL"
    )
    assert open_production.fetchall() == [(2,)]
    history = json.loads(cli(project, store_dir, "history", "digits", "--json").stdout)
    assert [p["version"] for p in history] == [2]


# -- the CI recipe of docs/registry.md, run for real -------------------------------------------
NOTEBOOK_CELLS = [
    "%load_ext nbtrack",
    "import numpy as np\nrng = np.random.default_rng(0)\nX = rng.normal(size=(300, 5))\n"
    "y = (X @ rng.normal(size=5) > 0).astype(float)",
    "%%track --name digits/ci --seed 0\nlr = 0.1\ntheta = np.zeros(5)\n"
    "for step in range(50):\n    p = 1 / (1 + np.exp(-(X @ theta)))\n"
    "    theta -= lr * X.T @ (p - y) / len(y)\n"
    "track.log(val_acc=float(((X @ theta > 0) == y).mean()))\n"
    "track.artifact(theta, 'model')",
]


def ci_script() -> str:
    doc = (ROOT / "docs" / "registry.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(#!/usr/bin/env bash\n.*?)```", doc, re.DOTALL)
    assert len(blocks) == 1, "docs/registry.md holds one shell CI recipe"
    return blocks[0]


def test_the_ci_shell_recipe_retrains_verifies_registers_gates_and_promotes(
    tmp_path: Path,
) -> None:
    import nbformat

    project = tmp_path / "repo"
    (project / "ci").mkdir(parents=True)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS]
    nbformat.write(notebook, project / "train.ipynb")
    (project / "ci" / "promote.sh").write_text(ci_script(), encoding="utf-8")
    write_policy(
        project,
        """
        [registry.stages.staging]
        metrics = ["val_acc >= 0.9"]
        run_finished = true
        verified = true
        promoters = ["ci-bot"]
        """,
    )
    store = project / ".nbtrack"
    env = env_for(store, "ci-bot")
    del env["NBTRACK_USER"]  # the script sets it
    env["GITHUB_SHA"] = "abc123"
    done = subprocess.run(
        ["bash", "ci/promote.sh"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reproduced" in done.stdout
    assert "digits-classifier v1 promoted to staging" in done.stdout
    assert "audit log verified: 3 entries" in done.stdout
    shown = json.loads(cli(project, store, "show", "digits-classifier@staging", "--json").stdout)
    assert shown["lineage"]["run_number"] == 1 and shown["created_by"] == "ci-bot"
    audit = [
        json.loads(line) for line in cli(project, store, "audit", "--json").stdout.splitlines()
    ]
    assert [e["event"] for e in audit] == ["register", "gate", "promote"]
    assert audit[0]["reason"] == "CI abc123"
    gates = {g["gate"]: g for g in audit[1]["data"]["gates"]}
    assert gates["reproduction verified"]["detail"].startswith("run #1 reproduced by run #2")
    # A stricter gate fails the job at the gate step, and nothing is promoted.
    write_policy(project, '[registry.stages.staging]\nmetrics = ["val_acc >= 0.999"]\n')
    failed = subprocess.run(
        ["bash", "ci/promote.sh"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert failed.returncode == 1 and "FAILED (1 of 1)" in failed.stdout
    stages = json.loads(cli(project, store, "show", "digits-classifier", "--json").stdout)
    assert [(v["version"], v["stage"]) for v in stages] == [(1, "staging"), (2, "development")]


def test_models_help_lists_every_subcommand(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nbtrack", "models", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    for name in ("list", "register", "show", "promote", "approve", "reject", "alias"):
        assert re.search(rf"^\s+{name}\s", out, re.MULTILINE), name
    for name in ("rollback", "gate", "audit", "history"):
        assert re.search(rf"^\s+{name}\s", out, re.MULTILINE), name
    assert "nbtrack models audit --verify" in out


def test_registry_doc_names_every_policy_key_event_and_command() -> None:
    import argparse

    from nbtrack.cli import build_parser
    from nbtrack.registry.policy import STAGE_KEYS
    from nbtrack.registry.records import Event

    doc = (ROOT / "docs" / "registry.md").read_text(encoding="utf-8")
    for key in STAGE_KEYS:
        assert f"| `{key}` |" in doc, key
    for event in Event:
        assert f"`{event}`" in doc, event
    [models] = [
        a.choices["models"]
        for a in build_parser()._actions
        if isinstance(a, argparse._SubParsersAction)
    ]
    [commands] = [a for a in models._actions if isinstance(a, argparse._SubParsersAction)]
    for name, parser in commands.choices.items():
        assert f"nbtrack models {name}" in doc, name
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option not in ("--help", "--store", "--json"):
                    assert option in doc, (name, option)
