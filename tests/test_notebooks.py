"""Notebooks through a real kernel (nbclient), then the store they wrote, field by field.

The example notebook ``example_notebooks/01_quickstart.ipynb`` is executed headless in a
fresh ``python3`` kernel running this interpreter; the kernel inherits ``NBTRACK_STORE``
(a temporary store) and ``NBTRACK_NOTEBOOK`` (the executed copy of the notebook) from the
test process. What the notebook recorded is then read back with the public query API.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import random
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import nbtrack

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "example_notebooks" / "01_quickstart.ipynb"
RUN_NAME = "digits/mlp/baseline"
#: The tracked cell's parameters as written, and as the rerun cell's --set changes them.
BASE_PARAMS = {"lr": 0.001, "epochs": 12, "hidden": 64, "batch_size": 64}
RERUN_PARAMS = {**BASE_PARAMS, "lr": 0.003, "epochs": 8}


# -- running notebooks ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pytest.MonkeyPatch]:
    """A ``python3`` kernelspec that runs this interpreter, found first via JUPYTER_PATH."""
    jupyter_path = tmp_path_factory.mktemp("jupyter")
    spec_dir = jupyter_path / "kernels" / "python3"
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
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(jupyter_path))
        # Kernels must not pick up a store or notebook from the developer's environment.
        mp.delenv("NBTRACK_STORE", raising=False)
        mp.delenv("NBTRACK_NOTEBOOK", raising=False)
        yield mp


def execute(path: Path, store: Path, mp: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Execute the notebook at ``path`` in its folder, recording into ``store``."""
    nb = nbformat.read(path, as_version=4)
    mp.setenv("NBTRACK_STORE", str(store))
    mp.setenv("NBTRACK_NOTEBOOK", str(path))
    try:
        client = NotebookClient(
            nb,
            kernel_name="python3",
            timeout=600,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    finally:
        # Leave the executed notebook next to the store for a post-mortem when a test fails.
        nbformat.write(nb, path.with_suffix(".executed.ipynb"))
        mp.delenv("NBTRACK_STORE")
        mp.delenv("NBTRACK_NOTEBOOK")
    return nb


def copy_quickstart(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / QUICKSTART.name
    shutil.copyfile(QUICKSTART, target)
    return target


def new_notebook(*sources: str, folder: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "generated.ipynb"
    nbformat.write(nb, path)
    return path


class Executed:
    """One execution of the quickstart notebook and the store it recorded into."""

    def __init__(self, folder: Path, mp: pytest.MonkeyPatch) -> None:
        self.path = copy_quickstart(folder)
        self.store = folder / "store"
        self.nb = execute(self.path, self.store, mp)
        self.code_cells = [c for c in self.nb.cells if c.cell_type == "code"]

    def cell(self, prefix: str) -> nbformat.NotebookNode:
        """The code cell whose source starts with ``prefix`` (the first one)."""
        for cell in self.code_cells:
            if cell.source.startswith(prefix):
                return cell
        raise AssertionError(f"no code cell starts with {prefix!r}")

    def tracked_cells(self) -> list[nbformat.NotebookNode]:
        return [c for c in self.code_cells if c.source.startswith("%%track")]

    def run(self, ref: Any) -> nbtrack.query.RunRecord:
        return nbtrack.get_run(ref, store=self.store)


@pytest.fixture(scope="module")
def quickstart(
    kernel_env: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Executed:
    return Executed(tmp_path_factory.mktemp("quickstart"), kernel_env)


def text_outputs(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
    return "\n".join(parts)


# -- the quickstart notebook ----------------------------------------------------------------
def test_quickstart_cells_are_the_documented_ones(quickstart: Executed) -> None:
    first, rerun = quickstart.tracked_cells()
    assert first.source.splitlines()[0] == f"%%track --name {RUN_NAME} --seed 42"
    assert rerun.source.splitlines()[0] == (
        f"%%track --name {RUN_NAME} --seed 42 --set lr=0.003 --set epochs=8"
    )
    # Same body, so the two runs differ only by what --set changed.
    assert first.source.split("\n", 1)[1] == rerun.source.split("\n", 1)[1]
    assert quickstart.code_cells[0].source == "%load_ext nbtrack"
    assert not any(o.output_type == "error" for c in quickstart.code_cells for o in c.outputs)


def test_two_finished_runs_with_names_params_and_seed(quickstart: Executed) -> None:
    table = nbtrack.runs(store=quickstart.store)
    assert list(table["number"]) == [1, 2]
    assert list(table["name"]) == [RUN_NAME, RUN_NAME]
    assert list(table["status"]) == ["finished", "finished"]
    assert list(table["params.lr"]) == [0.001, 0.003]
    assert list(table["params.epochs"]) == [12, 8]
    assert (table["duration"] > 0).all()

    first, second = quickstart.run(1), quickstart.run(2)
    assert first.params == BASE_PARAMS
    assert second.params == RERUN_PARAMS
    assert second.extra["overrides"] == {"lr": 0.003, "epochs": 8}
    for record in (first, second):
        assert record.kind == "cell"
        assert record.seed == 42
        assert not record.deterministic
        assert record.error is None
        assert record.warnings == []
        assert set(record.extra["seeded"]) >= {"random", "numpy", "torch"}


def test_metrics_loss_per_epoch_and_val_acc(quickstart: Executed) -> None:
    for number, params in ((1, BASE_PARAMS), (2, RERUN_PARAMS)):
        record = quickstart.run(number)
        loss = record.metric_history["loss"]
        assert [p.step for p in loss] == list(range(params["epochs"]))
        assert all(math.isfinite(p.value) and p.value > 0 for p in loss)
        assert loss[-1].value < loss[0].value  # it learned something
        assert record.metrics["loss"] == loss[-1].value
        [val_acc] = record.metric_history["val_acc"]
        assert 0.0 < val_acc.value <= 1.0
        assert val_acc.value > 0.8  # a working MLP on digits; deterministic, so not flaky
        assert record.metrics["val_acc"] == val_acc.value
        # The value printed by the cell is the value recorded.
        printed = re.search(
            r"validation accuracy: ([0-9.]+)", text_outputs(quickstart.tracked_cells()[number - 1])
        )
        assert printed and float(printed.group(1)) == pytest.approx(val_acc.value, abs=5e-4)


def test_model_artifact_is_the_state_dict(quickstart: Executed) -> None:
    import torch

    for number, params in ((1, BASE_PARAMS), (2, RERUN_PARAMS)):
        record = quickstart.run(number)
        [art] = record.artifacts
        assert (art.name, art.kind, art.meta["class"]) == ("model", "torch_state_dict", "MLP")
        state = record.load_artifact("model")
        hidden = params["hidden"]
        assert {k: tuple(v.shape) for k, v in state.items()} == {
            "net.0.weight": (hidden, 64),
            "net.0.bias": (hidden,),
            "net.2.weight": (10, hidden),
            "net.2.bias": (10,),
        }
        assert all(v.dtype == torch.float32 for v in state.values())
    # Different learning rates train different weights, stored as different content.
    assert quickstart.run(1).artifacts[0].hash != quickstart.run(2).artifacts[0].hash


def test_restored_model_reproduces_recorded_accuracy(quickstart: Executed) -> None:
    out = text_outputs(quickstart.cell("best = nbtrack.get_run"))
    found = re.search(r"val_acc recorded ([0-9.]+), restored model ([0-9.]+)", out)
    assert found, out
    assert found.group(1) == found.group(2)


def test_model_summary_counts_parameters(quickstart: Executed) -> None:
    record = quickstart.run(1)
    summaries = {m["name"]: m for m in record.models}
    model = summaries["model"]
    state = record.load_artifact("model")
    assert model["class"] == "MLP"
    assert model["params"] == sum(t.numel() for t in state.values()) == 64 * 64 + 64 + 64 * 10 + 10
    assert model["trainable_params"] == model["params"]
    layers = {layer["name"]: layer for layer in model["layers"]}
    assert layers["net.0"]["type"] == "Linear"
    assert layers["net.0"]["params"] == state["net.0.weight"].numel() + state["net.0.bias"].numel()
    assert layers["net.2"]["params"] == state["net.2.weight"].numel() + state["net.2.bias"].numel()
    assert sum(layer["params"] for layer in model["layers"]) == model["params"]


def test_environment_records_installed_versions(quickstart: Executed) -> None:
    env = quickstart.run(1).environment
    for dist in ("torch", "scikit-learn", "numpy"):
        assert env["packages"][dist] == importlib.metadata.version(dist), dist
    assert env["python"]["version"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}")


def test_inputs_fingerprint_the_tensors_the_cell_reads(quickstart: Executed) -> None:
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from nbtrack.capture.fingerprint import fingerprint

    inputs = {i.name: i for i in quickstart.run(1).inputs}
    assert {"X_train", "y_train", "X_val", "y_val"} <= set(inputs)
    n = len(load_digits().target)
    n_val = math.ceil(0.25 * n)
    assert inputs["X_train"].kind == "tensor"
    assert inputs["X_train"].meta["shape"] == [n - n_val, 64]
    assert inputs["X_train"].meta["dtype"] == "float32"
    assert inputs["X_val"].meta["shape"] == [n_val, 64]
    assert inputs["y_train"].meta["shape"] == [n - n_val]

    # The same data rebuilt in this process has the same fingerprint as in the kernel.
    digits = load_digits()
    X_tr, _, _, _ = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0) + 1e-6
    X_train = torch.tensor((X_tr - mean) / std, dtype=torch.float32)
    assert fingerprint(X_train, "X_train").hash == inputs["X_train"].hash
    assert np.isfinite(X_train.numpy()).all()
    # Both runs read the same data.
    assert {i.name: i.hash for i in quickstart.run(2).inputs} == {
        name: fp.hash for name, fp in inputs.items()
    }


def test_code_history_notebook_and_rng_state(quickstart: Executed) -> None:
    data_cell = quickstart.cell("import numpy as np")
    model_cell = quickstart.cell("from torch import nn")
    first_cell, rerun_cell = quickstart.tracked_cells()
    body = first_cell.source.split("\n", 1)[1]

    first, second = quickstart.run(1), quickstart.run(2)
    # IPython hands the magic the cell body with a final newline.
    assert first.code.rstrip("\n") == body
    assert second.code.rstrip("\n") == body.replace("lr = 0.001", "lr = 0.003").replace(
        "epochs = 12", "epochs = 8"
    )

    sources = [h.source for h in first.history]
    assert sources[-1] == first_cell.source
    assert sources.index(data_cell.source) < sources.index(model_cell.source) < len(sources) - 1
    assert "%load_ext nbtrack" in sources
    counts = [h.execution_count for h in first.history]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert [h.source for h in second.history][-2:] == [first_cell.source, rerun_cell.source]

    assert first.notebook == second.notebook == str(quickstart.path)

    assert first.rng_state is not None
    assert {"random", "numpy", "torch"} <= set(first.rng_state)
    assert first.rng_state == second.rng_state  # both seeded with 42 before the cell


def test_recorded_rng_state_is_the_seeded_state(quickstart: Executed) -> None:
    import numpy as np
    import torch

    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    try:
        random.seed(42)
        expected_random = random.random()
        torch.manual_seed(42)
        expected_torch = torch.rand(3)
        np.random.seed(42)
        expected_numpy = np.random.rand(3)

        random.seed(0), torch.manual_seed(0), np.random.seed(0)
        quickstart.run(1).restore_rng()
        assert random.random() == expected_random
        assert torch.equal(torch.rand(3), expected_torch)
        assert np.array_equal(np.random.rand(3), expected_numpy)
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


def test_diff_shows_only_what_set_changed(quickstart: Executed) -> None:
    result = nbtrack.diff(1, 2, store=quickstart.store)
    assert result.sections["params"] == [("epochs", 12, 8), ("lr", 0.001, 0.003)]
    assert {key for key, _, _ in result.sections["metrics"]} == {"loss", "val_acc"}
    assert result.sections["seeds"] == []
    assert result.sections["data"] == []
    assert result.sections["environment"] == []
    assert "-lr = 0.001" in result.code_diff and "+lr = 0.003" in result.code_diff
    assert "-epochs = 12" in result.code_diff and "+epochs = 8" in result.code_diff
    assert "hidden" not in "".join(
        line
        for line in result.code_diff.splitlines()
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    )
    # The notebook displays the same diff (HTML in a notebook front end).
    shown = quickstart.cell("first, second = ").outputs
    assert any("text/html" in o.get("data", {}) and "lr" in o["data"]["text/html"] for o in shown)


def test_execution_count_recorded_is_the_cells(quickstart: Executed) -> None:
    for number, cell in enumerate(quickstart.tracked_cells(), start=1):
        record = quickstart.run(number)
        assert record.extra["execution_count"] == cell.execution_count
        assert record.history[-1].execution_count == cell.execution_count


def test_diff_text_form_in_the_notebook_is_the_readable_diff(quickstart: Executed) -> None:
    [shown] = [
        o for o in quickstart.cell("first, second = ").outputs if o.output_type == "execute_result"
    ]
    text = shown["data"]["text/plain"]
    assert text.startswith("diff run #1")
    assert len(text) < 5000


def test_same_seed_gives_identical_results_on_cpu(
    quickstart: Executed, kernel_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    again = Executed(tmp_path / "again", kernel_env)
    for number in (1, 2):
        a, b = quickstart.run(number), again.run(number)
        assert a.metrics["val_acc"] == b.metrics["val_acc"]
        assert [p.value for p in a.metric_history["loss"]] == [
            p.value for p in b.metric_history["loss"]
        ]
        assert a.params == b.params
        assert a.rng_state == b.rng_state
        assert [i.hash for i in a.inputs] == [i.hash for i in b.inputs]
        # Bit-identical weights: the stored state_dicts are equal tensor by tensor.
        state_a, state_b = a.load_artifact("model"), b.load_artifact("model")
        assert state_a.keys() == state_b.keys()
        assert all(state_a[k].equal(state_b[k]) for k in state_a)


# -- notebooks that go wrong ----------------------------------------------------------------
def test_failing_tracked_cell_raises_and_is_recorded_failed(
    kernel_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = new_notebook(
        "%load_ext nbtrack",
        "%%track --name t/fails --seed 1\nthreshold = 0.5\ntrack.log(loss=2.0)\n"
        "raise ValueError(f'loss above {threshold}')",
        "never_reached = True",
        folder=tmp_path,
    )
    store = tmp_path / "store"
    with pytest.raises(CellExecutionError) as info:
        execute(path, store, kernel_env)
    assert info.value.ename == "ValueError"
    assert "loss above 0.5" in info.value.evalue

    [row] = nbtrack.runs(store=store).itertuples()
    record = nbtrack.get_run(row.number, store=store)
    assert record.name == "t/fails"
    assert record.status == "failed"
    assert record.end_time is not None and record.end_time >= record.start_time
    assert record.error["type"] == "ValueError"
    assert record.error["message"] == "loss above 0.5"
    assert "Traceback" in record.error["traceback"]
    assert "ValueError: loss above 0.5" in record.error["traceback"]
    assert record.params == {"threshold": 0.5}
    assert record.metrics == {"loss": 2.0}  # what was logged before the failure is kept
    assert record.notebook == str(path)


def test_bad_track_option_is_a_usage_error_and_records_nothing(
    kernel_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = new_notebook("%load_ext nbtrack", "%%track --bogus\nran = True", folder=tmp_path)
    store = tmp_path / "store"
    with pytest.raises(CellExecutionError) as info:
        execute(path, store, kernel_env)
    assert info.value.ename == "UsageError"
    assert "--bogus" in info.value.evalue
    executed = nbformat.read(path.with_suffix(".executed.ipynb"), as_version=4)
    # IPython shows a UsageError as one line on stderr, without a traceback.
    shown = "".join(
        o.text
        for o in executed.cells[1].outputs
        if o.output_type == "stream" and o.name == "stderr"
    )
    assert shown.strip() == (
        "UsageError: %%track: unrecognized arguments: --bogus; `%%track?` lists the options"
    )
    assert not any(o.output_type == "error" for o in executed.cells[1].outputs)
    # No run: either the store was never created, or it is empty.
    assert not (store / "nbtrack.db").exists() or nbtrack.runs(store=store).empty
