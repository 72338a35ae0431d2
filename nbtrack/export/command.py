"""``nbtrack export`` and ``%nbtrack export``: parse the options, export, write, verify.

Thin: :func:`add_arguments` fills an argparse parser (the CLI's subcommand or the magic's
own), :func:`run_export` does the work and returns ``(exit status, message)``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nbtrack import config
from nbtrack.errors import NbtrackError, UsageError

__all__ = [
    "add_arguments",
    "build_parser",
    "run_export",
    "main_export",
    "magic_export",
    "DESCRIPTION",
]

DESCRIPTION = """\
Export a notebook, or the code that produced one of its runs, as a plain Python script.

Without --run: the notebook's code cells in document order, magics translated to Python.
With --run REF: the cells the run's kernel actually executed (in execution order,
including cells since edited or deleted), reduced to what the tracked cell depends on,
with the run's parameters as flags, its seed or RNG state, pinned package versions
(PEP 723, so `uv run script.py` rebuilds the environment) and checks of its input files.
"""

EPILOG = """\
examples:
  nbtrack export analysis.ipynb -o analysis.py
  nbtrack export analysis.ipynb --run 12 -o run12.py --requirements requirements.txt
  nbtrack export --run last -o repro.py --verify
"""


def add_arguments(parser: argparse.ArgumentParser, *, store_option: bool = True) -> None:
    """The export options, on ``parser`` (the CLI subcommand's, or the magic's)."""
    parser.add_argument(
        "notebook", nargs="?", metavar="NOTEBOOK", help="the .ipynb to export (optional with --run)"
    )
    parser.add_argument(
        "--run",
        metavar="REF",
        dest="run_ref",
        help="export the code that produced this run (number, id or 'last')",
    )
    parser.add_argument(
        "-o", "--output", metavar="PATH", help="write the script here (default: print it)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument(
        "--no-track",
        action="store_true",
        help="emit the tracked cell as plain code instead of a nbtrack.run block",
    )
    parser.add_argument(
        "--allow-ipython",
        action="store_true",
        help="keep magics with no Python equivalent as IPython calls",
    )
    parser.add_argument(
        "--requirements",
        metavar="FILE",
        help="also write the pinned dependencies as a requirements.txt",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="the script stops when an input differs from the recorded one",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="run the script in a fresh process and compare its metrics "
        "with the run's; exit status 1 on any mismatch",
    )
    parser.add_argument(
        "--rtol", type=float, default=0.0, help="relative tolerance for --verify (default: exact)"
    )
    parser.add_argument(
        "--atol", type=float, default=0.0, help="absolute tolerance for --verify (default: exact)"
    )
    if store_option:
        parser.add_argument(
            "--store",
            metavar="PATH",
            help="store folder or postgresql:// URL (default: $NBTRACK_STORE, nbtrack.toml, .nbtrack/)",
        )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser(prog: str = "nbtrack export") -> argparse.ArgumentParser:
    """A standalone parser (the CLI adds :func:`add_arguments` to its subparser instead)."""
    parser = _Parser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def _cli_store(path: str | None) -> Any:
    from nbtrack.store.routing import connect_store

    return connect_store(config.command_store_dir(path, search_upwards=True), create=False)


def run_export(
    args: argparse.Namespace, *, store: Any = None, history: Sequence[Any] | None = None
) -> tuple[int, str]:
    """Do what the parsed ``args`` ask; return ``(exit status, message for the user)``.

    The script goes to ``args.output`` (written atomically) or, without it, is the
    message itself. ``store`` overrides ``args.store``; ``history`` (the kernel's
    ``HistoryEntry`` list) is exported in execution order when there is neither a notebook
    nor ``--run`` (the ``%nbtrack export`` case). Raises :class:`NbtrackError` subclasses
    for bad input; the caller prints them as one line.
    """
    from nbtrack.export.script import write_script

    if args.verify and not args.run_ref:
        raise UsageError("--verify compares with a recorded run: give --run REF")
    if args.verify and args.no_track:
        raise UsageError("--verify needs the script to record a run: drop --no-track")
    if args.rtol < 0 or args.atol < 0:
        raise UsageError("--rtol and --atol must not be negative")
    track = not args.no_track
    notes: list[str] = []
    record = None
    if args.notebook:
        from nbtrack.export.notebook import read_notebook

        read_notebook(args.notebook)  # a malformed notebook is an error either way
    if args.run_ref:
        from nbtrack.export.runs import export_run
        from nbtrack.query import get_run

        record = get_run(
            args.run_ref,
            store=store if store is not None else _cli_store(getattr(args, "store", None)),
        )
        if (
            args.notebook
            and record.notebook
            and Path(args.notebook).resolve() != Path(record.notebook).resolve()
        ):
            notes.append(
                f"note: run #{record.number} was recorded in {record.notebook}, "
                f"not {args.notebook}; exporting the run's own history"
            )
        result = export_run(
            record, track=track, allow_ipython=args.allow_ipython, strict=args.strict
        )
        text, pins = result.script, list(result.dependencies)
        summary = (
            f"run #{record.number}: {len(result.kept)} cell(s) kept "
            f"({', '.join(f'In[{c}]' for c in result.kept)}), "
            f"{len(result.dropped)} left out"
        )
    elif args.notebook:
        from nbtrack.export.notebook import export_notebook

        text = export_notebook(args.notebook, track=track, allow_ipython=args.allow_ipython)
        pins = _pins_of(text)
        summary = f"{args.notebook}: all code cells in document order"
    elif history is not None:
        from nbtrack.export.notebook import export_cells

        items = [
            ("code", f"cell In[{h.execution_count}]", h.source, False)
            for h in history
            if not h.source.lstrip().startswith("%nbtrack export")
        ]
        text = export_cells(
            items,
            title="This kernel's session, exported by nbtrack as a plain Python script.",
            what="the cells this kernel ran, in execution order",
            track=track,
            allow_ipython=args.allow_ipython,
            skip_invalid=True,
        )
        pins = _pins_of(text)
        summary = f"this session: {len(items)} cell(s) in execution order"
    else:
        raise UsageError("give a notebook to export, or --run REF for a recorded run")

    if not (args.output or args.requirements or args.verify):
        return 0, text
    message = notes[:]
    script_path: Path | None = None
    tmpdir = None
    if args.output:
        script_path = write_script(text, args.output, force=args.force)
        message.append(f"wrote {script_path} — {summary}")
    if args.requirements:
        from nbtrack.export.script import requirements_text

        req = write_script(
            requirements_text(pins, f"pinned by nbtrack export ({summary})"),
            args.requirements,
            force=args.force,
            executable=False,
        )
        message.append(f"wrote {req} ({len(pins)} pinned distribution(s))")
    status = 0
    if args.verify:
        from nbtrack.export.verification import verify

        assert record is not None
        if script_path is None:
            tmpdir = tempfile.mkdtemp(prefix="nbtrack-verify-")
            script_path = write_script(text, Path(tmpdir) / "reproduce.py")
        try:
            report = verify(script_path, record, rtol=args.rtol, atol=args.atol)
        finally:
            if tmpdir is not None:
                import shutil

                shutil.rmtree(tmpdir, ignore_errors=True)
        message.append(str(report))
        status = 0 if report.ok else 1
    elif not args.output:
        message.insert(0, text)
    return status, "\n".join(message)


def _pins_of(script: str) -> list[str]:
    import re
    import tomllib

    block = re.search(r"(?m)^# /// script$\s(?P<content>(^#(| .*)$\s)+)^# ///$", script)
    if not block:
        return []
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:]
        for line in block.group("content").splitlines(keepends=True)
    )
    return list(tomllib.loads(content).get("dependencies", []))


def main_export(argv: Sequence[str] | None = None) -> int:
    """``nbtrack export ...`` as a function: parse ``argv``, export, print; exit status.

    Errors print one line on stderr (``nbtrack: error: ...``): status 2 for usage errors,
    1 for others and for a failed ``--verify``.
    """
    try:
        args = build_parser().parse_args(argv)
        status, message = run_export(args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except UsageError as exc:
        print(f"nbtrack: error: {exc}", file=sys.stderr)
        return 2
    except NbtrackError as exc:
        print(f"nbtrack: error: {exc}", file=sys.stderr)
        return 1
    if message:
        print(message)
    return status


def cli_command(args: argparse.Namespace) -> int:
    """The ``nbtrack export`` subcommand for ``nbtrack.cli`` (``set_defaults(func=...)``)."""
    status, message = run_export(args)
    if message:
        print(message)
    return status


def magic_export(
    line: str, *, notebook: str | None = None, history: Sequence[Any] | None = None
) -> tuple[int, str]:
    """``%nbtrack export [NOTEBOOK] [--run REF] [-o PATH] ...`` in a kernel.

    ``notebook``: the kernel's notebook when known (used when the line names none and has
    no ``--run``); ``history``: the kernel's history, exported in execution order when
    there is no notebook at all. The store is the kernel's (``%nbtrack store``,
    ``$NBTRACK_STORE`` or ``./.nbtrack``) unless ``--store`` says otherwise. Returns
    ``(status, message)``; raises :class:`NbtrackError` (``UsageError`` for bad options).
    """
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%nbtrack export: {exc}") from None
    parser = build_parser("%nbtrack export")
    try:
        args = parser.parse_args(words)
    except SystemExit:  # --help: argparse printed it and wants to exit
        return 0, ""
    if not args.notebook and not args.run_ref and notebook and os.path.exists(notebook):
        args.notebook = notebook
    from nbtrack.store.routing import open_store

    # The kernel's own store (where its tracked cells write), not one found further up.
    folder = config.command_store_dir(args.store, search_upwards=False)
    store = open_store(folder) if args.run_ref else None
    return run_export(args, store=store, history=history)


if __name__ == "__main__":
    sys.exit(main_export())
