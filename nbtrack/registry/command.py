"""``nbtrack models ...`` and ``%nbtrack register`` / ``%nbtrack models``: parse, call one
:class:`~nbtrack.registry.core.Registry` method, print. Errors are one line (the CLI's
``main`` prints ``nbtrack: error: ...`` and exits 1); ``models gate`` exits 0 when every
check passes and 1 otherwise, with a table (or ``--json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
from typing import Any

from nbtrack import config
from nbtrack.errors import PromotionRefusedError, UsageError
from nbtrack.registry import render
from nbtrack.registry.audit import to_jsonl
from nbtrack.registry.core import Registry
from nbtrack.registry.records import STAGES, GateReport
from nbtrack.registry.refs import parse_ref

__all__ = ["DESCRIPTION", "add_parser", "magic_models", "magic_register", "parse_moment"]

DESCRIPTION = """\
The model registry (docs/registry.md): versions of models made by runs, their stages
(development -> staging -> canary -> production, archived), aliases, gates and approvals
from nbtrack.toml's [registry] table (or .nbtrack/gates.toml), rollback, and the audit log.
"""

EPILOG = """\
examples:
  nbtrack models register 12 digits-classifier --artifact model
  nbtrack models gate digits-classifier 3 --stage production      # exit 0/1, for CI
  nbtrack models approve digits-classifier 3 --stage production --comment "looks good"
  nbtrack models promote digits-classifier 3 --stage production --reason "beats v2"
  nbtrack models rollback digits-classifier --reason "latency regression"
  nbtrack models history digits-classifier --stage production --at 2025-03-01
  nbtrack models audit --verify
"""

_STAGE_NAMES = [str(s) for s in STAGES]


def _registry(args: argparse.Namespace) -> Registry:
    from nbtrack.store.routing import connect_store

    # Reading never creates a store: a missing one is an error that says what to do.
    return Registry(
        connect_store(config.command_store_dir(args.store, search_upwards=True), create=False)
    )


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def parse_moment(text: str) -> tuple[float, float | None]:
    """``--at``: a date (``2025-03-01``: that whole day, local time) or a date and time
    (``2025-03-01T14:30``: that moment) as ``(start, end or None)`` in Unix time."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--at {text!r} is not a date; write 2025-03-01 (that day) or 2025-03-01T14:30"
        ) from None
    if len(text.strip()) <= 10:  # a date alone: every version there at some time that day
        start = moment.timestamp()
        return start, (moment + dt.timedelta(days=1)).timestamp()
    return moment.timestamp(), None


def _version_arg(text: str) -> int:
    value = text[1:] if text.lower().startswith("v") else text
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a version number, e.g. 3")
    return int(value)


# -- commands -------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    """List registered models."""
    summaries = _registry(args).models()
    if args.json:
        _print_json([m.to_dict() for m in summaries])
    else:
        print(render.models_text(summaries))
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    """Register a run's artifact as a new version."""
    version = _registry(args).register(
        args.run, args.name, args.artifact, description=args.description, reason=args.reason
    )
    if args.json:
        _print_json(version.to_dict())
    else:
        print(
            f"{version.model} v{version.version} [{version.stage}] from run "
            f"#{version.lineage.run_number} ({version.artifact}, {version.hash[:12]})"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show a model's versions, or one version."""
    reg = _registry(args)
    name = args.name
    if args.version is None and ("@" in name or "/" in name):
        found = reg.resolve(name)  # a ref: show that version
        name, version = found.model, found.version
    else:
        version = args.version
    if version is None:
        versions = reg.versions(name)
        if args.json:
            _print_json([v.to_dict() for v in versions])
        else:
            print(render.versions_text(name, versions))
        return 0
    record = reg.version(name, version)
    periods = reg.history(name, version=version)
    decisions = reg.decisions(name, version)
    if args.json:
        data = record.to_dict()
        data["stages"] = [p.to_dict() for p in periods]
        data["decisions"] = [d.to_dict() for d in decisions]
        _print_json(data)
    else:
        print(render.version_text(record, periods, decisions))
    return 0


def _print_report(report: GateReport | None, as_json: bool) -> None:
    if report is not None and report.results and not as_json:
        print(render.gate_text(report))


def cmd_promote(args: argparse.Namespace) -> int:
    """Move a version into a stage (gates and approvals apply to promotions)."""
    reg = _registry(args)
    try:
        outcome = reg.promote(
            args.name, args.version, args.stage, reason=args.reason, force=args.force
        )
    except PromotionRefusedError as exc:
        if isinstance(exc.report, GateReport):
            if args.json:
                _print_json({"promoted": False, "report": exc.report.to_dict()})
            else:
                print(render.gate_text(exc.report))
        raise
    if args.json:
        _print_json({"promoted": True, **outcome.to_dict()})
    else:
        _print_report(outcome.report, False)
        print(outcome.message)
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    """Evaluate the gates for a stage; exit 0 when all pass, 1 otherwise."""
    report = _registry(args).gate(args.name, args.version, args.stage)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(render.gate_text(report))
    return 0 if report.passed else 1


def _decide(args: argparse.Namespace, approved: bool) -> int:
    reg = _registry(args)
    if approved:
        outcome = reg.approve(args.name, args.version, args.stage, args.comment)
    else:
        outcome = reg.reject(args.name, args.version, args.stage, args.comment)
    if args.json:
        _print_json(outcome.to_dict())
    else:
        print(outcome.message)
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    """Approve a version for a stage."""
    return _decide(args, True)


def cmd_reject(args: argparse.Namespace) -> int:
    """Reject a version for a stage."""
    return _decide(args, False)


def cmd_alias(args: argparse.Namespace) -> int:
    """Point an alias at a version, or delete it."""
    reg = _registry(args)
    if args.delete:
        if args.version is not None:
            raise UsageError("nbtrack models alias --delete takes no VERSION")
        outcome = reg.remove_alias(args.name, args.alias, reason=args.reason)
    else:
        if args.version is None:
            raise UsageError(
                f"give the version {args.name}@{args.alias} should point at, or --delete"
            )
        outcome = reg.set_alias(args.name, args.alias, args.version, reason=args.reason)
    if args.json:
        _print_json(outcome.to_dict())
    else:
        print(outcome.message)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Put back the version that was in the stage before."""
    outcome = _registry(args).rollback(args.name, args.stage, reason=args.reason)
    if args.json:
        _print_json(outcome.to_dict())
    else:
        print(outcome.message)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Show, export (JSON lines) or verify the audit log."""
    reg = _registry(args)
    if args.verify:
        check = reg.verify_audit()
        if args.json:
            _print_json(check.to_dict())
        else:
            print(render.audit_check_text(check))
        return 0 if check.ok else 1
    entries = reg.audit(args.name)
    if args.json:
        sys.stdout.write(to_jsonl(entries))
    else:
        print(render.audit_text(entries))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """Which versions were in a stage, and when."""
    reg = _registry(args)
    if args.at:
        start, end = parse_moment(args.at)
        periods = reg.at(args.name, args.stage, start, end)
    else:
        periods = reg.history(args.name, args.stage)
    if args.json:
        _print_json([p.to_dict() for p in periods])
    elif args.at and not periods:
        print(f"no version of {args.name} was in {args.stage} at {args.at}")
    else:
        print(render.history_text(periods))
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``nbtrack models`` and its subcommands to the command line's subparsers."""
    parser = sub.add_parser(
        "models",
        help="the model registry: register, gate, approve, promote, roll back, audit",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    commands.required = True

    def command(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = commands.add_parser(
            name, parents=[common], help=help, description=help + "."
        )
        p.set_defaults(func=func)
        return p

    def model_version(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", help="the model's name")
        p.add_argument("version", type=_version_arg, help="the version number (3 or v3)")

    def stage_option(p: argparse.ArgumentParser, default: str | None = None) -> None:
        p.add_argument(
            "--stage",
            required=default is None,
            default=default,
            choices=_STAGE_NAMES,
            help="the stage" + (f" (default {default})" if default else ""),
        )

    command("list", "list registered models and what is in each stage", cmd_list)

    p = command("register", "register a run's artifact as a new model version", cmd_register)
    p.add_argument("run", help="run number, id, id prefix or 'last'")
    p.add_argument("name", help="the model's name, e.g. digits-classifier")
    p.add_argument("--artifact", help="the run's artifact that is the model (if it has several)")
    p.add_argument("--description", help="the model's description (when it is new)")
    p.add_argument("--reason", help="why, for the audit log")

    p = command("show", "show a model's versions, or one version with its lineage", cmd_show)
    p.add_argument("name", help="the model's name, or a ref such as NAME@production")
    p.add_argument("version", nargs="?", type=_version_arg, help="one version (3 or v3)")

    p = command("promote", "move a version into a stage (gates and approvals apply)", cmd_promote)
    model_version(p)
    stage_option(p)
    p.add_argument("--reason", help="why, for the audit log (required with --force)")
    p.add_argument(
        "--force",
        action="store_true",
        help="promote although validation gates fail (needs --reason; approvals and who "
        "may promote still apply)",
    )

    p = command("approve", "approve a version for a stage", cmd_approve)
    model_version(p)
    stage_option(p)
    p.add_argument("--comment", help="a note kept with the approval")

    p = command("reject", "reject a version for a stage", cmd_reject)
    model_version(p)
    stage_option(p)
    p.add_argument("--comment", help="why, kept with the rejection")

    p = command("alias", "point an alias (NAME@ALIAS) at a version, or delete it", cmd_alias)
    p.add_argument("name", help="the model's name")
    p.add_argument("alias", help="the alias, e.g. champion")
    p.add_argument("version", nargs="?", type=_version_arg, help="the version it points at")
    p.add_argument("--delete", action="store_true", help="delete the alias")
    p.add_argument("--reason", help="why, for the audit log")

    p = command("rollback", "put back the version that was in a stage before", cmd_rollback)
    p.add_argument("name", help="the model's name")
    stage_option(p, "production")
    p.add_argument("--reason", help="why, for the audit log")

    p = command("gate", "evaluate a stage's gates for a version: exit 0 pass, 1 fail", cmd_gate)
    model_version(p)
    stage_option(p)

    p = command("audit", "show the audit log (--json: JSON lines), or --verify it", cmd_audit)
    p.add_argument("name", nargs="?", help="only this model's entries")
    p.add_argument(
        "--verify",
        action="store_true",
        help="check every entry against its hash chain; exit 1 when one was edited or deleted",
    )

    p = command("history", "which versions were in a stage, and when", cmd_history)
    p.add_argument("name", help="the model's name")
    stage_option(p, "production")
    p.add_argument(
        "--at",
        metavar="DATE",
        help="only what was there on DATE (2025-03-01: that day; 2025-03-01T14:30: that moment)",
    )


# -- the magic's side -------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def magic_register(line: str, store: Any) -> Any:
    """``%nbtrack register RUN NAME [--artifact A] [--reason R]``: register a run's artifact
    (``RUN`` defaults to ``last``) in the kernel's store; returns the new version."""
    parser = _Parser(prog="%nbtrack register", add_help=False)
    parser.add_argument("words", nargs="*")
    parser.add_argument("--artifact")
    parser.add_argument("--description")
    parser.add_argument("--reason")
    try:
        args = parser.parse_args(shlex.split(line))
    except ValueError as exc:
        raise UsageError(f"%nbtrack register: {exc}") from None
    if len(args.words) == 1:
        run, name = "last", args.words[0]
    elif len(args.words) == 2:
        run, name = args.words
    else:
        raise UsageError(
            "%nbtrack register: give [RUN] NAME, e.g. %nbtrack register 12 digits-classifier "
            "--artifact model (RUN defaults to the last run)"
        )
    return Registry(store).register(
        run, name, args.artifact, description=args.description, reason=args.reason
    )


def magic_models(line: str, store: Any) -> Any:
    """``%nbtrack models [NAME | REF]``: the models table, one model's versions, or one
    version (a ref such as ``digits@production``)."""
    from nbtrack.registry.api import models

    text = line.strip()
    if not text:
        return models(store=store)
    if "@" in text or "/" in text:
        parse_ref(text)  # a bad ref is a one-line error before the store is read
        return Registry(store).resolve(text)
    return models(text, store=store)
