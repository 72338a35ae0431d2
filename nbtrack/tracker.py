"""A run's lifecycle: start and capture, buffered logging, finish.

One tracker serves the ``%%track`` magic and scripts (``with nbtrack.run(...) as track``).
Every capture step is wrapped so that a failure becomes a warning on the run and never an
exception in the user's code. Metrics go to an in-memory list (``track.log`` costs about a
microsecond) that a background thread writes to the store every
:func:`nbtrack.config.flush_interval` seconds, so at most that much is lost if the process dies.
"""

from __future__ import annotations

import atexit
import json
import operator
import os
import stat
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbtrack import config
from nbtrack.artifacts import default_name, save_artifact
from nbtrack.errors import (
    NbtrackError,
    StoreError,
    StoreLockedError,
    StoreUnreachableError,
    UsageError,
)
from nbtrack.metrics import Direction, configured_goals, goal_entry, parse_goals, resolve_goals
from nbtrack.model import ArtifactInfo, HistoryEntry, RunStatus
from nbtrack.secrets import DEFAULT_RULES, Redactor, project_rules
from nbtrack.store.sqlite import Store, dumps


class TrackingWarning(UserWarning):
    """Something nbtrack could not capture; the run is recorded without it."""


class RunStopped(BaseException):  # noqa: N818 -- a signal, like KeyboardInterrupt
    """Raised from ``track.log`` to end a run where it was told to stop.

    A sweep's pruner gave up on the trial (:class:`nbtrack.sweeps.trial.TrialPruned`), or
    a script reproduces a run that was stopped there (``nbtrack.run(stop_at=...)``). A
    ``BaseException`` (like ``KeyboardInterrupt``) so that a training loop's own
    ``except Exception`` does not swallow it and train on. ``metric`` was logged at
    ``step`` when it was raised; ``run_id`` is the run it ends (a run records only its own
    stop as ``pruned``, and ``with nbtrack.run(...)`` suppresses only its own).
    """

    def __init__(self, message: str, metric: str, step: int, run_id: str | None = None) -> None:
        super().__init__(message)
        self.metric = metric
        self.step = step
        self.run_id = run_id

    def __reduce__(self) -> tuple[Any, ...]:
        # args holds only the message: pickling (a sweep worker) must rebuild the rest.
        return (type(self), (str(self), self.metric, self.step, self.run_id))

    @property
    def stopped_at(self) -> dict[str, Any]:
        """Where the run stopped, as the run records it: ``{"metric": ..., "step": ...}``."""
        return {"metric": self.metric, "step": self.step}


def stop_point(value: Any, what: str = "stop_at") -> tuple[str, int] | None:
    """``(metric, step)`` of a stop point ``{"metric": "val_acc", "step": 7}`` (``None``
    for none); a :class:`~nbtrack.errors.UsageError` for anything else."""
    if value is None:
        return None
    metric = value.get("metric") if isinstance(value, Mapping) else None
    step = value.get("step") if isinstance(value, Mapping) else None
    if (
        not isinstance(metric, str)
        or not metric
        or type(step) is not int
        or not 0 <= step < 2**63
        or set(value) - {"metric", "step"}
    ):
        raise UsageError(
            f"{what} must be {{'metric': NAME, 'step': N}} with a metric name and a whole "
            f"step >= 0, e.g. {{'metric': 'val_acc', 'step': 7}}; got {value!r}"
        )
    return metric, step


class StopAt:
    """The ``track.log`` hook of ``nbtrack.run(stop_at=...)``: ends the run with
    :class:`RunStopped` once ``metric`` is logged at ``step`` (or past it)."""

    def __init__(self, run_id: str, metric: str, step: int) -> None:
        self.run_id = run_id
        self.metric = metric
        self.step = step
        self.reached = False

    def __call__(self, metrics: Mapping[str, Any], steps: Mapping[str, int]) -> None:
        """Raise :class:`RunStopped` when this ``track.log`` call reached the stop point."""
        if self.metric not in metrics:
            return
        step = steps.get(self.metric, -1)
        if step >= self.step:
            self.reached = True
            raise RunStopped(
                f"stopped at step {step} of {self.metric}, as asked (stop_at)",
                self.metric,
                step,
                self.run_id,
            )


@dataclass
class RunSpec:
    """Everything a run is started with; built by the magic or by :func:`nbtrack.run`."""

    name: str | None = None
    seed: int | None = None
    deterministic: bool = False
    tags: list[str] = field(default_factory=list)
    note: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    capture_env: bool = True
    capture_data: bool = True
    kind: str = "cell"  # "cell" or "script"
    source: str = ""  # the code whose params/inputs/seeds are analysed (Python, not IPython)
    code: str = ""  # the code as the user wrote it (cell body with its magic line, or script)
    history: list[HistoryEntry] = field(default_factory=list)
    notebook: str | None = None
    cwd: str | None = None
    namespace: Mapping[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Declared metric directions, ``{"val_loss": "min"}`` (see :mod:`nbtrack.metrics`).
    goals: dict[str, str] = field(default_factory=dict)
    #: End the run once this metric is logged at this step, ``{"metric": "val_acc",
    #: "step": 7}`` (:func:`stop_point`): a script reproducing a pruned trial.
    stop_at: Mapping[str, Any] | None = None
    #: The project the run names (``--project``, ``project=``); :meth:`ActiveRun.start`
    #: falls back to ``$NBTRACK_PROJECT`` and nbtrack.toml (:mod:`nbtrack.identity`).
    project: str | None = None


@dataclass
class _KeptArtifact:
    """An artifact saved while its run's database was unreachable: its content is in the
    database's outbox, its record (redacted) waits here, and ``warning`` is the line on the
    run that says so (removed once the record reaches the database during the run)."""

    name: str
    kind: str
    digest: str
    size: int
    meta: dict[str, Any]
    warning: str

    @property
    def record(self) -> tuple[str, str, str, int, dict[str, Any]]:
        """``(name, kind, hash, size, meta)``, as ``add_artifact`` takes it."""
        return (self.name, self.kind, self.digest, self.size, self.meta)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning raised in our caller at the first frame
    outside nbtrack: the user's line (``track.artifact(...)``), however deep inside
    nbtrack the warning was decided."""
    frame = sys._getframe(2)  # the caller of warn()
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


class Captures:
    """Runs capture steps for one run: a step that fails becomes a warning on the run,
    never an exception in the user's code. :attr:`warnings` is what the run stores."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        """Record ``message`` on the run and show it as a :class:`TrackingWarning`."""
        self.warnings.append(message)
        warnings.warn(f"nbtrack: {message}", TrackingWarning, stacklevel=_user_stacklevel())

    def __call__(
        self, what: str, fn: Callable[[], Any], default: Any = None, *, store_errors: bool = True
    ) -> Any:
        """``fn()``, or ``default`` with a warning naming ``what`` when it fails."""
        try:
            return fn()
        except StoreError:
            if store_errors:
                raise  # a locked or unwritable store: give up at once, not once per capture
            self.warnings.append(f"{what} not stored: the store was not writable")
            return default
        except Exception as exc:
            self.warn(f"{what} not captured: {type(exc).__name__}: {exc}")
            return default


@dataclass
class StartFacts:
    """What a run records about its start, captured by :func:`capture_start`."""

    params: dict[str, Any]
    extra: dict[str, Any]  # the spec's extra plus cwd, seeds applied, deterministic settings
    seed_calls: list[dict[str, Any]]  # seeding calls found in the code
    rng_hash: str | None  # blob of the RNG state before the code ran
    inputs: list[dict[str, Any]]  # fingerprints of the data the code reads
    code_hash: str | None
    history: list[list[Any]]  # [execution count, blob hash] of each cell that ran before
    env_hash: str | None  # blob of the environment snapshot


def current_run() -> ActiveRun | None:
    """The innermost run being recorded in this process, or ``None``."""
    return _runs.current()


class ActiveRun:
    """The run being recorded: the ``track`` object in a cell, the value of ``with nbtrack.run()``.

    Use :meth:`log` for metrics, :meth:`artifact` for files and objects, :meth:`tag` for
    tags. Attributes ``id`` (globally unique) and ``number`` (short, per store) name the run.
    """

    def __init__(
        self,
        store: Store,
        spec: RunSpec,
        facts: StartFacts,
        captures: Captures,
        start_time: float,
        goals: Mapping[str, Direction] | None = None,
        redactor: Redactor | None = None,
        run_id: str | None = None,
    ) -> None:
        """Use :meth:`start` (or :func:`nbtrack.run`): it captures ``facts`` and writes the run.

        ``redactor`` removes secrets from everything the run writes later (tags, notes,
        errors, git, artifacts' metadata); :meth:`start` passes the one that cleaned ``spec``.
        ``run_id``: the id (default: a new one; a run parked after a failed start keeps it).
        """
        self.store = store
        self.spec = spec
        self.id = run_id or uuid.uuid4().hex
        self.number = 0
        self.name = spec.name
        self.status = RunStatus.RUNNING
        self.start_time = start_time
        self.end_time: float | None = None
        self._captures = captures
        self._redactor = redactor if redactor is not None else Redactor()
        self.warnings: list[str] = captures.warnings
        self.tags: list[str] = list(dict.fromkeys(spec.tags))
        self.params: dict[str, Any] = facts.params
        self._goals: dict[str, Direction] = dict(goals or {})
        self._buffer: list[tuple[str, int, float, float]] = []
        #: Points of each metric the store acknowledged (a continuation records them).
        self._flushed: Counter[str] = Counter()
        #: Set when a send met an unreachable store: the batch may have been committed
        #: without the acknowledgement arriving, so the next send first asks the store.
        self._resync = False
        self._steps: dict[str, int] = {}
        self._latest: dict[str, float] = {}
        self._flush_lock = threading.Lock()
        self._git_thread: threading.Thread | None = None
        self._git: dict[str, Any] | None = None
        self._env_hash: str | None = facts.env_hash
        #: The run's input fingerprints (``track.input`` replaces one by name).
        self._inputs: list[dict[str, Any]] = list(facts.inputs)
        #: Columns an update could not write (store unreachable or busy): sent with the
        #: next update, or the final write, whichever comes first.
        self._held: dict[str, Any] = {}
        self._closed = False
        self._beat = time.time()
        self._pending: dict[str, Any] = {}
        self._artifact_names: set[str] = set()
        #: Artifacts saved while the database was unreachable, oldest first: sent before
        #: anything else by the next write that reaches it, else kept in the continuation.
        self._kept_artifacts: list[_KeptArtifact] = []
        self._listeners: list[Callable[[ActiveRun], None]] = []
        # Set by a sweep (nbtrack.sweeps) to report the objective to its pruner, or by
        # `stop_at` to stop where a recorded run stopped; None otherwise, so the plain
        # `log` pays one attribute check for it.
        self._log_hook: Callable[[Mapping[str, Any], Mapping[str, int]], None] | None = None
        point = stop_point(spec.stop_at)
        if point is not None:
            self._log_hook = StopAt(self.id, *point)

    @classmethod
    def start(cls, spec: RunSpec, store: Store | str | os.PathLike[str] | None = None) -> ActiveRun:
        """Start recording a run: seed, snapshot RNG state, capture params, inputs and code.

        Raises :class:`nbtrack.errors.StoreError` only when the store cannot be opened or
        written, and :class:`~nbtrack.errors.UsageError` for a bad seed or goal; every
        capture failure becomes a warning on the run instead.
        """
        if spec.seed is not None:
            from nbtrack.capture.seeds import check_seed

            check_seed(spec.seed)
        stop_point(spec.stop_at)  # a bad one fails here, before anything is recorded
        goals = parse_goals(spec.goals, "goals") if spec.goals else {}
        from dataclasses import replace

        from nbtrack.identity import current_project

        # A bad project name (the run's, $NBTRACK_PROJECT's or nbtrack.toml's) fails here,
        # before anything is recorded, like a bad seed; the run stores the resolved name.
        spec = replace(spec, project=current_project(spec.project, spec.cwd))
        parked = None
        opened = not isinstance(store, Store)
        if isinstance(store, Store):
            store.check_blob_cache()
        else:
            # An unreachable team store gives its local outbox (pushed later), and a reachable
            # one starts pushing what waits there: nbtrack/sync/outbox.py.
            from nbtrack.sync.outbox import open_run_store

            store, parked = open_run_store(store)
        captures = Captures()
        if parked is not None:
            captures.warnings.append(parked.warning)
        redactor = _redactor_for(spec, captures)
        spec = _without_secrets(spec, redactor)
        start_time = time.time()
        run_id = uuid.uuid4().hex
        try:
            run = cls._begin(store, spec, captures, start_time, goals, redactor, run_id)
        except StoreUnreachableError as exc:
            # Only a store this start opened (a Store object given is used as it is).
            url = _database_url(store) if parked is None and opened else None
            if url is None:
                raise
            # The database answered a moment ago and dropped before the run was created:
            # park it as if it had been unreachable at the start, capturing again so its
            # blobs are in the outbox. Same id: a creation the database committed but never
            # acknowledged is then replaced by the push, not duplicated.
            from nbtrack.sync.outbox import park

            store, parked = park(url, str(exc))
            captures = Captures()
            captures.warnings.append(parked.warning)
            run = cls._begin(store, spec, captures, start_time, goals, redactor, run_id)
        if parked is not None:
            parked.recorded(run.id, run.number)  # the one line: where the run is kept
        _runs.add(run)
        return run

    @classmethod
    def _begin(
        cls,
        store: Store,
        spec: RunSpec,
        captures: Captures,
        start_time: float,
        goals: Mapping[str, Direction],
        redactor: Redactor,
        run_id: str,
    ) -> ActiveRun:
        """Capture the start into ``store`` and create the run there (:meth:`start`)."""
        facts = capture_start(spec, store, captures, redactor)
        run = cls(store, spec, facts, captures, start_time, goals, redactor, run_id)
        if spec.capture_env:
            run._start_git(
                spec.notebook and str(Path(spec.notebook).parent) or spec.cwd or os.getcwd()
            )
        run.number = store.create_run(run.id, run._clean(run._start_row(facts)))
        return run

    def _start_row(self, facts: StartFacts) -> dict[str, Any]:
        spec = self.spec
        return {
            "name": spec.name,
            "status": "running",
            "kind": spec.kind,
            "start_time": self.start_time,
            "notebook": spec.notebook,
            "note": spec.note,
            "tags": self.tags,
            "params": self.params,
            "seed": spec.seed,
            "deterministic": int(spec.deterministic),
            "seeds": facts.seed_calls,
            "rng_hash": facts.rng_hash,
            "env_hash": facts.env_hash,
            "inputs": facts.inputs,
            "code_hash": facts.code_hash,
            "history": facts.history,
            "warnings": self.warnings,
            "extra": facts.extra,
            "goals": self._declared_goals(),
            "user_name": self._user(),
            "project": spec.project,
        }

    def _user(self) -> str | None:
        """Who runs this (docs/team.md); a failed look-up is the store's default, not an error."""
        from nbtrack.identity import declared_user

        try:
            return declared_user(self.spec.cwd)
        except Exception:  # noqa: BLE001 - identity must never break the cell
            return None

    def __repr__(self) -> str:
        return f"<nbtrack run #{self.number} {self.name or ''} ({self.status})>"

    # -- the user's API -------------------------------------------------------------------
    def log(self, step: int | None = None, **metrics: Any) -> None:
        """Record metric values, e.g. ``track.log(loss=0.3, acc=0.9, step=epoch)``.

        Values may be Python numbers, NumPy scalars or one-element tensors. Without ``step``
        each metric counts its own steps from 0. Cheap enough to call every training step.
        """
        if self._closed:
            self._warn(f"track.log after run #{self.number} finished was ignored")
            return
        now = time.time()
        steps = self._steps
        append = self._buffer.append
        for key, value in metrics.items():
            if type(value) is not float:
                value = self._to_float(key, value)
                if value is None:
                    continue
            if step is None:
                current = steps.get(key, -1) + 1
            elif type(step) is int and -(2**63) <= step < 2**63:
                current = step
            else:
                converted = self._to_step(step)
                if converted is None:
                    return
                current = converted
            steps[key] = current
            append((key, current, value, now))
        hook = self._log_hook
        if hook is not None:
            hook(metrics, steps)  # may raise to stop a sweep trial its pruner gave up on

    def on_log(self, hook: Callable[[Mapping[str, Any], Mapping[str, int]], None] | None) -> None:
        """Call ``hook(metrics, steps)`` after each :meth:`log` (``None``: no more calls).

        ``metrics`` are the values as given to ``log``; ``steps`` the step each metric is
        at. A sweep uses it to report its objective to Optuna's pruner; the hook may raise
        to stop the cell (a pruned trial).
        """
        self._log_hook = hook

    def _to_step(self, step: Any) -> int | None:
        # NumPy and torch loop counters are common steps; SQLite needs a plain int.
        try:
            value = int(operator.index(step) if not hasattr(step, "item") else step.item())
        except (TypeError, ValueError) as exc:
            self._warn(f"track.log: step {step!r} is not a whole number ({exc}); not logged")
            return None
        if not -(2**63) <= value < 2**63:
            self._warn(f"track.log: step {value} is out of range; not logged")
            return None
        return value

    def _to_float(self, key: str, value: Any) -> float | None:
        try:
            if hasattr(value, "numel") and value.numel() != 1:
                raise TypeError(f"a tensor with {value.numel()} elements is not a scalar")
            if hasattr(value, "item"):
                value = value.item()
            return float(value)
        except (TypeError, ValueError) as exc:
            self._warn(
                f"metric {key!r} was not logged: {type(value).__name__} is not a number ({exc})"
            )
            return None

    def artifact(self, obj: Any, name: str | None = None) -> ArtifactInfo | None:
        """Store a file, folder, torch module (its state_dict), array, text or object.

        Content is stored once by hash, however many runs keep it. Returns what was stored,
        or ``None`` (with a warning on the run) if it could not be.
        """
        if name is None:
            # Unnamed artifacts of one type must not replace each other: number them.
            base = name = default_name(obj)
            suffix = 2
            while name in self._artifact_names:
                name = f"{base}-{suffix}"
                suffix += 1
        self._artifact_names.add(name)
        given = name
        try:
            kind, digest, size, meta, warning = save_artifact(self.store, obj)
            # A file's path or a name may hold a credential (a token in a folder name).
            name, meta = self._redactor.text(name), self._redactor.value(meta)
            with self._flush_lock:
                # Artifacts held while the database was down are recorded first: the
                # run's artifacts keep the order they were saved in.
                self._send_kept_artifacts()
                self.store.add_artifact(self.id, name, kind, digest, size, meta)
        except StoreUnreachableError as exc:
            # The team database is down: the outbox keeps the content, the run the record.
            return self._keep_artifact(obj, given, exc)
        except NbtrackError as exc:
            self._warn(f"artifact {name!r} was not stored: {exc}")
            return None
        if warning:
            self._warn(warning)
        return ArtifactInfo(name=name, kind=kind, hash=digest, size=size, meta=meta)

    def _keep_artifact(
        self, obj: Any, name: str, exc: StoreUnreachableError
    ) -> ArtifactInfo | None:
        """``obj`` (to be named ``name``) could not reach the run's database (``exc``): save
        its content in the database's outbox and hold its record until a write reaches the
        database (:meth:`_send_kept_artifacts`), or, still down at the run's end, put it in
        the run's continuation (:meth:`_keep_continuation`); one warning on the run says so.
        """
        url = _database_url(self.store)
        if url is None:  # a folder store never goes unreachable; said as any failure
            self._warn(f"artifact {name!r} was not stored: {exc}")
            return None
        from nbtrack.sync import outbox

        folder = outbox.outbox_dir(url)
        try:
            kind, digest, size, meta, warning = save_artifact(outbox.open_outbox(url), obj)
        except (NbtrackError, OSError) as error:
            self._warn(
                f"artifact {name!r} was not stored: {exc}; and its local outbox {folder} "
                f"could not keep it either ({error})"
            )
            return None
        name, meta = self._redactor.text(name), self._redactor.value(meta)
        note = (
            f"artifact {name!r} kept in the local outbox {folder} until the team store is "
            "reachable: it was unreachable when the artifact was saved"
        )
        with self._flush_lock:
            # Saved again under one name: the later content replaces the held one, as a
            # second add_artifact would in the database.
            for old in [k for k in self._kept_artifacts if k.name == name]:
                self._kept_artifacts.remove(old)
                if old.warning in self.warnings:
                    self.warnings.remove(old.warning)
            self._kept_artifacts.append(_KeptArtifact(name, kind, digest, size, meta, note))
        self._warn(note)
        if warning:
            self._warn(warning)
        return ArtifactInfo(name=name, kind=kind, hash=digest, size=size, meta=meta)

    def _send_kept_artifacts(self) -> None:
        """Send the artifacts held while the database was unreachable, oldest first: the
        content from the outbox into the store's artifact storage (by hash, so content
        already there is not copied again), then the record. Each one sent leaves the list
        and its "kept locally" warning leaves the run (an outage the run recovered from is
        no problem of the run's, as for metrics). Called with ``_flush_lock`` held. Raises
        :class:`StoreUnreachableError` while the database is still down (those not sent
        stay held); content the outbox cannot give back is "not stored", with a warning.
        """
        if not self._kept_artifacts:
            return
        url = _database_url(self.store)
        if url is None:
            return
        from nbtrack.sync.outbox import open_outbox
        from nbtrack.sync.stores import copy_artifact_content

        source = open_outbox(url)
        for item in list(self._kept_artifacts):
            try:
                copy_artifact_content(
                    source, self.store, self.id, item.kind, item.digest, item.meta
                )
                self.store.add_artifact(self.id, *item.record)
            except StoreUnreachableError:
                raise
            except NbtrackError as exc:
                # Damaged or missing in the outbox: holding it on would block the run's
                # end (and its continuation's push) for content that cannot come back.
                self._warn(f"artifact {item.name!r} was not stored: {exc}")
            self._kept_artifacts.remove(item)
            if item.warning in self.warnings:
                self.warnings.remove(item.warning)

    def tag(self, *tags: str) -> None:
        """Add tags to the run."""
        for tag in tags:
            if tag not in self.tags:
                self.tags.append(str(tag))
        self._safe_update({"tags": self.tags})

    def note(self, text: str) -> None:
        """Set the run's note."""
        self._safe_update({"note": str(text)})

    def log_params(self, **params: Any) -> None:
        """Record parameters explicitly (scripts; cells get theirs from their assignments).

        A secret one (by name or value, :mod:`nbtrack.secrets`) is recorded as ``<redacted>``.
        """
        self._redactor.learn_params(params)
        cleaned, redacted = self._redactor.params(params)
        self.params.update(cleaned)
        fields: dict[str, Any] = {"params": self.params}
        if redacted:
            try:
                extra = self.store.run_row(self.id)["extra"]
            except NbtrackError:
                extra = None
            if extra is not None:
                known = extra.get("redacted_params") or []
                extra["redacted_params"] = list(dict.fromkeys([*known, *redacted]))
                fields["extra"] = extra
        self._safe_update(fields)

    def input(self, obj: Any, name: str) -> None:
        """Record the fingerprint of an input (array, DataFrame, tensor or file path)."""
        from nbtrack.capture.fingerprint import fingerprint, fingerprint_file

        try:
            fp = (
                fingerprint_file(obj, name)
                if isinstance(obj, (str, os.PathLike))
                else fingerprint(obj, name)
            )
            if fp is None:
                self._warn(f"input {name!r}: cannot fingerprint a {type(obj).__name__}")
                return
            self._inputs = [i for i in self._inputs if i.get("name") != name]
            self._inputs.append(fp.to_dict())
            self._safe_update({"inputs": self._inputs})
        except Exception as exc:
            self._warn(f"input {name!r} was not fingerprinted: {exc}")

    def goal(self, **directions: str) -> None:
        """Declare which way metrics should go, e.g. ``track.goal(val_loss="min", acc="max")``.

        ``"min"``/``"max"`` (or ``"minimize"``/``"maximize"``). A declaration beats the
        ``[metrics]`` table of ``nbtrack.toml``, which beats the guess from the metric's name;
        the summary's "better"/"worse", the compare widget's best values and later sweeps
        and gates all use it. The directions are stored with the run. A bad value is a
        one-line :class:`~nbtrack.errors.UsageError`.
        """
        goals = parse_goals(directions)
        if self._closed:
            self._warn(f"track.goal after run #{self.number} finished was ignored")
            return
        self._goals.update(goals)
        self._safe_update({"goals": self._declared_goals()})

    def register(
        self, model: str, artifact: str | None = None, *, description: str | None = None
    ) -> Any:
        """Register this run's artifact ``artifact`` (saved with :meth:`artifact`; may be left
        out when there is one) as the next version of model ``model``, with the metrics
        logged so far: ``track.register("digits-classifier", artifact="model")``.

        Returns the :class:`~nbtrack.registry.ModelVersion`, or ``None`` with a warning on
        the run when it cannot be registered: the cell goes on. A script re-run by
        ``nbtrack export --verify`` registers nothing. See docs/registry.md.
        """
        if os.environ.get(config.ENV_VERIFYING):
            self._warn(f"model {model!r} not registered: this run only checks a reproduction")
            return None
        from nbtrack.registry.core import default_registry

        try:
            self.flush()
            if self._git_thread is not None:
                self._git_thread.join(timeout=5.0)  # the version records the commit
            git = self._clean({"git": self._git})["git"] if self._git is not None else None
            return default_registry(self.store, cwd=self.spec.cwd).register(
                self.id, model, artifact, description=description, metrics=self.metrics, git=git
            )
        except NbtrackError as exc:
            self._warn(f"model {model!r} was not registered: {exc}")
            return None

    @property
    def goals(self) -> dict[str, Direction]:
        """The directions declared so far (``track.goal``, ``nbtrack.run(goals=...)``)."""
        return dict(self._goals)

    def _declared_goals(self) -> dict[str, dict[str, str]]:
        return {m: goal_entry(d, "declared") for m, d in self._goals.items()}

    def _resolved_goals(self) -> dict[str, dict[str, str]]:
        """Every logged or declared metric's direction, as stored when the run ends."""
        try:
            configured = configured_goals(self.spec.cwd)
        except NbtrackError as exc:
            # A bad nbtrack.toml must not cost the run: say so, judge by declarations and names.
            self._warn(f"metric directions from nbtrack.toml not used: {exc}")
            configured = {}
        return resolve_goals(self.metrics, self._goals, configured)

    @property
    def steps(self) -> dict[str, int]:
        """The step at which each metric was last logged."""
        return dict(self._steps)

    @property
    def metrics(self) -> dict[str, float]:
        """The latest value of each metric logged so far."""
        latest = dict(self._latest)
        for key, _step, value, _ts in list(self._buffer):
            latest[key] = value
        return latest

    # -- context manager ----------------------------------------------------------------
    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self.finish(exc=exc)
        # Its own stop (stop_at) ends the block, not the script: the code after it runs,
        # as the notebook went on after the pruned trial.
        return self._stopped_by(exc) is not None

    def _stopped_by(self, exc: BaseException | None) -> RunStopped | None:
        """``exc`` when it is this run's own :class:`RunStopped`."""
        return exc if isinstance(exc, RunStopped) and exc.run_id == self.id else None

    # -- lifecycle ----------------------------------------------------------------------
    def _warn(self, message: str) -> None:
        self._captures.warn(message)

    def _clean(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` as the store may hold them: every secret redacted (nbtrack.secrets)."""
        return self._redactor.fields(fields)

    def _safe_update(self, fields: dict[str, Any]) -> None:
        """Write ``fields`` (a note, tags, inputs, goals, params) to the run now. When the
        store is unreachable or busy they are held, with any held before, and go with the
        next update or the run's final write (or its outbox continuation): a note written
        during a network blip is not lost. Another failure is a warning on the run."""
        fields = {**self._held, **fields}
        try:
            self.store.update_run(self.id, self._clean(fields))
        except (StoreUnreachableError, StoreLockedError):
            self._held = fields
        except NbtrackError as exc:
            self.warnings.append(f"could not update the run: {exc}")
        else:
            self._held = {}

    def _capture(
        self, what: str, fn: Callable[[], Any], default: Any = None, *, store_errors: bool = True
    ) -> Any:
        return self._captures(what, fn, default, store_errors=store_errors)

    def flush(self) -> None:
        """Write buffered metrics to the store now (the background thread does this too)."""
        with self._flush_lock:
            # Artifacts held while the database was down go first (they were saved before
            # the points still buffered were sent); still down, this raises like a send.
            self._send_kept_artifacts()
            buffer = self._buffer
            count = len(buffer)
            if not count:
                now = time.time()
                if now - self._beat > HEARTBEAT_SECONDS:
                    # A run that logs nothing for a while is still alive: say so, or readers
                    # on other hosts would take it for crashed.
                    self.store.update_run(self.id, {"heartbeat": now})
                    self._beat = now
                return
            self._beat = time.time()
            if self._resync:
                count = self._resync_buffer(count)
                if not count:
                    return
            points = buffer[:count]
            for key, _step, value, _ts in points:
                self._latest[key] = value
            try:
                self.store.append_metrics(self.id, points, self._latest)
            except StoreUnreachableError:
                self._resync = True
                raise
            # What the store has of each metric: a continuation goes on from there.
            self._flushed.update(map(operator.itemgetter(0), points))
            # Appends made while we wrote sit after `count` and survive this delete.
            del buffer[:count]

    def _resync_buffer(self, count: int) -> int:
        """After a send met an unreachable store (its connection dropped; a database
        store connects again on this call): drop from the head of the buffer, per metric,
        the points the store has beyond those it acknowledged (``_flushed``), so a batch
        it committed while the acknowledgement was lost is not written twice. Returns the
        number of buffered points left of the first ``count``. Raises what the store
        raises (still unreachable: the flag stays, the next flush asks again)."""
        buffer = self._buffer
        present = self.store.metric_counts(self.id)
        held = Counter(key for key, _step, _value, _ts in buffer[:count])
        extra = {key: n - self._flushed[key] for key, n in present.items()}
        self._resync = False
        if any(not 0 <= n <= held[key] for key, n in extra.items()):
            # Not what one lost acknowledgement leaves (another writer, a wiped run):
            # send everything rather than guess which points the store has.
            shown = ", ".join(
                f"{key!r}: {present[key]} (sent {self._flushed[key]})" for key in sorted(extra)
            )
            self._warn(
                "after the store's connection dropped it held metric points this run did not "
                f"expect ({shown}); the buffered points were sent as they are"
            )
            return count
        if not any(extra.values()):
            return count
        left = dict(extra)
        kept = []
        for point in buffer[:count]:
            if left.get(point[0]):
                left[point[0]] -= 1
            else:
                kept.append(point)
        # One slice assignment: points logged meanwhile sit after `count` and survive.
        buffer[:count] = kept
        self._flushed.update(extra)
        return len(kept)

    def add_listener(self, callback: Callable[[ActiveRun], None]) -> None:
        """Call ``callback(run)`` after each background flush (for live displays)."""
        self._listeners.append(callback)

    def finish(
        self,
        exc: BaseException | None = None,
        namespace: Mapping[str, Any] | None = None,
        *,
        status: RunStatus | None = None,
    ) -> None:
        """End the run: finished, failed (an exception) or interrupted (KeyboardInterrupt).

        ``status`` overrides that judgement (a sweep ends a pruned trial with
        :attr:`RunStatus.PRUNED`; ``exc`` then says why). This run's own
        :class:`RunStopped` ends it :attr:`RunStatus.PRUNED`, with where it stopped in
        ``extra["stopped_at"]``.
        """
        if self._closed:
            return
        self._closed = True
        self.end_time = time.time()
        stopped = self._stopped_by(exc)
        hook = self._log_hook
        if exc is None and isinstance(hook, StopAt) and not hook.reached:
            self._warn(
                f"stop_at: {hook.metric} was never logged at step {hook.step}, so the run "
                "went on to its end"
            )
        if exc is None:
            self.status = status or RunStatus.FINISHED
            error = None
        else:
            if stopped is not None:
                judged = RunStatus.PRUNED
            elif isinstance(exc, KeyboardInterrupt):
                judged = RunStatus.INTERRUPTED
            else:
                judged = RunStatus.FAILED
            self.status = status or judged
            # Redacted on writing (_write_final), with the secrets the cell itself may have
            # put into the environment while it ran.
            from nbtrack.capture.environment import secret_values

            self._redactor.add_values(secret_values())
            error = {
                "type": type(exc).__name__,
                "message": _safe_str(exc),
                "traceback": _format_traceback(exc),
            }
        _runs.discard(self)
        fields: dict[str, Any] = {
            "status": str(self.status),
            "end_time": self.end_time,
            "error": error,
        }
        if stopped is not None:
            # Where it stopped, so that its exported script stops there too (stop_at).
            extra = self._capture(
                "where the run stopped",
                lambda: self.store.run_row(self.id)["extra"],
                None,
                store_errors=False,
            )
            if isinstance(extra, dict):
                fields["extra"] = {**extra, "stopped_at": stopped.stopped_at}
        ns = namespace if namespace is not None else self.spec.namespace
        if ns is not None and "torch" in sys.modules:
            from nbtrack.capture.inputs import names_loaded, names_stored
            from nbtrack.capture.models import find_models

            source = self.spec.source
            models = self._capture(
                "model summaries",
                lambda: find_models(ns, names_loaded(source) | names_stored(source)),
                [],
                store_errors=False,
            )
            if models:
                fields["models"] = models
        if self.spec.capture_env:
            env_hash = self._capture("environment", self._store_environment, store_errors=False)
            if env_hash and env_hash != self._env_hash:
                fields["env_hash"] = env_hash
        goals = self._capture("metric directions", self._resolved_goals, None)
        if goals is not None:
            fields["goals"] = goals
        if self._git_thread is not None:
            self._git_thread.join(timeout=5.0 if self.spec.kind == "script" else 0.0)
            if self._git is not None:
                fields["git"] = self._git
        for column, value in self._held.items():
            fields.setdefault(column, value)  # a note or an input written while unreachable
        self._held = {}
        try:
            self._write_final(fields)
        except Exception as exc:
            if self._keep_continuation(fields, exc):
                return  # a database gone: the outbox completes the run when it is back
            # A store locked beyond the timeout: keep the metrics and the outcome in memory
            # and let the background thread write them when the lock is gone.
            self._pending = fields
            _runs.retry_later(self)
            warnings.warn(
                f"nbtrack: run #{self.number} is not fully written yet ({exc}); "
                "nbtrack keeps retrying in the background",
                TrackingWarning,
                stacklevel=2,
            )

    def _write_final(self, fields: dict[str, Any]) -> None:
        self.flush()
        fields["warnings"] = self.warnings
        fields["tags"] = self.tags
        fields["metrics"] = self._latest
        self.store.update_run(self.id, self._clean(fields))

    def _keep_continuation(self, fields: dict[str, Any], exc: BaseException) -> bool:
        """After a final write failed with ``exc``: when the run's database was unreachable,
        keep the outcome ``fields`` and the points it lacks in the database's outbox, to be
        completed by a push (:func:`nbtrack.sync.outbox.keep_continuation`); returns
        whether it was kept (``False``: another failure, or the outbox failed too)."""
        url = _database_url(self.store) if isinstance(exc, StoreUnreachableError) else None
        if url is None:
            return False
        from nbtrack.sync import outbox

        final = {
            **fields,
            "warnings": self.warnings,
            "tags": self.tags,
            "metrics": self.metrics,
            "params": self.params,
        }
        if self._git is not None:
            final.setdefault("git", self._git)
        row = {
            "name": self.name,
            "kind": self.spec.kind,
            "start_time": self.start_time,
            "notebook": self.spec.notebook,
            "project": self.spec.project,
        }
        # Held throughout: the tail and the count of points the database has must describe
        # one moment, and no flush may send the tail while it is being kept.
        with self._flush_lock:
            tail = list(self._buffer)
            try:
                kept = outbox.open_outbox(url)
                lost = "environment not stored: the store was not writable"
                if lost in self.warnings:
                    # The environment changed during the run and could not reach the
                    # database (finish): its snapshot goes to the outbox, copied first.
                    final["env_hash"] = store_environment(kept)
                    final["warnings"] = [w for w in self.warnings if w != lost]
                outbox.keep_continuation(
                    url,
                    self.id,
                    self.number,
                    self._clean(row),
                    self._clean(final),
                    tail,
                    dict(self._flushed),
                    str(exc),
                    [item.record for item in self._kept_artifacts],
                )
            except (StoreError, OSError):
                return False
            del self._buffer[: len(tail)]  # kept: a later flush must not send them again
            self._kept_artifacts.clear()  # their records are in the continuation now
        return True

    def _store_environment(self) -> str:
        return store_environment(self.store)

    def _start_git(self, folder: str) -> None:
        cached = _git_cache.get(folder)
        if cached is not None and time.monotonic() - cached[0] < GIT_CACHE_SECONDS:
            self._git = cached[1]
            return

        def work() -> None:
            from nbtrack.capture.gitinfo import git_info

            try:
                info = git_info(folder)
            except Exception as exc:  # git_info should not raise; be safe in a thread
                info = {"error": f"{type(exc).__name__}: {exc}"}
            _git_cache[folder] = (time.monotonic(), info)
            self._git = info
            if self._closed:
                # The run finished before git answered: write it on our own.
                try:
                    self.store.update_run(self.id, self._clean({"git": info}))
                except NbtrackError:
                    pass

        self._git_thread = threading.Thread(target=work, name="nbtrack-git", daemon=True)
        self._git_thread.start()


#: Seconds between heartbeats of a run that logs nothing (a reader on another host marks a
#: run crashed when its heartbeat is much older; see Store.mark_crashed).
HEARTBEAT_SECONDS = 30.0

#: Git state is asked of git at most this often per folder (``git status`` costs ~5 ms and,
#: run in a thread, competes with the user's cell); a run within this window reuses it.
GIT_CACHE_SECONDS = 10.0
_git_cache: dict[str, tuple[float, dict[str, Any]]] = {}


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _safe_str(exc: BaseException) -> str:
    """``str(exc)``, or a stand-in when the exception's own ``__str__`` fails."""
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__}: str() failed>"


def _format_traceback(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(type(exc), exc, _user_frames(exc.__traceback__)))
    except Exception:
        return f"{type(exc).__name__}: {_safe_str(exc)}"


def _user_frames(tb: Any) -> Any:
    """The traceback without nbtrack's own leading frames (the magic that ran the cell)."""
    while (
        tb is not None
        and tb.tb_next is not None
        and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR)
    ):
        tb = tb.tb_next
    return tb


def _database_url(store: Store) -> str | None:
    """The URL of a database ``store`` (``None`` for a folder: it never goes unreachable)."""
    pg = sys.modules.get("nbtrack.store.postgres")
    if pg is None or not isinstance(store, pg.PostgresStore):
        return None
    return str(store.location)


def _redactor_for(spec: RunSpec, cap: Captures | None = None) -> Redactor:
    """The redactor for a run: the project's secret rules (``[secrets]`` in nbtrack.toml)
    and this process's secret environment values. A bad ``[secrets]`` table is a warning
    on the run (through ``cap``) and the built-in rules apply."""
    from nbtrack.capture.environment import secret_values

    try:
        rules = project_rules(spec.cwd)
    except NbtrackError as exc:
        if cap is not None:
            cap.warn(f"secret rules from nbtrack.toml not used (built-in rules apply): {exc}")
        rules = DEFAULT_RULES
    return Redactor(rules, secret_values())


def _without_secrets(spec: RunSpec, redactor: Redactor | None = None) -> RunSpec:
    """The spec with every secret redacted (:mod:`nbtrack.secrets`), before anything of it
    is captured or stored.

    Secret literals in the code and history (``api_key = "sk-..."``, ``password = "..."``,
    ``f(token="...")``) become ``'<redacted>'``; credential formats, secret environment
    values and the values of those literals are redacted wherever they appear (code,
    history, params, note, tags, ``--set`` overrides, the magic line, a script's argv).
    A cell that ran ``%env HF_TOKEN=...`` or a script given ``--token ...`` would
    otherwise carry the secret into the store.
    """
    from dataclasses import replace

    if redactor is None:
        redactor = _redactor_for(spec)
    # Learn every secret value first: one typed in a later cell may be repeated earlier.
    redactor.learn_params(spec.params)
    overrides = spec.extra.get("overrides")
    if isinstance(overrides, Mapping):
        redactor.learn_params(overrides)
    source, code, *texts = redactor.code_many(
        [spec.source, spec.code, *(entry.source for entry in spec.history)]
    )
    history = [
        entry if cleaned is entry.source else HistoryEntry(entry.execution_count, cleaned)
        for entry, cleaned in zip(spec.history, texts, strict=True)
    ]
    text = redactor.fields(
        {"name": spec.name, "note": spec.note, "tags": spec.tags, "extra": spec.extra}
    )
    return replace(
        spec,
        name=text["name"],
        source=source,
        code=code,
        history=history,
        params=redactor.params(spec.params)[0],
        extra=text["extra"],
        note=text["note"],
        tags=text["tags"],
    )


class DetachedRun:
    """What ``track`` is when a run could not be started: every call does nothing.

    The cell still runs (a store that cannot be written must never break it); the reason
    was printed when the cell started.
    """

    id = None
    number = None

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<nbtrack run not recorded: {self.reason}>"

    def __enter__(self) -> DetachedRun:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        return None  # the block's own exception goes on, as without nbtrack

    def log(self, step: int | None = None, **metrics: Any) -> None:
        """Does nothing: this run is not recorded."""

    def artifact(self, obj: Any, name: str | None = None) -> None:
        """Does nothing: this run is not recorded."""

    def tag(self, *tags: str) -> None:
        """Does nothing: this run is not recorded."""

    def note(self, text: str) -> None:
        """Does nothing: this run is not recorded."""

    def log_params(self, **params: Any) -> None:
        """Does nothing: this run is not recorded."""

    def input(self, obj: Any, name: str) -> None:
        """Does nothing: this run is not recorded."""

    def goal(self, **directions: str) -> None:
        """Does nothing: this run is not recorded."""

    def register(
        self, model: str, artifact: str | None = None, *, description: str | None = None
    ) -> None:
        """Does nothing: this run is not recorded, so there is nothing to register."""


def capture_start(
    spec: RunSpec, store: Store, cap: Captures, redactor: Redactor | None = None
) -> StartFacts:
    """Everything a run records at its start, in the order it must happen: seed the RNGs,
    snapshot their state, then params, inputs, code, history and the environment.

    ``spec`` is already cleaned of secrets (:func:`_without_secrets`); params found
    elsewhere (a notebook's ``parameters`` cell) and inputs' paths are redacted here by
    ``redactor`` (default: the built-in rules), and the names of the params recorded as
    ``<redacted>`` go to ``extra["redacted_params"]``. Failures become warnings through
    ``cap``; only a store that cannot be written raises (:class:`~nbtrack.errors.StoreError`).
    """
    from nbtrack.capture import params as params_capture
    from nbtrack.capture import seeds

    source = spec.source
    # No source to analyse (a script records its file as code, not as source): no
    # import of torch to find, and parsing "" at every run start is not free.
    torch_too = "torch" in sys.modules or (
        bool(source) and bool(cap("torch use", lambda: seeds.cell_imports_torch(source), False))
    )
    if torch_too and "torch" not in sys.modules:
        # The cell is about to import torch anyway; importing it first lets us seed it and
        # snapshot its RNG state before the cell draws from it.
        cap("torch import", lambda: __import__("torch"))
        torch_too = "torch" in sys.modules
    extra: dict[str, Any] = dict(spec.extra)
    if spec.cwd:
        extra.setdefault("cwd", spec.cwd)  # where the code ran: `export --verify` runs there
    seed = spec.seed
    numpy_too = (
        "numpy" in sys.modules
        or seed is not None
        or spec.kind == "script"
        or bool(cap("numpy use", lambda: seeds.cell_may_load_numpy(source), True))
    )
    if seed is not None:
        extra["seeded"] = cap(
            "seeding",
            lambda: seeds.seed_everything(seed, torch_too=torch_too, numpy_too=numpy_too),
            [],
        )
    if spec.deterministic:
        extra["deterministic"] = cap(
            "deterministic mode", lambda: seeds.set_deterministic(torch_too=torch_too), {}
        )
    rng = cap("RNG state", lambda: seeds.rng_state(torch_too=torch_too, numpy_too=numpy_too))
    rng_hash = None
    if rng is not None:
        rng_hash = cap("RNG state", lambda: store.put_blob("rng", json.dumps(rng).encode()))
    seed_calls = cap("seed calls", lambda: seeds.find_seed_calls(source), []) if source else []

    params: dict[str, Any] = {}
    if spec.kind == "cell":

        def notebook_defaults() -> dict[str, Any]:
            found: dict[str, Any] = {}
            if spec.notebook:
                for cell in params_capture.notebook_parameter_cells(spec.notebook):
                    found.update(params_capture.extract_params(cell))
            found.update(params_capture.papermill_params(e.source for e in spec.history))
            return found

        params.update(cap("papermill parameters", notebook_defaults, {}))
        params.update(cap("parameters", lambda: params_capture.extract_params(source), {}))
    params.update(spec.params)
    if redactor is None:
        redactor = Redactor()
    params, redacted = redactor.params(params)
    if redacted:
        extra["redacted_params"] = redacted

    inputs: list[dict[str, Any]] = []
    if spec.capture_data and spec.namespace is not None:

        def data() -> list[dict[str, Any]]:
            from nbtrack.capture.inputs import cell_inputs

            fps, problems = cell_inputs(source, spec.namespace or {}, cwd=spec.cwd)
            for problem in problems:
                cap.warn(problem)
            return [fp.to_dict() for fp in fps]

        inputs = redactor.value(cap("input fingerprints", data, []))

    code_hash = cap("code", lambda: store.put_blob("code", spec.code.encode("utf-8")))
    history: list[list[Any]] = []
    if spec.history:
        hashes = cap(
            "history", lambda: store.put_texts("code", [e.source for e in spec.history]), []
        )
        history = [[e.execution_count, h] for e, h in zip(spec.history, hashes)]

    env_hash = cap("environment", lambda: store_environment(store)) if spec.capture_env else None
    return StartFacts(
        params=params,
        extra=extra,
        seed_calls=seed_calls,
        rng_hash=rng_hash,
        inputs=inputs,
        code_hash=code_hash,
        history=history,
        env_hash=env_hash,
    )


def store_environment(store: Store) -> str:
    """Snapshot the environment into ``store`` (deduplicated by content); returns its hash."""
    from nbtrack.capture.environment import environment

    env = environment()
    return store.put_blob("env", json.dumps(env, sort_keys=True, default=str).encode())


def start_run(spec: RunSpec, store: Store | str | os.PathLike[str] | None = None) -> ActiveRun:
    """Start recording a run (kept for compatibility: see :meth:`ActiveRun.start`)."""
    return ActiveRun.start(spec, store)


def start_script_run(
    *,
    name: str | None,
    seed: int | None,
    deterministic: bool,
    params: dict[str, Any] | None,
    tags: Sequence[str],
    note: str | None,
    store: Any,
    capture_env: bool,
    capture_data: bool,
    goals: Mapping[str, str] | None = None,
    stop_at: Mapping[str, Any] | None = None,
    project: str | None = None,
) -> ActiveRun | DetachedRun:
    """Start a run for script code; the code recorded is the ``__main__`` file's source.

    A store that cannot be used gives, with one ``nbtrack: this run is not recorded: …``
    line on stderr, a :class:`DetachedRun` (``with`` works, every call does nothing).

    ``stop_at``: end the run once that metric is logged at that step (:func:`stop_point`).
    """
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    code = _script_source(main_file) if main_file else ""
    spec = RunSpec(
        name=name,
        seed=seed,
        deterministic=deterministic,
        tags=list(tags),
        note=note,
        params=dict(params or {}),
        capture_env=capture_env,
        capture_data=capture_data,
        kind="script",
        source="",
        code=code,
        cwd=os.getcwd(),
        extra={"argv": list(sys.argv), "script": os.path.abspath(main_file) if main_file else None},
        goals=dict(goals or {}),
        stop_at=stop_at,
        project=project,
    )
    try:
        return ActiveRun.start(spec, store)
    except StoreError as exc:
        # The store cannot be used (refused, locked, corrupt, read-only…): the script's
        # block still runs, as a notebook cell does (the %%track magic's rule), with a
        # stand-in that accepts every `track` call; a bad argument (UsageError) still raises.
        print(f"nbtrack: this run is not recorded: {exc}", file=sys.stderr)
        return DetachedRun(str(exc))


def _script_source(path: str) -> str:
    """The text of the script ``path`` ("" when it cannot be read), read again only when
    its size or modification time changed: a script that runs many runs (a sweep, an
    ingest loop) would otherwise read and decode itself at every run start."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return ""
    if not stat.S_ISREG(info.st_mode):
        return ""
    key = (info.st_mtime_ns, info.st_size)
    cached = _script_cache.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        with open(path, encoding="utf-8") as fh:
            code = fh.read()
    except (OSError, UnicodeDecodeError):
        return ""
    _script_cache.clear()  # one script per process, in practice: keep only the latest
    _script_cache[path] = (key, code)
    return code


_script_cache: dict[str, tuple[tuple[int, int], str]] = {}


class _Runs:
    """This process's run bookkeeping: the runs being recorded, finished runs whose last
    writes met a locked store (retried), and the one background thread that flushes both."""

    def __init__(self) -> None:
        self.active: list[ActiveRun] = []
        self.retry: list[ActiveRun] = []
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._exit_first = False

    def current(self) -> ActiveRun | None:
        """The innermost active run."""
        with self.lock:
            return self.active[-1] if self.active else None

    def add(self, run: ActiveRun) -> None:
        """A run started: flush it in the background from now on."""
        with self.lock:
            self.active.append(run)
        if not self._exit_first and "nbtrack.store.postgres" in sys.modules:
            # Exit handlers run last-registered first: the database store's (which closes
            # its connections) came after ours, so ours moves behind it to still write
            # the runs left open.
            self._exit_first = True
            atexit.unregister(self.finish_at_exit)
            atexit.register(self.finish_at_exit)
        self.ensure_flusher()

    def discard(self, run: ActiveRun) -> None:
        """A run finished (or failed): no more background flushes for it."""
        with self.lock:
            if run in self.active:
                self.active.remove(run)

    def retry_later(self, run: ActiveRun) -> None:
        """A finished run whose final write failed: the flusher retries it."""
        with self.lock:
            self.retry.append(run)
        self.ensure_flusher()

    def ensure_flusher(self) -> None:
        """Start the background flush thread unless it is running."""
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="nbtrack-flush", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        interval = config.flush_interval()
        while True:
            time.sleep(interval)
            self.drain_retries()
            with self.lock:
                runs = list(self.active)
            for run in runs:
                try:
                    run.flush()
                except Exception:  # a locked store: keep the buffer, try again next time
                    continue
                for listener in list(run._listeners):
                    try:
                        listener(run)
                    except Exception:
                        run._listeners.remove(listener)

    def drain_retries(self) -> None:
        """Write the finished runs whose last writes met a locked store; keep those failing,
        except those whose database is unreachable: their ends go to its outbox."""
        with self.lock:
            pending = list(self.retry)
        for run in pending:
            try:
                run._write_final(run._pending)
            except Exception as exc:
                if not run._keep_continuation(run._pending, exc):
                    continue
            with self.lock:
                self.retry.remove(run)

    def finish_at_exit(self) -> None:
        """A process that exits with runs still open (no ``with``, or a kernel shut down
        mid-cell): keep their metrics and mark them crashed rather than leave them running."""
        self.drain_retries()
        with self.lock:
            runs = list(self.active)
        for run in runs:
            fields: dict[str, Any] = {
                "status": "crashed",
                "end_time": time.time(),
                "warnings": run.warnings,
                "error": {
                    "type": "Crashed",
                    "message": "the process exited before the run finished",
                    "traceback": "",
                },
            }
            try:
                run.flush()
                run.store.update_run(run.id, run._clean(fields))
            except Exception as exc:
                # A database gone: its outbox keeps the end; any other failure leaves the
                # run to be marked crashed by the next reader.
                run._keep_continuation(fields, exc)


_runs = _Runs()
atexit.register(_runs.finish_at_exit)


__all__ = [
    "ActiveRun",
    "Captures",
    "RunSpec",
    "RunStopped",
    "StopAt",
    "stop_point",
    "StartFacts",
    "capture_start",
    "TrackingWarning",
    "current_run",
    "start_run",
    "start_script_run",
    "dumps",
]
