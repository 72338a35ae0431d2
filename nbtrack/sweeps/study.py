"""The Optuna side of a sweep: storage, sampler, pruner, and the study's bookkeeping.

Where a sweep's study lives follows its store, and the sweep's row says which
(its ``storage`` column, :func:`storage_for`):

* a SQLite store: Optuna's JournalStorage on a file beside the store
  (``<store>/sweeps/<sweep id>.journal``): it takes concurrent writers from many processes
  (SQLite does not, optuna#820), needs no server, and moves with the store;
* a PostgreSQL store: Optuna's RDBStorage in the same database (:data:`RDB_STORAGE`), its
  tables in their own schema :data:`RDB_SCHEMA`, so workers on any machine that reaches the
  database share the study.

Optuna does all the searching and pruning; this module only builds its objects and keeps
two promises Optuna does not:

* no trial stays RUNNING after its process stopped (:func:`reap_stale_trials`; optuna#3336);
* a sweep of N trials runs N, however many workers share it (:func:`claim_trial` asks for a
  trial under :func:`ask_lock` only while fewer than N trials count: a file lock beside the
  journal, or a PostgreSQL advisory lock, which holds across machines).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
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
    "RDB_SCHEMA",
    "RDB_STORAGE",
    "journal_path",
    "storage_for",
    "is_rdb",
    "open_journal",
    "open_storage",
    "copy_study",
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


#: The PostgreSQL schema that holds Optuna's tables in a PostgreSQL store's database.
#: Optuna's table names (``studies``, ``trials``, ``trial_params``, ``version_info``,
#: ``alembic_version``…) do not clash with nbtrack's today, but both sides grow tables, and
#: ``alembic_version`` is the name every alembic-managed tool claims: a schema of their own
#: keeps each side's names, migrations and ``VACUUM`` apart.
RDB_SCHEMA = "nbtrack_optuna"
#: A sweep row's ``storage`` when its study is in Optuna's RDBStorage in the store's own
#: database (never the URL: the row would carry the password).
RDB_STORAGE = f"postgresql:{RDB_SCHEMA}"

# Advisory lock keys: creating Optuna's schema and tables (one process at a time, so two
# sweeps opened at once on a fresh database do not race Optuna's CREATE TABLEs); a sweep's
# claim lock is keyed by its id (:func:`_sweep_lock_key`).
_LOCK_OPTUNA_SCHEMA = 0x6E62_0101
#: How long the server lets a claim transaction sit idle before ending it (and its lock).
_IDLE_LOCK_SECONDS = 300


def journal_path(store_path: Path, sweep_id: str) -> Path:
    """Where a sweep's Optuna journal lives: ``<store>/sweeps/<sweep id>.journal``."""
    return store_path / "sweeps" / f"{sweep_id}.journal"


def _postgres_url(store: Store) -> str | None:
    """The connection URL of a PostgreSQL store (password included: never shown), or
    ``None`` for a SQLite store."""
    from nbtrack.store.postgres import PostgresStore

    return store._url if isinstance(store, PostgresStore) else None


def storage_for(store: Store, sweep_id: str) -> str:
    """The ``storage`` a new sweep records: :data:`RDB_STORAGE` on PostgreSQL, else its
    journal file relative to the store folder."""
    if _postgres_url(store) is not None:
        return RDB_STORAGE
    return str(journal_path(store.path, sweep_id).relative_to(store.path))


def is_rdb(storage: str) -> bool:
    """Whether a sweep's ``storage`` is Optuna's RDBStorage in the store's database."""
    return storage.startswith("postgresql:")


def quiet_optuna() -> None:
    """Optuna logs one line per trial (and a traceback per failure); the sweep's own
    display says what happened, once."""
    import logging

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Alembic (Optuna's RDB migrations) logs its connection at INFO: never a URL in a log.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def open_journal(path: Path) -> optuna.storages.BaseStorage:
    """Optuna's JournalStorage on the file ``path`` (created with its folder)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path.parent.mkdir(parents=True, exist_ok=True)
    # The open(O_EXCL) lock rather than the default symlink lock: it works on every file
    # system that can hold the store, and a lock left by a killed writer goes stale on
    # its own (Optuna's grace period) instead of blocking the next worker.
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def open_storage(store: Store, storage: str) -> optuna.storages.BaseStorage:
    """The Optuna storage a sweep's ``storage`` names: the journal file beside a SQLite
    store, or Optuna's RDBStorage in a PostgreSQL store's own database."""
    from nbtrack import config

    if not is_rdb(storage):
        return open_journal(store.path / storage)
    url = _postgres_url(store)
    if url is None:
        raise SweepError(
            f"this sweep's Optuna study lives in the PostgreSQL store it was run in "
            f"({storage}), not in the store at {store.shown}; read it there "
            f"({config.ENV_STORE}=postgresql://…)"
        )
    return _rdb_storage(store, url)


def copy_study(
    source: Store, source_storage: str, target: Store, target_storage: str, study_name: str
) -> int:
    """Bring the copy of a sweep's Optuna study in ``target`` up to date with ``source``
    (``nbtrack push``/``pull``): create it when missing (same name, direction and user
    attributes), then add the source's finished trials it lacks, in order, so trial
    numbers match in both. Returns how many trials were added.

    Only the leading run of finished trials (complete, pruned, failed) is copied: a trial
    still running in the source is copied by a later push once it has ended, and so is
    every trial after it. A study that went on in the target (workers there) is not merged:
    trials are added only while the target has fewer. Raises :class:`SweepError` when the
    source's study cannot be read.
    """
    import optuna

    quiet_optuna()
    if not is_rdb(source_storage) and not (source.path / source_storage).is_file():
        # Checked first: opening a journal that is not there would create an empty one.
        raise SweepError(f"its Optuna journal {source.path / source_storage} is missing")
    try:
        origin = optuna.load_study(
            study_name=study_name, storage=open_storage(source, source_storage)
        )
    except (KeyError, ValueError) as exc:  # no such study (a journal that is not there)
        raise SweepError(f"its Optuna study {study_name!r} is not in {source.shown}") from exc
    finished = []
    for trial in origin.get_trials(deepcopy=False):
        if not trial.state.is_finished():
            break
        finished.append(trial)
    copy = optuna.create_study(
        study_name=study_name,
        storage=open_storage(target, target_storage),
        directions=origin.directions,
        load_if_exists=True,
    )
    have = len(copy.get_trials(deepcopy=False))
    if have == 0:
        for key, value in origin.user_attrs.items():
            copy.set_user_attr(key, value)
    missing = finished[have:]
    copy.add_trials(missing)  # deep-copied by Optuna, numbered in order after `have`
    return len(missing)


_rdb_storages: dict[tuple[int, str], optuna.storages.RDBStorage] = {}
_rdb_lock = threading.Lock()


def _rdb_storage(store: Store, url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage on the store's database, its tables in :data:`RDB_SCHEMA`; one
    per database in each process (its engine pools connections), made on first use."""
    key = (os.getpid(), url)  # a forked child must not share its parent's pooled sockets
    with _rdb_lock:
        found = _rdb_storages.get(key)
        if found is None:
            found = _rdb_storages[key] = _make_rdb_storage(store, url)
        return found


class _Connector:
    """SQLAlchemy's ``creator`` for Optuna's engine: a psycopg connection to the store's URL
    with Optuna's schema first on the search path.

    libpq reads the URL exactly as the store does (socket paths, ``sslmode``, services…),
    and neither SQLAlchemy nor Optuna ever holds the password: the URL they are given names
    only the dialect (psycopg 3, the store's driver). A class, not a closure, so the
    storage still pickles as Optuna's RDBStorage does (its integrations ship studies to
    other processes).
    """

    def __init__(self, url: str) -> None:
        self._url = url

    def __call__(self) -> Any:
        import psycopg
        import psycopg.conninfo

        given = psycopg.conninfo.conninfo_to_dict(self._url).get("options") or ""
        options = f"{given} -csearch_path={RDB_SCHEMA}".strip()  # the URL's own kept
        return psycopg.connect(self._url, options=options)

    def __repr__(self) -> str:
        from nbtrack.store.postgres import redact_url

        return f"_Connector({redact_url(self._url)!r})"


def _make_rdb_storage(store: Store, url: str) -> optuna.storages.RDBStorage:
    from optuna.storages import RDBStorage

    from nbtrack.errors import NbtrackError
    from nbtrack.secrets import redact_text
    from nbtrack.store.postgres import PostgresStore, redact_url

    assert isinstance(store, PostgresStore)
    quiet_optuna()

    sqlalchemy_url = "postgresql+psycopg://"
    engine_kwargs: dict[str, Any] = {
        "creator": _Connector(url),
        "pool_pre_ping": True,  # a kernel idles for hours; the server may drop connections
    }
    try:
        with store.transaction() as conn:
            conn.lock(_LOCK_OPTUNA_SCHEMA)
            # Looked up first: CREATE SCHEMA IF NOT EXISTS wants CREATE on the database even
            # when the schema is there (one an administrator made for a role without it).
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = ?", (RDB_SCHEMA,))
            if found.fetchone() is None:
                conn.raw.execute(f"CREATE SCHEMA IF NOT EXISTS {RDB_SCHEMA}")
    except NbtrackError as exc:
        raise SweepError(
            f"sweeps on PostgreSQL keep Optuna's study in the schema {RDB_SCHEMA} of the "
            f"store's database, and it cannot be created ({exc}); ask the database "
            f"administrator to run `CREATE SCHEMA {RDB_SCHEMA} AUTHORIZATION <your role>`"
        ) from None
    try:
        # Under the same lock: Optuna checks for its tables, then creates them.
        with store.transaction() as conn:
            conn.lock(_LOCK_OPTUNA_SCHEMA)
            return RDBStorage(sqlalchemy_url, engine_kwargs=engine_kwargs)
    except NbtrackError:
        raise
    except Exception as exc:  # SQLAlchemy's and Optuna's own errors, one line, no password
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(
            f"cannot open the sweep's Optuna study in {redact_url(url)} ({redact_text(first)}); "
            "check that the server runs and the database is nbtrack's"
        ) from None


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


def _sweep_lock_key(sweep_id: str) -> int:
    """The advisory lock key of one sweep's claims: a signed 64-bit hash of its id."""
    digest = hashlib.blake2b(f"nbtrack-sweep-ask/{sweep_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def ask_lock(store: Store, sweep_id: str, storage: str) -> Iterator[None]:
    """An exclusive lock between the processes of one sweep that ask for or reap trials.

    On PostgreSQL a transaction-scoped advisory lock on the store's connection, keyed by the
    sweep: it holds between machines, and a killed holder's lock goes with its connection.
    The trial links written under it commit with the lock's release, so the next holder
    sees them. On SQLite a file lock beside the journal.
    """
    if is_rdb(storage) and _postgres_url(store) is not None:
        with store.transaction() as conn:
            # A holder whose machine vanished (no FIN, so the server keeps its session until
            # TCP gives up, hours) would block every worker: the server ends a transaction
            # left idle this long, and its lock with it. Far above any sampler's ask.
            conn.raw.execute(  # type: ignore[attr-defined]
                f"SET LOCAL idle_in_transaction_session_timeout = '{_IDLE_LOCK_SECONDS}s'"
            )
            conn.lock(_sweep_lock_key(sweep_id))  # type: ignore[attr-defined]
            yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no lock; at worst a few trials more than N
        yield
        return
    journal = store.path / storage
    journal.parent.mkdir(parents=True, exist_ok=True)
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
    store: Store,
    sweep_id: str,
    storage: str,
) -> optuna.trial.Trial | None:
    """A new trial with every dimension sampled, recorded in the store as this process's;
    ``None`` when N trials count already.

    Counting, asking and recording happen under one lock (:func:`ask_lock`), so workers
    sharing the study never ask for more than N between them, and a reaper never sees a
    trial unrecorded.
    """
    with ask_lock(store, sweep_id, storage):
        if counted(study.get_trials(deepcopy=False), links_of(store, sweep_id)) >= n_trials:
            return None
        trial = study.ask({d.name: d.distribution() for d in dims})
        store.claim_sweep_trial(sweep_id, trial.number)
    return trial


def reap_stale_trials(study: optuna.Study, store: Store, sweep_id: str, storage: str) -> int:
    """Mark RUNNING trials whose process is gone as FAIL ("crashed"); returns how many.

    A trial's process is gone when the store marked its run crashed (the store notices a
    dead pid on this host, or a heartbeat gone quiet on another), when it was claimed on
    this host by a pid that no longer exists, or when it was never recorded at all.
    """
    from optuna.trial import TrialState

    from nbtrack.store.sqlite import _pid_alive

    host = socket.gethostname()
    reaped = 0
    with ask_lock(store, sweep_id, storage):
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
