"""The ``nbtrack`` command line: list, show, diff and delete runs; collect garbage.

Thin by design: each command parses its arguments, calls one core function and prints.
Errors print one line (``nbtrack: error: ...``) and exit with status 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from nbtrack import __version__, config
from nbtrack.errors import NbtrackError

EPILOG = """\
The store is found like git finds its repository: $NBTRACK_STORE if set, else the nearest
.nbtrack/ folder in the working directory or above it. --store PATH names one explicitly.
A run REF is a run number (12 or #12), a run id or an unambiguous id prefix, or 'last'.

examples:
  nbtrack runs --name 'digits/*'
  nbtrack show last
  nbtrack diff 12 15
  nbtrack runs --json | jq '.[].metrics'
"""


def _open(args: argparse.Namespace) -> Any:
    from nbtrack.store.routing import connect_store

    # Reading never creates a store: a missing one is an error that says what to do.
    store = connect_store(config.command_store_dir(args.store, search_upwards=True), create=False)
    store.mark_crashed()
    return store


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str, allow_nan=True)
    sys.stdout.write("\n")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(out)


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs, oldest first (the last --limit ones)."""
    from nbtrack.query import RUNS_COLUMNS as columns
    from nbtrack.store.sqlite import decode_row
    from nbtrack.summary import fmt_duration, fmt_value

    store = _open(args)
    from nbtrack.sync.outbox import waiting_note  # a team store's runs kept locally

    if (note := waiting_note(store)) is not None:
        print(note, file=sys.stderr)
    rows = [
        decode_row(r, columns)
        for r in store.list_runs(
            name=args.name,
            status=args.status,
            tag=args.tag,
            columns=columns,
            project=args.project,
        )
    ]
    if args.limit:
        rows = rows[-args.limit :]
    if args.json:
        for row in rows:
            row["duration"] = (row["end_time"] - row["start_time"]) if row["end_time"] else None
        _print_json(rows)
        return 0
    if not rows:
        print(
            f"no runs in {store.shown}"
            + (
                " matching the filters"
                if (args.name or args.status or args.tag or args.project)
                else ""
            )
        )
        return 0
    param_keys = list(dict.fromkeys(k for r in rows for k in r["params"]))[: args.max_columns]
    metric_keys = list(dict.fromkeys(k for r in rows for k in r["metrics"]))[: args.max_columns]
    # A project column only where some run has one: nothing changes for a store nobody scopes.
    projects = any(r["project"] for r in rows) and not args.project
    headers = ["#", "name", *(["project"] if projects else [])]
    headers += ["status", "started", "duration"] + param_keys + metric_keys
    table = []
    for r in rows:
        duration = (r["end_time"] - r["start_time"]) if r["end_time"] else None
        table.append(
            [str(r["number"]), r["name"] or ""]
            + ([r["project"] or ""] if projects else [])
            + [
                r["status"],
                time.strftime("%Y-%m-%d %H:%M", time.localtime(r["start_time"])),
                fmt_duration(duration),
            ]
            + [fmt_value(r["params"][k], 16) if k in r["params"] else "" for k in param_keys]
            + [fmt_value(r["metrics"][k], 12) if k in r["metrics"] else "" for k in metric_keys]
        )
    print(_table(headers, table))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show one run."""
    from nbtrack.query import get_run, metric_deltas
    from nbtrack.summary import run_text

    store = _open(args)
    record = get_run(args.ref, store=store)
    if args.json:
        data = record.to_dict()
        if not args.full:
            data["history"] = f"{len(record.history)} cell(s) (use --full)"
            data["metric_history"] = {
                k: f"{len(v)} point(s) (use --full)" for k, v in data["metric_history"].items()
            }
        _print_json(data)
        return 0
    print(run_text(record, metric_deltas(record)))
    env = record.environment
    if env:
        python = env.get("python", {}).get("version", "?")
        print(
            f"  env:     Python {python} on {env.get('os', {}).get('platform', '?')}, "
            f"{len(env.get('packages', {}))} packages"
        )
    if record.git:
        git = record.git
        if "commit" in git:
            print(
                f"  git:     {(git.get('commit') or '')[:12]} on {git.get('branch')}"
                + (" (dirty)" if git.get("dirty") else "")
            )
    if record.notebook:
        print(f"  notebook: {record.notebook}")
    if record.error and args.full:
        print(record.error.get("traceback", ""))
    if args.full and record.code:
        print("  code:")
        print("    " + record.code.replace("\n", "\n    "))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Show what differs between two runs."""
    from nbtrack.query import diff

    result = diff(args.a, args.b, store=_open(args))
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result)
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    """Delete runs (their artifacts' files go with the next `nbtrack gc`)."""
    store = _open(args)
    ids = [store.resolve(ref) for ref in args.refs]  # resolve all first: all or nothing
    numbers = [store.run_row(i)["number"] for i in ids]
    store.delete_runs(ids)
    if args.json:
        _print_json({"deleted": numbers})
        return 0
    print(
        f"deleted {len(ids)} run(s): "
        + ", ".join(f"#{n}" for n in numbers)
        + "; run `nbtrack gc` to free their artifacts"
    )
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    """Delete artifact files and stored blobs no run refers to."""
    store = _open(args)
    result = store.gc(grace=args.grace, verify=args.verify, shared=args.shared)
    if args.json:
        _print_json(result)
    else:
        print(
            f"removed {result['files']} artifact file(s) ({result['bytes']:,} bytes) and "
            f"{result['blobs']} unreferenced blob(s)"
            + (f"; removed {result['damaged']} damaged file(s)" if args.verify else "")
        )
        if result["shared_kept"]:
            print(
                f"kept {result['shared_kept']} artifact file(s) no run of this store uses in "
                f"{store.artifact_location.description}: other stores (the team database, "
                "laptops, outboxes) may use that location; `nbtrack gc --shared` deletes "
                "them when this store is its only user"
            )
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    """Look for secrets in the store (exit 1 when found); --redact removes them in place."""
    from nbtrack.errors import UsageError
    from nbtrack.scan import redact_store, scan_store
    from nbtrack.secrets import project_rules

    try:
        rules = project_rules()
    except UsageError as exc:
        # Exit 1 means "secrets found": a bad [secrets] table is a usage error, exit 2.
        print(f"nbtrack: error: {exc}", file=sys.stderr)
        return 2
    store = _open(args)
    result = redact_store(store, rules) if args.redact else scan_store(store, rules)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(_scan_text(result))
    if args.redact:
        return 0
    return 0 if result.clean else 1


def _scan_text(result: Any) -> str:
    """What ``nbtrack scan`` prints: one line per finding (run, field, rule), never a value."""
    runs = len({f.run_id for f in result.findings if f.kind == "run"})
    sweeps = len({f.run_id for f in result.findings if f.kind == "sweep"})
    also = f" and {sweeps} sweep(s)" if sweeps else ""
    lines = []
    if result.findings:
        rows = [[f.where, f.field, f.rule] for f in result.findings]
        lines.append(_table(["where", "field", "rule"], rows))
    if result.redacted is None:
        if result.clean:
            lines.append(f"no secrets found in {result.runs} run(s) in {result.store}")
        else:
            lines.append(
                f"{len(result.findings)} possible secret(s) in {runs} of {result.runs} run(s)"
                f"{also}; "
                "`nbtrack scan --redact` replaces them with <redacted>"
            )
        return "\n".join(lines)
    if result.clean:
        lines.append(f"nothing to redact in {result.runs} run(s) in {result.store}")
    else:
        lines.append(f"redacted {len(result.findings)} secret(s) in {runs} run(s){also}")
    if result.redacted.get("remains"):  # a database: what it may still hold, and why
        lines.append(f"note: {result.redacted['remains']}")
    elif not result.redacted.get("compacted"):
        lines.append(
            "note: another process has the store open, so its file was not rebuilt and may "
            "keep old copies in free pages; run `nbtrack scan --redact` again once it is closed"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so the docs test can check every command is documented)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="PATH",
        help="store folder or postgresql:// URL (default: $NBTRACK_STORE, nbtrack.toml, .nbtrack/)",
    )
    common.add_argument("--json", action="store_true", help="print JSON for programs")

    parser = argparse.ArgumentParser(
        prog="nbtrack",
        description="Experiment runs recorded by nbtrack's %%track magic.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nbtrack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "runs",
        parents=[common],
        help="list runs",
        description="List runs, oldest first, with their params and last metrics.",
    )
    p.add_argument("--name", help="only runs with this name (a glob such as 'digits/*' works)")
    p.add_argument(
        "--status", choices=["running", "finished", "failed", "interrupted", "crashed", "pruned"]
    )
    p.add_argument("--tag", help="only runs with this tag")
    p.add_argument(
        "--project", metavar="NAME", help="only runs of this project (docs/team.md#projects)"
    )
    p.add_argument("--limit", type=int, default=0, help="show only the last N runs")
    p.add_argument(
        "--max-columns",
        type=int,
        default=6,
        help="at most this many params and this many metrics (default 6)",
    )
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser(
        "show",
        parents=[common],
        help="show one run",
        description="Show one run: params, seed, metrics, inputs, environment.",
    )
    p.add_argument("ref", help="run number, id, id prefix or 'last'")
    p.add_argument("--full", action="store_true", help="include code, history and traceback")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "diff",
        parents=[common],
        help="compare two runs",
        description="What differs between two runs: params, metrics, seeds, "
        "environment, data and code.",
    )
    p.add_argument("a", help="first run ref")
    p.add_argument("b", help="second run ref")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser(
        "rm",
        parents=[common],
        help="delete runs",
        description="Delete runs and their metrics; `nbtrack gc` then frees "
        "artifact files no other run uses.",
    )
    p.add_argument("refs", nargs="+", metavar="REF", help="runs to delete")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser(
        "gc",
        parents=[common],
        help="free unreferenced artifacts",
        description="Delete artifact files and stored blobs that no run uses. Content in "
        "a configured artifact location (a bucket or share other stores may use too) is "
        "kept unless --shared says this store is its only user.",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="keep content younger than this, which a run being started elsewhere "
        "may be about to use (default 60)",
    )
    p.add_argument(
        "--shared",
        action="store_true",
        help="also delete unused content in a configured artifact location "
        "(NBTRACK_ARTIFACTS, [store] artifacts), which is kept by default because other "
        "stores may use it: only when this store is that location's only user",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="also read every artifact file and remove those whose bytes no longer match "
        "their hash (saving the same content again then repairs them)",
    )
    p.set_defaults(func=cmd_gc)

    from nbtrack.sweeps import command as sweep_command

    sweep_command.add_parser(sub, common)  # nbtrack sweep ls|show|worker (docs/sweeps.md)

    from nbtrack.registry import command as models_command

    models_command.add_parser(sub, common)  # nbtrack models ... (docs/registry.md)

    from nbtrack.sync import command as sync_command

    sync_command.add_parsers(sub, common)  # nbtrack push|pull (docs/team.md)

    p = sub.add_parser(
        "scan",
        parents=[common],
        help="look for secrets in the store",
        description="Look for anything that looks like a secret in the store (params, code, "
        "history, notes, tags, errors, git remotes, environment, artifacts' metadata) by "
        "nbtrack's rules plus the [secrets] table of nbtrack.toml. Prints the run, the field "
        "and the rule that matched, never the value. Exits 1 when something is found.",
    )
    p.add_argument(
        "--redact",
        action="store_true",
        help="replace what is found with <redacted>, in place, and rebuild the file so no "
        "old copy remains",
    )
    p.set_defaults(func=cmd_scan)

    from nbtrack.export import command as export_command

    p = sub.add_parser(
        "export",
        help="export a notebook or a run as a Python script",
        description=export_command.DESCRIPTION,
        epilog=export_command.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export_command.add_arguments(p)  # brings its own --store
    p.set_defaults(func=export_command.cli_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nbtrack`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except NbtrackError as exc:
        print(f"nbtrack: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
