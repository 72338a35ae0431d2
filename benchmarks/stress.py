#!/usr/bin/env python
"""The store's promises under concurrency and process deaths, measured (issue #9).

    python benchmarks/stress.py            # the issue's sizes, a few minutes on 2 cores
    python benchmarks/stress.py --quick    # the sizes CI runs (tests/test_stress.py, test_faults.py)
    python benchmarks/stress.py --only writers,sigkill-log --keep

Prints one table, ``test | load | lost | errors | figure``, one row per scenario:

* ``writers``: N processes each write R runs of S steps into one store at once;
* ``kernels``: K real Jupyter kernels (jupyter_client) run tracked cells at once into one
  store, then one kernel is SIGKILLed mid-cell;
* ``sigkill-log``: a process logging a metric every millisecond is SIGKILLed, again and
  again; the points lost are measured as time (last step logged - last step stored);
* ``sigkill-artifact``: a process saving multi-MB artifacts is SIGKILLed mid-save;
* ``sigkill-gc``: ``Store.gc`` (what ``nbtrack gc`` runs) is SIGKILLed mid-sweep.

The tests import the scenario functions from this file, so CI and this script run one
workload at two sizes; the tests then check the stores the scenarios leave behind. Every
process a scenario starts is this file run with ``--worker NAME``. A worker reports its
progress through a 16-byte memory-mapped "beacon" file (steps done, time of the last one),
which stays readable after the worker is killed. Everything lives in one temporary folder,
deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import platform
import random
import signal
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


# -- the beacon: a worker's progress, readable after SIGKILL ---------------------------------
class Beacon:
    """Two numbers shared through a memory-mapped file: a count and a time.

    The worker writes after each step; the file's pages belong to the page cache, so the
    last write survives the worker's SIGKILL and the parent reads it afterwards.
    """

    FORMAT = "<qd"
    SIZE = struct.calcsize(FORMAT)

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            path.write_bytes(b"\0" * self.SIZE)
        self._fh = open(path, "r+b")  # open for as long as the beacon lives
        self._map = mmap.mmap(self._fh.fileno(), self.SIZE)

    def set(self, count: int, when: float) -> None:
        """Record that ``count`` steps are done, the last at ``when``."""
        self._map[: self.SIZE] = struct.pack(self.FORMAT, count, when)

    def read(self) -> tuple[int, float]:
        """``(count, time of the last step)``."""
        count, when = struct.unpack(self.FORMAT, self._map[: self.SIZE])
        return int(count), float(when)

    def wait_for(self, count: int, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
        """Wait until the worker has done ``count`` steps; raise if it died or stalled."""
        deadline = time.monotonic() + timeout
        while self.read()[0] < count:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited ({proc.returncode}): {_output(proc)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker made no progress in {timeout:g}s")
            time.sleep(0.005)

    def close(self) -> None:
        """Unmap and close the file."""
        self._map.close()
        self._fh.close()


# -- workers (this file run as a separate process) ---------------------------------------------
def _worker_write(args: argparse.Namespace) -> None:
    """Write ``--runs`` runs of ``--steps`` steps; print the errors met as JSON."""
    import nbtrack
    from nbtrack.errors import NbtrackError

    errors: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(args.runs):
            try:
                with nbtrack.run(
                    name=args.name, params={"i": i}, store=args.store, capture_env=False
                ) as track:
                    for step in range(args.steps):
                        track.log(loss=1.0 / (step + 1), step=step)
            except NbtrackError as exc:
                errors.append(str(exc))
    errors += [str(w.message) for w in caught if "nbtrack" in str(w.message)]
    print(json.dumps({"errors": errors}))


def _worker_log(args: argparse.Namespace) -> None:
    """Log a metric about every millisecond until killed (or ``--seconds`` pass)."""
    import nbtrack

    beacon = Beacon(Path(args.beacon))
    deadline = time.time() + args.seconds
    with nbtrack.run(name=args.name, store=args.store, capture_env=False) as track:
        step = 0
        while time.time() < deadline:
            track.log(loss=1.0 / (step + 1), step=step)
            beacon.set(step + 1, time.time())
            step += 1
            time.sleep(0.001)


def _worker_artifacts(args: argparse.Namespace) -> None:
    """Save distinct artifacts of ``--size`` bytes, as bytes and as files, until killed."""
    import nbtrack

    beacon = Beacon(Path(args.beacon))
    scratch = Path(args.beacon).with_suffix(".scratch")
    scratch.mkdir(exist_ok=True)
    body = os.urandom(args.size)
    with nbtrack.run(name=args.name, store=args.store, capture_env=False) as track:
        for j in range(10**9):
            content = struct.pack("<qq", os.getpid(), j) + body  # distinct every time
            if j % 2:
                path = scratch / f"weights-{j}.bin"
                path.write_bytes(content)
                track.artifact(path, name=f"file-{j}")
                path.unlink()
            else:
                track.artifact(content, name=f"bytes-{j}")
            beacon.set(j + 1, time.time())


def _worker_gc(args: argparse.Namespace) -> None:
    """Run ``Store.gc(grace=0)``: the beacon says 1 when it starts and 2 when it is done."""
    from nbtrack.store.sqlite import Store

    beacon = Beacon(Path(args.beacon))
    store = Store(args.store, create=False)
    beacon.set(1, time.time())
    result = store.gc(grace=0)
    beacon.set(2, time.time())
    print(json.dumps(result))


WORKERS: dict[str, Callable[[argparse.Namespace], None]] = {
    "write": _worker_write,
    "log": _worker_log,
    "artifacts": _worker_artifacts,
    "gc": _worker_gc,
}


def _spawn(worker: str, store: Path, **options: Any) -> subprocess.Popen[str]:
    argv = [sys.executable, str(HERE), "--worker", worker, "--store", str(store)]
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_worker_env()
    )


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NBTRACK_STORE", None)  # workers get --store; nothing from the developer's shell
    env["GIT_PYTHON_REFRESH"] = "quiet"
    return env


def _output(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=30)
    return (out + err).strip()[-2000:]


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


# -- what a scenario reports -------------------------------------------------------------------
@dataclass
class Outcome:
    """One row of the table, plus the raw numbers behind it."""

    test: str
    load: str
    lost: str
    errors: int
    figure: str
    details: dict[str, Any] = field(default_factory=dict)


def _db(folder: Path) -> sqlite3.Connection:
    """A plain SQLite connection: reading through it marks nothing crashed."""
    return sqlite3.connect(f"file:{folder / 'nbtrack.db'}?mode=ro", uri=True)


def integrity(folder: Path) -> str:
    """SQLite's ``PRAGMA integrity_check`` of the store: ``"ok"`` when sound."""
    with _connection(folder) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


@contextmanager
def _connection(folder: Path) -> Iterator[sqlite3.Connection]:
    conn = _db(folder)
    try:
        yield conn
    finally:
        conn.close()


def run_statuses(folder: Path, pattern: str) -> dict[str, str]:
    """``{name: status}`` of the runs whose name matches the glob ``pattern``."""
    with _connection(folder) as conn:
        rows = conn.execute("SELECT name, status FROM runs WHERE name GLOB ?", (pattern,))
        return {name: status for name, status in rows}


def stored_steps(folder: Path, name: str) -> tuple[int, int, float | None]:
    """``(points, highest step, time of the latest point)`` stored for the run ``name``."""
    with _connection(folder) as conn:
        count, top, ts = conn.execute(
            "SELECT COUNT(*), COALESCE(MAX(step), -1), MAX(ts) FROM metrics "
            "WHERE run_id=(SELECT id FROM runs WHERE name=?)",
            (name,),
        ).fetchone()
    return int(count), int(top), ts


def check_artifacts(folder: Path) -> dict[str, int]:
    """Load every recorded artifact through nbtrack (hash checked); count what fails.

    Also looks at every content file on disk: one whose bytes do not hash to its name
    would be a half-written file under a content name.
    """
    from nbtrack.artifacts import load_artifact
    from nbtrack.errors import ArtifactError
    from nbtrack.store.sqlite import Store, content_hash

    store = Store(folder, create=False)
    try:
        with _connection(folder) as conn:
            rows = conn.execute("SELECT kind, hash, meta FROM artifacts").fetchall()
        failed = 0
        for kind, digest, meta in rows:
            try:
                load_artifact(store, kind, digest, json.loads(meta))
            except ArtifactError:
                failed += 1
        temp = bad_files = files = 0
        for path in (folder / "artifacts").glob("*/*"):
            if path.name.startswith(".tmp-"):
                temp += 1
            else:
                files += 1
                if content_hash(path.read_bytes()) != path.parent.name + path.name:
                    bad_files += 1
    finally:
        store.close()
    return {"rows": len(rows), "failed": failed, "files": files, "bad": bad_files, "temp": temp}


# -- scenarios -----------------------------------------------------------------------------------
def concurrent_writers(folder: Path, procs: int, runs: int, steps: int) -> Outcome:
    """``procs`` processes write ``runs`` runs of ``steps`` steps each into one store at once."""
    from nbtrack.store.sqlite import Store

    Store(folder).close()
    started = time.perf_counter()
    workers = [
        _spawn("write", folder, name=f"writer/{w}", runs=runs, steps=steps) for w in range(procs)
    ]
    errors: list[str] = []
    for proc in workers:
        out, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            errors.append(f"worker exit {proc.returncode}: {err.strip()[-500:]}")
            continue
        errors += json.loads(out.strip().splitlines()[-1])["errors"]
    wall = time.perf_counter() - started
    with _connection(folder) as conn:
        finished = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE name GLOB 'writer/*' AND status='finished'"
        ).fetchone()[0]
        points = conn.execute(
            "SELECT COUNT(*) FROM metrics JOIN runs ON runs.id = metrics.run_id "
            "WHERE runs.name GLOB 'writer/*'"
        ).fetchone()[0]
        warned = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE name GLOB 'writer/*' AND warnings != '[]'"
        ).fetchone()[0]
    want_runs, want_points = procs * runs, procs * runs * steps
    return Outcome(
        test="writers",
        load=f"{procs} procs x {runs:,} runs x {steps:,} steps",
        lost=f"{want_runs - finished} runs, {want_points - points:,} points",
        errors=len(errors) + warned,
        figure=f"{finished:,} runs, {points:,} points in {wall:.1f} s "
        f"({points / wall:,.0f} points/s, {finished / wall:.1f} runs/s)",
        details={"finished": finished, "points": points, "wall": wall, "messages": errors},
    )


def _kernelspec(root: Path) -> Path:
    """A ``python3`` kernelspec that runs this interpreter (found first via JUPYTER_PATH)."""
    spec = root / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "nbtrack stress", "language": "python"})
    )
    return root / "jupyter"


def tracked_cell(name: str, steps: int) -> str:
    """The cell each kernel runs: a ``%%track`` loop logging ``steps`` points, one a
    millisecond, so the kernels' background flushes overlap."""
    return (
        f"%%track -q --name {name}\n"
        "import time\n"
        f"for step in range({steps}):\n"
        "    track.log(loss=1.0 / (step + 1), step=step)\n"
        "    time.sleep(0.001)\n"
    )


def concurrent_kernels(folder: Path, kernels: int, cells: int, steps: int) -> Outcome:
    """``kernels`` real kernels run ``cells`` tracked cells each at once; then one of them
    is SIGKILLed inside a tracked cell and the next open of the store must mark it crashed."""
    from jupyter_client.manager import KernelManager

    from nbtrack.store.sqlite import Store

    root = folder.parent / "kernels"
    env = _worker_env() | {
        "JUPYTER_PATH": str(_kernelspec(root)),
        "IPYTHONDIR": str(root / "ipython"),
        "NBTRACK_STORE": str(folder),
    }
    env.pop("NBTRACK_NOTEBOOK", None)
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]  # the kernelspec manager reads it
    managers: list[Any] = []
    clients: list[Any] = []
    log = open(root / "kernels.log", "ab")  # closed in `finally` below
    try:
        for _ in range(kernels):
            km = KernelManager(kernel_name="python3")
            # The kernels' own chatter goes to a log next to the store, not into the table.
            km.start_kernel(env=env, cwd=str(root), stdout=log, stderr=log)
            managers.append(km)
        for km in managers:
            kc = km.client()
            kc.start_channels()
            kc.wait_for_ready(timeout=120)
            clients.append(kc)
        failures = _execute_all(clients, lambda k: ["%load_ext nbtrack"])
        started = time.perf_counter()
        failures += _execute_all(
            clients, lambda k: [tracked_cell(f"kernel/{k}", steps) for _ in range(cells)]
        )
        wall = time.perf_counter() - started
        # A kernel dies inside a tracked cell (the OOM killer, `kill -9`, a crashed driver).
        victim = clients[0]
        victim.execute(
            "%%track -q --name kernel/killed\nimport time\nfor step in range(10**9):\n"
            "    track.log(loss=1.0, step=step)\n    time.sleep(0.001)\n"
        )
        deadline = time.monotonic() + 60
        while stored_steps(folder, "kernel/killed")[0] == 0:  # wait for its first flush
            if time.monotonic() > deadline:
                raise RuntimeError("the killed kernel's run never flushed")
            time.sleep(0.05)
        os.kill(managers[0].provisioner.process.pid, signal.SIGKILL)
        managers[0].provisioner.process.wait()
    finally:
        for kc in clients:
            kc.stop_channels()
        for km in managers:
            km.shutdown_kernel(now=True)
        log.close()
        if saved is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = saved
    killed_before_open = run_statuses(folder, "kernel/killed")
    Store(folder, create=False).close()  # any nbtrack process opening the store
    killed_after_open = run_statuses(folder, "kernel/killed")
    # A kernel's cells share a run name: count rows, not names.
    with _connection(folder) as conn:
        finished = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE name GLOB 'kernel/[0-9]*' AND status='finished'"
        ).fetchone()[0]
        points = conn.execute(
            "SELECT COUNT(*) FROM metrics JOIN runs ON runs.id = metrics.run_id "
            "WHERE runs.name GLOB 'kernel/[0-9]*'"
        ).fetchone()[0]
    crashed = killed_after_open.get("kernel/killed") == "crashed"
    want_runs, want_points = kernels * cells, kernels * cells * steps
    return Outcome(
        test="kernels",
        load=f"{kernels} kernels x {cells} cells x {steps:,} steps, then 1 kernel SIGKILLed",
        lost=f"{want_runs - finished} runs, {want_points - points:,} points",
        errors=len(failures) + (0 if crashed else 1),
        figure=f"{finished} runs in {wall:.1f} s at once; killed kernel's run "
        f"{killed_before_open.get('kernel/killed')} -> "
        f"{killed_after_open.get('kernel/killed')} on next open",
        details={
            "finished": finished,
            "points": points,
            "failures": failures,
            "killed_before_open": killed_before_open.get("kernel/killed"),
            "killed_after_open": killed_after_open.get("kernel/killed"),
        },
    )


def _execute_all(
    clients: list[Any], cells_for: Callable[[int], list[str]], timeout: float = 600.0
) -> list[str]:
    """Send kernel ``k`` its ``cells_for(k)`` without waiting, all kernels at once, then
    collect the replies. Returns one line per cell that did not end with status ``ok``."""
    pending: list[tuple[Any, str]] = []
    for k, kc in enumerate(clients):
        for code in cells_for(k):
            pending.append((kc, kc.execute(code)))
    failures = []
    for kc, msg_id in pending:
        while True:
            reply = kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        if content["status"] != "ok":
            failures.append(f"{content.get('ename')}: {content.get('evalue')}")
    return failures


def sigkill_loggers(folder: Path, kills: int, seed: int = 0) -> Outcome:
    """SIGKILL a process logging every millisecond ``kills`` times, at random moments.

    For each kill: the points lost, as time (the last step logged minus the last step
    stored) and as steps; whether the stored steps are a gap-free prefix; whether the next
    process to open the store marked the run crashed. Then ``PRAGMA integrity_check`` and a
    run that must write normally.
    """
    from nbtrack.store.sqlite import Store

    rng = random.Random(seed)
    Store(folder).close()
    lost_seconds: list[float] = []
    lost_steps: list[int] = []
    gaps = 0
    marked_by_next: list[bool] = []
    for i in range(kills):
        beacon = Beacon(folder.parent / f"log-{i}.beacon")
        proc = _spawn("log", folder, name=f"killed/{i}", beacon=beacon.path, seconds=120)
        beacon.wait_for(1, proc)  # it has opened the store and logs
        if i:
            # This worker opened the store: the run killed before it must read as crashed.
            marked_by_next.append(
                run_statuses(folder, f"killed/{i - 1}")[f"killed/{i - 1}"] == "crashed"
            )
        time.sleep(rng.uniform(0.2, 1.2))
        _kill(proc)
        logged, logged_at = beacon.read()
        beacon.close()
        points, top, stored_at = stored_steps(folder, f"killed/{i}")
        gaps += points != top + 1  # stored steps must be 0..top, nothing missing between
        with _connection(folder) as conn:
            (start,) = conn.execute(
                "SELECT start_time FROM runs WHERE name=?", (f"killed/{i}",)
            ).fetchone()
        lost_seconds.append(logged_at - (stored_at if stored_at is not None else start))
        lost_steps.append(logged - 1 - top)
    # The next process: one ordinary run, which must write normally.
    proc = _spawn("write", folder, name="after-kills", runs=1, steps=1000)
    out, err = proc.communicate(timeout=120)
    after_errors = (
        json.loads(out.strip().splitlines()[-1])["errors"] if proc.returncode == 0 else [err]
    )
    marked_by_next.append(
        run_statuses(folder, f"killed/{kills - 1}")[f"killed/{kills - 1}"] == "crashed"
    )
    after_ok = (
        run_statuses(folder, "after-kills") == {"after-kills": "finished"}
        and stored_steps(folder, "after-kills")[0] == 1000
        and not after_errors
    )
    check = integrity(folder)
    unmarked = marked_by_next.count(False)
    errors = unmarked + gaps + (check != "ok") + (not after_ok)
    return Outcome(
        test="sigkill-log",
        load=f"{kills} x SIGKILL of a process logging 1 step/ms",
        lost=f"max {max(lost_seconds):.2f} s, median {statistics.median(lost_seconds):.2f} s "
        f"(max {max(lost_steps):,} steps)",
        errors=errors,
        figure=f"{kills - unmarked}/{kills} marked crashed by the next open; "
        f"{gaps} gaps; integrity {check}; next run {'ok' if after_ok else 'FAILED'}",
        details={
            "lost_seconds": lost_seconds,
            "lost_steps": lost_steps,
            "marked_by_next": marked_by_next,
            "gaps": gaps,
            "integrity": check,
            "after_ok": after_ok,
            "after_errors": after_errors,
        },
    )


def sigkill_artifact_saves(folder: Path, kills: int, size: int, seed: int = 0) -> Outcome:
    """SIGKILL a process saving ``size``-byte artifacts (as bytes and as files) mid-save.

    Even-numbered kills strike while a content file is being written (a ``.tmp-`` file is
    seen), odd ones at a random moment. An artifact counts as lost when ``track.artifact``
    had returned for it (the worker's beacon) but the store cannot load it.
    """
    from nbtrack.store.sqlite import Store

    rng = random.Random(seed)
    Store(folder).close()
    artifacts = folder / "artifacts"
    cut_short = lost = 0
    for i in range(kills):
        beacon = Beacon(folder.parent / f"artifacts-{i}.beacon")
        temp_before = set(artifacts.glob("*/.tmp-*"))
        proc = _spawn("artifacts", folder, name=f"saving/{i}", beacon=beacon.path, size=size)
        beacon.wait_for(1, proc)
        if i % 2 == 0:
            deadline = time.monotonic() + 30
            while not set(artifacts.glob("*/.tmp-*")) - temp_before:
                if time.monotonic() > deadline:
                    raise RuntimeError("the artifact worker wrote no content file in 30 s")
                time.sleep(0.001)
        else:
            time.sleep(rng.uniform(0.0, 0.4))
        _kill(proc)
        returned = beacon.read()[0]
        beacon.close()
        cut_short += bool(set(artifacts.glob("*/.tmp-*")) - temp_before)
        with _connection(folder) as conn:
            (recorded,) = conn.execute(
                "SELECT COUNT(*) FROM artifacts WHERE run_id=(SELECT id FROM runs WHERE name=?)",
                (f"saving/{i}",),
            ).fetchone()
        lost += max(0, returned - recorded)
    before = check_artifacts(folder)
    result = Store(folder, create=False).gc(grace=0)
    after = check_artifacts(folder)
    errors = lost + before["failed"] + before["bad"] + after["failed"] + after["bad"]
    errors += after["temp"]
    return Outcome(
        test="sigkill-artifact",
        load=f"{kills} x SIGKILL while saving {size / 1e6:g} MB artifacts",
        lost=f"{lost + after['failed']} of {after['rows']} saved artifacts",
        errors=errors,
        figure=f"{cut_short}/{kills} kills cut a write short ({before['temp']} temp files, "
        f"{before['bad']} bad files under a content name); gc removed {result['files']}; "
        f"all {after['rows']} load, hash checked",
        details={
            "before": before,
            "after": after,
            "gc": result,
            "cut_short": cut_short,
            "lost": lost,
        },
    )


def sigkill_gc(folder: Path, kills: int, garbage: int, seed: int = 0) -> Outcome:
    """SIGKILL ``Store.gc`` part-way through sweeping ``garbage`` unreferenced files."""
    from nbtrack.store.sqlite import Store

    rng = random.Random(seed)
    store = Store(folder)
    store.create_run("kept", {"name": "kept", "status": "finished", "start_time": time.time()})
    keep_dir = folder.parent / "kept-dir"
    keep_dir.mkdir(exist_ok=True)
    for n in range(20):
        (keep_dir / f"part-{n}.bin").write_bytes(os.urandom(2048))
    from nbtrack.artifacts import save_artifact

    for n in range(50):
        kind, digest, size, meta, _ = save_artifact(store, os.urandom(4096))
        store.add_artifact("kept", f"kept-{n}", kind, digest, size, meta)
    kind, digest, size, meta, _ = save_artifact(store, keep_dir)
    store.add_artifact("kept", "kept-dir", kind, digest, size, meta)
    referenced = _referenced(folder)
    _litter(store, -1, garbage)
    began = time.perf_counter()
    store.gc(grace=0)
    sweep = time.perf_counter() - began  # how long one sweep takes: kills land inside it
    mid_gc = 0
    for i in range(kills):
        _litter(store, i, garbage)
        beacon = Beacon(folder.parent / f"gc-{i}.beacon")
        proc = _spawn("gc", folder, beacon=beacon.path)
        beacon.wait_for(1, proc)
        time.sleep(rng.uniform(0.05, 0.8) * sweep)
        finished_first = beacon.read()[0] == 2
        _kill(proc)
        beacon.close()
        mid_gc += not finished_first
    before = check_artifacts(folder)
    check = integrity(folder)
    store.gc(grace=0)
    on_disk = {p.parent.name + p.name for p in (folder / "artifacts").glob("*/*")}
    after = check_artifacts(folder)
    store.close()
    exact = on_disk == referenced
    errors = before["failed"] + after["failed"] + (check != "ok") + (not exact)
    return Outcome(
        test="sigkill-gc",
        load=f"{kills} x SIGKILL during gc of {garbage:,} unreferenced files",
        lost=f"{before['failed']} of {before['rows']} recorded artifacts",
        errors=errors,
        figure=f"{mid_gc}/{kills} kills mid-sweep; integrity {check}; a final gc left "
        f"{'exactly the' if exact else 'NOT only the'} {len(referenced)} referenced files",
        details={
            "before": before,
            "after": after,
            "mid_gc": mid_gc,
            "integrity": check,
            "exact": exact,
            "sweep": sweep,
        },
    )


def _referenced(folder: Path) -> set[str]:
    """The content hashes the store's artifact rows refer to, read with plain SQLite."""
    with _connection(folder) as conn:
        rows = conn.execute("SELECT kind, hash, meta FROM artifacts").fetchall()
    referenced = set()
    for kind, digest, meta in rows:
        referenced.add(digest)
        if kind == "dir":
            referenced.update(json.loads(meta)["files"].values())
    return referenced


def _litter(store: Any, batch: int, count: int) -> None:
    """``count`` unreferenced content files and 50 orphan blobs: work for ``gc``.

    Written straight under their content names (no temp file, no fsync): they only need
    to look like content no run refers to any more.
    """
    from nbtrack.store.sqlite import content_hash

    for n in range(count):
        data = struct.pack("<qq", batch, n) + b"garbage" * 64
        target = store.artifact_file(content_hash(data))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    store.put_blobs("env", [f"orphan {batch} {n}".encode() for n in range(50)])


# -- the table -------------------------------------------------------------------------------------
SIZES: dict[str, dict[str, dict[str, int]]] = {
    "full": {
        "writers": {"procs": 8, "runs": 100, "steps": 1000},
        "kernels": {"kernels": 4, "cells": 10, "steps": 1000},
        "sigkill-log": {"kills": 20},
        "sigkill-artifact": {"kills": 20, "size": 16_000_000},
        "sigkill-gc": {"kills": 20, "garbage": 2000},
    },
    "quick": {
        "writers": {"procs": 4, "runs": 10, "steps": 200},
        "kernels": {"kernels": 4, "cells": 2, "steps": 200},
        "sigkill-log": {"kills": 5},
        "sigkill-artifact": {"kills": 5, "size": 4_000_000},
        "sigkill-gc": {"kills": 5, "garbage": 500},
    },
}
SCENARIOS: dict[str, Callable[..., Outcome]] = {
    "writers": concurrent_writers,
    "kernels": concurrent_kernels,
    "sigkill-log": sigkill_loggers,
    "sigkill-artifact": sigkill_artifact_saves,
    "sigkill-gc": sigkill_gc,
}


def render(outcomes: list[Outcome]) -> str:
    """The ``test | load | lost | errors | figure`` table as Markdown."""
    lines = ["| test | load | lost | errors | figure |", "|---|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {o.test} | {o.load} | {o.lost} | {o.errors} | {o.figure} |")
    return "\n".join(lines)


def machine() -> str:
    """One line about where the numbers were taken."""
    load = os.getloadavg()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; load average {load[0]:.2f} at the end"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and print the table; exit 1 when any scenario counted an error."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="the sizes CI runs")
    parser.add_argument("--only", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    parser.add_argument("--json", help="also write the outcomes to this file")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--beacon", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=1 << 20, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        WORKERS[args.worker](args)
        return 0
    chosen = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    sizes = SIZES["quick" if args.quick else "full"]
    root = Path(tempfile.mkdtemp(prefix="nbtrack-stress-"))
    outcomes = []
    started = time.perf_counter()
    try:
        for name in chosen:
            print(f"[stress] {name} {sizes[name]} ...", file=sys.stderr, flush=True)
            folder = root / name / "store"
            folder.parent.mkdir(parents=True)
            began = time.perf_counter()
            outcome = SCENARIOS[name](folder, **sizes[name])
            print(f"[stress] {name} done in {time.perf_counter() - began:.1f} s", file=sys.stderr)
            outcomes.append(outcome)
    finally:
        if args.keep:
            print(f"[stress] stores kept in {root}", file=sys.stderr)
        else:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    print(render(outcomes))
    print(
        f"\n{machine()}; {'quick' if args.quick else 'full'} sizes; wall {time.perf_counter() - started:.0f} s"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps([o.__dict__ for o in outcomes], indent=2, default=str)
        )
    return 1 if any(o.errors for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
