"""A sweep as a script: ``nbtrack sweep export REF`` writes one that reruns the sweep with
the same sampler seed, outside the notebook.

The script holds the cells the sweep cell depends on (from the kernel's recorded history,
translated and sliced as ``nbtrack export`` does: :func:`~nbtrack.sweeps.program.worker_program`),
the cell's body, and the sweep's recorded search space, sampler, pruner, objective and
direction. Run, it calls :func:`rerun`, which records a new sweep whose trials are new runs.
A sweep run in the kernel (one process) gives the same trials again from the same seed;
one run by several workers cannot be replayed trial for trial.
"""

from __future__ import annotations

import os
import pprint
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from nbtrack.sweeps.plan import CellContext, SweepPlan
from nbtrack.sweeps.runner import Sweep, SweepResult, run_sweep
from nbtrack.sweeps.space import Dimension, space_to_json
from nbtrack.trackline import parse_track_line

__all__ = ["export_sweep", "rerun"]


def export_sweep(sweep: Sweep) -> str:
    """The script that reruns ``sweep`` (see the module doc)."""
    from nbtrack import __version__
    from nbtrack.sweeps.program import worker_program

    prelude, body = worker_program(sweep)
    settings = {
        "name": sweep.name,
        "magic_line": sweep.context.magic_line,
        "objective": sweep.objective,
        "direction": sweep.direction,
        "sampler": sweep.sampler,
        "pruner": sweep.pruner,
        "space": space_to_json(sweep.dims),
        "max_failures": sweep.max_failures,
    }
    doc = textwrap.fill(
        f"Rerun nbtrack sweep #{sweep.number}"
        + (f" {sweep.name!r}" if sweep.name else "")
        + f" (id {sweep.id[:12]}): {sweep.n_trials} trials of the tracked cell on Optuna's "
        f"{sweep.sampler} sampler with the sweep's seed {sweep.seed}, each trial recorded "
        "as a new nbtrack run of a new sweep. Exported by nbtrack "
        f"{__version__}; the cells the sweep cell depends on come first.",
        width=88,
    )
    usage = (
        "Usage:\n\n    python SCRIPT.py                  # the same trials again\n"
        "    python SCRIPT.py --trials 100 --seed 7"
    )
    return (
        "#!/usr/bin/env python3\n"
        f'"""{doc}\n\n{usage}\n"""\n\n'
        "import argparse as _argparse\n\n"
        "# ---- the cells the sweep cell depends on --------------------------------------------\n"
        f"{prelude}\n"
        "# ---- the sweep cell, the objective of every trial -------------------------------------\n"
        f"_CELL = {_string_source(body)}\n"
        f"_SWEEP = {pprint.pformat(settings, sort_dicts=False, width=88)}\n\n"
        "_parser = _argparse.ArgumentParser(description=__doc__.splitlines()[0])\n"
        f"_parser.add_argument('--trials', type=int, default={sweep.n_trials}, "
        f"help='how many trials (recorded: {sweep.n_trials})')\n"
        f"_parser.add_argument('--seed', type=int, default={sweep.seed}, "
        f"help='the sampler seed (recorded: {sweep.seed})')\n"
        "_ARGS = _parser.parse_args()\n\n"
        "from nbtrack.sweeps.script import rerun  # noqa: E402\n\n"
        "print(rerun(_CELL, _SWEEP, globals(), trials=_ARGS.trials, seed=_ARGS.seed))\n"
    )


def _string_source(text: str) -> str:
    """``text`` as a Python string literal, as readable lines when that is safe."""
    if "\\" not in text and "'''" not in text and not text.endswith("'"):
        return "'''\\\n" + text + "'''"
    return repr(text)


def rerun(
    cell: str,
    settings: Mapping[str, Any],
    namespace: dict[str, Any],
    *,
    trials: int,
    seed: int,
) -> str:
    """Run the sweep an exported script describes, in this process; returns its summary."""
    from nbtrack.sweeps.progress import progress_of, progress_text
    from nbtrack.sweeps.worker import ScriptExecutor

    options = replace(
        parse_track_line(str(settings.get("magic_line") or ""), strict=False),
        sweep=trials,
        seed=seed,
        resume=False,
        workers=None,
        narrow_from=None,
    )
    dims: Sequence[Dimension] = [Dimension.from_json(d) for d in settings["space"]]
    plan = SweepPlan(
        options=options,
        n_trials=trials,
        objective=str(settings["objective"]),
        direction="min" if settings["direction"] == "min" else "max",
        sampler=str(settings["sampler"]),
        pruner=str(settings["pruner"]),
        space=tuple(dims),
        seed=seed,
        workers=1,
        max_failures=int(settings.get("max_failures") or 3),
    )
    context = CellContext(
        code=cell,
        template=cell,
        magic_line=str(settings.get("magic_line") or ""),
        cwd=os.getcwd(),
    )
    result: SweepResult = run_sweep(plan, context, ScriptExecutor(namespace, "sweep script"))
    sweep = result.sweep
    return progress_text(progress_of(sweep, sweep.load_study(), status=result.status))
