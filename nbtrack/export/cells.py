"""Cells as script blocks: translated code, ``%%track`` cells as runs or untracked code."""

from __future__ import annotations

from nbtrack.errors import ExportError, NbtrackError
from nbtrack.export.translate import indent
from nbtrack.trackline import TrackOptions

__all__ = [
    "header",
    "apply_track_overrides",
    "track_prologue",
    "untracked_cell",
    "run_call",
    "with_block",
]


def header(label: str, note: str = "") -> str:
    """The comment line that starts a cell's block in the script."""
    text = f"# ---- {label}{': ' + note if note else ''} "
    return text + "-" * max(4, 88 - len(text))


def apply_track_overrides(body: str, options: TrackOptions, label: str) -> str:
    """The ``%%track`` body with its ``--set`` values written in, as the magic runs it."""
    if not options.overrides:
        return body
    from nbtrack.capture.params import apply_overrides

    try:
        return apply_overrides(body, dict(options.overrides))
    except NbtrackError as exc:
        raise ExportError(f"{label}: {exc}") from None


def track_prologue(
    seed: str | None, *, deterministic: bool, torch_too: bool
) -> tuple[str, frozenset[str]]:
    """The lines that stand in for ``%%track`` when its cell is replayed untracked.

    The seeding the magic did before the cell (``seed`` is source: a literal, or ``SEED``
    for the script's flag; ``torch_too`` seeds torch even before the cell imports it), the
    determinism switch, then a stand-in ``track`` that keeps what the cell logs. Returns
    the lines and the preamble helpers they call.
    """
    lines = []
    helpers = {"untracked"}
    if seed is not None:
        helpers.add("seed")
        lines.append(f"_nbtrack_seed({seed}" + (", torch_too=True" if torch_too else "") + ")")
    if deterministic:
        lines.append(
            "from nbtrack.capture.seeds import set_deterministic as _nbtrack_set_deterministic"
        )
        lines.append("_nbtrack_set_deterministic(torch_too=True)")
    lines.append("track = _nbtrack_untracked()")
    return "\n".join(lines) + "\n", frozenset(helpers)


def untracked_cell(options: TrackOptions, body: str) -> tuple[str, frozenset[str]]:
    """A ``%%track`` cell's body (``--set`` already applied) as plain code, untracked:
    :func:`track_prologue` for its options, then the body. Returns the code and helpers."""
    from nbtrack.capture.seeds import cell_imports_torch

    seed = repr(options.seed) if options.seed is not None else None
    prologue, helpers = track_prologue(
        seed, deterministic=options.deterministic, torch_too=cell_imports_torch(body)
    )
    return prologue + body, helpers


def run_call(options: TrackOptions, *, params: str, seed: str | None) -> str:
    """``nbtrack.run(...)`` with the ``%%track`` options (``params``/``seed`` as source)."""
    args = [f"name={options.name!r}"]
    if seed is not None:
        args.append(f"seed={seed}")
    if options.deterministic:
        args.append("deterministic=True")
    args.append(f"params={params}")
    if options.tags:
        args.append(f"tags={list(options.tags)!r}")
    if options.note:
        args.append(f"note={options.note!r}")
    if options.no_env:
        args.append("capture_env=False")
    if options.no_data:
        args.append("capture_data=False")
    return f"nbtrack.run({', '.join(args)})"


def with_block(call: str, body: str) -> str:
    """``with <call> as track:`` around ``body`` (``pass`` for an empty body)."""
    inner = indent(body.rstrip("\n") + "\n", "    ") if body.strip() else "    pass\n"
    if not any(line.strip() and not line.lstrip().startswith("#") for line in inner.splitlines()):
        inner += "    pass\n"
    return f"with {call} as track:\n{inner}"
