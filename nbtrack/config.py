"""Where the store lives and every environment variable nbtrack reads.

Resolution order for the store (a folder, or a ``postgresql://`` URL):

1. an explicit location (``%nbtrack store PATH|URL``, ``nbtrack --store PATH|URL``,
   ``Store(path)``);
2. the ``NBTRACK_STORE`` environment variable;
3. ``[store] location`` in the project's ``nbtrack.toml`` (a folder relative to the file);
4. for the command line: the nearest ``.nbtrack/`` folder found upwards from the working
   directory (like git finds ``.git``); for kernels and scripts: ``.nbtrack/`` in the working
   directory (created on first use).

:func:`command_store_dir` is that order, for every command and magic that reads a store.
A database URL travels as :class:`StoreURL` (the text as written), never as a
:class:`~pathlib.Path`, which would fold ``postgresql:///db`` (libpq's default socket) into
``postgresql:/db``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# nbtrack.toml's reading lives below both this module and nbtrack.secrets (whose project
# rules read it), so neither imports the other in a circle; its names stay reachable here.
from nbtrack.projectfile import PROJECT_CONFIG_FILENAME as PROJECT_CONFIG_FILENAME
from nbtrack.projectfile import find_project_config as find_project_config
from nbtrack.projectfile import project_config as project_config

#: Environment variable naming the store folder.
ENV_STORE = "NBTRACK_STORE"
#: Seconds a writer waits for another process's lock before giving up (default 30).
ENV_BUSY_TIMEOUT = "NBTRACK_BUSY_TIMEOUT"
#: Seconds to wait for a database store (PostgreSQL) to answer a connection (default 10).
ENV_CONNECT_TIMEOUT = "NBTRACK_CONNECT_TIMEOUT"
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
DEFAULT_CONNECT_TIMEOUT = 10.0
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


def connect_timeout() -> int:
    """Seconds to wait for a database store to answer a new connection
    (``NBTRACK_CONNECT_TIMEOUT``, default 10; at least 1, as libpq counts whole seconds).

    Separate from :func:`busy_timeout`: a network that drops packets (a VPN that is down)
    should send a run to the outbox in seconds, not after the lock wait's 30."""
    return max(1, round(_float_env(ENV_CONNECT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT)))


def flush_interval() -> float:
    """Seconds between background metric flushes (``NBTRACK_FLUSH_INTERVAL``, default 0.5)."""
    return max(0.01, _float_env(ENV_FLUSH_INTERVAL, DEFAULT_FLUSH_INTERVAL))


class StoreURL(str):
    """A database store's location (``postgresql://…``, ``postgres://…``), exactly as the
    user wrote it: query parameters (``?host=/run/postgresql``, ``sslmode=require``) and an
    empty host (``postgresql:///db``: libpq's default socket) survive, which a
    :class:`~pathlib.Path` would fold. Shown only through :func:`shown_location`."""

    __slots__ = ()


#: Where a store lives: a folder (SQLite) or a database URL.
StoreLocation = Path | StoreURL

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(text: str) -> bool:
    """Whether ``text`` is written as a URL (``scheme://…``), not a folder."""
    return _URL_SCHEME.match(text) is not None


def store_location(location: str | os.PathLike[str]) -> StoreLocation:
    """``location`` as the config carries it: a :class:`StoreURL` for ``scheme://…`` text,
    else the folder with ``~`` expanded (not made absolute: callers decide)."""
    if isinstance(location, StoreURL):
        return location
    if isinstance(location, str) and _URL_SCHEME.match(location):
        return StoreURL(location)
    return Path(location).expanduser()


def shown_location(location: str | os.PathLike[str]) -> str:
    """A store location as it may be printed or logged: a URL's password redacted."""
    from nbtrack.secrets import redact_text

    return redact_text(os.fspath(location)) if isinstance(location, str) else str(location)


_store_override: StoreLocation | None = None


def set_store_dir(path: str | os.PathLike[str] | None) -> None:
    """Make this process use the store at ``path`` (a folder or a database URL; ``None``
    goes back to the default)."""
    global _store_override
    location = store_location(path) if path is not None else None
    _store_override = location.absolute() if isinstance(location, Path) else location


def _chosen_store(cwd: str | os.PathLike[str] | None) -> StoreLocation | None:
    """What the user chose, in order: ``%nbtrack store``, ``$NBTRACK_STORE``, then the
    project's ``nbtrack.toml`` (found from ``cwd`` upwards); ``None`` when nothing was."""
    if _store_override is not None:
        return _store_override
    env = os.environ.get(ENV_STORE)
    if env:
        return store_location(env)
    return project_store(cwd)


def project_store(start: str | os.PathLike[str] | None = None) -> StoreLocation | None:
    """``[store] location`` of the nearest ``nbtrack.toml``: a database URL, or a folder
    (relative to the file's folder; one holding ``.nbtrack/`` means that store).

    A password in the URL is refused (a one-line :class:`~nbtrack.errors.UsageError`): the
    file is shared with the project, so the password belongs in ``~/.pgpass`` or
    ``$PGPASSWORD``, where libpq looks.
    """
    found = project_config(start)
    section = found[1].get("store") if found is not None else None
    if found is None or not isinstance(section, dict):
        return None
    from nbtrack.errors import UsageError

    path = found[0]
    if "location" not in section and "url" in section:
        raise UsageError(f'{path}: [store] takes `location = "…"` (a folder or URL), not `url`')
    value = section.get("location")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UsageError(f"{path}: [store] location must be a folder or a postgresql:// URL")
    location = store_location(value)
    if isinstance(location, StoreURL):
        refuse_password_in_file(path, "[store] location", location, "~/.pgpass or $PGPASSWORD")
        return location
    folder = location if location.is_absolute() else path.parent / location
    return _store_in(folder)


def refuse_password_in_file(path: Path, key: str, url: str, instead: str) -> None:
    """Refuse, in one :class:`~nbtrack.errors.UsageError` line, a URL with a password
    (``user:…@``, ``?password=``) read from ``nbtrack.toml`` at ``path``: the file is shared
    with the project, so the password belongs in ``instead`` (where the client looks)."""
    shown = shown_location(url)
    if shown != url:  # nbtrack.secrets found a password in it
        from nbtrack.errors import UsageError

        raise UsageError(
            f"{path}: {key} {shown} carries a password; remove it from the file (it is "
            f"shared) and put it in {instead}"
        )


def _store_in(folder: Path) -> Path:
    """``folder``, or its ``.nbtrack/`` when ``folder`` is a project holding a store."""
    if folder.name != STORE_DIRNAME and (folder / STORE_DIRNAME / DB_FILENAME).exists():
        return folder / STORE_DIRNAME
    return folder


def default_store_dir(cwd: str | os.PathLike[str] | None = None) -> StoreLocation:
    """The store a kernel or script writes to.

    ``%nbtrack store PATH|URL`` (:func:`set_store_dir`) first, then ``$NBTRACK_STORE``,
    then ``[store] location`` in ``nbtrack.toml``, then ``.nbtrack`` in the working
    directory.
    """
    chosen = _chosen_store(cwd)
    if chosen is not None:
        return chosen
    return Path(cwd or os.getcwd()) / STORE_DIRNAME


def command_store_dir(
    explicit: str | os.PathLike[str] | None = None,
    *,
    search_upwards: bool,
    cwd: str | os.PathLike[str] | None = None,
) -> StoreLocation:
    """The store a command means; the one rule for every command and magic.

    1. ``explicit`` (``--store PATH|URL``); a folder that holds ``.nbtrack/`` means that
       store;
    2. this process's choice (``%nbtrack store PATH|URL``), then ``$NBTRACK_STORE``, then
       ``[store] location`` in the project's ``nbtrack.toml``;
    3. with ``search_upwards`` (the command line): the nearest ``.nbtrack/`` holding a store,
       from the working directory upwards, as git finds ``.git``;
    4. ``.nbtrack`` in the working directory, where a kernel's first tracked run creates it.

    Kernels pass ``search_upwards=False`` so that ``%nbtrack`` reads the store their tracked
    cells write to. The folder may not exist yet: opening it says so.
    """
    if explicit is not None and str(explicit):
        location = store_location(explicit)
        return _store_in(location) if isinstance(location, Path) else location
    chosen = _chosen_store(cwd)
    if chosen is not None:
        return chosen
    if search_upwards:
        here = Path(cwd or os.getcwd()).resolve()
        for folder in (here, *here.parents):
            candidate = folder / STORE_DIRNAME
            if (candidate / DB_FILENAME).is_file():
                return candidate
    return default_store_dir(cwd)
