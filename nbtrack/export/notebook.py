"""A notebook (or a kernel's history) → a plain Python script, in document order.

No slicing here: every code cell, in the order the document shows them, magics translated;
``%%track`` cells become ``with nbtrack.run(...) as track:`` blocks. Markdown cells become
comments. Cells tagged ``parameters`` (papermill's convention) give the script its flags.
"""

from __future__ import annotations

import os
import sys
import textwrap
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nbtrack.errors import ExportError
from nbtrack.export.cells import (
    apply_track_overrides,
    header,
    run_call,
    untracked_cell,
    with_block,
)
from nbtrack.export.script import (
    Param,
    ScriptSpec,
    dependencies,
    imported_modules,
    literal_values,
    parametrize,
    render,
)
from nbtrack.export.translate import CellSyntaxError, translate_cell

__all__ = ["export_notebook", "export_notebook_node", "export_cells", "read_notebook"]

PYTHON_LANGUAGES = frozenset({"python", "python3", "ipython", "ipython3", "python2"})
PARAMETER_TAGS = frozenset({"parameters", "injected-parameters"})


def read_notebook(path: str | os.PathLike[str]) -> Any:
    """Read a notebook with nbformat (as version 4); :class:`ExportError` if it cannot be."""
    where = Path(path)
    if not where.exists():
        raise ExportError(f"no notebook at {where}; check the path")
    if where.is_dir():
        raise ExportError(f"{where} is a folder; give the path of a .ipynb file")
    try:
        import nbformat
    except ImportError:
        raise ExportError("reading notebooks needs nbformat: pip install nbformat") from None
    try:
        # utf-8-sig: a byte-order mark (some Windows editors add one) is not JSON's business.
        with open(where, encoding="utf-8-sig") as fh, warnings.catch_warnings():
            # nbformat warns about what it repairs (cells without ids): noise on the
            # command line, and nothing the export depends on.
            warnings.simplefilter("ignore")
            notebook = nbformat.read(fh, as_version=4)  # type: ignore[no-untyped-call]
        cells = notebook.get("cells")
        if not isinstance(cells, list):
            raise ValueError("it has no list of cells")
    except Exception as exc:  # NotJSONError, ValidationError, UnicodeDecodeError, ...
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ExportError(
            f"{where} is not a readable Jupyter notebook ({reason}); open it in "
            "Jupyter and save it again, or check it is a .ipynb file"
        ) from None
    return notebook


def _language(notebook: Mapping[str, Any]) -> str | None:
    metadata = notebook.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    for key, field in (("kernelspec", "language"), ("language_info", "name")):
        section = metadata.get(key)
        if isinstance(section, Mapping) and isinstance(section.get(field), str):
            return str(section[field])
    return None


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(part if isinstance(part, str) else str(part) for part in source)
    return str(source or "")


def _writable(text: str) -> str:
    """``text`` fit for a comment of the script: lone surrogates (a JSON escape, an
    undecodable file name) and NUL, which Python refuses anywhere in a source file, are
    shown escaped (``\\udcff``, ``\\x00``). Code holding them is a syntax error instead:
    Python could not compile it, so it never ran."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def export_notebook(
    path: str | os.PathLike[str], *, track: bool = True, allow_ipython: bool = False
) -> str:
    """The script for the notebook at ``path``: its code cells in document order.

    Raises :class:`ExportError` for a file that is not a Python notebook, a cell with a
    syntax error or an unknown magic (unless ``allow_ipython``).
    """
    notebook = read_notebook(path)
    return export_notebook_node(
        notebook, name=Path(path).name, track=track, allow_ipython=allow_ipython
    )


def export_notebook_node(
    notebook: Mapping[str, Any],
    *,
    name: str = "notebook",
    track: bool = True,
    allow_ipython: bool = False,
) -> str:
    """:func:`export_notebook` for a notebook already read (an nbformat node or a dict)."""
    language = _language(notebook)
    if language and language.lower() not in PYTHON_LANGUAGES:
        raise ExportError(f"{name} is written in {language}; nbtrack exports Python notebooks only")
    items: list[tuple[str, str, str, bool]] = []  # (kind, label, source, is parameters)
    for index, cell in enumerate(notebook.get("cells") or [], start=1):
        if not isinstance(cell, Mapping):
            continue
        kind = cell.get("cell_type")
        count = cell.get("execution_count")
        label = f"cell {index}" + (f" (In[{count}])" if count else "")
        metadata = cell.get("metadata")
        tags = (metadata.get("tags") if isinstance(metadata, Mapping) else None) or []
        is_parameters = isinstance(tags, list) and bool(PARAMETER_TAGS & set(map(str, tags)))
        if kind in ("markdown", "code"):
            items.append((str(kind), label, _source(cell), is_parameters))
    return export_cells(
        items,
        title=_writable(f"{name}, exported by nbtrack as a plain Python script."),
        what="the notebook's code cells in document order",
        track=track,
        allow_ipython=allow_ipython,
    )


def export_cells(
    items: Iterable[tuple[str, str, str, bool]],
    *,
    title: str,
    what: str,
    track: bool = True,
    allow_ipython: bool = False,
    skip_invalid: bool = False,
) -> str:
    """A script from ``(kind, label, source, is a parameters cell)`` items, in order.

    ``kind`` is ``"code"`` or ``"markdown"``. Used for notebooks (document order) and for a
    kernel's history (execution order, ``%nbtrack export`` without a notebook), where
    ``skip_invalid`` leaves out cells that do not parse (and so never ran) instead of failing.
    """
    from nbtrack import __version__

    blocks: list[str] = []
    helpers: set[str] = set()
    sources: list[str] = []
    params: dict[str, Any] = {}
    tracked_cells = 0
    for kind, label, source, is_parameters in items:
        if kind == "markdown":
            if source.strip():
                lines = _writable(source).splitlines()
                blocks.append("".join(f"# {line}".rstrip() + "\n" for line in lines))
            continue
        if not source.strip():
            continue
        try:
            translation = translate_cell(source, label=label, allow_ipython=allow_ipython)
        except CellSyntaxError:
            if not skip_invalid:
                raise
            blocks.append(header(label, "not valid Python, so it never ran: left out"))
            continue
        helpers |= translation.helpers
        code = translation.code
        if translation.track is not None:
            options = translation.track
            tracked_cells += 1
            body = apply_track_overrides(code, options, label)
            if track:
                own = literal_values(body)
                literal = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in own.items()) + "}"
                run_params = f"{{**PARAMS, **{literal}}}" if params else literal
                seed = repr(options.seed) if options.seed is not None else None
                code = with_block(run_call(options, params=run_params, seed=seed), body)
            else:
                code, more = untracked_cell(options, body)
                helpers |= more
            sources.append(body)
            blocks.append(header(label, "%%track") + "\n" + code)
            continue
        if is_parameters:
            found = literal_values(code)
            code, _ = parametrize(code, found)
            params.update(found)
        sources.append(code)
        blocks.append(header(label) + "\n" + code)

    extra = [f"nbtrack>={__version__}"] if track and tracked_cells else []
    if "ipython" in helpers:
        extra.append("ipython")
    pins, _ = dependencies(imported_modules(sources), None, extra)
    description = [
        textwrap.fill(
            f"Exported by nbtrack {__version__}: {what}, with IPython magics translated to "
            "plain Python"
            + (
                ", and each %%track cell as a `with nbtrack.run(...)` block that records a run."
                if track and tracked_cells
                else "."
            ),
            88,
        ),
        textwrap.fill(
            "The dependency pins are the versions installed when this was "
            "exported; to reproduce a recorded run exactly, export the run "
            "instead: nbtrack export NOTEBOOK.ipynb --run REF",
            88,
        ),
    ]
    spec = ScriptSpec(
        title=title,
        description=description,
        requires_python=f">={sys.version_info.major}.{sys.version_info.minor}",
        dependencies=pins,
        helpers=helpers,
        params=[Param(k, v) for k, v in params.items()],
        track=track and tracked_cells > 0,
        blocks=blocks,
        defaults_from="notebook",
    )
    return render(spec)
