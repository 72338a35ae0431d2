"""Who is acting (on runs and on the registry), from which host, and for which project.

The user is ``$NBTRACK_USER`` when set (CI jobs, shared accounts), else git's
``user.email``, else git's ``user.name``, else the login name (on a PostgreSQL store, the
database role: :func:`database_role` when the database cannot be asked). Git is asked once
per process and folder: the answer does not change while a kernel runs.

A run's project (a short name that scopes a team's runs, docs/team.md) is the one the run
names (``%%track --project``, ``nbtrack.run(project=...)``), else ``$NBTRACK_PROJECT``,
else ``[project] name`` of the nearest ``nbtrack.toml``, else none: :func:`current_project`.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import os
import re
import socket
import subprocess

from nbtrack import config
from nbtrack.errors import UsageError


@functools.lru_cache(maxsize=8)
def _git_identity(folder: str) -> str | None:
    for key in ("user.email", "user.name"):
        try:
            done = subprocess.run(
                ["git", "config", "--get", key],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=3.0,
            )
        except (OSError, subprocess.SubprocessError):
            return None  # no git at all
        value = done.stdout.strip()
        if done.returncode == 0 and value:
            return value
    return None


def declared_user(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """``$NBTRACK_USER`` or git's identity; ``None`` when neither says (the store then
    records the login name, or on PostgreSQL the database role)."""
    explicit = os.environ.get(config.ENV_USER, "").strip()
    return explicit or _git_identity(str(cwd or os.getcwd()))


def current_user(cwd: str | os.PathLike[str] | None = None) -> str:
    """The acting user's name, by the rule in the module's docstring."""
    explicit = os.environ.get(config.ENV_USER, "").strip()
    if explicit:
        return explicit
    found = _git_identity(str(cwd or os.getcwd()))
    if found:
        return found
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def database_role(url: str) -> str:
    """The role libpq connects to the database ``url`` as, found without connecting: the
    user the URL names (``postgresql://ana@…`` or ``?user=ana``), else ``$PGUSER``, else the
    login name (libpq's own default). A run kept in a database's outbox records it as its
    user when nobody declared one, as the database would have (its ``current_user``)."""
    named = None
    try:
        import psycopg.conninfo

        named = psycopg.conninfo.conninfo_to_dict(url).get("user")
    except Exception:  # noqa: BLE001 - no psycopg, or a URL libpq would refuse anyway
        from urllib.parse import unquote, urlsplit

        with contextlib.suppress(ValueError):
            username = urlsplit(url).username
            named = unquote(username) if username else None
    if named:
        return str(named)
    from_env = os.environ.get("PGUSER", "").strip()
    if from_env:
        return from_env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@functools.lru_cache(maxsize=1)
def current_host() -> str:
    """This machine's host name."""
    return socket.gethostname()


#: A project name: short, one word, safe in a URL query, a file name and an MLflow
#: experiment name; ``/`` allowed for a team's sub-projects (``vision/detection``).
PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")


def check_project(value: object, source: str = "project") -> str:
    """``value`` as a project name, or one :class:`UsageError` line naming ``source``."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or PROJECT_NAME.fullmatch(text) is None:
        raise UsageError(
            f"{source} {value!r} is not a project name: use up to 64 letters, digits, "
            "'.', '_', '-' or '/', starting with a letter or digit (e.g. vision-team)"
        )
    return text


def as_project(text: str | None) -> str | None:
    """The project name nearest to ``text`` (a name from elsewhere, such as an MLflow
    experiment's): characters a project name cannot hold become ``-``; ``None`` when
    nothing usable is left."""
    if not text:
        return None
    name = re.sub(r"[^A-Za-z0-9._/-]+", "-", text).lstrip("._/-")[:64].rstrip("/")
    return name if PROJECT_NAME.fullmatch(name) else None


def current_project(
    explicit: str | None = None, cwd: str | os.PathLike[str] | None = None
) -> str | None:
    """The project a run belongs to, by the rule in the module's docstring.

    ``explicit`` is what the run itself says (``--project``, ``project=``); ``cwd`` is where
    ``nbtrack.toml`` is looked for (default: the working directory). A bad name from any
    source is a :class:`UsageError` naming that source; ``None`` when nothing names one.
    """
    if explicit is not None:
        return check_project(explicit)
    from_env = os.environ.get(config.ENV_PROJECT, "").strip()
    if from_env:
        return check_project(from_env, f"${config.ENV_PROJECT}")
    found = config.project_config(cwd)
    if found is None:
        return None
    path, data = found
    table = data.get("project")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise UsageError(
            f'{path}: [project] must be a table: a `[project]` line, then `name = "…"`'
        )
    name = table.get("name")
    return None if name is None else check_project(name, f"{path}: [project] name")


__all__ = [
    "as_project",
    "check_project",
    "current_host",
    "current_project",
    "current_user",
    "database_role",
    "declared_user",
]
