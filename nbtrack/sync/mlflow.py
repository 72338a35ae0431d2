"""Push nbtrack runs to an MLflow tracking server and pull MLflow runs into a store.

Only MLflow's own client (:class:`mlflow.MlflowClient`) talks to the server. MLflow is an
optional dependency (``pip install 'nbtrack[mlflow]'``), imported here only when used.

Idempotent both ways through tags: a pushed MLflow run carries ``nbtrack.run_id`` (the
global id), and :data:`COMPLETE_TAG` set last, so a push killed midway leaves a run without
it that the next push deletes and writes again; a run is looked for in every active
experiment, so one pushed once is not pushed again to another. A run's artifacts are read
(and checked against their hashes) before anything of it is written, so a run whose content
cannot be read is reported as not copied and the others still go. A pulled run keeps the
MLflow run id as its nbtrack id (both are 32 hex digits), so pulling again finds it; a run
that MLflow got from nbtrack comes back under its original nbtrack id, and one an nbtrack
push left half-written is not pulled. Pull imports oldest first, so numbers follow time.

Projects (docs/team.md#projects) map to experiments: without ``--experiment`` a run is pushed
to the experiment named after its project (``nbtrack`` for a run with none), and a pulled
MLflow run's project is its experiment's name; a run that MLflow got from nbtrack keeps the
project it had (its ``nbtrack.project`` tag, none without one).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from nbtrack.errors import AmbiguousRunError, ArtifactError, NbtrackError, SyncError
from nbtrack.secrets import redact_text
from nbtrack.store.artifact_store import file_hash
from nbtrack.store.base import TrackingStore
from nbtrack.sync.stores import CONTINUATION, INCOMPLETE, SyncReport, needs_copy

__all__ = [
    "COMPLETE_TAG",
    "PROJECT_TAG",
    "RUN_ID_TAG",
    "experiment_for",
    "pull_mlflow",
    "push_mlflow",
]

RUN_ID_TAG = "nbtrack.run_id"
COMPLETE_TAG = "nbtrack.sync_complete"
PROJECT_TAG = "nbtrack.project"
DEFAULT_EXPERIMENT = "nbtrack"
# MLflow's limits per log_batch call and on a param value's length.
_BATCH_METRICS, _BATCH_PARAMS, _BATCH_TAGS, _PARAM_LEN = 1000, 100, 100, 6000
_STATUS_TO_MLFLOW = {
    "running": "RUNNING",
    "finished": "FINISHED",
    "failed": "FAILED",
    "crashed": "FAILED",
    "interrupted": "KILLED",
    "pruned": "KILLED",
}
_STATUS_FROM_MLFLOW = {
    "RUNNING": "running",
    "SCHEDULED": "running",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "interrupted",
}


def _client(uri: str) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise SyncError(
            "MLflow interop needs the mlflow client: pip install 'nbtrack[mlflow]'"
        ) from None
    return MlflowClient(tracking_uri=uri)


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """MLflow's client reads its settings from the environment: set some for a while."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


#: MLflow prints a "View run" line to stdout as a run ends, which would break ``--json``.
_QUIET = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
# MLflow retries a refused connection for minutes; the first call only asks whether the
# server is there, so it fails at once with one line. Later calls keep MLflow's retries,
# which is what a flaky connection needs.
_NO_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


def _connect(
    uri: str, experiment: str | None, *, create: bool, again: str = "push"
) -> tuple[Any, list[str]]:
    """The client and the experiment ids to use (every active one for no ``experiment``
    and not ``create``); one clear line, ending "then ``again`` again", when the server is
    not there."""
    client = _client(uri)
    try:
        with _environ(**_NO_RETRIES):
            if experiment is None and not create:
                return client, _active_experiment_ids(client)
            name = experiment or DEFAULT_EXPERIMENT
            got = client.get_experiment_by_name(name)
    except NbtrackError:
        raise
    except Exception as exc:  # MlflowException, requests' ConnectionError, ...
        raise SyncError(
            f"cannot reach the MLflow server at {redact_text(uri)} "
            f"({redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:200]})"
            f"; check that it is running and the URL is right, then {again} again"
        ) from None
    if got is None:
        if not create:
            raise SyncError(f"no MLflow experiment named {name!r} at {redact_text(uri)}")
        return client, [client.create_experiment(name)]
    return client, [got.experiment_id]


def _active_experiment_ids(client: Any) -> list[str]:
    """The ids of every active experiment at the server, all pages."""
    ids: list[str] = []
    page_token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=page_token)
        ids += [str(e.experiment_id) for e in page]
        page_token = page.token
        if not page_token:
            return ids


def experiment_for(row: dict[str, Any], experiment: str | None) -> str:
    """The MLflow experiment a run is pushed to: ``experiment`` (``--experiment``) when
    given, else the run's project, else ``nbtrack``."""
    return experiment or row.get("project") or DEFAULT_EXPERIMENT


class _Experiments:
    """Experiment ids by name at one server, looked up (or created) once each."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._ids: dict[str, str] = {}
        self._names: dict[str, str | None] = {}

    def id(self, name: str) -> str:
        """The id of experiment ``name``, created when the server has none of that name."""
        if name not in self._ids:
            got = self.client.get_experiment_by_name(name)
            self._ids[name] = got.experiment_id if got else self.client.create_experiment(name)
        return self._ids[name]

    def name(self, experiment_id: str) -> str | None:
        """The name of experiment ``experiment_id`` (``None`` if the server forgot it)."""
        if experiment_id not in self._names:
            got = self.client.get_experiment(experiment_id)
            self._names[experiment_id] = got.name if got is not None else None
        return self._names[experiment_id]


def _key(name: object) -> str:
    """A param or metric name as MLflow accepts it (letters, digits, ``_-. /``)."""
    return re.sub(r"[^\w\-. /]", "_", str(name), flags=re.ASCII)[:250] or "_"


@contextlib.contextmanager
def _refused(what: str, uri: str) -> Iterator[None]:
    """MLflow's errors while writing or reading one run, as one line that says what to do."""
    try:
        yield
    except NbtrackError:
        raise
    except Exception as exc:  # MlflowException, requests' errors: MLflow has no one base
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SyncError(
            f"{what} failed at the MLflow server {redact_text(uri)} "
            f"({redact_text(first)[:300]}); run the same command again to finish"
        ) from None


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:_PARAM_LEN]


def _param_value(text: str) -> Any:
    """An MLflow param (always text) as the value it spells: ``"0.1"`` -> 0.1, else text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float, bool, list, dict)) else text


def _tagged(client: Any, experiment_ids: Sequence[str], run_id: str) -> list[Any]:
    """The MLflow runs in ``experiment_ids`` that carry nbtrack run ``run_id``'s id tag."""
    if not experiment_ids:
        return []
    return list(
        client.search_runs(
            list(experiment_ids),
            filter_string=f"tags.`{RUN_ID_TAG}` = '{run_id}'",
            max_results=50,
        )
    )


def _complete(run: Any) -> bool:
    return bool(run.data.tags.get(COMPLETE_TAG) == "true")


def _find(client: Any, experiment_ids: list[str], run_id: str) -> Any:
    """The MLflow run of nbtrack run ``run_id`` (a complete one first): looked for in
    ``experiment_ids``, then in every other active experiment (a run pushed once is not
    pushed again to another experiment, so it may be in any)."""
    found = _tagged(client, experiment_ids, run_id)
    if not found:
        others = [e for e in _active_experiment_ids(client) if e not in experiment_ids]
        found = _tagged(client, others, run_id)
    complete = [run for run in found if _complete(run)]
    return (complete or found or [None])[0]


def _export_script(store: TrackingStore, run_id: str) -> str | None:
    from nbtrack.export.runs import export_run
    from nbtrack.query import load_record

    try:
        return export_run(load_record(store, run_id)).script  # type: ignore[arg-type]
    except NbtrackError:
        return None  # a run with no history, or one that cannot be exported: no script


def _copy_checked(store: TrackingStore, name: str, digest: str, local: Path) -> Path:
    """Artifact ``name``'s content ``digest`` copied to ``local`` and checked against its
    hash; :class:`~nbtrack.errors.ArtifactError` (one line) when it cannot be read."""
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(store.artifact_file(digest), local)
        actual, _ = file_hash(local)
    except ArtifactError as exc:
        raise ArtifactError(f"artifact {name!r}: {exc}") from None
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise ArtifactError(
            f"artifact {name!r} cannot be read (content {digest[:12]}, "
            f"{exc.strerror or type(exc).__name__}{where}); restore it, or point this shell "
            "at the store's artifact storage (NBTRACK_ARTIFACTS), then push again"
        ) from None
    if actual != digest:
        raise ArtifactError(
            f"artifact {name!r} is damaged: its content no longer matches its hash "
            f"{digest[:12]}; run `nbtrack gc --verify` on the store"
        )
    return local


def _read_artifacts(store: TrackingStore, run_id: str, tmp: Path) -> list[tuple[Path, str]]:
    """Every artifact of run ``run_id`` as a checked local copy in ``tmp`` and the MLflow
    folder it goes to (a folder artifact's files keep their paths under its name). Read
    before anything of the run is written to MLflow, so a run whose content is unreadable
    leaves nothing there."""
    staged = []
    for name, kind, digest, _size, meta in store.artifacts(run_id):
        folder = str(Path(name).parent).strip("./")
        base = "nbtrack" + (f"/{folder}" if folder else "")
        leaf = Path(name).name or digest
        if kind == "dir":
            for rel, file_digest in sorted((meta.get("files") or {}).items()):
                # The content file is named by its hash; MLflow shows the file's own name.
                local = Path(tmp, str(file_digest), Path(rel).name)
                inner = str(Path(leaf, rel).parent)
                staged.append(
                    (_copy_checked(store, name, str(file_digest), local), f"{base}/{inner}")
                )
        else:
            local = Path(tmp, digest, leaf)
            staged.append((_copy_checked(store, name, digest, local), base))
    return staged


def _push_one(
    client: Any,
    experiment_id: str,
    store: TrackingStore,
    row: dict[str, Any],
    artifacts: list[tuple[Path, str]],
    tmp: Path,
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    run_id = str(row["id"])
    tags = {
        RUN_ID_TAG: run_id,
        "nbtrack.number": str(row["number"]),
        "nbtrack.kind": str(row["kind"]),
        "nbtrack.status": str(row["status"]),
    }
    if row.get("name"):
        tags["nbtrack.name"] = str(row["name"])
    if row.get("notebook"):
        tags["mlflow.source.name"] = str(row["notebook"])
    if row.get("note"):
        tags["mlflow.note.content"] = str(row["note"])
    if row.get("seed") is not None:
        tags["nbtrack.seed"] = str(row["seed"])
    if row.get("project"):
        tags[PROJECT_TAG] = str(row["project"])
    for tag in row.get("tags") or []:
        tags[f"nbtrack.tag.{tag}"] = "true"
    created = client.create_run(
        experiment_id,
        start_time=int(float(row["start_time"]) * 1000),
        tags=tags,
        run_name=row.get("name") or f"nbtrack-{row['number']}",
    )
    mlflow_id = created.info.run_id
    params = [Param(_key(k), _param_text(v)) for k, v in (row.get("params") or {}).items()]
    for start in range(0, len(params), _BATCH_PARAMS):
        client.log_batch(mlflow_id, params=params[start : start + _BATCH_PARAMS])
    metrics = [
        Metric(_key(key), float(value), int(float(ts) * 1000), int(step))
        for key, series in store.metric_history(run_id).items()
        for step, value, ts in series
    ]
    for start in range(0, len(metrics), _BATCH_METRICS):
        client.log_batch(mlflow_id, metrics=metrics[start : start + _BATCH_METRICS])
    for local, folder in artifacts:
        client.log_artifact(mlflow_id, str(local), folder)
    script = _export_script(store, run_id)
    if script is not None:
        path = Path(tmp, f"run_{row['number']}.py")
        path.write_text(script, encoding="utf-8")
        client.log_artifact(mlflow_id, str(path), "nbtrack/script")
    status = _STATUS_TO_MLFLOW.get(str(row["status"]), "FINISHED")
    if status != "RUNNING":
        end = row.get("end_time") or row.get("heartbeat") or row["start_time"]
        client.set_terminated(mlflow_id, status, int(float(end) * 1000))
    # The last write: until it is there the MLflow run counts as half-written.
    client.log_batch(mlflow_id, tags=[RunTag(COMPLETE_TAG, "true")])


def _stale(client: Any, experiments: list[str], row: dict[str, Any]) -> list[Any] | None:
    """The MLflow runs of ``row`` to replace (``[]``: none there yet), or ``None`` when
    MLflow has it complete in any of ``experiments``."""
    found = _tagged(client, experiments, str(row["id"]))
    for run in found:
        tags = run.data.tags
        if _complete(run) and not (
            tags.get("nbtrack.status") == "running" and row["status"] != "running"
        ):
            return None
    return found  # half-written, or pushed while running


def push_mlflow(
    store: TrackingStore,
    uri: str,
    refs: Sequence[object] = (),
    *,
    experiment: str | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> SyncReport:
    """Write runs (all, or those ``refs`` name) to the MLflow server at ``uri``.

    Each becomes an MLflow run with its params, metrics with their steps, tags (nbtrack id,
    number, name, tags), artifacts and, when the run exports, its script. A run already
    there (by its ``nbtrack.run_id`` tag) is skipped; one left half-written or pushed while
    still running is written again.
    """
    with _environ(**_QUIET):
        return _push_all(store, uri, refs, experiment, progress)


def _push_all(
    store: TrackingStore,
    uri: str,
    refs: Sequence[object],
    experiment: str | None,
    progress: Callable[[str, str], None] | None,
) -> SyncReport:
    # With --experiment every run goes there; without, each to its project's experiment,
    # created when first needed (so only reachability is checked here).
    client, _ = _connect(uri, experiment, create=experiment is not None)
    experiments = _Experiments(client)
    # A run is pushed once, whichever experiment it went to: it is looked for in all.
    with _refused("listing the MLflow experiments", uri):
        everywhere = _active_experiment_ids(client)
    report = SyncReport(store.shown, "mlflow+" + redact_text(uri))
    ids = (
        [store.resolve(ref) for ref in refs]
        if refs
        else [str(r[0]) for r in store.list_runs(columns=("id",))]
    )
    for run_id in dict.fromkeys(ids):
        row = store.run_row(run_id)
        if INCOMPLETE in (row.get("extra") or {}) or row["kind"] == "mlflow":
            continue  # half-copied here, or a run that came from MLflow: not ours to push
        if CONTINUATION in (row.get("extra") or {}):
            # An outbox's end of a run that lives in a team database (not a whole run):
            # `nbtrack push --outbox` completes it there; push that database to MLflow.
            report.failed.append(run_id)
            report.problems.append(
                f"run {run_id[:8]} not pushed: this is the end of a run of a team database, "
                "kept in its outbox; run `nbtrack push --outbox`, then push from the database"
            )
            continue
        with _refused(f"pushing run #{row['number']}", uri):
            target = experiments.id(experiment_for(row, experiment))
            stale = _stale(client, list(dict.fromkeys([target, *everywhere])), row)
        if stale is None:
            report.skipped.append(run_id)
            continue
        action = "update" if stale else "copy"
        with tempfile.TemporaryDirectory(prefix="nbtrack-push-") as tmp:
            try:
                # Read first: a run whose content cannot be read writes nothing to MLflow.
                artifacts = _read_artifacts(store, run_id, Path(tmp))
            except ArtifactError as exc:
                report.failed.append(run_id)
                report.problems.append(f"run #{row['number']} not copied: {exc}")
                continue
            with _refused(f"pushing run #{row['number']}", uri):
                for run in stale:
                    client.delete_run(run.info.run_id)
                _push_one(client, target, store, row, artifacts, Path(tmp))
        (report.copied if action == "copy" else report.updated).append(run_id)
        if progress is not None:
            progress(action, run_id)
    return report


def _pull_one(
    client: Any, store: TrackingStore, run: Any, run_id: str, uri: str, project: str | None
) -> None:
    info, data = run.info, run.data
    tags = dict(data.tags)
    user_tags = sorted(
        k[len("nbtrack.tag.") :] if k.startswith("nbtrack.tag.") else k
        for k, v in tags.items()
        if not k.startswith(("mlflow.", "nbtrack.")) or k.startswith("nbtrack.tag.")
    )
    status = _STATUS_FROM_MLFLOW.get(str(info.status), "finished")
    start = (info.start_time or 0) / 1000.0
    end = info.end_time / 1000.0 if info.end_time else None
    extra = {
        "mlflow": {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "tracking_uri": redact_text(uri),
            "artifact_uri": redact_text(str(info.artifact_uri or "")),
            "tags": {k: v for k, v in tags.items() if not k.startswith("nbtrack.tag.")},
        },
        INCOMPLETE: True,
    }
    fields = {
        "name": tags.get("nbtrack.name") or info.run_name,
        "status": status,
        "kind": "mlflow",
        "start_time": start,
        "end_time": end,
        "heartbeat": end or start,
        # Not a process here: without these the store would take the puller's pid for the
        # run's and mark a running MLflow run crashed once this process exits.
        "pid": None,
        "hostname": None,
        "note": tags.get("mlflow.note.content"),
        "notebook": tags.get("mlflow.source.name"),
        "tags": user_tags,
        "params": {k: _param_value(v) for k, v in data.params.items()},
        "extra": extra,
        "project": project,
    }
    store.create_run(run_id, fields)
    latest: dict[str, float] = {}
    for key in data.metrics:
        history = client.get_metric_history(info.run_id, key)
        points = [(key, int(m.step), float(m.value), m.timestamp / 1000.0) for m in history]
        store.append_metrics(run_id, points)
        if points:
            last = max(history, key=lambda m: (m.step, m.timestamp))
            latest[key] = float(last.value)
    extra.pop(INCOMPLETE)
    store.update_run(run_id, {"metrics": latest, "extra": extra})


def _pulled_project(names: _Experiments, run: Any) -> str | None:
    """A pulled run's project: the one it had when it came from nbtrack (its tag, none
    without one), else its experiment's name as a project name (docs/team.md#projects)."""
    from nbtrack.identity import as_project

    tags = run.data.tags
    if RUN_ID_TAG in tags:
        return as_project(tags.get(PROJECT_TAG))
    return as_project(names.name(str(run.info.experiment_id)))


def pull_mlflow(
    store: TrackingStore,
    uri: str,
    refs: Sequence[object] = (),
    *,
    experiment: str | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> SyncReport:
    """Import the runs of an MLflow server (every experiment, or ``experiment``; all, or
    those ``refs`` name: an MLflow run id or an unambiguous prefix of it, or ``last``) into
    ``store`` as runs of kind ``"mlflow"``, oldest first, so ``runs()`` and compare show
    them. Idempotent: a run pulled before is skipped unless it was still running then. A
    run an nbtrack push left half-written is not pulled."""
    with _environ(**_QUIET):
        return _pull_all(store, uri, refs, experiment, progress)


def _pullable(client: Any, experiments: list[str]) -> list[Any]:
    """The runs of ``experiments``, oldest first, without those an nbtrack push left
    half-written (its id tag and no completion tag: nbtrack's own unfinished writes)."""
    runs: list[Any] = []
    page_token = None
    while experiments:
        page = client.search_runs(experiments, max_results=1000, page_token=page_token)
        runs += [run for run in page if RUN_ID_TAG not in run.data.tags or _complete(run)]
        page_token = page.token
        if not page_token:
            break
    return sorted(runs, key=lambda run: (run.info.start_time or 0, str(run.info.run_id)))


def _select(runs: list[Any], refs: Sequence[object], where: str) -> list[Any]:
    """The runs ``refs`` name (in ``runs``' order): each an MLflow run id or an unambiguous
    prefix of it (4+ characters; a run that came from nbtrack also by its nbtrack id), or
    ``last`` (the newest). All or nothing: an unknown ref raises before anything is pulled."""
    chosen: set[str] = set()
    for ref in refs:
        text = str(ref).strip().lower()
        if text in ("last", "latest", "-1"):
            hits = runs[-1:]
        elif len(text) >= 4 and all(c in "0123456789abcdef" for c in text):
            hits = [
                run
                for run in runs
                if str(run.info.run_id).startswith(text)
                or str(run.data.tags.get(RUN_ID_TAG, "")).startswith(text)
            ]
        else:
            hits = []
        if len(hits) > 1:
            raise AmbiguousRunError(str(ref), len(hits))
        if not hits:
            raise SyncError(
                f"no MLflow run matches {str(ref)!r} at {where}; a ref here is an MLflow run "
                "id or an unambiguous prefix of it (4+ characters), or 'last'"
            )
        chosen.add(str(hits[0].info.run_id))
    return [run for run in runs if str(run.info.run_id) in chosen]


def _pull_all(
    store: TrackingStore,
    uri: str,
    refs: Sequence[object],
    experiment: str | None,
    progress: Callable[[str, str], None] | None,
) -> SyncReport:
    client, experiments = _connect(uri, experiment, create=False, again="pull")
    names = _Experiments(client)
    report = SyncReport("mlflow+" + redact_text(uri), store.shown)
    with _refused("listing the MLflow runs", uri):
        runs = _pullable(client, experiments)
    if refs:
        where = redact_text(uri) + (f" in experiment {experiment!r}" if experiment else "")
        runs = _select(runs, refs, where)
    # Oldest first, so the local numbers follow time (`last` is the newest).
    for run in runs:
        nbtrack_id = run.data.tags.get(RUN_ID_TAG)
        run_id = nbtrack_id or run.info.run_id
        try:
            target_row: dict[str, Any] | None = store.run_row(run_id)
        except NbtrackError:
            target_row = None
        source = {
            "status": _STATUS_FROM_MLFLOW.get(str(run.info.status), "finished"),
            "metrics": dict(run.data.metrics),
        }
        if target_row is not None and nbtrack_id and target_row["kind"] != "mlflow":
            report.skipped.append(run_id)  # pushed from nbtrack: the original is here
            continue
        action = needs_copy(source, target_row)
        if action is None:
            report.skipped.append(run_id)
            continue
        if action == "update":
            store.delete_runs([run_id])
        with _refused(f"pulling MLflow run {run.info.run_id}", uri):
            _pull_one(client, store, run, run_id, uri, _pulled_project(names, run))
        (report.copied if action == "copy" else report.updated).append(run_id)
        if progress is not None:
            progress(action, run_id)
    return report
