"""A recorded run → the script that reproduces it.

The run's execution history (every cell the kernel ran up to the tracked cell, in the
order it ran them, as it ran them) is translated to plain Python, sliced backwards from
the tracked cell (:mod:`nbtrack.export.slicing`) and rendered (:mod:`nbtrack.export.script`)
with the run's parameters as flags, its seed or RNG state, its pinned environment and the
fingerprints of its inputs.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbtrack.errors import ExportError
from nbtrack.export.cells import apply_track_overrides, header, run_call, track_prologue, with_block
from nbtrack.export.defuse import GENERATORS
from nbtrack.export.script import (
    ScriptSpec,
    dependencies,
    imported_modules,
    literal_values,
    parametrize,
    render,
    requirements_text,
    script_params,
)
from nbtrack.export.slicing import SliceResult, backward_slice
from nbtrack.export.translate import (
    CellSyntaxError,
    TrackOptions,
    indent,
    parse_track_line,
    translate_cell,
)

if TYPE_CHECKING:
    from nbtrack.query import RunRecord

__all__ = ["ExportResult", "export_run", "reset_generators"]


@dataclass(frozen=True)
class ExportResult:
    """An exported script and what went into it."""

    script: str
    kept: tuple[int, ...] = ()  # execution counts of the cells kept (the tracked one last)
    dropped: tuple[int, ...] = ()  # execution counts of the cells left out
    skipped: tuple[int, ...] = ()  # cells that do not parse (they never ran)
    dependencies: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    rng_state: dict[str, Any] | None = None
    #: Where the RNG state ships: always inside the script (``_RNG_STATE``), so None.
    rng_file: str | None = None
    title: str = ""
    slice: SliceResult | None = field(default=None, repr=False, compare=False)

    def requirements(self) -> str:
        """The script's pins as a requirements.txt."""
        return requirements_text(self.dependencies, self.title)


def _strip_blank(source: str) -> str:
    return source.lstrip("\n\r\t ")


def reset_generators(record: RunRecord) -> tuple[str, ...]:
    """The global generators set afresh at the tracked cell's start in the script."""
    if record.seed is not None:
        seeded = record.extra.get("seeded") or ["random", "numpy"]
        return tuple(g for g in GENERATORS if g in seeded)
    if record.rng_state:
        return tuple(g for g in GENERATORS if g in record.rng_state)
    return ()


def _track_options(record: RunRecord, tracked_source: str | None) -> TrackOptions:
    line = record.extra.get("magic_line")
    if line is None and tracked_source is not None:
        line = _strip_blank(tracked_source).partition("\n")[0][len("%%track") :]
    return parse_track_line(line or "", f"the %%track line of run #{record.number}", strict=False)


def export_run(
    record: RunRecord, *, track: bool = True, allow_ipython: bool = False, strict: bool = False
) -> ExportResult:
    """The script that reproduces ``record`` from its execution history.

    ``track``: the tracked cell becomes ``with nbtrack.run(...) as track:`` (else plain
    code with a stand-in ``track``). ``allow_ipython``: keep unknown magics as calls into
    IPython instead of failing. ``strict``: the script stops (rather than warns) when an
    input differs from the recorded one. Raises :class:`ExportError` for a run with no
    history, an unknown magic or a tracked cell that does not parse.
    """
    history = list(record.history)
    if not history:
        how = "from a script" if record.kind == "script" else "without its execution history"
        raise ExportError(
            f"run #{record.number} was recorded {how}, so there is no notebook history to "
            "export; export the notebook instead: nbtrack export NOTEBOOK.ipynb -o script.py"
        )
    last = history[-1]
    if _strip_blank(last.source).startswith("%%track"):
        earlier, tracked_count = history[:-1], last.execution_count
        options = _track_options(record, last.source)
    else:
        earlier = history
        tracked_count = int(record.extra.get("execution_count") or last.execution_count + 1)
        options = _track_options(record, None)

    notes: list[str] = []
    cells: list[tuple[int, str]] = []
    cell_helpers: list[set[str]] = []
    skipped: list[int] = []
    for entry in earlier:
        label = f"cell In[{entry.execution_count}]"
        try:
            translation = translate_cell(entry.source, label=label, allow_ipython=allow_ipython)
        except CellSyntaxError:
            skipped.append(entry.execution_count)  # it raised before running anything
            continue
        code = translation.code
        needs = set(translation.helpers)
        if translation.track is not None:
            body = apply_track_overrides(code, translation.track, label)
            prologue, more = track_prologue(translation.track, body)
            code = prologue + body
            needs |= more
        cells.append((entry.execution_count, code))
        cell_helpers.append(needs)

    tracked_label = f"the tracked cell In[{tracked_count}]"
    code = record.code
    if not code.strip() and _strip_blank(last.source).startswith("%%track"):
        # No code blob recorded: the history's tracked cell, with its --set values.
        code = apply_track_overrides(
            _strip_blank(last.source).partition("\n")[2], options, tracked_label
        )
    tracked = translate_cell(code, label=tracked_label, allow_ipython=allow_ipython)
    if tracked.track is not None:
        raise ExportError(f"{tracked_label}: its recorded code starts with %%track again")
    cells.append((tracked_count, tracked.code))
    cell_helpers.append(set(tracked.helpers))

    reset = reset_generators(record)
    failed = failed_cells(record.notebook)
    result = backward_slice(
        cells, reset_rng=reset, whole=[i for i, (c, _) in enumerate(cells[:-1]) if c in failed]
    )
    target = result.target
    kept_cells = [i for i in result.kept_cells() if i != target]

    helpers: set[str] = set()
    for i in [*kept_cells, target]:
        helpers |= cell_helpers[i]
    unresolved = sorted(result.unresolved - {"track"})
    if "display" in unresolved:
        helpers.add("display")
        unresolved.remove("display")
    if unresolved:
        notes.append(
            "names the code uses that no recorded cell defines (they came from "
            "outside the history, e.g. the kernel's start-up or %store): " + ", ".join(unresolved)
        )

    # Parameters: flags whose values replace the literal assignments that set them.
    texts = {i: result.cell_text(i) or "" for i in kept_cells}
    tracked_code = tracked.code
    literal = literal_values(tracked_code)
    tracked_code, replaced = parametrize(tracked_code, record.params)
    for i in reversed(kept_cells):
        wanted = [n for n in record.params if n not in replaced]
        if not wanted:
            break
        found = {n: v for n, v in literal_values(texts[i]).items() if n in wanted}
        if found:
            for name, value in found.items():
                literal.setdefault(name, value)
            texts[i], done = parametrize(texts[i], found)
            replaced |= done
    params = script_params(record.params, literal)

    blocks = []
    total_by_cell: dict[int, int] = {}
    for st in result.statements:
        total_by_cell[st.cell] = total_by_cell.get(st.cell, 0) + 1
    kept_by_cell: dict[int, int] = {}
    for index in result.kept:
        cell = result.statements[index].cell
        kept_by_cell[cell] = kept_by_cell.get(cell, 0) + 1
    for i in kept_cells:
        count = cells[i][0]
        note = (
            ""
            if kept_by_cell[i] == total_by_cell[i]
            else f"{kept_by_cell[i]} of {total_by_cell[i]} statements"
        )
        text = texts[i]
        if count in failed:
            # It stopped at an exception in the notebook; it stops at the same one here.
            helpers.add("failed")
            note = (note + "; " if note else "") + f"raised {failed[count]} in the notebook"
            text = (
                f"try:\n{indent(text.rstrip() + chr(10), '    ')}except Exception as "
                f"_nbtrack_error:\n    _nbtrack_failed({count}, _nbtrack_error)\n"
            )
        blocks.append(header(f"In[{count}]", note) + "\n" + text)

    seed_expr = "SEED" if record.seed is not None else None
    rng_state = record.rng_state if (record.seed is None and record.rng_state) else None
    if record.seed is None and not record.rng_state:
        notes.append(
            "the run had no seed and no recorded RNG state: random draws in the "
            "tracked cell will differ"
        )
    seeded = record.extra.get("seeded") or []
    magic_line = record.extra.get("magic_line") or ""
    lines = [
        header(
            f"In[{tracked_count}]",
            f"the tracked cell (%%track {magic_line.strip()})"
            if magic_line.strip()
            else "the tracked cell",
        )
    ]
    if "torch" in seeded:
        lines.append("import torch  # in use when the run started, so seeded with the rest")
    if record.inputs:
        lines.append("_nbtrack_check_inputs(_INPUTS, globals(), STRICT)")
    if rng_state is not None:
        lines.append("_nbtrack_restore_rng(_RNG_STATE)  # the run had no seed: its RNG state")
    effective = TrackOptions(
        name=record.name,
        seed=record.seed,
        deterministic=record.deterministic,
        tags=options.tags,
        note=options.note,
        no_data=options.no_data,
        no_env=options.no_env,
    )
    epilogue = ""
    if track:
        lines.append(with_block(run_call(effective, params="PARAMS", seed=seed_expr), tracked_code))
    else:
        helpers.add("untracked")
        if record.seed is not None:
            helpers.add("seed")
            lines.append(f"_nbtrack_seed(SEED{', torch_too=True' if 'torch' in seeded else ''})")
        if record.deterministic:
            lines.append(
                "from nbtrack.capture.seeds import set_deterministic as _nbtrack_set_deterministic"
            )
            lines.append("_nbtrack_set_deterministic(torch_too=True)")
        lines.append("track = _nbtrack_untracked()")
        lines.append(tracked_code.rstrip("\n"))
        epilogue = 'print("metrics:", track.metrics)'
    blocks.append("\n".join(lines))

    python = (record.environment.get("python") or {}).get("version")
    sources = [texts[i] for i in kept_cells] + [tracked_code]
    extra = []
    if track or rng_state is not None or record.inputs or record.deterministic:
        from nbtrack import __version__

        extra.append(f"nbtrack>={__version__}")
    if "ipython" in helpers:
        extra.append("ipython")
    recorded_packages = record.environment.get("packages")
    pins, dep_notes = dependencies(imported_modules(sources), recorded_packages, extra)
    if "ipython" in helpers:
        pins = [_pin_from(recorded_packages, "ipython") if p == "ipython" else p for p in pins]
    notes += dep_notes

    kept_counts = tuple(cells[i][0] for i in kept_cells)
    dropped = tuple(c for i, (c, _) in enumerate(cells[:-1]) if i not in set(kept_cells))
    title = (
        f"Reproduce nbtrack run #{record.number}"
        + (f" {record.name!r}" if record.name else "")
        + f" (id {record.id[:12]})."
    )
    spec = ScriptSpec(
        title=title,
        description=_describe(
            record,
            kept_counts,
            tracked_count,
            dropped,
            tuple(skipped),
            notes,
            track,
            params,
            rng_state is not None,
        ),
        python=python,
        requires_python=_requires_python(python),
        dependencies=pins,
        helpers=helpers,
        params=params,
        seed=record.seed,
        strict=strict,
        inputs=[(fp.name, fp.kind, fp.hash, str(fp.meta.get("path", ""))) for fp in record.inputs],
        rng_state=rng_state,
        track=track,
        blocks=blocks,
        epilogue=epilogue,
    )
    return ExportResult(
        script=render(spec),
        kept=(*kept_counts, tracked_count),
        dropped=dropped,
        skipped=tuple(skipped),
        dependencies=tuple(pins),
        notes=tuple(notes),
        rng_state=rng_state,
        title=title,
        slice=result,
    )


def failed_cells(notebook: str | None) -> dict[int, str]:
    """Execution counts whose cell still shows an error in the saved notebook, with the
    exception's name. Empty when the notebook is gone or unreadable: the kernel's history
    itself does not say which cells raised."""
    import json

    if not notebook:
        return {}
    try:
        with open(notebook, encoding="utf-8") as fh:
            data = json.load(fh)
        found = {}
        for cell in data.get("cells", []):
            count = cell.get("execution_count")
            for output in cell.get("outputs", []) if isinstance(count, int) else []:
                if output.get("output_type") == "error":
                    found[count] = str(output.get("ename") or "an exception")
        return found
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _pin_from(recorded: dict[str, str] | None, dist: str) -> str:
    for name, version in (recorded or {}).items():
        if name.lower() == dist:
            return f"{name}=={version}"
    return dist


def _requires_python(version: str | None) -> str | None:
    if not version:
        return None
    parts = version.split(".")
    return f"=={parts[0]}.{parts[1]}.*" if len(parts) >= 2 else None


def _cells_text(counts: tuple[int, ...]) -> str:
    return ", ".join(f"In[{c}]" for c in counts) if counts else "none"


def _describe(
    record: RunRecord,
    kept: tuple[int, ...],
    tracked: int,
    dropped: tuple[int, ...],
    skipped: tuple[int, ...],
    notes: list[str],
    track: bool,
    params: list[Any],
    restores_rng: bool,
) -> list[str]:
    from nbtrack import __version__

    wrap = textwrap.TextWrapper(width=88)
    parts = [
        wrap.fill(
            f"Exported by nbtrack {__version__} from the run's execution history: the cells the "
            f"tracked cell In[{tracked}] depends on, in the order the kernel ran them "
            f"({_cells_text(kept)}), then the tracked cell"
            + (
                " as a `with nbtrack.run(...)` block, so running this records a new run."
                if track
                else ", untracked."
            )
        )
    ]
    if dropped:
        parts.append(
            wrap.fill(f"Left out (the run does not depend on them): {_cells_text(dropped)}.")
        )
    if skipped:
        parts.append(wrap.fill(f"Not valid Python, so they never ran: {_cells_text(skipped)}."))
    if record.seed is not None:
        parts.append(f"Seed: {record.seed}, set as the run set it (`--seed` changes it).")
    elif restores_rng:
        parts.append(
            wrap.fill(
                "The run had no seed: the RNG state it started from ships in "
                "this file (_RNG_STATE) and is restored before the tracked "
                "cell."
            )
        )
    usage = [
        "    python SCRIPT.py" + "".join(f" --{p.name.replace('_', '-')} ..." for p in params[:3]),
        "    python SCRIPT.py --help",
        "    uv run SCRIPT.py        # first rebuilds the pinned environment",
    ]
    parts.append("Usage:\n\n" + "\n".join(usage))
    if record.status != "finished":
        parts.append(f"Note: the recorded run's status is {record.status}.")
    for note in notes:
        parts.append(wrap.fill("Note: " + note))
    return parts
