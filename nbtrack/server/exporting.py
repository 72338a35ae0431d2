"""``POST /nbtrack/export``: turn a notebook or one run into a script written next to it.

The translation itself belongs to :mod:`nbtrack.export`; this module only picks the file
name (never overwriting a file that is already there) and writes the text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbtrack.errors import ExportError
from nbtrack.server.paths import api_path
from nbtrack.server.payloads import open_notebook_store


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
    from nbtrack.export import export_notebook, export_run, write_script

    if run is None:
        text = export_notebook(notebook)
        notes: list[str] = []
        target = free_path(notebook.parent, f"{notebook.stem}_script")
        number = None
    else:
        with open_notebook_store(notebook) as store:
            from nbtrack.query import load_record

            record = load_record(store, store.resolve(run))
            result = export_run(record)
            text, notes, number = result.script, list(result.notes), record.number
        target = free_path(notebook.parent, f"{notebook.stem}_run{number}")
    target = Path(write_script(text, target))  # atomic; refuses to overwrite
    return {"path": api_path(root_dir, target), "file": str(target), "run": number, "notes": notes}
