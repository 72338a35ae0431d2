"""Registry records from the store's rows: the one place a row becomes a record."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nbtrack.errors import UsageError
from nbtrack.registry.records import (
    INITIAL_STAGE,
    Decision,
    Lineage,
    ModelVersion,
    Stage,
    StagePeriod,
)


def version_of(
    model: str,
    row: dict[str, Any],
    stages: dict[int, tuple[str, float]],
    aliases: dict[str, int],
) -> ModelVersion:
    version = int(row["version"])
    return ModelVersion(
        model=model,
        version=version,
        stage=Stage(stages.get(version, (str(INITIAL_STAGE), 0.0))[0]),
        artifact=row["artifact"],
        kind=row["kind"],
        hash=row["hash"],
        size=int(row["size"]),
        meta=row["meta"],
        lineage=Lineage.from_dict(row["lineage"]),
        created=float(row["created"]),
        created_by=row["created_by"],
        host=row["host"],
        aliases=tuple(sorted(a for a, v in aliases.items() if v == version)),
    )


def decision_of(model: str, row: dict[str, Any]) -> Decision:
    return Decision(
        model=model,
        version=int(row["version"]),
        stage=Stage(row["stage"]),
        user=row["user"],
        approved=row["decision"] == "approve",
        comment=row["comment"],
        time=float(row["time"]),
    )


def period_of(model: str, row: dict[str, Any]) -> StagePeriod:
    return StagePeriod(
        model=model,
        version=int(row["version"]),
        stage=Stage(row["stage"]),
        since=float(row["since"]),
        until=None if row["until"] is None else float(row["until"]),
        by=row["by_user"],
        reason=row["reason"],
    )


def pick_artifact(
    artifacts: Iterable[tuple[str, str, str, int, dict[str, Any]]],
    wanted: str | None,
    run_number: int,
) -> tuple[str, str, str, int, dict[str, Any]]:
    found = list(artifacts)
    names = ", ".join(a[0] for a in found) or "none"
    if wanted is None:
        if len(found) == 1:
            return found[0]
        raise UsageError(
            f"run #{run_number} has {len(found)} artifacts ({names}); say which one is the "
            "model with artifact=NAME (--artifact NAME)"
            if found
            else f"run #{run_number} has no artifacts; save the model with "
            "track.artifact(model, 'model') first"
        )
    for item in found:
        if item[0] == wanted:
            return item
    raise UsageError(f"run #{run_number} has no artifact {wanted!r} (it has: {names})")


__all__ = ["decision_of", "period_of", "pick_artifact", "version_of"]
