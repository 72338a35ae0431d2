"""The outbox (nbtrack/sync/outbox.py): a run that starts while its PostgreSQL team store is
unreachable is kept locally in full and pushed later, never lost and never duplicated.

"Unreachable" is real: a small TCP proxy on 127.0.0.1 forwards to the session's PostgreSQL
server, and stopping it closes the port (connection refused) and drops the connections that
went through it, as a flaky network does. The store URL names the proxy's port, so the
outbox (keyed by host, port and database) is the same one whether it is up or down.
The tests at the end drop the connection after the store was reached: during a run's start
(parked whole), during the run (its end kept as a continuation that push completes), and
for a moment only (the store reconnects in place: the run goes on, nothing in the outbox);
the last two tests save artifacts while the database is down (kept in the outbox, then
sent by the run when it is back, or by the push of its continuation).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nbtrack import config
from nbtrack.errors import StoreUnreachableError
from nbtrack.store.postgres import PostgresStore, close_pg_stores
from nbtrack.store.routing import connect_store
from nbtrack.store.sqlite import Store
from nbtrack.sync import outbox

PASSWORD = "pw-Zq81-never-written"


class Proxy:
    """A TCP forwarder 127.0.0.1:port -> the PostgreSQL server; :meth:`stop` closes the
    port and every connection through it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() so the port really closes
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def team(pg_server, pg_url, tmp_path, monkeypatch):
    """(proxy, URL through it with a password, the real URL): the proxy starts stopped."""
    proxy = Proxy(pg_server.port)
    database = pg_url.rsplit("/", 1)[1]
    url = f"postgresql://{pg_server.user}:{PASSWORD}@127.0.0.1:{proxy.port}/{database}"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(config.ENV_STORE, url)
    monkeypatch.setenv("NBTRACK_BUSY_TIMEOUT", "5")
    config.set_store_dir(None)
    close_pg_stores()
    yield proxy, url, pg_url
    proxy.stop()
    close_pg_stores()


def _env(tmp_path: Path, url: str) -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    return {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        config.ENV_STORE: url,
        "NBTRACK_BUSY_TIMEOUT": "5",
        "PYTHONPATH": root,
    }


def _python(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in tmp_path with the team store's URL (and no other state)."""
    return subprocess.run(
        [sys.executable, *args],
        env=_env(tmp_path, url),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def _start(tmp_path: Path, url: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``python *args`` like :func:`_python`, with pipes; return it and the first line
    it prints (the scripts print their run's id, then wait for a line on stdin)."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        env=_env(tmp_path, url),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stdin is not None
    return proc, proc.stdout.readline().strip()


def _no_password_under(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def _team_runs(real_url: str) -> list[tuple]:
    team = connect_store(real_url, create=True)
    try:
        return team.list_runs(columns=("id", "number", "name", "status"))
    finally:
        team.close()


def test_cells_while_the_store_is_down_are_kept_and_pushed_once_it_is_back(
    shell, team, capsys
) -> None:
    proxy, url, real_url = team
    folder = outbox.outbox_dir(url)
    proxy.start()
    shell.run_cell("%%track --name before\nlr = 0.1\ntrack.log(loss=1.0)")
    assert [r[2] for r in _team_runs(real_url)] == ["before"]
    capsys.readouterr()

    proxy.stop()  # the kernel's open connection drops, and the port is closed
    cell = (
        "%%track --name offline --seed 3\n"
        "lr = 0.5\n"
        "for i in range(3):\n"
        "    track.log(step=i, loss=1.0 / (i + 1))\n"
        "track.artifact({'w': [1, 2, 3]}, name='weights')\n"
        "ran = True\n"
    )
    result = shell.run_cell(cell)
    assert result.success and shell.user_ns["ran"] is True
    out, err = capsys.readouterr()
    assert "offline" in out  # the cell's summary shows the run
    lines = [line for line in err.splitlines() if "kept locally" in line]
    assert len(lines) == 1 and str(folder) in lines[0] and "nbtrack push --outbox" in lines[0]
    assert "not recorded" not in err and PASSWORD not in err
    kept = Store(folder, create=False)
    (row,) = [kept.run_row(r[0]) for r in kept.list_runs(columns=("id",))]
    kept_metrics = kept.metric_history(row["id"])
    kept_artifacts = kept.artifacts(row["id"])
    kept.close()
    assert row["status"] == "finished" and row["params"]["lr"] == 0.5
    assert [v for _, v, _ in kept_metrics["loss"]] == [1.0, 0.5, 1.0 / 3]
    assert any("outbox" in w for w in row["warnings"])
    assert (folder / outbox.WAITING).exists()
    assert json.loads((folder / outbox.DATABASE).read_text())["url"] == url.replace(
        f":{PASSWORD}", ""
    )
    _no_password_under(folder)

    proxy.start()  # reachable again: the next cell pushes the outbox in the background
    shell.run_cell("%%track --name after\nlr = 0.2")
    thread = outbox._draining[folder]
    thread.join(30)
    runs = _team_runs(real_url)
    assert sorted(r[2] for r in runs) == ["after", "before", "offline"]
    assert sorted(r[1] for r in runs) == [1, 2, 3]  # the pushed run got a team number
    team_store = connect_store(real_url, create=False)
    copy = team_store.run_row(row["id"])
    assert copy["params"] == row["params"] and copy["code_hash"] == row["code_hash"]
    assert team_store.metric_history(row["id"]) == kept_metrics
    assert team_store.artifacts(row["id"]) == kept_artifacts
    team_store.close()
    assert not (folder / outbox.WAITING).exists()
    assert Store(folder, create=False).list_runs(columns=("id",)) == []

    # Pushing again (by hand, in the kernel) copies nothing: still one copy of each run.
    shell.run_cell("%nbtrack push --outbox")
    assert "0 run(s) copied" in capsys.readouterr().out
    assert len(_team_runs(real_url)) == 3


def test_a_refusal_is_not_parked(shell, team, monkeypatch, capsys) -> None:
    proxy, url, _ = team
    proxy.start()
    wrong = url.rsplit("/", 1)[0] + "/no_such_database"
    monkeypatch.setenv(config.ENV_STORE, wrong)
    shell.run_cell("%%track\nx = 1")
    err = capsys.readouterr().err
    assert "not recorded" in err and "does not exist" in err
    assert shell.user_ns["x"] == 1
    assert not outbox.outbox_dir(wrong).exists()


def test_a_running_run_waits_and_a_script_run_is_pushed_by_hand(team, tmp_path, capsys) -> None:
    import nbtrack
    from nbtrack.cli import main

    proxy, url, real_url = team
    script = tmp_path / "train.py"
    script.write_text(
        "import nbtrack\n"
        "with nbtrack.run(name='script', params={'lr': 0.3}) as track:\n"
        "    track.log(acc=0.9)\n"
        "print('done')\n"
    )
    proc = _python(tmp_path, url, str(script))
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
    assert "kept locally" in proc.stderr and PASSWORD not in proc.stderr
    # Pushed by hand while the database is still down: nothing lost, exit status 1.
    down = _python(tmp_path, url, "-m", "nbtrack", "push", "--outbox", "--json")
    (waiting,) = json.loads(down.stdout)
    assert down.returncode == 1 and len(waiting["failed"]) == 1 and waiting["copied"] == []
    assert outbox.waiting_count(url) == 1 and PASSWORD not in down.stdout + down.stderr

    running = nbtrack.run(name="still-running", capture_env=False)  # in the outbox too
    folder = outbox.outbox_dir(url)
    proxy.start()
    capsys.readouterr()
    assert main(["push", "--outbox", "--to", real_url]) == 1  # each outbox has its own
    assert "give no --to" in capsys.readouterr().err
    assert _team_runs(real_url) == []  # (creates the team store's tables)
    assert main(["runs"]) == 0  # the team store, empty yet, says what waits for it
    assert f"2 run(s) of this store wait in the local outbox {folder}" in capsys.readouterr().err
    report = outbox.drain(folder, url)
    assert len(report.copied) == 1 and any("stay in the outbox" in p for p in report.problems)
    assert (folder / outbox.WAITING).exists()  # the running run is not pushed yet
    running.finish()

    proc = _python(tmp_path, url, "-m", "nbtrack", "push", "--outbox", "--json")
    assert proc.returncode == 0, proc.stderr
    (pushed,) = json.loads(proc.stdout)
    assert len(pushed["copied"]) == 1 and pushed["copied"][0] == running.id
    assert PASSWORD not in proc.stdout
    runs = _team_runs(real_url)
    assert sorted(r[2] for r in runs) == ["script", "still-running"]
    assert all(r[3] == "finished" for r in runs)
    _no_password_under(folder)


def test_two_processes_pushing_at_once_leave_one_copy_of_each_run(team, tmp_path) -> None:
    import nbtrack

    proxy, url, real_url = team
    ids = []
    for i in range(4):
        with nbtrack.run(name=f"r{i}", capture_env=False) as track:
            track.log(step=0, loss=float(i))
        ids.append(track.id)
    proxy.start()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "nbtrack", "push", "--outbox", "--json"],
            env=_env(tmp_path, url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    copied = [i for out, _ in outs for report in json.loads(out) for i in report["copied"]]
    assert sorted(copied) == sorted(ids)  # each run copied by exactly one of them
    runs = _team_runs(real_url)
    assert sorted(r[0] for r in runs) == sorted(ids)
    assert sorted(r[1] for r in runs) == [1, 2, 3, 4]


def test_a_silent_server_costs_one_connect_timeout_not_one_per_cell(
    shell, tmp_path, monkeypatch, capsys
) -> None:
    # A listener that accepts connections and never answers: what libpq sees through a VPN
    # that is down. The first run waits out NBTRACK_CONNECT_TIMEOUT and is parked; the
    # runs after it are parked without another attempt (the listener counts attempts).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = int(listener.getsockname()[1])
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    url = f"postgresql://nobody:{PASSWORD}@127.0.0.1:{port}/silent"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(config.ENV_STORE, url)
    monkeypatch.setenv(config.ENV_CONNECT_TIMEOUT, "1")
    monkeypatch.setattr(outbox, "_unreachable", {})
    config.set_store_dir(None)
    try:
        for index in range(3):
            result = shell.run_cell(f"%%track --name silent{index}\nvalue = {index}")
            assert result.success and shell.user_ns["value"] == index
        err = capsys.readouterr().err
        assert err.count("kept locally") == 3 and PASSWORD not in err
        assert len(accepted) == 1  # one attempt for three runs
        kept = Store(outbox.outbox_dir(url), create=False)
        assert sorted(r[0] for r in kept.list_runs(columns=("name",))) == [
            "silent0",
            "silent1",
            "silent2",
        ]
        kept.close()
        # Past the recheck window the next run tries the database again.
        monkeypatch.setattr(outbox, "RECHECK_SECONDS", 0.0)
        shell.run_cell("%%track --name silent3\nvalue = 3")
        assert len(accepted) == 2
    finally:
        listener.close()
        for sock in accepted:
            sock.close()
        config.set_store_dir(None)


# -- a connection that drops after the store was reached (docs/team.md) -------------------
def _outbox_rows(folder: Path) -> list[dict]:
    kept = Store(folder, create=False)
    try:
        return [kept.run_row(r[0]) for r in kept.list_runs(columns=("id",))]
    finally:
        kept.close()


def _team_points(real_url: str, run_id: str) -> dict[str, list[tuple[int, float]]]:
    team = connect_store(real_url, create=False)
    try:
        return {k: [(s, v) for s, v, _ in pts] for k, pts in team.metric_history(run_id).items()}
    finally:
        team.close()


def _team_row(real_url: str, run_id: str) -> dict:
    team = connect_store(real_url, create=False)
    try:
        return team.run_row(run_id)
    finally:
        team.close()


def test_a_connection_dropped_during_the_start_parks_the_run_whole(shell, team, capsys) -> None:
    # The seam is real user code that runs while the run starts: the cell reads an object
    # array, whose fingerprint asks its element's repr(), and that repr stops the proxy.
    # The store was opened and checked; the run's code blob, the next write, meets a
    # dropped connection.
    proxy, url, real_url = team
    folder = outbox.outbox_dir(url)
    proxy.start()
    shell.run_cell("%%track --name before\nlr = 0.1")
    shell.user_ns["cut_the_network"] = proxy.stop
    shell.run_cell(
        "import numpy as np\n"
        "class Cut:\n"
        "    def __repr__(self):\n"
        "        cut_the_network()\n"
        "        return 'Cut()'\n"
        "data = np.array([Cut(), 1], dtype=object)\n"
    )
    capsys.readouterr()
    result = shell.run_cell("%%track --name dropped\nn = len(data)\ntrack.log(loss=0.5)")
    assert result.success and shell.user_ns["n"] == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "kept locally" in line]
    assert len(lines) == 1 and str(folder) in lines[0], err
    assert "not recorded" not in err and PASSWORD not in err
    assert url not in outbox._unreachable  # a fast failure after a success: try again next run
    (row,) = _outbox_rows(folder)
    assert row["name"] == "dropped" and row["status"] == "finished"
    assert [i["name"] for i in row["inputs"]] == ["data"]
    assert any("outbox" in w for w in row["warnings"])
    kept = Store(folder, create=False)
    blobs = [row["code_hash"], row["env_hash"], row["rng_hash"]]
    assert all(h for h in blobs) and set(kept.get_blobs(blobs)) == set(blobs)  # captured again
    kept.close()
    assert [r[2] for r in _team_runs(real_url)] == ["before"]

    proxy.start()
    shell.run_cell("%%track --name after\nlr = 0.2")
    outbox._draining[folder].join(30)
    assert sorted(r[2] for r in _team_runs(real_url)) == ["after", "before", "dropped"]
    assert _team_points(real_url, row["id"]) == {"loss": [(0, 0.5)]}
    assert _outbox_rows(folder) == []
    _no_password_under(folder)


_MIDRUN = """\
import sys
import nbtrack

run = nbtrack.run(name="midrun", params={"lr": 0.1}, capture_env=False)
for i in range(5):
    run.log(step=i, loss=1.0 / (i + 1))
run.flush()
print(run.id, flush=True)
sys.stdin.readline()  # the test stops the proxy: the run's connection drops
for i in range(5, 8):
    run.log(step=i, loss=1.0 / (i + 1), acc=i / 10)
if sys.argv[1] == "finish":
    run.tag("late")
    run.finish()
print("done", flush=True)
"""


def _push_outbox(tmp_path: Path, url: str) -> tuple[int, list[dict], str]:
    proc = _python(tmp_path, url, "-m", "nbtrack", "push", "--outbox", "--json")
    assert PASSWORD not in proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout or "[]"), proc.stderr


@pytest.mark.parametrize("ending", ["finish", "exit"])
def test_a_run_whose_store_drops_mid_run_is_completed_by_push(team, tmp_path, ending) -> None:
    proxy, url, real_url = team
    folder = outbox.outbox_dir(url)
    script = tmp_path / "train.py"
    script.write_text(_MIDRUN)
    proxy.start()
    proc, run_id = _start(tmp_path, url, str(script), ending)
    assert len(_team_points(real_url, run_id)["loss"]) == 5  # flushed before the drop
    proxy.stop()
    out, err = proc.communicate("go\n", timeout=120)
    assert proc.returncode == 0 and out.strip() == "done", err
    lines = [line for line in err.splitlines() if "nbtrack:" in line]
    assert len(lines) == 1 and str(folder) in lines[0] and "6 metric point" in lines[0], err
    assert "unreachable" in lines[0] and PASSWORD not in err
    (row,) = _outbox_rows(folder)  # the continuation: the run's end, waiting
    assert row["id"] == run_id and row["status"] == (
        "finished" if ending == "finish" else "crashed"
    )
    assert outbox.waiting_count(url) == 1
    _no_password_under(folder)

    proxy.start()
    code, (report,), _ = _push_outbox(tmp_path, url)
    assert code == 0 and report["updated"] == [run_id] and report["copied"] == []
    points = _team_points(real_url, run_id)
    assert points["loss"] == [(i, 1.0 / (i + 1)) for i in range(8)]  # N + M, in order, once
    assert points["acc"] == [(i, i / 10) for i in range(5, 8)]
    done = _team_row(real_url, run_id)
    assert done["metrics"] == {"loss": 1.0 / 8, "acc": 0.7}
    if ending == "finish":
        assert done["status"] == "finished" and done["error"] is None
        assert "late" in done["tags"]
    else:
        assert done["status"] == "crashed"
        assert done["error"]["message"] == "the process exited before the run finished"
    assert done["params"] == {"lr": 0.1}
    assert [r[0] for r in _team_runs(real_url)] == [run_id]  # completed, not copied anew
    assert _outbox_rows(folder) == [] and outbox.waiting_count(url) == 0
    _no_password_under(folder)

    # Pushing again changes nothing.
    code, reports, _ = _push_outbox(tmp_path, url)
    assert code == 0 and all(not r["copied"] and not r["updated"] for r in reports)
    assert _team_points(real_url, run_id) == points


def test_a_continuation_pushed_twice_or_after_a_lost_acknowledgement_adds_each_point_once(
    team, tmp_path, capsys
) -> None:
    import shutil

    import nbtrack

    proxy, url, real_url = team
    folder = outbox.outbox_dir(url)
    proxy.start()
    run = nbtrack.run(name="twice", capture_env=False)
    for i in range(4):
        run.log(step=i, loss=float(i))
    run.flush()
    proxy.stop()
    for i in range(4, 10):
        run.log(step=i, loss=float(i))
    run.finish()
    assert "10 metric point" not in capsys.readouterr().err  # only the 6 it lacks
    (row,) = _outbox_rows(folder)
    assert row["extra"]["_nbtrack_continuation"]["flushed"] == {"loss": 4}
    saved = tmp_path / "saved-outbox"
    shutil.copytree(folder, saved)
    proxy.start()

    # A flush the database committed but never acknowledged: two of the tail's points are
    # there already. The push appends only the four after them.
    team_store = connect_store(real_url, create=False)
    team_store.append_metrics(run.id, [("loss", i, float(i), 0.0) for i in (4, 5)])
    team_store.close()
    report = outbox.drain(folder, url)
    assert report.updated == [run.id] and report.problems == []
    expected = [(i, float(i)) for i in range(10)]
    assert _team_points(real_url, run.id) == {"loss": expected}
    assert _team_row(real_url, run.id)["status"] == "finished"

    # The same continuation again (an outbox restored from before that push): nothing added.
    shutil.rmtree(folder)
    shutil.copytree(saved, folder)
    report = outbox.drain(folder, url)
    assert report.updated == [run.id]
    assert _team_points(real_url, run.id) == {"loss": expected}

    # A database holding more than the run ever sent: not guessed at, the continuation stays.
    shutil.rmtree(folder)
    shutil.copytree(saved, folder)
    team_store = connect_store(real_url, create=False)
    team_store.append_metrics(run.id, [("loss", 10, 10.0, 0.0)])
    team_store.close()
    report = outbox.drain(folder, url)
    assert report.failed == [run.id] and any("expected 4 to 10" in p for p in report.problems)
    assert len(_team_points(real_url, run.id)["loss"]) == 11  # nothing appended
    assert [r["id"] for r in _outbox_rows(folder)] == [run.id]

    # A database that lost the run (wiped): the continuation stays, said in one line.
    shutil.rmtree(folder)
    shutil.copytree(saved, folder)
    team_store = connect_store(real_url, create=False)
    team_store.delete_runs([run.id])
    team_store.close()
    report = outbox.drain(folder, url)
    assert report.updated == [] and report.failed == [run.id]
    assert len([p for p in report.problems if "no such run" in p]) == 1
    assert [r["id"] for r in _outbox_rows(folder)] == [run.id]
    assert _team_runs(real_url) == []  # never copied as a new run


def test_a_tracked_cell_whose_store_drops_keeps_its_end(shell, team, capsys, monkeypatch) -> None:
    proxy, url, real_url = team
    folder = outbox.outbox_dir(url)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # restored after the test
    proxy.start()
    shell.user_ns["cut_the_network"] = proxy.stop
    capsys.readouterr()
    result = shell.run_cell(
        "%%track --name cell\n"
        "for i in range(3):\n"
        "    track.log(step=i, loss=float(i))\n"
        "track.flush()\n"
        "cut_the_network()\n"
        "for i in range(3, 5):\n"
        "    track.log(step=i, loss=float(i))\n"
        "import os\n"
        "os.environ['OMP_NUM_THREADS'] = '7'  # the environment changes during the run\n"
        "ran = True\n"
    )
    assert result.success and shell.user_ns["ran"] is True
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if str(folder) in line]) == 1, err
    (row,) = _team_runs(real_url)
    assert row[3] == "running"  # the database has its start and first points only
    proxy.start()
    shell.run_cell("%nbtrack push --outbox")
    assert "1 updated" in capsys.readouterr().out
    assert _team_points(real_url, row[0]) == {"loss": [(i, float(i)) for i in range(5)]}
    done = _team_row(real_url, row[0])
    assert done["status"] == "finished"
    # The environment snapshot taken at the end went through the outbox, blob first.
    team_store = connect_store(real_url, create=False)
    env = json.loads(team_store.get_blob(done["env_hash"]) or b"{}")
    team_store.close()
    assert env["env_vars"]["OMP_NUM_THREADS"] == "7"
    assert not any("environment not stored" in w for w in done["warnings"])
    assert _outbox_rows(folder) == []


def test_a_run_left_open_at_exit_is_ended_in_a_reachable_store(team, tmp_path) -> None:
    # Exit handlers run last-registered first, and the database store's (closing its
    # connections) is registered after the tracker's: the run must still be written.
    proxy, url, real_url = team
    proxy.start()
    script = tmp_path / "left_open.py"
    script.write_text(
        "import nbtrack\n"
        "run = nbtrack.run(name='open', capture_env=False)\n"
        "run.log(loss=1.0)\n"
        "run.flush()\n"
        "run.log(loss=0.5)\n"
        "print(run.id)\n"
    )
    proc = _python(tmp_path, url, str(script))
    assert proc.returncode == 0 and "nbtrack:" not in proc.stderr, proc.stderr
    run_id = proc.stdout.strip()
    assert _team_points(real_url, run_id) == {"loss": [(0, 1.0), (1, 0.5)]}
    row = _team_row(real_url, run_id)
    assert row["status"] == "crashed"
    assert row["error"]["message"] == "the process exited before the run finished"
    assert not outbox.outbox_dir(url).exists()


# -- a connection that drops and comes back while the run goes on (docs/team.md) ------------
def _run_store(run) -> PostgresStore:
    assert isinstance(run.store, PostgresStore)
    return run.store


def test_a_run_goes_on_through_a_connection_blip_and_needs_no_outbox(team, capsys) -> None:
    import nbtrack

    proxy, url, real_url = team
    proxy.start()
    run = nbtrack.run(name="blip", capture_env=False)
    for i in range(3):
        run.log(step=i, loss=float(i))
    run.flush()
    proxy.stop()  # the blip: the run's connection drops, the port refuses
    for i in range(3, 6):
        run.log(step=i, loss=float(i))
    for _ in range(2):  # the dropped connection, then a refused reconnect
        with pytest.raises(StoreUnreachableError) as failed:
            run.flush()
        assert PASSWORD not in str(failed.value) and "\n" not in str(failed.value)
    proxy.start()  # back: the next write connects again
    for i in range(6, 9):
        run.log(step=i, loss=float(i), acc=i / 10)
    run.finish()
    assert _run_store(run).reconnects == 1
    assert _team_points(real_url, run.id) == {
        "loss": [(i, float(i)) for i in range(9)],  # every point once, in order
        "acc": [(i, i / 10) for i in range(6, 9)],
    }
    row = _team_row(real_url, run.id)
    assert row["status"] == "finished" and row["metrics"] == {"loss": 8.0, "acc": 0.8}
    assert row["warnings"] == []  # a blip the run recovered from is not a problem
    assert not outbox.outbox_dir(url).exists()  # no continuation, no marker
    err = capsys.readouterr().err
    assert "kept locally" not in err and "outbox" not in err


def test_a_batch_committed_without_its_acknowledgement_is_not_written_twice(team) -> None:
    """A flush whose COPY the database committed while the connection dropped before the
    acknowledgement arrived: the run saw a failure and still holds the batch. Catching
    that moment on a real network is luck, so the test stands in for it: the proxy makes
    the flush fail for real, then the same batch is written to the database directly (its
    own connection, not through the proxy), which is exactly the state the lost
    acknowledgement leaves. When the database is back the run counts what it has
    (metric_counts) before sending, and drops from its buffer what is already there."""
    import nbtrack

    proxy, url, real_url = team
    proxy.start()
    run = nbtrack.run(name="unacknowledged", capture_env=False)
    for i in range(4):
        run.log(step=i, loss=float(i))
    run.flush()
    proxy.stop()
    for i in range(4, 8):
        run.log(step=i, loss=float(i), acc=i / 10)
    with pytest.raises(StoreUnreachableError):
        run.flush()  # the batch: loss 4-7, acc 4-7
    committed = connect_store(real_url, create=False)
    batch = [p for i in range(4, 8) for p in (("loss", i, float(i), 0.0), ("acc", i, i / 10, 0.0))]
    committed.append_metrics(run.id, batch)
    committed.close()
    proxy.start()
    run.log(step=8, loss=8.0, acc=0.8)
    run.finish()
    assert _team_points(real_url, run.id) == {
        "loss": [(i, float(i)) for i in range(9)],
        "acc": [(i, i / 10) for i in range(4, 9)],
    }
    row = _team_row(real_url, run.id)
    assert row["status"] == "finished" and row["warnings"] == []
    assert not outbox.outbox_dir(url).exists()

    # A database holding points the run cannot account for (another writer): nothing is
    # guessed; the buffer is sent whole and the run says so in one warning.
    other = nbtrack.run(name="surprised", capture_env=False)
    other.log(step=0, loss=0.0)
    other.flush()
    proxy.stop()
    other.log(step=1, loss=1.0)
    with pytest.raises(StoreUnreachableError):
        other.flush()
    stranger = connect_store(real_url, create=False)
    stranger.append_metrics(other.id, [("loss", 7, 7.0, 0.0), ("loss", 8, 8.0, 0.0)])
    stranger.close()
    proxy.start()
    other.finish()
    assert [s for s, _ in _team_points(real_url, other.id)["loss"]] == [0, 7, 8, 1]
    (warning,) = _team_row(real_url, other.id)["warnings"]
    assert "'loss': 3 (sent 1)" in warning and "sent as they are" in warning


def test_a_store_reconnects_for_a_read_and_not_inside_a_transaction(team) -> None:
    proxy, url, real_url = team
    proxy.start()
    store = connect_store(url)
    try:
        assert store.list_runs(columns=("id",)) == []
        proxy.stop()
        for _ in range(2):  # the dropped connection, then the refused reconnect
            with pytest.raises(StoreUnreachableError) as down:
                store.list_runs(columns=("id",))
            message = str(down.value)
            assert "\n" not in message and PASSWORD not in message and "cannot reach" in message
        proxy.start()
        assert store.list_runs(columns=("id",)) == [] and store.reconnects == 1

        # A connection that drops inside a transaction is not replaced there: a statement
        # on a new connection would run outside the transaction. It fails whole; the
        # next call starts afresh.
        with pytest.raises(StoreUnreachableError), store.transaction() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('probe', 1)")
            proxy.stop()
            proxy.start()
            for _ in range(2):
                with pytest.raises(StoreUnreachableError):
                    store.list_runs(columns=("id",))
            assert store.reconnects == 1
        assert store._query("SELECT value FROM meta WHERE key = 'probe'") == []
        assert store.reconnects == 2
    finally:
        store.close()


def test_a_reconnect_that_times_out_is_not_tried_again_at_once(team, monkeypatch) -> None:
    """Behind a network that drops packets, each reconnect waits out the connect timeout:
    after one such slow failure the store fails at once for a while (no new attempt, so a
    run's end does not wait again), then tries again, and reconnects once the database is
    back. A listener on the proxy's port that accepts and never answers is that network;
    it counts the attempts."""
    from nbtrack.store import postgres

    proxy, url, real_url = team
    monkeypatch.setenv(config.ENV_CONNECT_TIMEOUT, "1")
    proxy.start()
    store = connect_store(url)
    silent = socket.socket()
    accepted: list[socket.socket] = []
    try:
        assert store.list_runs(columns=("id",)) == []
        proxy.stop()
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", proxy.port))
        silent.listen(16)

        def accept() -> None:
            with contextlib.suppress(OSError):
                while True:
                    accepted.append(silent.accept()[0])

        threading.Thread(target=accept, daemon=True).start()
        with pytest.raises(StoreUnreachableError):
            store.list_runs(columns=("id",))  # the dropped connection itself
        with pytest.raises(StoreUnreachableError) as slow:
            store.list_runs(columns=("id",))  # one reconnect, waiting out the timeout
        assert len(accepted) == 1
        for _ in range(3):  # within the back-off: the same error, no new attempt
            with pytest.raises(StoreUnreachableError) as again:
                store.list_runs(columns=("id",))
            assert str(again.value) == str(slow.value) and PASSWORD not in str(again.value)
        assert len(accepted) == 1
        monkeypatch.setattr(postgres, "RECONNECT_BACKOFF_SECONDS", 0.0)
        with pytest.raises(StoreUnreachableError):
            store.list_runs(columns=("id",))  # past it: one new attempt
        assert len(accepted) == 2
        with contextlib.suppress(OSError):  # wakes the accept() so the port really closes
            silent.shutdown(socket.SHUT_RDWR)
        silent.close()
        for sock in accepted:
            sock.close()
        proxy.start()
        assert store.list_runs(columns=("id",)) == [] and store.reconnects == 1
    finally:
        silent.close()
        for sock in accepted:
            sock.close()
        store.close()


# -- artifacts saved while the database is down (docs/team.md) -----------------------------
_ARTIFACTS = """\
import sys
from pathlib import Path
import nbtrack

run = nbtrack.run(name="artifacts", capture_env=False)
run.log(step=0, loss=1.0)
run.artifact(b"saved before the drop", name="early")
run.flush()
print(run.id, flush=True)
sys.stdin.readline()  # the test stops the proxy: the run's connection drops
late = run.artifact(b"saved during the outage", name="late")
folder = Path("checkpoint")
(folder / "sub").mkdir(parents=True)
(folder / "a.txt").write_bytes(b"first file")
(folder / "sub" / "b.bin").write_bytes(bytes(range(256)))
kept = run.artifact(folder, name="checkpoint")
print(late.hash, kept.hash, *sorted(kept.meta["files"].values()), flush=True)
run.log(step=1, loss=0.5)
run.finish()
print("done", flush=True)
"""


def test_artifacts_saved_while_the_store_is_down_at_the_end_are_pushed(team, tmp_path) -> None:
    import shutil

    import nbtrack

    proxy, url, real_url = team
    folder = outbox.outbox_dir(url)
    script = tmp_path / "save.py"
    script.write_text(_ARTIFACTS)
    proxy.start()
    proc, run_id = _start(tmp_path, url, str(script))
    proxy.stop()
    out, err = proc.communicate("go\n", timeout=120)
    assert proc.returncode == 0 and out.splitlines()[-1] == "done", err
    late_hashes = out.splitlines()[0].split()
    assert "was not stored" not in err and PASSWORD not in err
    assert len([w for w in err.splitlines() if "kept in the local outbox" in w]) == 2, err
    (line,) = [w for w in err.splitlines() if "nbtrack: the team store became" in w]
    assert "2 artifact(s)" in line and str(folder) in line
    (row,) = _outbox_rows(folder)  # the continuation holds the two records
    kept = Store(folder, create=False)
    assert row["id"] == run_id and [a[0] for a in kept.artifacts(run_id)] == [
        "late",
        "checkpoint",
    ]
    kept.close()
    saved = tmp_path / "outbox-before-push"
    shutil.copytree(folder, saved)

    proxy.start()
    # The database's own artifact storage lacks the content saved during the outage (as
    # when object storage was down too): the push must bring it from the outbox.
    team_store = connect_store(url, create=False)
    for digest in late_hashes:
        team_store.artifact_file(digest).unlink()
    assert [a[0] for a in team_store.artifacts(run_id)] == ["early"]
    code, (report,), _ = _push_outbox(tmp_path, url)
    assert code == 0 and report["updated"] == [run_id] and report["failed"] == []
    record = nbtrack.get_run(run_id, store=team_store)
    assert sorted(a.name for a in record.artifacts) == ["checkpoint", "early", "late"]
    assert record.load_artifact("early") == b"saved before the drop"
    assert record.load_artifact("late") == b"saved during the outage"
    restored = record.load_artifact("checkpoint")
    assert (restored / "a.txt").read_bytes() == b"first file"
    assert (restored / "sub" / "b.bin").read_bytes() == bytes(range(256))
    assert record.status == "finished" and _team_points(real_url, run_id)["loss"] == [
        (0, 1.0),
        (1, 0.5),
    ]
    assert _outbox_rows(folder) == [] and outbox.waiting_count(url) == 0

    # Pushing again changes nothing; a push cut off after the records were added and
    # before the continuation was deleted (put back as it was) adds none twice.
    code, reports, _ = _push_outbox(tmp_path, url)
    assert code == 0 and all(not r["copied"] and not r["updated"] for r in reports)
    shutil.rmtree(folder)
    shutil.copytree(saved, folder)
    code, (report,), _ = _push_outbox(tmp_path, url)
    assert code == 0 and report["updated"] == [run_id] and report["failed"] == []
    assert sorted(a[0] for a in team_store.artifacts(run_id)) == ["checkpoint", "early", "late"]
    assert _team_points(real_url, run_id)["loss"] == [(0, 1.0), (1, 0.5)]
    team_store.close()


def test_an_artifact_saved_during_a_blip_reaches_the_store_when_it_is_back(team) -> None:
    import nbtrack
    from nbtrack.tracker import TrackingWarning

    proxy, url, real_url = team
    folder = outbox.outbox_dir(url)
    proxy.start()
    run = nbtrack.run(name="blip-artifact", capture_env=False)
    run.log(step=0, loss=1.0)
    run.artifact(b"before", name="before")
    run.flush()
    proxy.stop()
    with pytest.warns(TrackingWarning, match="kept in the local outbox"):
        info = run.artifact(b"saved during the blip", name="weights")
    assert info is not None and info.name == "weights"
    assert not any("not stored" in w for w in run.warnings)
    # The database's artifact storage never got it (as with object storage down too).
    _run_store(run).artifact_file(info.hash).unlink()
    with pytest.raises(StoreUnreachableError):
        run.flush()  # still down: the record stays held
    assert _outbox_rows(folder) == []  # content only: no run, no continuation
    proxy.start()
    run.log(step=1, loss=0.5)
    run.flush()  # the first write that reaches the database sends it first
    team_store = connect_store(url, create=False)
    assert [a[0] for a in team_store.artifacts(run.id)] == ["before", "weights"]
    run.artifact(b"after", name="after")
    run.finish()
    record = nbtrack.get_run(run.id, store=team_store)
    assert [a.name for a in record.artifacts] == ["before", "weights", "after"]
    assert record.load_artifact("weights") == b"saved during the blip"
    assert record.status == "finished" and record.warnings == []  # recovered: no problem
    assert _outbox_rows(folder) == [] and outbox.waiting_count(url) == 0
    team_store.close()


def test_a_parked_run_with_a_folder_artifact_is_pushed_with_its_files(team, tmp_path) -> None:
    # A folder's record requires each of its files in the target's storage, not only its
    # manifest: the push copies them (it used to report the run "not copied").
    import nbtrack

    proxy, url, real_url = team
    folder = outbox.outbox_dir(url)
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "rows.csv").write_text("a,b\n1,2\n")
    run = nbtrack.run(name="parked-folder", capture_env=False)  # the proxy is down
    assert run.artifact(data, name="data") is not None
    run.finish()
    proxy.start()
    report = outbox.drain(folder, url)
    assert report.copied == [run.id] and report.failed == []
    team_store = connect_store(url, create=False)
    restored = nbtrack.get_run(run.id, store=team_store).load_artifact("data")
    assert (restored / "sub" / "rows.csv").read_text() == "a,b\n1,2\n"
    team_store.close()


def test_a_note_tags_and_inputs_written_while_the_store_is_down_are_kept(team, tmp_path) -> None:
    """Columns a run writes as it goes (``track.note``, ``track.tag``, ``track.input``,
    ``track.log_params``) meet the dropped connection: they are held and go with the next
    update that reaches the database (a blip), or with the run's end, or, still down at the
    end, with its continuation that push completes."""
    import numpy as np

    import nbtrack

    proxy, url, real_url = team
    proxy.start()
    run = nbtrack.run(name="blip", capture_env=False)
    run.log(step=0, loss=1.0)
    run.flush()
    proxy.stop()
    run.note("written while the database was down")
    run.input(np.arange(10), "train_x")
    proxy.start()
    run.tag("after-the-blip")  # reaches the database, and the held note and input with it
    row = _team_row(real_url, run.id)
    assert row["note"] == "written while the database was down"
    assert [i["name"] for i in row["inputs"]] == ["train_x"]
    assert row["tags"] == ["after-the-blip"]
    run.finish()
    assert _team_row(real_url, run.id)["warnings"] == []

    down = nbtrack.run(name="outage", capture_env=False)
    down.log(step=0, loss=1.0)
    down.flush()
    proxy.stop()
    down.note("first")
    down.input(np.arange(5), "x")
    down.input(np.arange(6), "x")  # replaces the one of the same name, as when reachable
    down.input(np.ones(3), "y")
    down.log_params(lr=0.25)
    down.note("second")  # the later note wins
    down.log(step=1, loss=0.5)
    down.finish()
    folder = outbox.outbox_dir(url)
    (kept,) = _outbox_rows(folder)
    assert kept["id"] == down.id and kept["note"] == "second"
    proxy.start()
    code, reports, err = _push_outbox(tmp_path, url)
    assert code == 0, err
    row = _team_row(real_url, down.id)
    assert row["status"] == "finished" and row["note"] == "second"
    assert row["params"] == {"lr": 0.25}
    inputs = {i["name"]: i for i in row["inputs"]}
    assert sorted(inputs) == ["x", "y"] and inputs["x"]["meta"]["shape"] == [6]
    assert _team_points(real_url, down.id) == {"loss": [(0, 1.0), (1, 0.5)]}


def test_a_parked_run_records_the_database_role_as_its_user(team, tmp_path, monkeypatch) -> None:
    """Nobody named (no $NBTRACK_USER, no git identity), a run on PostgreSQL records the
    database role; parked, the database cannot be asked, so it records the role the URL
    names (else $PGUSER), not this machine's login name, and the push keeps it."""
    proxy, url, real_url = team
    monkeypatch.delenv(config.ENV_USER, raising=False)
    monkeypatch.delenv("PGUSER", raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    role = url.split("://", 1)[1].split(":", 1)[0]
    assert role == "nbtrack" and role != __import__("getpass").getuser()
    script = "import nbtrack\nwith nbtrack.run(name={!r}, capture_env=False): pass\n"
    assert _python(tmp_path, url, "-c", script.format("from-url")).returncode == 0
    # No user in the URL: libpq's $PGUSER names the role.
    no_user = url.replace(f"{role}:{PASSWORD}@", "")
    monkeypatch.setenv("PGUSER", "pguser-role")
    done = _python(tmp_path, no_user, "-c", script.format("from-pguser"))
    assert done.returncode == 0 and "kept locally" in done.stderr, done.stderr
    monkeypatch.delenv("PGUSER")
    monkeypatch.setenv(config.ENV_USER, "declared")  # a declared user still wins
    assert _python(tmp_path, url, "-c", script.format("declared")).returncode == 0
    monkeypatch.delenv(config.ENV_USER)

    kept = Store(outbox.outbox_dir(url), create=False)
    users = {name: user for name, user in kept.list_runs(columns=("name", "user_name"))}
    kept.close()
    assert users == {"from-url": role, "from-pguser": "pguser-role", "declared": "declared"}

    proxy.start()
    pushed = _python(tmp_path, url, "-m", "nbtrack", "push", "--outbox")
    assert pushed.returncode == 0, pushed.stderr
    team_store = connect_store(real_url, create=False)
    try:
        pushed_users = dict(team_store.list_runs(columns=("name", "user_name")))
    finally:
        team_store.close()
    assert pushed_users == users
