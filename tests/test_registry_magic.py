"""The registry from a notebook: ``track.register`` in a ``%%track`` cell, ``%nbtrack register``
and ``%nbtrack models``, through a real IPython InteractiveShell."""

from __future__ import annotations

from pathlib import Path

import pytest

import nbtrack
from nbtrack.registry import ModelVersion, Stage, default_registry


@pytest.fixture(autouse=True)
def user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBTRACK_USER", "ana")


def test_track_register_inside_a_tracked_cell(shell, store_dir: Path) -> None:
    result = shell.run_cell(
        "%%track --name digits/mlp --seed 3 --quiet\n"
        "lr = 0.01\n"
        "track.log(val_acc=0.91)\n"
        "track.artifact(b'weights', 'model')\n"
        "version = track.register('digits-classifier', artifact='model')\n",
        store_history=True,
    )
    assert result.success, result.error_in_exec
    version = shell.user_ns["version"]
    assert isinstance(version, ModelVersion)
    assert (version.model, version.version, version.stage) == (
        "digits-classifier",
        1,
        "development",
    )
    assert version.lineage.params == {"lr": 0.01} and version.lineage.seed == 3
    assert version.metrics == {"val_acc": 0.91}
    run = nbtrack.get_run("last")
    assert version.lineage.run_id == run.id and run.status == "finished"
    assert "track.register" in run.code
    assert nbtrack.load_model("digits-classifier@latest") == b"weights"


def test_a_failing_register_warns_and_the_cell_goes_on(shell) -> None:
    with pytest.warns(UserWarning, match="model 'digits' was not registered: run #1 has no"):
        result = shell.run_cell(
            "%%track --quiet\n"
            "track.artifact(b'w', 'model')\n"
            "v = track.register('digits', artifact='weights')\n"
            "after = True\n",
            store_history=True,
        )
    assert result.success and shell.user_ns["after"] is True and shell.user_ns["v"] is None
    assert any("was not registered" in w for w in nbtrack.get_run("last").warnings)


def test_nbtrack_register_and_models_line_magics(shell, store_dir: Path, capsys) -> None:
    for acc in (0.9, 0.95):
        cell = f"%%track --quiet\ntrack.log(val_acc={acc})\ntrack.artifact(b'w{acc}', 'model')"
        assert shell.run_cell(cell, store_history=True).success
    assert shell.run_cell("%nbtrack register 1 digits --artifact model", store_history=True).success
    result = shell.run_cell("v2 = %nbtrack register digits --reason 'from the notebook'")
    assert result.success, result.error_in_exec
    assert shell.user_ns["v2"].version == 2 and shell.user_ns["v2"].lineage.run_number == 2
    default_registry().promote("digits", 2, "production")
    frame = shell.run_cell("%nbtrack models", store_history=True).result
    assert list(frame["name"]) == ["digits"] and frame.loc[0, "production"] == 2
    versions = shell.run_cell("%nbtrack models digits", store_history=True).result
    assert list(versions["stage"]) == ["development", "production"]
    found = shell.run_cell("%nbtrack models digits@production", store_history=True).result
    assert isinstance(found, ModelVersion) and found.stage == Stage.PRODUCTION
    assert "digits v2" in found._repr_html_()
    capsys.readouterr()
    for line in (
        "%nbtrack register",
        "%nbtrack register 1 2 3",
        "%nbtrack register 1 bad/name",
        "%nbtrack register 9 digits",
        "%nbtrack models digits@nowhere",
        "%nbtrack models nosuch",
    ):
        result = shell.run_cell(line, store_history=True)
        assert not result.success, line
        err = capsys.readouterr()
        shown = [ln for ln in (err.err + err.out).splitlines() if ln.strip()]
        assert len(shown) == 1 and shown[0].startswith("UsageError: "), (line, shown)
    assert [v.version for v in default_registry().versions("digits")] == [1, 2]
