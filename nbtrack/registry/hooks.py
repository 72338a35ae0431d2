"""Hooks on registry events: callables registered in this process, and commands from the
policy file, run after the event is committed (never before: a hook must not announce a
promotion that did not happen).

A hook that fails is a :class:`RegistryHookWarning`, never an error: the event already
happened, and a broken notifier must not make it look as if it had not.
"""

from __future__ import annotations

import json
import subprocess
import threading
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from nbtrack.registry.records import AuditEntry, Event

#: Seconds a hook command may run.
HOOK_TIMEOUT = 60.0

Callback = Callable[[AuditEntry], object]


class RegistryHookWarning(UserWarning):
    """A registry hook failed; the event it was told about did happen."""


_callbacks: list[tuple[frozenset[str] | None, Callback]] = []
_lock = threading.Lock()


def on_event(callback: Callback, events: Iterable[str | Event] | None = None) -> Callable[[], None]:
    """Call ``callback(entry)`` after each registry event in this process (only ``events``,
    e.g. ``["promote", "rollback"]``, when given). Returns a function that removes it.

    ``entry`` is the event's :class:`~nbtrack.registry.records.AuditEntry`.
    """
    wanted = None
    if events is not None:
        wanted = frozenset(str(Event(str(e))) for e in events)
    item = (wanted, callback)
    with _lock:
        _callbacks.append(item)

    def remove() -> None:
        with _lock:
            if item in _callbacks:
                _callbacks.remove(item)

    return remove


def dispatch(
    entry: AuditEntry, commands: Iterable[tuple[str, ...]], cwd: Path | None = None
) -> None:
    """Tell the callables, then run the commands with ``entry`` as JSON on stdin."""
    with _lock:
        callbacks = list(_callbacks)
    for wanted, callback in callbacks:
        if wanted is not None and entry.event not in wanted:
            continue
        try:
            callback(entry)
        except Exception as exc:
            warnings.warn(
                f"nbtrack: registry hook {getattr(callback, '__name__', callback)!r} failed on "
                f"{entry.event}: {type(exc).__name__}: {exc}",
                RegistryHookWarning,
                stacklevel=3,
            )
    payload = None
    for argv in commands:
        if payload is None:
            payload = json.dumps(entry.to_dict(), default=str)
        problem = _run(argv, payload, cwd)
        if problem:
            warnings.warn(
                f"nbtrack: registry hook `{' '.join(argv)}` on {entry.event}: {problem}",
                RegistryHookWarning,
                stacklevel=3,
            )


def _run(argv: tuple[str, ...], payload: str, cwd: Path | None) -> str | None:
    try:
        done = subprocess.run(
            list(argv),
            input=payload,
            text=True,
            capture_output=True,
            cwd=str(cwd) if cwd is not None else None,
            timeout=HOOK_TIMEOUT,
        )
    except FileNotFoundError:
        return f"{argv[0]!r} was not found"
    except subprocess.TimeoutExpired:
        return f"stopped after {HOOK_TIMEOUT:g} s"
    except OSError as exc:
        return str(exc)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        return f"exited with status {done.returncode}: {tail[0][:200]}"
    return None


__all__ = ["HOOK_TIMEOUT", "RegistryHookWarning", "dispatch", "on_event"]
