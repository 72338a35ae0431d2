"""What a sweep cell asks for, checked before any trial runs: :func:`plan_sweep`.

The ``%%track`` options (:mod:`nbtrack.trackline`) and the cell's code become a
:class:`SweepPlan`; the cell's own context (history, notebook, working directory) a
:class:`CellContext`. Both are plain values, shared by the kernel and by worker processes.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from nbtrack.errors import SweepError
from nbtrack.metrics import Direction, direction
from nbtrack.model import HistoryEntry
from nbtrack.pyast.bindings import parse_module
from nbtrack.sweeps.space import (
    Dimension,
    cell_suggestions,
    check_bindings,
    parse_space_options,
    stray_suggestions,
)
from nbtrack.trackline import TrackOptions

__all__ = ["CellContext", "SweepPlan", "plan_sweep", "DEFAULT_MAX_FAILURES"]

#: Trials in a row that may fail before the sweep stops (``--max-failures``).
DEFAULT_MAX_FAILURES = 3


@dataclass(frozen=True)
class CellContext:
    """The tracked cell and where it ran: what every trial's run records.

    ``code``: the cell as written (``--set`` applied) — what a trial records, with its
    sampled values written in; ``python``: whether ``code`` is plain Python (else the
    trials rewrite ``template``, the code after IPython's transforms).
    """

    code: str
    template: str
    magic_line: str
    history: tuple[HistoryEntry, ...] = ()
    notebook: str | None = None
    cwd: str | None = None
    execution_count: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep request."""

    options: TrackOptions
    n_trials: int
    objective: str
    direction: Direction
    sampler: str
    pruner: str
    space: tuple[Dimension, ...]
    seed: int
    workers: int
    max_failures: int
    notes: tuple[str, ...] = ()

    @property
    def optuna_direction(self) -> Literal["minimize", "maximize"]:
        """``"minimize"`` or ``"maximize"``."""
        return "minimize" if self.direction == "min" else "maximize"


def template_of(raw: str, python: str) -> str:
    """The code trials rewrite: the cell as written when it is plain Python, else the code
    after IPython's transforms (``!ls``, ``%time`` lines)."""
    return raw if parse_module(raw) is not None else python


def plan_sweep(options: TrackOptions, template: str, *, cwd: str | None = None) -> SweepPlan:
    """Check a sweep request: objective, space (``--space`` and ``nbtrack.suggest`` calls,
    each bound in the cell), direction (default: the objective's, :mod:`nbtrack.metrics`),
    sampler, pruner. Raises a one-line :class:`~nbtrack.errors.SweepError` when it is not
    runnable. ``--narrow-from`` and ``--resume`` are applied when the sweep is opened."""
    if options.sweep is None:
        raise SweepError("not a sweep: give --sweep N")
    import importlib.util

    if importlib.util.find_spec("optuna") is None:
        raise SweepError(
            "--sweep runs on Optuna, which is not installed: pip install 'nbtrack[sweeps]'"
        )
    if not options.objective:
        raise SweepError(
            "--sweep needs --objective METRIC: the metric (logged with track.log) to optimise"
        )
    dims = parse_space_options(options.space)
    from_cell = cell_suggestions(template)
    taken = {d.name for d in dims}
    clash = [d.name for d in from_cell if d.name in taken]
    if clash:
        raise SweepError(
            f"{clash[0]!r} is searched twice: by --space and by nbtrack.suggest in the cell; "
            "keep one"
        )
    space = (*dims, *from_cell)
    if not space and not options.narrow_from:
        raise SweepError(
            "a sweep needs a search space: --space NAME=KIND(ARGS), or "
            "NAME = nbtrack.suggest.KIND(...) in the cell (see docs/sweeps.md)"
        )
    check_bindings(template, space)
    notes = []
    stray = stray_suggestions(template)
    if stray:
        notes.append(
            "nbtrack.suggest calls on line(s) "
            + ", ".join(map(str, stray))
            + " are not searched (only a top-level `name = nbtrack.suggest.KIND(...)` is); "
            "they return their plain value"
        )
    chosen: Direction = (
        ("min" if options.direction == "min" else "max")
        if options.direction
        else direction(options.objective, start=cwd)
    )
    sampler = options.sampler or "tpe"
    seed = options.seed if options.seed is not None else secrets.randbelow(2**32)
    return SweepPlan(
        options=options,
        n_trials=options.sweep,
        objective=options.objective,
        direction=chosen,
        sampler=sampler,
        pruner=options.pruner or "none",
        space=tuple(space),
        seed=seed,
        workers=options.workers or 1,
        max_failures=options.max_failures or DEFAULT_MAX_FAILURES,
        notes=tuple(notes),
    )


def space_texts(dims: Sequence[Dimension]) -> dict[str, str]:
    """``{name: "loguniform(1e-05, 0.01)"}``: how a space is compared and shown."""
    return {d.name: d.text() for d in dims}
