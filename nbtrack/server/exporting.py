"""``POST /nbtrack/export``: turn a notebook or one run into a script written next to it.

The translation itself belongs to :mod:`nbtrack.export`; this module only picks the file
name (never overwriting a file that is already there) and writes the text.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from nbtrack.errors import ExportError, NbtrackError
from nbtrack.server.paths import api_path
from nbtrack.server.payloads import open_notebook_store


class ExporterMissing(NbtrackError):
    """This nbtrack has no :mod:`nbtrack.export` (or it lacks the function asked for)."""


def _exporter() -> Any:
    try:
        return importlib.import_module("nbtrack.export")
    except ImportError as exc:
        raise ExporterMissing(
            f"this nbtrack cannot export scripts ({exc}); upgrade nbtrack"
        ) from exc


def _text(result: Any) -> str:
    """The script text from whatever the exporter returns (a str or an object holding it)."""
    if isinstance(result, str):
        return result
    for attr in ("script", "source", "text", "code"):
        value = getattr(result, attr, None)
        if isinstance(value, str):
            return value
    raise ExportError(f"the exporter returned {type(result).__name__}, not a script")


def free_path(folder: Path, stem: str) -> Path:
    """``folder/stem.py``, or ``stem-2.py``, ``stem-3.py``… whichever does not exist yet."""
    candidate = folder / f"{stem}.py"
    counter = 2
    while candidate.exists():
        candidate = folder / f"{stem}-{counter}.py"
        counter += 1
    return candidate


def export_script(root_dir: str, notebook: Path, run: str | None) -> dict[str, Any]:
    """Write the script for ``notebook`` (or for its run ``run``) next to it.

    Returns ``{"path": contents path, "file": absolute path, "run": number or None,
    "notes": what the exporter wants the user to know}``.
    """
    if not notebook.is_file():
        raise ExportError(f"notebook {notebook} does not exist; save it first")
    module = _exporter()
    if run is None:
        func = getattr(module, "export_notebook", None)
        if func is None:
            raise ExporterMissing("nbtrack.export has no export_notebook(); upgrade nbtrack")
        text = _text(func(notebook))
        notes: list[str] = []
        target = free_path(notebook.parent, f"{notebook.stem}_script")
        number = None
    else:
        func = getattr(module, "export_run", None)
        if func is None:
            raise ExporterMissing("nbtrack.export has no export_run(); upgrade nbtrack")
        with open_notebook_store(notebook) as store:
            from nbtrack.query import load_record

            record = load_record(store, store.resolve(run))
            result = func(record)
            text = _text(result)
            notes = [str(n) for n in getattr(result, "notes", ())]
            number = record.number
        target = free_path(notebook.parent, f"{notebook.stem}_run{number}")
    write = getattr(module, "write_script", None)
    if write is not None:
        target = Path(write(text, target))  # atomic; refuses to overwrite
    else:
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ExportError(f"cannot write {target} ({exc.strerror}); is the folder writable?") from exc
    return {"path": api_path(root_dir, target), "file": str(target), "run": number,
            "notes": notes}
