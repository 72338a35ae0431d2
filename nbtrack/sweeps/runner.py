"""Running a sweep: open (new, resumed or narrowed), run trials, end.

:func:`run_sweep` is the one function the ``%%track --sweep`` magic calls;
:func:`run_trials` is what the kernel (``--workers 1``) and each worker process
(``nbtrack sweep worker``) run: claim a trial, run it, until N trials count, the grid is
exhausted, or ``--max-failures`` trials in a row failed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NbtrackError, SweepError
from nbtrack.metrics import Direction
from nbtrack.model import HistoryEntry
from nbtrack.store.routing import open_store
from nbtrack.store.sqlite import Store
from nbtrack.sweeps.plan import CellContext, SweepPlan, space_texts
from nbtrack.sweeps.space import (
    Dimension,
    check_bindings,
    narrow,
    space_from_json,
    space_to_json,
)
from nbtrack.sweeps.study import (
    claim_trial,
    counted,
    derived_seed,
    grid_size,
    is_rdb,
    links_of,
    make_pruner,
    make_sampler,
    open_storage,
    quiet_optuna,
    reap_stale_trials,
    storage_for,
)
from nbtrack.sweeps.trial import TrialExecutor, TrialOutcome, run_trial
from nbtrack.trackline import TrackOptions, parse_track_line

if TYPE_CHECKING:
    import optuna

__all__ = ["Sweep", "SweepResult", "open_sweep", "load_sweep", "run_trials", "run_sweep"]

Observer = Callable[["Sweep", "optuna.Study"], None]


@dataclass
class Sweep:
    """An open sweep: its record in the store and what its trials need."""

    id: str
    number: int
    store: Store
    name: str | None
    objective: str
    direction: Direction
    sampler: str
    pruner: str
    n_trials: int
    seed: int
    dims: tuple[Dimension, ...]
    context: CellContext
    options: TrackOptions
    max_failures: int
    study_name: str
    storage: str  # the sweeps row's: a journal path in the store folder, or RDB_STORAGE

    @classmethod
    def from_row(cls, store: Store, row: dict[str, Any]) -> Sweep:
        """The sweep a ``sweeps`` row describes."""
        extra = row["extra"]
        context = CellContext(
            code=row["code"],
            template=extra.get("template", row["code"]),
            magic_line=extra.get("magic_line", ""),
            history=tuple(HistoryEntry(int(n), str(text)) for n, text in row["history"]),
            notebook=row["notebook"],
            cwd=extra.get("cwd"),
            execution_count=int(extra.get("execution_count") or 0),
            overrides=dict(extra.get("overrides") or {}),
        )
        return cls(
            id=row["id"],
            number=int(row["number"]),
            store=store,
            name=row["name"],
            objective=row["objective"],
            direction="min" if row["direction"] == "min" else "max",
            sampler=row["sampler"],
            pruner=row["pruner"],
            n_trials=int(row["n_trials"]),
            seed=int(row["seed"] or 0),
            dims=tuple(space_from_json(row["space"])),
            context=context,
            options=parse_track_line(context.magic_line, strict=False),
            max_failures=int(extra.get("max_failures") or 3),
            study_name=row["study_name"],
            storage=row["storage"],
        )

    @property
    def log_dir(self) -> Path:
        """Where this machine keeps the sweep's worker logs: ``<store folder>/sweeps``
        (a PostgreSQL store's local folder: logs belong to the machine that ran them)."""
        return self.store.path / "sweeps"

    def load_study(self, sampler_salt: str | None = None) -> optuna.Study:
        """The sweep's Optuna study, with its sampler (seeded with the sweep's seed, or a
        seed derived from it and ``sampler_salt``) and pruner."""
        import optuna

        quiet_optuna()
        seed = self.seed if not sampler_salt else derived_seed(self.seed, sampler_salt)
        return optuna.load_study(
            study_name=self.study_name,
            storage=open_storage(self.store, self.storage),
            sampler=make_sampler(self.sampler, seed, self.dims),
            pruner=make_pruner(self.pruner),
        )

    def set_status(self, status: str, **extra: Any) -> None:
        """Record how the sweep stands (running, finished, interrupted, failed)."""
        fields: dict[str, Any] = {"status": status}
        if status != "running":
            fields["end_time"] = time.time()
        if extra:
            row = self.store.sweep_row(self.id)
            fields["extra"] = {**row["extra"], **extra}
        self.store.update_sweep(self.id, fields)


@dataclass(frozen=True)
class SweepResult:
    """How a sweep (or this process's part of it) ended."""

    sweep: Sweep
    status: str  # "finished", "interrupted", "failed" (stopped by failures)
    outcomes: tuple[TrialOutcome, ...] = ()
    first_error: TrialOutcome | None = None
    notes: tuple[str, ...] = field(default=())


# --- opening --------------------------------------------------------------------------------


def open_sweep(plan: SweepPlan, context: CellContext, store: Store) -> Sweep:
    """A new sweep for ``plan`` (or, with ``--resume``, the latest of its name again;
    with ``--narrow-from``, one on the space narrowed around another's best trials)."""
    options = plan.options
    store.mark_crashed()
    if options.resume:
        return _resume(plan, context, store)
    dims = plan.space
    sampler = plan.sampler
    extra: dict[str, Any] = {}
    if options.narrow_from:
        dims, extra = _narrowed(plan, store)
        check_bindings(context.template, dims)
        sampler = options.sampler or "tpe"
    n_trials = plan.n_trials
    if sampler == "grid":
        make_sampler("grid", plan.seed, dims)  # says which dimension is continuous
        n_trials = min(n_trials, grid_size(dims))
    import optuna

    quiet_optuna()
    sweep_id = uuid.uuid4().hex
    storage = storage_for(store, sweep_id)
    # Named by the sweep's global id: studies of many stores and people never clash in one
    # database.
    study_name = f"nbtrack-{sweep_id}"
    optuna.create_study(
        study_name=study_name,
        storage=open_storage(store, storage),
        direction=plan.optuna_direction,
    )
    row = {
        "name": options.name,
        "status": "running",
        "start_time": time.time(),
        "objective": plan.objective,
        "direction": plan.direction,
        "sampler": sampler,
        "pruner": plan.pruner,
        "space": space_to_json(dims),
        "n_trials": n_trials,
        "seed": plan.seed,
        "study_name": study_name,
        "storage": storage,
        "notebook": context.notebook,
        "code": context.code,
        "history": [[e.execution_count, e.source] for e in context.history],
        "extra": {**extra, **_context_extra(plan, context)},
    }
    number = store.create_sweep(sweep_id, _without_secrets(row, context))
    # This process runs its trials from the cell as it is, secrets included; only the store
    # (and so any worker process, which reads the code from it) gets the redacted copy.
    return Sweep.from_row(store, {**row, "id": sweep_id, "number": number})


def _without_secrets(row: dict[str, Any], context: CellContext) -> dict[str, Any]:
    """``row`` as it may be stored: code, history, template, overrides and the magic line
    through the same redactor as a run's (:mod:`nbtrack.secrets`)."""
    from nbtrack.capture.environment import secret_values
    from nbtrack.secrets import DEFAULT_RULES, Redactor, project_rules

    try:
        rules = project_rules(context.cwd)
    except NbtrackError:
        rules = DEFAULT_RULES  # the run's own warning says so; the built-in rules still apply
    redactor = Redactor(rules, secret_values())
    history = [text for _, text in row.get("history") or []]
    code, template, *clean_history = redactor.code_many(
        [row.get("code") or "", (row.get("extra") or {}).get("template") or "", *history]
    )
    stored = dict(row)
    stored["code"] = code
    if "history" in row:
        stored["history"] = [
            [count, text] for (count, _), text in zip(row["history"], clean_history, strict=True)
        ]
    if "extra" in row:
        extra = dict(row["extra"])
        extra["template"] = template
        extra["overrides"] = redactor.value(extra.get("overrides") or {}, names=True)
        extra["magic_line"] = redactor.magic_line(extra.get("magic_line") or "")
        stored["extra"] = extra
    return stored


def _refuse_workers_with_secrets(sweep: Sweep) -> None:
    """Workers run the program made from the sweep's STORED record, where secrets are never
    written: when a secret was redacted out of what they would run, say so instead of
    letting them run ``'<redacted>'`` as the value."""
    from nbtrack.secrets import REDACTED
    from nbtrack.sweeps.program import worker_program

    stored = Sweep.from_row(sweep.store, sweep.store.sweep_row(sweep.id))
    if any(REDACTED in part for part in worker_program(stored)):
        raise SweepError(
            "--workers: the sweep cell (or a cell it depends on) holds a secret, which is never "
            "written to the store that workers read the code from; read it from an environment "
            "variable instead (os.environ[...]) or run the sweep without --workers"
        )


def _context_extra(plan: SweepPlan, context: CellContext) -> dict[str, Any]:
    return {
        "template": context.template,
        "magic_line": context.magic_line,
        "cwd": context.cwd,
        "execution_count": context.execution_count,
        "overrides": context.overrides,
        "workers": plan.workers,
        "max_failures": plan.max_failures,
    }


def _resume(plan: SweepPlan, context: CellContext, store: Store) -> Sweep:
    name = plan.options.name
    rows = [r for r in store.list_sweeps() if r["name"] == name]
    if not rows:
        named = f"named {name!r}" if name else "without a --name"
        raise SweepError(
            f"--resume: there is no sweep {named} in the store at {store.shown} to resume; "
            "drop --resume to start one"
        )
    row = rows[-1]
    old = space_texts(space_from_json(row["space"]))
    new = space_texts(plan.space)
    if plan.space and new != old:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        first = changed[0]
        raise SweepError(
            f"--resume: the search space changed since sweep #{row['number']} began "
            f"({first}: {old.get(first, 'absent')} -> {new.get(first, 'absent')}); "
            "restore it, or drop --resume to start a new sweep"
        )
    if row["objective"] != plan.objective:
        raise SweepError(
            f"--resume: sweep #{row['number']} optimises {row['objective']!r}, not "
            f"{plan.objective!r}; use the same --objective or drop --resume"
        )
    # New trials run the cell as it is now (resuming after fixing a bug in it is the point).
    fields = {
        "status": "running",
        "end_time": None,
        "n_trials": plan.n_trials,
        "pid": os.getpid(),
        "code": context.code,
        "notebook": context.notebook,
        "history": [[e.execution_count, e.source] for e in context.history],
        "extra": {**row["extra"], **_context_extra(plan, context)},
    }
    store.update_sweep(row["id"], _without_secrets(fields, context))
    return Sweep.from_row(store, {**store.sweep_row(row["id"]), **fields})


def _narrowed(plan: SweepPlan, store: Store) -> tuple[tuple[Dimension, ...], dict[str, Any]]:
    ref = plan.options.narrow_from
    earlier = load_sweep(ref, store=store)
    study = earlier.load_study()
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(states=(TrialState.COMPLETE,)) if t.value is not None]
    if len(done) < 2:
        raise SweepError(
            f"--narrow-from {ref}: sweep #{earlier.number} has {len(done)} complete trial(s); "
            "narrowing needs at least 2"
        )
    done.sort(key=lambda t: float(t.value or 0.0), reverse=earlier.direction == "max")
    best = done[: max(2, len(done) // 4)]  # the top quarter
    narrowed = {d.name: d for d in narrow(earlier.dims, [t.params for t in best])}
    own = {d.name: d for d in plan.space}
    # The cell's own dimensions are narrowed where the earlier sweep searched them too.
    merged = {**narrowed, **{n: narrowed.get(n, d) for n, d in own.items()}}
    return tuple(merged.values()), {
        "narrowed_from": {"id": earlier.id, "number": earlier.number, "trials": len(best)}
    }


def load_sweep(ref: Any, *, store: Store | str | os.PathLike[str] | None = None) -> Sweep:
    """The sweep ``ref`` names (number, id, id prefix or ``"last"``)."""
    st = store if isinstance(store, Store) else open_store(store, create=False)
    return Sweep.from_row(st, st.sweep_row(st.resolve_sweep(ref)))


# --- running ----------------------------------------------------------------------------


def run_trials(
    sweep: Sweep,
    executor: TrialExecutor,
    *,
    observer: Observer | None = None,
    sampler_salt: str | None = None,
) -> SweepResult:
    """Run trials in this process until the sweep has N, the grid is done, or
    ``max_failures`` trials in a row failed. A KeyboardInterrupt propagates (the trial it
    hit is marked interrupted first); a fatal mistake is a :class:`SweepError`."""
    study = sweep.load_study(sampler_salt)
    reap_stale_trials(study, sweep.store, sweep.id, sweep.storage)
    if observer is not None:
        observer(sweep, study)
    outcomes: list[TrialOutcome] = []
    first_error: TrialOutcome | None = None
    in_a_row = 0
    status = "finished"
    while True:
        trial = claim_trial(study, sweep.n_trials, sweep.dims, sweep.store, sweep.id, sweep.storage)
        if trial is None:
            break
        outcome = run_trial(sweep, study, trial, executor)
        outcomes.append(outcome)
        if observer is not None:
            observer(sweep, study)
        if outcome.state == "failed":
            first_error = first_error or outcome
            in_a_row += 1
            if outcome.fatal:
                raise SweepError(
                    f"trial {outcome.number} (run #{outcome.run_number}): {outcome.error}"
                )
            if in_a_row >= sweep.max_failures:
                status = "failed"
                break
        else:
            in_a_row = 0
        if outcome.grid_done:
            break
    return SweepResult(sweep, status, tuple(outcomes), first_error)


def failure_message(sweep: Sweep, first: TrialOutcome) -> str:
    """The one line a sweep stopped by failures ends with."""
    return (
        f"sweep #{sweep.number} stopped: {sweep.max_failures} trials in a row failed; the "
        f"first error (trial {first.number}, run #{first.run_number}): {first.error}; "
        f"`nbtrack show {first.run_number} --full` has its traceback"
    )


def run_sweep(
    plan: SweepPlan,
    context: CellContext,
    executor: TrialExecutor,
    *,
    store: Store | None = None,
    observer: Observer | None = None,
    poll_seconds: float = 0.5,
) -> SweepResult:
    """Open the sweep ``plan`` asks for and run it to its end: in this process, or in
    ``plan.workers`` worker processes (``nbtrack sweep worker``) while this one watches.

    The sweep's record says how it ended; KeyboardInterrupt propagates after every trial
    it stopped is marked interrupted (never left RUNNING).
    """
    store = store or open_store()
    sweep = open_sweep(plan, context, store)
    try:
        if plan.workers > 1:
            from nbtrack.sweeps.program import check_worker_program

            check_worker_program(sweep)  # before any worker starts, with export's reason
            _refuse_workers_with_secrets(sweep)
            result = _run_workers(sweep, plan.workers, observer, poll_seconds)
        else:
            # A resumed sweep's sampler must not replay the draws its first run made (a
            # RandomSampler with the same seed would ask for the same points again).
            salt = f"resume-{len(store.sweep_trials(sweep.id))}" if plan.options.resume else None
            result = run_trials(sweep, executor, observer=observer, sampler_salt=salt)
    except KeyboardInterrupt:
        sweep.set_status("interrupted")
        raise
    except SweepError as exc:
        sweep.set_status("failed", error=str(exc))
        raise
    except BaseException as exc:
        sweep.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    sweep.set_status(result.status)
    if result.status == "failed" and result.first_error is not None:
        raise SweepError(failure_message(sweep, result.first_error))
    return result


# --- workers ------------------------------------------------------------------------------


def worker_command(sweep: Sweep, index: int) -> list[str]:
    """The command line of worker ``index`` (never a password: a PostgreSQL store's URL
    goes to the worker in its environment, :func:`worker_env`, not on its command line,
    which every user of the machine can read)."""
    # The worker module itself rather than `nbtrack sweep worker`: it starts without the
    # rest of the command line's imports.
    command = [sys.executable, "-m", "nbtrack.sweeps.worker", sweep.id]
    if not is_rdb(sweep.storage):
        command += ["--store", str(sweep.store.path)]
    return [*command, "--index", str(index)]


def worker_env(sweep: Sweep) -> dict[str, str]:
    """What a worker's environment must add to this process's: the PostgreSQL store's
    URL as :envvar:`NBTRACK_STORE` (the store may have been chosen with ``%nbtrack store``)."""
    from nbtrack import config
    from nbtrack.store.postgres import PostgresStore

    if isinstance(sweep.store, PostgresStore):
        return {config.ENV_STORE: sweep.store.location}
    return {}


def _run_workers(
    sweep: Sweep, count: int, observer: Observer | None, poll_seconds: float
) -> SweepResult:
    logs = sweep.log_dir
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **worker_env(sweep)}
    study = sweep.load_study()
    if observer is not None:
        observer(sweep, study)
    try:
        for index in range(count):
            log = logs / f"{sweep.id}.worker-{index}.log"
            with open(log, "wb") as fh:
                proc = subprocess.Popen(
                    worker_command(sweep, index),
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=sweep.context.cwd or None,
                    env=env,
                )
            procs.append((proc, log))
        seen = -1
        while any(p.poll() is None for p, _ in procs):
            time.sleep(poll_seconds)
            trials = study.get_trials(deepcopy=False)
            finished = sum(1 for t in trials if t.state.is_finished())
            if observer is not None and finished != seen:
                seen = finished
                observer(sweep, study)
    except BaseException:
        # Ctrl-C in the cell: each worker marks its trial interrupted and exits.
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 15
        for proc, _ in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        reap_stale_trials(study, sweep.store, sweep.id, sweep.storage)
        raise
    if observer is not None:
        observer(sweep, study)
    return _workers_result(sweep, study, procs)


def _workers_result(
    sweep: Sweep, study: optuna.Study, procs: Sequence[tuple[subprocess.Popen[bytes], Path]]
) -> SweepResult:
    reap_stale_trials(study, sweep.store, sweep.id, sweep.storage)
    trials = study.get_trials(deepcopy=False)
    broken = [(p, log) for p, log in procs if p.returncode not in (0, None)]
    if broken and not any(t.state.is_finished() for t in trials):
        proc, log = broken[0]
        raise SweepError(
            f"the sweep's worker processes failed before any trial finished (exit status "
            f"{proc.returncode}): {_tail(log)}; the whole log is {log}"
        )
    links = links_of(sweep.store, sweep.id)
    failed = [row for _n, row in sorted(links.items()) if row["state"] == "failed"]
    done = counted(trials, links) >= sweep.n_trials
    status = "finished" if done or not failed else "failed"
    first = None
    if failed:
        row = failed[0]
        number, error = None, "failed"
        if row["run_id"]:
            try:
                run = sweep.store.run_row(row["run_id"])
                number = run["number"]
                err = run["error"] or {}
                if err:
                    error = f"{err.get('type', 'Error')}: {err.get('message', '')}"
            except NbtrackError:
                pass
        first = TrialOutcome(row["trial"], row["run_id"], number, "failed", error=error)
    return SweepResult(sweep, status, (), first)


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"
