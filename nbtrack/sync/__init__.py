"""Push and pull: copy runs between a local store and a team store, or an MLflow server.

* :func:`push` — runs of the local store to ``to`` (a store folder, a database URL, or
  ``mlflow+http://host:port``).
* :func:`pull` — runs of ``source`` into the local store.

Idempotent by global run id, so a push cut off by a flaky connection is simply run again
(docs/team.md, "Push and pull" and "MLflow"). Pure core: no IPython.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from nbtrack.errors import SyncError
from nbtrack.sync.stores import SyncReport, copy_runs
from nbtrack.sync.targets import Target, open_store_target, parse_target

__all__ = ["SyncReport", "Target", "parse_target", "pull", "push"]

Progress = Callable[[str, str], None]


def _local(store: Any, *, create: bool) -> Any:
    if store is not None and not isinstance(store, (str, os.PathLike)):
        return store
    from nbtrack import config
    from nbtrack.store.routing import open_store

    # The local store must exist to push from; pull creates it (a fresh laptop). The
    # shared instance: a kernel's tracked cells may have it open already.
    folder = config.command_store_dir(store, search_upwards=True)
    if not create and not isinstance(folder, config.StoreURL):  # a database says it itself
        from nbtrack.store.sqlite import Store

        Store(folder, create=False).close()  # says "no nbtrack store at ..." when missing
    return open_store(folder, create=create)


def push(
    to: str | os.PathLike[str] | None = None,
    refs: Sequence[object] = (),
    *,
    store: Any = None,
    experiment: str | None = None,
    model: str | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Copy runs (all, or those ``refs`` name) from the local store to ``to``.

    ``to``: a store folder, a ``postgresql://`` URL, ``mlflow+http://host:port``, or
    ``None`` for the project's ``[sync] remote``. ``store``: the local store (a folder or
    an open store; default: the one commands use). ``experiment``: MLflow's experiment.
    ``model``: instead of runs, mirror that registered model's versions (and their runs)
    and aliases to MLflow's model registry.
    """
    target = parse_target(to)
    _experiment_is_mlflows(target, experiment)
    local = _local(store, create=False)
    if model is not None:
        if target.kind != "mlflow":
            raise SyncError(
                "--model mirrors a model to MLflow's registry (--to mlflow+http://…); "
                "between nbtrack stores, register the model in the team store itself"
            )
        from nbtrack.sync.mlflow_registry import mirror_model

        return mirror_model(local, target.location, model, experiment=experiment)
    if target.kind == "mlflow":
        from nbtrack.sync.mlflow import push_mlflow

        return push_mlflow(local, target.location, refs, experiment=experiment, progress=progress)
    remote = open_store_target(target, create=True)
    try:
        return copy_runs(local, remote, refs, target_name=target.shown, progress=progress)
    finally:
        remote.close()


def pull(
    source: str | os.PathLike[str] | None = None,
    refs: Sequence[object] = (),
    *,
    store: Any = None,
    experiment: str | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Copy runs (all, or those ``refs`` name there) from ``source`` into the local store.

    ``source`` is read like :func:`push`'s ``to``; MLflow runs arrive as runs of kind
    ``"mlflow"`` that ``runs()`` and compare show with the others.
    """
    target = parse_target(source)
    _experiment_is_mlflows(target, experiment)
    local = _local(store, create=True)
    if target.kind == "mlflow":
        from nbtrack.sync.mlflow import pull_mlflow

        return pull_mlflow(local, target.location, refs, experiment=experiment, progress=progress)
    remote = open_store_target(target, create=False)
    try:
        return copy_runs(remote, local, refs, source_name=target.shown, progress=progress)
    finally:
        remote.close()


def _experiment_is_mlflows(target: Target, experiment: str | None) -> None:
    """``--experiment`` names an MLflow experiment: given for a store it would do nothing."""
    if experiment is not None and target.kind != "mlflow":
        raise SyncError(
            "--experiment names an MLflow experiment (mlflow+http://…); between nbtrack "
            "stores runs keep their projects (--project when they are tracked)"
        )
