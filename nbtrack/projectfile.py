"""The project's config file, ``nbtrack.toml``: found from a folder upwards (like the store),
parsed once per file version.

Below :mod:`nbtrack.config` (which re-exports these names and reads ``[store]``) and
:mod:`nbtrack.secrets` (whose :func:`~nbtrack.secrets.project_rules` reads ``[secrets]``), so
that neither of them imports the other. Imports nothing of nbtrack but its errors.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

__all__ = ["PROJECT_CONFIG_FILENAME", "find_project_config", "project_config"]

#: The project's config file, found from the working directory upwards (like the store).
PROJECT_CONFIG_FILENAME = "nbtrack.toml"

# Parsed once per file version: path -> ((mtime_ns, size), the path as a Path, the TOML).
_project_cache: dict[str, tuple[tuple[int, int], Path, dict[str, Any]]] = {}


def _nearest_config(start: str | os.PathLike[str] | None) -> tuple[str, os.stat_result] | None:
    """The nearest ``nbtrack.toml`` at or above ``start`` and its ``stat``.

    Plain strings and one ``os.access`` per folder (``os.stat`` where the file is): a run
    start asks three times (project, secret rules, metric directions), and a
    :class:`~pathlib.Path` walk five folders deep cost ~30 µs each. Never cached, so a
    file created, edited or removed between two runs is seen by the second.
    """
    here = os.fspath(start) if start else os.getcwd()
    if not os.path.isabs(here):
        here = os.path.join(os.getcwd(), here)
    folder = here
    while True:
        candidate = os.path.join(folder, PROJECT_CONFIG_FILENAME)
        # os.access answers "not there" without raising: most folders have no such file.
        try:
            info = os.stat(candidate) if os.access(candidate, os.F_OK) else None
        except (OSError, ValueError):  # gone meanwhile, or a NUL in the path
            info = None
        if info is not None and stat.S_ISREG(info.st_mode):
            return candidate, info
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def find_project_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``nbtrack.toml`` in ``start`` (default: the working directory) or above."""
    found = _nearest_config(start)
    return None if found is None else Path(found[0])


def project_config(
    start: str | os.PathLike[str] | None = None,
) -> tuple[Path, dict[str, Any]] | None:
    """``(path, parsed TOML)`` of the nearest ``nbtrack.toml``, or ``None`` when there is none.

    Parsed once per file version (path, mtime and size), so asking again is a few ``stat``
    calls. A file that is not valid TOML is a one-line :class:`~nbtrack.errors.UsageError`.
    """
    found = _nearest_config(start)
    if found is None:
        return None
    text, info = found
    key = (info.st_mtime_ns, info.st_size)
    cached = _project_cache.get(text)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    import tomllib

    from nbtrack.errors import UsageError

    path = Path(text)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path} cannot be read ({exc}); fix or remove the file") from None
    _project_cache[text] = (key, path, data)
    return path, data
