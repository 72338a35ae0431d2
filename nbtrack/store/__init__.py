"""The local store: SQLite for records, a content-addressed folder for artifacts."""

from nbtrack.store.sqlite import Store, open_store

__all__ = ["Store", "open_store"]
