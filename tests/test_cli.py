"""The ``nbtrack`` command line, run as a real subprocess (``python -m nbtrack ...``).

Each test builds a store in ``<tmp>/.nbtrack`` with the script API (:func:`nbtrack.run`),
then runs the CLI with that folder (or one below it) as the working directory, so the store
is found the way a user's shell finds it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack import config
from nbtrack.cli import build_parser
from nbtrack.store.sqlite import Store

ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = ROOT / "docs" / "cli.md"
ERROR_PREFIX = "nbtrack: error:"


def cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m nbtrack ARGS`` in ``cwd`` with no NBTRACK_STORE unless ``env`` sets one."""
    environ = {k: v for k, v in os.environ.items() if k != config.ENV_STORE}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "nbtrack", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = cli(*args, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def fails(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command that must fail with exit status 1 and one error line; return the line."""
    result = cli(*args, cwd=cwd, env=env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR_PREFIX)
    assert "Traceback" not in result.stderr
    return lines[0]


def record_run(
    store: Path,
    name: str,
    params: dict[str, Any],
    *,
    losses: list[float],
    artifact: bytes,
    tags: tuple[str, ...] = (),
) -> nbtrack.tracker.ActiveRun:
    with nbtrack.run(
        name, seed=7, params=params, tags=tags, store=store, capture_env=False
    ) as track:
        for step, loss in enumerate(losses):
            track.log(loss=loss, step=step)
        track.log(acc=1.0 - losses[-1])
        track.artifact(artifact, "weights")
    return track


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder whose ``.nbtrack`` store holds three runs.

    #1 digits/mlp/a (lr 0.1), #2 digits/mlp/b (lr 0.2, epochs 5), #3 iris/tree (tag "trees");
    #1 and #3 store the same artifact content, #2 its own.
    """
    store = tmp_path / config.STORE_DIRNAME
    record_run(
        store,
        "digits/mlp/a",
        {"lr": 0.1, "epochs": 3},
        losses=[0.9, 0.5, 0.3],
        artifact=b"weights shared by #1 and #3",
    )
    record_run(
        store,
        "digits/mlp/b",
        {"lr": 0.2, "epochs": 5},
        losses=[0.8, 0.4, 0.2],
        artifact=b"weights of #2 only",
    )
    record_run(
        store,
        "iris/tree",
        {"depth": 3},
        losses=[0.5, 0.45, 0.4],
        artifact=b"weights shared by #1 and #3",
        tags=("trees",),
    )
    return tmp_path


def table_rows(output: str) -> list[list[str]]:
    """The cells of a CLI table, header row first; columns are where the dashes line says."""
    lines = output.rstrip("\n").splitlines()
    assert set(lines[1].replace(" ", "")) == {"-"}, output
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    spans[-1] = (spans[-1][0], None)  # the last column's cells may be wider than its dashes
    return [[line[a:b].strip() for a, b in spans] for line in [lines[0], *lines[2:]]]


# -- runs -----------------------------------------------------------------------------------
def test_runs_table(project: Path) -> None:
    header, *rows = table_rows(ok("runs", cwd=project))
    assert header[:5] == ["#", "name", "status", "started", "duration"]
    assert {"lr", "epochs", "depth", "loss", "acc"} <= set(header)
    assert [r[:3] for r in rows] == [
        ["1", "digits/mlp/a", "finished"],
        ["2", "digits/mlp/b", "finished"],
        ["3", "iris/tree", "finished"],
    ]
    lr, loss = header.index("lr"), header.index("loss")
    assert rows[0][lr] == "0.1" and rows[1][lr] == "0.2"
    assert rows[1][loss] == "0.2"  # the last value logged


def test_runs_json(project: Path) -> None:
    data = json.loads(ok("runs", "--json", cwd=project))
    assert [r["number"] for r in data] == [1, 2, 3]
    first = data[0]
    assert first["name"] == "digits/mlp/a"
    assert first["status"] == "finished"
    assert first["params"] == {"lr": 0.1, "epochs": 3}
    assert first["metrics"] == {"loss": 0.3, "acc": pytest.approx(0.7)}
    assert first["duration"] == pytest.approx(first["end_time"] - first["start_time"])
    assert data[2]["tags"] == ["trees"]
    assert first["id"] == nbtrack.get_run(1, store=project / ".nbtrack").id


def test_runs_filters(project: Path) -> None:
    data = json.loads(ok("runs", "--name", "digits/*", "--json", cwd=project))
    assert [r["name"] for r in data] == ["digits/mlp/a", "digits/mlp/b"]
    _, *rows = table_rows(ok("runs", "--name", "digits/*", cwd=project))
    assert [r[1] for r in rows] == ["digits/mlp/a", "digits/mlp/b"]
    assert [
        r["number"] for r in json.loads(ok("runs", "--name", "iris/tree", "--json", cwd=project))
    ] == [3]
    assert [
        r["number"] for r in json.loads(ok("runs", "--tag", "trees", "--json", cwd=project))
    ] == [3]
    assert [r["number"] for r in json.loads(ok("runs", "--limit", "2", "--json", cwd=project))] == [
        2,
        3,
    ]
    assert json.loads(ok("runs", "--status", "failed", "--json", cwd=project)) == []
    assert "matching the filters" in ok("runs", "--name", "nothing/*", cwd=project)


def test_store_is_found_upwards_and_by_option_or_env(project: Path, tmp_path_factory) -> None:
    deep = project / "notebooks" / "experiments"
    deep.mkdir(parents=True)
    expected = ok("runs", "--json", cwd=project)
    assert ok("runs", "--json", cwd=deep) == expected
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert ok("runs", "--json", "--store", str(project / ".nbtrack"), cwd=elsewhere) == expected
    # The folder that holds .nbtrack/ is accepted too.
    assert ok("runs", "--json", "--store", str(project), cwd=elsewhere) == expected
    assert (
        ok("runs", "--json", cwd=elsewhere, env={config.ENV_STORE: str(project / ".nbtrack")})
        == expected
    )


def test_command_store_dir_is_one_order_for_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """explicit > %nbtrack store > NBTRACK_STORE > nearest store upwards > ./.nbtrack."""
    project = tmp_path / "project"
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    Store(project / config.STORE_DIRNAME)  # creates project/.nbtrack/nbtrack.db
    monkeypatch.delenv(config.ENV_STORE, raising=False)
    config.set_store_dir(None)
    try:
        found = config.command_store_dir(search_upwards=True, cwd=deep)
        assert found == (project / config.STORE_DIRNAME).resolve()
        # A kernel reads where its tracked cells write: its own working directory.
        assert config.command_store_dir(search_upwards=False, cwd=deep) == (
            deep / config.STORE_DIRNAME
        )
        nowhere = tmp_path / "nowhere"
        nowhere.mkdir()
        assert config.command_store_dir(search_upwards=True, cwd=nowhere) == (
            nowhere / config.STORE_DIRNAME
        )
        monkeypatch.setenv(config.ENV_STORE, str(tmp_path / "env"))
        assert config.command_store_dir(search_upwards=True, cwd=deep) == tmp_path / "env"
        config.set_store_dir(tmp_path / "chosen")
        assert config.command_store_dir(search_upwards=True, cwd=deep) == tmp_path / "chosen"
        # An explicit path wins; the folder that holds .nbtrack/ means that store.
        assert config.command_store_dir(project, search_upwards=True) == (
            project / config.STORE_DIRNAME
        )
        assert config.command_store_dir(tmp_path / "x", search_upwards=False) == tmp_path / "x"
    finally:
        config.set_store_dir(None)


# -- show -----------------------------------------------------------------------------------
def test_show_text(project: Path) -> None:
    out = ok("show", "2", cwd=project)
    run_id = nbtrack.get_run(2, store=project / ".nbtrack").id
    assert out.splitlines()[0].startswith("nbtrack: run #2 digits/mlp/b — finished in ")
    assert f"(id {run_id[:12]})" in out
    assert "params:  lr=0.2, epochs=5" in out
    assert "seed:    7" in out
    assert "loss=0.2" in out and "acc=0.8" in out
    assert "artifacts: weights" in out
    # Every kind of ref names the same run.
    for ref in ("#2", run_id, run_id[:8]):
        assert ok("show", ref, cwd=project) == out
    assert ok("show", "last", cwd=project).startswith("nbtrack: run #3 iris/tree")


def test_show_json(project: Path) -> None:
    data = json.loads(ok("show", "1", "--json", cwd=project))
    assert data["number"] == 1 and data["name"] == "digits/mlp/a"
    assert data["kind"] == "script"
    assert data["params"] == {"lr": 0.1, "epochs": 3}
    assert data["seed"] == 7
    assert data["metrics"]["loss"] == 0.3
    assert data["metric_history"]["loss"] == "3 point(s) (use --full)"
    [artifact] = data["artifacts"]
    assert artifact["name"] == "weights" and artifact["kind"] == "bytes"
    full = json.loads(ok("show", "1", "--json", "--full", cwd=project))
    assert [[step, value] for step, value, _ in full["metric_history"]["loss"]] == [
        [0, 0.9],
        [1, 0.5],
        [2, 0.3],
    ]


# -- diff -----------------------------------------------------------------------------------
def test_diff_text_and_json(project: Path) -> None:
    out = ok("diff", "1", "2", cwd=project)
    assert out.splitlines()[0] == "diff run #1 → run #2"
    assert re.search(r"^\s+lr\s+0\.1\s+→\s+0\.2$", out, re.MULTILINE), out
    assert re.search(r"^\s+epochs\s+3\s+→\s+5$", out, re.MULTILINE), out
    data = json.loads(ok("diff", "1", "2", "--json", cwd=project))
    assert (data["a"], data["b"]) == (1, 2)
    assert data["sections"]["params"] == [
        {"key": "epochs", "a": 3, "b": 5},
        {"key": "lr", "a": 0.1, "b": 0.2},
    ]
    assert {row["key"] for row in data["sections"]["metrics"]} == {"loss", "acc"}
    assert data["sections"]["seeds"] == []
    assert "(no differences)" in ok("diff", "1", "1", cwd=project)


# -- rm and gc ------------------------------------------------------------------------------
def test_rm_then_gc_frees_only_unshared_artifacts(project: Path) -> None:
    store = nbtrack.get_run(1, store=project / ".nbtrack").store
    only_2 = store.artifact_file(nbtrack.get_run(2, store=store).artifacts[0].hash)
    shared = store.artifact_file(nbtrack.get_run(1, store=store).artifacts[0].hash)
    assert only_2.is_file() and shared.is_file() and only_2 != shared

    out = ok("rm", "2", cwd=project)
    assert "deleted 1 run(s): #2" in out and "nbtrack gc" in out
    assert [r["number"] for r in json.loads(ok("runs", "--json", cwd=project))] == [1, 3]
    assert only_2.is_file()  # files stay until gc
    fails("show", "2", cwd=project)

    gc = json.loads(ok("gc", "--json", "--grace", "0", cwd=project))
    assert gc["files"] == 1
    assert gc["bytes"] == len(b"weights of #2 only")
    assert not only_2.exists()
    assert shared.is_file()

    # #3 still uses the content #1 stored: deleting #1 frees nothing.
    ok("rm", "1", cwd=project)
    assert ok("gc", "--grace", "0", cwd=project).startswith("removed 0 artifact file(s) (0 bytes)")
    assert shared.is_file()
    assert (
        nbtrack.get_run(3, store=store).load_artifact("weights") == b"weights shared by #1 and #3"
    )
    ok("rm", "last", cwd=project)
    assert ok("gc", "--grace", "0", cwd=project).startswith("removed 1 artifact file(s)")
    assert not shared.exists()
    assert "no runs in" in ok("runs", cwd=project)


def test_rm_is_all_or_nothing(project: Path) -> None:
    line = fails("rm", "1", "99", cwd=project)
    assert "'99'" in line
    assert [r["number"] for r in json.loads(ok("runs", "--json", cwd=project))] == [1, 2, 3]


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args", [("show", "99"), ("diff", "1", "99"), ("rm", "42"), ("show", "abcdef12")]
)
def test_unknown_ref_is_one_error_line(project: Path, args: tuple[str, ...]) -> None:
    line = fails(*args, cwd=project)
    assert "no run matches" in line
    assert "nbtrack runs" in line  # says what to do


def test_no_store_is_one_error_line(tmp_path: Path) -> None:
    assert not any(
        (folder / ".nbtrack" / "nbtrack.db").exists() for folder in (tmp_path, *tmp_path.parents)
    )
    line = fails("runs", cwd=tmp_path)
    assert "no nbtrack store" in line and "--store" in line
    line = fails("show", "1", "--store", str(tmp_path / "missing"), cwd=tmp_path)
    assert "no nbtrack store" in line
    assert not (tmp_path / "missing").exists()  # reading never creates a store
    fails("runs", cwd=tmp_path, env={config.ENV_STORE: str(tmp_path / "nowhere")})


def test_usage_errors_exit_2(project: Path) -> None:
    for args in (
        [],
        ["frobnicate"],
        ["runs", "--status", "bogus"],
        ["diff", "1"],
        ["runs", "--limit", "many"],
    ):
        result = cli(*args, cwd=project)
        assert result.returncode == 2, args
        assert result.stdout == ""
        assert result.stderr.splitlines()[-1].startswith("nbtrack")
        assert "error:" in result.stderr.splitlines()[-1]


# -- help and docs --------------------------------------------------------------------------
def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def options(parser: argparse.ArgumentParser) -> list[str]:
    """The long options of a parser (without --help), and its positionals' names."""
    names = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            names += [o for o in action.option_strings if o.startswith("--")]
        else:
            names.append(action.metavar or action.dest)
    return names


def test_top_level_help_and_version(tmp_path: Path) -> None:
    out = ok("--help", cwd=tmp_path)
    for name in subcommands():
        assert re.search(rf"^\s+{name}\s", out, re.MULTILINE), name
    assert "$NBTRACK_STORE" in out
    assert ok("--version", cwd=tmp_path).strip() == f"nbtrack {nbtrack.__version__}"


def test_top_level_help_names_the_magic(tmp_path: Path) -> None:
    out = ok("--help", cwd=tmp_path)
    assert "%%track" in out and "%%%%track" not in out


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_subcommand_help_mentions_its_options(name: str, tmp_path: Path) -> None:
    out = ok(name, "--help", cwd=tmp_path)
    assert out.startswith(f"usage: nbtrack {name}")
    for option in options(subcommands()[name]):
        assert option in out, option


def doc_section(doc: str, command: str) -> str:
    """The text under the heading that names ``nbtrack COMMAND``, up to the next heading."""
    heading = re.search(rf"^(#+) .*nbtrack {command}\b.*$", doc, re.MULTILINE)
    assert heading, f"docs/cli.md has no heading for `nbtrack {command}`"
    level = len(heading.group(1))
    rest = doc[heading.end() :]
    following = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: following.start()] if following else rest


def test_every_command_and_option_is_documented() -> None:
    doc = CLI_DOC.read_text(encoding="utf-8")
    for name, parser in subcommands().items():
        section = doc_section(doc, name)
        assert f"nbtrack {name}" in section, f"docs/cli.md has no example of `nbtrack {name}`"
        for option in options(parser):
            if option.startswith("--") and option not in ("--store", "--json"):
                assert option in section, f"docs/cli.md does not document `{name} {option}`"
    for common in ("--store", "--json", "--version", config.ENV_STORE):
        assert common in doc
    for code in ("0", "1", "2"):
        assert re.search(rf"^\|\s*`?{code}`?\s*\|", doc, re.MULTILINE), f"exit code {code}"


def test_rm_json_prints_json(project: Path) -> None:
    json.loads(ok("rm", "2", "--json", cwd=project))


def test_gc_does_not_lose_data_of_later_runs_in_a_live_process(project: Path) -> None:
    store = project / ".nbtrack"
    with nbtrack.run("live/a", store=store) as track:  # this process now caches its env blob
        track.log(loss=1.0)
    ok("rm", "last", cwd=project)
    ok(
        "gc", "--grace", "0", cwd=project
    )  # the env blob of the deleted run is no longer referenced: removed
    with nbtrack.run("live/b", store=store) as track:  # same environment, same blob hash
        track.log(loss=0.5)
    assert nbtrack.get_run("last", store=store).environment != {}
