"""Parameters from both sides: what ``%%track`` records, what ``--set`` changes, and what
the exported script's flags change must be one and the same binding.

For each binding form a tracked cell runs in a real IPython InteractiveShell; its run is
exported, the script runs in a fresh process with every flag changed, and the metric the
script logs must move exactly as the flags say, with the new run's params equal to the
flags. The same cell then runs with ``--set`` for every param: again the recorded params
and the logged metric must agree.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack.export import export_run, write_script

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Form:
    """One binding form: the cell, what it records, and the metric it logs."""

    name: str
    body: str  # the cell without its %%track line; it logs m = metric(values)
    params: dict[str, Any]  # what the run records
    metric: Callable[[dict[str, Any]], float]  # m from the parameters' effective values
    changed: dict[str, Any]  # a new value for every flag (and every --set)
    logged: dict[str, Any] = field(default_factory=dict)  # params from track.log_params


def _lr_wd(values: dict[str, Any]) -> float:
    return float(values["lr"] * 1000 + values["wd"])


LOG = "track.log(m=lr * 1000 + wd)\n"
NEW = {"lr": 0.002, "wd": 0.5}

FORMS = [
    Form("simple", "lr = 1e-3\nwd = 0.25\n" + LOG, {"lr": 1e-3, "wd": 0.25}, _lr_wd, NEW),
    Form(
        "annotated",
        "lr: float = 1e-3\nwd: float = 0.25\nsteps: int\n" + LOG,
        {"lr": 1e-3, "wd": 0.25},
        _lr_wd,
        NEW,
    ),
    Form("tuple", "lr, wd = 1e-3, 0.25\n" + LOG, {"lr": 1e-3, "wd": 0.25}, _lr_wd, NEW),
    # The case: each flag must change only its own name.
    Form("chained", "lr = wd = 1e-3\n" + LOG, {"lr": 1e-3, "wd": 1e-3}, _lr_wd, NEW),
    Form(
        "chained-mutable",
        "lr = 1e-3\nxs = ys = []\nxs.append(lr)\ntrack.log(m=lr * 1000 + len(ys))\n",
        {"lr": 1e-3},
        lambda v: v["lr"] * 1000 + 1,
        {"lr": 0.004},
    ),
    Form(
        "augmented",
        "lr = 1e-3\nwd = 0.25\nlr *= 2\n" + LOG,
        {"lr": 1e-3, "wd": 0.25},
        lambda v: v["lr"] * 2000 + v["wd"],
        NEW,
    ),
    # The last literal binding is the parameter; code before it keeps the first value.
    Form(
        "rebound",
        "lr = 1e-3\nfirst = lr * 1000\nlr = 3e-3\nwd = 0.25\ntrack.log(m=lr * 1000 + wd + first)\n",
        {"lr": 3e-3, "wd": 0.25},
        lambda v: v["lr"] * 1000 + v["wd"] + 1,
        NEW,
    ),
    Form(
        "non-literal-rebinding",
        "lr = 1e-3\nlr = float(lr)\nwd = 0.25\n" + LOG,
        {"lr": 1e-3, "wd": 0.25},
        _lr_wd,
        NEW,
    ),
    # A param from track.log_params has no binding to replace: no flag, no --set.
    Form(
        "log-params",
        "lr = 1e-3\ntrack.log_params(extra=7)\ntrack.log(m=lr * 1000)\n",
        {"lr": 1e-3, "extra": 7},
        lambda v: v["lr"] * 1000,
        {"lr": 0.004},
        logged={"extra": 7},
    ),
]


def _flags(script: str) -> dict[str, list[str]]:
    """``{dest: option strings}`` of the script's ``_parser.add_argument`` calls."""
    found: dict[str, list[str]] = {}
    for node in ast.walk(ast.parse(script)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
        ):
            options = [a.value for a in node.args if isinstance(a, ast.Constant)]
            dest = next(
                (k.value.value for k in node.keywords if k.arg == "dest"), options[0].lstrip("-")
            )
            found[str(dest)] = [str(o) for o in options]
    return found


def _run_script(script: Path, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        "NBTRACK_STORE": str(store),
        "NBTRACK_SUMMARY": "0",
        "PYTHONPATH": str(REPO) + (os.pathsep + path if path else ""),
    }
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_recorded_params_flags_and_set_agree(
    form: Form, shell: Any, store_dir: Path, tmp_path: Path
) -> None:
    # 1. The tracked cell records the params the rule says.
    result = shell.run_cell("%%track --quiet\n" + form.body, store_history=True)
    assert result.success, result.error_in_exec
    record = nbtrack.get_run("last")
    assert record.params == form.params
    assert record.metrics["m"] == pytest.approx(form.metric(form.params))

    # 2. The exported script offers a flag for each replaceable param, and no other.
    exported = export_run(record)
    flags = _flags(exported.script)
    param_flags = {d for d in flags if d not in ("help", "seed", "strict")}
    assert param_flags == set(form.changed)

    # 3. Every flag changed: the metric moves as the flags say, params equal the flags.
    script = write_script(exported.script, tmp_path / f"{form.name}.py", force=True)
    args = [a for name, value in form.changed.items() for a in (flags[name][0], str(value))]
    done = _run_script(script, store_dir, *args)
    assert done.returncode == 0, done.stderr
    rerun = nbtrack.get_run("last")
    assert rerun.number != record.number
    assert rerun.params == {**form.changed, **form.logged}
    assert rerun.metrics["m"] == pytest.approx(form.metric(form.changed))

    # 4. --set every param from the same table: recorded params and metric agree.
    options = " ".join(f"--set {name}={value!r}" for name, value in form.changed.items())
    result = shell.run_cell(f"%%track --quiet {options}\n" + form.body, store_history=True)
    assert result.success, result.error_in_exec
    overridden = nbtrack.get_run("last")
    expected = {**form.params, **form.changed}
    assert overridden.params == expected
    assert overridden.metrics["m"] == pytest.approx(form.metric(expected))


def test_set_one_name_of_a_chained_assignment_changes_only_that_name(shell: Any) -> None:
    result = shell.run_cell("%%track --quiet --set wd=0.5\nlr = wd = 1e-3\n" + LOG)
    assert result.success, result.error_in_exec
    record = nbtrack.get_run("last")
    assert record.params == {"lr": 1e-3, "wd": 0.5}
    assert record.metrics["m"] == pytest.approx(1.5)
    assert "lr = 1e-3; wd = 0.5" in record.code
