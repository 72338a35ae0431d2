"""Proof: run an exported script in a fresh process and compare its run with the original.

The script records a new run (its tracked cell is a ``with nbtrack.run(...)`` block) in the
original run's store; the two runs' final metric values are compared, exactly by default.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrack import config
from nbtrack.errors import ExportError

if TYPE_CHECKING:
    from nbtrack.query import RunRecord

__all__ = ["MetricRow", "VerifyReport", "verify", "compare_metrics"]

#: How much of the script's output a failed verification shows.
OUTPUT_TAIL = 2000


@dataclass(frozen=True)
class MetricRow:
    """One metric of the original run next to the reproduced value."""

    metric: str
    recorded: float | None
    reproduced: float | None
    ok: bool

    @property
    def difference(self) -> float | None:
        if self.recorded is None or self.reproduced is None:
            return None
        return self.reproduced - self.recorded


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify`: a row per metric, and how the script ran."""

    rows: tuple[MetricRow, ...]
    returncode: int
    original: int  # run number
    reproduced: int | None  # run number of the script's run, None if it recorded none
    output: str  # the tail of the script's stdout and stderr
    rtol: float
    atol: float

    @property
    def ok(self) -> bool:
        """True when the script succeeded and every metric matched."""
        return (
            self.returncode == 0
            and self.reproduced is not None
            and all(row.ok for row in self.rows)
        )

    @property
    def mismatches(self) -> list[MetricRow]:
        return [row for row in self.rows if not row.ok]

    def table(self) -> str:
        """The metric, recorded, reproduced, difference table."""
        head = ["metric", "recorded", "reproduced", "difference", ""]
        body = [
            [
                row.metric,
                _fmt(row.recorded),
                _fmt(row.reproduced),
                _fmt(row.difference),
                "ok" if row.ok else "MISMATCH",
            ]
            for row in self.rows
        ]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in [head, *body]
        ]
        lines.insert(1, "  ".join("-" * w for w in widths).rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        tolerance = (
            "exact" if not (self.rtol or self.atol) else f"rtol={self.rtol:g}, atol={self.atol:g}"
        )
        if self.returncode != 0:
            return (
                f"the exported script failed (exit status {self.returncode}); its "
                f"output ends with:\n{self.output.rstrip()}"
            )
        if self.reproduced is None:
            return (
                "the exported script ran but recorded no run; export it without "
                "--no-track to verify it"
            )
        verdict = (
            "reproduced" if self.ok else f"NOT reproduced: {len(self.mismatches)} metric(s) differ"
        )
        return (
            f"run #{self.original} → run #{self.reproduced} ({tolerance}): {verdict}\n"
            + self.table()
        )


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return repr(value) if isinstance(value, float) else str(value)


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return abs(a - b) <= atol + rtol * abs(a)


def compare_metrics(
    recorded: dict[str, float],
    reproduced: dict[str, float],
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
) -> tuple[MetricRow, ...]:
    """A row per metric in either run; a metric missing from one side is a mismatch."""
    rows = []
    for key in sorted(set(recorded) | set(reproduced)):
        a, b = recorded.get(key), reproduced.get(key)
        ok = a is not None and b is not None and _close(float(a), float(b), rtol, atol)
        rows.append(MetricRow(key, a, b, ok))
    return tuple(rows)


def _python_path() -> str:
    # The script imports nbtrack; make this nbtrack importable even when it runs from a
    # source checkout rather than an installed distribution.
    here = str(Path(__file__).resolve().parents[2])
    current = os.environ.get("PYTHONPATH")
    return here if not current else here + os.pathsep + current


def verify(
    script: str | os.PathLike[str],
    record: RunRecord,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    args: Sequence[str] = (),
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    python: str | None = None,
) -> VerifyReport:
    """Run ``script`` with ``python`` (this interpreter by default) in a fresh process and
    compare the run it records with ``record``.

    The script writes to ``record``'s store. It runs in ``cwd``: by default the folder of
    the run's notebook when that still exists, else the script's folder (relative paths in
    the code were relative to the kernel's working directory, the notebook's folder).
    """
    if rtol < 0 or atol < 0:
        raise ExportError("--rtol and --atol must not be negative")
    path = Path(script).resolve()
    if not path.is_file():
        raise ExportError(f"no script at {path} to verify")
    store = record.store
    if cwd is None:
        notebook = Path(record.notebook) if record.notebook else None
        cwd = notebook.parent if notebook is not None and notebook.parent.is_dir() else path.parent
    before = {row[0] for row in store.list_runs(columns=("id",))}
    env = dict(os.environ)
    env[config.ENV_STORE] = store.location  # a database's URL, not its artifact folder
    env["PYTHONPATH"] = _python_path()
    env[config.ENV_VERIFYING] = "1"  # a reproduction: its track.register calls do nothing
    env.setdefault("MPLBACKEND", "Agg")
    try:
        done = subprocess.run(
            [python or sys.executable, str(path), *args],
            cwd=str(cwd),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        returncode, output = done.returncode, done.stdout
    except subprocess.TimeoutExpired as exc:
        out = (
            exc.stdout.decode(errors="replace")
            if isinstance(exc.stdout, bytes)
            else (exc.stdout or "")
        )
        returncode, output = 124, out + f"\n(stopped after {timeout} s)"
    from nbtrack.query import load_record

    new = None
    for (run_id,) in reversed(store.list_runs(columns=("id",))):
        if run_id in before:
            continue
        candidate = load_record(store, run_id)
        if Path(str(candidate.extra.get("script") or "")).resolve() == path:
            new = candidate
            break
    rows = (
        compare_metrics(
            record.metrics, new.metrics if new is not None else {}, rtol=rtol, atol=atol
        )
        if new is not None
        else ()
    )
    # A pruned run's script stops where it stopped (stop_at): pruned again is a reproduction.
    expected = "pruned" if record.status == "pruned" else "finished"
    if new is not None and new.status != expected and returncode == 0:
        returncode = 1
    report = VerifyReport(
        rows=rows,
        returncode=returncode,
        original=record.number,
        reproduced=new.number if new is not None else None,
        output=output[-OUTPUT_TAIL:],
        rtol=rtol,
        atol=atol,
    )
    if report.ok and new is not None:
        # The fact the registry's `verified` gate reads (docs/registry.md).
        store.record_verification(record.id, new.id, rtol, atol)
    return report
