"""Who is acting (on runs and on the registry), and from which host.

The user is ``$NBTRACK_USER`` when set (CI jobs, shared accounts), else git's
``user.email``, else git's ``user.name``, else the login name. Git is asked once per
process and folder: the answer does not change while a kernel runs.
"""

from __future__ import annotations

import functools
import getpass
import os
import socket
import subprocess

from nbtrack import config


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


@functools.lru_cache(maxsize=1)
def current_host() -> str:
    """This machine's host name."""
    return socket.gethostname()


__all__ = ["current_host", "current_user", "declared_user"]
