"""The program a sweep's worker runs: the cells the sweep cell depends on, then its body.

Made from the sweep's recorded history by the exporter's stages, as ``nbtrack export``
makes a script. Its own module, below both :mod:`~nbtrack.sweeps.runner` (which checks the
program before starting workers) and :mod:`~nbtrack.sweeps.worker` (which runs it), so that
neither imports the other in a circle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbtrack.errors import ExportError, SweepError

if TYPE_CHECKING:
    from nbtrack.sweeps.runner import Sweep

__all__ = ["worker_program", "check_worker_program"]


def _stand_in_record(sweep: Sweep) -> Any:
    """A run record of the sweep cell as the exporter's stages read one (no run exists)."""
    from nbtrack.records import RunRecord

    context = sweep.context
    return RunRecord(
        id=sweep.id,
        number=0,
        name=sweep.name,
        status="running",
        kind="cell",
        start_time=0.0,
        end_time=None,
        notebook=context.notebook,
        note=None,
        tags=[],
        params={},
        metrics={},
        metric_history={},
        seed=sweep.seed,  # every trial is seeded: earlier draws are no dependency
        deterministic=sweep.options.deterministic,
        seed_calls=[],
        rng_state=None,
        environment={},
        git={},
        inputs=[],
        models=[],
        code=context.code,
        history=list(context.history),
        artifacts=[],
        error=None,
        warnings=[],
        extra={"magic_line": context.magic_line, "execution_count": context.execution_count},
        store=sweep.store,
    )


def worker_program(sweep: Sweep) -> tuple[str, str]:
    """``(prelude, body)``: the cells the sweep cell depends on and the cell's own body,
    both as plain Python (IPython syntax translated as ``nbtrack export`` does)."""
    from nbtrack.export.helpers import helper_source
    from nbtrack.export.runs import (
        failed_cells,
        reset_generators,
        slice_history,
        translate_history,
    )

    record = _stand_in_record(sweep)
    history = translate_history(record)
    sliced = slice_history(
        history, reset_rng=reset_generators(record), failed=failed_cells(record.notebook)
    )
    imports, definitions = helper_source(sliced.helpers)
    parts = [*imports, definitions, *sliced.texts]
    return "\n".join(p for p in parts if p) + "\n", sliced.tracked_code


def check_worker_program(sweep: Sweep) -> None:
    """Fail with one line, before any worker starts, when the workers' program cannot be
    made from the recorded history."""
    try:
        worker_program(sweep)
    except ExportError as exc:
        raise SweepError(
            f"--workers runs the cells this one depends on in each worker, and they cannot be "
            f"made into a script: {exc}; run without --workers"
        ) from None
