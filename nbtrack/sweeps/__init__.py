"""Hyperparameter sweeps from a notebook cell, on Optuna: every trial a tracked run.

``%%track --sweep N --objective METRIC --space NAME=KIND(ARGS) ...`` runs the cell as the
objective of an Optuna study (docs/sweeps.md). The pieces, each its own module:

* :mod:`~nbtrack.sweeps.space` — the search space (``--space``, ``nbtrack.suggest``, narrowing);
* :mod:`~nbtrack.sweeps.plan` — a sweep request checked before any trial runs;
* :mod:`~nbtrack.sweeps.study` — Optuna's storage (a journal file beside a SQLite store,
  RDBStorage in a PostgreSQL store's database), sampler and pruner, trial claiming and
  reaping;
* :mod:`~nbtrack.sweeps.trial` — one trial as one run, pruning through ``track.log``;
* :mod:`~nbtrack.sweeps.runner` — opening, resuming, running trials, worker processes;
* :mod:`~nbtrack.sweeps.worker` — ``nbtrack sweep worker``: trials in a fresh interpreter;
* :mod:`~nbtrack.sweeps.program` — the program a worker runs, made from the recorded history;
* :mod:`~nbtrack.sweeps.records` — :func:`sweeps` and :func:`get_sweep`;
* :mod:`~nbtrack.sweeps.progress` — where a sweep stands, and its renderings.

Importing this package is cheap; Optuna is imported when a sweep is opened or read.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    """This package, callable as :func:`nbtrack.sweeps`.

    ``nbtrack.sweeps()`` is the public function, but importing this package (any sweep,
    any :func:`nbtrack.get_sweep`) makes Python set the attribute ``nbtrack.sweeps`` to
    the package. Calling the package does what the function does, so both spellings
    keep working whichever Python last bound.
    """

    def __call__(self, name: str | None = None, *, store: Any = None) -> Any:
        """All sweeps as a DataFrame (see :func:`nbtrack.sweeps.records.sweeps`)."""
        from nbtrack.sweeps.records import sweeps

        return sweeps(name, store=store)


sys.modules[__name__].__class__ = _CallableModule
