"""Where the store lives and every environment variable nbtrack reads.

Resolution order for the store folder:

1. an explicit path (``%nbtrack store PATH``, ``nbtrack --store PATH``, ``Store(path)``);
2. the ``NBTRACK_STORE`` environment variable;
3. for the command line: the nearest ``.nbtrack/`` folder found upwards from the working
   directory (like git finds ``.git``); for kernels and scripts: ``.nbtrack/`` in the working
   directory (created on first use).

:func:`command_store_dir` is that order, for every command and magic that reads a store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Environment variable naming the store folder.
ENV_STORE = "NBTRACK_STORE"
#: Seconds a writer waits for another process's lock before giving up (default 30).
ENV_BUSY_TIMEOUT = "NBTRACK_BUSY_TIMEOUT"
#: Seconds between background flushes of buffered metrics (default 0.5).
ENV_FLUSH_INTERVAL = "NBTRACK_FLUSH_INTERVAL"
#: Set to "0" to disable the summary shown after a tracked cell.
ENV_SUMMARY = "NBTRACK_SUMMARY"
#: Who acts on the model registry (approvals, promotions, the audit log); default: git's
#: user.email, then user.name, then the login name (nbtrack/identity.py).
ENV_USER = "NBTRACK_USER"
#: The project a run belongs to when neither ``%%track --project`` nor
#: ``nbtrack.run(project=...)`` names one; nbtrack.toml's ``[project] name`` comes after it
#: (the rule: nbtrack/identity.py's ``current_project``).
ENV_PROJECT = "NBTRACK_PROJECT"
#: Set by ``nbtrack export --verify`` for the script it re-runs: that run reproduces another
#: one and must not register models (track.register does nothing there).
ENV_VERIFYING = "NBTRACK_VERIFYING"
#: Where artifact content lives when not in the store's folder: an fsspec URL such as
#: ``s3://bucket/prefix`` (nbtrack/store/artifact_store.py); ``[store] artifacts`` in
#: nbtrack.toml says the same for a project.
ENV_ARTIFACTS = "NBTRACK_ARTIFACTS"
#: JSON object of options for that file system (``{"endpoint_url": …}``); never stored.
ENV_ARTIFACTS_OPTIONS = "NBTRACK_ARTIFACTS_OPTIONS"

STORE_DIRNAME = ".nbtrack"
DB_FILENAME = "nbtrack.db"
ARTIFACTS_DIRNAME = "artifacts"

DEFAULT_BUSY_TIMEOUT = 30.0
DEFAULT_FLUSH_INTERVAL = 0.5


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        return default


def busy_timeout() -> float:
    """Seconds to wait for a locked store (``NBTRACK_BUSY_TIMEOUT``, default 30)."""
    return _float_env(ENV_BUSY_TIMEOUT, DEFAULT_BUSY_TIMEOUT)


def flush_interval() -> float:
    """Seconds between background metric flushes (``NBTRACK_FLUSH_INTERVAL``, default 0.5)."""
    return max(0.01, _float_env(ENV_FLUSH_INTERVAL, DEFAULT_FLUSH_INTERVAL))


_store_override: Path | None = None


def set_store_dir(path: str | os.PathLike[str] | None) -> None:
    """Make this process use the store at ``path`` (``None`` goes back to the default)."""
    global _store_override
    if path is not None and "://" in str(path):
        _store_override = Path(path)  # a database URL (nbtrack/store/postgres.py): as given
        return
    _store_override = Path(path).expanduser().absolute() if path is not None else None


def default_store_dir(cwd: str | os.PathLike[str] | None = None) -> Path:
    """The store a kernel or script writes to.

    ``%nbtrack store PATH`` (:func:`set_store_dir`) first, then ``$NBTRACK_STORE``, then
    ``.nbtrack`` in the working directory.
    """
    if _store_override is not None:
        return _store_override
    env = os.environ.get(ENV_STORE)
    if env:
        return Path(env).expanduser()
    return Path(cwd or os.getcwd()) / STORE_DIRNAME


def command_store_dir(
    explicit: str | os.PathLike[str] | None = None,
    *,
    search_upwards: bool,
    cwd: str | os.PathLike[str] | None = None,
) -> Path:
    """The store folder a command means; the one rule for every command and magic.

    1. ``explicit`` (``--store PATH``); a folder that holds ``.nbtrack/`` means that store;
    2. this process's choice (``%nbtrack store PATH``), then ``$NBTRACK_STORE``;
    3. with ``search_upwards`` (the command line): the nearest ``.nbtrack/`` holding a store,
       from the working directory upwards, as git finds ``.git``;
    4. ``.nbtrack`` in the working directory, where a kernel's first tracked run creates it.

    Kernels pass ``search_upwards=False`` so that ``%nbtrack`` reads the store their tracked
    cells write to. The folder may not exist yet: opening it says so.
    """
    if explicit is not None and str(explicit):
        folder = Path(explicit).expanduser()
        if folder.name != STORE_DIRNAME and (folder / STORE_DIRNAME / DB_FILENAME).exists():
            folder = folder / STORE_DIRNAME
        return folder
    if search_upwards and _store_override is None and not os.environ.get(ENV_STORE):
        here = Path(cwd or os.getcwd()).resolve()
        for folder in (here, *here.parents):
            candidate = folder / STORE_DIRNAME
            if (candidate / DB_FILENAME).is_file():
                return candidate
    return default_store_dir(cwd)


# -- the project config file -----------------------------------------------------------------
#: The project's config file, found from the working directory upwards (like the store).
PROJECT_CONFIG_FILENAME = "nbtrack.toml"

_project_cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}


def find_project_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``nbtrack.toml`` in ``start`` (default: the working directory) or above."""
    here = Path(start or os.getcwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / PROJECT_CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    return None


def project_config(
    start: str | os.PathLike[str] | None = None,
) -> tuple[Path, dict[str, Any]] | None:
    """``(path, parsed TOML)`` of the nearest ``nbtrack.toml``, or ``None`` when there is none.

    Parsed once per file version (path, mtime and size), so asking again is a few ``stat``
    calls. A file that is not valid TOML is a one-line :class:`~nbtrack.errors.UsageError`.
    """
    path = find_project_config(start)
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    key = (info.st_mtime_ns, info.st_size)
    cached = _project_cache.get(path)
    if cached is not None and cached[0] == key:
        return path, cached[1]
    import tomllib

    from nbtrack.errors import UsageError

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path} cannot be read ({exc}); fix or remove the file") from None
    _project_cache[path] = (key, data)
    return path, data
