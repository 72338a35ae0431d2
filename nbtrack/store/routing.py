"""Which store a location opens: a folder is SQLite, a ``postgresql://`` URL is PostgreSQL.

The one place that tells them apart. It sits above both store modules so that the
PostgreSQL store (a subclass of the SQLite one) and the SQLite store import only downward.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TypeVar, cast

from nbtrack import config
from nbtrack.store.sqlite import Store

__all__ = ["connect_store", "open_store", "shared_store"]

S = TypeVar("S", bound=Store)

_open_stores: dict[tuple[type[Store], Path], Store] = {}
_open_lock = threading.Lock()


def connect_store(location: str | os.PathLike[str], *, create: bool = True) -> Store:
    """A new store for ``location``: a folder (SQLite) or a ``postgresql://`` URL
    (:class:`~nbtrack.store.postgres.PostgresStore`). The one place that tells them apart."""
    # Imported here: a folder store should not pay for the PostgreSQL module.
    from nbtrack.store.postgres import PostgresStore, postgres_url

    url = postgres_url(location)
    if url is not None:
        return PostgresStore(url, create=create)
    _refuse_other_urls(location)
    return Store(location, create=create)


def _refuse_other_urls(location: object) -> None:
    """A ``scheme://…`` location that is not PostgreSQL's is a mistake (a typo, another
    database, SQLAlchemy's ``postgresql+psycopg://``), not a folder to create: as a folder
    it would hold the URL, password included, in its path. One line, password redacted."""
    if isinstance(location, str) and config.is_url(location):
        from nbtrack.errors import StoreError

        scheme = location.split("://", 1)[0]
        hint = " (write postgresql://…)" if scheme.lower().startswith("postgres") else ""
        raise StoreError(
            f"{config.shown_location(location)}: unknown store URL scheme {scheme!r}{hint}; "
            "a store is a folder or a postgresql:// URL"
        )


def open_store(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> Store:
    """A shared store for ``path`` (default: :func:`config.default_store_dir`): a folder, or
    a ``postgresql://`` URL (see :func:`connect_store`)."""
    from nbtrack.store.postgres import open_pg_store, postgres_url

    location = path if path is not None else config.default_store_dir()
    url = postgres_url(location)
    if url is not None:
        return open_pg_store(url, create=create)
    _refuse_other_urls(location)
    return shared_store(Path(location).expanduser().absolute(), Store, create=create)


def shared_store(folder: Path, kind: type[S], *, create: bool = True) -> S:
    """The one open store of class ``kind`` on ``folder`` in this process, opened on first
    use, and opened again when the folder was deleted or replaced under it (writing on
    would go to an unlinked file and vanish)."""
    with _open_lock:
        store = _open_stores.get((kind, folder))
        if store is not None and not store.is_current():
            store.close()
            store = None
        if store is None:
            store = _open_stores[(kind, folder)] = kind(folder, create=create)
        return cast(S, store)
