"""What a run start and finish may reuse from the previous run, and what it must see again.

A run's start and finish keep answers between runs to cost less (the secret scan of the
environment, the project's ``nbtrack.toml``, the script's own source, redacted texts).
Each test changes what an answer depends on *between two runs of one process* and checks
that the second run records the new truth: a secret set in the environment is still
redacted, a gc by another process is still noticed, the user and the project follow
``NBTRACK_USER``, ``NBTRACK_PROJECT`` and ``nbtrack.toml``, and run numbers stay distinct.
Both stores: SQLite and a real PostgreSQL server (tests/pg_server.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack import config
from nbtrack.query import RunRecord
from nbtrack.secrets import REDACTED, secret_env_values

SECRET_NAME = "NBTRACK_TEST_API_TOKEN"


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: Any) -> str:
    """A store of each kind, used through ``$NBTRACK_STORE``; the test works in tmp_path."""
    if request.param == "postgres":
        where = str(request.getfixturevalue("pg_url"))
        monkeypatch.setenv(config.ENV_ARTIFACTS, str(tmp_path / "artifacts"))
    else:
        where = str(tmp_path / "store")
    monkeypatch.setenv(config.ENV_STORE, where)
    config.set_store_dir(None)
    work = tmp_path / "repo" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for name in (SECRET_NAME, config.ENV_USER, config.ENV_PROJECT):
        monkeypatch.delenv(name, raising=False)
    return where


def _run(note: str = "", **kwargs: Any) -> RunRecord:
    with nbtrack.run(
        name="cost", note=note or None, capture_env=False, capture_data=False, **kwargs
    ) as track:
        track.log(loss=1.0)
    return nbtrack.get_run(track.id)


def test_a_secret_set_between_two_runs_is_redacted_in_the_second(
    location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _run(note="token s3cret-value-one", params={"key_id": "s3cret-value-one"})
    assert first.note == "token s3cret-value-one"  # no such secret yet: kept as typed
    monkeypatch.setenv(SECRET_NAME, "s3cret-value-one")
    second = _run(note="token s3cret-value-one", params={"key_id": "s3cret-value-one"})
    assert second.note == f"token {REDACTED}"
    assert second.params["key_id"] == REDACTED
    # The same variable given another value of the same length (the environment table
    # keeps its size): the new value is the secret now.
    monkeypatch.setenv(SECRET_NAME, "s3cret-value-two")
    third = _run(note="s3cret-value-two and s3cret-value-one")
    assert third.note == f"{REDACTED} and s3cret-value-one"
    # Gone from the environment: no longer a known secret.
    monkeypatch.delenv(SECRET_NAME)
    assert _run(note="s3cret-value-two").note == "s3cret-value-two"
    # A failed run's error is redacted with what the environment held when it failed.
    with pytest.raises(RuntimeError):
        with nbtrack.run(name="fails", capture_env=False, capture_data=False) as track:
            os.environ[SECRET_NAME] = "set-while-running-42"
            raise RuntimeError("failed with set-while-running-42")
    error = nbtrack.get_run(track.id).error
    assert error is not None and error["message"] == f"failed with {REDACTED}"
    numbers = [r for r in nbtrack.runs()["number"]]
    assert numbers == sorted(set(numbers)) and len(numbers) == 5  # distinct, in order


def test_the_secret_scan_follows_every_change_to_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SECRET_NAME, raising=False)
    assert "abcdef-123456" not in secret_env_values()
    monkeypatch.setenv(SECRET_NAME, "abcdef-123456")
    assert "abcdef-123456" in secret_env_values()
    monkeypatch.setenv(SECRET_NAME, "abcdef-654321")  # same length, same table size
    assert secret_env_values().count("abcdef-654321") == 1
    assert "abcdef-123456" not in secret_env_values()
    monkeypatch.setenv("NBTRACK_TEST_PLAIN", "abcdef-999999")  # not a secret name
    assert "abcdef-999999" not in secret_env_values()
    monkeypatch.delenv(SECRET_NAME)
    assert "abcdef-654321" not in secret_env_values()


def test_user_and_project_follow_the_environment_and_nbtrack_toml(
    location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    toml = repo / config.PROJECT_CONFIG_FILENAME
    assert _run().project is None
    toml.write_text('[project]\nname = "first"\n', encoding="utf-8")  # found upwards
    assert _run().project == "first"
    # Edited in place to a name of the same length: a new version of the file.
    toml.write_text('[project]\nname = "again"\n', encoding="utf-8")
    os.utime(toml, ns=(toml.stat().st_mtime_ns + 10**9,) * 2)
    assert _run().project == "again"
    # A nearer file wins from the next run on, and its [secrets] table applies.
    (repo / "work" / config.PROJECT_CONFIG_FILENAME).write_text(
        '[project]\nname = "near"\n[secrets]\nnames = ["wandb"]\n', encoding="utf-8"
    )
    near = _run(params={"wandb": "not-a-format"})
    assert (near.project, near.params["wandb"]) == ("near", REDACTED)
    (repo / "work" / config.PROJECT_CONFIG_FILENAME).unlink()
    after = _run(params={"wandb": "not-a-format"})
    assert (after.project, after.params["wandb"]) == ("again", "not-a-format")
    monkeypatch.setenv(config.ENV_PROJECT, "from-env")
    monkeypatch.setenv(config.ENV_USER, "ada@example.org")
    env_run = _run()
    assert (env_run.project, env_run.user) == ("from-env", "ada@example.org")
    monkeypatch.setenv(config.ENV_USER, "grace@example.org")
    assert _run().user == "grace@example.org"
    toml.unlink()
    monkeypatch.delenv(config.ENV_PROJECT)
    assert _run().project is None


def test_a_gc_in_another_process_between_two_runs_is_noticed(location: str) -> None:
    first = _run(note="one")
    # Another process deletes the run and collects its content (code, RNG state) at once.
    gone = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from nbtrack.store.routing import open_store; "
            "s = open_store(sys.argv[1]); s.delete_runs([sys.argv[2]]); "
            "print(s.gc(grace=0)['blobs'])",
            location,
            first.id,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(gone.stdout.split()[-1]) >= 1, gone.stdout
    # This process still holds the store and its memory of which blobs exist: the next
    # run's code and RNG state (the same content) must be written again, not assumed.
    second = _run(note="two")
    assert second.code == first.code and second.rng_state == first.rng_state
    assert second.number != first.number


def test_a_script_edited_between_two_runs_records_its_new_code(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """\
            import sys
            import nbtrack

            ids = []
            for i in range(2):
                with nbtrack.run(name="s", capture_env=False, capture_data=False) as t:
                    t.log(x=1.0)
                ids.append(t.id)
                with open(__file__, "a", encoding="utf-8") as fh:
                    fh.write(f"# run {i} done\\n")  # the next run's code is longer
            print(" ".join(ids))
            """
        ),
        encoding="utf-8",
    )
    env = {**os.environ, config.ENV_STORE: str(tmp_path / "store")}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    first, second = done.stdout.split()
    store = str(tmp_path / "store")
    assert "# run 0 done" not in nbtrack.get_run(first, store=store).code
    assert nbtrack.get_run(second, store=store).code.endswith("# run 0 done\n")
