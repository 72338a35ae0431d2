"""The audit log's hash chain: how an entry is sealed, and how the chain is verified.

Each entry's ``hash`` is SHA-256 over its own fields and the previous entry's hash, so:

* editing any field of an entry changes what its hash should be;
* deleting an entry leaves the next one pointing at a hash that is no longer there, or a
  gap in the sequence numbers, or (the last one) fewer entries than the store counted.

Tamper-evident, not tamper-proof: someone who can write the database can also rewrite
the whole chain after an edit. :attr:`AuditCheck.head` is the hash of the last entry;
keeping it somewhere else (a CI log, a commit message) makes such a rewrite visible too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.errors import AuditLogError
from nbtrack.registry.records import AuditCheck, AuditEntry, Event, Stage

if TYPE_CHECKING:
    from nbtrack.store.registry_base import RegistryWrites

#: The ``prev_hash`` of the first entry.
GENESIS = "0" * 64


def canonical_data(data: Mapping[str, Any]) -> str:
    """``data`` as the JSON text the store keeps and the hash covers (sorted keys)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(
    *,
    seq: int,
    time: float,
    user: str,
    host: str,
    event: str,
    model: str | None,
    version: int | None,
    stage: str | None,
    reason: str | None,
    data_text: str,
    prev_hash: str,
) -> str:
    """The SHA-256 (hex) that seals one entry; ``data_text`` is the stored JSON text."""
    payload = json.dumps(
        [seq, time, user, host, event, model, version, stage, reason, data_text, prev_hash],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def entry_from_row(row: Mapping[str, Any]) -> AuditEntry:
    """An :class:`AuditEntry` from a store row (``data`` is the stored JSON text)."""
    try:
        data = json.loads(row["data"]) if row["data"] else {}
    except ValueError:
        data = {"unreadable": row["data"]}
    return AuditEntry(
        seq=int(row["seq"]),
        time=float(row["time"]),
        user=str(row["user"]),
        host=str(row["host"]),
        event=str(row["event"]),
        model=row["model"],
        version=row["version"],
        stage=row["stage"],
        reason=row["reason"],
        data=data if isinstance(data, dict) else {"value": data},
        prev_hash=str(row["prev_hash"]),
        hash=str(row["hash"]),
    )


def row_hash(row: Mapping[str, Any]) -> str:
    """What the hash of a stored entry (``data`` as its JSON text) should be."""
    return entry_hash(
        seq=int(row["seq"]),
        time=float(row["time"]),
        user=str(row["user"]),
        host=str(row["host"]),
        event=str(row["event"]),
        model=row["model"],
        version=row["version"],
        stage=row["stage"],
        reason=row["reason"],
        data_text=str(row["data"]),
        prev_hash=str(row["prev_hash"]),
    )


def append(
    writer: RegistryWrites,
    event: Event,
    model: str | None,
    version: int | None,
    stage: Stage | None,
    reason: str | None,
    data: dict[str, Any],
    user: str,
    host: str,
    when: float,
    where: str | Path | None = None,
) -> AuditEntry:
    """Seal and append one entry, inside the writer's transaction (so the change it records
    and the entry commit together); returns it. ``where`` names the store in messages."""
    count, newest = writer.audit_head()
    # Refuse to extend a log whose end was cut off or edited: appending would bury the
    # evidence under new entries. (`nbtrack models audit --verify` checks every entry.)
    if (newest is None and count > 0) or (
        newest is not None and (int(newest["seq"]) != count or row_hash(newest) != newest["hash"])
    ):
        raise AuditLogError(
            f"the registry's audit log in {where or 'the store'} was tampered with (its newest "
            "entries were deleted or edited); nothing was changed; run `nbtrack models audit "
            "--verify` and restore the store from a backup"
        )
    row: dict[str, Any] = {
        "seq": count + 1,
        "time": when,
        "user": user,
        "host": host,
        "event": str(event),
        "model": model,
        "version": version,
        "stage": str(stage) if stage is not None else None,
        "reason": reason,
        "data": canonical_data(data),
        "prev_hash": str(newest["hash"]) if newest is not None else GENESIS,
    }
    row["hash"] = row_hash(row)
    writer.append_audit(row)
    return entry_from_row(row)


def to_jsonl(entries: Iterable[AuditEntry]) -> str:
    """The entries as JSON lines (one object per line), oldest first."""
    return "".join(json.dumps(e.to_dict(), default=str) + "\n" for e in entries)


def verify_chain(rows: Iterable[Mapping[str, Any]], expected_count: int) -> AuditCheck:
    """Check stored audit rows (oldest first) against their hashes and each other.

    ``expected_count`` is how many entries the store says it appended; fewer rows means the
    newest ones were deleted. Every problem found is one line in the result.
    """
    problems: list[str] = []
    previous = GENESIS
    expected_seq = 1
    count = 0
    for row in rows:
        count += 1
        seq = int(row["seq"])
        if seq > expected_seq:
            gap = (
                f"entry {expected_seq} is"
                if seq == expected_seq + 1
                else f"entries {expected_seq}..{seq - 1} are"
            )
            problems.append(f"{gap} missing (deleted)")
        elif seq < expected_seq:
            problems.append(f"entry {seq} is out of order (inserted)")
        if row["prev_hash"] != previous:
            problems.append(
                f"entry {seq} does not follow the entry before it (an entry before it was "
                "deleted, inserted or edited)"
            )
        recomputed = row_hash(row)
        if recomputed != row["hash"]:
            problems.append(f"entry {seq} was edited: its content no longer matches its hash")
        previous = str(row["hash"])
        expected_seq = seq + 1
    if count < expected_count:
        problems.append(
            f"the log holds {count} entries but {expected_count} were appended: the newest "
            f"{expected_count - count} were deleted"
        )
    elif count > expected_count:
        problems.append(
            f"the log holds {count} entries but only {expected_count} were appended "
            "(entries were inserted)"
        )
    return AuditCheck(entries=count, head=previous, problems=tuple(problems))


__all__ = [
    "GENESIS",
    "append",
    "to_jsonl",
    "canonical_data",
    "entry_from_row",
    "entry_hash",
    "row_hash",
    "verify_chain",
]
