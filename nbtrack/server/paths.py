"""Turn a notebook path from the browser into a file path, confined to the server's root.

Pure: no tornado here, so the rules are testable without a server.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from nbtrack.errors import NbtrackError


class PathRefused(NbtrackError):
    """A path that points outside the server's root folder, or is not a relative API path."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"refused path {path!r}: give a notebook path relative to the server's root folder, "
            "without '..' or a leading '/'"
        )
        self.path = path


def notebook_file(root_dir: str | os.PathLike[str], api_path: str) -> Path:
    """The absolute path of notebook ``api_path`` (a Jupyter contents path) under ``root_dir``.

    Raises :class:`PathRefused` for absolute paths, ``..`` parts, and paths that leave the
    root through a symbolic link. The file need not exist.
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
    real = candidate.resolve()
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
