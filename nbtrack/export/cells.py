"""Cells as script blocks: translated code, ``%%track`` cells as runs or untracked code."""

from __future__ import annotations

from dataclasses import dataclass

from nbtrack.errors import ExportError, NbtrackError
from nbtrack.export.translate import TrackOptions, Translation, indent

__all__ = ["PlainCell", "track_prologue", "apply_track_overrides", "header"]


@dataclass(frozen=True)
class PlainCell:
    """One cell translated to Python, ready for slicing or emitting."""

    label: str  # "In[4]" or "cell 3"
    code: str
    translation: Translation


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


def track_prologue(options: TrackOptions, body: str) -> tuple[str, set[str]]:
    """Untracked replay of a ``%%track`` cell: its seeding, then a stand-in ``track``."""
    from nbtrack.capture.seeds import cell_imports_torch

    lines = []
    helpers = {"untracked"}
    if options.seed is not None:
        helpers.add("seed")
        torch_too = cell_imports_torch(body)
        lines.append(
            f"_nbtrack_seed({options.seed!r}" + (", torch_too=True" if torch_too else "") + ")"
        )
    if options.deterministic:
        lines.append(
            "from nbtrack.capture.seeds import set_deterministic as _nbtrack_set_deterministic"
        )
        lines.append("_nbtrack_set_deterministic(torch_too=True)")
    lines.append("track = _nbtrack_untracked()")
    return "\n".join(lines) + "\n", helpers


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
