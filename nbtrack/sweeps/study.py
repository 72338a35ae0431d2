"""The Optuna side of a sweep: storage, sampler, pruner, and the study's bookkeeping.

A sweep's study lives in Optuna's JournalStorage on a file beside the store
(``<store>/sweeps/<sweep id>.journal``): it takes concurrent writers from many processes
(SQLite does not, optuna#820), needs no server, and moves with the store. Optuna does all
the searching and pruning; this module only builds its objects and keeps two promises
Optuna does not:

* no trial stays RUNNING after its process stopped (:func:`reap_stale_trials`; optuna#3336);
* a sweep of N trials runs N, however many workers share it (:func:`claim_trial` asks for a
  trial under a file lock only while fewer than N trials count).
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.errors import SweepError
from nbtrack.sweeps.space import Dimension

if TYPE_CHECKING:
    import optuna

    from nbtrack.store.sqlite import Store

__all__ = [
    "SAMPLERS",
    "PRUNERS",
    "journal_path",
    "open_storage",
    "make_sampler",
    "make_pruner",
    "trial_seed",
    "derived_seed",
    "counted",
    "claim_trial",
    "reap_stale_trials",
    "RERUN_STATES",
    "links_of",
    "ask_lock",
    "importances",
]

#: ``--sampler`` values: Optuna's samplers by their usual names; "default" is Optuna's own.
SAMPLERS = ("tpe", "random", "grid", "cmaes", "default")
#: ``--pruner`` values.
PRUNERS = ("none", "median", "hyperband")


def journal_path(store_path: Path, sweep_id: str) -> Path:
    """Where a sweep's Optuna journal lives: ``<store>/sweeps/<sweep id>.journal``."""
    return store_path / "sweeps" / f"{sweep_id}.journal"


def quiet_optuna() -> None:
    """Optuna logs one line per trial (and a traceback per failure); the sweep's own
    display says what happened, once."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_storage(path: Path) -> optuna.storages.BaseStorage:
    """Optuna's JournalStorage on the file ``path`` (created with its folder)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path.parent.mkdir(parents=True, exist_ok=True)
    # The open(O_EXCL) lock rather than the default symlink lock: it works on every file
    # system that can hold the store, and a lock left by a killed writer goes stale on
    # its own (Optuna's grace period) instead of blocking the next worker.
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def make_sampler(
    name: str, seed: int | None, dims: Sequence[Dimension]
) -> optuna.samplers.BaseSampler | None:
    """The sampler ``--sampler name`` means, seeded with the sweep's seed."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "grid":
        grid: dict[str, Any] = {}
        for dim in dims:
            values = dim.grid()
            if values is None:
                raise SweepError(
                    f"--sampler grid: {dim.name}={dim.text()} is continuous; give it a step "
                    f"(uniform(low, high, step)) or list its values with choice(...)"
                )
            grid[dim.name] = values
        return optuna.samplers.GridSampler(grid, seed=seed)
    if name == "default":
        return None
    raise SweepError(f"--sampler {name}: use one of {', '.join(SAMPLERS)}")


def grid_size(dims: Sequence[Dimension]) -> int:
    """How many points a grid over ``dims`` has."""
    size = 1
    for dim in dims:
        size *= len(dim.grid() or ())
    return size


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """The pruner ``--pruner name`` means."""
    import optuna

    if name == "median":
        # A few trials first, and a few reports into each, before judging anyone.
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SweepError(f"--pruner {name}: use one of {', '.join(PRUNERS)}")


def derived_seed(seed: int, salt: str) -> int:
    """A 32-bit seed derived from ``seed`` and ``salt``, the same in every process."""
    digest = hashlib.blake2b(f"{seed}/{salt}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def trial_seed(sweep_seed: int, trial_number: int) -> int:
    """The seed of trial ``trial_number``: derived from the sweep's seed, so rerunning a
    sweep with the same seed gives every trial the same seed, and no two trials share one."""
    return derived_seed(sweep_seed, str(trial_number))


#: Link states of FAIL trials that are run again, so they do not count towards N.
RERUN_STATES = frozenset({"interrupted", "crashed"})


def counted(
    trials: Sequence[optuna.trial.FrozenTrial], links: Mapping[int, Mapping[str, Any]]
) -> int:
    """How many trials count towards the sweep's N: all but the interrupted and crashed
    (``links``: the store's record of each trial, by number; a FAIL trial without one
    died before it was recorded)."""
    from optuna.trial import TrialState

    total = 0
    for t in trials:
        if t.state == TrialState.FAIL:
            state = links.get(t.number, {}).get("state")
            if state is None or state in RERUN_STATES:
                continue
        total += 1
    return total


def links_of(store: Store, sweep_id: str) -> dict[int, dict[str, Any]]:
    """The store's record of each trial of a sweep, by trial number."""
    return {row["trial"]: row for row in store.sweep_trials(sweep_id)}


@contextlib.contextmanager
def ask_lock(journal: Path) -> Iterator[None]:
    """An exclusive lock between the processes of one sweep that ask for or reap trials."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; at worst a few trials more than N
        yield
        return
    with open(journal.with_suffix(".ask-lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def claim_trial(
    study: optuna.Study,
    n_trials: int,
    dims: Sequence[Dimension],
    journal: Path,
    store: Store,
    sweep_id: str,
) -> optuna.trial.Trial | None:
    """A new trial with every dimension sampled, recorded in the store as this process's;
    ``None`` when N trials count already.

    Counting, asking and recording happen under one lock, so workers sharing the study
    never ask for more than N between them, and a reaper never sees a trial unrecorded.
    """
    with ask_lock(journal):
        if counted(study.get_trials(deepcopy=False), links_of(store, sweep_id)) >= n_trials:
            return None
        trial = study.ask({d.name: d.distribution() for d in dims})
        store.claim_sweep_trial(sweep_id, trial.number)
    return trial


def reap_stale_trials(study: optuna.Study, store: Store, sweep_id: str, journal: Path) -> int:
    """Mark RUNNING trials whose process is gone as FAIL ("crashed"); returns how many.

    A trial's process is gone when the store marked its run crashed (the store notices a
    dead pid on this host, or a heartbeat gone quiet on another), when it was claimed on
    this host by a pid that no longer exists, or when it was never recorded at all.
    """
    from optuna.trial import TrialState

    from nbtrack.store.sqlite import _pid_alive

    host = socket.gethostname()
    reaped = 0
    with ask_lock(journal):
        links = links_of(store, sweep_id)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            link = links.get(trial.number)
            if link is None:
                dead = True  # its process died between asking and recording it
            elif link["run_id"] and _run_status(store, link["run_id"]) == "crashed":
                dead = True
            elif link["hostname"] == host and link["pid"]:
                # A live owner may be between finishing its run and telling the study.
                dead = not _pid_alive(int(link["pid"]))
            else:
                dead = False  # another host's trial: its own process or its crash marks it
            if dead:
                store.set_sweep_trial(sweep_id, trial.number, None, "crashed")
                study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
                reaped += 1
    return reaped


def _run_status(store: Store, run_id: str) -> str | None:
    from nbtrack.errors import NbtrackError

    try:
        return str(store.run_row(run_id)["status"])
    except NbtrackError:
        return None  # deleted


def importances(study: optuna.Study) -> dict[str, float]:
    """Each parameter's importance (Optuna's ``optuna.importance``, fANOVA by default);
    ``{}`` until two trials are complete or when Optuna cannot tell (one value tried)."""
    import optuna
    from optuna.trial import TrialState

    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        return {}
    try:
        found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}
    return {str(k): float(v) for k, v in found.items()}
