#!/usr/bin/env python
"""nbtrack core benchmarks, side by side with MLflow (SQLite backend).

    python benchmarks/bench_core.py            # full run, about 6 minutes on 2 cores
    python benchmarks/bench_core.py --quick    # smaller sizes, about 2 minutes
    python benchmarks/bench_core.py --json out.json   # also save the raw numbers
    python benchmarks/bench_core.py --keep     # keep the temporary stores for inspection

Needs mlflow (``pip install -e '.[bench]'``) besides nbtrack's own dependencies. MLflow is
populated under a time budget (180 s, 40 s with --quick); the table says how many runs fit.

Prints one table: what is measured, nbtrack, MLflow, a plain baseline, nbtrack's target and
PASS/FAIL for nbtrack. Every measurement runs in its own fresh interpreter (a worker started
with ``--worker NAME``), so caches are cold where they should be, peak RSS belongs to one
measurement, and MLflow is never imported next to nbtrack. Every store (nbtrack's folder,
MLflow's ``sqlite:///<tmp>/mlflow.db`` and its artifact folder, IPython's profile) lives in
one temporary folder that is deleted at the end; nothing goes over the network (MLflow
telemetry is off: MLFLOW_DISABLE_TELEMETRY=true, DO_NOT_TRACK=1).

Rows:
 1. ``track.log(loss=x, step=i)`` over 100,000 steps vs ``mlflow.log_metric`` vs list.append
 2. ``%%track`` on ``x = 1`` through a real IPython InteractiveShell: first cell in a fresh
    interpreter, warm median, with and without the summary display, and after a long kernel
    history; vs ``with mlflow.start_run(): mlflow.log_param("x", 1)``
 3. ``nbtrack.runs()`` over 10,000 runs (20 params, 10 metrics) vs ``mlflow.search_runs()``
 4. ``fingerprint`` of a 1 GiB float32 array and of a 10M-row DataFrame vs
    ``pandas.util.hash_pandas_object`` (and ``mlflow.data.from_pandas(df).digest``)
 5. ``import nbtrack`` vs ``import mlflow`` in fresh interpreters
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent

#: Set for every worker (and this process) before anything is imported.
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "GIT_PYTHON_REFRESH": "quiet",
    "PYTHONWARNINGS": "ignore",
    "TQDM_DISABLE": "1",
}

ns = time.perf_counter_ns
#: CPU time of the calling thread: unlike wall time, barely moved by other busy processes.
cpu_ns = time.thread_time_ns


def med(values: list[float]) -> float:
    return float(statistics.median(values))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ============================================================================ workers
# Each worker runs in a fresh interpreter and writes its results as JSON to --out.


def w_log_nbtrack(a: argparse.Namespace) -> dict[str, Any]:
    """Row 1: track.log per call, final flush, peak RSS; plus the list.append baseline."""
    import nbtrack
    from nbtrack.store.routing import open_store

    n, reps = a.steps, a.reps
    rng = random.Random(0)
    xs = [rng.random() for _ in range(n)]
    # One throw-away run first: the first run of a process captures the environment and
    # imports the capture modules; that cost is row 2's business, not the log loop's.
    t0 = ns()
    with nbtrack.run(name="bench/warmup") as track:
        track.log(loss=0.0, step=0)
    first_run_ms = (ns() - t0) / 1e6
    rss_before = peak_rss_mib()
    loop, flush, finish, loop_cpu, rss_first = [], [], [], [], 0.0
    for rep in range(reps):
        with nbtrack.run(name="bench/log") as track:
            c0 = cpu_ns()
            t0 = ns()
            for i in range(n):
                track.log(loss=xs[i], step=i)
            t1 = ns()
            loop_cpu.append(cpu_ns() - c0)
            track.flush()  # what is still buffered (the background thread may have taken some)
            t2 = ns()
        t3 = ns()
        loop.append(t1 - t0)
        flush.append(t2 - t1)
        finish.append(t3 - t2)
        if rep == 0:
            rss_first = peak_rss_mib()
    stored = len(open_store(None).metric_history(track.id).get("loss", []))
    if stored != n:
        raise SystemExit(f"nbtrack stored {stored} points, expected {n}")
    base = []
    for _ in range(reps):
        buf: list[float] = []
        t0 = ns()
        for i in range(n):
            buf.append(xs[i])
        base.append(ns() - t0)
        del buf
    return {
        "steps": n,
        "reps": reps,
        "log_us": med(loop) / n / 1e3,
        "log_us_all": [x / n / 1e3 for x in loop],
        "log_cpu_us": med(loop_cpu) / n / 1e3,
        "flush_ms": med(flush) / 1e6,
        "finish_ms": med(finish) / 1e6,
        "amortised_us": med([lp + fl + fi for lp, fl, fi in zip(loop, flush, finish)]) / n / 1e3,
        "append_us": med(base) / n / 1e3,
        "first_run_ms": first_run_ms,
        "rss_before_mib": rss_before,
        "rss_after_first_mib": rss_first,
        "rss_peak_mib": peak_rss_mib(),
    }


def _mlflow(uri: str) -> Any:
    warnings.simplefilter("ignore")
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow


def _experiment(mlflow: Any, name: str, artifacts: str) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name, artifact_location=Path(artifacts).as_uri()))


def w_log_mlflow(a: argparse.Namespace) -> dict[str, Any]:
    """Row 1, MLflow: mlflow.log_metric per call (synchronous, the default)."""
    t0 = ns()
    mlflow = _mlflow(a.mlflow_uri)
    import_s = (ns() - t0) / 1e9
    t0 = ns()
    exp = _experiment(mlflow, "bench-log", a.mlflow_artifacts)  # creates the DB on first use
    setup_s = (ns() - t0) / 1e9
    rng = random.Random(0)
    per: list[int] = []
    with mlflow.start_run(experiment_id=exp):
        for i in range(10):  # warm-up
            mlflow.log_metric("loss", rng.random(), step=i)
        for i in range(a.calls):
            x = rng.random()
            t0 = ns()
            mlflow.log_metric("loss", x, step=10 + i)
            per.append(ns() - t0)
    return {
        "calls": a.calls,
        "log_us": med(per) / 1e3,
        "mean_us": statistics.fmean(per) / 1e3,
        "import_s": import_s,
        "db_setup_s": setup_s,
        "rss_peak_mib": peak_rss_mib(),
    }


def w_cell(a: argparse.Namespace) -> dict[str, Any]:
    """Row 2: %%track through a real InteractiveShell, first cell and warm."""
    out: dict[str, Any] = {}
    t0 = ns()
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    out["shell_ms"] = (ns() - t0) / 1e6
    real_out, real_err = sys.stdout, sys.stderr
    sink = io.StringIO()

    cpu: dict[str, list[int]] = {}

    def cell(code: str, label: str = "") -> int:
        c = cpu_ns()
        t = ns()
        result = shell.run_cell(code, store_history=True)  # as a notebook kernel does
        t = ns() - t
        cpu.setdefault(label, []).append(cpu_ns() - c)
        if not result.success:
            sys.stdout, sys.stderr = real_out, real_err
            raise SystemExit(
                f"cell failed: {code!r}: {result.error_in_exec or result.error_before_exec}"
            )
        return t

    quiet = "%%track --quiet\nx = 1\n"
    loud = "%%track\nx = 1\n"
    plain = "x = 1\n"
    sys.stdout = sys.stderr = sink  # the summary display and warnings go here
    try:
        out["plain_first_ms"] = cell(plain) / 1e6
        if a.variant == "quiet-np":  # what most notebooks have imported before they track
            out["numpy_pandas_import_ms"] = cell("import numpy, pandas") / 1e6
        out["load_ext_ms"] = cell("%load_ext nbtrack") / 1e6
        if a.variant == "quiet-pause":  # a person reading the notebook between two cells
            time.sleep(2.0)
        out["first_ms"] = cell(loud if a.variant == "summary" else quiet, "first") / 1e6
        out["first_cpu_ms"] = cpu["first"][0] / 1e6
        if a.warm:
            q, s, p = [], [], []
            for _ in range(a.warm):  # interleaved, so drift in machine load hits all three alike
                p.append(cell(plain, "plain"))
                q.append(cell(quiet, "quiet"))
                s.append(cell(loud, "loud"))
            out.update(
                warm_quiet_ms=med(q) / 1e6,
                warm_summary_ms=med(s) / 1e6,
                warm_plain_ms=med(p) / 1e6,
                warm_n=a.warm,
                history_after_warm=shell.execution_count,
                warm_cpu_overhead_ms=(med(cpu["quiet"]) - med(cpu["plain"])) / 1e6,
            )
            while shell.execution_count < a.history:
                cell(plain)
            q, p = [], []
            for _ in range(a.long_n):
                p.append(cell(plain))
                q.append(cell(quiet))
            out.update(
                long_quiet_ms=med(q) / 1e6,
                long_plain_ms=med(p) / 1e6,
                long_history=shell.execution_count,
                long_n=a.long_n,
            )
    finally:
        sys.stdout, sys.stderr = real_out, real_err
    from nbtrack.store.routing import open_store

    store = open_store(None)
    out["runs_recorded"] = store.count_runs()
    out["summary_shown"] = "nbtrack: run #" in sink.getvalue()
    # What the last run could not capture (warnings are recorded on the run).
    last = store.list_runs(columns=("warnings",))[-1][0]
    out["capture_warnings"] = json.loads(last)[:5]
    return out


def w_cell_mlflow(a: argparse.Namespace) -> dict[str, Any]:
    """Row 2, MLflow reference: with mlflow.start_run(): mlflow.log_param("x", 1)."""
    t0 = ns()
    mlflow = _mlflow(a.mlflow_uri)
    import_s = (ns() - t0) / 1e9
    exp = _experiment(mlflow, "bench-cells", a.mlflow_artifacts)
    mlflow.set_experiment(experiment_id=exp)

    def one() -> int:
        t = ns()
        with mlflow.start_run():
            mlflow.log_param("x", 1)
        return ns() - t

    first = one()
    warm = [one() for _ in range(a.warm)]
    return {
        "first_ms": first / 1e6,
        "warm_ms": med(warm) / 1e6 if warm else None,
        "warm_n": a.warm,
        "import_s": import_s,
    }


def w_env_cold(a: argparse.Namespace) -> dict[str, Any]:
    """Row 2 diagnostic: nbtrack's environment snapshot, cold, in a fresh interpreter."""
    t0 = ns()
    from nbtrack.capture.environment import environment

    t1 = ns()
    environment()
    t2 = ns()
    environment()
    t3 = ns()
    import importlib.metadata as md

    t4 = ns()
    md.packages_distributions()
    t5 = ns()
    return {
        "import_ms": (t1 - t0) / 1e6,
        "cold_ms": (t2 - t1) / 1e6,
        "warm_ms": (t3 - t2) / 1e6,
        "packages_distributions_ms": (t5 - t4) / 1e6,
        "distributions": sum(1 for _ in md.distributions()),
    }


def _param_values(i: int) -> dict[str, Any]:
    # 20 params: ints, floats and strings, as a sweep would have.
    out: dict[str, Any] = {}
    for j in range(20):
        if j % 3 == 0:
            out[f"p{j:02d}"] = (i * 7 + j) % 1000
        elif j % 3 == 1:
            out[f"p{j:02d}"] = round(0.001 * ((i + j) % 97), 6)
        else:
            out[f"p{j:02d}"] = f"choice{(i + j) % 5}"
    return out


def w_runs_nbtrack(a: argparse.Namespace) -> dict[str, Any]:
    """Row 3: nbtrack.runs() over N stored runs, populated through Store directly."""
    import uuid

    import pandas  # noqa: F401 -- imported up front, as in any notebook that reads runs

    import nbtrack
    from nbtrack.store.sqlite import Store

    results = []
    rng = random.Random(0)
    for size in a.sizes:
        folder = Path(a.tmp) / f"nbtrack-runs-{size}"
        store = Store(folder)
        t0 = ns()
        base = time.time() - size
        for i in range(size):
            run_id = uuid.uuid4().hex
            start = base + i
            store.create_run(
                run_id,
                {
                    "name": f"bench/sweep{i % 10}",
                    "status": "finished",
                    "kind": "script",
                    "start_time": start,
                    "end_time": start + 0.5,
                    "params": _param_values(i),
                    "tags": ["bench"],
                },
            )
            points = [(f"m{k}", 0, rng.random(), start + 0.5) for k in range(10)]
            latest = {key: value for key, _step, value, _ts in points}
            store.append_metrics(run_id, points, latest)
        populate_s = (ns() - t0) / 1e9
        store.close()
        path = str(folder)
        t0 = ns()
        frame = nbtrack.runs(store=path)
        first = ns() - t0
        times, cpus = [], []
        for _ in range(a.reps):
            c0 = cpu_ns()
            t0 = ns()
            frame = nbtrack.runs(store=path)
            times.append(ns() - t0)
            cpus.append(cpu_ns() - c0)
        n_params = sum(c.startswith("params.") for c in frame.columns)
        n_metrics = sum(c.startswith("metrics.") for c in frame.columns)
        if len(frame) != size or n_params != 20 or n_metrics != 10:
            raise SystemExit(
                f"runs() returned {frame.shape}, {n_params} params, {n_metrics} metrics"
            )
        results.append(
            {
                "size": size,
                "first_ms": first / 1e6,
                "median_ms": med(times) / 1e6,
                "cpu_ms": med(cpus) / 1e6,
                "populate_ms_per_run": populate_s * 1e3 / size,
                "shape": list(frame.shape),
            }
        )
    return {"results": results, "rss_peak_mib": peak_rss_mib()}


def w_runs_mlflow(a: argparse.Namespace) -> dict[str, Any]:
    """Row 3, MLflow: populate with MlflowClient().log_batch until a count or time budget."""
    mlflow = _mlflow(a.mlflow_uri)
    import pandas  # noqa: F401
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    exp = _experiment(mlflow, "bench-search", a.mlflow_artifacts)
    rng = random.Random(0)

    def search() -> tuple[int, int]:
        t = ns()
        frame = mlflow.search_runs(experiment_ids=[exp])
        return ns() - t, len(frame)

    half = None
    count, populate_ns = 0, 0
    while count < a.target and populate_ns < a.budget * 1e9:
        t0 = ns()
        run = client.create_run(exp, run_name=f"bench/sweep{count % 10}")
        stamp = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(f"m{k}", rng.random(), stamp, 0) for k in range(10)],
            params=[Param(key, str(value)) for key, value in _param_values(count).items()],
        )
        client.set_terminated(run.info.run_id)
        populate_ns += ns() - t0
        count += 1
        if half is None and (count >= a.target // 2 or populate_ns >= a.budget * 1e9 / 2):
            search()  # warm-up, as for the full size
            t, rows = search()
            half = {"size": count, "ms": t / 1e6, "rows": rows}
    first, rows = search()
    times = []
    for _ in range(a.reps):
        t, rows = search()
        times.append(t)
    if rows != count:
        raise SystemExit(f"search_runs returned {rows} runs, expected {count}")
    return {
        "size": count,
        "first_ms": first / 1e6,
        "median_ms": med(times) / 1e6,
        "half": half,
        "populate_ms_per_run": populate_ns / 1e6 / max(count, 1),
        "budget_hit": count < a.target,
        "rss_peak_mib": peak_rss_mib(),
    }


def w_fingerprint(a: argparse.Namespace) -> dict[str, Any]:
    """Row 4: fingerprint throughput vs pandas.util.hash_pandas_object."""
    import numpy as np
    import pandas as pd
    import xxhash

    from nbtrack.capture.fingerprint import fingerprint

    out: dict[str, Any] = {}
    rng = np.random.default_rng(0)

    def timed(fn: Any, reps: int) -> float:
        times = []
        for _ in range(reps):
            t = ns()
            fn()
            times.append(ns() - t)
        return med(times) / 1e9

    def array_part() -> None:  # a function, so the 1 GiB array is freed when it returns
        arr = rng.random(a.array_bytes // 4, dtype=np.float32)
        out["array_bytes"] = int(arr.nbytes)
        t = timed(lambda: fingerprint(arr, "arr"), a.reps)
        out["array_s"], out["array_gbps"] = t, arr.nbytes / 1e9 / t
        t = timed(lambda: xxhash.xxh3_128(arr).hexdigest(), a.reps)
        out["xxh3_gbps"] = arr.nbytes / 1e9 / t

    fingerprint(np.zeros(10, dtype=np.float32), "warm-up")
    array_part()

    n = a.rows
    text = "user_" + pd.Series(rng.integers(0, 1_000_000, n)).astype(str)
    mixed = pd.DataFrame(
        {
            "a": rng.random(n),
            "b": rng.standard_normal(n).astype(np.float32),
            "c": rng.integers(0, 100, n),
            "d": rng.random(n),
            "s": text,
        }
    )
    numeric = mixed.drop(columns="s")
    out["rows"] = n
    out["string_dtype"] = f"{mixed['s'].dtype!r} ({type(mixed['s'].array).__name__})"
    for label, df in (("mixed", mixed), ("numeric", numeric)):
        fp = fingerprint(df, label)
        t_fp = timed(lambda df=df: fingerprint(df, "df"), a.reps)
        t_pd = timed(lambda df=df: pd.util.hash_pandas_object(df).values, a.pd_reps)
        out[label] = {
            "fp_s": t_fp,
            "fp_gbps": fp.size / 1e9 / t_fp,
            "hashed_bytes": fp.size,
            "pandas_s": t_pd,
            "speedup": t_pd / t_fp,
        }

    warnings.simplefilter("ignore")
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    try:
        import mlflow.data

        _ = mlflow.data.from_pandas(mixed.head(100)).digest  # warm-up (imports)
        # Linear in the rows (a type check maps every cell) and slow: timed once.
        out["mlflow_digest_s"] = timed(lambda: mlflow.data.from_pandas(mixed).digest, 1)
    except Exception as exc:  # noqa: BLE001 -- reported as n/a
        out["mlflow_digest_error"] = f"{type(exc).__name__}: {exc}"
    out["rss_peak_mib"] = peak_rss_mib()
    return out


WORKERS = {
    "log_nbtrack": w_log_nbtrack,
    "log_mlflow": w_log_mlflow,
    "cell": w_cell,
    "cell_mlflow": w_cell_mlflow,
    "env_cold": w_env_cold,
    "runs_nbtrack": w_runs_nbtrack,
    "runs_mlflow": w_runs_mlflow,
    "fingerprint": w_fingerprint,
}


# ============================================================================ orchestration


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.mlflow_uri = f"sqlite:///{tmp / 'mlflow' / 'mlflow.db'}"
        self.mlflow_artifacts = str(tmp / "mlflow" / "artifacts")
        (tmp / "mlflow").mkdir()
        self.project = tmp / "project"  # the worker's working directory: a small git repo
        self.project.mkdir()
        self.env = {
            **os.environ,
            **QUIET_ENV,
            "NBTRACK_STORE": str(tmp / "nbtrack-store"),
            "IPYTHONDIR": str(tmp / "ipython"),
            "MPLCONFIGDIR": str(tmp / "mpl"),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
            ),
        }
        self.env.pop("MLFLOW_TRACKING_URI", None)
        self.env.pop("NBTRACK_SUMMARY", None)
        self._git_init()

    def _git_init(self) -> None:
        if shutil.which("git") is None:
            return
        (self.project / "train.py").write_text("x = 1\n")
        git = [
            "git",
            "-C",
            str(self.project),
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ]
        for cmd in (["init", "-q"], ["add", "train.py"], ["commit", "-q", "-m", "init"]):
            subprocess.run(git + cmd, check=False, capture_output=True)

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def worker(self, name: str, *extra: str, store: str | None = None) -> dict[str, Any]:
        out = self.tmp / f"result-{name}-{time.monotonic_ns()}.json"
        env = dict(self.env)
        if store is not None:
            env["NBTRACK_STORE"] = store
        cmd = [
            sys.executable,
            str(HERE),
            "--worker",
            name,
            "--out",
            str(out),
            "--tmp",
            str(self.tmp),
            "--mlflow-uri",
            self.mlflow_uri,
            "--mlflow-artifacts",
            self.mlflow_artifacts,
            *extra,
        ]
        t0 = time.monotonic()
        proc = subprocess.run(
            cmd, cwd=self.project, env=env, capture_output=True, text=True, timeout=1800
        )
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"worker {name} failed ({proc.returncode}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        result = json.loads(out.read_text())
        self.log(f"  {name} {' '.join(extra)}: {time.monotonic() - t0:.1f}s")
        return result

    def import_times(self, module: str, reps: int) -> list[float]:
        code = (
            "import time; t = time.perf_counter_ns(); import "
            + module
            + "; print(time.perf_counter_ns() - t)"
        )
        times = []
        for i in range(reps + 1):  # the first one warms the OS file cache and is discarded
            proc = subprocess.run(
                [sys.executable, "-c", code],
                cwd=self.project,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
            if i:
                times.append(int(proc.stdout.strip().splitlines()[-1]) / 1e6)
        return times

    def run(self) -> dict[str, Any]:
        q = self.args.quick
        r: dict[str, Any] = {"quick": q, "load_start": os.getloadavg()}
        t0 = time.monotonic()
        self.log("row 1: track.log vs mlflow.log_metric")
        r["log_nbtrack"] = self.worker(
            "log_nbtrack",
            "--steps",
            "100000",
            "--reps",
            "5" if q else "7",
            store=str(self.tmp / "nbtrack-log"),
        )
        r["log_mlflow"] = self.worker("log_mlflow", "--calls", "200" if q else "500")

        self.log("row 2: %%track cell overhead")
        from nbtrack.store.sqlite import Store  # the store exists, as in any second session

        cells = str(self.tmp / "nbtrack-cells")
        Store(cells).close()
        r["cell_quiet"] = self.worker(
            "cell",
            "--variant",
            "quiet",
            "--warm",
            "50" if q else "200",
            "--history",
            "1000",
            "--long-n",
            "20" if q else "50",
            store=cells,
        )
        # First cells are single samples: take the median over a few fresh interpreters.
        firsts = 1 if q else 3
        quiet = [r["cell_quiet"]["first_ms"]]
        quiet += [
            self.worker("cell", "--variant", "quiet", store=cells)["first_ms"]
            for _ in range(firsts - 1)
        ]
        r["cell_quiet"]["first_all_ms"] = quiet
        for key, variant in (
            ("cell_summary", "summary"),
            ("cell_numpy", "quiet-np"),
            ("cell_pause", "quiet-pause"),
        ):
            res = [self.worker("cell", "--variant", variant, store=cells) for _ in range(firsts)]
            r[key] = res[0]
            r[key]["first_all_ms"] = [x["first_ms"] for x in res]
        r["env_cold"] = self.worker("env_cold")
        r["cell_mlflow"] = self.worker("cell_mlflow", "--warm", "30" if q else "200")
        r["cell_mlflow"]["first_all_ms"] = [r["cell_mlflow"]["first_ms"]] + [
            self.worker("cell_mlflow", "--warm", "0")["first_ms"] for _ in range(firsts - 1)
        ]

        self.log("row 3: runs() vs search_runs()")
        target = 2000 if q else 10000
        r["runs_mlflow"] = self.worker(
            "runs_mlflow",
            "--target",
            str(target),
            "--budget",
            "40" if q else "180",
            "--reps",
            "1" if q else "2",
        )
        sizes = sorted({target, r["runs_mlflow"]["size"]}, reverse=True)
        r["runs_nbtrack"] = self.worker(
            "runs_nbtrack", "--sizes", *map(str, sizes), "--reps", "3" if q else "5"
        )

        self.log("row 4: fingerprint")
        r["fingerprint"] = self.worker(
            "fingerprint",
            "--array-bytes",
            str((256 if q else 1024) << 20),
            "--rows",
            str(2_000_000 if q else 10_000_000),
            "--reps",
            "3" if q else "5",
            "--pd-reps",
            "1" if q else "3",
        )

        self.log("row 5: import time")
        reps = 3 if q else 5
        r["import_nbtrack"] = self.import_times("nbtrack", reps)
        r["import_mlflow"] = self.import_times("mlflow", reps)
        r["load_end"] = os.getloadavg()
        r["wall_s"] = time.monotonic() - t0
        return r


# ============================================================================ the table


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "FAIL")


def build_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str, str]] = []

    def add(what: str, nb: str, ml: str, base: str, target: str, ok: bool | None) -> None:
        rows.append((what, nb, ml, base, target, verdict(ok)))

    ln, lm = r["log_nbtrack"], r["log_mlflow"]
    add(
        f"1  log per call, {ln['steps']:,} steps (loop only)",
        f"{ln['log_us']:.2f} µs (1st run {ln['log_us_all'][0]:.2f})",
        f"{lm['log_us']:,.0f} µs ({lm['calls']} calls)",
        f"{ln['append_us']:.2f} µs append",
        "< 2 µs",
        ln["log_us"] < 2,
    )
    add(
        "1  final flush of the buffer (once, at finish)",
        f"{ln['flush_ms']:.0f} ms",
        "0 (synchronous)",
        "",
        "",
        None,
    )
    add(
        "1  amortised per call incl. flush + finish",
        f"{ln['amortised_us']:.2f} µs",
        f"{lm['log_us']:,.0f} µs",
        "",
        "",
        None,
    )
    add(
        "1  peak RSS of the log process",
        f"{ln['rss_peak_mib']:.0f} MiB (+{ln['rss_after_first_mib'] - ln['rss_before_mib']:.0f}"
        " for 100k steps)",
        f"{lm['rss_peak_mib']:.0f} MiB",
        "",
        "",
        None,
    )

    cq, cs, cm, cn = r["cell_quiet"], r["cell_summary"], r["cell_mlflow"], r["cell_numpy"]
    fq, fs, fn, fm = (med(x["first_all_ms"]) for x in (cq, cs, cn, cm))
    add("2  %load_ext nbtrack (fresh interpreter)", f"{cq['load_ext_ms']:.0f} ms", "", "", "", None)
    add(
        "2  first %%track cell, --quiet (fresh interp.)",
        f"{fq:.0f} ms",
        f"{fm:.0f} ms first start_run",
        f"{cq['plain_first_ms']:.1f} ms untracked",
        "< 300 ms",
        fq < 300,
    )
    add(
        "2  first %%track cell, with summary",
        f"{fs:.0f} ms",
        "",
        f"{cs['plain_first_ms']:.1f} ms untracked",
        "< 300 ms",
        fs < 300,
    )
    add(
        "2  first %%track cell, --quiet, numpy+pandas loaded",
        f"{fn:.0f} ms",
        "",
        f"{cn['plain_first_ms']:.1f} ms untracked",
        "< 300 ms",
        fn < 300,
    )
    cp = r["cell_pause"]
    fp_ = med(cp["first_all_ms"])
    add(
        "2  first %%track cell, --quiet, 2 s after %load_ext",
        f"{fp_:.0f} ms",
        "",
        f"{cp['plain_first_ms']:.1f} ms untracked",
        "< 300 ms",
        fp_ < 300,
    )
    ec = r["env_cold"]
    add(
        "2  of which: environment() snapshot, cold",
        f"{ec['cold_ms']:.0f} ms",
        "",
        f"packages_distributions() {ec['packages_distributions_ms']:.0f} ms",
        "",
        None,
    )
    over_q = cq["warm_quiet_ms"] - cq["warm_plain_ms"]
    over_s = cq["warm_summary_ms"] - cq["warm_plain_ms"]
    add(
        f"2  warm overhead, --quiet (median of {cq['warm_n']})",
        f"{over_q:.2f} ms",
        f"{cm['warm_ms']:.1f} ms warm start_run",
        f"{cq['warm_plain_ms']:.2f} ms untracked",
        "< 5 ms",
        over_q < 5,
    )
    add(
        "2  warm overhead, with summary display",
        f"{over_s:.2f} ms",
        "",
        f"display alone {over_s - over_q:.2f} ms",
        "< 5 ms",
        over_s < 5,
    )
    over_l = cq["long_quiet_ms"] - cq["long_plain_ms"]
    add(
        f"2  warm overhead, --quiet, kernel history {cq['long_history']:,} cells",
        f"{over_l:.2f} ms",
        "",
        f"{cq['long_plain_ms']:.2f} ms untracked",
        "< 5 ms",
        over_l < 5,
    )

    rn, rm = r["runs_nbtrack"]["results"], r["runs_mlflow"]
    big = rn[0]
    same = next((x for x in rn if x["size"] == rm["size"]), big)
    ext = extrapolate(rm, big["size"])
    ml_big = (
        f"{rm['median_ms']:,.0f} ms"
        if rm["size"] == big["size"]
        else f"~{ext:,.0f} ms (extrapolated)"
    )
    add(
        f"3  runs() over {big['size']:,} runs",
        f"{big['median_ms']:.0f} ms",
        ml_big,
        f"first call {big['first_ms']:.0f} ms",
        "< 300 ms",
        big["median_ms"] < 300,
    )
    if rm["size"] != big["size"]:
        add(
            f"3  runs() over {rm['size']:,} runs (MLflow measured)",
            f"{same['median_ms']:.0f} ms",
            f"{rm['median_ms']:,.0f} ms",
            "",
            "",
            None,
        )
    add(
        "3  populate, per run",
        f"{same['populate_ms_per_run']:.2f} ms",
        f"{rm['populate_ms_per_run']:.1f} ms",
        "",
        "",
        None,
    )

    fp = r["fingerprint"]
    gib = fp["array_bytes"] / (1 << 30)
    add(
        f"4  fingerprint {gib:g} GiB float32 array",
        f"{fp['array_gbps']:.1f} GB/s ({fp['array_s'] * 1e3:.0f} ms)",
        "n/a",
        f"{fp['xxh3_gbps']:.1f} GB/s raw xxh3_128",
        "≥ 5 GB/s",
        fp["array_gbps"] >= 5,
    )
    mixed, numeric = fp["mixed"], fp["numeric"]
    ml_digest = (
        f"{fp['mlflow_digest_s'] * 1e3:.0f} ms (head 10k rows only)"
        if "mlflow_digest_s" in fp
        else "n/a"
    )
    rows_m = fp["rows"] / 1e6
    add(
        f"4  fingerprint {rows_m:g}M-row DataFrame, 4 num + 1 str",
        f"{mixed['fp_s'] * 1e3:.0f} ms = {mixed['speedup']:.0f}× faster",
        ml_digest,
        f"{mixed['pandas_s'] * 1e3:,.0f} ms hash_pandas_object",
        "≥ 10× faster",
        mixed["speedup"] >= 10,
    )
    add(
        f"4  fingerprint {rows_m:g}M-row DataFrame, numeric only",
        f"{numeric['fp_s'] * 1e3:.0f} ms = {numeric['speedup']:.0f}× faster",
        "n/a",
        f"{numeric['pandas_s'] * 1e3:,.0f} ms hash_pandas_object",
        "≥ 10× faster",
        numeric["speedup"] >= 10,
    )

    imp_n, imp_m = med(r["import_nbtrack"]), med(r["import_mlflow"])
    add(
        f"5  import time (median of {len(r['import_nbtrack'])}, fresh interp.)",
        f"{imp_n:.0f} ms",
        f"{imp_m:,.0f} ms",
        "",
        "< 150 ms",
        imp_n < 150,
    )
    return rows


def extrapolate(rm: dict[str, Any], size: int) -> float:
    """MLflow search time at ``size`` runs, scaled in proportion from the largest size measured.

    A rough figure: it ignores search_runs' fixed cost (which makes it high) and any
    super-linear growth (which makes it low). The notes show both measured sizes.
    """
    return float(rm["median_ms"] * size / rm["size"])


def render(rows: list[tuple[str, ...]]) -> str:
    header = ("measure", "nbtrack", "MLflow 3 (sqlite)", "baseline", "target", "nbtrack")
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [line]
    for i, row in enumerate(table):
        out.append("|".join(f" {cell:<{w}} " for cell, w in zip(row, widths)))
        if i == 0:
            out.append(line)
    out.append(line)
    return "\n".join(out)


def machine() -> str:
    import importlib.metadata as md

    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kib / (1 << 20):.0f} GiB"
    except (OSError, IndexError, ValueError):
        pass

    def ver(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "-"

    pkgs = ", ".join(
        f"{p} {ver(p)}"
        for p in ("nbtrack", "mlflow", "numpy", "pandas", "pyarrow", "ipython", "xxhash")
    )
    return (
        f"{model}, {os.cpu_count()} cores, {mem} RAM; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}\n{pkgs}"
    )


def fmt_list(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


def history_slope(cq: dict[str, Any]) -> float:
    """Growth of the --quiet overhead per 100 cells of kernel history (two-point estimate)."""
    mid = cq["history_after_warm"] / 2  # the warm loop's median sits at about half its history
    warm = cq["warm_quiet_ms"] - cq["warm_plain_ms"]
    long = cq["long_quiet_ms"] - cq["long_plain_ms"]
    span = cq["long_history"] - mid
    return (long - warm) / span * 100 if span > 0 else float("nan")


def nbtrack_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--",
                "nbtrack",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"{head or '?'}{' + uncommitted changes in nbtrack/' if dirty else ''}"


def notes(r: dict[str, Any]) -> list[str]:
    ln, cq, rm, fp = r["log_nbtrack"], r["cell_quiet"], r["runs_mlflow"], r["fingerprint"]
    rn = r["runs_nbtrack"]["results"]
    out = [
        f"mode: {'--quick' if r['quick'] else 'default'}; wall {r['wall_s']:.0f}s; load average "
        f"{r['load_start'][0]:.2f} at start, {r['load_end'][0]:.2f} at end "
        f"({os.cpu_count()} cores; a busy machine inflates every number)",
        f"CPU time of the measuring thread (time.thread_time; other processes barely move it, "
        f"background threads are not in it): log {ln['log_cpu_us']:.2f} µs/call; first "
        f"--quiet cell {cq['first_cpu_ms']:.0f} ms; warm --quiet overhead "
        f"{cq['warm_cpu_overhead_ms']:.2f} ms; runs() over {rn[0]['size']:,} runs "
        f"{rn[0]['cpu_ms']:.0f} ms.",
        f"row 1: medians of {ln['reps']} runs of {ln['steps']:,} track.log calls (per-run values, "
        f"µs: {', '.join(f'{x:.2f}' for x in ln['log_us_all'])}; the first run in a process "
        f"also pays for fresh memory: peak RSS grows {ln['rss_after_first_mib'] - ln['rss_before_mib']:.0f} MiB "
        f"while it buffers {ln['steps']:,} points); the background thread "
        f"flushes every 0.5 s, so most points are written by the flush at finish, shown on its own "
        f"line; 'amortised' = (loop + flush + finish) / steps. MLflow: median of "
        f"{r['log_mlflow']['calls']} individually timed synchronous log_metric calls.",
        f"row 2: cells run with store_history=True, as a kernel does; 'overhead' = tracked "
        f"median - untracked median ({cq['warm_n']} interleaved untracked/--quiet/summary "
        f"triples; the kernel history grows to {cq['history_after_warm']} cells meanwhile, and "
        f"the overhead grows by ~{history_slope(cq):.2f} ms per 100 cells of history). "
        f"First-cell rows: median over fresh interpreters (ms: --quiet "
        f"{fmt_list(cq['first_all_ms'])}; summary {fmt_list(r['cell_summary']['first_all_ms'])}; "
        f"numpy+pandas {fmt_list(r['cell_numpy']['first_all_ms'])}; 2 s pause "
        f"{fmt_list(r['cell_pause']['first_all_ms'])}; MLflow "
        f"{fmt_list(r['cell_mlflow']['first_all_ms'])}); the store already exists; %load_ext "
        f"is timed separately and the first cell follows it at once (as in Run All), except in "
        f"the '2 s after' row (a person between cells: %load_ext's background scan of installed "
        f"distributions has time to finish); the numpy+pandas variant imports both in an "
        f"untracked cell first, as most notebooks do. environment() row: a fresh interpreter, "
        f"{r['env_cold']['distributions']} installed distributions. MLflow: "
        f"`with mlflow.start_run(): mlflow.log_param('x', 1)` in plain Python (no IPython).",
        "row 3: nbtrack store populated via Store.create_run + append_metrics; MLflow via "
        "MlflowClient create_run + log_batch + set_terminated "
        + (
            f"stopped by its time budget at {rm['size']:,} runs; "
            if rm["budget_hit"]
            else f"{rm['size']:,} runs; "
        )
        + (
            f"search_runs took {rm['half']['ms'] / rm['half']['size']:.2f} ms/run at "
            f"{rm['half']['size']:,} runs and {rm['median_ms'] / rm['size']:.2f} ms/run at "
            f"{rm['size']:,}; "
            if rm["half"]
            else ""
        )
        + (
            f"the {rn[0]['size']:,}-run MLflow figure is the latter x {rn[0]['size']:,}. "
            if rm["size"] != rn[0]["size"]
            else ""
        )
        + "Medians of warm calls in one process.",
        f"row 4: string column dtype {fp['string_dtype']}; 'GB' = 1e9 bytes; the DataFrame rows "
        f"hash {fp['mixed']['hashed_bytes'] / 1e6:,.0f} MB (mixed) and "
        f"{fp['numeric']['hashed_bytes'] / 1e6:,.0f} MB (numeric) at "
        f"{fp['mixed']['fp_gbps']:.1f} and {fp['numeric']['fp_gbps']:.1f} GB/s. "
        "MLflow column: mlflow.data.from_pandas(df).digest, timed once; it hashes only the "
        "first 10,000 rows (plus the row count and column names), so it is not a content "
        "fingerprint, yet costs O(rows) because it runs df.map(type) over the whole frame.",
        f"row 5: `python -c 'import X'`, timed around the import only, one discarded warm-up; "
        f"nbtrack runs (ms): {', '.join(f'{x:.0f}' for x in r['import_nbtrack'])}; mlflow: "
        f"{', '.join(f'{x:,.0f}' for x in r['import_mlflow'])}.",
    ]
    if cq.get("capture_warnings"):
        out.append("nbtrack capture warnings seen in cells: " + "; ".join(cq["capture_warnings"]))
    return out


# ============================================================================ entry point


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes, about 2 minutes")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    # worker options (internal)
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    p.add_argument("--mlflow-uri", help=argparse.SUPPRESS)
    p.add_argument("--mlflow-artifacts", help=argparse.SUPPRESS)
    for name in (
        "steps",
        "reps",
        "calls",
        "warm",
        "history",
        "long-n",
        "target",
        "rows",
        "array-bytes",
        "pd-reps",
    ):
        p.add_argument(f"--{name}", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--budget", type=float, default=0, help=argparse.SUPPRESS)
    p.add_argument("--sizes", type=int, nargs="*", default=[], help=argparse.SUPPRESS)
    p.add_argument("--variant", default="quiet", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ.update(QUIET_ENV)

    if args.worker:
        warnings.simplefilter("ignore")
        result = WORKERS[args.worker](args)
        Path(args.out).write_text(json.dumps(result))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="nbtrack-bench-"))
    try:
        print(
            f"nbtrack core benchmark{' (--quick)' if args.quick else ''}; temp folder {tmp}",
            file=sys.stderr,
        )
        results = Bench(args, tmp).run()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    results["machine"] = machine()
    results["commit"] = nbtrack_commit()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print()
    print(results["machine"])
    print(f"nbtrack at {results['commit']}")
    print(render(build_rows(results)))
    for line in notes(results):
        print("- " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
