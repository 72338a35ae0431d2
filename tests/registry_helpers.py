"""Shared set-up for the registry tests: real runs in a real store, a policy file, and a
snapshot of every registry table (to show that refused actions change nothing)."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import nbtrack
from nbtrack.store.sqlite import Store

REGISTRY_TABLES = (
    "registry_models",
    "registry_versions",
    "registry_stages",
    "registry_aliases",
    "registry_decisions",
    "registry_audit",
)


def make_run(
    store: Store,
    metrics: dict[str, float],
    *,
    name: str = "digits",
    artifact: Any = b"model-bytes",
    artifact_name: str = "model",
    params: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
    goals: dict[str, str] | None = None,
) -> int:
    """Record a finished run with ``metrics`` and one artifact; returns its number."""
    with nbtrack.run(
        name=name,
        params=params or {"lr": 0.1},
        seed=7,
        store=store,
        capture_env=False,
        capture_data=False,
        goals=goals,
    ) as track:
        track.log(**metrics)
        if artifact is not None:
            track.artifact(artifact, artifact_name)
        for key, value in (inputs or {}).items():
            track.input(value, key)
    return int(track.number)


def write_policy(folder: Path, text: str) -> Path:
    """Write ``nbtrack.toml`` with ``text`` (dedented) into ``folder``."""
    path = folder / "nbtrack.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every registry table, read straight from the database file."""
    conn = sqlite3.connect(db)
    try:
        out = {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in REGISTRY_TABLES
        }
        out["meta"] = conn.execute("SELECT * FROM meta WHERE key='audit_seq'").fetchall()
        return out
    finally:
        conn.close()
