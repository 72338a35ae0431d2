"""Sweeps on a PostgreSQL store (a real server, tests/pg_server.py): the study in Optuna's
RDBStorage in the store's own database, trials claimed under an advisory lock by worker
processes sharing it, a killed worker's trial reaped on resume, and the URL's password
never shown or written."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

import nbtrack
from nbtrack import config
from nbtrack.model import HistoryEntry
from nbtrack.store.postgres import PostgresStore, open_pg_store
from nbtrack.sweeps.plan import CellContext, plan_sweep
from nbtrack.sweeps.runner import Sweep, load_sweep, open_sweep, worker_command, worker_env
from nbtrack.sweeps.study import RDB_SCHEMA, RDB_STORAGE
from nbtrack.trackline import parse_track_line

PASSWORD = "Pw-9f2-not-shown"


@pytest.fixture
def pg_store(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``$NBTRACK_STORE`` set to a fresh database's URL with a password in it (the test
    server trusts 127.0.0.1, so any password is accepted: it is there to be hidden)."""
    url = pg_url.replace("://nbtrack@", f"://nbtrack:{PASSWORD}@")
    assert PASSWORD in url
    monkeypatch.setenv(config.ENV_STORE, url)
    monkeypatch.setenv("NBTRACK_ARTIFACTS", str(tmp_path / "artifacts"))
    config.set_store_dir(None)
    return url


def _optuna_rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_a_sweep_on_postgres_keeps_its_study_in_the_same_database(
    shell,
    pg_store: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from IPython.utils.capture import capture_output

    from nbtrack.cli import main

    caplog.set_level(logging.DEBUG)  # whatever Optuna, alembic or SQLAlchemy would log
    with capture_output() as captured:  # the live display, updated after every trial
        result = shell.run_cell(
            "%%track --name t/pg --sweep 4 --objective score --space x=uniform(-3,3) "
            "--seed 3 --no-env\nx = 0.0\ntrack.log(score=-((x - 1) ** 2))\n",
            store_history=True,
        )
    assert result.success, result.error_in_exec
    displayed = [o.data["text/plain"] for o in captured.outputs]
    assert "4/4 trials" in displayed[-1] and "importance: x" in displayed[-1]
    sweep = nbtrack.get_sweep("last")
    assert isinstance(sweep.store, PostgresStore) and sweep.status == "finished"
    trials = sweep.trials
    assert trials["trial"].tolist() == [0, 1, 2, 3] and set(trials["state"]) == {"complete"}
    runs = sweep.runs()  # every trial an ordinary run in the PostgreSQL store
    assert len(runs) == 4 and set(runs["status"]) == {"finished"}
    best = sweep.best_trial
    assert best.metrics["score"] == max(trials["value"]) == sweep.best_value
    assert set(sweep.importances()) == {"x"}
    # The study is rows in the same database, in Optuna's own schema, named by the sweep id.
    assert sweep.study.study_name == f"nbtrack-{sweep.id}"
    assert _optuna_rows(pg_store, f"SELECT study_name FROM {RDB_SCHEMA}.studies") == [
        (f"nbtrack-{sweep.id}",)
    ]
    states = _optuna_rows(pg_store, f"SELECT state FROM {RDB_SCHEMA}.trials ORDER BY number")
    assert [s for (s,) in states] == ["COMPLETE"] * 4
    public = {
        name
        for (name,) in _optuna_rows(
            pg_store, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
    }
    assert {"runs", "sweeps", "sweep_trials"} <= public
    assert not public & {"studies", "trials", "version_info", "alembic_version"}
    (storage,) = _optuna_rows(pg_store, "SELECT storage FROM sweeps")
    assert storage == (RDB_STORAGE,)
    assert not list(Path(sweep.store.path).rglob("*.journal"))  # nothing on the local disk
    # The command line reads the same study.
    capsys.readouterr()
    assert main(["sweep", "ls"]) == 0
    assert "t/pg" in capsys.readouterr().out
    assert main(["sweep", "show", "last", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert len(shown["trials"]) == 4 and {t["state"] for t in shown["trials"]} == {"complete"}
    assert main(["sweep", "show", "last"]) == 0
    printed = capsys.readouterr()
    assert "4/4 trials" in printed.out and "(finished)" in printed.out
    texts = [printed.out, printed.err]
    # Exported as a script, it reruns the same trials into the same database.
    script = tmp_path / "sweep.py"
    assert main(["sweep", "export", "last", "-o", str(script)]) == 0
    ran = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    assert "4/4 trials: 4 complete" in ran.stdout
    again = nbtrack.get_sweep("last")
    assert again.number == sweep.number + 1 and again.id != sweep.id
    assert again.trials["params.x"].tolist() == trials["params.x"].tolist()
    assert len(_optuna_rows(pg_store, f"SELECT 1 FROM {RDB_SCHEMA}.studies")) == 2
    texts += [*capsys.readouterr(), ran.stdout, ran.stderr]
    # The password: in no output, no log record, no row of the store.
    everything = "".join(displayed + texts) + captured.stdout + caplog.text
    everything += repr(sweep) + sweep._repr_html_() + repr(sweep.store)
    dumped = _optuna_rows(pg_store, "SELECT row_to_json(s)::text FROM sweeps s")
    assert PASSWORD not in everything + str(dumped)


def _open(url: str, tmp_path: Path, n: int, body: str, history: str) -> Sweep:
    """A sweep opened as the cell would open it, its earlier cell in the history."""
    line = f"--name t/pgw --sweep {n} --objective acc --space x=uniform(0,1) --no-env --quiet"
    context = CellContext(
        code=body,
        template=body,
        magic_line=line,
        history=(HistoryEntry(1, history), HistoryEntry(2, f"%%track {line}\n{body}")),
        cwd=str(tmp_path),
        execution_count=2,
    )
    return open_sweep(plan_sweep(parse_track_line(line), body), context, open_pg_store(url))


def _worker(sweep: Sweep, index: int, **env: str) -> subprocess.Popen[str]:
    """A real worker process, started the way ``--workers`` starts one."""
    command = worker_command(sweep, index)
    assert PASSWORD not in " ".join(command)  # a command line is readable by every user
    return subprocess.Popen(
        command,
        env={**os.environ, **worker_env(sweep), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


# An earlier cell the workers re-run: each trial waits until both workers have claimed one
# (so the test knows both took part, whatever the machine's speed), or, with
# NBTRACK_TEST_SLOW set, sleeps until it is killed.
PARTNER = """import os, time, psycopg
def both_working():
    if os.environ.get("NBTRACK_TEST_SLOW"):
        time.sleep(120)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with psycopg.connect(os.environ["NBTRACK_STORE"]) as conn:
            (n,) = conn.execute("SELECT count(DISTINCT pid) FROM sweep_trials").fetchone()
        if n >= 2:
            return
        time.sleep(0.05)
"""
BODY = "x = 0.5\nboth_working()\ntrack.log(acc=x)\n"


def test_two_workers_on_one_postgres_study_run_exactly_n_trials(shell, pg_store: str) -> None:
    assert shell.run_cell(PARTNER, store_history=True).success  # the cell workers re-run
    result = shell.run_cell(
        "%%track --name t/pgw --sweep 6 --objective acc --space x=uniform(0,1) --workers 2 "
        "--no-env --quiet\n" + BODY,
        store_history=True,
    )
    assert result.success, result.error_in_exec
    sweep = load_sweep("last", store=pg_store)
    assert PASSWORD not in " ".join(worker_command(sweep, 0))  # what `ps` shows everyone
    trials = sweep.load_study().get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(6))  # N trials, no more
    assert {t.state.name for t in trials} == {"COMPLETE"}
    store = open_pg_store(pg_store)
    links = store.sweep_trials(sweep.id)
    assert len(links) == 6 and len({link["run_id"] for link in links}) == 6
    assert {link["state"] for link in links} == {"complete"}
    assert len({link["pid"] for link in links}) == 2  # both workers ran trials
    assert os.getpid() not in {link["pid"] for link in links}
    assert {store.run_row(link["run_id"])["status"] for link in links} == {"finished"}
    logs = sorted(sweep.log_dir.glob(f"{sweep.id}.worker-*.log"))
    assert len(logs) == 2
    assert PASSWORD not in "".join(log.read_text() for log in logs)


def test_resume_after_a_killed_worker_reaps_its_trial(pg_store: str, tmp_path: Path) -> None:
    sweep = _open(pg_store, tmp_path, 2, BODY.replace("both_working()", "slow()"), SLOW)
    killed = _worker(sweep, 0, NBTRACK_TEST_SLOW="1")
    store = open_pg_store(pg_store)
    try:
        deadline = time.monotonic() + 60
        while not any(link["run_id"] for link in store.sweep_trials(sweep.id)):
            assert time.monotonic() < deadline, "the worker never started a trial"
            time.sleep(0.1)
    finally:
        killed.send_signal(signal.SIGKILL)  # kill -9: it cannot say anything
        killed.communicate()
    study = load_sweep(sweep.id, store=pg_store).load_study()
    assert [t.state.name for t in study.get_trials(deepcopy=False)] == ["RUNNING"]
    resumed = _worker(sweep, 1)
    output = resumed.communicate(timeout=240)[0]
    assert resumed.returncode == 0, output
    record = nbtrack.get_sweep(sweep.id)
    assert record.trials["state"].tolist() == ["crashed", "complete", "complete"]
    assert [t.state.name for t in record.study.get_trials(deepcopy=False)] == [
        "FAIL",
        "COMPLETE",
        "COMPLETE",
    ]
    assert "running" not in set(nbtrack.runs()["status"])
    assert PASSWORD not in output


SLOW = """import os, time
def slow():
    if os.environ.get("NBTRACK_TEST_SLOW"):
        time.sleep(120)
"""


def test_the_claim_lock_is_an_advisory_lock_every_connection_sees(pg_store: str) -> None:
    from nbtrack.sweeps.study import _sweep_lock_key, ask_lock

    def free(key: int) -> bool:
        # Another connection (another machine): can it take the lock now?
        with psycopg.connect(pg_store) as other:
            (taken,) = other.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone()
            return bool(taken)

    store = PostgresStore(pg_store)  # its own connection
    try:
        with ask_lock(store, "sweep-a", RDB_STORAGE):
            assert not free(_sweep_lock_key("sweep-a"))
            assert free(_sweep_lock_key("sweep-b"))  # other sweeps claim meanwhile
        assert free(_sweep_lock_key("sweep-a"))  # released with the transaction
    finally:
        store.close()


def test_a_role_that_cannot_create_optuna_schema_is_told_what_to_ask_for(
    pg_store: str, tmp_path: Path
) -> None:
    import uuid

    from nbtrack.errors import SweepError

    open_pg_store(pg_store)  # nbtrack's tables, made by the database's owner
    role = "r_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_store, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")  # no CREATE on the database
        admin.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        admin.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    limited = pg_store.replace("://nbtrack:", f"://{role}:")
    with pytest.raises(SweepError) as refused:
        _open(limited, tmp_path, 1, "x = 0.5\ntrack.log(acc=x)\n", "y = 1")
    message = str(refused.value)
    assert f"CREATE SCHEMA {RDB_SCHEMA} AUTHORIZATION" in message and "\n" not in message
    assert PASSWORD not in message
    with psycopg.connect(pg_store, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {RDB_SCHEMA} AUTHORIZATION {role}")
    sweep = _open(limited, tmp_path, 1, "x = 0.5\ntrack.log(acc=x)\n", "y = 1")
    assert sweep.load_study().study_name == f"nbtrack-{sweep.id}"


def test_a_pushed_sweep_brings_its_study_and_resumes_in_the_team_store(
    shell, store_dir: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep run on a laptop's SQLite store (its study a journal file beside it) is pushed
    to PostgreSQL with its Optuna study (into Optuna's tables there): the team store reads
    its study and progress, resumes it for more trials, and a pull brings the longer study
    back into another SQLite store. Pushing again adds no trial twice."""
    from nbtrack.sync import pull, push

    line = (
        "%%track --name t/moved --objective acc --space x=uniform(0,100) --seed 5 --no-env "
        "--quiet --sampler random"
    )
    body = "\nx = 1\ntrack.log(acc=x)\n"
    assert shell.run_cell(f"{line} --sweep 3{body}", store_history=True).success
    local = nbtrack.get_sweep("last")
    local_values = local.trials["value"].tolist()
    report = push(pg_url)
    assert report.sweeps == [local.id] and report.problems == [], report.problems
    again = push(pg_url)
    assert again.sweeps == [] and again.problems == []

    team = open_pg_store(pg_url)
    copy = nbtrack.get_sweep(local.id, store=team)
    assert copy.study.study_name == local.study.study_name
    assert [t.value for t in copy.study.get_trials()] == local_values  # once, in order
    assert copy.study.best_value == local.best_value == copy.best_value
    assert copy.progress().count("complete") == 3 and copy.best_params == local.best_params
    assert _optuna_rows(
        pg_url,
        f"SELECT count(*) FROM {RDB_SCHEMA}.trials t JOIN {RDB_SCHEMA}.studies s "
        f"USING (study_id) WHERE s.study_name = 'nbtrack-{local.id}'",
    ) == [(3,)]

    # Resumed in the team store: the same study goes on there.
    monkeypatch.setenv(config.ENV_STORE, pg_url)
    config.set_store_dir(None)
    assert shell.run_cell(f"{line} --sweep 5 --resume{body}", store_history=True).success
    resumed = nbtrack.get_sweep("last")
    assert resumed.id == local.id and resumed.trials["trial"].tolist() == [0, 1, 2, 3, 4]
    assert resumed.trials["value"].tolist()[:3] == local_values

    # Pulled into another SQLite store: the five trials, in a journal beside that store.
    elsewhere = tmp_path / "elsewhere"
    pulled = pull(pg_url, store=elsewhere)
    assert pulled.sweeps == [local.id] and pulled.problems == [], pulled.problems
    back = nbtrack.get_sweep(local.id, store=elsewhere)
    assert len(back.study.get_trials()) == 5 and back.progress().count("complete") == 5
    assert (elsewhere / "sweeps" / f"{local.id}.journal").is_file()
    # The laptop's store pulls the team's two new trials into its journal, after its three.
    assert pull(pg_url, store=store_dir).problems == []
    laptop = nbtrack.get_sweep(local.id, store=store_dir)
    assert [t.value for t in laptop.study.get_trials()] == resumed.trials["value"].tolist()
