"""What reading a run back gives: :class:`RunRecord`, :class:`RunDiff`, :class:`MetricDelta`.

The model layer's records, built by :mod:`nbtrack.query` and rendered by
:mod:`nbtrack.summary`. Printing a record never opens the store (deltas against earlier
runs are computed by :func:`nbtrack.query.metric_deltas` and passed to the renderers);
only the methods that load more (artifacts) use the store the record was read from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbtrack.model import ArtifactInfo, Fingerprint, HistoryEntry, MetricPoint

if TYPE_CHECKING:
    import pandas

    from nbtrack.metrics import Direction
    from nbtrack.store.sqlite import Store


@dataclass(frozen=True)
class MetricDelta:
    """One metric of a run against the best earlier run of the same name."""

    change: float  # this run's value minus the best earlier value
    best_number: int  # the run that holds the best earlier value
    direction: str  # "min" or "max", as this run judges the metric

    @property
    def improved(self) -> bool:
        """Strictly better than the best earlier value."""
        return self.change < 0 if self.direction == "min" else self.change > 0

    @property
    def worse(self) -> bool:
        """Strictly worse than the best earlier value (neither when equal)."""
        return self.change > 0 if self.direction == "min" else self.change < 0


@dataclass(frozen=True, repr=False)
class RunRecord:
    """Everything recorded about one run, as returned by :func:`nbtrack.get_run`."""

    id: str
    number: int
    name: str | None
    status: str
    kind: str
    start_time: float
    end_time: float | None
    notebook: str | None
    note: str | None
    tags: list[str]
    params: dict[str, Any]
    metrics: dict[str, float]
    metric_history: dict[str, list[MetricPoint]]
    seed: int | None
    deterministic: bool
    seed_calls: list[dict[str, Any]]
    rng_state: dict[str, Any] | None
    environment: dict[str, Any]
    git: dict[str, Any]
    inputs: list[Fingerprint]
    models: list[dict[str, Any]]
    code: str
    history: list[HistoryEntry]
    artifacts: list[ArtifactInfo]
    error: dict[str, Any] | None
    warnings: list[str]
    extra: dict[str, Any]
    store: Store = field(repr=False, compare=False)
    #: Each metric's direction as the run used it: ``{metric: {"direction", "source"}}``.
    goals: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The project that scopes the run (docs/team.md), or ``None``.
    project: str | None = None
    #: Who ran it: ``$NBTRACK_USER``, git's user, else the database role / login name
    #: (nbtrack/identity.py); ``None`` for runs recorded before schema version 5.
    user: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or ``None`` while running."""
        return None if self.end_time is None else self.end_time - self.start_time

    def direction(self, metric: str) -> Direction:
        """``"min"`` or ``"max"``: the direction stored with the run for ``metric``, else the
        rule as it stands (``nbtrack.toml`` from the working directory, then the name)."""
        from nbtrack.metrics import direction, stored_direction

        found = stored_direction(self.goals, metric)
        return found[0] if found is not None else direction(metric)

    def load_artifact(self, name: str) -> Any:
        """The artifact called ``name``: a path for files and folders, else the object."""
        from nbtrack.artifacts import load_artifact
        from nbtrack.errors import ArtifactError

        for art in self.artifacts:
            if art.name == name:
                return load_artifact(self.store, art.kind, art.hash, art.meta)
        names = ", ".join(a.name for a in self.artifacts) or "none"
        raise ArtifactError(f"run #{self.number} has no artifact {name!r} (it has: {names})")

    def restore_rng(self) -> list[str]:
        """Put ``random``, NumPy and torch RNGs back in the state they had at the run's start."""
        from nbtrack.capture.seeds import restore_rng_state
        from nbtrack.errors import NbtrackError

        if not self.rng_state:
            raise NbtrackError(f"run #{self.number} has no recorded RNG state")
        return restore_rng_state(self.rng_state)

    def metric_frame(self, key: str | None = None) -> pandas.DataFrame:
        """The metric history as a DataFrame with columns metric, step, value, timestamp."""
        import pandas as pd

        rows = [
            (k, p.step, p.value, p.timestamp)
            for k, points in self.metric_history.items()
            if key is None or k == key
            for p in points
        ]
        return pd.DataFrame(rows, columns=["metric", "step", "value", "timestamp"])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the run (what ``nbtrack show --json`` prints)."""
        return {
            "id": self.id,
            "number": self.number,
            "name": self.name,
            "status": self.status,
            "kind": self.kind,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration": self.duration,
            "notebook": self.notebook,
            "note": self.note,
            "tags": self.tags,
            "params": self.params,
            "metrics": self.metrics,
            "goals": self.goals,
            "metric_history": {
                k: [[p.step, p.value, p.timestamp] for p in v]
                for k, v in self.metric_history.items()
            },
            "seed": self.seed,
            "deterministic": self.deterministic,
            "seed_calls": self.seed_calls,
            "environment": self.environment,
            "git": self.git,
            "inputs": [i.to_dict() for i in self.inputs],
            "models": self.models,
            "code": self.code,
            "history": [[h.execution_count, h.source] for h in self.history],
            "artifacts": [
                {"name": a.name, "kind": a.kind, "hash": a.hash, "size": a.size, "meta": a.meta}
                for a in self.artifacts
            ],
            "error": self.error,
            "warnings": self.warnings,
            "extra": self.extra,
            "project": self.project,
            "user": self.user,
        }

    def __str__(self) -> str:
        # Without deltas: a repr must never reach for the store (it may be closed).
        from nbtrack.summary import run_text

        return run_text(self)

    __repr__ = __str__  # a notebook's text/plain output stays one screen, not every field

    def _repr_html_(self) -> str:
        from nbtrack.summary import run_html

        return run_html(self)


@dataclass(frozen=True, repr=False)
class RunDiff:
    """What differs between two runs, section by section.

    ``sections`` maps a section name (params, seeds, environment, data, code) to a list of
    ``(key, value in a, value in b)`` rows; only differences are listed. ``code_diff`` is a
    unified diff of the two runs' code.
    """

    a: RunRecord
    b: RunRecord
    sections: dict[str, list[tuple[str, Any, Any]]]
    code_diff: str

    @property
    def empty(self) -> bool:
        """True when the runs differ in nothing compared."""
        return not any(self.sections.values()) and not self.code_diff

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the diff (what ``nbtrack diff --json`` prints)."""
        return {
            "a": self.a.number,
            "b": self.b.number,
            "sections": {
                k: [{"key": key, "a": va, "b": vb} for key, va, vb in rows]
                for k, rows in self.sections.items()
            },
            "code_diff": self.code_diff,
        }

    def __str__(self) -> str:
        from nbtrack.summary import diff_text

        return diff_text(self)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from nbtrack.summary import diff_html

        return diff_html(self)


__all__ = ["MetricDelta", "RunDiff", "RunRecord"]
