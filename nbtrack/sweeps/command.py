"""``nbtrack sweep ...``: list sweeps, show one, join one as a worker. Thin: parse, call
one core function, print."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from nbtrack import config

__all__ = ["add_parser"]

DESCRIPTION = """\
Sweeps run by `%%track --sweep N` (docs/sweeps.md): list them, show one, join one as a
worker process from any terminal or machine that sees the store, or export one as a script.
"""


def _store(args: argparse.Namespace, *, create: bool = False) -> Any:
    from nbtrack.store.routing import connect_store

    return connect_store(config.command_store_dir(args.store, search_upwards=True), create=create)


def cmd_ls(args: argparse.Namespace) -> int:
    """List sweeps, oldest first."""
    from nbtrack.sweeps.records import sweeps

    frame = sweeps(args.name, store=_store(args))
    if args.json:
        records = frame.assign(start_time=frame["start_time"].astype(str)).to_dict("records")
        json.dump(records, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    if frame.empty:
        print("no sweeps in the store")
        return 0
    for row in frame.itertuples():
        best = "-" if row.best is None else f"{row.best:.6g} (run #{row.best_run})"
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.start_time.timestamp()))
        print(
            f"#{row.number:<4} {row.name or '':<24} {row.status:<11} {row.direction} "
            f"{row.objective}  {row.complete}/{row.n_trials} complete  best {best}  "
            f"{row.sampler}  {started}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show one sweep: settings, counts, best trial, its trials."""
    from nbtrack.sweeps.records import get_sweep

    record = get_sweep(args.ref, store=_store(args))
    if args.json:
        trials = record.trials
        data = {
            "id": record.id,
            "number": record.number,
            "name": record.name,
            "status": record.status,
            "objective": record.objective,
            "direction": record.direction,
            "sampler": record.sampler,
            "pruner": record.pruner,
            "space": record.space,
            "n_trials": record.n_trials,
            "seed": record.seed,
            "trials": json.loads(trials.to_json(orient="records")),
        }
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    print(repr(record))
    print("  space:  " + ", ".join(f"{k}={v}" for k, v in record.space.items()))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Join a sweep: run the cells it depends on, then trials until it has N."""
    from nbtrack.sweeps.worker import run_worker

    result = run_worker(args.ref, store=_store(args), index=args.index)
    done = sum(1 for o in result.outcomes if o.state == "complete")
    print(
        f"nbtrack: worker ran {len(result.outcomes)} trial(s) of sweep #{result.sweep.number} "
        f"({done} complete); the sweep is {result.status}"
    )
    return 0 if result.status == "finished" else 1


def cmd_export(args: argparse.Namespace) -> int:
    """Write a script that reruns a sweep with the same sampler seed."""
    from pathlib import Path

    from nbtrack.errors import UsageError
    from nbtrack.sweeps.runner import load_sweep
    from nbtrack.sweeps.script import export_sweep

    sweep = load_sweep(args.ref, store=_store(args))
    script = export_sweep(sweep)
    if not args.output:
        sys.stdout.write(script)
        return 0
    target = Path(args.output)
    if target.exists() and not args.force:
        raise UsageError(f"{target} exists; pass --force to overwrite it")
    target.write_text(script, encoding="utf-8")
    print(f"wrote {target}: sweep #{sweep.number}, {sweep.n_trials} trials, seed {sweep.seed}")
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``nbtrack sweep`` and its subcommands to the command line's subparsers."""
    parser = sub.add_parser(
        "sweep",
        help="list, show, join or export sweeps",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="sweep_command", metavar="SUBCOMMAND")
    commands.required = True

    p = commands.add_parser(
        "ls", parents=[common], help="list sweeps", description="List sweeps, oldest first."
    )
    p.add_argument("--name", help="only sweeps of this name (a glob works)")
    p.set_defaults(func=cmd_ls)

    p = commands.add_parser(
        "show",
        parents=[common],
        help="show one sweep",
        description="One sweep: settings, trial counts, best trial; --json lists its trials.",
    )
    p.add_argument("ref", help="sweep number, id, id prefix or 'last'")
    p.set_defaults(func=cmd_show)

    p = commands.add_parser(
        "worker",
        parents=[common],
        help="run trials of a sweep in this process",
        description="Join sweep REF as a worker: re-run the cells its cell depends on (as "
        "`nbtrack export` would), then run trials until the sweep has its N. Start as many "
        "as you like, on any machine that sees the store's folder (or, for a PostgreSQL "
        "store, reaches its database).",
    )
    p.add_argument("ref", help="sweep number, id, id prefix or 'last'")
    p.add_argument(
        "--index",
        type=int,
        default=None,
        help="a number that varies this worker's sampler seed (default: the process id)",
    )
    p.set_defaults(func=cmd_worker)

    p = commands.add_parser(
        "export",
        parents=[common],
        help="write a script that reruns a sweep",
        description="Write a Python script that reruns sweep REF with the same sampler seed: "
        "the cells its cell depends on, then the same search, each trial a new run.",
    )
    p.add_argument("ref", help="sweep number, id, id prefix or 'last'")
    p.add_argument("-o", "--output", metavar="PATH", help="write the script here (default: print)")
    p.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    p.set_defaults(func=cmd_export)
