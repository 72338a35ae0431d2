"""``%%track`` and ``%nbtrack``: parse options, call the tracker, show the result.

The cell body runs in the user's namespace exactly as it would without the magic: IPython
syntax inside it is transformed as usual, its last expression is displayed as ``Out[n]``,
and its exceptions propagate (after the run is recorded as failed or interrupted).
"""

from __future__ import annotations

import ast
import os
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand

from nbtrack import config
from nbtrack.errors import NbtrackError, StoreError
from nbtrack.model import HistoryEntry
from nbtrack.tracker import DetachedRun
from nbtrack.trackline import parse_track_line, usage_text

_MISSING = object()


def _notebook_path(shell: Any) -> str | None:
    """The notebook this kernel serves, when the front end told the kernel."""
    for candidate in (
        os.environ.get("NBTRACK_NOTEBOOK"),
        shell.user_ns.get("__session__"),
        os.environ.get("JPY_SESSION_NAME"),
    ):
        if candidate and str(candidate).endswith(".ipynb"):
            path = os.path.abspath(str(candidate))
            if os.path.exists(path):
                return path
    return None


_history_cache: dict[int, HistoryEntry] = {}


def _history(shell: Any) -> list[HistoryEntry]:
    """The cells this kernel ran, in order; entries are reused while their text is the same."""
    raw = shell.history_manager.input_hist_raw
    out = []
    cache = _history_cache
    for i, src in enumerate(raw):
        if i == 0 or not src:
            continue
        entry = cache.get(i)
        if entry is None or entry.source is not src:
            entry = cache[i] = HistoryEntry(i, src)
        out.append(entry)
    return out


def _show(obj: Any) -> None:
    from IPython.display import display

    display(obj)  # type: ignore[no-untyped-call]


class _Summary:
    """What a tracked cell shows when it ends: HTML in notebooks, text in terminals.

    The deltas against the best earlier run are computed here, once, when the summary is
    made (``deltas=None``: from the record's store); rendering is pure.
    """

    def __init__(self, record: Any, deltas: Any = None) -> None:
        self.record = record
        if deltas is None:
            from nbtrack.query import metric_deltas

            try:
                deltas = metric_deltas(record)
            except NbtrackError:
                deltas = {}  # the store went away: show the run without comparisons
        self.deltas = deltas

    def __repr__(self) -> str:
        from nbtrack.summary import run_text

        return run_text(self.record, self.deltas)

    def _repr_html_(self) -> str:
        from nbtrack.summary import run_html

        return run_html(self.record, self.deltas)


@magics_class
class TrackMagics(Magics):
    """The nbtrack magics."""

    @no_var_expand
    @cell_magic
    def track(self, line: str, cell: str) -> None:
        """Run the cell and record it as an nbtrack run.

        Everything is captured automatically: top-level literal assignments as parameters,
        seeds and the full RNG state, the environment, fingerprints of the data the cell
        reads, metrics logged with ``track.log(...)``, artifacts from ``track.artifact(...)``,
        the cell's code and the kernel's execution history, and the outcome.
        Inside the cell, ``track`` is the current run.

        Examples::

            %%track --name digits/mlp/baseline --seed 42 --tag baseline
            %%track --name digits/mlp/baseline --set lr=3e-3 --set epochs=5
        """
        __tracebackhide__ = True  # noqa: F841 -- hides this frame in IPython tracebacks
        from nbtrack.capture.params import apply_overrides
        from nbtrack.tracker import RunSpec, start_run

        try:
            args = parse_track_line(line)
        except NbtrackError as exc:
            raise UsageError(str(exc)) from None
        shell: Any = self.shell  # set whenever a magic runs; Any: IPython is loosely typed
        overrides = dict(args.overrides)

        raw = cell
        if overrides:
            try:
                ast.parse(cell)
                is_python = True
            except SyntaxError:
                is_python = False
            try:
                if is_python:
                    raw = apply_overrides(cell, overrides)
                    source = shell.transform_cell(raw)
                else:
                    # IPython syntax in the cell (!ls, %time): override in the transformed
                    # Python, which is then also what the run records as its code.
                    source = apply_overrides(shell.transform_cell(cell), overrides)
                    raw = source
            except NbtrackError as exc:
                raise UsageError(str(exc)) from None
        else:
            source = shell.transform_cell(cell)

        if args.sweep is not None:  # every trial a run of this cell: nbtrack/sweeps
            from nbtrack.ipython.sweep import run_sweep_cell

            count = max(len(shell.history_manager.input_hist_raw) - 1, 0)
            try:
                run_sweep_cell(
                    shell,
                    args,
                    line,
                    raw,
                    source,
                    _history(shell),
                    _notebook_path(shell),
                    count,
                    os.getcwd(),
                )
            except NbtrackError as exc:
                raise UsageError(str(exc)) from None
            return

        # Parse before starting a run: a cell that cannot compile never ran.
        tree = shell.transform_ast(shell.compile.ast_parse(source))
        # The cell's own number: IPython stored its input under it before running it (IPython 9
        # has already advanced execution_count by then, IPython 8 has not).
        count = max(len(shell.history_manager.input_hist_raw) - 1, 0)
        filename = shell.compile.cache(source, count, raw_code=raw)
        last_expr = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last_expr = ast.Expression(tree.body.pop().value)
        body_code = shell.compile(tree, filename, "exec")
        expr_code = shell.compile(last_expr, filename, "eval") if last_expr is not None else None

        ns = shell.user_ns
        spec = RunSpec(
            name=args.name,
            seed=args.seed,
            deterministic=args.deterministic,
            tags=list(args.tags),
            note=args.note,
            project=args.project,
            capture_env=not args.no_env,
            capture_data=not args.no_data,
            kind="cell",
            source=source,
            code=raw,
            history=_history(shell),
            notebook=_notebook_path(shell),
            cwd=os.getcwd(),
            namespace=ns,
            extra={"magic_line": line, "overrides": overrides, "execution_count": count},
        )
        reason = ""
        try:
            run = start_run(spec)
        except Exception as exc:  # tracking must never keep the cell from running
            reason = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
            print(f"nbtrack: this run is not recorded: {reason}", file=sys.stderr)
            run = None

        saved = ns.get("track", _MISSING)
        live = None
        ns["track"] = run if run is not None else DetachedRun(reason)
        if run is not None:
            if not args.quiet:
                from nbtrack.widgets.live_display import start_live_display

                live = start_live_display(run, shell)  # shows metrics once the cell logs some
        try:
            exec(body_code, ns)
            result = eval(expr_code, ns) if expr_code is not None else None
        except BaseException as exc:
            self._end(run, saved, exc, args.quiet, live)
            raise
        self._end(run, saved, None, args.quiet, live)
        if expr_code is not None and not shell.displayhook.semicolon_at_end_of_expression(source):
            shell.displayhook(result)

    def _end(
        self, run: Any, saved: Any, exc: BaseException | None, quiet: bool, live: Any = None
    ) -> None:
        assert self.shell is not None  # a magic always runs in a shell
        ns = self.shell.user_ns
        current = ns.get("track")
        if current is run or isinstance(current, DetachedRun):  # the cell may rebind `track`
            if saved is _MISSING:
                ns.pop("track", None)
            else:
                ns["track"] = saved
        if run is None:
            return
        try:
            run.finish(exc=exc, namespace=ns)
        except Exception as error:  # never let tracking replace the cell's result or error
            print(f"nbtrack: run #{run.number} could not be finished: {error}", file=sys.stderr)
        if quiet or os.environ.get(config.ENV_SUMMARY) == "0":
            if live is not None:
                live.finish(None)  # the last live view stays
            return
        try:
            from nbtrack.query import load_record, metric_deltas

            record = load_record(run.store, run.id, full=False)
            summary = _Summary(record, metric_deltas(record, run.store))
            if live is None or not live.finish(summary):  # the summary replaces the live view
                _show(summary)
        except NbtrackError as exc:
            if live is not None:
                live.finish(None)
            print(
                f"nbtrack: run #{run.number} recorded, but its summary cannot be shown: {exc}",
                file=sys.stderr,
            )

    @line_magic
    def nbtrack(self, line: str) -> Any:
        """Store information and settings.

        Usage::

            %nbtrack                 # where the store is, how many runs it holds
            %nbtrack store PATH      # use the store in folder PATH from now on
            %nbtrack runs [NAME] [--project P]   # nbtrack.runs() as a table
            %nbtrack show REF        # one run's summary
            %nbtrack register [RUN] NAME [--artifact A]
                                     # register a run's artifact as a model version
            %nbtrack models [NAME | NAME@STAGE]
                                     # nbtrack.models(), a model's versions, or one version
            %nbtrack push [--to URL] [REF ...] / %nbtrack pull [--from URL]
                                     # copy runs to/from a team store or MLflow (docs/team.md)
            %nbtrack export [--run REF] [-o PATH] [--verify] ...
                                     # this notebook (or run REF) as a plain Python script;
                                     # same options as `nbtrack export`, see docs/export.md
        """
        parts = line.split(maxsplit=1)
        command = parts[0] if parts else "info"
        rest = parts[1].strip() if len(parts) > 1 else ""
        if command == "export":
            return self._export(rest)
        handler = _COMMANDS.get(command)
        if handler is None:
            raise UsageError(
                f"%nbtrack: unknown command {command!r}; use one of: {', '.join(_COMMANDS)}, export"
            )
        try:
            return handler(rest)
        except NbtrackError as exc:
            raise UsageError(str(exc)) from None

    def _export(self, rest: str) -> None:
        from nbtrack.export.command import magic_export

        try:
            status, message = magic_export(
                rest, notebook=_notebook_path(self.shell), history=_history(self.shell)
            )
        except NbtrackError as exc:
            raise UsageError(str(exc)) from None
        if message:
            print(message)
        if status:
            raise UsageError("the exported script did not reproduce the run (see the table above)")


# `%%track?` shows the grammar's own help, so it lists exactly the options the parser takes.
# Indented like the docstring it extends, so IPython's cleandoc dedents both alike.
TrackMagics.track.__doc__ = (TrackMagics.track.__doc__ or "").rstrip() + (
    "\n\n" + "".join(f"        {ln}".rstrip() + "\n" for ln in usage_text().splitlines())
)


def _info(_: str) -> None:
    from nbtrack.store.routing import open_store

    folder = config.command_store_dir(search_upwards=False)
    if isinstance(folder, config.StoreURL):  # a database (nbtrack/store/postgres.py)
        db = open_store(folder)
        shown = getattr(db, "url", folder)
        print(f"nbtrack store: {shown}\n  runs: {db.count_runs()}  schema: v{db.schema_version}")
        return
    if not (folder / config.DB_FILENAME).exists():
        print(f"nbtrack store: {folder} (not created yet: it appears with the first tracked run)")
        return
    store = open_store(folder)
    print(f"nbtrack store: {folder}\n  runs: {store.count_runs()}  schema: v{store.schema_version}")


def _set_store(path: str) -> None:
    from nbtrack.store.routing import open_store

    if not path:
        raise UsageError(
            "%nbtrack store: give the folder to use, e.g. %nbtrack store ../shared/.nbtrack"
        )
    folder = path.strip("'\"")
    if "://" not in folder:  # a postgresql:// URL is used as given
        folder = os.path.abspath(os.path.expanduser(folder))
    store = open_store(folder)  # fails here, with its own message, if the folder is unusable
    config.set_store_dir(folder)
    # A URL is shown with its password redacted (PostgresStore.url).
    print(f"nbtrack: using the store at {getattr(store, 'url', folder)}")


def _runs(rest: str) -> Any:
    """``%nbtrack runs [NAME] [--project NAME]``: nbtrack.runs() as a table."""
    import shlex

    import nbtrack

    words = shlex.split(rest)
    project = None
    if "--project" in words:
        at = words.index("--project")
        if at + 1 >= len(words):
            raise UsageError("%nbtrack runs --project: give a project name, e.g. --project vision")
        project = words[at + 1]
        del words[at : at + 2]
    if len(words) > 1:
        raise UsageError(f"%nbtrack runs: one run name (or glob) at most, not {rest!r}")
    return nbtrack.runs(name=words[0] if words else None, project=project)


def _show_run(ref: str) -> Any:
    import nbtrack

    if not ref:
        raise UsageError("%nbtrack show: give a run number or id, e.g. %nbtrack show 3")
    return _Summary(nbtrack.get_run(ref))


def _register(rest: str) -> Any:
    from nbtrack.registry.command import magic_register
    from nbtrack.store.routing import open_store

    return magic_register(rest, open_store(config.command_store_dir(search_upwards=False)))


def _models(rest: str) -> Any:
    from nbtrack.registry.command import magic_models
    from nbtrack.store.routing import open_store

    return magic_models(rest, open_store(config.command_store_dir(search_upwards=False)))


def _push(rest: str) -> Any:
    from nbtrack.sync.command import magic_sync

    return magic_sync("push", rest)


def _pull(rest: str) -> Any:
    from nbtrack.sync.command import magic_sync

    return magic_sync("pull", rest)


_COMMANDS = {
    "info": _info,
    "store": _set_store,
    "runs": _runs,
    "show": _show_run,
    "register": _register,  # docs/registry.md
    "models": _models,
    "push": _push,  # docs/team.md
    "pull": _pull,
}


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics with a shell."""
    ipython.register_magics(TrackMagics)
    from nbtrack.capture.environment import prewarm

    prewarm()  # map modules to distributions in the background before the first run


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to undo beyond what IPython does itself."""
