"""The local store: SQLite for records, a content-addressed folder for artifacts."""

from nbtrack.store.routing import open_store
from nbtrack.store.sqlite import Store

__all__ = ["Store", "open_store"]
