"""The registry's vocabulary: stages in promotion order and what an audit entry records.

Below both :mod:`nbtrack.registry.records` (which re-exports these names) and
:mod:`nbtrack.registry.render`, so the renderers need the records only for their types.
"""

from __future__ import annotations

import enum

__all__ = [
    "EXCLUSIVE_STAGES",
    "Event",
    "INITIAL_STAGE",
    "STAGES",
    "STEP_DOWN_STAGE",
    "Stage",
    "next_stage",
    "stage_rank",
    "step_down_stage",
]


class Stage(enum.StrEnum):
    """Where a model version is in its life, in promotion order."""

    DEVELOPMENT = "development"
    STAGING = "staging"
    CANARY = "canary"
    PRODUCTION = "production"
    ARCHIVED = "archived"


#: Stages in promotion order: moving a version to a later one is a promotion (gates and
#: approvals apply), to an earlier one a demotion; ``archived`` is the end.
STAGES: tuple[Stage, ...] = tuple(Stage)
#: Where a new version starts.
INITIAL_STAGE = Stage.DEVELOPMENT
#: Stages that hold at most one version of a model at a time.
EXCLUSIVE_STAGES = frozenset({Stage.PRODUCTION})
#: Where a version steps down to when another one takes its place in an exclusive stage,
#: or when a rollback moves it out. Never ``archived``: a rollback can bring it back.
STEP_DOWN_STAGE = Stage.STAGING


def stage_rank(stage: Stage) -> int:
    """The position of ``stage`` in promotion order (development is 0)."""
    return STAGES.index(stage)


def next_stage(stage: Stage) -> Stage | None:
    """The stage a version in ``stage`` is promoted into next (``None`` from production and
    archived): what the panel and the notebook view check the gates for by default."""
    later = STAGES[stage_rank(stage) + 1 :]
    return later[0] if later and later[0] != Stage.ARCHIVED else None


def step_down_stage(stage: Stage) -> Stage:
    """Where a version leaving ``stage`` to make room goes: :data:`STEP_DOWN_STAGE`, or
    ``development`` when it leaves a stage no later than that."""
    return STEP_DOWN_STAGE if stage_rank(STEP_DOWN_STAGE) < stage_rank(stage) else INITIAL_STAGE


class Event(enum.StrEnum):
    """What an audit entry records."""

    REGISTER = "register"
    PROMOTE = "promote"
    DEMOTE = "demote"
    ARCHIVE = "archive"
    APPROVE = "approve"
    REJECT = "reject"
    ALIAS = "alias"
    UNALIAS = "unalias"
    ROLLBACK = "rollback"
    GATE = "gate"
    #: ``nbtrack scan --redact`` rewrote secrets out of the store (where and by which rule;
    #: never the values).
    SECRETS_REDACTED = "secrets-redacted"
