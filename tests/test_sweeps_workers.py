"""Sweeps in several processes: ``--workers`` from a real shell (real ``nbtrack sweep worker``
subprocesses), Ctrl-C and a killed worker, and 32 processes sharing one local study."""

from __future__ import annotations

import _thread
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbtrack
from nbtrack.model import HistoryEntry
from nbtrack.store.routing import open_store
from nbtrack.sweeps.plan import CellContext, plan_sweep
from nbtrack.sweeps.runner import load_sweep, open_sweep
from nbtrack.trackline import parse_track_line


def _run(shell, source: str):
    return shell.run_cell(source, store_history=True)


def _states(ref) -> list[str]:
    return [t.state.name for t in nbtrack.get_sweep(ref).study.get_trials(deepcopy=False)]


def test_three_worker_processes_run_each_trial_once(shell, store_dir: Path) -> None:
    _run(shell, "import os, time\nbase = 10")  # an earlier cell the workers re-run
    result = _run(
        shell,
        "%%track --name t/workers --sweep 6 --objective acc --space x=uniform(0,6) "
        "--workers 3 --seed 1 --no-env --quiet\n"
        "x = 1.0\ntime.sleep(0.4)\ntrack.log(acc=base - (x - 3) ** 2, pid=os.getpid())\n",
    )
    assert result.success, result.error_in_exec
    sweep = nbtrack.get_sweep("last")
    trials = sweep.trials
    assert sweep.status == "finished"
    assert trials["trial"].tolist() == list(range(6))  # 6 trials, no more, numbered once
    assert set(trials["state"]) == {"complete"}
    links = open_store(store_dir).sweep_trials(sweep.id)
    assert len({link["run_id"] for link in links}) == 6  # one run per trial
    runs = sweep.runs()
    assert len(runs) == 6 and set(runs["status"]) == {"finished"}
    assert os.getpid() not in set(runs["metrics.pid"])  # trials ran in the workers
    logs = sorted((store_dir / "sweeps").glob(f"{sweep.id}.worker-*.log"))
    assert len(logs) == 3
    assert all(f"joins sweep #{sweep.number}" in log.read_text() for log in logs)
    # A worker's trial is an ordinary run: the earlier cell it depends on is its history.
    record = nbtrack.get_run(int(trials["run"][0]))
    assert "import os, time\nbase = 10" in [entry.source for entry in record.history]
    assert record.params == {"x": trials["params.x"][0]}


def test_ctrl_c_stops_the_workers_and_a_killed_worker_leaves_no_running_trial(
    shell, store_dir: Path
) -> None:
    line = "%%track --name t/stop --objective acc --space x=uniform(0,1) --no-env --quiet --sweep 4"
    slow = "import time\nx = 0.5\nfor _ in range(100):\n    time.sleep(0.05)\ntrack.log(acc=x)\n"
    timer = threading.Timer(4.0, _thread.interrupt_main)  # Ctrl-C once the workers run trials
    timer.start()
    try:
        result = _run(shell, f"{line} --workers 2\n{slow}")
    finally:
        timer.cancel()
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    sweep = nbtrack.get_sweep("last")
    assert sweep.status == "interrupted"
    assert "RUNNING" not in _states(sweep.id)
    assert "running" not in set(nbtrack.runs()["status"])

    # A worker killed outright (kill -9, a dead machine) cannot say anything: the next
    # process that opens the sweep marks its trial crashed, in the study and the store.
    worker = subprocess.Popen(
        [sys.executable, "-m", "nbtrack", "sweep", "worker", sweep.id, "--store", str(store_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while "RUNNING" not in _states(sweep.id):
            assert time.monotonic() < deadline, "the worker never started a trial"
            time.sleep(0.2)
        time.sleep(0.3)  # its run is in the store too
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert "RUNNING" in _states(sweep.id)
    fast = slow.replace("range(100)", "range(1)")
    assert _run(shell, f"{line} --resume\n{fast}").success
    states = nbtrack.get_sweep("last").trials["state"].tolist()
    assert "crashed" in states and "running" not in states
    assert states.count("complete") == 4
    assert "RUNNING" not in _states(sweep.id)
    assert "running" not in set(nbtrack.runs()["status"])


def test_32_workers_on_one_local_study_run_every_trial_without_lock_errors(
    store_dir: Path, tmp_path: Path
) -> None:
    body = "x = 0.5\ntrack.log(acc=x)\n"
    line = "--name t/many --sweep 64 --objective acc --space x=uniform(0,1) --no-env --quiet"
    options = parse_track_line(line)
    context = CellContext(
        code=body,
        template=body,
        magic_line=line,
        history=(HistoryEntry(1, f"%%track {line}\n{body}"),),
        cwd=str(tmp_path),
        execution_count=1,
    )
    store = open_store(store_dir)
    sweep = open_sweep(plan_sweep(options, body), context, store)
    # forkserver: children fork from a clean process that imported nbtrack and Optuna once,
    # so 32 of them start in a moment without sharing this process's open connections.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["nbtrack.sweeps.worker", "optuna"])
    from nbtrack.sweeps.worker import run_worker

    procs = [
        ctx.Process(
            target=run_worker,
            args=(sweep.id,),
            kwargs={"store": str(store_dir), "index": i, "quiet": True},
        )
        for i in range(32)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * 32  # no worker met a lock error
    reread = load_sweep(sweep.id, store=store)
    trials = reread.load_study().get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(64))
    assert {t.state.name for t in trials} == {"COMPLETE"}
    links = store.sweep_trials(sweep.id)
    assert len(links) == 64 and len({link["run_id"] for link in links}) == 64
    assert {link["state"] for link in links} == {"complete"}
    assert len({link["pid"] for link in links}) > 1
    assert {store.run_row(link["run_id"])["status"] for link in links} == {"finished"}


def test_workers_refuse_a_history_export_cannot_reproduce_before_starting(
    shell, store_dir: Path
) -> None:
    shell.register_magic_function(lambda line: None, "line", "nbtrack_test_only")
    history = shell.history_manager
    _run(shell, "%nbtrack_test_only\nbase = 1")
    index = len(history.input_hist_raw) - 1
    try:
        result = _run(
            shell,
            "%%track --name t/noexport --sweep 2 --objective acc --space x=uniform(0,1) "
            "--workers 2 --no-env --quiet\nx = 0.5\ntrack.log(acc=base + x)\n",
        )
    finally:
        # The shell is shared by the whole session: later exports must not meet the magic.
        history.input_hist_raw[index] = history.input_hist_parsed[index] = "base = 1"
    message = str(result.error_in_exec)
    assert "--workers runs the cells this one depends on" in message
    assert "unknown magic %nbtrack_test_only" in message and "run without --workers" in message
    assert "\n" not in message
    assert nbtrack.get_sweep("last").status == "failed"
    assert not list((store_dir / "sweeps").glob("*.worker-*.log"))  # no worker started
