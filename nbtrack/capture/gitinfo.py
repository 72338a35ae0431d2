"""Which commit of which repository a notebook ran from, and whether it had local edits.

The commit and branch are read straight from ``.git`` (HEAD, loose refs, packed-refs), so
they cost a few small file reads and no subprocess. Only the dirty check runs ``git``
(``git status --porcelain --untracked-files=no``), with a short timeout. Remote URLs are
recorded without credentials.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

__all__ = ["GIT_TIMEOUT", "git_info", "strip_url_credentials"]

#: Seconds the ``git status`` dirty check may take before it is abandoned.
GIT_TIMEOUT = 3.0

# Full object names: SHA-1 (40 hex digits) or SHA-256 (64).
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
# ``scheme://userinfo@rest``; userinfo may hold ``user:password`` or a bare token.
_URL = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@]*@)(?P<rest>.*)$", re.DOTALL
)
# Git variables that would point ``git status`` at another repository than the one found.
_GIT_ENV_OVERRIDES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_NAMESPACE",
)
_MAX_SYMREF_DEPTH = 5
# What HEAD names in a repository whose refs are in reftable format (git >= 2.45).
_REFTABLE_PLACEHOLDER = ".invalid"


class _GitError(Exception):
    """A problem worth one line in the ``error`` field."""


def strip_url_credentials(url: str) -> str:
    """*url* without any password or token.

    ``https://user:pw@host/r.git`` and ``https://TOKEN@host/r.git`` become
    ``https://host/r.git``. For ``ssh://`` URLs the user name is kept (``git@`` is how
    the server is reached, not a secret) and only a password is dropped; scp-like
    ``git@host:org/r.git`` addresses cannot carry a password and are returned unchanged.
    """
    match = _URL.match(url.strip())
    if not match:
        return url.strip()
    scheme, userinfo, rest = match["scheme"], match["userinfo"][:-1], match["rest"]
    if scheme.lower().rstrip(":/") in ("ssh", "git+ssh", "ssh+git"):
        user = userinfo.partition(":")[0]
        return f"{scheme}{user}@{rest}" if user else f"{scheme}{rest}"
    return f"{scheme}{rest}"


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def _find_repo(start: Path) -> tuple[Path, Path, Path] | None:
    """(work tree root, git dir, common dir) for the repository containing *start*.

    A ``.git`` file (worktrees, submodules) holds ``gitdir: <path>``; a worktree's git
    dir then names the main repository's through a ``commondir`` file, and refs, packed
    refs and config live there.
    """
    for folder in (start, *start.parents):
        dotgit = folder / ".git"
        if dotgit.is_dir():
            gitdir = dotgit
        elif dotgit.is_file():
            content = _read(dotgit).strip()
            if not content.startswith("gitdir:"):
                raise _GitError(f"{dotgit} is not a valid .git file")
            gitdir = Path(content[len("gitdir:") :].strip())
            if not gitdir.is_absolute():
                gitdir = folder / gitdir
            if not gitdir.is_dir():
                raise _GitError(f"{dotgit} points to missing git dir {gitdir}")
        else:
            continue
        common = gitdir
        commondir_file = gitdir / "commondir"
        if commondir_file.is_file():
            common = Path(_read(commondir_file).strip())
            if not common.is_absolute():
                common = gitdir / common
        return folder, gitdir, common
    return None


def _packed_ref(common: Path, ref: str) -> str | None:
    try:
        text = _read(common / "packed-refs")
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        # Header lines start with "#", peeled tag targets with "^".
        if not line or line[0] in "#^":
            continue
        sha, _, name = line.partition(" ")
        if name.strip() == ref:
            return sha.strip()
    return None


def _resolve_ref(gitdir: Path, common: Path, ref: str) -> str | None:
    """The commit *ref* (``refs/heads/x``) points at, or None when it does not exist yet."""
    for _ in range(_MAX_SYMREF_DEPTH):
        # Per-worktree refs live in the worktree's git dir, shared ones in the common dir.
        content = None
        for base in (gitdir, common):
            try:
                content = _read(base / ref).strip()
                break
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
        if content is None:
            return _packed_ref(common, ref)
        if content.startswith("ref:"):
            ref = content[4:].strip()
            continue
        if not _SHA.match(content):
            raise _GitError(f"ref {ref} is corrupt")
        return content
    raise _GitError(f"symbolic ref loop at {ref}")


def _head(gitdir: Path, common: Path) -> tuple[str | None, str | None, bool]:
    """(commit, branch, resolved_from_files) for HEAD."""
    try:
        head = _read(gitdir / "HEAD").strip()
    except OSError as exc:
        raise _GitError(f"cannot read HEAD: {exc.strerror or exc}") from exc
    if _SHA.match(head):
        return head, None, True
    if not head.startswith("ref:"):
        raise _GitError("HEAD is corrupt (neither a ref nor a commit id)")
    ref = head[4:].strip()
    branch = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else None
    commit = _resolve_ref(gitdir, common, ref)
    # Not found in files: an unborn branch (no commit yet) or a reftable repository.
    return commit, branch, commit is not None


def _origin_url(common: Path) -> str | None:
    """``remote.origin.url`` from the repository's config file (includes not followed)."""
    try:
        text = _read(common / "config")
    except OSError:
        return None
    in_origin = False
    url = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            header = line[1 : line.find("]")].strip() if "]" in line else ""
            section, _, sub = header.partition(" ")
            in_origin = section.lower() == "remote" and sub.strip().strip('"') == "origin"
            continue
        if in_origin:
            key, sep, value = line.partition("=")
            if sep and key.strip().lower() == "url":
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                url = value  # the last one wins, as in `git config --get`
    return url


def _run_git(root: Path, args: list[str], timeout: float) -> tuple[int, str, str]:
    """(exit status, stdout, first stderr line) of ``git -C root *args``."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_OVERRIDES}
    # Never block on a credential prompt; never take index.lock (a concurrent `git commit`
    # in a terminal must not fail because nbtrack refreshed the index).
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"
    try:
        proc = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), *args],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            env=env,
            check=False,
        )
    except FileNotFoundError as exc:
        raise _GitError("git executable not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise _GitError(f"git {args[0]} timed out after {timeout:g}s") from exc
    except OSError as exc:
        raise _GitError(f"cannot run git: {exc.strerror or exc}") from exc
    err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), err[0] if err else ""


def _git(root: Path, args: list[str], timeout: float) -> str:
    """stdout of ``git -C root *args``; a non-zero exit raises :class:`_GitError`."""
    code, out, err = _run_git(root, args, timeout)
    if code != 0:
        raise _GitError(f"git {args[0]} failed: {err or f'exit status {code}'}")
    return out


def _rev_parse_head(root: Path, timeout: float) -> str | None:
    """HEAD's commit asked of git, or None on an unborn branch (no commit yet)."""
    code, out, err = _run_git(root, ["rev-parse", "--verify", "--quiet", "HEAD"], timeout)
    if code == 0:
        return out.strip() or None
    if code == 1 and not err:
        # --quiet: exit 1 with nothing on stderr means "HEAD does not name a commit yet".
        return None
    raise _GitError(f"git rev-parse failed: {err or f'exit status {code}'}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def git_info(path: str | os.PathLike[str], *, timeout: float | None = None) -> dict[str, Any]:
    """The git state of the repository that contains *path* (a file or a folder).

    Returns ``{}`` when *path* is not inside a repository, else a dict with ``root``
    (work tree folder), ``commit`` (full id; None before the first commit), ``branch``
    (None when HEAD is detached), ``dirty`` (tracked files modified or staged; untracked
    files do not count) and ``remote`` (origin's URL without credentials, or None).

    Never raises: when something cannot be read, the fields that could be read are kept
    and ``error`` holds one line saying what went wrong (e.g. ``dirty`` is None when the
    git executable is missing or ``git status`` exceeded *timeout*, default
    :data:`GIT_TIMEOUT` seconds).
    """
    limit = GIT_TIMEOUT if timeout is None else timeout
    info: dict[str, Any] = {}
    try:
        # Resolved like `git rev-parse --show-toplevel` reports it (symlinks followed).
        start = Path(os.fspath(path)).resolve()
        if not start.is_dir():
            start = start.parent
        found = _find_repo(start)
        if found is None:
            return {}
        root, gitdir, common = found
        info["root"] = str(root)
        commit, branch, from_files = _head(gitdir, common)
        if branch == _REFTABLE_PLACEHOLDER:
            # reftable storage keeps the real HEAD out of the files: ask git.
            branch = _symbolic_head(root, limit)
        if not from_files:
            # Rare (fresh repository, reftable storage): ask git.
            commit = _rev_parse_head(root, limit)
        info["commit"] = commit
        info["branch"] = branch
        info["remote"] = _origin_url_safe(common)
        info["dirty"] = None
        status = _git(root, ["status", "--porcelain", "--untracked-files=no"], limit)
        info["dirty"] = bool(status.strip())
    except _GitError as exc:
        info["error"] = _one_line(exc)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises"
        info["error"] = f"{type(exc).__name__}: {_one_line(exc)}"
    return info


def _symbolic_head(root: Path, timeout: float) -> str | None:
    """The checked-out branch asked of git, or None when HEAD is detached."""
    code, out, err = _run_git(root, ["symbolic-ref", "--quiet", "--short", "HEAD"], timeout)
    if code == 0:
        return out.strip() or None
    if code == 1 and not err:
        return None
    raise _GitError(f"git symbolic-ref failed: {err or f'exit status {code}'}")


def _origin_url_safe(common: Path) -> str | None:
    url = _origin_url(common)
    return strip_url_credentials(url) if url else None
