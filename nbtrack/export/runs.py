"""A recorded run → the script that reproduces it, as a pipeline of named stages.

Each stage is a function of plain values that returns a frozen dataclass, so each can be
tested alone on a hand-built history:

1. :func:`translate_history` — the run's execution history (every cell the kernel ran up
   to the tracked cell, in the order it ran them, as it ran them) as plain-Python cells,
   and the tracked cell's ``%%track`` options (:mod:`nbtrack.export.translate`);
2. :func:`slice_history` — the backward slice from the tracked cell
   (:mod:`nbtrack.export.slicing`): which cells and statements the run depends on;
3. :func:`params_as_flags` — which recorded parameters become the script's flags, and the
   code with ``PARAMS["name"]`` where their values were;
4. :func:`pin_dependencies` — the pinned distributions the code imports;
5. :func:`describe_run` — the script's title, docstring paragraphs and notes;
6. :func:`render_run` — the script itself (:mod:`nbtrack.export.script`).

A run that was stopped part-way (a sweep trial its pruner stopped, recorded with
``extra["stopped_at"]``; :func:`stopped_at`) exports to a script that stops at the same
metric and step: ``nbtrack.run(..., stop_at=...)``, or the untracked stand-in's stop.

:func:`export_run` composes them.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbtrack.errors import ExportError, NbtrackError
from nbtrack.export.cells import (
    apply_track_overrides,
    header,
    run_call,
    track_prologue,
    until_stopped,
    untracked_cell,
    with_block,
)
from nbtrack.export.defuse import GENERATORS
from nbtrack.export.script import (
    Param,
    ScriptSpec,
    dependencies,
    imported_modules,
    literal_values,
    parametrize,
    render,
    script_params,
    secrets_from_env,
)
from nbtrack.export.slicing import backward_slice
from nbtrack.export.translate import CellSyntaxError, indent, track_options, translate_cell
from nbtrack.secrets import REDACTED, Redactor
from nbtrack.trackline import TrackOptions

if TYPE_CHECKING:
    from nbtrack.records import RunRecord

__all__ = [
    "ExportResult",
    "TranslatedHistory",
    "SlicedHistory",
    "Flags",
    "Pins",
    "Description",
    "export_run",
    "translate_history",
    "slice_history",
    "params_as_flags",
    "pin_dependencies",
    "describe_run",
    "render_run",
    "reset_generators",
    "failed_cells",
    "stopped_at",
]


@dataclass(frozen=True)
class ExportResult:
    """An exported script and what went into it."""

    script: str
    kept: tuple[int, ...] = ()  # execution counts of the cells kept (the tracked one last)
    dropped: tuple[int, ...] = ()  # execution counts of the cells left out
    skipped: tuple[int, ...] = ()  # cells that do not parse (they never ran)
    dependencies: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


# --- 1. translate --------------------------------------------------------------------------


@dataclass(frozen=True)
class TranslatedHistory:
    """The history as plain Python: ``(execution count, code)`` per cell, the tracked cell
    last (its body only); the preamble helpers each cell calls; the tracked cell's options."""

    cells: tuple[tuple[int, str], ...]
    helpers: tuple[frozenset[str], ...]  # aligned with ``cells``
    options: TrackOptions
    skipped: tuple[int, ...] = ()  # cells that do not parse: they raised before running

    @property
    def tracked_count(self) -> int:
        """The tracked cell's execution count."""
        return self.cells[-1][0]


def _strip_blank(source: str) -> str:
    return source.lstrip("\n\r\t ")


def translate_history(record: RunRecord, *, allow_ipython: bool = False) -> TranslatedHistory:
    """Stage 1: ``record``'s history as plain-Python cells, and its ``%%track`` options.

    Earlier ``%%track`` cells become untracked code (they ran as part of this run's past,
    not as this run). Raises :class:`ExportError` for a run with no history, an unknown
    magic, or a tracked cell that does not parse.
    """
    history = list(record.history)
    if not history:
        how = "from a script" if record.kind == "script" else "without its execution history"
        raise ExportError(
            f"run #{record.number} was recorded {how}, so there is no notebook history to "
            "export; export the notebook instead: nbtrack export NOTEBOOK.ipynb -o script.py"
        )
    last = history[-1]
    line = record.extra.get("magic_line")
    if _strip_blank(last.source).startswith("%%track"):
        earlier, tracked_count = history[:-1], last.execution_count
        if line is None:
            line = _strip_blank(last.source).partition("\n")[0][len("%%track") :]
    else:
        earlier = history
        tracked_count = int(record.extra.get("execution_count") or last.execution_count + 1)
    # strict=False: the line was valid for the nbtrack that ran it, whatever this one knows.
    options = track_options(line or "", f"the %%track line of run #{record.number}", strict=False)

    cells: list[tuple[int, str]] = []
    helpers: list[frozenset[str]] = []
    skipped: list[int] = []
    for entry in earlier:
        label = f"cell In[{entry.execution_count}]"
        try:
            translation = translate_cell(entry.source, label=label, allow_ipython=allow_ipython)
        except CellSyntaxError:
            skipped.append(entry.execution_count)
            continue
        code, needs = translation.code, translation.helpers
        if translation.track is not None:
            try:
                body = apply_track_overrides(code, translation.track, label)
            except ExportError:
                # The magic applies --set with the same rule and refused this cell: it never ran.
                skipped.append(entry.execution_count)
                continue
            code, more = untracked_cell(translation.track, body)
            needs |= more
        cells.append((entry.execution_count, code))
        helpers.append(needs)

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
    helpers.append(tracked.helpers)
    return TranslatedHistory(tuple(cells), tuple(helpers), options, tuple(skipped))


# --- 2. slice ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlicedHistory:
    """What the tracked cell depends on.

    ``kept``: indices (into the translated cells) of the earlier cells kept, in execution
    order; ``texts``: the kept part of each (aligned with ``kept``); ``statements``:
    ``(kept, total)`` statement counts of each. ``failed``: execution counts of cells that
    raised in the notebook, with the exception's name.
    """

    kept: tuple[int, ...]
    texts: tuple[str, ...]
    statements: tuple[tuple[int, int], ...]
    tracked_code: str
    helpers: frozenset[str]  # the preamble helpers the kept code calls
    dropped: tuple[int, ...]  # execution counts of the earlier cells left out
    failed: Mapping[int, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def slice_history(
    history: TranslatedHistory,
    *,
    reset_rng: Sequence[str] = (),
    failed: Mapping[int, str] | None = None,
) -> SlicedHistory:
    """Stage 2: the backward slice from the tracked cell.

    ``reset_rng``: the global generators the script sets afresh before the tracked cell
    (:func:`reset_generators`), so earlier draws from them are not dependencies.
    ``failed``: cells that raised in the notebook (:func:`failed_cells`); they are kept
    whole, since how far they got is unknown.
    """
    failed = dict(failed or {})
    cells = list(history.cells)
    result = backward_slice(
        cells,
        reset_rng=tuple(reset_rng),
        whole=[i for i, (count, _) in enumerate(cells[:-1]) if count in failed],
    )
    target = result.target
    kept = [i for i in result.kept_cells() if i != target]
    helpers: set[str] = set()
    for i in [*kept, target]:
        helpers |= history.helpers[i]
    unresolved = sorted(result.unresolved - {"track"})
    if "display" in unresolved:  # IPython's builtin: the preamble defines a stand-in
        helpers.add("display")
        unresolved.remove("display")
    notes = []
    if unresolved:
        notes.append(
            "names the code uses that no recorded cell defines (they came from "
            "outside the history, e.g. the kernel's start-up or %store): " + ", ".join(unresolved)
        )
    total: dict[int, int] = {}
    for st in result.statements:
        total[st.cell] = total.get(st.cell, 0) + 1
    kept_statements: dict[int, int] = {}
    for index in result.kept:
        cell = result.statements[index].cell
        kept_statements[cell] = kept_statements.get(cell, 0) + 1
    kept_set = set(kept)
    return SlicedHistory(
        kept=tuple(kept),
        texts=tuple(result.cell_text(i) or "" for i in kept),
        statements=tuple((kept_statements[i], total[i]) for i in kept),
        tracked_code=cells[target][1],
        helpers=frozenset(helpers),
        dropped=tuple(c for i, (c, _) in enumerate(cells[:-1]) if i not in kept_set),
        failed=failed,
        notes=tuple(notes),
    )


# --- 3. parameters as flags ----------------------------------------------------------------


@dataclass(frozen=True)
class Flags:
    """The script's parameter flags and the code that reads them.

    ``texts`` (aligned with :attr:`SlicedHistory.kept`) and ``tracked_code`` have
    ``PARAMS["name"]`` where each flag's recorded value was bound; ``not_flags`` names the
    recorded params with no binding to replace (no flag: it would change nothing).
    ``secrets`` names what the code reads from the environment instead (never a flag);
    ``helpers`` are the preamble helpers that takes.
    """

    params: tuple[Param, ...]
    texts: tuple[str, ...]
    tracked_code: str
    not_flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    helpers: frozenset[str] = frozenset()


def params_as_flags(sliced: SlicedHistory, recorded: Mapping[str, Any]) -> Flags:
    """Stage 3: the recorded parameters ``recorded`` as flags.

    A param's binding is looked for in the tracked cell first, then in the kept cells from
    the latest back (the binding the run actually read); only params whose binding is
    replaced become flags. A secret (recorded as ``<redacted>``, or secret by
    :mod:`nbtrack.secrets`' rule) is never a flag: every secret binding in the code reads
    an environment variable of the same name instead (:func:`secrets_from_env`).
    """
    judge = Redactor()
    secret = [name for name, value in recorded.items() if judge.is_secret_param(name, value)]
    recorded = {name: value for name, value in recorded.items() if name not in secret}
    texts = list(sliced.texts)
    literal = literal_values(sliced.tracked_code)
    tracked_code, replaced = parametrize(sliced.tracked_code, recorded)
    for position in reversed(range(len(texts))):
        wanted = [name for name in recorded if name not in replaced]
        if not wanted:
            break
        found = {n: v for n, v in literal_values(texts[position]).items() if n in wanted}
        if found:
            for name, value in found.items():
                literal.setdefault(name, value)
            texts[position], done = parametrize(texts[position], found)
            replaced |= done
    flagged = {name: value for name, value in recorded.items() if name in replaced}
    params = script_params(flagged, literal, replaced=replaced)
    not_flags = tuple(name for name in recorded if name not in {p.name for p in params})
    notes = []
    if not_flags:
        notes.append(
            "recorded parameters that are not flags, because the exported code has no "
            "literal assignment of them to replace (set with track.log_params, or computed), "
            "so a flag would change nothing: " + ", ".join(not_flags)
        )
    read: list[str] = []
    for position, text in enumerate(texts):
        texts[position], names = secrets_from_env(text, secret, judge)
        read += names
    tracked_code, names = secrets_from_env(tracked_code, secret, judge)
    read = list(dict.fromkeys([*read, *names]))
    if read:
        notes.append(
            "secrets are not flags and are not in this file (nbtrack never stored them): the "
            "script reads each from the environment variable of the same name, and stops "
            "with a message when it is not set: " + ", ".join(read)
        )
    left = sum(text.count(REDACTED) for text in [*texts, tracked_code])
    if left:
        notes.append(
            f"the code holds {left} more secret(s) nbtrack removed when recording, shown as "
            f"{REDACTED!r}; put the real values there before running"
        )
    return Flags(
        tuple(params),
        tuple(texts),
        tracked_code,
        not_flags,
        tuple(notes),
        tuple(read),
        frozenset({"secret"}) if read else frozenset(),
    )


# --- 4. pin --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pins:
    """The script's pinned distributions (PEP 508), and notes about versions not recorded."""

    dependencies: tuple[str, ...]
    notes: tuple[str, ...] = ()


def pin_dependencies(
    sources: Sequence[str],
    recorded: Mapping[str, str] | None,
    *,
    needs_nbtrack: bool,
    needs_ipython: bool,
) -> Pins:
    """Stage 4: pins for what ``sources`` import, at the versions the run ``recorded``.

    ``needs_nbtrack``: the script calls nbtrack (a run block, RNG restore, input checks,
    determinism); ``needs_ipython``: it keeps magics as IPython calls (``--allow-ipython``).
    """
    extra = []
    if needs_nbtrack:
        from nbtrack import __version__

        extra.append(f"nbtrack>={__version__}")
    if needs_ipython:
        extra.append("ipython")
    pins, notes = dependencies(imported_modules(sources), recorded, extra)
    if needs_ipython:
        pins = [_pin_from(recorded, "ipython") if p == "ipython" else p for p in pins]
    return Pins(tuple(pins), tuple(notes))


def _pin_from(recorded: Mapping[str, str] | None, dist: str) -> str:
    for name, version in (recorded or {}).items():
        if name.lower() == dist:
            return f"{name}=={version}"
    return dist


# --- 5. describe ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Description:
    """The script's title (its docstring's first line), the paragraphs after it, and every
    note (also shown to the user who exports)."""

    title: str
    paragraphs: tuple[str, ...]
    notes: tuple[str, ...] = ()


def describe_run(
    record: RunRecord,
    history: TranslatedHistory,
    sliced: SlicedHistory,
    flags: Flags,
    pins: Pins,
    *,
    track: bool,
) -> Description:
    """Stage 5: what the script's docstring says: which cells it holds and why, its seed or
    RNG state, how to run it, and the notes of the earlier stages."""
    from nbtrack import __version__

    notes = [*sliced.notes, *flags.notes]
    if record.seed is None and not record.rng_state:
        notes.append(
            "the run had no seed and no recorded RNG state: random draws in the "
            "tracked cell will differ"
        )
    notes += pins.notes
    stop = stopped_at(record)
    if stop is None and record.extra.get("stopped_at") is not None:
        notes.append(
            f"the run records where it stopped in a form this nbtrack does not read "
            f"({record.extra['stopped_at']!r}): the script runs the tracked cell to its end"
        )
    kept = tuple(history.cells[i][0] for i in sliced.kept)
    wrap = textwrap.TextWrapper(width=88)
    parts = [
        wrap.fill(
            f"Exported by nbtrack {__version__} from the run's execution history: the cells the "
            f"tracked cell In[{history.tracked_count}] depends on, in the order the kernel ran "
            f"them ({_cells_text(kept)}), then the tracked cell"
            + (
                " as a `with nbtrack.run(...)` block, so running this records a new run."
                if track
                else ", untracked."
            )
        )
    ]
    if sliced.dropped:
        parts.append(
            wrap.fill(f"Left out (the run does not depend on them): {_cells_text(sliced.dropped)}.")
        )
    if history.skipped:
        parts.append(
            wrap.fill(f"Not valid Python, so they never ran: {_cells_text(history.skipped)}.")
        )
    if record.seed is not None:
        parts.append(f"Seed: {record.seed}, set as the run set it (`--seed` changes it).")
    elif _shipped_rng_state(record) is not None:
        parts.append(
            wrap.fill(
                "The run had no seed: the RNG state it started from ships in "
                "this file (_RNG_STATE) and is restored before the tracked "
                "cell."
            )
        )
    usage = [
        "    python SCRIPT.py"
        + "".join(f" --{p.name.replace('_', '-')} ..." for p in flags.params[:3]),
        "    python SCRIPT.py --help",
        "    uv run SCRIPT.py        # first rebuilds the pinned environment",
    ]
    parts.append("Usage:\n\n" + "\n".join(usage))
    if stop is not None:
        metric, step = stop
        how = "pruned" if record.status == "pruned" else "stopped"
        by = "by its sweep " if record.extra.get("sweep") else ""
        parts.append(
            wrap.fill(
                f"Run #{record.number} was {how} {by}at step {step} of {metric}; "
                "the script stops there too."
            )
        )
    elif record.status != "finished":
        parts.append(f"Note: the recorded run's status is {record.status}.")
    parts += [wrap.fill("Note: " + note) for note in notes]
    title = (
        f"Reproduce nbtrack run #{record.number}"
        + (f" {record.name!r}" if record.name else "")
        + f" (id {record.id[:12]})."
    )
    return Description(title, tuple(parts), tuple(notes))


def _cells_text(counts: Sequence[int]) -> str:
    return ", ".join(f"In[{c}]" for c in counts) if counts else "none"


# --- 6. render -----------------------------------------------------------------------------


def render_run(
    record: RunRecord,
    history: TranslatedHistory,
    sliced: SlicedHistory,
    flags: Flags,
    pins: Pins,
    description: Description,
    *,
    track: bool = True,
    strict: bool = False,
) -> ExportResult:
    """Stage 6: the script: the kept cells, then the tracked cell as a run block (or
    untracked, after the seeding the magic did), with the run's seed or RNG state and
    input checks."""
    helpers = set(sliced.helpers) | flags.helpers
    blocks = []
    for index, text, (kept, total) in zip(sliced.kept, flags.texts, sliced.statements):
        count = history.cells[index][0]
        note = "" if kept == total else f"{kept} of {total} statements"
        if count in sliced.failed:
            # It stopped at an exception in the notebook; it stops at the same one here.
            helpers.add("failed")
            note = (note + "; " if note else "") + f"raised {sliced.failed[count]} in the notebook"
            text = (
                f"try:\n{indent(text.rstrip() + chr(10), '    ')}except Exception as "
                f"_nbtrack_error:\n    _nbtrack_failed({count}, _nbtrack_error)\n"
            )
        blocks.append(header(f"In[{count}]", note) + "\n" + text)

    rng_state = _shipped_rng_state(record)
    seeded = record.extra.get("seeded") or []
    magic_line = (record.extra.get("magic_line") or "").strip()
    lines = [
        header(
            f"In[{history.tracked_count}]",
            f"the tracked cell (%%track {magic_line})" if magic_line else "the tracked cell",
        )
    ]
    if "torch" in seeded:
        lines.append("import torch  # in use when the run started, so seeded with the rest")
    if record.inputs:
        lines.append("_nbtrack_check_inputs(_INPUTS, globals(), STRICT)")
    if rng_state is not None:
        lines.append("_nbtrack_restore_rng(_RNG_STATE)  # the run had no seed: its RNG state")
    seed = "SEED" if record.seed is not None else None
    stop = stopped_at(record)
    epilogue = ""
    if track:
        # What the run actually used (the record), with the line's other options.
        effective = dataclasses.replace(
            history.options,
            name=record.name,
            seed=record.seed,
            deterministic=record.deterministic,
            overrides=(),
            # The project the run recorded, wherever it came from ($NBTRACK_PROJECT,
            # nbtrack.toml): the script's run lands in the same project.
            project=record.project,
        )
        call = run_call(effective, params="PARAMS", seed=seed, stop_at=stop)
        lines.append(with_block(call, flags.tracked_code))
    else:
        prologue, more = track_prologue(
            seed, deterministic=record.deterministic, torch_too="torch" in seeded, stop_at=stop
        )
        helpers |= more
        lines.append(prologue.rstrip("\n"))
        code = flags.tracked_code if stop is None else until_stopped(flags.tracked_code)
        lines.append(code.rstrip("\n"))
        epilogue = 'print("metrics:", track.metrics)'
    blocks.append("\n".join(lines))

    python = (record.environment.get("python") or {}).get("version")
    spec = ScriptSpec(
        title=description.title,
        description=list(description.paragraphs),
        python=python,
        requires_python=_requires_python(python),
        dependencies=list(pins.dependencies),
        helpers=helpers,
        params=list(flags.params),
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
        kept=(*(history.cells[i][0] for i in sliced.kept), history.tracked_count),
        dropped=sliced.dropped,
        skipped=history.skipped,
        dependencies=pins.dependencies,
        notes=description.notes,
    )


def _requires_python(version: str | None) -> str | None:
    if not version:
        return None
    parts = version.split(".")
    return f"=={parts[0]}.{parts[1]}.*" if len(parts) >= 2 else None


# --- the pipeline --------------------------------------------------------------------------


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
    history = translate_history(record, allow_ipython=allow_ipython)
    sliced = slice_history(
        history, reset_rng=reset_generators(record), failed=failed_cells(record.notebook)
    )
    flags = params_as_flags(sliced, record.params)
    pins = pin_dependencies(
        [*flags.texts, flags.tracked_code],
        record.environment.get("packages"),
        needs_nbtrack=bool(
            track or _shipped_rng_state(record) is not None or record.inputs or record.deterministic
        ),
        needs_ipython="ipython" in sliced.helpers,
    )
    description = describe_run(record, history, sliced, flags, pins, track=track)
    return render_run(record, history, sliced, flags, pins, description, track=track, strict=strict)


def reset_generators(record: RunRecord) -> tuple[str, ...]:
    """The global generators set afresh at the tracked cell's start in the script."""
    if record.seed is not None:
        seeded = record.extra.get("seeded") or ["random", "numpy"]
        return tuple(g for g in GENERATORS if g in seeded)
    if record.rng_state:
        return tuple(g for g in GENERATORS if g in record.rng_state)
    return ()


def stopped_at(record: RunRecord) -> tuple[str, int] | None:
    """``(metric, step)`` where ``record`` was stopped part-way (a pruned sweep trial's
    ``extra["stopped_at"]``), for its script to stop there too; ``None`` when it ran to
    its end or the record's stop point is not one this nbtrack reads."""
    from nbtrack.tracker import stop_point  # the one rule for a stop point; not at import

    try:
        return stop_point(record.extra.get("stopped_at"), "the recorded stopped_at")
    except NbtrackError:
        return None


def _shipped_rng_state(record: RunRecord) -> dict[str, Any] | None:
    """The RNG state the script restores: the run's, when it had no seed to set instead."""
    return record.rng_state if (record.seed is None and record.rng_state) else None


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
