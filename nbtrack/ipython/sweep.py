"""The ``%%track --sweep`` edge: run trials in the kernel's shell and show the sweep live.

:func:`run_sweep_cell` is what the magic calls: it builds the plan and the cell's context
(plain values), hands them to :func:`nbtrack.sweeps.runner.run_sweep` with a
:class:`ShellExecutor`, and shows the progress. In a notebook one display is updated in
place after every trial (counts, best so far, optimisation history, parallel coordinates)
and ends with Optuna's parameter importances; in a terminal the final summary prints.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NbtrackError, SweepError
from nbtrack.model import HistoryEntry
from nbtrack.trackline import TrackOptions

if TYPE_CHECKING:
    import optuna

    from nbtrack.sweeps.progress import SweepProgress
    from nbtrack.sweeps.runner import Sweep
    from nbtrack.tracker import ActiveRun

_MISSING = object()


class ShellExecutor:
    """Runs trial code in the shell's user namespace, as the plain ``%%track`` does."""

    def __init__(self, shell: Any, execution_count: int) -> None:
        self.shell = shell
        self.namespace: MutableMapping[str, Any] | None = shell.user_ns
        self._count = execution_count

    def to_python(self, code: str) -> str:
        """IPython's own transforms (``!ls``, ``%time``)."""
        return str(self.shell.transform_cell(code))

    def execute(self, source: str, track: ActiveRun) -> None:
        """Compile as IPython does (so tracebacks show the trial's lines) and run with
        ``track`` bound; ``track`` is put back as it was afterwards."""
        __tracebackhide__ = True  # noqa: F841 -- hides this frame in IPython tracebacks
        shell = self.shell
        ns = shell.user_ns
        tree = shell.transform_ast(shell.compile.ast_parse(source))
        filename = shell.compile.cache(source, self._count)
        code = shell.compile(tree, filename, "exec")
        saved = ns.get("track", _MISSING)
        ns["track"] = track
        try:
            exec(code, ns)
        finally:
            if ns.get("track") is track:
                if saved is _MISSING:
                    ns.pop("track", None)
                else:
                    ns["track"] = saved


class _View:
    """A progress snapshot as a display object (HTML in notebooks, text elsewhere)."""

    def __init__(self, progress: SweepProgress) -> None:
        self.progress = progress

    def __repr__(self) -> str:
        from nbtrack.sweeps.progress import progress_text

        return progress_text(self.progress)

    def _repr_html_(self) -> str:
        from nbtrack.sweeps.progress import progress_html

        return progress_html(self.progress)


class SweepDisplay:
    """One display in the cell's output, updated after each trial when the front end can
    update in place (a kernel); otherwise only the final view is shown."""

    def __init__(self, shell: Any, quiet: bool) -> None:
        from nbtrack.widgets.live_display import can_update_in_place

        self.live = not quiet and can_update_in_place(shell)
        self.quiet = quiet
        self._handle: Any = None

    def _show(self, view: _View) -> None:
        from IPython.display import display

        if self._handle is None:
            self._handle = display(view, display_id=True)  # type: ignore[no-untyped-call]
        else:
            self._handle.update(view)

    def update(self, sweep: Sweep, study: optuna.Study) -> None:
        """After a trial: the sweep as it stands."""
        if not self.live:
            return
        from nbtrack.sweeps.progress import progress_of

        self._show(_View(progress_of(sweep, study)))

    def finish(self, sweep: Sweep, status: str) -> None:
        """The final view: with importances (Optuna's) once two trials are complete."""
        if self.quiet:
            return
        from dataclasses import replace

        from nbtrack.sweeps.progress import progress_of
        from nbtrack.sweeps.study import importances

        try:
            study = sweep.load_study()
            progress = progress_of(sweep, study, status=status)
            progress = replace(progress, importances=importances(study))
        except NbtrackError as exc:
            print(f"nbtrack: sweep #{sweep.number} cannot be shown: {exc}", file=sys.stderr)
            return
        view = _View(progress)
        if self.live:
            self._show(view)
        else:
            from IPython.display import display

            display(view)  # type: ignore[no-untyped-call]


def run_sweep_cell(
    shell: Any,
    options: TrackOptions,
    line: str,
    raw: str,
    source: str,
    history: list[HistoryEntry],
    notebook: str | None,
    execution_count: int,
    cwd: str,
) -> Any:
    """Run the cell as a sweep and show it; returns the sweep's record.

    ``raw``/``source``: the cell as written and as Python (``--set`` applied to both).
    Raises :class:`SweepError` (the magic shows it as one line) and KeyboardInterrupt.
    """
    from nbtrack.sweeps.plan import CellContext, plan_sweep, template_of
    from nbtrack.sweeps.records import get_sweep
    from nbtrack.sweeps.runner import run_sweep

    template = template_of(raw, source)
    plan = plan_sweep(options, template, cwd=cwd)
    for note in plan.notes:
        print(f"nbtrack: {note}", file=sys.stderr)
    context = CellContext(
        code=raw,
        template=template,
        magic_line=line,
        history=tuple(history),
        notebook=notebook,
        cwd=cwd,
        execution_count=execution_count,
        overrides=dict(options.overrides),
    )
    display = SweepDisplay(shell, options.quiet)
    sweep: Sweep | None = None

    def observe(current: Sweep, study: optuna.Study) -> None:
        nonlocal sweep
        sweep = current
        display.update(current, study)

    try:
        result = run_sweep(plan, context, ShellExecutor(shell, execution_count), observer=observe)
    except KeyboardInterrupt:
        if sweep is not None:
            display.finish(sweep, "interrupted")
        raise
    except SweepError:
        if sweep is not None:
            display.finish(sweep, "failed")
            _show_first_traceback(sweep)
        raise
    display.finish(result.sweep, result.status)
    return get_sweep(result.sweep.id, store=result.sweep.store)


def _show_first_traceback(sweep: Sweep) -> None:
    """The first failed trial's traceback, once (not one per trial)."""
    for link in sweep.store.sweep_trials(sweep.id):
        if link["state"] == "failed" and link["run_id"]:
            row = sweep.store.run_row(link["run_id"])
            trace = (row["error"] or {}).get("traceback")
            if trace:
                print(f"first failed trial (run #{row['number']}):\n{trace}", file=sys.stderr)
            return
