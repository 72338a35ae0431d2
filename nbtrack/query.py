"""Reading runs back: :func:`runs` as a DataFrame, :func:`get_run`, :func:`diff`."""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbtrack.model import ArtifactInfo, Fingerprint, HistoryEntry, MetricPoint
from nbtrack.store.sqlite import Store, open_store

if TYPE_CHECKING:
    import pandas

StoreLike = Store | str | os.PathLike[str] | None

LOWER_IS_BETTER = (
    "loss",
    "err",
    "mse",
    "mae",
    "rmse",
    "perplexity",
    "ppl",
    "wer",
    "cer",
    "latency",
    "time",
    "duration",
    "regret",
)


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better, judged from its name."""
    name = metric.lower()
    return any(word in name for word in LOWER_IS_BETTER)


def _store(store: StoreLike) -> Store:
    return store if isinstance(store, Store) else open_store(store)


@dataclass(frozen=True, repr=False)
class RunRecord:
    """Everything recorded about one run, as returned by :func:`nbtrack.get_run`."""

    id: str
    number: int
    name: str | None
    status: str
    kind: str
    start_time: float
    end_time: float | None
    notebook: str | None
    note: str | None
    tags: list[str]
    params: dict[str, Any]
    metrics: dict[str, float]
    metric_history: dict[str, list[MetricPoint]]
    seed: int | None
    deterministic: bool
    seed_calls: list[dict[str, Any]]
    rng_state: dict[str, Any] | None
    environment: dict[str, Any]
    git: dict[str, Any]
    inputs: list[Fingerprint]
    models: list[dict[str, Any]]
    code: str
    history: list[HistoryEntry]
    artifacts: list[ArtifactInfo]
    error: dict[str, Any] | None
    warnings: list[str]
    extra: dict[str, Any]
    store: Store = field(repr=False, compare=False)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or ``None`` while running."""
        return None if self.end_time is None else self.end_time - self.start_time

    def load_artifact(self, name: str) -> Any:
        """The artifact called ``name``: a path for files and folders, else the object."""
        from nbtrack.artifacts import load_artifact
        from nbtrack.errors import ArtifactError

        for art in self.artifacts:
            if art.name == name:
                return load_artifact(self.store, art.kind, art.hash, art.meta)
        names = ", ".join(a.name for a in self.artifacts) or "none"
        raise ArtifactError(f"run #{self.number} has no artifact {name!r} (it has: {names})")

    def restore_rng(self) -> list[str]:
        """Put ``random``, NumPy and torch RNGs back in the state they had at the run's start."""
        from nbtrack.capture.seeds import restore_rng_state
        from nbtrack.errors import NbtrackError

        if not self.rng_state:
            raise NbtrackError(f"run #{self.number} has no recorded RNG state")
        return restore_rng_state(self.rng_state)

    def metric_frame(self, key: str | None = None) -> pandas.DataFrame:
        """The metric history as a DataFrame with columns metric, step, value, timestamp."""
        import pandas as pd

        rows = [
            (k, p.step, p.value, p.timestamp)
            for k, points in self.metric_history.items()
            if key is None or k == key
            for p in points
        ]
        return pd.DataFrame(rows, columns=["metric", "step", "value", "timestamp"])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the run (what ``nbtrack show --json`` prints)."""
        return {
            "id": self.id,
            "number": self.number,
            "name": self.name,
            "status": self.status,
            "kind": self.kind,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration": self.duration,
            "notebook": self.notebook,
            "note": self.note,
            "tags": self.tags,
            "params": self.params,
            "metrics": self.metrics,
            "metric_history": {
                k: [[p.step, p.value, p.timestamp] for p in v]
                for k, v in self.metric_history.items()
            },
            "seed": self.seed,
            "deterministic": self.deterministic,
            "seed_calls": self.seed_calls,
            "environment": self.environment,
            "git": self.git,
            "inputs": [i.to_dict() for i in self.inputs],
            "models": self.models,
            "code": self.code,
            "history": [[h.execution_count, h.source] for h in self.history],
            "artifacts": [
                {"name": a.name, "kind": a.kind, "hash": a.hash, "size": a.size, "meta": a.meta}
                for a in self.artifacts
            ],
            "error": self.error,
            "warnings": self.warnings,
            "extra": self.extra,
        }

    def __str__(self) -> str:
        from nbtrack.summary import run_text

        return run_text(self)

    __repr__ = __str__  # a notebook's text/plain output stays one screen, not every field

    def _repr_html_(self) -> str:
        from nbtrack.summary import run_html

        return run_html(self)


def load_record(store: Store, run_id: str, *, full: bool = True) -> RunRecord:
    """Read one run and everything attached to it.

    ``full=False`` skips what a summary does not show (environment, RNG state, code,
    history, metric history), which keeps the display after a tracked cell cheap.
    """
    row = store.run_row(run_id)
    history_refs = row["history"] if full else []
    wanted = [h for h in (row["rng_hash"], row["env_hash"], row["code_hash"]) if h] if full else []
    wanted += [h for _, h in history_refs]
    blobs = store.get_blobs(wanted) if wanted else {}

    def blob_json(digest: str | None) -> Any:
        return json.loads(blobs[digest]) if digest and digest in blobs else None

    def blob_text(digest: str | None) -> str:
        return blobs[digest].decode("utf-8") if digest and digest in blobs else ""

    history = (
        {
            k: [MetricPoint(int(s), float(v), float(t)) for s, v, t in points]
            for k, points in store.metric_history(run_id).items()
        }
        if full
        else {}
    )
    return RunRecord(
        id=row["id"],
        number=int(row["number"]),
        name=row["name"],
        status=row["status"],
        kind=row["kind"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        notebook=row["notebook"],
        note=row["note"],
        tags=row["tags"],
        params=row["params"],
        metrics=dict(row["metrics"]),
        metric_history=history,
        seed=row["seed"],
        deterministic=bool(row["deterministic"]),
        seed_calls=row["seeds"],
        rng_state=blob_json(row["rng_hash"]),
        environment=blob_json(row["env_hash"]) or {},
        git=row["git"],
        inputs=[Fingerprint.from_dict(i) for i in row["inputs"]],
        models=row["models"],
        code=blob_text(row["code_hash"]),
        history=[HistoryEntry(int(n), blob_text(h)) for n, h in history_refs],
        artifacts=[ArtifactInfo(n, k, h, s, m) for n, k, h, s, m in store.artifacts(run_id)],
        error=row["error"],
        warnings=row["warnings"],
        extra=row["extra"],
        store=store,
    )


def get_run(ref: Any, *, store: StoreLike = None) -> RunRecord:
    """One run by number, id, unambiguous id prefix or ``"last"``."""
    st = _store(store)
    st.mark_crashed()
    return load_record(st, st.resolve(ref))


RUNS_COLUMNS = (
    "number",
    "id",
    "name",
    "status",
    "start_time",
    "end_time",
    "tags",
    "note",
    "params",
    "metrics",
)


def runs(
    name: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    *,
    store: StoreLike = None,
    notebook: str | None = None,
) -> pandas.DataFrame:
    """All runs as a DataFrame, one row a run, oldest first (see :func:`nbtrack.runs`)."""
    import pandas as pd

    st = _store(store)
    st.mark_crashed()
    rows = st.list_runs(name=name, status=status, tag=tag, columns=RUNS_COLUMNS, notebook=notebook)
    loads = _fast_json_loads()
    columns = list(zip(*rows)) if rows else [()] * len(RUNS_COLUMNS)
    start = pd.Series(columns[4], dtype="float64")
    end = pd.Series(columns[5], dtype="float64")
    base = pd.DataFrame(
        {
            "number": pd.Series(columns[0], dtype="int64"),
            "id": list(columns[1]),
            "name": list(columns[2]),
            "status": list(columns[3]),
            "start_time": pd.to_datetime(start, unit="s"),
            "end_time": pd.to_datetime(end, unit="s"),
            "duration": end - start,
            "tags": [loads(t) for t in columns[6]],
            "note": list(columns[7]),
        }
    )
    # Building each block from a list of dicts keeps the per-run work in pandas' C code:
    # this is what makes runs() on 10,000 runs take well under a third of a second.
    parts = [base]
    for prefix, raw in (("params", columns[8]), ("metrics", columns[9])):
        block = pd.DataFrame([loads(text) for text in raw], index=base.index)
        if block.empty:
            continue
        for key in block.columns:
            if block[key].dtype == object:
                block[key] = block[key].map(_scalar_cell)
        block = block[sorted(block.columns, key=str)]
        block.columns = [f"{prefix}.{key}" for key in block.columns]
        if prefix == "metrics":  # numbers; anything else a foreign writer left becomes NaN
            block = block.apply(pd.to_numeric, errors="coerce").astype("float64")
        parts.append(block)
    return pd.concat(parts, axis=1) if len(parts) > 1 else base


def _scalar_cell(value: Any) -> Any:
    """A container param value as its JSON text, so every cell of the frame is a scalar."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _fast_json_loads() -> Any:
    """orjson's decoder (3x faster on the runs table) with json's for what it rejects (NaN)."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency; stay usable without it
        return json.loads

    def loads(text: str) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return json.loads(text)

    return loads


@dataclass(frozen=True, repr=False)
class RunDiff:
    """What differs between two runs, section by section.

    ``sections`` maps a section name (params, seeds, environment, data, code) to a list of
    ``(key, value in a, value in b)`` rows; only differences are listed. ``code_diff`` is a
    unified diff of the two runs' code.
    """

    a: RunRecord
    b: RunRecord
    sections: dict[str, list[tuple[str, Any, Any]]]
    code_diff: str

    @property
    def empty(self) -> bool:
        """True when the runs differ in nothing compared."""
        return not any(self.sections.values()) and not self.code_diff

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.number,
            "b": self.b.number,
            "sections": {
                k: [{"key": key, "a": va, "b": vb} for key, va, vb in rows]
                for k, rows in self.sections.items()
            },
            "code_diff": self.code_diff,
        }

    def __str__(self) -> str:
        from nbtrack.summary import diff_text

        return diff_text(self)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from nbtrack.summary import diff_html

        return diff_html(self)


_MISSING = "—"


def _compare(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    rows = []
    for key in sorted(set(a) | set(b), key=str):
        va, vb = a.get(key, _MISSING), b.get(key, _MISSING)
        if va != vb:
            rows.append((f"{prefix}{key}", va, vb))
    return rows


def _env_flat(env: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section in ("python", "os", "cpu", "gpu"):
        value = env.get(section)
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, (dict, list)):
                    item = json.dumps(item, sort_keys=True, default=str)
                flat[f"{section}.{key}"] = item
        elif value is not None:
            flat[section] = value
    for key in ("hostname", "memory_total"):
        if key in env:
            flat[key] = env[key]
    for name, version in (env.get("packages") or {}).items():
        flat[f"packages.{name}"] = version
    for name, value in (env.get("env_vars") or {}).items():
        flat[f"env.{name}"] = value
    return flat


def diff_records(a: RunRecord, b: RunRecord) -> RunDiff:
    """Compare two loaded runs."""
    seeds_a = {
        "seed": a.seed,
        "deterministic": a.deterministic,
        "seed calls": json.dumps(a.seed_calls, sort_keys=True),
        "rng state": "same" if a.rng_state == b.rng_state else _rng_digest(a.rng_state),
    }
    seeds_b = {
        "seed": b.seed,
        "deterministic": b.deterministic,
        "seed calls": json.dumps(b.seed_calls, sort_keys=True),
        "rng state": "same" if a.rng_state == b.rng_state else _rng_digest(b.rng_state),
    }
    data_a = {i.name: f"{i.hash} {json.dumps(i.meta.get('shape', ''))}" for i in a.inputs}
    data_b = {i.name: f"{i.hash} {json.dumps(i.meta.get('shape', ''))}" for i in b.inputs}
    git_a: dict[str, Any] = {k: a.git.get(k) for k in ("commit", "branch", "dirty") if k in a.git}
    git_b: dict[str, Any] = {k: b.git.get(k) for k in ("commit", "branch", "dirty") if k in b.git}
    code_diff = "".join(
        difflib.unified_diff(
            a.code.splitlines(keepends=True),
            b.code.splitlines(keepends=True),
            fromfile=f"run {a.number}",
            tofile=f"run {b.number}",
        )
    )
    hist_a = {"cells executed": len(a.history)}
    hist_b = {"cells executed": len(b.history)}
    return RunDiff(
        a=a,
        b=b,
        code_diff=code_diff,
        sections={
            "params": _compare(a.params, b.params),
            "metrics": _compare(a.metrics, b.metrics),
            "seeds": _compare(seeds_a, seeds_b),
            "environment": _compare(_env_flat(a.environment), _env_flat(b.environment))
            + _compare(git_a, git_b, "git."),
            "data": _compare(data_a, data_b),
            "history": _compare(hist_a, hist_b),
        },
    )


def _rng_digest(state: dict[str, Any] | None) -> str:
    if not state:
        return _MISSING
    import xxhash

    return xxhash.xxh3_64_hexdigest(json.dumps(state, sort_keys=True).encode())[:12]


def diff(a: Any, b: Any, *, store: StoreLike = None) -> RunDiff:
    """What differs between runs ``a`` and ``b`` (refs as for :func:`get_run`)."""
    st = _store(store)
    return diff_records(load_record(st, st.resolve(a)), load_record(st, st.resolve(b)))


def best_previous(record: RunRecord) -> dict[str, tuple[float, int]]:
    """For each metric of ``record``: the best value among earlier finished runs of its name.

    Returns ``metric -> (best value, run number)``.
    """
    if not record.name:
        return {}
    best: dict[str, tuple[float, int]] = {}
    rows = record.store.list_runs(
        name=record.name, status="finished", columns=("number", "metrics")
    )
    for number, metrics in rows:
        if number >= record.number:
            continue
        for key, value in json.loads(metrics).items():
            if key not in record.metrics or value is None:
                continue
            v = float(value)
            if v != v:  # NaN is never best
                continue
            current = best.get(key)
            better = current is None or (v < current[0] if lower_is_better(key) else v > current[0])
            if better:
                best[key] = (v, int(number))
    return best
