"""Export edges and bad input: the command line, the magic's function, nbconvert, writing
files, and a corpus of notebooks that must each export or fail with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nbtrack
from nbtrack.errors import ExportError, NbtrackError, UsageError
from nbtrack.export import export_notebook, export_run, write_script
from nbtrack.export.command import magic_export, main_export

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
CORPUS = HERE / "export_notebooks" / "corpus"


def _notebooks() -> list[Path]:
    import nbformat

    found = set(Path(nbformat.__file__).parent.rglob("*.ipynb"))  # what nbformat ships
    found |= set((HERE / "export_notebooks").rglob("*.ipynb"))
    found |= set((REPO / "example_notebooks").glob("*.ipynb"))
    return sorted(found)


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_every_notebook_exports_or_fails_with_one_line(path: Path) -> None:
    try:
        text = export_notebook(path)
    except NbtrackError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
        assert path.name.startswith("bad_"), f"{path.name} should export: {message}"
        return
    assert not path.name.startswith("bad_"), f"{path.name} should have been refused"
    compile(text, str(path), "exec")
    assert "get_ipython" not in text
    assert text.startswith("#!/usr/bin/env python3\n# /// script\n")


def test_exported_notebook_runs_and_records_its_tracked_cell(tmp_path: Path) -> None:
    script = write_script(export_notebook(CORPUS / "tracked_cells.ipynb"), tmp_path / "t.py")
    env = {**os.environ, "NBTRACK_STORE": str(tmp_path / "store"), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    run = nbtrack.get_run("last", store=tmp_path / "store")
    assert (run.name, run.seed, run.params, run.metrics) == ("corpus/t", 1, {"lr": 0.5}, {"v": 0.5})


def test_notebook_parameters_become_flags(tmp_path: Path) -> None:
    script = write_script(export_notebook(CORPUS / "papermill_parameters.ipynb"), tmp_path / "p.py")
    run = [sys.executable, str(script)]
    assert (
        subprocess.run(run, capture_output=True, text=True).stdout.strip() == "0.30000000000000004"
    )
    done = subprocess.run([*run, "--lr", "2", "--epochs", "4"], capture_output=True, text=True)
    assert done.stdout.strip() == "8.0"
    helptext = subprocess.run([*run, "--help"], capture_output=True, text=True).stdout
    assert "--epochs EPOCHS" in helptext and "notebook: 3" in helptext


# --- the command line ----------------------------------------------------------------------


def test_output_that_exists_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.py"
    out.write_text("keep me\n")
    status = main_export([str(CORPUS / "v3_worksheets.ipynb"), "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--force" in err
    assert out.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.py"]
    assert main_export([str(CORPUS / "v3_worksheets.ipynb"), "-o", str(out), "--force"]) == 0
    assert "math.pi * radius ** 2" in out.read_text()
    assert os.access(out, os.X_OK)


@pytest.mark.parametrize(
    ("argv", "status", "words"),
    [
        (["missing.ipynb"], 1, "no notebook at"),
        ([str(CORPUS / "bad_not_json.ipynb"), "-o", "x.py"], 1, "not a readable Jupyter notebook"),
        ([str(CORPUS / "bad_r_language.ipynb"), "-o", "x.py"], 1, "exports Python notebooks only"),
        ([str(CORPUS / "bad_syntax_error.ipynb"), "-o", "x.py"], 1, "cell 2 has a syntax error"),
        ([str(CORPUS / "bad_unknown_magic.ipynb"), "-o", "x.py"], 1, "unknown magic %sql"),
        ([str(CORPUS / "v3_worksheets.ipynb"), "--verify"], 2, "--run"),
        ([], 2, "give a notebook"),
        (["--run", "1", "--no-track", "--verify"], 2, "--no-track"),
        (["x.ipynb", "--bogus"], 2, "unrecognized arguments"),
    ],
)
def test_bad_input_gets_one_line_and_no_file(
    argv: list[str],
    status: int,
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main_export(argv) == status
    err = capsys.readouterr().err
    assert err.startswith("nbtrack: error: ") and err.count("\n") == 1 and words in err
    assert list(tmp_path.iterdir()) == []


def test_unknown_magic_can_be_kept_with_allow_ipython(tmp_path: Path) -> None:
    out = tmp_path / "kept.py"
    assert (
        main_export([str(CORPUS / "bad_unknown_magic.ipynb"), "-o", str(out), "--allow-ipython"])
        == 0
    )
    text = out.read_text()
    assert "_nbtrack_ipython().run_line_magic('sql', 'SELECT 1')" in text
    assert "get_ipython" not in text and '"ipython' in text


def test_write_script_leaves_nothing_behind_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(ExportError, match="No space left"):
        write_script("x = 1\n", tmp_path / "s.py")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ExportError, match="does not exist"):
        write_script("x = 1\n", tmp_path / "no" / "s.py")
    with pytest.raises(UsageError, match="is a folder"):
        write_script("x = 1\n", tmp_path)


# --- runs recorded through a real InteractiveShell -----------------------------------------


def _cells(shell, *cells: str) -> None:
    for cell in cells:
        shell.run_cell(cell, store_history=True)


@pytest.fixture
def fresh(shell):
    """The shared test shell with a history of its own (a new session)."""
    shell.reset(new_session=True)
    return shell


def test_run_without_history_is_refused(
    store_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with nbtrack.run(name="from/script") as track:
        track.log(x=1.0)
    record = nbtrack.get_run("last")
    with pytest.raises(ExportError, match="recorded from a script") as info:
        export_run(record)
    assert "nbtrack export NOTEBOOK.ipynb" in str(info.value)
    assert (
        main_export(["--run", "last", "--store", str(store_dir), "-o", str(tmp_path / "s.py")]) == 1
    )
    assert "recorded from a script" in capsys.readouterr().err
    assert not (tmp_path / "s.py").exists()
    assert main_export(["--run", "99", "--store", str(store_dir)]) == 1
    assert "no run matches" in capsys.readouterr().err


def test_history_with_broken_and_unknown_cells(fresh, tmp_path: Path) -> None:
    _cells(fresh, "a = 2", "b = (", "%%track --name h/one\nresult = a * 3\ntrack.log(r=result)")
    record = nbtrack.get_run("last")
    broken = next(h.execution_count for h in record.history if h.source == "b = (")
    result = export_run(record)
    assert result.skipped == (broken,)  # a syntax error: it never ran
    assert f"Not valid Python, so they never ran: In[{broken}]." in result.script
    _cells(fresh, "%foo nothing", "%%track --name h/two\ntrack.log(r=a)")
    record = nbtrack.get_run("last")
    unknown = next(h.execution_count for h in record.history if h.source == "%foo nothing")
    with pytest.raises(ExportError) as info:
        export_run(record)
    assert f"In[{unknown}]" in str(info.value) and "%foo" in str(info.value)


def test_magic_export_writes_and_verifies(fresh, tmp_path: Path) -> None:
    _cells(
        fresh,
        "import random",
        "base = 10",
        "%%track --name m/x --seed 5\nstep = 2\ntrack.log(v=base + step + random.random())",
    )
    out = tmp_path / "from_magic.py"
    status, message = magic_export(f"--run last -o {out} --verify")
    assert status == 0, message
    assert f"wrote {out}" in message and "reproduced" in message
    with pytest.raises(UsageError):
        magic_export("--rtol")
    status, text = magic_export("", history=nbtrack.get_run(1).history)
    assert status == 0 and "execution order" in text and "base = 10" in text


def test_nbconvert_exporter(tmp_path: Path) -> None:
    import nbconvert  # noqa: F401 -- a test dependency; missing is a failure

    from nbtrack.export.nbconvert import NbtrackExporter

    text, resources = NbtrackExporter().from_filename(str(CORPUS / "no_metadata_magics.ipynb"))
    assert resources["output_extension"] == ".py" and "_nbtrack_sh('echo hi')" in text
    untracked, _ = NbtrackExporter(track=False).from_filename(str(CORPUS / "tracked_cells.ipynb"))
    assert "nbtrack.run(" not in untracked and "_nbtrack_seed(1)" in untracked
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbconvert",
            "--to",
            "nbtrack.export.nbconvert.NbtrackExporter",
            "--output-dir",
            str(tmp_path),
            str(CORPUS / "v3_worksheets.ipynb"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "radius = 2" in (tmp_path / "v3_worksheets.py").read_text()


def test_cells_that_raised_in_the_notebook_stop_at_the_same_point(
    fresh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    sources = [
        "values = [1]",
        "values.append(2)\nraise ValueError('boom')\nvalues.append(99)",
        "%%track --name f/raised\ntrack.log(n=float(sum(values)))",
    ]
    path = tmp_path / "raised.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources]), path)
    monkeypatch.setenv("NBTRACK_NOTEBOOK", str(path))
    _cells(fresh, *sources)
    record = nbtrack.get_run("last")
    assert record.notebook == str(path) and record.metrics == {"n": 3.0}
    # The saved notebook shows the error under the cell, as Jupyter saves it.
    raised = next(h.execution_count for h in record.history if "boom" in h.source)
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[1].execution_count = raised
    notebook.cells[1].outputs = [
        new_output("error", ename="ValueError", evalue="boom", traceback=[])
    ]
    nbformat.write(notebook, path)
    script = write_script(export_run(record).script, tmp_path / "raised.py")
    text = script.read_text()
    assert "raised ValueError in the notebook" in text and "_nbtrack_failed(" in text
    env = {**os.environ, "NBTRACK_STORE": str(tmp_path / "store2"), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"In[{raised}] raised ValueError: boom" in done.stderr
    assert nbtrack.get_run("last", store=tmp_path / "store2").metrics == {"n": 3.0}


def test_subcommand_wiring_for_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What nbtrack.cli does: add_arguments on its `export` subparser, cli_command as func."""
    import argparse

    from nbtrack.export.command import DESCRIPTION, add_arguments, cli_command

    parser = argparse.ArgumentParser(prog="nbtrack")
    sub = parser.add_subparsers(dest="command")
    export = sub.add_parser(
        "export", help="export a notebook or a run as a script", description=DESCRIPTION
    )
    add_arguments(export)
    export.set_defaults(func=cli_command)
    out = tmp_path / "wired.py"
    args = parser.parse_args(["export", str(CORPUS / "v3_worksheets.ipynb"), "-o", str(out)])
    assert args.func(args) == 0
    assert out.exists() and f"wrote {out}" in capsys.readouterr().out
    args = parser.parse_args(["export", str(CORPUS / "v3_worksheets.ipynb")])
    assert args.func(args) == 0
    assert "radius = 2" in capsys.readouterr().out  # no -o: the script on stdout
