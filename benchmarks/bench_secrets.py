"""Benchmark: what keeping secrets out of the store costs.

    python benchmarks/bench_secrets.py [--history 1000] [--runs 2000]

Reports:

* the redaction every tracked cell does before anything is stored (``_without_secrets``:
  its code and the kernel's whole history), for a kernel with ``--history`` executed
  cells, one in fifty binding a secret, and two secret environment variables set: the
  first tracked cell (every text new) and later ones (the history is the same texts, so
  cached);
* ``nbtrack scan`` (``scan_store``) and ``nbtrack scan --redact`` (``redact_store``,
  including the file rebuild) over a store of ``--runs`` runs sharing that history, one
  run in ten holding a secret param.

Everything happens in a temporary folder; nothing goes over the network.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def history_texts(count: int) -> list[str]:
    """``count`` cells of plausible notebook code; every fiftieth binds a secret."""
    rng = random.Random(0)
    cells = []
    for i in range(count):
        lines = [
            f"x{j} = model.fit(X_train, y_train, epochs={j}, lr=0.{j})  # cell {i}"
            for j in range(rng.randint(2, 15))
        ]
        if i % 50 == 0:
            lines.append(f"api_key = 'key-{i:06d}-abcdef'")
        cells.append("\n".join(lines))
    return cells


def bench_tracking(count: int, repeat: int) -> tuple[float, float]:
    """(first, later median) milliseconds of one tracked cell's redaction."""
    from nbtrack.model import HistoryEntry
    from nbtrack.tracker import RunSpec, _without_secrets

    history = [HistoryEntry(i + 1, text) for i, text in enumerate(history_texts(count))]
    spec = RunSpec(source="lr = 0.1\n", code="lr = 0.1\n", history=history, cwd=os.getcwd())
    start = time.perf_counter()
    _without_secrets(spec)
    first = time.perf_counter() - start
    later = []
    for _ in range(repeat):
        start = time.perf_counter()
        _without_secrets(spec)
        later.append(time.perf_counter() - start)
    return first * 1e3, statistics.median(later) * 1e3


def bench_scan(folder: Path, runs: int, count: int) -> tuple[float, float, int]:
    """(scan ms, redact ms, findings) on a store of ``runs`` runs."""
    from nbtrack.model import HistoryEntry
    from nbtrack.scan import redact_store, scan_store
    from nbtrack.store.sqlite import Store
    from nbtrack.tracker import RunSpec, start_run

    store = Store(folder)
    history = [HistoryEntry(i + 1, text) for i, text in enumerate(history_texts(count))]
    for i in range(runs):
        spec = RunSpec(
            source=f"lr = {i}\n",
            code=f"lr = {i}\n",
            history=history[: 20 + i % 200],
            params={"lr": i, "note_len": 3},
            capture_env=False,
            note=f"run {i}",
        )
        run = start_run(spec, store=store)
        run.log(acc=i / runs)
        run.finish()
    # One run in ten holds a secret param, written as an old nbtrack would have.
    with store.transaction() as conn:
        conn.execute(
            "UPDATE runs SET params = json_set(params, '$.db_password', 'pw-' || number) "
            "WHERE number % 10 = 0"
        )
    start = time.perf_counter()
    found = scan_store(store)
    scan = time.perf_counter() - start
    start = time.perf_counter()
    redact_store(store)
    redact = time.perf_counter() - start
    assert scan_store(store).clean
    store.close()
    return scan * 1e3, redact * 1e3, len(found.findings)


def main() -> None:
    """Run both benchmarks and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    os.environ["HF_TOKEN"] = "hf_" + "q" * 30
    os.environ["JPY_SESSION_NAME"] = "/home/me/project/notebook-session.ipynb"
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        first, later = bench_tracking(args.history, args.repeat)
        scan, redact, findings = bench_scan(Path(tmp) / "store", args.runs, args.history)
    print(f"| what | {args.history:,} history cells / {args.runs:,} runs |")
    print("|---|---|")
    print(f"| redaction, first tracked cell | {first:.1f} ms |")
    print(f"| redaction, later tracked cells (median of {args.repeat}) | {later:.2f} ms |")
    print(f"| `nbtrack scan` ({findings:,} findings) | {scan:.0f} ms |")
    print(f"| `nbtrack scan --redact`, file rebuilt | {redact:.0f} ms |")


if __name__ == "__main__":
    main()
