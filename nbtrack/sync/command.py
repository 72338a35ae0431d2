"""``nbtrack push`` / ``nbtrack pull`` and ``%nbtrack push|pull``: parse, call
:func:`nbtrack.sync.push` / :func:`~nbtrack.sync.pull`, print the report."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from nbtrack import config
from nbtrack.errors import NbtrackError, UsageError

__all__ = ["add_parsers", "cmd_pull", "cmd_push", "magic_sync"]

PUSH_DESCRIPTION = (
    "Copy runs (all, or the REFs given) with their metrics, blobs and artifacts from the "
    "local store to a team store (a folder or a postgresql:// URL) or to an MLflow tracking "
    "server (mlflow+http://host:port). Safe to rerun: runs already there are skipped, so a "
    "push cut off halfway is finished by pushing again."
)
PULL_DESCRIPTION = (
    "Copy runs from a team store or an MLflow tracking server (mlflow+http://host:port) "
    "into the local store; MLflow runs arrive as runs of kind 'mlflow'. Safe to rerun."
)


def _report(report: Any, as_json: bool) -> None:
    if as_json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report.text())


def _push_outboxes(args: Any, store: Any) -> int:
    """``push --outbox``: every outbox to its database (docs/team.md); exit status 1 when
    a run was not copied (a database still unreachable, unreadable content)."""
    from nbtrack.sync.outbox import push_outboxes

    if args.to or args.refs or args.model:
        raise UsageError(
            "push --outbox pushes every outbox to its own database: give no --to or REF"
        )
    # The configured store's URL carries the password for its own database's outbox.
    try:
        configured: Any = config.command_store_dir(store, search_upwards=True)
    except NbtrackError:
        configured = None
    reports = push_outboxes(configured)
    if args.json:
        json.dump([r.to_dict() for r in reports], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not reports:
        print("no runs wait in an outbox")
    else:
        for report in reports:
            print(report.text())
    return 1 if any(r.failed for r in reports) else 0


def cmd_push(args: argparse.Namespace) -> int:
    """Push runs to a team store or MLflow server."""
    from nbtrack.sync import push

    if args.outbox:
        return _push_outboxes(args, args.store)
    report = push(
        args.to, args.refs, store=args.store, experiment=args.experiment, model=args.model
    )
    _report(report, args.json)
    return 1 if report.failed else 0


def cmd_pull(args: argparse.Namespace) -> int:
    """Pull runs from a team store or MLflow server."""
    from nbtrack.sync import pull

    report = pull(args.source, args.refs, store=args.store, experiment=args.experiment)
    _report(report, args.json)
    return 1 if report.failed else 0


def _add_arguments(p: argparse.ArgumentParser, *, push: bool) -> None:
    if push:
        p.add_argument(
            "--to",
            metavar="PATH|URL",
            help="store folder, postgresql:// URL or mlflow+http://host:port "
            "(default: [sync] remote in nbtrack.toml)",
        )
        p.add_argument(
            "--model",
            metavar="NAME",
            help="mirror this registered model's versions and aliases to MLflow's registry",
        )
        p.add_argument(
            "--outbox",
            action="store_true",
            help="push the runs kept locally while a team database was unreachable, each "
            "to its own database (docs/team.md)",
        )
    else:
        p.add_argument(
            "--from",
            dest="source",
            metavar="PATH|URL",
            help="store folder, postgresql:// URL or mlflow+http://host:port "
            "(default: [sync] remote in nbtrack.toml)",
        )
    p.add_argument(
        "--experiment",
        metavar="NAME",
        help="MLflow experiment (push: default each run's project, else 'nbtrack'; "
        "pull: default every experiment)",
    )
    p.add_argument("refs", nargs="*", metavar="REF", help="only these runs (default: all)")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``push`` and ``pull`` to the ``nbtrack`` command line."""
    p = sub.add_parser(
        "push",
        parents=[common],
        help="copy runs to a team store or MLflow",
        description=PUSH_DESCRIPTION,
    )
    _add_arguments(p, push=True)
    p.set_defaults(func=cmd_push)
    p = sub.add_parser(
        "pull",
        parents=[common],
        help="copy runs from a team store or MLflow",
        description=PULL_DESCRIPTION,
    )
    _add_arguments(p, push=False)
    p.set_defaults(func=cmd_pull)


class _MagicParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit the kernel
        raise UsageError(f"%nbtrack {self.prog.split()[-1]}: {message}")


def magic_sync(command: str, rest: str) -> Any:
    """``%nbtrack push [--to URL] [REF…]`` / ``%nbtrack pull [--from URL]``: the kernel's
    store (the one its tracked cells write to); returns the report (shown as text)."""
    from nbtrack.sync import pull, push

    parser = _MagicParser(prog=f"%nbtrack {command}", add_help=False)
    _add_arguments(parser, push=command == "push")
    parser.add_argument("--json", action="store_true")
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise UsageError(f"%nbtrack {command}: {exc}") from None
    args = parser.parse_args(words)
    store = config.command_store_dir(search_upwards=False)
    if command == "push" and args.outbox:
        _push_outboxes(args, store)
        return None
    if command == "push":
        report = push(args.to, args.refs, store=store, experiment=args.experiment, model=args.model)
    else:
        report = pull(args.source, args.refs, store=store, experiment=args.experiment)
    _report(report, args.json)
    return None
