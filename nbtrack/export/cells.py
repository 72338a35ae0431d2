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
    "until_stopped",
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
    seed: str | None,
    *,
    deterministic: bool,
    torch_too: bool,
    stop_at: tuple[str, int] | None = None,
) -> tuple[str, frozenset[str]]:
    """The lines that stand in for ``%%track`` when its cell is replayed untracked.

    The seeding the magic did before the cell (``seed`` is source: a literal, or ``SEED``
    for the script's flag; ``torch_too`` seeds torch even before the cell imports it), the
    determinism switch, then a stand-in ``track`` that keeps what the cell logs (and, with
    ``stop_at``, stops the cell where the run stopped: wrap it in :func:`until_stopped`).
    Returns the lines and the preamble helpers they call.
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
    lines.append(f"track = _nbtrack_untracked({_stop_arg(stop_at)})")
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


def run_call(
    options: TrackOptions,
    *,
    params: str,
    seed: str | None,
    stop_at: tuple[str, int] | None = None,
) -> str:
    """``nbtrack.run(...)`` with the ``%%track`` options (``params``/``seed`` as source);
    ``stop_at``: ``(metric, step)`` where the recorded run stopped (a pruned sweep trial)."""
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
    if options.project:
        args.append(f"project={options.project!r}")
    if options.no_env:
        args.append("capture_env=False")
    if options.no_data:
        args.append("capture_data=False")
    if stop_at is not None:
        args.append(_stop_arg(stop_at))
    return f"nbtrack.run({', '.join(args)})"


def _stop_arg(stop_at: tuple[str, int] | None) -> str:
    """``stop_at={...}`` as ``nbtrack.run`` and the untracked stand-in take it (or nothing)."""
    if stop_at is None:
        return ""
    metric, step = stop_at
    return f"stop_at={{'metric': {metric!r}, 'step': {step!r}}}"


def until_stopped(body: str) -> str:
    """``body`` (the untracked tracked cell) in a ``try`` that the stand-in ``track``'s stop
    ends cleanly: the script goes on after it, as the notebook went on after the pruned
    trial (``with nbtrack.run(stop_at=...)`` does the same for a tracked script)."""
    inner = indent(body.rstrip("\n") + "\n", "    ") if body.strip() else ""
    if not any(line.strip() and not line.lstrip().startswith("#") for line in inner.splitlines()):
        inner += "    pass\n"
    return (
        f"try:\n{inner}except _nbtrack_stopped as _nbtrack_stop:\n"
        '    print(f"note: {_nbtrack_stop}")\n'
    )


def with_block(call: str, body: str) -> str:
    """``with <call> as track:`` around ``body`` (``pass`` for an empty body)."""
    inner = indent(body.rstrip("\n") + "\n", "    ") if body.strip() else "    pass\n"
    if not any(line.strip() and not line.lstrip().startswith("#") for line in inner.splitlines()):
        inner += "    pass\n"
    return f"with {call} as track:\n{inner}"
