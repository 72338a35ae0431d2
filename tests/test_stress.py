"""Many writers at once into one store lose nothing: processes, and real Jupyter kernels.

The workloads are ``benchmarks/stress.py``'s scenarios at CI sizes (the script runs them at
the issue's sizes and prints the figures); these tests then read the store they leave back
through nbtrack's public API and plain SQLite, and check it run by run.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys
from pathlib import Path
from types import ModuleType

import pytest

import nbtrack

STRESS_PY = Path(__file__).resolve().parent.parent / "benchmarks" / "stress.py"


def _load_stress() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nbtrack_stress", STRESS_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


stress = _load_stress()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder for the store (each scenario creates it)."""
    return tmp_path / "store"


def test_four_processes_logging_at_once_lose_no_point_and_meet_no_lock(folder: Path) -> None:
    outcome = stress.concurrent_writers(folder, procs=4, runs=10, steps=200)
    assert outcome.details["messages"] == []  # no lock error, no TrackingWarning, anywhere
    assert outcome.errors == 0
    frame = nbtrack.runs(store=folder)
    assert len(frame) == 40
    assert set(frame["status"]) == {"finished"}
    assert sorted(frame["number"]) == list(range(1, 41))  # one number each, none reused
    assert frame["name"].value_counts().to_dict() == {f"writer/{w}": 10 for w in range(4)}
    for ref in frame["id"]:
        record = nbtrack.get_run(ref, store=folder)
        assert [p.step for p in record.metric_history["loss"]] == list(range(200))
        assert record.metrics["loss"] == pytest.approx(1 / 200)
        assert record.warnings == []
    per_worker_params = {
        name: sorted(json.loads(p)["i"] for (p,) in rows)
        for name, rows in _params_by_name(folder).items()
    }
    assert per_worker_params == {f"writer/{w}": list(range(10)) for w in range(4)}


def _params_by_name(folder: Path) -> dict[str, list[tuple[str]]]:
    conn = sqlite3.connect(folder / "nbtrack.db")
    try:
        out: dict[str, list[tuple[str]]] = {}
        for name, params in conn.execute("SELECT name, params FROM runs"):
            out.setdefault(name, []).append((params,))
        return out
    finally:
        conn.close()


def test_four_real_kernels_track_cells_at_once_and_a_killed_one_reads_crashed(
    folder: Path,
) -> None:
    outcome = stress.concurrent_kernels(folder, kernels=4, cells=2, steps=200)
    assert outcome.details["failures"] == []  # every cell's execute_reply was "ok"
    assert outcome.errors == 0
    finished = nbtrack.runs(store=folder, status="finished")
    assert sorted(finished["name"]) == sorted(f"kernel/{k}" for k in range(4) for _ in range(2))
    for ref in finished["id"]:
        record = nbtrack.get_run(ref, store=folder)
        assert [p.step for p in record.metric_history["loss"]] == list(range(200))
        assert record.kind == "cell" and "track.log(loss=" in record.code
    # SIGKILL leaves no chance to say goodbye: the run stays "running" in the database
    # until an nbtrack process opens the store, which marks it crashed.
    assert outcome.details["killed_before_open"] == "running"
    assert outcome.details["killed_after_open"] == "crashed"
    killed = nbtrack.get_run("last", store=folder)
    assert killed.name == "kernel/killed" and killed.status == "crashed"
    assert killed.error is not None and killed.error["type"] == "Crashed"
    assert len(killed.metric_history["loss"]) > 0  # what it flushed before dying is kept
    assert stress.integrity(folder) == "ok"
