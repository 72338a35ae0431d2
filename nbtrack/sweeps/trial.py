"""One trial: an Optuna trial run as an ordinary nbtrack run of the cell.

The trial's sampled values are written into the cell's code (:func:`space.trial_code`),
the run is started with the trial's own seed (derived from the sweep's), the cell runs
through a :class:`TrialExecutor` (the kernel's shell, or a worker's plain namespace), and
the outcome goes to both places: the run's status and the study's trial state.

A pruned trial is stopped from inside ``track.log`` (:class:`PruningReporter`), by the
core's run-stopping exception (:class:`~nbtrack.tracker.RunStopped`), which the cell's own
``except Exception`` blocks do not catch; the run records where it stopped
(``extra["stopped_at"]``), so its exported script stops there too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from nbtrack.errors import NbtrackError, SweepError
from nbtrack.model import RunStatus
from nbtrack.sweeps.space import trial_code
from nbtrack.sweeps.study import trial_seed
from nbtrack.tracker import ActiveRun, RunSpec, RunStopped

if TYPE_CHECKING:
    import optuna

    from nbtrack.sweeps.runner import Sweep

__all__ = ["TrialExecutor", "TrialPruned", "PruningReporter", "TrialOutcome", "run_trial"]


class TrialExecutor(Protocol):
    """Runs a trial's code: the kernel's shell in a notebook, a plain namespace in a worker."""

    #: The namespace the code runs in (for input fingerprints), if any.
    namespace: MutableMapping[str, Any] | None

    def to_python(self, code: str) -> str:
        """``code`` as plain Python (IPython's transforms in a kernel; as is elsewhere)."""
        ...

    def execute(self, source: str, track: ActiveRun) -> None:
        """Run ``source`` with ``track`` bound to the trial's run; let exceptions out."""
        ...


class TrialPruned(RunStopped):
    """Raised by ``track.log`` when the pruner stops the trial (Optuna's name for it).

    A :class:`~nbtrack.tracker.RunStopped`, so a ``BaseException`` (like
    ``KeyboardInterrupt``) that a training loop's own ``except Exception`` does not
    swallow, and the run records the metric and step it stopped at.
    """


class PruningReporter:
    """The ``track.log`` hook of a trial: reports the objective to Optuna, stops the trial
    when the pruner says so."""

    def __init__(
        self,
        trial: optuna.trial.Trial,
        objective: str,
        prune: bool,
        run_id: str | None = None,
    ) -> None:
        self.trial = trial
        self.objective = objective
        self.prune = prune
        self.run_id = run_id  # the trial's run, which the stop ends (RunStopped.run_id)
        self.pruned_at: int | None = None

    def __call__(self, metrics: Mapping[str, Any], steps: Mapping[str, int]) -> None:
        raw = metrics.get(self.objective)
        if raw is None:
            return
        try:
            value = float(raw.item() if hasattr(raw, "item") else raw)
        except (TypeError, ValueError):
            return  # track.log already warned that it is not a number
        step = steps.get(self.objective, 0)
        if not math.isfinite(value) or step < 0:
            return
        self.trial.report(value, step)
        if self.prune and self.trial.should_prune():
            self.pruned_at = step
            raise TrialPruned(
                f"pruned at step {step} ({self.objective}={value:.6g})",
                self.objective,
                step,
                self.run_id,
            )


@dataclass(frozen=True)
class TrialOutcome:
    """How one trial ended."""

    number: int
    run_id: str | None
    run_number: int | None
    state: str  # "complete", "pruned", "failed", "interrupted"
    value: float | None = None
    error: str | None = None  # one line, for a failed trial
    fatal: bool = False  # a mistake every trial would repeat (the objective never logged)
    grid_done: bool = False  # the grid sampler has visited every point


def _spec(sweep: Sweep, trial: optuna.trial.Trial, executor: TrialExecutor) -> RunSpec:
    context = sweep.context
    options = sweep.options
    values = {d.name: trial.params[d.name] for d in sweep.dims}
    code = trial_code(context.template, values)
    return RunSpec(
        name=options.name,
        seed=trial_seed(sweep.seed, trial.number),
        deterministic=options.deterministic,
        tags=[*options.tags, f"sweep-{sweep.number}"],
        note=options.note,
        project=options.project,
        capture_env=not options.no_env,
        capture_data=not options.no_data,
        kind="cell",
        source=executor.to_python(code),
        code=code,
        history=list(context.history),
        notebook=context.notebook,
        cwd=context.cwd,
        namespace=executor.namespace,
        extra={
            "magic_line": context.magic_line,
            "overrides": {**context.overrides, **values},
            "execution_count": context.execution_count,
            "sweep": {"id": sweep.id, "number": sweep.number, "trial": trial.number},
        },
        goals={sweep.objective: sweep.direction},
    )


def run_trial(
    sweep: Sweep, study: optuna.Study, trial: optuna.trial.Trial, executor: TrialExecutor
) -> TrialOutcome:
    """Run ``trial`` as a run of the cell and tell the study how it went.

    Never leaves the trial RUNNING: a KeyboardInterrupt anywhere in here marks the trial
    failed ("interrupted") in the study and the run interrupted, then propagates.
    """
    from optuna.trial import TrialState

    teller = _Teller(study, trial, sweep)
    run: ActiveRun | None = None
    try:
        spec = _spec(sweep, trial, executor)
        run = ActiveRun.start(spec, sweep.store)
        sweep.store.set_sweep_trial(sweep.id, trial.number, run.id, "running")
        if sweep.pruner != "none":  # without a pruner, nothing to report: no journal writes
            run.on_log(PruningReporter(trial, sweep.objective, prune=True, run_id=run.id))
        try:
            executor.execute(spec.source, run)
        except TrialPruned as exc:
            outcome = _finish(sweep, trial, run, teller, "pruned", exc=exc)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            import optuna

            # optuna.TrialPruned: the cell asked Optuna itself.
            state = "pruned" if isinstance(exc, optuna.TrialPruned) else "failed"
            outcome = _finish(sweep, trial, run, teller, state, exc=exc)
        else:
            outcome = _finish(sweep, trial, run, teller, "complete")
        finally:
            run.on_log(None)
        return replace(outcome, grid_done=teller.grid_done)
    except BaseException as exc:
        # Ctrl-C (or a store that cannot be written): the trial must not stay RUNNING.
        interrupted = isinstance(exc, KeyboardInterrupt)
        if run is not None:
            try:
                run.finish(exc=exc)
            except Exception:
                pass
        if not teller.told:
            try:
                teller(TrialState.FAIL, status="interrupted" if interrupted else "failed")
            except BaseException:
                pass  # the next process that runs the sweep reaps it (reap_stale_trials)
        if isinstance(exc, NbtrackError) and not isinstance(exc, SweepError):
            raise SweepError(f"trial {trial.number} could not be recorded: {exc}") from None
        raise


class _Teller:
    """``study.tell`` for one trial, once; the store's link says how it ended first (a
    FAIL in Optuna may be a failure or an interruption, and only the first counts)."""

    def __init__(self, study: optuna.Study, trial: optuna.trial.Trial, sweep: Sweep) -> None:
        self.study = study
        self.trial = trial
        self.sweep = sweep
        self.told = False
        self.grid_done = False

    def __call__(
        self,
        state: Any,
        value: float | None = None,
        status: str | None = None,
        run: ActiveRun | None = None,
    ) -> None:
        if status is not None:
            try:
                self.sweep.store.set_sweep_trial(
                    self.sweep.id, self.trial.number, run.id if run else None, status, value
                )
            except NbtrackError:
                pass  # the study holds the outcome too; the link is for counting and reading
        try:
            # skip_if_finished: a trial another process already reaped stays as it was.
            if value is not None:
                self.study.tell(self.trial, value, skip_if_finished=True)
            else:
                self.study.tell(self.trial, state=state, skip_if_finished=True)
        except RuntimeError as exc:
            # GridSampler calls study.stop() once every point is visited, which Optuna
            # allows only inside optimize(); the trial is recorded by then.
            if "Study.stop" not in str(exc):
                raise
            self.grid_done = True
        self.told = True


def _finish(
    sweep: Sweep,
    trial: Any,
    run: ActiveRun,
    tell: Any,
    state: str,
    *,
    exc: BaseException | None = None,
) -> TrialOutcome:
    from optuna.trial import TrialState

    if state == "pruned":
        run.finish(exc=exc, status=RunStatus.PRUNED)
        tell(TrialState.PRUNED, status="pruned", run=run)
        return TrialOutcome(trial.number, run.id, run.number, "pruned")
    if state == "failed":
        run.finish(exc=exc)
        tell(TrialState.FAIL, status="failed", run=run)
        message = f"{type(exc).__name__}: {exc}" if exc is not None else "failed"
        return TrialOutcome(trial.number, run.id, run.number, "failed", error=message)
    run.finish()
    value = run.metrics.get(sweep.objective)
    if value is None or not math.isfinite(value):
        logged = ", ".join(sorted(run.metrics)) or "nothing"
        why = (
            f"the cell never logged {sweep.objective!r}, the sweep's --objective (it logged: "
            f"{logged}); log it with track.log({sweep.objective}=...) or name a metric it logs"
            if value is None
            else f"the objective {sweep.objective!r} ended as {value}"
        )
        tell(TrialState.FAIL, status="failed", run=run)
        return TrialOutcome(
            trial.number, run.id, run.number, "failed", error=why, fatal=value is None
        )
    tell(TrialState.COMPLETE, value, status="complete", run=run)
    return TrialOutcome(trial.number, run.id, run.number, "complete", value)
