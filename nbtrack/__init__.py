"""nbtrack: experiment tracking that lives in the notebook.

In a notebook::

    %load_ext nbtrack

    %%track --name digits/mlp/baseline --seed 42
    lr = 1e-3
    ...
    track.log(loss=loss, step=epoch)

In a script::

    import nbtrack
    with nbtrack.run(name="digits/mlp/baseline", seed=42, params={"lr": 1e-3}) as track:
        track.log(loss=0.1)

Query with :func:`runs`, :func:`get_run` and :func:`diff`. Importing nbtrack is cheap:
pandas, IPython and torch are imported only when a function that needs them is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbtrack import suggest  # tiny, no dependencies: `nbtrack.suggest.loguniform(...)` in cells

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "run",
    "runs",
    "get_run",
    "diff",
    "current_run",
    "metric_direction",
    "compare",
    "plot",
    "sweeps",
    "get_sweep",
    "suggest",
    "register",
    "models",
    "models_widget",
    "load_model",
    "load_ipython_extension",
    "unload_ipython_extension",
]

if TYPE_CHECKING:
    import pandas
    import plotly.graph_objects

    from nbtrack.query import RunDiff, RunRecord
    from nbtrack.registry import ModelVersion
    from nbtrack.sweeps.records import SweepRecord
    from nbtrack.tracker import ActiveRun, DetachedRun
    from nbtrack.widgets.compare import CompareWidget
    from nbtrack.widgets.models import ModelsWidget


def run(
    name: str | None = None,
    *,
    seed: int | None = None,
    deterministic: bool = False,
    params: dict[str, Any] | None = None,
    tags: list[str] | tuple[str, ...] = (),
    note: str | None = None,
    store: Any = None,
    capture_env: bool = True,
    capture_data: bool = True,
    goals: dict[str, str] | None = None,
    stop_at: dict[str, Any] | None = None,
    project: str | None = None,
) -> ActiveRun | DetachedRun:
    """Start a tracked run for script code; use it as ``with nbtrack.run(...) as track:``.

    ``seed`` seeds ``random``, NumPy and (when imported) PyTorch; ``deterministic`` turns on
    PyTorch's deterministic algorithms. ``params`` are recorded as the run's parameters.
    ``goals`` declares metric directions, ``{"val_loss": "min"}`` (as ``track.goal``).
    ``stop_at={"metric": "val_acc", "step": 7}`` ends the block once ``track.log`` logs
    that metric at that step: the run is recorded ``pruned`` and the code after the
    ``with`` block runs (an exported pruned sweep trial stops where its pruner stopped it).
    ``project`` scopes the run to a team's project (default: ``$NBTRACK_PROJECT``, then
    ``[project] name`` in nbtrack.toml, else none; docs/team.md).
    The same tracker backs the ``%%track`` magic. See :class:`nbtrack.tracker.ActiveRun`.
    On a store that cannot be used (refused, locked, corrupt) it prints one line and
    returns a :class:`~nbtrack.tracker.DetachedRun`, whose calls do nothing: the code runs.
    """
    from nbtrack.tracker import start_script_run

    return start_script_run(
        name=name,
        seed=seed,
        deterministic=deterministic,
        params=params,
        tags=list(tags),
        note=note,
        store=store,
        capture_env=capture_env,
        capture_data=capture_data,
        goals=goals,
        stop_at=stop_at,
        project=project,
    )


def runs(
    name: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    *,
    store: Any = None,
    user: str | None = None,
    project: str | None = None,
) -> pandas.DataFrame:
    """All runs as a pandas DataFrame, one row a run, oldest first.

    Columns: ``number``, ``id``, ``name``, ``status``, ``start_time``, ``end_time``,
    ``duration``, ``tags``, ``note``, ``user``, ``project``, then ``params.<key>`` and
    ``metrics.<key>`` (last value). ``name`` may be a glob such as ``"digits/*"``; ``user``
    keeps one person's runs (``$NBTRACK_USER``, git's identity, the login or database
    role); ``project`` keeps one project's (docs/team.md). Neither: every run.
    """
    from nbtrack.query import runs as _runs

    return _runs(name=name, status=status, tag=tag, store=store, user=user, project=project)


def get_run(ref: Any, *, store: Any = None) -> RunRecord:
    """One run by number, id, id prefix or ``"last"``, with everything recorded about it."""
    from nbtrack.query import get_run as _get_run

    return _get_run(ref, store=store)


def diff(a: Any, b: Any, *, store: Any = None) -> RunDiff:
    """What differs between two runs: params, seeds, environment, data and code."""
    from nbtrack.query import diff as _diff

    return _diff(a, b, store=store)


def current_run() -> ActiveRun | None:
    """The run being recorded right now in this process, or ``None``."""
    from nbtrack.tracker import current_run as _current

    return _current()


def metric_direction(metric: str) -> str:
    """``"min"`` or ``"max"``: which way ``metric`` should go, by the one rule nbtrack uses.

    The run being recorded's ``track.goal(...)`` first, then the ``[metrics]`` table of the
    nearest ``nbtrack.toml``, then the metric's name (whole words: ``val_loss``, ``wer``,
    ``latency_ms`` are "min"; ``power``, ``accuracy`` are "max"). See docs/metrics.md.
    """
    from nbtrack.metrics import direction
    from nbtrack.tracker import current_run as _current

    active = _current()
    declared = active.goals if active is not None else None
    return direction(metric, declared)


def compare(
    runs: Any = None, metric: str | None = None, *, store: Any = None, page_size: int = 25
) -> CompareWidget:
    """An interactive comparison of runs (ipywidgets + plotly); display it in a notebook.

    ``runs`` is ``None`` (every run in the store; ``refresh()`` picks up new ones), a
    DataFrame from :func:`runs` (already filtered), or a list of run refs. Filter by name,
    tag, status or a query such as ``metrics.val_acc > 0.9 and params.lr < 0.01``; select
    runs to see their curves, parallel coordinates and diff. Drivable from code:
    ``w.select([1, 3])``, ``w.metric = "val_acc"``, ``w.query = "..."``,
    ``w.save_html(path)``. See docs/compare.md.
    """
    _require("nbtrack.compare()", "ipywidgets", "plotly", "anywidget")
    from nbtrack.widgets.compare import compare as _compare

    return _compare(runs, metric, store=store, page_size=page_size)


def plot(
    metric: str, runs: Any = None, *, smoothing: float = 0.0, store: Any = None
) -> plotly.graph_objects.Figure:
    """A plain plotly figure of ``metric`` over steps, one line per run.

    ``runs`` is as for :func:`compare` (``None``: every run that logged ``metric``);
    ``smoothing`` in [0, 1) is an EMA weight.
    """
    _require("nbtrack.plot()", "plotly")
    from nbtrack.widgets.figures import plot as _plot

    return _plot(metric, runs, smoothing=smoothing, store=store)


def sweeps(name: str | None = None, *, store: Any = None) -> pandas.DataFrame:
    """All sweeps (``%%track --sweep``) as a DataFrame, one row a sweep, oldest first:
    status, objective and direction, sampler, trials recorded, best value and its run."""
    from nbtrack.sweeps.records import sweeps as _sweeps

    return _sweeps(name, store=store)


def get_sweep(ref: Any, *, store: Any = None) -> SweepRecord:
    """One sweep by number, id, id prefix or ``"last"``: ``.trials`` (a DataFrame),
    ``.best_trial`` (the best trial's run), ``.study`` (the Optuna study). See docs/sweeps.md.
    """
    _require("nbtrack.get_sweep()", "optuna", extra="sweeps")
    from nbtrack.sweeps.records import get_sweep as _get_sweep

    return _get_sweep(ref, store=store)


def register(
    run: Any,
    name: str,
    artifact: str | None = None,
    *,
    description: str | None = None,
    reason: str | None = None,
    store: Any = None,
) -> ModelVersion:
    """Register artifact ``artifact`` of run ``run`` (number, id or ``"last"``) as the next
    version of model ``name``, in ``development``; ``artifact`` may be left out when the run
    has one. Inside a tracked cell use ``track.register(name, artifact=...)``. See
    docs/registry.md.
    """
    from nbtrack.registry.api import register as _register

    return _register(run, name, artifact, description=description, reason=reason, store=store)


def models(name: str | None = None, *, store: Any = None) -> pandas.DataFrame:
    """Registered models as a DataFrame, one row a model (the versions in each stage, its
    aliases); with ``name``, one row per version of that model."""
    from nbtrack.registry.api import models as _models

    return _models(name, store=store)


def models_widget(
    model: str | None = None, *, store: Any = None, stage: str | None = None
) -> ModelsWidget:
    """The model registry in the notebook (ipywidgets): a model's versions with their stages,
    gate results (for each version's next stage, or ``stage``), approvals, lineage back to
    the run and stage history. Reads only. See docs/registry.md.
    """
    _require("nbtrack.models_widget()", "ipywidgets")
    from nbtrack.widgets.models import models_widget as _models_widget

    return _models_widget(model, store=store, stage=stage)


def load_model(ref: str, *, store: Any = None) -> Any:
    """The artifact of a model version: ``"digits-classifier@production"``,
    ``"digits-classifier/3"``, ``"models:/digits-classifier/3"`` or ``"name@alias"``;
    checked against its content hash before it is handed out."""
    from nbtrack.registry.api import load_model as _load_model

    return _load_model(ref, store=store)


def _require(what: str, *modules: str, extra: str = "widgets") -> None:
    """Fail with one line naming the extra to install when an optional package is missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        from nbtrack.errors import NbtrackError

        raise NbtrackError(f"{what} needs {', '.join(missing)}: pip install 'nbtrack[{extra}]'")


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext nbtrack``: registers ``%%track`` and ``%nbtrack``."""
    from nbtrack.ipython.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext nbtrack``."""
    from nbtrack.ipython.magics import unload_ipython_extension as _unload

    _unload(ipython)
