"""The registry's functions for notebooks and scripts: ``nbtrack.register``,
``nbtrack.models``, ``nbtrack.load_model`` and ``nbtrack.registry``.

Thin: each resolves the store and calls :class:`~nbtrack.registry.core.Registry`.
pandas is imported only by :func:`models`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbtrack.registry.core import Registry, default_registry
from nbtrack.registry.records import STAGES, ModelVersion

if TYPE_CHECKING:
    import pandas


def registry(store: Any = None) -> Registry:
    """The model registry of ``store`` (default: this process's store)."""
    return default_registry(store)


def register(
    run: Any,
    name: str,
    artifact: str | None = None,
    *,
    description: str | None = None,
    reason: str | None = None,
    store: Any = None,
) -> ModelVersion:
    """Register artifact ``artifact`` of run ``run`` (number, id, ``"last"``) as the next
    version of model ``name``; see :meth:`Registry.register`."""
    return default_registry(store).register(
        run, name, artifact, description=description, reason=reason
    )


def load_model(ref: str, *, store: Any = None) -> Any:
    """The artifact of the version ``ref`` names (``"name@production"``, ``"name/3"``,
    ``"models:/name/3"``, ``"name@champion"``), checked against its content hash."""
    return default_registry(store).load(ref)


MODEL_COLUMNS = (
    "name",
    "versions",
    "latest",
    *(str(s) for s in STAGES if str(s) != "archived"),
    "aliases",
    "created",
    "updated",
    "description",
)
VERSION_COLUMNS = (
    "version",
    "stage",
    "aliases",
    "run",
    "run_id",
    "artifact",
    "hash",
    "created",
    "created_by",
)


def models(name: str | None = None, *, store: Any = None) -> pandas.DataFrame:
    """Registered models as a DataFrame, one row a model: version counts, the versions in
    each stage (``production`` holds one or none), aliases.

    With ``name``: one row per version of that model, with its stage, aliases, run and
    ``metrics.<key>`` columns.
    """
    import pandas as pd

    reg = default_registry(store)
    if name is None:
        summaries = reg.models()
        # Column by column: one row a model over a thousand models stays a few milliseconds.
        columns: dict[str, Any] = {
            "name": [m.name for m in summaries],
            "versions": [m.versions for m in summaries],
            "latest": [m.latest for m in summaries],
        }
        for stage in MODEL_COLUMNS[3:7]:
            if stage == "production":
                columns[stage] = pd.array([m.production for m in summaries], dtype="Int64")
            else:
                columns[stage] = [m.stages.get(stage, []) for m in summaries]
        columns["aliases"] = [m.aliases for m in summaries]
        columns["created"] = pd.to_datetime([m.created for m in summaries], unit="s")
        columns["updated"] = pd.to_datetime([m.updated for m in summaries], unit="s")
        columns["description"] = [m.description for m in summaries]
        return pd.DataFrame(columns, columns=list(MODEL_COLUMNS))
    out = []
    for v in reg.versions(name):
        item: dict[str, Any] = {
            "version": v.version,
            "stage": str(v.stage),
            "aliases": list(v.aliases),
            "run": v.lineage.run_number,
            "run_id": v.lineage.run_id,
            "artifact": v.artifact,
            "hash": v.hash,
            "created": pd.Timestamp(v.created, unit="s"),
            "created_by": v.created_by,
        }
        item.update({f"metrics.{k}": val for k, val in v.metrics.items()})
        out.append(item)
    return pd.DataFrame(out, columns=None if out else list(VERSION_COLUMNS))


__all__ = ["load_model", "models", "register", "registry"]
