"""Turn a notebook path from the browser into a file path, confined to the server's root.

Pure: no tornado here, so the rules are testable without a server.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePosixPath

from nbtrack.errors import NbtrackError


class PathRefused(NbtrackError):
    """A path that points outside the server's root folder, or is not a relative API path."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"refused path {path!r:.200}: give a notebook path relative to the server's root folder, "
            "without '..' or a leading '/'"
        )
        self.path = path


class BadNotebookPath(NbtrackError):
    """A path inside the root that no file can have: too long, not text, a symlink loop."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"bad notebook path {path!r:.200}: it {why}; check the path")
        self.path = path


def notebook_file(root_dir: str | os.PathLike[str], api_path: str) -> Path:
    """The absolute path of notebook ``api_path`` (a Jupyter contents path) under ``root_dir``.

    Raises :class:`PathRefused` for absolute paths, ``..`` parts, and paths that leave the
    root through a symbolic link; :class:`BadNotebookPath` for one the file system cannot
    look up (a name too long, a lone surrogate, a symlink loop). The file need not exist.
    """
    text = (api_path or "").replace("\\", "/")
    if not text or "\x00" in text:
        raise PathRefused(api_path)
    parts = PurePosixPath(text).parts
    if text.startswith("/") or ".." in parts or ":" in parts[0]:
        raise PathRefused(api_path)
    root = Path(root_dir).expanduser().absolute()
    candidate = root.joinpath(*parts)
    real_root = root.resolve()
    try:
        real = candidate.resolve()
        os.lstat(candidate)  # what the store lookup and the exporter will do next
    except RuntimeError:  # Python < 3.13 reports a symlink loop so
        raise BadNotebookPath(api_path, "goes round a loop of symbolic links") from None
    except UnicodeError:
        raise BadNotebookPath(api_path, "is not valid text (a lone surrogate)") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise BadNotebookPath(api_path, "is too long for the file system") from None
        if exc.errno == errno.ELOOP:
            raise BadNotebookPath(api_path, "goes round a loop of symbolic links") from None
        real = candidate.resolve()  # missing (or under a file): the file need not exist
    if real != real_root and real_root not in real.parents:
        raise PathRefused(api_path)
    return candidate


def api_path(
    root_dir: str | os.PathLike[str], file_path: str | os.PathLike[str] | None
) -> str | None:
    """``file_path`` as a contents path relative to ``root_dir``, or ``None`` when outside it."""
    if not file_path:
        return None
    root = Path(root_dir).expanduser().absolute()
    for base, target in ((root, Path(file_path)), (root.resolve(), Path(file_path).resolve())):
        try:
            return target.relative_to(base).as_posix()
        except ValueError:
            continue
    return None
