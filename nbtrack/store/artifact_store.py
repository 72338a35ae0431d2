"""Where artifact content lives: a local folder, or any fsspec file system (S3, GCS, Azure…).

Content is addressed by its hash: the content with hash ``h`` lives under ``h[:2]/h[2:]``
below the location's root, in a folder as in a bucket. Every store backend (SQLite,
PostgreSQL) keeps its artifact rows in its database and its content behind one
:class:`ArtifactLocation`, chosen by :func:`artifact_location`:

- ``NBTRACK_ARTIFACTS=s3://bucket/prefix`` (any fsspec URL: ``gs://``, ``az://``,
  ``file:///mnt/share/…``), else ``[store] artifacts = "…"`` in the project's
  ``nbtrack.toml``: that location;
- otherwise the store's own ``artifacts/`` folder.

Options for the file system (an endpoint, a region, a profile) come from
``NBTRACK_ARTIFACTS_OPTIONS`` (a JSON object) or ``[store.artifacts_options]``; they are
handed to fsspec and never written to the store or shown. Credentials are best left to the
file system's own configuration (for S3: ``AWS_ACCESS_KEY_ID``…, ``~/.aws``, instance roles).

A write never leaves a partial object under a content name: content goes to a temporary
``.tmp-`` name first and reaches its final name only once it is complete and its size was
checked (a rename locally; on object stores, where nothing renames, a server-side copy,
which creates the final object whole or not at all). ``gc`` removes temporary leftovers.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import xxhash

from nbtrack import config
from nbtrack.errors import ArtifactError, UsageError
from nbtrack.secrets import REDACTED, redact_text

#: Prefix of content being written (a name ``gc`` may remove once it is old enough).
TEMP_PREFIX = ".tmp-"
_CHUNK = 8 << 20


def content_hash(data: bytes | memoryview) -> str:
    """The store's content address: xxh3-128 as 32 hex digits."""
    return xxhash.xxh3_128_hexdigest(data)


def stream_hash(fh: IO[bytes]) -> tuple[str, int]:
    """The content hash and size of what ``fh`` holds, read in 8 MiB chunks."""
    hasher = xxhash.xxh3_128()
    size = 0
    for chunk in iter(lambda: fh.read(_CHUNK), b""):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


def file_hash(path: Path) -> tuple[str, int]:
    """The content hash and size of the file at ``path``."""
    with open(path, "rb") as fh:
        return stream_hash(fh)


@dataclass(frozen=True)
class ArtifactEntry:
    """One stored object: its content hash (``None`` for a temporary leftover), its key in
    the location, size in bytes and modification time (seconds since the epoch)."""

    digest: str | None
    key: str
    size: int
    mtime: float


class ArtifactLocation(ABC):
    """Content-addressed artifact content: put by hash atomically, read, list, delete."""

    #: How messages name the location (a URL's password redacted).
    description: str

    @abstractmethod
    def present(self, digest: str, size: int | None = None) -> bool:
        """Whether content ``digest`` is stored (with ``size`` bytes, when given). Local
        content found is touched, so a concurrent ``gc`` counts it as fresh."""

    @abstractmethod
    def put_bytes(self, digest: str, data: bytes) -> None:
        """Store ``data`` (whose hash is ``digest``) under its content name."""

    @abstractmethod
    def put_file(self, digest: str, source: Path) -> None:
        """Store the file ``source`` (whose hash is ``digest``) under its content name."""

    @abstractmethod
    def read(self, digest: str) -> bytes:
        """The stored bytes (unchecked); :class:`ArtifactError` when missing."""

    @abstractmethod
    def local_file(self, digest: str) -> Path:
        """A local file holding the stored content (unchecked): the file itself for a
        folder, a fresh download into the user's cache otherwise."""

    @abstractmethod
    def stored_hash(self, digest: str) -> str | None:
        """The hash of what is stored under ``digest`` now (``None`` if unreadable)."""

    @abstractmethod
    def entries(self) -> Iterator[ArtifactEntry]:
        """Every object under the location, temporary leftovers included."""

    @abstractmethod
    def delete_if_older(self, entry: ArtifactEntry, cutoff: float) -> int | None:
        """Delete ``entry`` unless it changed after ``cutoff``; its size, or ``None`` when
        it was kept or is already gone."""

    @abstractmethod
    def delete(self, entry: ArtifactEntry) -> bool:
        """Delete ``entry``; whether it was there."""

    def missing(self, digest: str) -> ArtifactError:
        """The one-line error for content that is not there."""
        return ArtifactError(
            f"artifact content {digest[:12]} is missing from {self.description} (it was "
            "deleted or moved, or `nbtrack gc --verify` removed a damaged copy); save the "
            "artifact again"
        )


def _digest_of(parent: str, name: str) -> str | None:
    """The content hash a ``hh/rest`` key stands for, ``None`` for a temporary name."""
    return None if name.startswith(TEMP_PREFIX) else parent + name


class LocalArtifacts(ArtifactLocation):
    """Content in a local folder (the store's ``artifacts/``)."""

    def __init__(self, root: Path) -> None:  # noqa: D107
        self.root = root
        self.description = str(root)

    def path(self, digest: str) -> Path:
        """Where content ``digest`` lives."""
        return self.root / digest[:2] / digest[2:]

    def present(self, digest: str, size: int | None = None) -> bool:  # noqa: D102
        target = self.path(digest)
        try:
            if size is not None and target.stat().st_size != size:
                return False  # a copy of the wrong size is damaged: written again
            # Refreshed so that a concurrent gc counts it as fresh (within its grace)
            # until the run about to refer to it has written its row.
            os.utime(target)
        except FileNotFoundError:
            return False
        except OSError:
            pass  # a shared store whose file another user owns: the content is there
        return True

    def put_bytes(self, digest: str, data: bytes) -> None:  # noqa: D102
        self._atomic_write(self.path(digest), lambda fh: fh.write(data))

    def put_file(self, digest: str, source: Path) -> None:  # noqa: D102
        def copy(out: IO[bytes]) -> None:
            with open(source, "rb") as fh:
                for chunk in iter(lambda: fh.read(_CHUNK), b""):
                    out.write(chunk)

        self._atomic_write(self.path(digest), copy)

    def _atomic_write(self, target: Path, write: Callable[[IO[bytes]], Any]) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
            try:
                with os.fdopen(fd, "wb") as fh:
                    write(fh)
                    fh.flush()
                    # On disk before any row can refer to it: after a power loss the row
                    # may survive and must not point at a file the OS had not written yet.
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise ArtifactError(f"cannot write artifact into {target.parent}: {exc}") from exc

    def read(self, digest: str) -> bytes:  # noqa: D102
        path = self.local_file(digest)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"cannot read artifact content {path}: {exc}") from exc

    def local_file(self, digest: str) -> Path:  # noqa: D102
        path = self.path(digest)
        if not path.is_file():
            raise self.missing(digest)
        return path

    def stored_hash(self, digest: str) -> str | None:  # noqa: D102
        try:
            return file_hash(self.path(digest))[0]
        except OSError:
            return None

    def entries(self) -> Iterator[ArtifactEntry]:  # noqa: D102
        if not self.root.exists():
            return
        for sub in sorted(self.root.iterdir()):
            if not sub.is_dir():
                continue
            for item in sub.iterdir():
                # Size and time are read again when deleting; these are only for listing.
                yield ArtifactEntry(_digest_of(sub.name, item.name), str(item), 0, 0.0)

    def delete_if_older(self, entry: ArtifactEntry, cutoff: float) -> int | None:  # noqa: D102
        item = Path(entry.key)
        try:
            info = item.stat()
            if info.st_mtime > cutoff:
                return None  # possibly in flight in another process
            item.unlink()
        except FileNotFoundError:
            return None  # another gc got there first
        return info.st_size

    def delete(self, entry: ArtifactEntry) -> bool:  # noqa: D102
        try:
            Path(entry.key).unlink()
        except FileNotFoundError:
            return False
        return True


class FsspecArtifacts(ArtifactLocation):
    """Content on any fsspec file system: ``s3://bucket/prefix``, ``gs://…``, ``az://…``."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:  # noqa: D107
        self.description = redact_text(url)
        # A password in the URL is hidden even where a library repeats it out of context
        # (botocore names the "bucket" ``user:password@bucket`` in its errors).
        password = urlsplit(url).password
        self._hidden = [password] if password else []
        try:
            import fsspec.core

            self.fs, root = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            raise ArtifactError(
                f"artifacts at {self.description} need a file system package that is not "
                f"installed ({exc}); for S3 install `pip install 'nbtrack[s3]'`"
            ) from None
        except (ValueError, TypeError) as exc:
            raise ArtifactError(
                f"cannot use {self.description} for artifacts "
                f"({self._redact(str(exc))}); "
                f"check {config.ENV_ARTIFACTS} and its options"
            ) from None
        self.root = str(root).rstrip("/")

    def key(self, digest: str) -> str:
        """The object key of content ``digest``."""
        return f"{self.root}/{digest[:2]}/{digest[2:]}"

    def _redact(self, text: str) -> str:
        """``text`` without the URL's password: its ``:password@`` form whatever its
        length (the value rule skips values too short to tell from ordinary words), then
        every other credential format."""
        for password in self._hidden:
            text = text.replace(f":{password}@", f":{REDACTED}@")
        return redact_text(text, self._hidden)

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """The file system's errors as one line naming the location (never credentials)."""
        try:
            yield
        except ArtifactError:
            raise
        except Exception as exc:
            # One line however many the library wrote (botocore's span several).
            text = self._redact(" ".join(str(exc).split())[:300])
            raise ArtifactError(
                f"cannot {doing} artifact content at {self.description} "
                f"({type(exc).__name__}: {text}); check that it is reachable and the "
                "credentials allow it"
            ) from None

    def _info(self, key: str) -> dict[str, Any] | None:
        # Listings are cached by fsspec; another process may have changed the object.
        self.fs.invalidate_cache(key)
        try:
            info: dict[str, Any] = self.fs.info(key)
        except FileNotFoundError:
            return None
        return info

    def present(self, digest: str, size: int | None = None) -> bool:  # noqa: D102
        with self._errors("check"):
            info = self._info(self.key(digest))
        return info is not None and (size is None or int(info.get("size") or 0) == size)

    def put_bytes(self, digest: str, data: bytes) -> None:  # noqa: D102
        self._commit(digest, len(data), lambda tmp: self.fs.pipe_file(tmp, data))

    def put_file(self, digest: str, source: Path) -> None:  # noqa: D102
        size = source.stat().st_size
        self._commit(digest, size, lambda tmp: self.fs.put_file(str(source), tmp))

    def _commit(self, digest: str, size: int, upload: Callable[[str], Any]) -> None:
        """Upload to a temporary key, check it is whole, then create the final key.

        A process killed during the upload leaves at most the temporary object (``gc``
        removes it); the copy to the final key happens on the server and creates the
        object whole or not at all.
        """
        tmp = f"{self.root}/{digest[:2]}/{TEMP_PREFIX}{uuid.uuid4().hex}"
        with self._errors("write"):
            try:
                if _renames(self.fs):  # a folder needs its parent; object stores have none
                    self.fs.makedirs(f"{self.root}/{digest[:2]}", exist_ok=True)
                upload(tmp)
                info = self._info(tmp)
                stored = int(info.get("size") or 0) if info is not None else -1
                if stored != size:
                    raise ArtifactError(
                        f"artifact content {digest[:12]} reached {self.description} "
                        f"incomplete ({stored} of {size} bytes); save it again"
                    )
                if _renames(self.fs):
                    self.fs.mv(tmp, self.key(digest))
                else:
                    self.fs.copy(tmp, self.key(digest))
            finally:
                with contextlib.suppress(Exception):
                    self.fs.rm_file(tmp)
                self.fs.invalidate_cache(self.root)

    def read(self, digest: str) -> bytes:  # noqa: D102
        with self._errors("read"):
            try:
                data: bytes = self.fs.cat_file(self.key(digest))
            except FileNotFoundError:
                raise self.missing(digest) from None
        return data

    def local_file(self, digest: str) -> Path:  # noqa: D102
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        target = cache / "nbtrack" / "artifacts" / digest[:2] / digest[2:]
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
            os.close(fd)
        except OSError as exc:
            raise ArtifactError(f"cannot download artifact into {target.parent}: {exc}") from exc
        try:
            with self._errors("download"):
                try:
                    self.fs.get_file(self.key(digest), tmp)
                except FileNotFoundError:
                    raise self.missing(digest) from None
            # Downloaded afresh every time: the caller checks the hash of what the
            # location holds now, not of an older copy.
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return target

    def stored_hash(self, digest: str) -> str | None:  # noqa: D102
        try:
            with self.fs.open(self.key(digest), "rb") as fh:
                return stream_hash(fh)[0]
        except Exception:
            return None

    def entries(self) -> Iterator[ArtifactEntry]:  # noqa: D102
        with self._errors("list"):
            self.fs.invalidate_cache(self.root)
            found: dict[str, dict[str, Any]] = self.fs.find(self.root, detail=True)
        prefix = self.root + "/"
        for key, info in sorted(found.items()):
            parts = key[len(prefix) :].split("/") if key.startswith(prefix) else []
            if len(parts) != 2 or len(parts[0]) != 2:
                continue  # not ours: leave it alone
            size = int(info.get("size") or 0)
            yield ArtifactEntry(_digest_of(*parts), key, size, _mtime(info))

    def delete_if_older(self, entry: ArtifactEntry, cutoff: float) -> int | None:  # noqa: D102
        with self._errors("delete"):
            info = self._info(entry.key)
            if info is None or _mtime(info) > cutoff:
                return None
            self.fs.rm_file(entry.key)
        return int(info.get("size") or 0)

    def delete(self, entry: ArtifactEntry) -> bool:  # noqa: D102
        with self._errors("delete"):
            try:
                self.fs.rm_file(entry.key)
            except FileNotFoundError:
                return False
        return True


def _renames(fs: Any) -> bool:
    """Whether ``fs`` renames in place (a local or mounted folder), rather than copying
    (object stores, whose server-side copy is what creates an object whole)."""
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return bool({"file", "local"} & set(protocols))


def _mtime(info: dict[str, Any]) -> float:
    """An object's modification time from an fsspec ``info`` (names differ by backend);
    unknown counts as now, so ``gc`` keeps what it cannot date."""
    for name in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(name)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return time.time()


def configured_artifacts() -> tuple[str, dict[str, Any]] | None:
    """``(url, options)`` of the artifact location the user configured, or ``None``.

    ``NBTRACK_ARTIFACTS`` first, then ``[store] artifacts`` in ``nbtrack.toml``; only a URL
    (``scheme://…``) counts here: a plain folder in ``NBTRACK_ARTIFACTS`` is the PostgreSQL
    store's local artifact folder (nbtrack/store/postgres.py). Options come from
    ``NBTRACK_ARTIFACTS_OPTIONS`` (JSON), else ``[store.artifacts_options]``.
    """
    found = config.project_config()
    section: dict[str, Any] = {}
    if found is not None and isinstance(found[1].get("store"), dict):
        section = found[1]["store"]
    url = os.environ.get(config.ENV_ARTIFACTS) or ""
    if not url and found is not None and section.get("artifacts"):
        url = str(section["artifacts"])
        config.refuse_password_in_file(
            found[0],
            "[store] artifacts",
            url,
            "the file system's own credentials (for S3: ~/.aws/credentials or "
            "$AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY)",
        )
    if "://" not in url:
        return None
    raw = os.environ.get(config.ENV_ARTIFACTS_OPTIONS)
    if raw:
        try:
            options = json.loads(raw)
        except ValueError as exc:
            raise UsageError(
                f"{config.ENV_ARTIFACTS_OPTIONS} is not valid JSON ({exc.args[0]}); set it "
                'to an object such as {"endpoint_url": "http://127.0.0.1:9000"}'
            ) from None
    else:
        options = section.get("artifacts_options", {})
    if not isinstance(options, dict):
        raise UsageError(
            f"{config.ENV_ARTIFACTS_OPTIONS} / [store.artifacts_options] must be a JSON object "
            "or TOML table of file system options"
        )
    return url, options


_locations: dict[tuple[str, str], ArtifactLocation] = {}


def artifact_location(local_root: Path) -> ArtifactLocation:
    """The configured artifact location (:func:`configured_artifacts`), else ``local_root``.

    The configuration is read on every call (an environment lookup and a few ``stat``
    calls), so a notebook that sets ``NBTRACK_ARTIFACTS`` takes effect at its next
    artifact; the file system client itself is made once per URL and options.
    """
    configured = configured_artifacts()
    if configured is None:
        return LocalArtifacts(local_root)
    url, options = configured
    key = (url, json.dumps(options, sort_keys=True, default=str))
    location = _locations.get(key)
    if location is None:
        location = _locations[key] = FsspecArtifacts(url, options)
    return location
