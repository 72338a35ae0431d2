"""The metric write path on both stores: what ``track.log`` buffers comes back from the store
bit for bit (PostgreSQL takes it as one binary ``COPY``, SQLite as rows), and a point the
store cannot hold is refused before anything of its batch is written."""

from __future__ import annotations

import json
import math
import os
import signal
import struct
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack.errors import StoreError
from nbtrack.store.postgres import PostgresStore, binary_copy_metrics
from nbtrack.store.routing import connect_store

#: Values whose text form would lose something: NaN, both infinities, the smallest
#: subnormal, the largest double, and a value that needs all 17 significant digits. (-0.0
#: too on PostgreSQL; SQLite stores an integral REAL as an integer and reads back 0.0.)
_EXACT = [
    float("nan"),
    float("inf"),
    float("-inf"),
    5e-324,
    sys.float_info.max,
    0.1 + 0.2,
]
_STEPS = [-(2**63), -1, 0, 2**31, 2**63 - 1]


@pytest.fixture(params=("sqlite", "postgresql"))
def st(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    location = (
        str(tmp_path / "store") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    store = connect_store(location)
    yield store
    store.close()


def _bits(value: float) -> bytes:
    return struct.pack(">d", value)


def _run(st: Any) -> str:
    run = uuid.uuid4().hex
    st.create_run(run, {"name": "exact", "status": "running", "start_time": 1000.0})
    return run


def test_extreme_values_steps_and_keys_round_trip_exactly(st: Any) -> None:
    run = _run(st)
    keys = ["loss", "val/acc", "tab\there", "new\nline", "back\\slash", "ünï ✓"]
    points = [
        (key, step, value, 1234.5 + i)
        for i, (key, step, value) in enumerate(
            (keys[i % len(keys)], _STEPS[i % len(_STEPS)], v) for i, v in enumerate(_EXACT * 3)
        )
    ]
    st.append_metrics(run, points, {"loss": 5e-324})
    history = st.metric_history(run)
    stored = [
        (key, step, _bits(value), ts)
        for key, series in history.items()
        for step, value, ts in series
    ]
    expected = [(key, step, _bits(value), ts) for key, step, value, ts in points]
    assert sorted(stored) == sorted(expected)
    # Logging order per key survives (the reader orders by insertion, not by step).
    for key in keys:
        assert [s for s, _, _ in history[key]] == [s for k, s, _, _ in points if k == key]
    assert st.run_row(run)["metrics"] == {"loss": 5e-324}


def test_a_null_value_from_another_store_stays_null(st: Any) -> None:
    run = _run(st)
    st.append_metrics(run, [("loss", 0, None, 1.0), ("loss", 1, 0.5, 2.0)])  # a sync's NULL
    (step, value, ts), second = st.metric_history(run)["loss"]
    assert (step, math.isnan(value), ts, second) == (0, True, 1.0, (1, 0.5, 2.0))
    assert math.isnan(st.metric_points(run, "loss")[0][1])


def test_a_tracked_run_stores_every_point_as_logged(st: Any) -> None:
    location = st._url if isinstance(st, PostgresStore) else str(st.path)
    with nbtrack.run(name="exact", store=location, capture_env=False, capture_data=False) as t:
        for i, value in enumerate(_EXACT):
            t.log(x=value, step=_STEPS[i % len(_STEPS)])
        t.log(y=1)  # an int, logged as its float
    rows = st.list_runs(columns=("id", "status"))
    assert [r[1] for r in rows] == ["finished"]
    history = st.metric_history(rows[0][0])
    assert [(s, _bits(v)) for s, v, _ in history["x"]] == [
        (_STEPS[i % len(_STEPS)], _bits(v)) for i, v in enumerate(_EXACT)
    ]
    assert [(s, v) for s, v, _ in history["y"]] == [(0, 1.0)]


def test_a_point_postgresql_cannot_hold_writes_nothing_of_its_batch(pg_url: str) -> None:
    store = connect_store(pg_url)
    try:
        run = _run(store)
        good = [("loss", s, 0.5, 1.0) for s in range(10)]
        with pytest.raises(StoreError, match="step 18446744073709551616"):
            store.append_metrics(run, [*good, ("loss", 2**64, 0.5, 1.0)], {"loss": 0.5})
        with pytest.raises(StoreError, match="a value a number"):
            store.append_metrics(run, [*good, ("loss", 11, "high", 1.0)], {"loss": 0.5})
        assert store.metric_history(run) == {}
        assert store.run_row(run)["metrics"] == {}  # the latest values went with the batch
        store.append_metrics(run, good, {"loss": 0.5})  # the connection is still usable
        assert len(store.metric_history(run)["loss"]) == 10
        store.append_metrics(run, [("neg", 0, -0.0, 1.0)], None)  # the sign bit survives
        assert _bits(store.metric_history(run)["neg"][0][1]) == _bits(-0.0)
    finally:
        store.close()


def test_the_binary_copy_stream_is_postgresqls_format() -> None:
    data = binary_copy_metrics("r", [("k", 7, 0.5, 2.0)])
    header, trailer = b"PGCOPY\n\xff\r\n\x00" + bytes(8), b"\xff\xff"
    assert data.startswith(header) and data.endswith(trailer)
    row = data[len(header) : -len(trailer)]
    assert row == struct.pack(">hi1si1siqidid", 5, 1, b"r", 1, b"k", 8, 7, 8, 0.5, 8, 2.0)
    assert binary_copy_metrics("r", []) == header + trailer


_KILLED_WRITER = """
import os, signal, sys
import nbtrack

with nbtrack.run(name="killed", store=sys.argv[1], capture_env=False, capture_data=False) as t:
    for step in range(300):
        t.log(loss=1.0 / (step + 1), step=step)
    t.flush()  # what a background flush does; these 300 must survive
    for step in range(300, 350):
        t.log(loss=0.0, step=step)  # never flushed: the kill takes them
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writer_keeps_exactly_what_it_flushed_on_postgresql(pg_url: str) -> None:
    env = {**os.environ, "NBTRACK_FLUSH_INTERVAL": "600"}  # no background flush meanwhile
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, pg_url], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    store = connect_store(pg_url)  # opening marks the dead process's run crashed
    try:
        ((run_id, status, metrics),) = store.list_runs(columns=("id", "status", "metrics"))
        assert status == "crashed"
        assert store.metric_points(run_id, "loss") == [(s, 1.0 / (s + 1)) for s in range(300)]
        assert json.loads(metrics) == {"loss": 1.0 / 300}  # latest went with its batch
    finally:
        store.close()


def test_runs_are_numbered_without_pipeline_mode_too(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A libpq older than 14 (no pipeline mode) numbers runs the same way, in two trips."""
    import psycopg

    store = connect_store(pg_url)
    try:
        assert store.create_run(uuid.uuid4().hex, {"status": "running", "start_time": 1.0}) == 1
        monkeypatch.setattr(psycopg.Pipeline, "is_supported", classmethod(lambda cls: False))
        numbers = [
            store.create_run(uuid.uuid4().hex, {"status": "running", "start_time": 1.0})
            for _ in range(2)
        ]
        assert numbers == [2, 3] and store.count_runs() == 3
    finally:
        store.close()
