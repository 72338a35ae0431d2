"""The outbox: runs kept locally while their team store (a database) cannot be reached.

A run that starts while its ``postgresql://`` store is unreachable is recorded, in full, in
an SQLite store of its own for that database (:func:`outbox_dir`), and pushed to the
database later with the same idempotent copy as ``nbtrack push`` (:mod:`nbtrack.sync.stores`):
in a background thread at the next run start that reaches the database, or by hand with
``nbtrack push --outbox`` / ``%nbtrack push --outbox``.

Decisions (docs/team.md, "When the team store is unreachable"):

* Only "unreachable" parks a run (:class:`~nbtrack.errors.StoreUnreachableError`: nothing
  listening, timed out or dropped connections, a server starting or stopping). A refusal
  (no password to send, a wrong one, no such database or role, pg_hba.conf, SSL, a schema
  too new: :func:`nbtrack.store.postgres.is_unreachable`) is the user's to fix, so it
  still reads "this run is not recorded" rather than filling an outbox nobody will be
  able to push.
* A parked run that names no user records the database role its URL connects as
  (:class:`OutboxStore`), as the database would have, not the login name.
* The outbox is named by the database (``host_port_dbname``, as the artifact cache is), so
  every URL spelling of one database shares it; it knows its database by the URL with
  the user's password removed (``database.json``). The password comes, when pushing, from
  the URL this process is configured with (``NBTRACK_STORE`` …) or from libpq's own places
  (``~/.pgpass``, ``$PGPASSWORD``); it is never written here.
* A pushed run is deleted from the outbox only after its copy in the database is complete
  (the copy's last write is the one that removes its "incomplete" mark); a run still
  running is left for a later push. A marker file (:data:`WAITING`) says that runs wait,
  so a run start that reaches the database pays one ``stat`` when nothing waits.
* Pushes of one outbox never overlap: a lock file per outbox (two processes draining at
  once: the second finds the lock taken and leaves the work to the first, so no run is
  copied twice). The copy is idempotent by global run id in any case.
* Numbers are per store: a run has its outbox number while it waits and gets the team
  store's next number when it is pushed (its id stays the same).
* A run whose database connection drops after it reached the database is kept here too:
  one that drops between the store's opening and the run's creation is parked whole
  (:func:`park`, under the same id, so a creation the database committed unacknowledged
  is replaced by the push, not duplicated); one created in the database whose last write
  fails (at its end, or at the process's exit) leaves here a *continuation*
  (:func:`keep_continuation`): a row with the run's id, its outcome and the metric points
  the database lacks, marked :data:`~nbtrack.sync.stores.CONTINUATION` with how many
  points of each metric the database had been sent. A push completes the database's run
  from it (:func:`~nbtrack.sync.stores.complete_run`) and only then deletes it; it is
  never copied as a run of its own.
* An artifact saved while the run's database is down (``track.artifact``) has its content
  saved here at once and its record held by the run; the run's next write that reaches
  the database sends both, or, the database still down at the run's end, the records go
  into the continuation and the push adds them (by name and hash, never twice). Content
  sent on is left here unreferenced (with local artifact storage, ``nbtrack gc --store``
  on the outbox folder frees it; with ``NBTRACK_ARTIFACTS`` both stores share it).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from nbtrack import config
from nbtrack.errors import StoreError, StoreUnreachableError, SyncError
from nbtrack.store.sqlite import Store
from nbtrack.sync.stores import CONTINUATION, SyncReport, copy_runs

__all__ = [
    "DATABASE",
    "WAITING",
    "OutboxStore",
    "Parked",
    "drain",
    "drain_soon",
    "keep_continuation",
    "open_outbox",
    "open_run_store",
    "outbox_dir",
    "outbox_root",
    "outboxes",
    "push_outboxes",
    "waiting_count",
    "waiting_note",
    "without_password",
]

#: The file naming an outbox's database (its URL without a password).
DATABASE = "database.json"
#: Present while runs wait in the outbox (checked at every run start that reaches the store).
WAITING = "waiting"
#: Held while one process pushes the outbox.
_LOCK = "push.lock"


def outbox_root() -> Path:
    """Where outboxes live: ``$XDG_CACHE_HOME/nbtrack/outbox`` (default ``~/.cache``)."""
    return _outbox_root(os.environ.get("XDG_CACHE_HOME"), os.environ.get("HOME"))


@functools.lru_cache(maxsize=8)
def _outbox_root(xdg_cache: str | None, home: str | None) -> Path:
    # Keyed by the two variables it reads, so a changed environment is followed; every
    # run start on a database store asks (one dict lookup instead of building paths).
    cache = Path(xdg_cache or Path.home() / ".cache")
    return cache / "nbtrack" / "outbox"


def outbox_dir(url: str) -> Path:
    """The outbox folder of the database ``url`` names (its host, port and database)."""
    from nbtrack.store.postgres import database_label

    return outbox_root() / database_label(url)


def without_password(url: str) -> str:
    """``url`` with any password removed (from ``user:pw@`` and from ``?password=``)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        auth, host = netloc.rsplit("@", 1)
        netloc = auth.split(":", 1)[0] + "@" + host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _shown(url: str) -> str:
    return config.shown_location(config.StoreURL(url))


@dataclass
class Parked:
    """A run start that found its database unreachable: the run goes to ``folder``."""

    url: str  #: the database's URL (may hold the password: never written, never shown)
    folder: Path
    reason: str  #: the one-line connection error

    @property
    def warning(self) -> str:
        """What the run itself records (and its summary shows): where it was first kept."""
        return (
            f"recorded in the local outbox: the team store {_shown(self.url)} was "
            "unreachable when the run started"
        )

    def recorded(self, run_id: str, number: int) -> None:
        """The run is in the outbox: mark the outbox waiting and tell the user, in one line.

        The marker is written after the run exists, and a push removes it before it lists
        the runs, so a run is never left behind without the marker.
        """
        (self.folder / WAITING).touch()
        why = _why(self.reason)
        print(
            f"nbtrack: the team store is unreachable: run #{number} ({run_id[:8]}) is kept "
            f"locally in {self.folder} and will be pushed when the store is reachable (at the "
            "next run that reaches it, or `nbtrack push --outbox`), where it gets the store's "
            f"next number. Why: {why}",
            file=sys.stderr,
        )


def _why(reason: str) -> str:
    # The store's own advice ("check that the server runs…") is for a failure; the lines
    # here say where the data is safe, and only then why.
    return reason.split("; check that", 1)[0]


def open_outbox(url: str) -> Store:
    """The outbox store of the database ``url`` names (created, with its
    :data:`DATABASE` file, when it is not there yet); shared in this process."""
    return _open_outbox(url)


class OutboxStore(Store):
    """An outbox's store. A run in it that names no user (no ``$NBTRACK_USER``, no git
    identity) records :attr:`role`, the role its database would have recorded (the
    column's default there, ``current_user``): :func:`~nbtrack.identity.database_role` of
    the URL the run was for, not this machine's login name, which the push would carry
    into the team store."""

    #: The database role of the URL last parked here (set by :func:`open_outbox`).
    role: str | None = None

    def create_run(self, run_id: str, fields: dict[str, Any]) -> int:
        """Insert a new run (its user the database role when none is named)."""
        if fields.get("user_name") is None and self.role:
            fields = {**fields, "user_name": self.role}
        return super().create_run(run_id, fields)


def _open_outbox(url: str) -> Store:
    """The outbox store of ``url``, shared in this process (its later runs, held
    artifacts and continuations write through it)."""
    from nbtrack.identity import database_role
    from nbtrack.store.routing import shared_store

    folder = outbox_dir(url)
    store = shared_store(folder, OutboxStore)
    store.role = database_role(url)
    database = folder / DATABASE
    if not database.exists():
        tmp = database.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": without_password(url)}) + "\n", encoding="utf-8")
        os.replace(tmp, database)
    return store


def open_run_store(location: Any) -> tuple[Store, Parked | None]:
    """The store a run starting now writes to, and whether it was parked in an outbox.

    ``location``: a folder or database URL (``None``: the configured store). A database
    that cannot be reached gives its outbox (and a :class:`Parked`); one that can starts,
    in the background, the push of runs waiting in its outbox. Any other failure raises.
    """
    from nbtrack.store.postgres import postgres_url
    from nbtrack.store.routing import open_store

    where = location if location is not None else config.default_store_dir()
    url = postgres_url(where)
    if url is None:
        store = open_store(where)
        store.check_blob_cache()
        return store, None
    import time

    reason: str | None = None
    recent = _unreachable.get(url)
    if recent is not None and time.monotonic() - recent[0] < RECHECK_SECONDS:
        # Waited out a connect timeout moments ago: park at once rather than make every
        # cell wait again (a network that drops packets, a VPN that is down).
        reason = recent[1]
    else:
        started = time.monotonic()
        try:
            store = open_store(url)
            store.check_blob_cache()  # a shared connection that died since shows it here
        except StoreUnreachableError as exc:
            reason = str(exc)
            # Only a slow failure is remembered: a refused connection or an unknown host
            # fails at once, so trying again on the next run costs nothing.
            if time.monotonic() - started >= SLOW_FAILURE_SECONDS:
                _unreachable[url] = (time.monotonic(), reason)
    if reason is not None:
        return park(url, reason)
    _unreachable.pop(url, None)
    drain_soon(url)
    return store, None


def park(url: str, reason: str) -> tuple[Store, Parked]:
    """The outbox a run starting now goes to, the database ``url`` being unreachable
    (``reason``: the one-line connection error), and its :class:`Parked`.

    :meth:`~nbtrack.tracker.ActiveRun.start` calls it too when the connection drops after
    :func:`open_run_store` reached the database and before the run was created; that fast
    failure after a success is not remembered as "unreachable" (``_unreachable``).
    """
    try:
        kept = _open_outbox(url)
    except (StoreError, OSError) as error:  # both places fail: say both, in one line
        raise StoreError(
            f"{reason}; and its local outbox {outbox_dir(url)} cannot be written either ({error})"
        ) from None
    return kept, Parked(url, outbox_dir(url), reason)


def keep_continuation(
    url: str,
    run_id: str,
    number: int,
    row: dict[str, Any],
    final: dict[str, Any],
    tail: list[tuple[str, int, float, float]],
    flushed: dict[str, int],
    reason: str,
    artifacts: Sequence[tuple[str, str, str, int, dict[str, Any]]] = (),
) -> Path:
    """Keep in ``url``'s outbox the end of the database run ``run_id`` (#``number``),
    whose last write failed because the database became unreachable; returns the folder.

    ``row``: columns that describe the run (its name, start…, for ``nbtrack runs`` on the
    outbox; never applied); ``final``: the columns a push applies to the database's run
    (status, end time, error, metrics…; a blob they name must be in the outbox already);
    ``tail``: the metric points not written to the database, in logging order;
    ``flushed``: per metric, how many points the database was sent before;
    ``artifacts``: ``(name, kind, hash, size, meta)`` of the artifacts saved while the
    database was down, their content already in the outbox (:func:`open_outbox`). Prints the
    one line that tells the user where the rest of the run is. Raises
    :class:`~nbtrack.errors.StoreError` or :class:`OSError` when the outbox cannot be
    written either.
    """
    from nbtrack.errors import UnknownRunError

    folder = outbox_dir(url)
    kept = _open_outbox(url)
    with contextlib.suppress(UnknownRunError):
        kept.run_row(run_id)
        kept.delete_runs([run_id])  # an earlier continuation of it (never two of one run)
    marker = {"flushed": dict(flushed), "apply": sorted(final)}
    extra = {**dict(final.get("extra") or row.get("extra") or {}), CONTINUATION: marker}
    # Written "running" until the points are in: a push (this process's background drain,
    # or another's) takes only finished rows, so it never completes the run from half a
    # tail; a process that dies in between leaves it to be marked crashed, as the run was.
    kept.create_run(run_id, {**row, **final, "status": "running", "extra": extra})
    kept.append_metrics(run_id, tail)
    for name, kind, digest, size, meta in artifacts:
        kept.add_artifact(run_id, name, kind, digest, size, meta)
    kept.update_run(run_id, {"status": final.get("status", "finished")})
    (folder / WAITING).touch()
    what = f"its end and its last {len(tail)} metric point(s)"
    if artifacts:
        what = f"its end, its last {len(tail)} metric point(s) and {len(artifacts)} artifact(s)"
    print(
        f"nbtrack: the team store became unreachable before run #{number} ({run_id[:8]}) "
        f"was fully written: {what} are kept "
        f"locally in {folder} and will be added to the run when the store is reachable (at "
        f"the next run that reaches it, or `nbtrack push --outbox`). Why: {_why(reason)}",
        file=sys.stderr,
    )
    return folder


#: After a connection attempt to a database failed slowly (a timeout, at least
#: ``SLOW_FAILURE_SECONDS``), runs starting within ``RECHECK_SECONDS`` go to its outbox
#: without trying again; the first run after that tries the database again.
RECHECK_SECONDS = 60.0
SLOW_FAILURE_SECONDS = 1.0
#: When this process last found each database unreachable, and why (URL → time, reason).
_unreachable: dict[str, tuple[float, str]] = {}


def waiting_count(url: str) -> int:
    """How many runs wait in ``url``'s outbox (0 without opening anything when none do)."""
    folder = outbox_dir(url)
    if not (folder / WAITING).exists():
        return 0
    try:
        outbox = Store(folder, create=False)
    except StoreError:
        return 0
    try:
        return len(outbox.list_runs(columns=("id",)))
    finally:
        outbox.close()


def waiting_note(store: Store) -> str | None:
    """For ``nbtrack runs`` on a team database: a line saying how many of its runs wait in
    this machine's outbox, or ``None`` (one ``stat`` when none wait, and for a folder)."""
    from nbtrack.store.postgres import postgres_url

    url = postgres_url(store.location)
    count = waiting_count(url) if url is not None else 0
    if url is None or not count:
        return None
    return (
        f"nbtrack: {count} run(s) of this store wait in the local outbox {outbox_dir(url)} "
        "(recorded while it was unreachable); `nbtrack push --outbox` pushes them"
    )


_draining: dict[Path, threading.Thread] = {}
_draining_lock = threading.Lock()


def drain_soon(url: str) -> threading.Thread | None:
    """Push ``url``'s outbox in a background thread if runs wait there (one ``stat`` when
    none do); returns the thread, or ``None`` when there was nothing to start."""
    folder = outbox_dir(url)
    if not (folder / WAITING).exists():
        return None
    with _draining_lock:
        thread = _draining.get(folder)
        if thread is not None and thread.is_alive():
            return thread

        def work() -> None:
            # A background push must never surface in the user's cell; a failed one leaves
            # the runs (and the marker) for the next try.
            with contextlib.suppress(Exception):
                drain(folder, url, wait=False)

        thread = threading.Thread(target=work, name="nbtrack-outbox", daemon=True)
        _draining[folder] = thread
        thread.start()
        return thread


@contextlib.contextmanager
def _push_lock(folder: Path, *, wait: bool) -> Iterator[bool]:
    """Whether this process got the outbox's push lock (held for the block)."""
    import fcntl

    with open(folder / _LOCK, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _stored_url(folder: Path) -> str:
    try:
        data = json.loads((folder / DATABASE).read_text(encoding="utf-8"))
        return str(data["url"])
    except (OSError, ValueError, KeyError, TypeError):
        raise SyncError(
            f"{folder} does not say which database it belongs to ({DATABASE} is missing or "
            "damaged); push its runs by hand: nbtrack push --store "
            f"{folder} --to postgresql://…"
        ) from None


def _free(outbox: Store) -> None:
    """Delete the pushed runs' blobs and artifact files from the outbox; only from its own
    folder: with artifacts in a bucket (``NBTRACK_ARTIFACTS=s3://…``) the content is the
    team store's too, and an outbox ``gc`` there would delete what the database refers to."""
    from nbtrack.store.artifact_store import LocalArtifacts

    with contextlib.suppress(StoreError, OSError):  # leftovers only cost space
        if isinstance(outbox.artifact_location, LocalArtifacts):
            outbox.gc()  # its grace spares content of a run being written right now


def _finished(outbox: Store | Path) -> list[str]:
    """Ids of the outbox's runs that are no longer running (those a push may copy)."""
    store = outbox if isinstance(outbox, Store) else Store(outbox, create=False)
    try:
        return [
            str(row[0]) for row in store.list_runs(columns=("id", "status")) if row[1] != "running"
        ]
    finally:
        if store is not outbox:
            store.close()


def drain(folder: Path, url: str | None = None, *, wait: bool = True) -> SyncReport:
    """Push the finished runs of the outbox ``folder`` to its database and delete them from
    the outbox once their copies are complete (a continuation: once the database's run is
    completed from it, reported as updated); returns what was done.

    ``url``: the database's URL with its password (default: the one the outbox names, which
    has none: libpq then looks in ``~/.pgpass`` and ``$PGPASSWORD``). ``wait=False``: when
    another process is pushing this outbox, leave it to that one.
    Raises :class:`~nbtrack.errors.StoreError` when the database cannot be reached (the runs
    stay waiting).
    """
    from nbtrack.store.routing import connect_store

    target = url or _stored_url(folder)
    report = SyncReport(str(folder), _shown(target))
    with _push_lock(folder, wait=wait) as locked:
        if not locked:
            report.problems.append("another process is pushing this outbox")
            return report
        # Before listing: a run parked from now on re-creates it (Parked.recorded).
        with contextlib.suppress(FileNotFoundError):
            (folder / WAITING).unlink()
        outbox = Store(folder, create=False)
        try:
            finished = _finished(outbox)
            left = 0
            try:
                if finished:
                    remote = connect_store(target, create=True)
                    try:
                        report = copy_runs(
                            outbox,
                            remote,
                            finished,
                            source_name=str(folder),
                            target_name=_shown(target),
                        )
                    finally:
                        remote.close()
                    # Complete in the database (copied, or found there by an earlier push
                    # cut off before it could delete): only now may the outbox forget them.
                    outbox.delete_runs([*report.copied, *report.updated, *report.skipped])
                    _free(outbox)
            finally:
                left = len(outbox.list_runs(columns=("id",)))
                if left:
                    (folder / WAITING).touch()
            if left:
                report.problems.append(
                    f"{left} run(s) stay in the outbox (still running or not copied)"
                )
        finally:
            outbox.close()
    return report


def outboxes() -> list[Path]:
    """Every outbox folder on this machine (one per database that was unreachable once)."""
    root = outbox_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / DATABASE).exists())


def push_outboxes(configured: Any = None) -> list[SyncReport]:
    """Push every outbox to its database (``nbtrack push --outbox``); one report each.

    ``configured``: the store this process is configured with; when it is one of the
    outboxes' databases, its URL (and so its password) is the one used for that outbox.
    A database still unreachable gives a report with that problem; the others go on.
    """
    from nbtrack.store.postgres import database_label, postgres_url

    mine = postgres_url(configured) if configured is not None else None
    reports = []
    for folder in outboxes():
        url = mine if mine is not None and database_label(mine) == folder.name else None
        try:
            reports.append(drain(folder, url))
        except StoreError as exc:
            report = SyncReport(str(folder), _shown(url or _stored_url(folder)))
            report.failed = _finished(folder)  # not copied this time; they stay waiting
            report.problems.append(f"not pushed, the runs stay waiting: {exc}")
            reports.append(report)
    return reports
