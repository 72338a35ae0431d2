"""Worker processes: trials of one sweep run in a fresh interpreter, ``nbtrack sweep worker``.

A worker needs what the sweep cell needs: the variables earlier cells made (data, model
classes, helpers). It gets them the way an exported script does: the exporter's stages
(:mod:`nbtrack.export.runs`) translate the kernel's recorded history to plain Python and
slice it to the cells the sweep cell depends on; the worker runs that once, then runs
trials of the cell's body in the resulting namespace until the sweep has its N trials.
So a worker behaves like ``nbtrack export`` of the cell: what export cannot reproduce
(state made outside the recorded history, unpicklable objects handed in by other means),
a worker does not have either — :func:`~nbtrack.sweeps.program.check_worker_program` says so
before any starts.
"""

from __future__ import annotations

import builtins
import linecache
import os
import sys
from collections.abc import MutableMapping
from dataclasses import replace
from typing import Any

from nbtrack.errors import ExportError, SweepError
from nbtrack.sweeps.program import worker_program
from nbtrack.sweeps.runner import SweepResult, load_sweep, run_trials
from nbtrack.tracker import ActiveRun

__all__ = ["ScriptExecutor", "run_worker"]


class ScriptExecutor:
    """Runs trial code in a plain namespace (a worker's)."""

    def __init__(self, namespace: dict[str, Any], label: str) -> None:
        self.namespace: MutableMapping[str, Any] | None = namespace
        self._globals = namespace
        self._label = label
        self._count = 0

    def to_python(self, code: str) -> str:
        """The worker's code is already plain Python."""
        return code

    def execute(self, source: str, track: ActiveRun) -> None:
        """Run ``source`` with ``track`` bound, its lines shown in tracebacks."""
        self._count += 1
        filename = f"<{self._label} trial {self._count}>"
        # Register the text so tracebacks of a failing trial show its lines.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        self._globals["track"] = track
        exec(compile(source, filename, "exec"), self._globals)  # noqa: S102 -- the user's cell


def run_worker(
    ref: Any, *, store: Any = None, index: int | None = None, quiet: bool = False
) -> SweepResult:
    """Join sweep ``ref``: run the cells it depends on, then trials until it has N.

    ``index`` only varies the sampler's seed between workers (default: the process id).
    """
    sweep = load_sweep(ref, store=store)
    try:
        prelude, body = worker_program(sweep)
    except ExportError as exc:
        raise SweepError(f"sweep #{sweep.number} cannot run in a worker: {exc}") from None
    sweep.context = replace(sweep.context, template=body)
    cwd = sweep.context.cwd
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
        sys.path.insert(0, cwd)  # as the kernel: modules beside the notebook import
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    label = f"sweep #{sweep.number}"
    filename = f"<{label}: the cells it depends on>"
    linecache.cache[filename] = (len(prelude), None, prelude.splitlines(True), filename)
    if not quiet:
        print(f"nbtrack: worker {os.getpid()} joins sweep #{sweep.number}", flush=True)
    try:
        exec(compile(prelude, filename, "exec"), namespace)  # noqa: S102
    except Exception as exc:
        raise SweepError(
            f"the cells sweep #{sweep.number} depends on raised {type(exc).__name__}: {exc} "
            "when a worker re-ran them"
        ) from exc
    salt = f"worker-{index if index is not None else os.getpid()}"
    return run_trials(sweep, ScriptExecutor(namespace, label), sampler_salt=salt)


def main(argv: list[str] | None = None) -> int:
    """``python -m nbtrack.sweeps.worker REF [--store PATH] [--index K]``: what ``--workers``
    starts (the same as ``nbtrack sweep worker``, without the rest of the command line).

    Without ``--store``, the store ``$NBTRACK_STORE`` names: how a PostgreSQL store's URL
    reaches a worker, since a command line is readable by every user of the machine."""
    import argparse

    from nbtrack.errors import NbtrackError

    parser = argparse.ArgumentParser(prog="python -m nbtrack.sweeps.worker")
    parser.add_argument("ref")
    parser.add_argument("--store", default=None)
    parser.add_argument("--index", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        result = run_worker(args.ref, store=args.store, index=args.index)
    except NbtrackError as exc:
        print(f"nbtrack: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0 if result.status == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
