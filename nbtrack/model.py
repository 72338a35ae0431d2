"""The vocabulary of nbtrack: what a run is made of, as plain frozen dataclasses.

Nothing here touches the store or IPython; records are built by :mod:`nbtrack.store`
and read by :mod:`nbtrack.query`, the CLI and the displays.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class RunStatus(enum.StrEnum):
    """Where a run is in its life."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CRASHED = "crashed"
    #: A sweep trial its pruner stopped early (``track.log`` reported a poor intermediate
    #: value); its metrics up to that step are kept.
    PRUNED = "pruned"


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of one metric."""

    step: int
    value: float
    timestamp: float


@dataclass(frozen=True)
class ArtifactInfo:
    """An artifact attached to a run; its content lives once in the store by hash."""

    name: str
    kind: str  # "file", "dir", "torch_state_dict", "numpy", "pickle", "text", "bytes"
    hash: str
    size: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fingerprint:
    """A content fingerprint of one input: a fast hash plus what describes its shape."""

    name: str  # variable name or path as the cell named it
    kind: str  # "ndarray", "dataframe", "series", "tensor", "file", ...
    hash: str  # "xxh3_128:<hex>"
    size: int  # bytes hashed
    meta: dict[str, Any] = field(default_factory=dict)  # shape, dtype, schema, rows, path...

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "hash": self.hash,
            "size": self.size,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        return cls(
            name=data["name"],
            kind=data["kind"],
            hash=data["hash"],
            size=int(data.get("size", 0)),
            meta=dict(data.get("meta", {})),
        )


@dataclass(frozen=True)
class HistoryEntry:
    """One cell the kernel executed before (or as) the tracked cell."""

    execution_count: int
    source: str
