"""Turning objects into stored artifacts and back.

Files are copied by content; a directory is stored file by file with a manifest; a torch
module is stored as its ``state_dict``; a NumPy array as ``.npy``; text and bytes as they
are; anything else is pickled (with a warning, because unpickling needs the same code).
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from nbtrack.errors import ArtifactError
from nbtrack.store.sqlite import Store

#: What :func:`save_artifact` returns: kind, hash, size, meta, and an optional warning.
Saved = tuple[str, str, int, dict[str, Any], str | None]


def default_name(obj: Any) -> str:
    """A name for an artifact when the user gave none."""
    if isinstance(obj, (str, os.PathLike)):
        return Path(obj).name or str(obj)
    return type(obj).__name__.lower()


def save_artifact(store: Store, obj: Any) -> Saved:
    """Store ``obj`` (a path, a torch module, an array, text, bytes or a picklable object)."""
    if isinstance(obj, (str, os.PathLike)) and _is_existing_path(obj):
        path = Path(obj)
        if path.is_dir():
            return _save_dir(store, path)
        digest, size = store.put_artifact_file(path)
        return "file", digest, size, {"filename": path.name, "source": str(path.absolute())}, None
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        buffer = io.BytesIO()
        torch.save(obj.state_dict(), buffer)
        digest, size = store.put_artifact_bytes(buffer.getvalue())
        return "torch_state_dict", digest, size, {"class": type(obj).__name__}, None
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(obj, numpy.ndarray) and obj.dtype != object:
        buffer = io.BytesIO()
        numpy.save(buffer, obj, allow_pickle=False)
        digest, size = store.put_artifact_bytes(buffer.getvalue())
        return "numpy", digest, size, {"shape": list(obj.shape), "dtype": str(obj.dtype)}, None
    if isinstance(obj, str):
        digest, size = store.put_artifact_bytes(obj.encode("utf-8"))
        return "text", digest, size, {}, None
    if isinstance(obj, (bytes, bytearray, memoryview)):
        digest, size = store.put_artifact_bytes(bytes(obj))
        return "bytes", digest, size, {}, None
    try:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise ArtifactError(
            f"cannot store a {type(obj).__name__} as an artifact: it is not a path, a torch "
            f"module, an array, text or bytes, and pickling failed ({exc}); save it to a file "
            "and pass the path"
        ) from exc
    digest, size = store.put_artifact_bytes(data)
    warning = (
        f"artifact of type {type(obj).__name__} was stored with pickle; loading it needs "
        "the same code and library versions"
    )
    return (
        "pickle",
        digest,
        size,
        {"class": f"{type(obj).__module__}.{type(obj).__qualname__}"},
        warning,
    )


def _is_existing_path(obj: Any) -> bool:
    try:
        return len(str(obj)) < 4096 and "\n" not in str(obj) and Path(obj).exists()
    except (OSError, ValueError):
        return False


def _save_dir(store: Store, root: Path) -> Saved:
    files: dict[str, str] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest, size = store.put_artifact_file(path)
            files[path.relative_to(root).as_posix()] = digest
            total += size
    manifest = "\n".join(f"{rel}\t{digest}" for rel, digest in files.items()).encode()
    digest, _ = store.put_artifact_bytes(manifest)
    return "dir", digest, total, {"files": files, "source": str(root.absolute())}, None


def load_artifact(store: Store, kind: str, digest: str, meta: dict[str, Any]) -> Any:
    """Bring an artifact back: a path for files and folders, the object otherwise.

    Every file is checked against its content hash first: content that is missing or
    damaged raises :class:`~nbtrack.errors.ArtifactError` (one line) rather than being
    handed out as valid. A ``torch_state_dict`` comes back as the state dict (load it into
    your model with ``model.load_state_dict``); a pickled object is unpickled (only load
    artifacts you trust).
    """
    if kind == "dir":
        files = meta.get("files", {})
        checked = {rel: store.checked_artifact_file(d) for rel, d in files.items()}
        target = Path(tempfile.mkdtemp(prefix="nbtrack-artifact-"))
        for rel, source in checked.items():
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
        return target
    if kind == "file":
        return store.checked_artifact_file(digest)
    data = store.read_artifact(digest)
    if kind == "text":
        return data.decode("utf-8")
    if kind == "bytes":
        return data
    if kind == "numpy":
        import numpy

        return numpy.load(io.BytesIO(data), allow_pickle=False)
    if kind == "torch_state_dict":
        import torch

        return torch.load(io.BytesIO(data), weights_only=True)
    if kind == "pickle":
        return pickle.loads(data)
    raise ArtifactError(f"unknown artifact kind {kind!r}; upgrade nbtrack to load it")
