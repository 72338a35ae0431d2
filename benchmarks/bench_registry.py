#!/usr/bin/env python
"""The model registry's costs, side by side with MLflow's model registry (SQLite backend).

    python benchmarks/bench_registry.py            # 1,000 models x 20 versions
    python benchmarks/bench_registry.py --quick    # 200 models x 10 versions
    python benchmarks/bench_registry.py --json out.json   # also save the raw numbers
    python benchmarks/bench_registry.py --keep     # keep the temporary stores

Needs mlflow (``pip install -e '.[bench]'``). Each side runs in its own fresh interpreter
(this script started with ``--worker nbtrack|mlflow``), so MLflow is never imported next to
nbtrack. Everything lives in one temporary folder, deleted at the end; nothing goes over the
network (MLFLOW_DISABLE_TELEMETRY=true, DO_NOT_TRACK=1).

Rows (medians, with the 95th percentile where many calls are timed):
 1. register: ``Registry.register(run, name, "model")`` for every version (the first of a
    model creates it), vs ``create_registered_model`` (first) + ``create_model_version``.
 2. promote with gates: moving v(N) of a model into production over v(N-1), with three gates
    from nbtrack.toml (a threshold, better than production, run finished), vs the same
    checks written against MLflow's client (get the version, its run's metrics, the
    production alias's version and its run's metrics) + ``set_registered_model_alias``.
 3. load: ``nbtrack.load_model("name@production")`` (content hash checked) vs
    ``mlflow.artifacts.download_artifacts("models:/name@production")`` + reading the file.
 4. ``nbtrack.models()`` (a DataFrame, one row a model) over the whole registry, warm, and
    first call in the process (pandas imported), vs paging through
    ``MlflowClient.search_registered_models`` (1,000 a page).

MLflow is populated under a time budget (600 s, 150 s with --quick); the table says how many
versions fit, and its ``models()`` row is measured on what fitted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "GIT_PYTHON_REFRESH": "quiet",
    "PYTHONWARNINGS": "ignore",
    "TQDM_DISABLE": "1",
    "NBTRACK_USER": "bench",  # no `git config` lookup for the acting user
}
TARGETS_MS = {"register": 20.0, "promote": 20.0, "models": 100.0}
SPEEDUP_TARGET = 10.0
POLICY = """\
[registry.stages.production]
metrics = ["val_acc >= 0.5"]
better_than_production = { metric = "val_acc", by = 0.0 }
run_finished = true
"""
ns = time.perf_counter_ns


def stats_ms(samples_ns: list[int]) -> dict[str, float]:
    """Median and 95th percentile in milliseconds."""
    ordered = sorted(samples_ns)
    return {
        "median": statistics.median(ordered) / 1e6,
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] / 1e6,
        "n": len(ordered),
    }


def acc(version: int) -> float:
    """val_acc of a model's version ``version``: rising, so each beats the one before."""
    return 0.5 + 0.02 * version


# ============================================================================ nbtrack
def worker_nbtrack(folder: Path, models: int, versions: int, sample: int) -> dict[str, Any]:
    import uuid

    import nbtrack
    from nbtrack.registry import Registry
    from nbtrack.store.sqlite import Store

    (folder / "nbtrack.toml").write_text(POLICY, encoding="utf-8")
    os.chdir(folder)
    store = Store(folder / "nbtrack-store")
    started = time.time()
    # The runs the versions come from, written straight through the store (not measured).
    run_ids: list[list[str]] = []
    for m in range(models):
        ids = []
        for v in range(1, versions + 1):
            run_id = uuid.uuid4().hex
            store.create_run(
                run_id,
                {
                    "name": f"train/{m}",
                    "status": "finished",
                    "start_time": time.time(),
                    "end_time": time.time(),
                    "params": {"lr": 0.01, "layers": 3},
                    "metrics": {"val_acc": acc(v), "loss": 1 - acc(v)},
                },
            )
            digest, size = store.put_artifact_bytes(os.urandom(1024))
            store.add_artifact(run_id, "model", "bytes", digest, size, {})
            ids.append(run_id)
        run_ids.append(ids)
    populate_runs = time.time() - started
    reg = Registry(store)
    register: list[int] = []
    for v in range(versions):  # breadth first, as MLflow is populated
        for m in range(models):
            t = ns()
            reg.register(run_ids[m][v], f"model-{m}", "model")
            register.append(ns() - t)
    picked = range(0, models, max(1, models // sample))
    promote: list[int] = []
    for m in picked:
        reg.promote(f"model-{m}", versions - 1, "production")
        t = ns()
        outcome = reg.promote(f"model-{m}", versions, "production")
        promote.append(ns() - t)
        assert outcome.report is not None and len(outcome.report.results) == 3
    load: list[int] = []
    for m in picked:
        t = ns()
        data = nbtrack.load_model(f"model-{m}@production", store=store)
        load.append(ns() - t)
        assert len(data) == 1024
    t = ns()
    frame = nbtrack.models(store=store)
    first = ns() - t
    assert len(frame) == models and int(frame["production"].notna().sum()) == len(promote)
    warm = []
    for _ in range(7):
        t = ns()
        nbtrack.models(store=store)
        warm.append(ns() - t)
    check = reg.verify_audit()
    assert check.ok
    return {
        "versions": models * versions,
        "models_count": models,
        "populate_runs_s": populate_runs,
        "register": stats_ms(register),
        "promote": stats_ms(promote),
        "load": stats_ms(load),
        "models": stats_ms(warm),
        "models_first_ms": first / 1e6,
        "audit_entries": check.entries,
        "db_mib": (store.db_path.stat().st_size) / 2**20,
    }


# ============================================================================ MLflow
def worker_mlflow(
    folder: Path, models: int, versions: int, sample: int, budget: float
) -> dict[str, Any]:
    import logging

    logging.disable(logging.WARNING)
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    client = MlflowClient()
    experiment = client.create_experiment(
        "bench", artifact_location=(folder / "mlartifacts").as_uri()
    )
    # One run per version number, each with its val_acc and a 1 KiB model file (not measured):
    # registering links a version to a run and its artifact, as nbtrack does.
    blob = folder / "model.bin"
    blob.write_bytes(os.urandom(1024))
    sources, run_of = {}, {}
    for v in range(1, versions + 1):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "val_acc", acc(v))
        client.log_artifact(run.info.run_id, str(blob), "model")
        client.set_terminated(run.info.run_id)
        sources[v] = f"{run.info.artifact_uri}/model"
        run_of[v] = run.info.run_id
    register: list[int] = []
    started = time.time()
    done_versions = 0
    complete = True
    for v in range(1, versions + 1):
        for m in range(models):
            if time.time() - started > budget:
                complete = False
                break
            t = ns()
            if v == 1:
                client.create_registered_model(f"model-{m}")
            client.create_model_version(f"model-{m}", sources[v], run_id=run_of[v])
            register.append(ns() - t)
            done_versions += 1
        if not complete:
            break
    reached = versions if complete else max(1, v - 1)
    models_made = models if reached >= 1 else done_versions
    picked = list(range(0, models, max(1, models // sample)))
    if reached < 2:
        raise SystemExit("MLflow registered too few versions in its budget to promote")

    def gated_promote(name: str, version: int) -> None:
        # The checks nbtrack's policy declares, written against MLflow's client.
        candidate = client.get_model_version(name, str(version))
        metrics = client.get_run(candidate.run_id).data.metrics
        if not metrics["val_acc"] >= 0.5:
            raise RuntimeError("threshold")
        if client.get_run(candidate.run_id).info.status != "FINISHED":
            raise RuntimeError("run not finished")
        try:
            current = client.get_model_version_by_alias(name, "production")
        except Exception:
            current = None
        if current is not None:
            base = client.get_run(current.run_id).data.metrics["val_acc"]
            if not metrics["val_acc"] - base >= 0.0:
                raise RuntimeError("not better")
        client.set_registered_model_alias(name, "production", str(version))

    promote: list[int] = []
    for m in picked:
        gated_promote(f"model-{m}", reached - 1)
        t = ns()
        gated_promote(f"model-{m}", reached)
        promote.append(ns() - t)
    load: list[int] = []
    for i, m in enumerate(picked):
        target = folder / "downloads" / str(i)
        t = ns()
        path = mlflow.artifacts.download_artifacts(
            f"models:/model-{m}@production", dst_path=str(target)
        )
        data = Path(path, "model.bin").read_bytes()
        load.append(ns() - t)
        assert len(data) == 1024

    def list_models() -> int:
        count, token = 0, None
        while True:
            page = client.search_registered_models(max_results=1000, page_token=token)
            count += len(page)
            token = page.token
            if not token:
                return count

    t = ns()
    listed = list_models()
    first = ns() - t
    assert listed == models_made
    warm = []
    for _ in range(7):
        t = ns()
        list_models()
        warm.append(ns() - t)
    return {
        "versions": done_versions,
        "models_count": models_made,
        "complete": complete,
        "register": stats_ms(register),
        "promote": stats_ms(promote),
        "load": stats_ms(load),
        "models": stats_ms(warm),
        "models_first_ms": first / 1e6,
        "mlflow": mlflow.__version__,
        "db_mib": (folder / "mlflow.db").stat().st_size / 2**20,
    }


# ============================================================================ driver
def run_worker(name: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = folder / f"{name}.json"
    env = {**os.environ, **QUIET_ENV, "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        str(HERE),
        "--worker",
        name,
        "--folder",
        str(folder / name),
        "--out",
        str(out),
    ] + (["--quick"] if args.quick else [])
    (folder / name).mkdir()
    print(f"  {name} ...", file=sys.stderr, flush=True)
    t = time.time()
    subprocess.run(cmd, env=env, check=True)
    print(f"  {name} done in {time.time() - t:.0f} s", file=sys.stderr, flush=True)
    return dict(json.loads(out.read_text()))


def sizes(quick: bool) -> tuple[int, int, int, float]:
    """(models, versions per model, sampled models for promote/load, MLflow budget s)."""
    return (200, 10, 50, 150.0) if quick else (1000, 20, 200, 600.0)


def table(nb: dict[str, Any], ml: dict[str, Any]) -> str:
    rows = []

    def row(label: str, key: str, target: float | None) -> None:
        a, b = nb[key], ml[key]
        speed = b["median"] / a["median"]
        ok = (target is None or a["median"] <= target) and speed >= SPEEDUP_TARGET
        rows.append(
            [
                label,
                f"{a['median']:.3f} (p95 {a['p95']:.3f})",
                f"{b['median']:.3f} (p95 {b['p95']:.3f})",
                f"{speed:.0f}x",
                (f"<= {target:g} ms, " if target else "") + f">= {SPEEDUP_TARGET:g}x",
                "PASS" if ok else "FAIL",
            ]
        )

    row("register (ms)", "register", TARGETS_MS["register"])
    row("promote with 3 gates (ms)", "promote", TARGETS_MS["promote"])
    row("load name@production (ms)", "load", None)
    row(
        f"models() over {nb['models_count']} models / {nb['versions']} versions (ms)",
        "models",
        TARGETS_MS["models"],
    )
    rows.append(
        [
            "models(), first call in the process (ms)",
            f"{nb['models_first_ms']:.1f}",
            f"{ml['models_first_ms']:.1f}",
            f"{ml['models_first_ms'] / nb['models_first_ms']:.0f}x",
            "",
            "",
        ]
    )
    head = ["operation", "nbtrack", "MLflow", "speedup", "target", ""]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 models x 10 versions")
    parser.add_argument("--json", metavar="PATH", help="also write the raw numbers here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--worker", choices=["nbtrack", "mlflow"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    models, versions, sample, budget = sizes(args.quick)
    if args.worker:
        folder = Path(args.folder)
        result = (
            worker_nbtrack(folder, models, versions, sample)
            if args.worker == "nbtrack"
            else worker_mlflow(folder, models, versions, sample, budget)
        )
        Path(args.out).write_text(json.dumps(result))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="nbtrack-bench-registry-"))
    try:
        print(f"bench_registry: {models} models x {versions} versions in {tmp}", file=sys.stderr)
        nb = run_worker("nbtrack", tmp, args)
        ml = run_worker("mlflow", tmp, args)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}; MLflow {ml['mlflow']} (sqlite)"
    )
    print(table(nb, ml))
    print(
        f"\nnbtrack: {nb['versions']} versions of {nb['models_count']} models, "
        f"{nb['audit_entries']} audit entries (chain verified), db {nb['db_mib']:.1f} MiB. "
        f"MLflow: {ml['versions']} versions of {ml['models_count']} models"
        + ("" if ml["complete"] else f" (its {budget:.0f} s budget ran out)")
        + f", db {ml['db_mib']:.1f} MiB; its models() row is measured on that."
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"nbtrack": nb, "mlflow": ml}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
