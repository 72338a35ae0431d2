"""What ``--to`` / ``--from`` name: another nbtrack store (a folder or a database URL) or an
MLflow tracking server (``mlflow+http://host:5000``), and how it is shown (password redacted).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbtrack import config
from nbtrack.errors import SyncError
from nbtrack.secrets import redact_text

__all__ = ["MLFLOW_PREFIX", "Target", "default_remote", "open_store_target", "parse_target"]

MLFLOW_PREFIX = "mlflow+"


@dataclass(frozen=True)
class Target:
    """A parsed ``--to``/``--from``: ``kind`` is ``"store"`` or ``"mlflow"``; ``location``
    the folder, database URL or MLflow tracking URI (with any password: never print it)."""

    kind: str
    location: str

    @property
    def shown(self) -> str:
        """The target as it may be printed or logged: a URL's password is redacted."""
        return redact_text(self.location if self.kind == "store" else MLFLOW_PREFIX + self.location)


def default_remote() -> str | None:
    """The team store from the project's ``nbtrack.toml`` (``[sync] remote = "…"``)."""
    found = config.project_config()
    section = found[1].get("sync") if found else None
    remote = section.get("remote") if isinstance(section, dict) else None
    if not remote or found is None:
        return None
    config.refuse_password_in_file(
        found[0],
        "[sync] remote",
        str(remote),
        "~/.pgpass or $PGPASSWORD (MLflow: $MLFLOW_TRACKING_USERNAME and "
        "$MLFLOW_TRACKING_PASSWORD)",
    )
    return str(remote)


def parse_target(spec: str | os.PathLike[str] | None) -> Target:
    """Parse ``--to``/``--from``; no spec means the project's ``[sync] remote``."""
    text = str(spec) if spec is not None else (default_remote() or "")
    if not text:
        raise SyncError(
            "no target given: pass --to PATH|URL (--from for pull), or set "
            '`[sync] remote = "…"` in the project\'s nbtrack.toml'
        )
    if text.startswith(MLFLOW_PREFIX):
        uri = text[len(MLFLOW_PREFIX) :]
        if not uri.startswith(("http://", "https://", "file:", "sqlite:", "databricks")):
            raise SyncError(
                f"{redact_text(text)}: an MLflow target is mlflow+http://host:port "
                "(or mlflow+https://…)"
            )
        return Target("mlflow", uri)
    return Target("store", text)


def open_store_target(target: Target, *, create: bool) -> Any:
    """Open (a connection of its own to) the nbtrack store a target names: a folder, or a
    ``postgresql://`` URL; the caller closes it."""
    from nbtrack.store.postgres import postgres_url
    from nbtrack.store.routing import connect_store

    location = target.location
    if postgres_url(location) is not None:
        return connect_store(location, create=create)
    if "://" in location:
        raise SyncError(
            f"{target.shown}: unknown store URL scheme {location.split('://', 1)[0]!r}; "
            "give a store folder, a postgresql:// URL or mlflow+http://host:port"
        )
    folder = config.command_store_dir(location, search_upwards=False)
    if not create and not (Path(folder) / config.DB_FILENAME).exists():
        # The store's own message names --store; here the folder came from --from.
        raise SyncError(
            f"no nbtrack store at {folder}; check --from (a store folder, a postgresql:// URL "
            "or mlflow+http://host:port)"
        )
    return connect_store(folder, create=create)
