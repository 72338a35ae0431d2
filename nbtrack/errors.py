"""One error hierarchy for nbtrack.

Every error carries a message that says what went wrong and what to do about it;
edges (magics, CLI, server) print ``str(err)`` as one line and never a traceback.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped (``\\n``, ``\\x00``)."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


class NbtrackError(Exception):
    """Base class of every error nbtrack raises on purpose."""

    def __str__(self) -> str:
        # Messages quote user input (an option line, a path, a cell's text): a line break,
        # NUL or terminal escape in it must not split the one line every edge prints.
        return one_line(super().__str__())


class UsageError(NbtrackError):
    """Bad options or arguments given by the user (a magic option, a CLI flag, ``--set``)."""


class UnknownRunError(NbtrackError):
    """A run reference that matches no run in the store."""

    def __init__(self, ref: object, store_path: object = None) -> None:
        where = f" in the store at {store_path}" if store_path else ""
        super().__init__(
            f"no run matches {ref!r}{where}; list runs with `nbtrack runs` "
            "(a ref is a run number, a run id or an unambiguous id prefix, or 'last')"
        )
        self.ref = ref


class AmbiguousRunError(NbtrackError):
    """A run id prefix that matches more than one run."""

    def __init__(self, ref: str, count: int) -> None:
        super().__init__(f"run ref {ref!r} matches {count} runs; give more characters of the id")
        self.ref = ref


class StoreError(NbtrackError):
    """The store cannot be opened, read or written."""


class StoreLockedError(StoreError):
    """Another process held the store's write lock beyond the busy timeout."""


class StoreUnreachableError(StoreError):
    """A database store cannot be reached (no answer, nothing listening on its port, a
    dropped connection, a server starting or shutting down): worth retrying later, unlike
    a refusal by the server (wrong or missing password, no such database or role, SSL
    required), which needs the user to fix the configuration."""


class StoreSchemaError(StoreError):
    """The store was written by a newer nbtrack, or its schema is not one we know."""


class StoreCorruptError(StoreError):
    """The store's database file is not a readable nbtrack store."""


class StoreReadOnlyError(StoreError):
    """The store (or the folder that should hold it) cannot be written."""


class RegistryError(NbtrackError):
    """A model registry action cannot be done; nothing in the registry changed."""


class UnknownModelError(RegistryError):
    """A model, version or alias that is not in the registry."""


class RegistryConfigError(RegistryError):
    """The registry policy (gates, approvals, who may promote) in ``nbtrack.toml`` or
    ``.nbtrack/gates.toml`` is not valid; the message names the file and the key."""


class PromotionRefusedError(RegistryError):
    """A gate, the approvals or the policy refused a promotion; ``report`` says which."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class RegistryConflictError(RegistryError):
    """Another process changed the model between this action's checks and its write."""


class AuditLogError(RegistryError):
    """The registry's audit log fails verification: an entry was edited or deleted."""


class ArtifactError(NbtrackError):
    """An artifact cannot be stored or loaded."""


class ExportError(NbtrackError):
    """A notebook or run cannot be exported to a script."""


class SyncError(NbtrackError):
    """Push or pull cannot go on: an unreachable or unusable target, a missing client
    (``pip install 'nbtrack[mlflow]'``), or content that does not match its hash."""


class SweepError(NbtrackError):
    """A sweep cannot start or go on: a bad search space, an objective never logged, a
    cell that fails in every trial, ``--resume`` of a sweep that does not exist."""


class UnknownSweepError(SweepError):
    """A sweep reference that matches no sweep in the store."""

    def __init__(self, ref: object, store_path: object = None) -> None:
        where = f" in the store at {store_path}" if store_path else ""
        super().__init__(
            f"no sweep matches {ref!r}{where}; list sweeps with `nbtrack sweep ls` "
            "(a ref is a sweep number, a sweep id or an unambiguous id prefix, or 'last')"
        )
        self.ref = ref
