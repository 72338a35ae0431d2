"""The JSON the Runs panel reads: pure functions over the store, no tornado.

Each function takes a notebook's absolute path, opens that notebook's store read-mostly
(the server never creates a store), and returns plain JSON-able dicts. Problems are raised as
:class:`nbtrack.errors.NbtrackError` subclasses; the handlers turn them into HTTP errors.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nbtrack import config
from nbtrack.errors import StoreError, StoreLockedError, StoreReadOnlyError
from nbtrack.query import RunRecord, diff_records, load_record
from nbtrack.store.sqlite import Store, decode_row

#: Columns the run list needs; the code itself is sent once per distinct hash.
LIST_COLUMNS = (
    "id",
    "number",
    "name",
    "status",
    "start_time",
    "end_time",
    "notebook",
    "tags",
    "note",
    "params",
    "metrics",
    "error",
    "extra",
    "code_hash",
    "project",
)


class NoStoreError(StoreError):
    """The notebook's folder has no nbtrack store (no tracked cell has run there yet)."""

    def __init__(self, store_dir: Path) -> None:
        super().__init__(
            f"no nbtrack store at {store_dir}; run a %%track cell in this notebook to create it"
        )
        self.store_dir = store_dir


def store_dir_for(notebook: Path) -> config.StoreLocation:
    """The store a kernel started for ``notebook`` writes to: ``$NBTRACK_STORE`` or
    ``.nbtrack/`` next to the notebook (Jupyter starts kernels in the notebook's folder)."""
    return config.default_store_dir(cwd=notebook.parent)


@contextlib.contextmanager
def open_notebook_store(notebook: Path) -> Iterator[Store]:
    """The notebook's store, opened for this request only and closed after it.

    A fresh connection each time means a store deleted or replaced between two polls is
    noticed at once instead of being read through a stale handle.
    """
    from nbtrack.store.routing import connect_store

    folder = store_dir_for(notebook)
    # A team store (NBTRACK_STORE=postgresql://...) is a database, not a folder to look in.
    if isinstance(folder, Path) and not (folder / config.DB_FILENAME).is_file():
        raise NoStoreError(folder)
    store = connect_store(folder, create=False)
    try:
        # Runs whose kernel died are shown as crashed, not running forever. Marking them
        # writes; a read-only or busy store is still worth reading.
        with contextlib.suppress(StoreReadOnlyError, StoreLockedError):
            store.mark_crashed()
        yield store
    finally:
        store.close()


def json_object(value: dict[str, Any]) -> dict[str, Any]:
    """:func:`json_safe` of a dict, typed as the dict it stays."""
    out = json_safe(value)
    assert isinstance(out, dict)
    return out


def json_safe(value: Any) -> Any:
    """``value`` with NaN/infinity as ``None`` and anything JSON can't hold as its ``str``.

    Browsers' ``JSON.parse`` rejects the ``NaN`` that Python's json module writes.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    return str(value)


def _notebook_keys(notebook: Path) -> list[str]:
    """The spellings under which a kernel may have recorded ``notebook``."""
    keys = [str(notebook)]
    real = str(notebook.resolve())
    if real not in keys:
        keys.append(real)
    return keys


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    start, end = row["start_time"], row["end_time"]
    error = row["error"] or None
    return {
        "id": row["id"],
        "number": row["number"],
        "name": row["name"],
        "status": row["status"],
        "start_time": start,
        "end_time": end,
        "duration": None if end is None or start is None else end - start,
        "tags": row["tags"],
        "note": row["note"],
        "params": row["params"],
        "metrics": dict(row["metrics"]),
        "error": None if not error else f"{error.get('type', 'Error')}: {error.get('message', '')}",
        "execution_count": row["extra"].get("execution_count"),
        "code_hash": row["code_hash"],
        "project": row["project"],
    }


def runs_payload(notebook: Path, project: str | None = None) -> dict[str, Any]:
    """The runs recorded by ``notebook``, newest first, with the code of each distinct cell;
    ``project``: only that project's runs (docs/team.md#projects).

    A notebook without a store is not an error here: the payload says so in ``message``.
    """
    folder = store_dir_for(notebook)
    try:
        with open_notebook_store(notebook) as store:
            rows: dict[str, dict[str, Any]] = {}
            for key in _notebook_keys(notebook):
                for raw in store.list_runs(columns=LIST_COLUMNS, notebook=key, project=project):
                    row = decode_row(raw, LIST_COLUMNS)
                    rows[row["id"]] = row
            runs = sorted((_summary(r) for r in rows.values()), key=lambda r: -r["number"])
            hashes = [r["code_hash"] for r in runs if r["code_hash"]]
            codes = {
                h: blob.decode("utf-8", "replace") for h, blob in store.get_blobs(hashes).items()
            }
            total = store.count_runs()
    except NoStoreError as exc:
        return {
            "store": config.shown_location(folder),
            "store_exists": False,
            "runs": [],
            "codes": {},
            "other_runs": 0,
            "message": str(exc),
        }
    return json_object(
        {
            "store": config.shown_location(folder),
            "store_exists": True,
            "runs": runs,
            "codes": codes,
            "other_runs": total - len(runs),
            "message": None,
        }
    )


def record_payload(record: RunRecord, notebook: Path) -> dict[str, Any]:
    """One run for the details view; says so when it was recorded by another notebook."""
    data = record.to_dict()
    history = data.pop("metric_history")
    data["metric_points"] = {k: len(v) for k, v in history.items()}
    data["history"] = [n for n, _ in data["history"]]
    data["execution_count"] = record.extra.get("execution_count")
    mine = record.notebook is None or record.notebook in _notebook_keys(notebook)
    data["notice"] = (
        None
        if mine
        else (
            f"run #{record.number} was recorded by another notebook ({record.notebook}); "
            "it shares this folder's store"
        )
    )
    return json_object(data)


def run_payload(notebook: Path, ref: str) -> dict[str, Any]:
    """Everything about run ``ref`` (number, id, id prefix or 'last') of the notebook's store."""
    with open_notebook_store(notebook) as store:
        return record_payload(load_record(store, store.resolve(ref)), notebook)


def diff_payload(notebook: Path, a: str, b: str) -> dict[str, Any]:
    """What differs between runs ``a`` and ``b``: sections of rows, and a unified code diff."""
    with open_notebook_store(notebook) as store:
        ra = load_record(store, store.resolve(a))
        rb = load_record(store, store.resolve(b))
        data = diff_records(ra, rb).to_dict()
    for rows in data["sections"].values():
        for row in rows:
            # Values are shown as text; a dict or list is shown as its JSON.
            for side in ("a", "b"):
                if isinstance(row[side], (dict, list, tuple)):
                    row[side] = json.dumps(json_safe(row[side]), sort_keys=True)
    data["names"] = {"a": ra.name, "b": rb.name}
    return json_object(data)
