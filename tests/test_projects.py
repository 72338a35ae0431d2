"""Projects (docs/team.md#projects): where a run's project comes from, how a bad name is
refused, and that `%%track --project` reaches the run and the exported script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack import config
from nbtrack.errors import UsageError
from nbtrack.identity import current_project


def _toml(folder: Path, text: str) -> None:
    (folder / config.PROJECT_CONFIG_FILENAME).write_text(text, encoding="utf-8")


def _recorded_project(**kwargs: object) -> str | None:
    with nbtrack.run(name="p", capture_env=False, capture_data=False, **kwargs) as track:  # type: ignore[arg-type]
        track.log(x=1.0)
    return nbtrack.get_run(track.number).project


def test_the_run_beats_the_environment_beats_nbtrack_toml(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "repo" / "notebooks"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.delenv(config.ENV_PROJECT, raising=False)
    assert _recorded_project() is None  # nothing says: no project
    _toml(tmp_path / "repo", '[project]\nname = "from-toml"\n')  # found upwards, like .git
    assert current_project() == "from-toml"
    assert _recorded_project() == "from-toml"
    monkeypatch.setenv(config.ENV_PROJECT, " from-env ")
    assert _recorded_project() == "from-env"
    assert _recorded_project(project="named") == "named"
    assert list(nbtrack.runs(project="from-toml")["number"]) == [2]
    # A toml without a [project] table names none.
    monkeypatch.delenv(config.ENV_PROJECT)
    _toml(tmp_path / "repo", '[metrics]\nval_loss = "min"\n')
    assert _recorded_project() is None


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("run", "project 'two words' is not a project name"),
        ("env", "$NBTRACK_PROJECT 'two words' is not a project name"),
        ("toml", "[project] name 'two words' is not a project name"),
        ("table", "[project] must be a table"),
    ],
)
def test_a_bad_project_is_one_usage_line_and_records_nothing(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(config.ENV_PROJECT, raising=False)
    kwargs = {"project": "two words"} if source == "run" else {}
    if source == "env":
        monkeypatch.setenv(config.ENV_PROJECT, "two words")
    if source == "toml":
        _toml(tmp_path, '[project]\nname = "two words"\n')
    if source == "table":
        _toml(tmp_path, 'project = "flat"\n')
    with pytest.raises(UsageError) as info:
        _recorded_project(**kwargs)
    message = str(info.value)
    assert says in message and "\n" not in message
    assert ("letters, digits" if source != "table" else 'name = "') in message
    assert nbtrack.runs().empty  # refused before anything was recorded


def test_track_project_reaches_the_run_and_the_exported_script(
    shell: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nbtrack.export import export_run

    monkeypatch.setenv(config.ENV_PROJECT, "from-env")  # the line's option wins
    shell.reset(new_session=True)
    result = shell.run_cell(
        "%%track --name fit --project vision/detection --quiet\nlr = 0.1\ntrack.log(loss=lr)\n",
        store_history=True,
    )
    assert result.success, result.error_in_exec
    record = nbtrack.get_run("last")
    assert record.project == "vision/detection"
    assert record.to_dict()["project"] == "vision/detection"
    assert "  project: vision/detection" in str(record).splitlines()
    assert " · project vision/detection</span>" in record._repr_html_()
    assert "project='vision/detection'" in export_run(record).script
    # Without the option: $NBTRACK_PROJECT, and the script keeps what the run recorded.
    shell.run_cell("%%track --name fit --quiet\ntrack.log(loss=0.2)\n", store_history=True)
    record = nbtrack.get_run("last")
    assert record.project == "from-env"
    assert "project='from-env'" in export_run(record).script
    # A bad name is the magic's one UsageError line, and the cell does not run.
    capsys.readouterr()
    bad = shell.run_cell("%%track --project 'a b'\nran = True\n", store_history=True)
    assert not bad.success and "ran" not in shell.user_ns
    out = capsys.readouterr()
    shown = [ln for ln in (out.err + out.out).splitlines() if ln.strip()]
    assert len(shown) == 1 and shown[0].startswith("UsageError: %%track --project 'a b'"), shown
    assert len(nbtrack.runs()) == 2


def test_the_command_line_and_the_line_magic_list_one_projects_runs(
    shell: Any, store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nbtrack.cli import main

    for project in ("vision", None, "nlp"):
        _recorded_project(project=project)
    capsys.readouterr()
    assert main(["runs", "--store", str(store_dir), "--project", "vision", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["number"], r["project"]) for r in rows] == [(1, "vision")]
    assert main(["runs", "--store", str(store_dir)]) == 0  # every run, with their projects
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["#", "name", "project"]
    assert [line.split()[2] for line in table[2:] if line.split()[0] != "2"] == ["vision", "nlp"]
    assert main(["runs", "--store", str(store_dir), "--project", "none-such"]) == 0
    assert "matching the filters" in capsys.readouterr().out
    frame = shell.run_line_magic("nbtrack", "runs --project nlp")
    assert list(frame["number"]) == [3] and list(frame["project"]) == ["nlp"]
    assert list(shell.run_line_magic("nbtrack", "runs p --project vision")["number"]) == [1]


def test_a_model_version_keeps_its_runs_project(store_dir: Path, tmp_path: Path) -> None:
    from nbtrack.registry.api import registry
    from nbtrack.store.routing import open_store

    with nbtrack.run("m", project="vision", capture_env=False, capture_data=False) as track:
        track.artifact(b"weights", name="model.bin")
    version = registry(open_store(store_dir)).register(track.number, "digits", "model.bin")
    assert version.lineage.project == "vision"
    assert version.to_dict()["lineage"]["project"] == "vision"


def test_the_compare_widget_shows_and_queries_projects_once_a_run_has_one(
    store_dir: Path,
) -> None:
    with nbtrack.run("w", params={"lr": 0.1}, capture_env=False, capture_data=False) as t:
        t.log(acc=0.5)
    widget = nbtrack.compare(store=store_dir)
    assert "project" not in [c["key"] for c in widget._table.columns]  # nobody scopes: as before
    for project in ("vision", "nlp"):
        with nbtrack.run("w", project=project, capture_env=False, capture_data=False) as t:
            t.log(acc=0.7)
    widget = nbtrack.compare(store=store_dir)
    assert [c["key"] for c in widget._table.columns][:3] == ["number", "name", "project"]
    widget.query = 'project == "vision"'
    assert [r["number"] for r in widget._table.rows] == [2]


def test_every_trial_of_a_sweep_belongs_to_the_cells_project(shell: Any) -> None:
    line = (
        "%%track --name t/sw --sweep 2 --objective loss --space x=uniform(0,1) "
        "--project vision --no-env --quiet"
    )
    result = shell.run_cell(f"{line}\nx = 0.5\ntrack.log(loss=x)\n", store_history=True)
    assert result.success, result.error_in_exec
    frame = nbtrack.runs()
    assert len(frame) == 2 and set(frame["project"]) == {"vision"}
