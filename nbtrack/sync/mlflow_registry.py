"""Mirror a model of nbtrack's registry into MLflow's model registry, with its aliases.

``nbtrack push --to mlflow+http://… --model NAME``: each version's run is pushed first (see
:mod:`nbtrack.sync.mlflow`), then each version becomes an MLflow model version whose source
is that artifact in the pushed run, tagged ``nbtrack.version``, ``nbtrack.hash`` and
``nbtrack.stage``; every alias points at the mirrored version. Idempotent by the
``nbtrack.version`` tag: a version mirrored before is not created again (its stage tag and
the aliases are brought up to date). nbtrack's registry stays the one that decides: gates,
approvals and the audit log are not mirrored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbtrack.errors import SyncError
from nbtrack.secrets import redact_text
from nbtrack.store.base import TrackingStore
from nbtrack.sync.mlflow import _connect, _environ, _find, _push_all, _refused
from nbtrack.sync.stores import SyncReport

__all__ = ["VERSION_TAG", "mirror_model"]

VERSION_TAG = "nbtrack.version"


def mirror_model(
    store: TrackingStore, uri: str, name: str, *, experiment: str | None = None
) -> SyncReport:
    """Mirror model ``name`` (its versions and aliases) to the MLflow registry at ``uri``;
    the report's ``copied``/``skipped`` are ``NAME/VERSION`` of the versions."""
    model = store.registry_model(name)
    if model is None:
        raise SyncError(
            f"no model named {name!r} in the registry; list them with `nbtrack models list`"
        )
    versions = store.registry_versions(int(model["id"]))
    with _environ(MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true"):
        runs = list(dict.fromkeys(str(v["run_id"]) for v in versions))
        report = _push_all(store, uri, runs, experiment, None)
        # Without --experiment the runs went to their projects' experiments: look in all.
        client, experiments = _connect(uri, experiment, create=experiment is not None)
        with _refused(f"mirroring model {name!r}", uri):
            _mirror(client, experiments, store, model, versions, report)
    report.target = "mlflow+" + redact_text(uri)
    return report


def _mirror(
    client: Any,
    experiments: list[str],
    store: TrackingStore,
    model: dict[str, Any],
    versions: list[dict[str, Any]],
    report: SyncReport,
) -> None:
    name = str(model["name"])
    report.copied, report.updated, report.skipped = [], [], []
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name, tags={"nbtrack.model": name})
    mirrored = {
        mv.tags.get(VERSION_TAG): mv.version
        for mv in client.search_model_versions(f"name = '{name}'")
        if mv.tags.get(VERSION_TAG)
    }
    stages = store.registry_current_stages(int(model["id"]))
    for row in versions:
        number = int(row["version"])
        stage = stages.get(number, ("development", 0.0))[0]
        if str(number) in mirrored:
            client.set_model_version_tag(name, mirrored[str(number)], "nbtrack.stage", stage)
            report.skipped.append(f"{name}/{number}")
            continue
        run = _find(client, experiments, str(row["run_id"]))
        if run is None:
            raise SyncError(f"run {row['run_id'][:8]} of {name} v{number} is not in MLflow")
        artifact = Path(str(row["artifact"]))
        folder = str(artifact.parent).strip("./")
        path = "nbtrack/" + (f"{folder}/" if folder else "") + artifact.name
        created = client.create_model_version(
            name,
            source=f"{run.info.artifact_uri}/{path}",
            run_id=run.info.run_id,
            tags={
                VERSION_TAG: str(number),
                "nbtrack.hash": str(row["hash"]),
                "nbtrack.stage": stage,
            },
        )
        mirrored[str(number)] = created.version
        report.copied.append(f"{name}/{number}")
    for alias, number in store.registry_aliases(int(model["id"])).items():
        if str(number) in mirrored:
            client.set_registered_model_alias(name, alias, mirrored[str(number)])
