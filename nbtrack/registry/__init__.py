"""The model registry: versions of models made by runs, stages, gates, approvals, aliases,
rollback and a tamper-evident audit log, kept in the same store as the runs.

Pure core, no IPython: :class:`Registry` does the work; :mod:`nbtrack.registry.records`
holds what it returns; :mod:`nbtrack.registry.render` draws it; the CLI (``nbtrack models``),
the magic (``%nbtrack register``) and ``nbtrack.register`` / ``nbtrack.models`` /
``nbtrack.load_model`` only translate. See docs/registry.md.
"""

from nbtrack.registry.core import Registry, default_registry
from nbtrack.registry.hooks import RegistryHookWarning, on_event
from nbtrack.registry.reading import RegistryReader, parse_stage
from nbtrack.registry.records import (
    STAGES,
    AuditCheck,
    AuditEntry,
    Decision,
    Event,
    GateReport,
    GateResult,
    Lineage,
    ModelSummary,
    ModelVersion,
    Outcome,
    Promotion,
    Stage,
    StagePeriod,
)

__all__ = [
    "STAGES",
    "AuditCheck",
    "AuditEntry",
    "Decision",
    "Event",
    "GateReport",
    "GateResult",
    "Lineage",
    "ModelSummary",
    "ModelVersion",
    "Outcome",
    "Promotion",
    "Registry",
    "RegistryHookWarning",
    "RegistryReader",
    "Stage",
    "StagePeriod",
    "default_registry",
    "on_event",
    "parse_stage",
]
