"""Round trips through a real kernel: run a notebook with nbclient, export the run, run the
script in a fresh process, and compare the metrics — exactly, on CPU.

Each notebook is executed once per module (a kernel start costs seconds); the tests then
export and re-run scripts against the store that kernel wrote.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "export_notebooks"
EXAMPLES = sorted((REPO / "example_notebooks").glob("*.ipynb"))

import nbclient  # noqa: E402
import nbformat  # noqa: E402


@dataclass
class Executed:
    """A notebook run by a real kernel, with the store its tracked cells wrote."""

    folder: Path
    notebook: Path
    store: Path
    original: int  # the number of the (last) run the notebook tracked

    def record(self, ref: Any = None) -> Any:
        import nbtrack

        return nbtrack.get_run(self.original if ref is None else ref, store=self.store)


def _env(store: Path) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "NBTRACK_STORE": str(store),
        "NBTRACK_SUMMARY": "0",
        "PYTHONPATH": str(REPO) + (os.pathsep + path if path else ""),
        "MPLBACKEND": "Agg",
    }


def execute(
    source: Path,
    folder: Path,
    order: list[int] | None = None,
    after: Callable[[Any, Any], None] | None = None,
) -> Executed:
    """Run ``source``'s code cells in ``order`` (document order by default) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.read(source, as_version=4)
    path = folder / source.name
    store = folder / "store"
    env = _env(store) | {"NBTRACK_NOTEBOOK": str(path)}
    nbformat.write(notebook, path)  # the kernel records the notebook's path only if it exists
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        client = nbclient.NotebookClient(
            notebook,
            kernel_name="python3",
            timeout=600,
            resources={"metadata": {"path": str(folder)}},
        )
        with client.setup_kernel():
            if order is None:
                order = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
            for index in order:
                client.execute_cell(notebook.cells[index], index)
            if after is not None:
                after(client, notebook)
    nbformat.write(notebook, path)
    import nbtrack

    return Executed(folder, path, store, nbtrack.get_run("last", store=store).number)


def run_script(
    script: Path, store: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd or script.parent,
        env=_env(store),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _edit_after_run(client: Any, notebook: Any) -> None:
    # The data cell is edited and run again after the tracked run: the notebook on disk no
    # longer holds the code that produced the run.
    notebook.cells[2].source = "data = [10.0, 20.0, 30.0]\nweights = [0.5, 0.25, 0.25]"
    client.execute_cell(notebook.cells[2], 2)


def _measurements(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "measurements.csv").write_text("1.5,2.5\n3.0,4.0\n")


# name -> (cell order or None, hook run after the cells, execution counts the export keeps)
NOTEBOOKS: dict[str, tuple[list[int] | None, Any, tuple[int, ...]]] = {
    "rng_unseeded": (None, None, (2, 4)),
    "out_of_order": ([1, 2, 3, 4, 5, 3, 6], None, (1, 2, 3, 4, 5, 6, 7)),
    "edited_dependency": (None, _edit_after_run, (2, 4)),
    "files_and_magics": (None, None, (1, 2, 3, 5, 8, 9)),
    "torch_seeded": (None, None, (2, 3, 4, 6)),
    "seeded_numpy": (None, None, (2, 3)),
}


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Executed]]:
    cache: dict[str, Executed] = {}

    def get(name: str) -> Executed:
        if name not in cache:
            order, after, _ = NOTEBOOKS[name]
            folder = tmp_path_factory.mktemp(name)
            if name == "seeded_numpy":
                _measurements(folder)
            cache[name] = execute(FIXTURES / f"{name}.ipynb", folder, order, after)
        return cache[name]

    yield get


def _export(run: Executed, tmp: Path, **options: Any) -> tuple[Path, Any]:
    from nbtrack.export import export_run, write_script

    result = export_run(run.record(), **options)
    script = write_script(result.script, tmp / "script.py", force=True)
    return script, result


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_run_round_trip_reproduces_metrics_exactly(
    name: str, executed: Any, tmp_path: Path
) -> None:
    from nbtrack.export import verify

    run = executed(name)
    record = run.record()
    assert record.status == "finished", record.error
    script, result = _export(run, run.folder)
    assert result.kept == NOTEBOOKS[name][2]
    text = script.read_text()
    assert "get_ipython" not in text
    assert "with nbtrack.run(" in text
    report = verify(script, record, timeout=600)
    assert report.returncode == 0, report.output
    assert report.reproduced is not None and report.reproduced != record.number
    assert report.rows and all(row.difference == 0.0 for row in report.rows), str(report)
    assert report.ok


def test_out_of_order_script_follows_execution_not_document_order(
    executed: Any, tmp_path: Path
) -> None:
    from nbtrack.export import export_notebook, write_script

    run = executed("out_of_order")
    record = run.record()
    assert record.metrics["last"] == (1 * 12.0 + 0.5) * 2  # scale was 12 when the run ran
    document = write_script(export_notebook(run.notebook, track=False), tmp_path / "doc.py")
    # In document order scale is 6: the notebook's text alone does not reproduce the run.
    done = run_script(document, tmp_path / "other-store", cwd=run.folder)
    assert done.returncode == 0, done.stderr
    script, _ = _export(run, tmp_path)
    text = script.read_text()
    assert text.count("scale = scale * 2") == 2  # the re-executed cell, twice


def test_edited_cell_is_exported_as_it_ran(executed: Any, tmp_path: Path) -> None:
    from nbtrack.export.command import main_export

    run = executed("edited_dependency")
    assert "10.0" in run.notebook.read_text()  # the notebook on disk was edited
    out = tmp_path / "edited.py"
    status = main_export(
        [str(run.notebook), "--run", str(run.original), "-o", str(out), "--store", str(run.store)]
    )
    assert status == 0
    text = out.read_text()
    assert "data = [1.0, 2.0, 3.0]" in text and "10.0" not in text
    assert "bias = PARAMS['bias']" in text  # the --set value is the flag's default
    assert "unused" not in text


def test_cli_verify_and_requirements(
    executed: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nbtrack.export.command import main_export

    run = executed("seeded_numpy")
    out, req = tmp_path / "repro.py", tmp_path / "requirements.txt"
    status = main_export(
        [
            "--run",
            str(run.original),
            "--store",
            str(run.store),
            "-o",
            str(out),
            "--requirements",
            str(req),
            "--verify",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert re.search(r"metric\s+recorded\s+reproduced\s+difference", printed)
    assert "reproduced" in printed
    assert re.search(r"^numpy==\d", req.read_text(), re.M)
    header = out.read_text().split('"""')[0]
    assert "# /// script" in header and '"numpy==' in header
    assert 'requires-python = "==3.' in header


def test_script_help_lists_parameters_with_recorded_defaults(executed: Any, tmp_path: Path) -> None:
    run = executed("torch_seeded")
    script, _ = _export(run, tmp_path)
    done = run_script(script, tmp_path / "store", "--help")
    assert done.returncode == 0, done.stderr
    for flag in ("--lr", "--epochs", "--hidden", "--seed"):
        assert flag in done.stdout
    assert "recorded: 0.05" in done.stdout and "recorded: 42" in done.stdout


def test_untracked_export_reproduces_too(executed: Any, tmp_path: Path) -> None:
    run = executed("rng_unseeded")
    record = run.record()
    script, _ = _export(run, tmp_path, track=False)
    text = script.read_text()
    assert "nbtrack.run(" not in text and "import nbtrack\n" not in text
    done = run_script(script, tmp_path / "store")
    assert done.returncode == 0, done.stderr
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("metrics:")][-1]
    assert eval(line.split(":", 1)[1]) == record.metrics  # noqa: S307 - our own repr


def test_parameters_from_the_command_line_reach_the_run(executed: Any, tmp_path: Path) -> None:
    import nbtrack

    run = executed("seeded_numpy")
    script, _ = _export(run, run.folder)
    done = run_script(script, run.store, "--n", "10", cwd=run.folder)
    assert done.returncode == 0, done.stderr
    new = nbtrack.get_run("last", store=run.store)
    assert new.params["n"] == 10 and new.params["loc"] == 1.0 and new.seed == 3


# --- perturbations: each must be noticed --------------------------------------------------


def test_changed_input_file_is_noticed(executed: Any, tmp_path: Path) -> None:
    from nbtrack.export import verify

    run = executed("seeded_numpy")
    folder = tmp_path / "work"
    folder.mkdir()
    data = (run.folder / "measurements.csv").read_bytes()
    (folder / "measurements.csv").write_bytes(data.replace(b"1.5", b"1.6", 1))  # one byte
    script, _ = _export(run, folder)
    done = run_script(script, run.store, cwd=folder)
    assert done.returncode == 0
    assert "measurements.csv" in done.stderr and "differs" in done.stderr
    strict = run_script(script, run.store, "--strict", cwd=folder)
    assert strict.returncode != 0
    assert "error: input 'measurements.csv' differs" in strict.stderr
    report = verify(script, run.record(), cwd=folder)
    assert not report.ok and [r.metric for r in report.mismatches] == ["data"]


def test_changed_pinned_version_is_noticed(executed: Any, tmp_path: Path) -> None:
    run = executed("seeded_numpy")
    script, _ = _export(run, run.folder)
    text = script.read_text()
    pinned = re.search(r'"numpy==([^"]+)"', text)
    assert pinned is not None
    edited = tmp_path / "edited.py"
    edited.write_text(text.replace(f"numpy=={pinned.group(1)}", "numpy==0.0.1", 1))
    done = run_script(edited, run.store, cwd=run.folder)
    assert done.returncode == 0, done.stderr
    assert re.search(r"warning: numpy \S+; the run used 0\.0\.1", done.stderr)
    same = run_script(script, run.store, cwd=run.folder)
    assert "warning: numpy" not in same.stderr


def test_changed_seed_is_noticed_by_verify(executed: Any) -> None:
    from nbtrack.export import verify

    run = executed("seeded_numpy")
    script, _ = _export(run, run.folder)
    record = run.record()
    same = verify(script, record)
    assert same.ok, str(same)
    other = verify(script, record, args=["--seed", "4"])
    assert not other.ok
    assert {r.metric for r in other.mismatches} == {"mean", "spread"}
    assert "MISMATCH" in str(other)


# --- the example notebooks shipped with nbtrack -------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_notebooks_round_trip(example: Path, tmp_path: Path) -> None:
    import nbtrack
    from nbtrack.export import export_run, verify, write_script

    run = execute(example, tmp_path / "nb")
    numbers = [int(n) for n in nbtrack.runs(store=run.store)["number"]]
    assert numbers, "the example notebook tracked no run"
    for number in numbers:
        record = run.record(int(number))
        result = export_run(record)
        script = write_script(result.script, tmp_path / f"run{number}.py")
        report = verify(script, record, timeout=600)
        assert report.ok, str(report)
        assert json.dumps(report.reproduced)
