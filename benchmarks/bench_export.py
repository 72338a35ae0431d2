"""Benchmark: export a 300-cell notebook and a run with a 1,000-entry history (sliced).

    python benchmarks/bench_export.py [--repeat 5]

Reports, on the same synthetic notebook:

* ``nbtrack export_run``: history of 1,000 executed cells (re-executions and edits of the
  notebook's 300 cells, magics included) → translate, slice, render. Target: under 1 s.
* ``nbtrack export_notebook``: the 300 cells in document order (no slicing).
* ``nbconvert ScriptExporter`` in process, and ``jupyter nbconvert --to script`` as a
  command (which includes starting Python), for comparison.

The record is built in memory (no kernel, no store), so the numbers measure the exporter.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEMPLATES = {
    "data": "data_{i} = np.arange({n}.0) * {k}\nlabels_{i} = [str(x) for x in range({n})]",
    "frame": "frame_{i} = pd.DataFrame({{'x': data_{d}, 'y': data_{d} ** 2}})\nframe_{i}.head()",
    "feature": "def feature_{i}(values, scale={k}):\n    out = []\n    for v in values:\n"
    "        out.append(math.sqrt(abs(v)) * scale)\n    return out",
    "cls": "class Model{i}:\n    def __init__(self, width):\n        self.width = width\n"
    "        self.weights = np.ones(width)\n\n    def fit(self, x):\n"
    "        self.weights = self.weights * x.mean()\n        return self\n\n"
    "    def predict(self, x):\n        return x[: self.width] * self.weights[: len(x)]",
    "model": "model_{i} = Model{c}(8)\nmodel_{i}.fit(data_{d})",
    "summary": "summary_{i} = Counter(labels_{d})\nprint(len(summary_{i}))",
    "time": "%time total_{i} = sum(feature_{f}(data_{d}))",
    "items": "items_{i} = []\nfor row in range(5):\n    items_{i}.append(row * {k})\n"
    "items_{i} += [1, 2]",
    "shell": "!echo cell {i}",
    "noise": "%matplotlib inline\nnp.random.seed({k})\nnoise_{i} = np.random.rand({n})",
    "mutate": "frame_{r}['z'] = frame_{r}['x'] + {k}",
}
TRACKED = (
    "lr = 0.01\nepochs = 3\nmodel = Model{c}(8).fit(data_{d})\n"
    "score = float(model.predict(data_{d})[:3].sum()) + sum(feature_{f}(data_{d})) * lr\n"
    "track.log(score=score)"
)


def make_cells(count: int, seed: int = 0) -> list[str]:
    """``count`` cells, each using only names that earlier cells define."""
    rng = random.Random(seed)
    have: dict[str, list[int]] = {kind: [] for kind in TEMPLATES}
    cells = [
        "import numpy as np\nimport pandas as pd\nimport math\nfrom collections import Counter"
    ]
    for i in range(1, count - 1):
        options = ["data", "feature", "items", "shell", "noise"]
        if have["data"]:
            options += ["frame", "summary", "cls"]
        if have["data"] and have["feature"]:
            options.append("time")
        if have["data"] and have["cls"]:
            options.append("model")
        if have["frame"]:
            options.append("mutate")
        kind = rng.choice(options)

        def pick(what: str) -> int | None:
            return rng.choice(have[what]) if have[what] else None

        cells.append(
            TEMPLATES[kind].format(
                i=i,
                d=pick("data"),
                f=pick("feature"),
                c=pick("cls"),
                r=pick("frame"),
                n=rng.randrange(10, 200),
                k=rng.randrange(1, 9),
            )
        )
        have[kind].append(i)
    cells.append(
        "%%track --name bench/model --seed 1\n"
        + TRACKED.format(c=have["cls"][-1], d=have["data"][-1], f=have["feature"][-1])
    )
    return cells


def make_history(cells: list[str], size: int, seed: int = 1) -> list[tuple[int, str]]:
    """``size`` executions: each cell once in order, plus re-runs (some edited) of cells
    after their first run, then the tracked cell."""
    rng = random.Random(seed)
    body = cells[:-1]
    order = list(range(len(body)))
    for _ in range(size - len(cells)):
        index = rng.randrange(len(body))
        order.insert(rng.randrange(order.index(index) + 1, len(order) + 1), index)
    history = []
    for count, index in enumerate(order, start=1):
        source = body[index]
        if count > len(body) and rng.random() < 0.1:
            source = source.replace("* ", "* 2 * ", 1)  # an edited re-run
        history.append((count, source))
    history.append((len(history) + 1, cells[-1]))
    return history


def make_record(history: list[tuple[int, str]]) -> Any:
    import numpy
    import pandas

    from nbtrack.model import HistoryEntry
    from nbtrack.query import RunRecord

    tracked = history[-1][1].split("\n", 1)[1]
    return RunRecord(
        id="0" * 32,
        number=1,
        name="bench/model",
        status="finished",
        kind="cell",
        start_time=0.0,
        end_time=1.0,
        notebook=None,
        note=None,
        tags=[],
        params={"lr": 0.01, "epochs": 3},
        metrics={"score": 1.0},
        metric_history={},
        seed=1,
        deterministic=False,
        seed_calls=[],
        rng_state=None,
        environment={
            "python": {"version": "3.11.7"},
            "packages": {"numpy": numpy.__version__, "pandas": pandas.__version__},
        },
        git={},
        inputs=[],
        models=[],
        code=tracked,
        history=[HistoryEntry(c, s) for c, s in history],
        artifacts=[],
        error=None,
        warnings=[],
        extra={"magic_line": "--name bench/model --seed 1", "seeded": ["random", "numpy"]},
        store=None,
    )


def write_notebook(cells: list[str], path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    nbformat.write(notebook, path)


def best(fn: Any, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--history", type=int, default=1000)
    args = parser.parse_args(argv)

    from nbtrack.export import export_notebook, export_run

    cells = make_cells(args.cells)
    history = make_history(cells, args.history)
    record = make_record(history)
    folder = Path(tempfile.mkdtemp(prefix="nbtrack-bench-"))
    try:
        notebook = folder / "bench.ipynb"
        write_notebook(cells, notebook)

        start = time.perf_counter()
        result = export_run(record)
        cold = time.perf_counter() - start
        from nbtrack.export import translate

        def fresh(fn: Any) -> Any:
            # Each export from scratch: no translations remembered from the previous one.
            def call() -> Any:
                translate._CACHE.clear()
                return fn()

            return call

        run_best, run_median = best(fresh(lambda: export_run(record)), args.repeat)
        nb_best, nb_median = best(fresh(lambda: export_notebook(notebook)), args.repeat)
        rows = [
            ("nbtrack export_run (1st call: imports IPython, reads metadata)", cold, cold),
            (f"nbtrack export_run ({len(history)} entries, sliced)", run_best, run_median),
            (f"nbtrack export_notebook ({len(cells)} cells)", nb_best, nb_median),
        ]
        try:
            from nbconvert.exporters import ScriptExporter

            exporter = ScriptExporter()
            sc_best, sc_median = best(lambda: exporter.from_filename(str(notebook)), args.repeat)
            rows.append(("nbconvert ScriptExporter, in process", sc_best, sc_median))
            jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"
            cmd = [jupyter, "nbconvert", "--to", "script", "--stdout", str(notebook)]
            cli_best, cli_median = best(
                lambda: subprocess.run(cmd, capture_output=True, check=True), 3
            )
            rows.append(("jupyter nbconvert --to script (command)", cli_best, cli_median))
        except ImportError:
            rows.append(("nbconvert (not installed)", float("nan"), float("nan")))

        print(
            f"notebook: {len(cells)} cells; history: {len(history)} entries; kept "
            f"{len(result.kept)} cells, dropped {len(result.dropped)}"
        )
        width = max(len(r[0]) for r in rows)
        print(f"{'':{width}}  {'best':>9}  {'median':>9}")
        for label, fast, median in rows:
            print(f"{label:{width}}  {fast * 1000:8.1f}ms  {median * 1000:8.1f}ms")
        ok = run_median < 1.0
        print("export_run with slicing under 1 s:", "yes" if ok else "NO")
        return 0 if ok else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
