"""Export: a notebook or a tracked run becomes a plain Python script that reproduces it.

* :func:`export_notebook` — a notebook's code in document order, magics translated.
* :func:`export_run` — the code that actually produced a run, from its execution history,
  reduced to what the tracked cell depends on, with parameters as flags, seeds or RNG
  state, pinned environment and input checks.
* :func:`write_script` — write atomically (never a partial file).
* :func:`verify` — run the script in a fresh process and compare the metrics.
* :func:`main_export` — the ``nbtrack export`` command line.

Nothing here imports IPython at module level; the IPython input transformer and nbformat
are imported only when a cell or a notebook needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "ExportResult",
    "VerifyReport",
    "export_notebook",
    "export_run",
    "write_script",
    "verify",
    "main_export",
]

if TYPE_CHECKING:
    from nbtrack.export.runs import ExportResult
    from nbtrack.export.verification import VerifyReport

_WHERE = {
    "ExportResult": "nbtrack.export.runs",
    "export_run": "nbtrack.export.runs",
    "export_notebook": "nbtrack.export.notebook",
    "write_script": "nbtrack.export.script",
    "verify": "nbtrack.export.verification",
    "VerifyReport": "nbtrack.export.verification",
    "main_export": "nbtrack.export.command",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'nbtrack.export' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
