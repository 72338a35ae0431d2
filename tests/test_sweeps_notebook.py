"""The sweep example notebook through a real kernel (nbclient), then what it recorded.

``example_notebooks/03_sweep.ipynb`` tunes a PyTorch MLP on scikit-learn's digits: a
random sweep, then TPE on the narrowed space with a median pruner. It runs in a fresh
``python3`` kernel of this interpreter, writing to a temporary store.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import nbtrack
from nbtrack.sweeps.study import trial_seed

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "example_notebooks" / "03_sweep.ipynb"


@pytest.fixture
def executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (nbtrack tests)",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("NBTRACK_STORE", str(tmp_path / "store"))
    work = tmp_path / "work"
    work.mkdir()
    copy = work / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    monkeypatch.setenv("NBTRACK_NOTEBOOK", str(copy))
    notebook = nbformat.read(copy, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    ).execute()
    return notebook


def _html(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.get("outputs", []))


def test_the_sweep_notebook_records_two_sweeps_of_ordinary_runs(executed, tmp_path) -> None:
    sweep_cells = [c for c in executed.cells if c.source.startswith("%%track")]
    assert len(sweep_cells) == 2
    for cell in sweep_cells:
        html = _html(cell)  # the live display, as it ended
        assert "nbtrack sweep #" in html and "12/12 trials" in html
        assert "optimisation history" in html and "parallel coordinates" in html
        assert "parameter importance" in html and "<svg" in html
        assert not [o for o in cell.outputs if o.output_type == "error"]

    store = tmp_path / "store"
    listed = nbtrack.sweeps(store=store)
    assert listed["name"].tolist() == ["digits/mlp/sweep", "digits/mlp/sweep-fine"]
    coarse = nbtrack.get_sweep(1, store=store)
    fine = nbtrack.get_sweep(2, store=store)
    assert (coarse.sampler, coarse.pruner, coarse.status) == ("random", "none", "finished")
    assert (fine.sampler, fine.pruner, fine.status) == ("tpe", "median", "finished")
    assert fine.extra["narrowed_from"]["number"] == 1
    assert coarse.direction == "max"  # from the objective's name, val_acc

    trials = coarse.trials
    assert len(trials) == 12 and set(trials["state"]) == {"complete"}
    for row in trials.itertuples():
        run = nbtrack.get_run(int(row.run), store=store)
        assert run.seed == trial_seed(0, row.trial)
        assert run.params["lr"] == row._7 and run.params["epochs"] == 8
        assert run.notebook == str(tmp_path / "work" / NOTEBOOK.name)
        assert len(run.metric_history["val_acc"]) == 8
        assert run.metrics["val_acc"] == pytest.approx(row.value)
        assert run.extra["sweep"] == {"id": coarse.id, "number": 1, "trial": row.trial}
    states = set(fine.trials["state"])
    assert states <= {"complete", "pruned"} and "complete" in states
    for row in fine.trials[fine.trials["state"] == "pruned"].itertuples():
        run = nbtrack.get_run(int(row.run), store=store)
        assert run.status == "pruned" and len(run.metric_history["val_acc"]) < 8
    best = fine.best_trial
    complete = fine.trials[fine.trials["state"] == "complete"]
    assert best.metrics["val_acc"] == max(complete["value"])
    assert best.metrics["val_acc"] > 0.9
