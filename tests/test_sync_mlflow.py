"""nbtrack push/pull against a real ``mlflow server`` on 127.0.0.1 (sqlite backend and an
artifacts folder in a temp dir), started once for the session; checked through MLflow's
own client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest

import nbtrack
from nbtrack import cli
from nbtrack.errors import NbtrackError, SyncError
from nbtrack.store.sqlite import Store
from nbtrack.sync import pull, push
from nbtrack.sync.mlflow import COMPLETE_TAG, RUN_ID_TAG
from tests.conftest import run_cell


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server for the session; stopped at the end."""
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"),
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                log.close()
                raise RuntimeError((root / "server.log").read_text()[-2000:]) from None
            time.sleep(0.25)
    yield uri
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture
def client(mlflow_uri: str) -> Any:
    return mlflow.MlflowClient(tracking_uri=mlflow_uri)


def _experiment() -> str:
    return f"exp-{uuid.uuid4().hex[:8]}"


def _runs_tagged(client: Any, experiment: str, run_id: str) -> list[Any]:
    exp = client.get_experiment_by_name(experiment)
    return list(client.search_runs([exp.experiment_id], f"tags.`{RUN_ID_TAG}` = '{run_id}'"))


def test_push_writes_params_stepped_metrics_tags_artifacts_and_script(
    shell: Any, store_dir: Path, client: Any, mlflow_uri: str, tmp_path: Path
) -> None:
    result = run_cell(
        shell,
        "%%track --name mlflow/demo --tag team\n"
        "lr = 0.25\n"
        "epochs = 3\n"
        "for epoch in range(epochs):\n"
        "    track.log(step=epoch, loss=lr / (epoch + 1))\n"
        "track.artifact(b'weights' * 10, name='weights.bin')",
    )
    assert result.success
    run_id = Store(store_dir).resolve("last")
    experiment = _experiment()
    report = push(f"mlflow+{mlflow_uri}", store=store_dir, experiment=experiment)
    assert report.copied == [run_id]
    [run] = _runs_tagged(client, experiment, run_id)
    tags = run.data.tags
    assert tags["nbtrack.number"] == "1" and tags["nbtrack.name"] == "mlflow/demo"
    assert tags["nbtrack.tag.team"] == "true" and tags[COMPLETE_TAG] == "true"
    assert run.info.run_name == "mlflow/demo" and run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.25" and run.data.params["epochs"] == "3"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.25), (1, 0.125), (2, 0.25 / 3)]
    names = {a.path for a in client.list_artifacts(run.info.run_id, "nbtrack")}
    assert "nbtrack/weights.bin" in names and "nbtrack/script" in names
    got = Path(client.download_artifacts(run.info.run_id, "nbtrack/weights.bin", str(tmp_path)))
    assert got.read_bytes() == b"weights" * 10
    [script] = client.list_artifacts(run.info.run_id, "nbtrack/script")
    text = Path(client.download_artifacts(run.info.run_id, script.path, str(tmp_path)))
    assert "track.log(step=epoch" in text.read_text()
    # pushing again writes nothing new
    again = push(f"mlflow+{mlflow_uri}", store=store_dir, experiment=experiment)
    assert again.skipped == [run_id] and again.copied == []
    assert len(_runs_tagged(client, experiment, run_id)) == 1


def test_a_half_written_mlflow_run_is_replaced(
    tmp_path: Path, client: Any, mlflow_uri: str
) -> None:
    params = {"a": 1, "odd[key]": "v"}  # a name MLflow refuses as it is
    with nbtrack.run("half", params=params, store=tmp_path / "s", capture_env=False) as track:
        track.log(step=0, x=1.0)
        track.log(step=1, y=float("nan"))
    experiment = _experiment()
    exp_id = client.create_experiment(experiment)
    # What a push killed before its last write leaves: the id tag, no completion tag.
    client.create_run(exp_id, tags={RUN_ID_TAG: track.id})
    report = push(f"mlflow+{mlflow_uri}", store=tmp_path / "s", experiment=experiment)
    assert report.updated == [track.id]
    [run] = _runs_tagged(client, experiment, track.id)
    assert run.data.tags[COMPLETE_TAG] == "true" and run.data.metrics["x"] == 1.0
    assert run.data.params == {"a": "1", "odd_key_": "v"}
    [nan] = client.get_metric_history(run.info.run_id, "y")
    assert nan.step == 1 and nan.value != nan.value  # NaN goes through as NaN


def test_pull_imports_mlflow_runs_that_show_in_runs_and_compare(
    tmp_path: Path, client: Any, mlflow_uri: str
) -> None:
    experiment = _experiment()
    exp_id = client.create_experiment(experiment)
    made = []
    for lr in (0.1, 0.01):
        run = client.create_run(exp_id, run_name=f"native-{lr}", tags={"owner": "ana"})
        client.log_param(run.info.run_id, "lr", str(lr))
        client.log_param(run.info.run_id, "opt", "adam")
        for step in range(3):
            client.log_metric(run.info.run_id, "acc", lr * step, step=step, timestamp=1000 + step)
        client.set_terminated(run.info.run_id)
        made.append(run.info.run_id)
    store = tmp_path / "s"
    report = pull(f"mlflow+{mlflow_uri}", store=store, experiment=experiment)
    assert sorted(report.copied) == sorted(made)
    frame = nbtrack.runs(store=store)
    assert sorted(frame["id"]) == sorted(made)
    assert sorted(frame["params.lr"]) == [0.01, 0.1]  # numbers again, so compare can plot them
    record = nbtrack.get_run(made[0], store=store)
    assert record.kind == "mlflow" and record.status == "finished" and record.tags == ["owner"]
    points = [(p.step, p.value, p.timestamp) for p in record.metric_history["acc"]]
    assert points == [(0, 0.0, 1.0), (1, 0.1, 1.001), (2, 0.2, 1.002)]
    assert record.params["opt"] == "adam"
    diff = nbtrack.diff(made[0], made[1], store=store)
    assert "lr" in str(diff)
    assert sorted(pull(f"mlflow+{mlflow_uri}", store=store, experiment=experiment).skipped) == (
        sorted(made)
    )
    # A run pulled while running is brought up to date once it has finished.
    live = client.create_run(exp_id, run_name="live")
    client.log_metric(live.info.run_id, "acc", 0.5, step=0)
    pull(f"mlflow+{mlflow_uri}", store=store, experiment=experiment)
    assert nbtrack.get_run(live.info.run_id, store=store).status == "running"
    client.log_metric(live.info.run_id, "acc", 0.7, step=1)
    client.set_terminated(live.info.run_id)
    report = pull(f"mlflow+{mlflow_uri}", store=store, experiment=experiment)
    assert report.updated == [live.info.run_id]
    done = nbtrack.get_run(live.info.run_id, store=store)
    assert done.status == "finished" and done.metrics == {"acc": 0.7}
    assert nbtrack.runs(store=store).shape[0] == 3


def test_unreachable_server_is_one_line_with_the_password_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with nbtrack.run("r", store=tmp_path / "s", capture_env=False):
        pass
    url = f"mlflow+http://ana:hunter2@127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(SyncError) as info:
        push(url, store=tmp_path / "s")
    assert time.monotonic() - started < 60  # not MLflow's minutes of retries
    assert "cannot reach the MLflow server" in str(info.value)
    assert "hunter2" not in str(info.value) and "ana:<redacted>@" in str(info.value)
    assert cli.main(["push", "--store", str(tmp_path / "s"), "--to", url]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "hunter2" not in err
    with pytest.raises(SyncError, match=r"then pull again$") as info:
        pull(url, store=tmp_path / "laptop")
    assert "hunter2" not in str(info.value) and "push" not in str(info.value)


def test_missing_mlflow_names_the_extra(tmp_path: Path) -> None:
    with nbtrack.run("r", store=tmp_path / "s", capture_env=False):
        pass
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "from nbtrack.cli import main\n"
        f"sys.exit(main(['push', '--store', {str(tmp_path / 's')!r}, "
        "'--to', 'mlflow+http://127.0.0.1:9']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "nbtrack: error: MLflow interop needs the mlflow client: pip install 'nbtrack[mlflow]'"
    )


def test_push_json_output_stays_json(
    tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    with nbtrack.run("j", store=tmp_path / "s", capture_env=False) as track:
        track.log(y=2.0)
    args = ["push", "--store", str(tmp_path / "s"), "--to", f"mlflow+{mlflow_uri}", "--json"]
    assert cli.main([*args, "--experiment", _experiment()]) == 0
    out = json.loads(capsys.readouterr().out)  # MLflow's "View run" line kept off stdout
    assert out["copied"] == [track.id]
    assert out["target"] == f"mlflow+{mlflow_uri}" and out["source"] == str(tmp_path / "s")


def test_a_push_to_mlflow_killed_halfway_and_rerun_leaves_one_run_each(
    tmp_path: Path, client: Any, mlflow_uri: str
) -> None:
    import signal

    folder = tmp_path / "s"
    store = Store(folder)
    ids = []
    for r in range(3):
        run_id = f"{r + 1:02d}" * 16
        store.create_run(run_id, {"name": f"big/{r}", "status": "finished", "start_time": 1.0})
        store.append_metrics(run_id, [("loss", s, s * 0.5, 1000.0 + s) for s in range(10_000)])
        ids.append(run_id)
    store.close()
    experiment = _experiment()
    exp_id = client.create_experiment(experiment)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    args = ["push", "--store", str(folder), "--to", f"mlflow+{mlflow_uri}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbtrack", *args, "--experiment", experiment],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killed = False
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        runs = client.search_runs([exp_id])
        if any(COMPLETE_TAG not in run.data.tags for run in runs):
            os.kill(proc.pid, signal.SIGKILL)  # mid-run: its metrics are being written
            killed = True
            break
        time.sleep(0.05)
    proc.wait()
    assert killed, "the push finished before it could be killed halfway"
    half = {r.data.tags[RUN_ID_TAG] for r in client.search_runs([exp_id])} - {
        r.data.tags[RUN_ID_TAG]
        for r in client.search_runs([exp_id])
        if r.data.tags.get(COMPLETE_TAG) == "true"
    }
    report = push(f"mlflow+{mlflow_uri}", store=folder, experiment=experiment)
    assert set(report.updated) == half  # the half-written run(s), written again
    runs = client.search_runs([exp_id])
    assert sorted(run.data.tags[RUN_ID_TAG] for run in runs) == ids  # exactly one each
    for run in runs:
        assert run.data.tags[COMPLETE_TAG] == "true"
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 10_000


def test_push_model_mirrors_versions_and_aliases_to_mlflow_registry(
    tmp_path: Path, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbtrack.registry.api import registry
    from nbtrack.sync.mlflow_registry import VERSION_TAG

    monkeypatch.chdir(tmp_path)  # no project nbtrack.toml: the default policy
    folder = tmp_path / "s"
    for i in range(2):
        with nbtrack.run(f"m{i}", store=folder, capture_env=False) as track:
            track.artifact(b"weights-%d" % i, name="model.bin")
    reg = registry(Store(folder))
    reg.register(1, "digits-mirror", "model.bin")
    reg.register(2, "digits-mirror", "model.bin")
    reg.set_alias("digits-mirror", "champion", 1)
    url, experiment = f"mlflow+{mlflow_uri}", _experiment()
    report = push(url, store=folder, model="digits-mirror", experiment=experiment)
    assert report.copied == ["digits-mirror/1", "digits-mirror/2"]
    champion = client.get_model_version_by_alias("digits-mirror", "champion")
    assert champion.tags[VERSION_TAG] == "1"
    assert champion.tags["nbtrack.stage"] == "development"
    got = client.download_artifacts(champion.run_id, "nbtrack/model.bin", str(tmp_path))
    assert Path(got).read_bytes() == b"weights-0"
    # again: nothing new in MLflow; a moved alias follows
    reg.set_alias("digits-mirror", "champion", 2)
    again = push(url, store=folder, model="digits-mirror", experiment=experiment)
    assert again.copied == [] and len(again.skipped) == 2
    assert len(client.search_model_versions("name = 'digits-mirror'")) == 2
    moved = client.get_model_version_by_alias("digits-mirror", "champion")
    assert moved.tags[VERSION_TAG] == "2"
    with pytest.raises(SyncError, match="--model mirrors a model to MLflow"):
        push(tmp_path / "team", store=folder, model="digits-mirror")


def test_projects_become_experiments_and_come_back_from_them(
    tmp_path: Path, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --experiment a run goes to its project's experiment (no project: "nbtrack");
    pulled back elsewhere it keeps its project, and a native MLflow run's project is its
    experiment's name. A model mirrored without --experiment finds its run there."""
    from nbtrack.registry.api import registry

    monkeypatch.chdir(tmp_path)  # no nbtrack.toml: no project, the default policy
    folder, project = tmp_path / "s", f"proj-{uuid.uuid4().hex[:8]}"
    ids = []
    for name, scope in (("a", project), ("b", None)):
        with nbtrack.run(name, store=folder, project=scope, capture_env=False) as track:
            track.log(x=1.0)
            track.artifact(b"w", name="model.bin")
        ids.append(track.id)
    url = f"mlflow+{mlflow_uri}"
    assert sorted(push(url, store=folder).copied) == sorted(ids)
    [run] = _runs_tagged(client, project, ids[0])
    assert run.data.tags["nbtrack.project"] == project
    assert len(_runs_tagged(client, "nbtrack", ids[1])) == 1
    registry(Store(folder)).register(1, f"m-{project}", "model.bin")
    assert push(url, store=folder, model=f"m-{project}").copied == [f"m-{project}/1"]
    native = client.create_run(client.get_experiment_by_name(project).experiment_id)
    client.set_terminated(native.info.run_id)
    laptop = tmp_path / "laptop"
    assert sorted(pull(url, store=laptop, experiment=project).copied) == sorted(
        [ids[0], native.info.run_id]
    )
    assert nbtrack.get_run(ids[0], store=laptop).project == project  # its tag
    assert nbtrack.get_run(native.info.run_id, store=laptop).project == project  # experiment
    pull(url, store=laptop, experiment="nbtrack")
    assert nbtrack.get_run(ids[1], store=laptop).project is None  # pushed with none


def test_an_outbox_continuation_is_not_pushed_to_mlflow_as_a_run(
    tmp_path: Path, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outbox holds the ends of runs that live in a team database (kept by the tracker
    when the database went down mid-run): not whole runs, so pushing the outbox folder to
    MLflow refuses them, one line each, instead of creating a partial MLflow run."""
    from nbtrack.sync import outbox

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    url = "postgresql://ana@127.0.0.1:1/team"  # only names the outbox; never reached
    run_id = uuid.uuid4().hex
    folder = outbox.keep_continuation(
        url,
        run_id,
        7,
        {"name": "cut", "kind": "script", "start_time": 1.0},
        {"status": "finished", "end_time": 2.0},
        [("loss", 3, 0.5, 2.0)],
        {"loss": 3},
        "the database went away",
    )
    experiment = _experiment()
    report = push(f"mlflow+{mlflow_uri}", store=folder, experiment=experiment)
    assert report.failed == [run_id] and report.copied == []
    (line,) = report.problems
    assert line.startswith(f"run {run_id[:8]} not pushed: this is the end of a run of a team")
    assert "nbtrack push --outbox" in line
    exp = client.get_experiment_by_name(experiment)
    assert exp is None or _runs_tagged(client, experiment, run_id) == []


def test_a_run_whose_artifact_cannot_be_read_is_not_copied_and_the_others_are(
    tmp_path: Path, client: Any, mlflow_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Content that cannot be read (a deleted file here; object storage this shell cannot
    reach alike) fails that run alone, before anything of it is written to MLflow; a
    folder artifact goes up as its files."""
    folder = tmp_path / "s"
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    ids = []
    for name in ("a", "b", "c"):
        with nbtrack.run(name, store=folder, capture_env=False) as track:
            track.log(x=1.0)
            track.artifact(f"weights of {name}".encode(), name="w.bin")
            track.artifact(tmp_path / "model", name="model")
        ids.append(track.id)
    store = Store(folder)
    [digest] = [d for n, _k, d, _s, _m in store.artifacts(ids[1]) if n == "w.bin"]
    store.artifact_file(digest).unlink()
    store.close()
    url, experiment = f"mlflow+{mlflow_uri}", _experiment()
    report = push(url, store=folder, experiment=experiment)
    assert report.copied == [ids[0], ids[2]] and report.failed == [ids[1]]
    (line,) = report.problems
    assert line.startswith("run #2 not copied: artifact 'w.bin' cannot be read")
    assert "MLflow server" not in line and "No such file or directory" in line
    assert _runs_tagged(client, experiment, ids[1]) == []  # no half-written run left
    [third] = _runs_tagged(client, experiment, ids[2])
    assert third.data.tags[COMPLETE_TAG] == "true"
    got = client.download_artifacts(third.info.run_id, "nbtrack/model/config.json", str(tmp_path))
    assert Path(got).read_text() == "{}"
    args = ["push", "--store", str(folder), "--to", url, "--experiment", experiment]
    assert cli.main(args) == 1  # still not copied; the other two are there already
    out = capsys.readouterr().out
    assert "2 already there, 1 not copied" in out and "run #2 not copied" in out


def _native_runs(client: Any, exp_id: str, starts: list[int]) -> list[str]:
    made = []
    for start in starts:
        run = client.create_run(exp_id, start_time=start, run_name=f"t{start}")
        client.set_terminated(run.info.run_id, end_time=start + 1)
        made.append(run.info.run_id)
    return made


def test_pull_from_mlflow_skips_half_pushed_runs_numbers_by_time_and_takes_refs(
    tmp_path: Path, client: Any, mlflow_uri: str
) -> None:
    from nbtrack.sync.mlflow import pull_mlflow

    experiment = _experiment()
    exp_id = client.create_experiment(experiment)
    late, early, middle = _native_runs(client, exp_id, [3_000_000, 1_000_000, 2_000_000])
    # What a push killed before its last write leaves: the id tag, no completion tag.
    half = uuid.uuid4().hex
    client.create_run(exp_id, start_time=4_000_000, tags={RUN_ID_TAG: half})
    url = f"mlflow+{mlflow_uri}"
    report = pull(url, store=tmp_path / "all", experiment=experiment)
    assert report.copied == [early, middle, late]  # oldest first, the half-written one left
    everything = Store(tmp_path / "all")
    assert everything.resolve("last") == late and everything.resolve("1") == early
    with pytest.raises(NbtrackError):
        everything.run_row(half)
    # REFs: an MLflow run id prefix, 'last'; an unknown one pulls nothing.
    store = Store(tmp_path / "some")
    assert pull_mlflow(store, mlflow_uri, [middle[:8]], experiment=experiment).copied == [middle]
    with pytest.raises(SyncError, match=r"^no MLflow run matches 'beefbeef' at http"):
        pull_mlflow(store, mlflow_uri, ["beefbeef", "last"], experiment=experiment)
    assert pull_mlflow(store, mlflow_uri, ["last"], experiment=experiment).copied == [late]
    assert [r[0] for r in store.list_runs(columns=("id",))] == [middle, late]


def test_pull_ref_unknown_is_one_line_and_exit_1(
    tmp_path: Path, client: Any, mlflow_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    experiment = _experiment()
    _native_runs(client, client.create_experiment(experiment), [1_000_000, 2_000_000])
    args = ["pull", "--store", str(tmp_path / "s"), "--from", f"mlflow+{mlflow_uri}"]
    assert cli.main([*args, "--experiment", experiment, "0123abcd"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("nbtrack: error: no MLflow run matches '0123abcd'")
    assert len(err.splitlines()) == 1
    assert nbtrack.runs(store=tmp_path / "s").shape[0] == 0  # nothing pulled


def test_a_run_pushed_once_is_not_pushed_again_to_another_experiment(
    tmp_path: Path, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbtrack.registry.api import registry

    monkeypatch.chdir(tmp_path)  # no project nbtrack.toml: the default policy
    folder, project = tmp_path / "s", f"proj-{uuid.uuid4().hex[:8]}"
    with nbtrack.run("once", store=folder, project=project, capture_env=False) as track:
        track.artifact(b"w", name="model.bin")
    url, other = f"mlflow+{mlflow_uri}", _experiment()
    assert push(url, store=folder).copied == [track.id]  # to the project's experiment
    again = push(url, store=folder, experiment=other)
    assert again.skipped == [track.id] and again.copied == []
    assert _runs_tagged(client, other, track.id) == []
    [run] = _runs_tagged(client, project, track.id)
    # A model mirrored with --experiment finds its run where it already is.
    registry(Store(folder)).register(1, f"m-{project}", "model.bin")
    assert push(url, store=folder, model=f"m-{project}", experiment=other).copied == [
        f"m-{project}/1"
    ]
    [version] = client.search_model_versions(f"name = 'm-{project}'")
    assert version.run_id == run.info.run_id
