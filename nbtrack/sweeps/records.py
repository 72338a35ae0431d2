"""Reading sweeps back: :func:`sweeps` as a DataFrame, :func:`get_sweep` as a
:class:`SweepRecord` (trials DataFrame, best trial, the Optuna study itself)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NbtrackError, SweepError
from nbtrack.store.routing import open_store
from nbtrack.store.sqlite import Store

if TYPE_CHECKING:
    import optuna
    import pandas

    from nbtrack.records import RunRecord
    from nbtrack.sweeps.progress import SweepProgress
    from nbtrack.sweeps.runner import Sweep
    from nbtrack.widgets.compare import CompareWidget

__all__ = ["SweepRecord", "get_sweep", "sweeps"]

StoreLike = Store | str | os.PathLike[str] | None


def _store(store: StoreLike) -> Store:
    return store if isinstance(store, Store) else open_store(store)


@dataclass(frozen=True, repr=False)
class SweepRecord:
    """One sweep as recorded: its settings, its trials' runs and its Optuna study."""

    id: str
    number: int
    name: str | None
    status: str
    objective: str
    direction: str
    sampler: str
    pruner: str
    space: dict[str, str]  # {name: "loguniform(1e-05, 0.01)"}
    n_trials: int
    seed: int | None
    start_time: float
    end_time: float | None
    extra: dict[str, Any]
    store: Store = field(compare=False)

    def _sweep(self) -> Sweep:
        from nbtrack.sweeps.runner import load_sweep

        return load_sweep(self.id, store=self.store)

    @property
    def study(self) -> optuna.Study:
        """The Optuna study (``optuna.load_study`` on the sweep's journal file, or on the
        PostgreSQL store's own database): for
        everything else Optuna offers, e.g. ``optuna.visualization.plot_contour(study)``."""
        return self._sweep().load_study()

    def progress(self) -> SweepProgress:
        """Counts, best trial and every trial, as the displays show them."""
        from nbtrack.sweeps.progress import progress_of

        sweep = self._sweep()
        return progress_of(sweep, sweep.load_study(), status=self.status)

    @property
    def trials(self) -> pandas.DataFrame:
        """One row a trial: ``trial``, ``state``, ``value``, ``run`` (number), ``run_id``,
        ``seed``, ``duration`` and ``params.<name>``; in trial order."""
        import pandas as pd

        from nbtrack.sweeps.study import trial_seed

        numbers: dict[str, int] = {}
        for link in self.store.sweep_trials(self.id):
            if not link["run_id"]:
                continue
            try:
                numbers[link["run_id"]] = int(self.store.run_row(link["run_id"])["number"])
            except NbtrackError:
                continue  # the run was deleted; the trial stays in the study
        rows = []
        for t in self.progress().trials:
            frozen_params = {f"params.{k}": v for k, v in t.params.items()}
            rows.append(
                {
                    "trial": t.number,
                    "state": t.state,
                    "value": t.value,
                    "run": numbers.get(t.run_id or ""),
                    "run_id": t.run_id,
                    "seed": trial_seed(self.seed or 0, t.number),
                    **frozen_params,
                }
            )
        frame = pd.DataFrame(rows)
        if not rows:
            frame = pd.DataFrame(columns=["trial", "state", "value", "run", "run_id", "seed"])
        return frame

    @property
    def best_trial(self) -> RunRecord:
        """The run of the best complete trial (a :class:`~nbtrack.records.RunRecord`)."""
        from nbtrack.query import load_record

        best = self.progress().best
        if best is None or not best.run_id:
            raise SweepError(f"sweep #{self.number} has no complete trial yet")
        return load_record(self.store, best.run_id)

    @property
    def best_value(self) -> float | None:
        """The best objective value so far."""
        best = self.progress().best
        return best.value if best is not None else None

    @property
    def best_params(self) -> dict[str, Any]:
        """The sampled values of the best trial."""
        best = self.progress().best
        return dict(best.params) if best is not None else {}

    def runs(self) -> pandas.DataFrame:
        """The trials' runs as :func:`nbtrack.runs` shows them."""
        from nbtrack.query import runs

        return runs(tag=f"sweep-{self.number}", store=self.store)

    def compare(self, metric: str | None = None) -> CompareWidget:
        """The compare widget on this sweep's runs (``nbtrack[widgets]``)."""
        import nbtrack

        return nbtrack.compare(self.runs(), metric or self.objective, store=self.store)

    def importances(self) -> dict[str, float]:
        """Each parameter's importance for the objective (Optuna's ``optuna.importance``,
        fANOVA); needs at least two complete trials."""
        from nbtrack.sweeps.study import importances

        return importances(self.study)

    def __repr__(self) -> str:
        from nbtrack.sweeps.progress import progress_text

        return progress_text(self.progress())

    def _repr_html_(self) -> str:
        from nbtrack.sweeps.progress import progress_html

        return progress_html(self.progress())


def _record(store: Store, row: dict[str, Any]) -> SweepRecord:
    from nbtrack.sweeps.space import space_from_json

    return SweepRecord(
        id=row["id"],
        number=int(row["number"]),
        name=row["name"],
        status=row["status"],
        objective=row["objective"],
        direction=row["direction"],
        sampler=row["sampler"],
        pruner=row["pruner"],
        space={d.name: d.text() for d in space_from_json(row["space"])},
        n_trials=int(row["n_trials"]),
        seed=row["seed"],
        start_time=float(row["start_time"]),
        end_time=row["end_time"],
        extra=row["extra"],
        store=store,
    )


def _mark_crashed(store: Store) -> None:
    """Sweeps left running by a process that is gone read as crashed."""
    import socket

    from nbtrack.store.sqlite import _pid_alive

    host = socket.gethostname()
    for row in store.list_sweeps():
        if row["status"] == "running" and row["hostname"] == host and row["pid"]:
            if not _pid_alive(int(row["pid"])):
                store.update_sweep(row["id"], {"status": "crashed"})


def get_sweep(ref: Any, *, store: StoreLike = None) -> SweepRecord:
    """One sweep by number, id, unambiguous id prefix or ``"last"``."""
    st = _store(store)
    st.mark_crashed()
    _mark_crashed(st)
    return _record(st, st.sweep_row(st.resolve_sweep(ref)))


def sweeps(name: str | None = None, *, store: StoreLike = None) -> pandas.DataFrame:
    """Every sweep as a DataFrame, oldest first: ``number``, ``id``, ``name``, ``status``,
    ``objective``, ``direction``, ``sampler``, ``pruner``, ``n_trials``, ``trials``
    (recorded), ``complete``, ``best`` (value), ``best_run`` (number), ``start_time``."""
    import pandas as pd

    st = _store(store)
    st.mark_crashed()
    _mark_crashed(st)
    rows = []
    for row in st.list_sweeps(name=name):
        trials = st.sweep_trials(row["id"])
        done = [(t["run_id"], t["value"]) for t in trials if t["state"] == "complete"]
        best_run = None
        best = None
        if done:
            pick = min if row["direction"] == "min" else max
            run_id, best = pick(done, key=lambda item: float(item[1] or 0.0))
            try:
                best_run = int(st.run_row(run_id)["number"])
            except NbtrackError:
                best_run = None
        rows.append(
            {
                "number": row["number"],
                "id": row["id"],
                "name": row["name"],
                "status": row["status"],
                "objective": row["objective"],
                "direction": row["direction"],
                "sampler": row["sampler"],
                "pruner": row["pruner"],
                "n_trials": row["n_trials"],
                "trials": len(trials),
                "complete": len(done),
                "best": best,
                "best_run": best_run,
                "start_time": pd.to_datetime(row["start_time"], unit="s"),
            }
        )
    columns = [
        "number",
        "id",
        "name",
        "status",
        "objective",
        "direction",
        "sampler",
        "pruner",
        "n_trials",
        "trials",
        "complete",
        "best",
        "best_run",
        "start_time",
    ]
    return pd.DataFrame(rows, columns=columns)
