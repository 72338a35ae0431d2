"""The ``%%track`` option grammar: the one definition the magic, the exporter and the docs use.

:data:`OPTIONS` is a table of the options. Everything else is derived from it: the argparse
parser (:func:`build_parser`), the parsed form (:class:`TrackOptions`, via
:func:`parse_track_line`), the help that ``%%track?`` shows (:func:`usage_text`), the line
an exporter writes back (:meth:`TrackOptions.to_line`) and the option table in
docs/tracking.md (:func:`markdown_table`, checked by the tests). A new option (``--sweep``,
say) is one row here plus one field of :class:`TrackOptions`.

Core module: no IPython. Edges translate :class:`~nbtrack.errors.UsageError` into their own
error (IPython's ``UsageError``, an :class:`~nbtrack.errors.ExportError` naming the cell).
"""

from __future__ import annotations

import argparse
import ast
import math
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NoReturn

from nbtrack.errors import UsageError

__all__ = [
    "OptionSpec",
    "OPTIONS",
    "TrackOptions",
    "build_parser",
    "parse_track_line",
    "usage_text",
    "markdown_table",
    "option_label",
]

PROG = "%%track"


def _seed(value: Any) -> int | None:
    if value is None:
        return None
    from nbtrack.capture.seeds import check_seed

    return check_seed(value, "--seed")


def _overrides(texts: Sequence[str] | None) -> tuple[tuple[str, object], ...]:
    from nbtrack.capture.params import parse_set_option

    return tuple(parse_set_option(text) for text in texts or ())


def _override_text(pair: tuple[str, object]) -> str:
    key, value = pair
    if isinstance(value, str):
        try:
            ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return f"{key}={value}"  # read back as the plain string, as the user wrote it
    # parse_set_option reads VALUE with literal_eval, and repr(inf) is not a literal.
    if isinstance(value, float) and math.isinf(value):
        return f"{key}={'-' if value < 0 else ''}1e999"
    return f"{key}={value!r}"


def _positive(flag: str) -> Callable[[Any], int | None]:
    def convert(value: Any) -> int | None:
        if value is not None and value < 1:
            raise UsageError(f"{PROG}: {flag} {value}: give a whole number of at least 1")
        return value  # type: ignore[no-any-return]

    return convert


def _one_of(flag: str, module: str, table: str) -> Callable[[Any], str | None]:
    # The allowed names live with the code that builds them (nbtrack.sweeps.study).
    def convert(value: Any) -> str | None:
        if value is None:
            return None
        import importlib

        allowed = getattr(importlib.import_module(module), table)
        if value not in allowed:
            raise UsageError(f"{PROG}: {flag} {value}: use one of {', '.join(allowed)}")
        return str(value)

    return convert


def _project(value: Any) -> str | None:
    if value is None:
        return None
    from nbtrack.identity import check_project  # the one rule for a project name

    return check_project(value, f"{PROG} --project")


def _direction(value: Any) -> str | None:
    if value is None:
        return None
    from nbtrack.metrics import parse_direction

    try:
        return parse_direction(value, "--direction")
    except UsageError as exc:
        raise UsageError(f"{PROG}: {exc}") from None


def _space(texts: Sequence[str] | None) -> tuple[str, ...]:
    from nbtrack.errors import NbtrackError
    from nbtrack.sweeps.space import parse_dimension

    for text in texts or ():
        try:
            parse_dimension(text)
        except NbtrackError as exc:
            raise UsageError(f"{PROG}: {exc}") from None
    return tuple(texts or ())


@dataclass(frozen=True)
class OptionSpec:
    """One ``%%track`` option: how it is spelled, parsed, written back and documented.

    ``action`` is argparse's (``"store"``, ``"store_true"`` or ``"append"``). ``convert``
    turns argparse's value into the :class:`TrackOptions` field (and validates it);
    ``to_text`` writes one value back as the option's argument.
    """

    flags: tuple[str, ...]  # the long flag first
    dest: str  # the TrackOptions field
    help: str
    action: str = "store"
    type: Callable[[str], Any] | None = None
    default: Any = None
    metavar: str | None = None
    convert: Callable[[Any], Any] | None = None
    to_text: Callable[[Any], str] = str
    #: The option this one only makes sense with (``--space`` needs ``--sweep``).
    requires: str | None = None

    def argparse_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for ``parser.add_argument(*self.flags, ...)``."""
        kwargs: dict[str, Any] = {"dest": self.dest, "action": self.action, "help": self.help}
        if self.action != "store_true":
            kwargs["default"] = self.default
            kwargs["metavar"] = self.metavar
            if self.type is not None:
                kwargs["type"] = self.type
        return kwargs


#: The options of ``%%track``, in the order the help and the docs list them.
OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        ("--name", "-n"),
        "name",
        "Run name; by convention `task/model/variant`. Runs of one name are compared "
        "with each other.",
        metavar="NAME",
    ),
    OptionSpec(
        ("--seed", "-s"),
        "seed",
        "Seed `random`, NumPy's global RNG and PyTorch (CPU and every CUDA device) "
        "before the cell. `0 <= N < 2**32`.",
        type=int,
        metavar="N",
        convert=_seed,
    ),
    OptionSpec(
        ("--deterministic",),
        "deterministic",
        "Turn on `torch.use_deterministic_algorithms(True)`, `cudnn.deterministic`, "
        "`cudnn.benchmark=False` and set `CUBLAS_WORKSPACE_CONFIG`; all of it is recorded.",
        action="store_true",
    ),
    OptionSpec(
        ("--tag", "-t"),
        "tags",
        "Tag the run; repeatable.",
        action="append",
        metavar="TAG",
        convert=lambda values: tuple(values or ()),
    ),
    OptionSpec(
        ("--note",),
        "note",
        'A free-text note. Quote it: `--note "lower lr"`.',
        metavar="TEXT",
    ),
    OptionSpec(
        ("--project",),
        "project",
        "The project the run belongs to (letters, digits, `.`, `_`, `-`, `/`); default: "
        "`$NBTRACK_PROJECT`, then `[project] name` in `nbtrack.toml`, else none "
        "(docs/team.md).",
        metavar="NAME",
        convert=_project,
    ),
    OptionSpec(
        ("--set",),
        "overrides",
        "Replace the literal value of the cell's parameter `KEY` before it runs; "
        "repeatable. `VALUE` is a Python literal, or a plain string (`--set opt=adam`).",
        action="append",
        metavar="KEY=VALUE",
        convert=_overrides,
        to_text=_override_text,
    ),
    OptionSpec(
        ("--no-data",),
        "no_data",
        "Do not fingerprint the data the cell reads.",
        action="store_true",
    ),
    OptionSpec(
        ("--no-env",),
        "no_env",
        "Do not capture the environment (packages, hardware, git).",
        action="store_true",
    ),
    OptionSpec(
        ("--quiet", "-q"),
        "quiet",
        "No summary after the cell.",
        action="store_true",
    ),
    # -- sweeps (docs/sweeps.md): the cell becomes an Optuna objective, each trial a run --
    OptionSpec(
        ("--sweep",),
        "sweep",
        "Run the cell as a hyperparameter sweep of `N` trials on Optuna; each trial is a "
        "run. Needs `--objective` and a search space (`--space` or `nbtrack.suggest`).",
        type=int,
        metavar="N",
        convert=_positive("--sweep"),
    ),
    OptionSpec(
        ("--objective",),
        "objective",
        "The metric the sweep optimises: its last value logged with `track.log`.",
        metavar="METRIC",
        requires="sweep",
    ),
    OptionSpec(
        ("--direction",),
        "direction",
        "`min` or `max` (also `minimize`/`maximize`); default: the objective's direction "
        "(`nbtrack.toml`, then its name: see docs/metrics.md).",
        metavar="DIR",
        convert=_direction,
        requires="sweep",
    ),
    OptionSpec(
        ("--space",),
        "space",
        "A searched parameter: `uniform(lo, hi[, step])`, `loguniform(lo, hi)`, "
        "`int(lo, hi[, step])`, `logint(lo, hi)` or `choice(a, b, ...)`; it replaces the "
        "cell's literal binding of `NAME`. Repeatable.",
        action="append",
        metavar="NAME=KIND(ARGS)",
        convert=_space,
        requires="sweep",
    ),
    OptionSpec(
        ("--sampler",),
        "sampler",
        "`tpe` (the default), `random`, `grid`, `cmaes` or `default` (Optuna's own choice); "
        "seeded with `--seed`.",
        metavar="NAME",
        convert=_one_of("--sampler", "nbtrack.sweeps.study", "SAMPLERS"),
        requires="sweep",
    ),
    OptionSpec(
        ("--pruner",),
        "pruner",
        "`none` (the default), `median` or `hyperband`: stops poor trials early on the "
        "objective values `track.log` reports.",
        metavar="NAME",
        convert=_one_of("--pruner", "nbtrack.sweeps.study", "PRUNERS"),
        requires="sweep",
    ),
    OptionSpec(
        ("--workers",),
        "workers",
        "Run trials in `N` worker processes started from the cell (they re-run the cells "
        "this one depends on); default 1: trials run in the kernel.",
        type=int,
        metavar="N",
        convert=_positive("--workers"),
        requires="sweep",
    ),
    OptionSpec(
        ("--resume",),
        "resume",
        "Continue the latest sweep of this `--name` (same study) up to `N` trials.",
        action="store_true",
        requires="sweep",
    ),
    OptionSpec(
        ("--narrow-from",),
        "narrow_from",
        "Search the space narrowed around the best trials of sweep `REF` (with TPE unless "
        "`--sampler` says otherwise).",
        metavar="REF",
        requires="sweep",
    ),
    OptionSpec(
        ("--max-failures",),
        "max_failures",
        "Stop the sweep after `N` trials in a row fail (default 3); the first error is shown.",
        type=int,
        metavar="N",
        convert=_positive("--max-failures"),
        requires="sweep",
    ),
)


@dataclass(frozen=True)
class TrackOptions:
    """A parsed ``%%track`` line: one field per row of :data:`OPTIONS` (the defaults when
    an option is not given)."""

    name: str | None = None
    seed: int | None = None
    deterministic: bool = False
    tags: tuple[str, ...] = ()
    note: str | None = None
    project: str | None = None
    overrides: tuple[tuple[str, object], ...] = field(default=())
    no_data: bool = False
    no_env: bool = False
    quiet: bool = False
    sweep: int | None = None
    objective: str | None = None
    direction: str | None = None
    space: tuple[str, ...] = ()
    sampler: str | None = None
    pruner: str | None = None
    workers: int | None = None
    resume: bool = False
    narrow_from: str | None = None
    max_failures: int | None = None

    def to_line(self) -> str:
        """The options as a ``%%track`` line (without ``%%track``) that parses back to them."""
        words: list[str] = []
        for spec in OPTIONS:
            value = getattr(self, spec.dest)
            if spec.action == "store_true":
                if value:
                    words.append(spec.flags[0])
            elif spec.action == "append":
                for item in value:
                    words += [spec.flags[0], spec.to_text(item)]
            elif value is not None:
                words += [spec.flags[0], spec.to_text(value)]
        return shlex.join(words)


class _Parser(argparse.ArgumentParser):
    """argparse that raises one :class:`UsageError` line instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{PROG}: {message}; `{PROG}?` lists the options")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for :data:`OPTIONS` (errors raise :class:`UsageError`).

    Abbreviations (``--det``) are refused: a recorded line must keep its meaning when
    the grammar grows, and a prefix that is unique today may not be tomorrow.
    """
    parser = _Parser(
        prog=PROG,
        add_help=False,
        allow_abbrev=False,
        formatter_class=lambda prog: argparse.HelpFormatter(prog, width=88),
    )
    for spec in OPTIONS:
        parser.add_argument(*spec.flags, **spec.argparse_kwargs())
    return parser


_PARSER = build_parser()


def parse_track_line(line: str, *, strict: bool = True) -> TrackOptions:
    """Parse the options after ``%%track`` (shell-style quoting, as the magic reads them).

    Raises :class:`UsageError` (one line) for an unknown option, a bad value, a seed out
    of range, a malformed ``--set`` or unbalanced quotes. ``strict=False`` ignores options
    this nbtrack does not know: a line recorded by another version was valid for it.
    """
    try:
        words = shlex.split(line)  # posix: `--note "two words"` loses its quotes
    except ValueError as exc:
        raise UsageError(
            f"{PROG}: cannot split the options ({exc}): {line.strip()}; check the quotes"
        ) from None
    if strict:
        namespace = _PARSER.parse_args(words)
    else:
        namespace = _PARSER.parse_known_args(words)[0]
    values = {}
    for spec in OPTIONS:
        value = getattr(namespace, spec.dest)
        values[spec.dest] = spec.convert(value) if spec.convert is not None else value
    defaults = TrackOptions()
    for spec in OPTIONS:
        needed = spec.requires
        if needed is not None and values[spec.dest] != getattr(defaults, spec.dest):
            if values[needed] == getattr(defaults, needed):
                wanted = next(s.flags[0] for s in OPTIONS if s.dest == needed)
                raise UsageError(
                    f"{PROG}: {spec.flags[0]} needs {wanted}; `{PROG}?` lists the options"
                )
    return TrackOptions(**values)


def option_label(spec: OptionSpec) -> str:
    """How the docs name an option: ``--seed N``, ``-s`` (the long flag with its argument)."""
    first = spec.flags[0] + (f" {spec.metavar}" if spec.metavar else "")
    return ", ".join(f"`{flag}`" for flag in (first, *spec.flags[1:]))


def usage_text() -> str:
    """The usage line and every option with its help, as ``%%track?`` shows them."""
    return _PARSER.format_help().replace("usage: ", "Usage: ", 1)


def markdown_table() -> str:
    """The option table of docs/tracking.md, generated from :data:`OPTIONS`."""
    rows = ["| option | meaning |", "|---|---|"]
    rows += [f"| {option_label(spec)} | {spec.help} |" for spec in OPTIONS]
    return "\n".join(rows) + "\n"


def _check_table() -> None:
    # A row without its field (or a field without its row) would fail on every parse;
    # fail at import instead, where the cause is obvious.
    names = [f.name for f in fields(TrackOptions)]
    dests = [spec.dest for spec in OPTIONS]
    if names != dests:
        raise RuntimeError(f"TrackOptions fields {names} do not match the OPTIONS rows {dests}")


_check_table()
