"""Artifacts in object storage: a real S3-compatible HTTP server (moto) on 127.0.0.1.

The server runs in this process on a free port; nbtrack reaches it through s3fs over HTTP,
exactly as it reaches AWS, with the endpoint given in ``NBTRACK_ARTIFACTS_OPTIONS`` and
dummy credentials in the usual AWS environment variables.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nbtrack
from nbtrack import config
from nbtrack.errors import ArtifactError
from nbtrack.store.artifact_store import content_hash
from nbtrack.store.sqlite import Store
from nbtrack.tracker import TrackingWarning

BUCKET = "nbtrack-artifacts"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with an empty bucket; its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        _s3fs(endpoint).mkdir(BUCKET)
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def _s3fs(endpoint: str) -> Any:
    """An s3fs client of its own (not nbtrack's), as a second user of the bucket would have."""
    import s3fs

    return s3fs.S3FileSystem(
        endpoint_url=endpoint, key="testing", secret="testing-secret", skip_instance_cache=True
    )


@pytest.fixture
def s3_prefix(
    s3_endpoint: str, store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """``NBTRACK_ARTIFACTS`` pointing at a fresh prefix of the bucket; that prefix's path."""
    prefix = f"{BUCKET}/runs-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(config.ENV_ARTIFACTS, f"s3://{prefix}")
    monkeypatch.setenv(config.ENV_ARTIFACTS_OPTIONS, json.dumps({"endpoint_url": s3_endpoint}))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return prefix


def _content_keys(fs: Any, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix``, by key relative to it."""
    fs.invalidate_cache()
    return {key[len(prefix) + 1 :]: fs.cat_file(key) for key in fs.find(prefix)}


def test_tracked_cell_saves_and_loads_artifacts_in_s3(
    shell: Any, s3_prefix: str, s3_endpoint: str, store_dir: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(300_000))
    shell.user_ns.update(np=np, weights_path=str(weights))
    cell = """%%track --name s3/cell --quiet
array = np.arange(12.0).reshape(3, 4)
track.artifact(array, "array")
track.artifact(weights_path, "weights")
"""
    assert shell.run_cell(cell, store_history=True).success
    record = nbtrack.get_run("last")
    loaded = record.load_artifact("array")
    assert isinstance(loaded, np.ndarray)
    np.testing.assert_array_equal(loaded, np.arange(12.0).reshape(3, 4))
    assert Path(record.load_artifact("weights")).read_bytes() == weights.read_bytes()
    # The content is in the bucket under its hash, and not in the store's folder.
    objects = _content_keys(_s3fs(s3_endpoint), s3_prefix)
    hashes = {a.name: a.hash for a in record.artifacts}
    for name in ("array", "weights"):
        digest = hashes[name]
        assert content_hash(objects[f"{digest[:2]}/{digest[2:]}"]) == digest
    assert not any(key.split("/")[-1].startswith(".tmp-") for key in objects)
    assert not (store_dir / config.ARTIFACTS_DIRNAME).exists()


def test_an_object_overwritten_in_the_bucket_is_refused_in_one_line(
    s3_prefix: str, s3_endpoint: str, store_dir: Path
) -> None:
    with nbtrack.run(name="s3/damaged") as track:
        track.artifact(b"the real weights" * 1000, name="raw")
        track.artifact(np.ones(5), name="array")
    record = nbtrack.get_run("last")
    raw = next(a for a in record.artifacts if a.name == "raw")
    fs = _s3fs(s3_endpoint)
    fs.pipe_file(f"{s3_prefix}/{raw.hash[:2]}/{raw.hash[2:]}", b"tampered")
    with pytest.raises(ArtifactError) as caught:
        record.load_artifact("raw")
    message = str(caught.value)
    assert "\n" not in message
    assert "damaged" in message and raw.hash[:12] in message
    assert f"s3://{s3_prefix}" in message or s3_prefix in message
    np.testing.assert_array_equal(record.load_artifact("array"), np.ones(5))
    # gc --verify removes the damaged copy; saving the same content again heals it.
    assert Store(store_dir).gc(grace=0, verify=True)["damaged"] == 1
    with pytest.raises(ArtifactError, match="missing .* save the artifact again"):
        record.load_artifact("raw")
    with nbtrack.run(name="s3/again") as track:
        track.artifact(b"the real weights" * 1000, name="raw")
    assert record.load_artifact("raw") == b"the real weights" * 1000


def test_gc_on_s3_frees_what_no_run_refers_to(
    s3_prefix: str, s3_endpoint: str, store_dir: Path
) -> None:
    with nbtrack.run(name="s3/keep") as track:
        track.artifact(b"kept" * 100, name="kept")
    kept = nbtrack.get_run("last")
    with nbtrack.run(name="s3/drop") as track:
        track.artifact(b"dropped" * 100, name="dropped")
    dropped = nbtrack.get_run("last")
    fs = _s3fs(s3_endpoint)
    leftover = f"{s3_prefix}/ab/.tmp-{uuid.uuid4().hex}"
    fs.pipe_file(leftover, b"half an upload")
    fs.pipe_file(f"{BUCKET}/unrelated.txt", b"not nbtrack's")
    store = Store(store_dir)
    store.delete_runs([dropped.id])
    assert store.gc(grace=3600, shared=True)["files"] == 0  # all younger than the grace
    result = store.gc(grace=0, shared=True)
    assert result["files"] == 2  # the dropped content and the temporary leftover
    assert result["bytes"] == len(b"dropped" * 100) + len(b"half an upload")
    objects = _content_keys(fs, s3_prefix)
    digest = kept.artifacts[0].hash
    assert list(objects) == [f"{digest[:2]}/{digest[2:]}"]
    assert kept.load_artifact("kept") == b"kept" * 100
    fs.invalidate_cache()
    assert fs.cat_file(f"{BUCKET}/unrelated.txt") == b"not nbtrack's"


_WORKER = """
import os, sys
import nbtrack
data = (bytes(range(256)) * (int(sys.argv[1]) // 256))
with nbtrack.run(name="s3/killed") as track:
    open(sys.argv[2], "w").close()  # the beacon: the upload starts now
    track.artifact(data, name="big")
    open(sys.argv[2] + ".done", "w").close()
"""


def test_sigkill_mid_upload_leaves_no_object_under_a_content_name(
    s3_prefix: str, s3_endpoint: str, store_dir: Path, tmp_path: Path
) -> None:
    size = 24 << 20
    digest = content_hash(bytes(range(256)) * (size // 256))
    final = f"{s3_prefix}/{digest[:2]}/{digest[2:]}"
    fs = _s3fs(s3_endpoint)
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(_WORKER))
    Store(store_dir).close()
    cut_short = 0
    for attempt in range(4):
        beacon = tmp_path / f"beacon-{attempt}"
        proc = subprocess.Popen(
            [sys.executable, str(script), str(size), str(beacon)], env=dict(os.environ)
        )
        deadline = time.monotonic() + 60
        while not beacon.exists():
            assert proc.poll() is None, "the worker died before uploading"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        if attempt % 2:  # strike once the temporary object is there, before the commit
            while not any(".tmp-" in key for key in _keys(fs, s3_prefix)):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.002)
        else:
            time.sleep(0.02 * attempt)  # strike while the data is on its way
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        cut_short += not Path(f"{beacon}.done").exists()
        for key in _keys(fs, s3_prefix):
            if ".tmp-" not in key:  # a content name holds whole content, or nothing
                assert key == final
                assert content_hash(fs.cat_file(key)) == digest
        if cut_short >= 2:
            break
    assert cut_short >= 1, "every kill came after the save had finished"
    store = Store(store_dir)
    store.gc(grace=0, shared=True)
    recorded = len(store.artifact_rows())
    remaining = _keys(fs, s3_prefix)
    assert not any(".tmp-" in key for key in remaining)
    # Whole content stays only while a run (one that finished saving) refers to it.
    assert remaining == ([final] if recorded else [])


def test_gc_on_one_store_keeps_what_another_store_saved_in_the_same_bucket(
    s3_prefix: str, s3_endpoint: str, store_dir: Path, tmp_path: Path
) -> None:
    """A laptop's store and the team's share a bucket: each sees only its own runs, so a
    plain gc on one deletes none of the other's content (it used to delete all of it), only
    leftovers of interrupted uploads, and the CLI says what it kept and why."""
    theirs = tmp_path / "theirs"
    with nbtrack.run(name="theirs", store=str(theirs)) as track:
        track.artifact(b"their weights" * 50, name="weights")
    their_run = nbtrack.get_run("last", store=str(theirs))
    with nbtrack.run(name="mine") as track:
        track.artifact(b"mine" * 50, name="mine")
    fs = _s3fs(s3_endpoint)
    fs.pipe_file(f"{s3_prefix}/ab/.tmp-{uuid.uuid4().hex}", b"half an upload")
    assert len(_content_keys(fs, s3_prefix)) == 3
    proc = subprocess.run(
        [sys.executable, "-m", "nbtrack", "gc", "--grace", "0", "--store", str(store_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("removed 1 artifact file(s)")  # the leftover only
    assert lines[1].startswith("kept 1 artifact file(s) no run of this store uses in s3://")
    assert "--shared" in lines[1] and len(lines) == 2
    assert their_run.load_artifact("weights") == b"their weights" * 50
    assert len(_content_keys(fs, s3_prefix)) == 2
    # --shared: this store declares itself the bucket's only user, and it is believed.
    result = Store(store_dir).gc(grace=0, shared=True)
    assert result["files"] == 1 and result["shared_kept"] == 0
    assert list(_content_keys(fs, s3_prefix)) == [
        f"{a.hash[:2]}/{a.hash[2:]}" for a in nbtrack.get_run("last").artifacts
    ]


def _keys(fs: Any, prefix: str) -> list[str]:
    fs.invalidate_cache()
    return list(fs.find(prefix))


def test_a_postgresql_store_keeps_its_artifacts_in_s3(
    pg_url: str, s3_prefix: str, s3_endpoint: str
) -> None:
    from nbtrack.store.routing import connect_store

    with nbtrack.run(name="pg/s3", store=pg_url) as track:
        track.artifact(np.arange(4.0), name="array")
    record = nbtrack.get_run("last", store=pg_url)
    np.testing.assert_array_equal(record.load_artifact("array"), np.arange(4.0))
    digest = record.artifacts[0].hash
    assert list(_content_keys(_s3fs(s3_endpoint), s3_prefix)) == [f"{digest[:2]}/{digest[2:]}"]
    store = connect_store(pg_url)
    try:
        assert store.gc(grace=0, shared=True)["files"] == 0  # referenced content stays
        store.delete_runs([record.id])
        assert store.gc(grace=0)["files"] == 0  # a bucket other stores may use: kept
        assert store.gc(grace=0, shared=True)["files"] == 1
    finally:
        store.close()
    assert _keys(_s3fs(s3_endpoint), s3_prefix) == []


def test_an_unreachable_bucket_is_a_warning_on_the_run_that_never_shows_credentials(
    s3_endpoint: str, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv(
        config.ENV_ARTIFACTS_OPTIONS,
        json.dumps({"endpoint_url": closed, "config_kwargs": {"retries": {"max_attempts": 1}}}),
    )
    warnings = []
    for url in (f"s3://{BUCKET}/down", f"s3://ana:topsecret@{BUCKET}/down"):
        monkeypatch.setenv(config.ENV_ARTIFACTS, url)
        with pytest.warns(TrackingWarning):
            with nbtrack.run(name="s3/down") as track:
                track.artifact(b"payload", name="raw")
                done = True
        assert done  # the user's code ran to its end
        warnings += nbtrack.get_run("last").warnings
    unreachable, with_password = warnings
    assert f"s3://{BUCKET}/down" in unreachable and "check that it is reachable" in unreachable
    assert "Connect" in unreachable  # botocore's EndpointConnectionError, named
    for warning in warnings:
        assert "\n" not in warning and "artifact 'raw' was not stored" in warning
    assert "topsecret" not in with_password and "ana:<redacted>@" in with_password


def test_options_that_are_not_json_are_one_clear_line(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbtrack.errors import UsageError
    from nbtrack.store.artifact_store import configured_artifacts

    monkeypatch.setenv(config.ENV_ARTIFACTS, "s3://bucket/prefix")
    monkeypatch.setenv(config.ENV_ARTIFACTS_OPTIONS, "{endpoint_url: http://x}")
    with pytest.raises(UsageError, match="NBTRACK_ARTIFACTS_OPTIONS is not valid JSON"):
        configured_artifacts()


def test_nbtrack_toml_names_the_bucket_and_its_options(
    s3_endpoint: str, store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(config.ENV_ARTIFACTS, raising=False)
    monkeypatch.delenv(config.ENV_ARTIFACTS_OPTIONS, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nbtrack.toml").write_text(
        f'[store]\nartifacts = "s3://{BUCKET}/from-toml"\n\n'
        f'[store.artifacts_options]\nendpoint_url = "{s3_endpoint}"\n'
    )
    with nbtrack.run(name="s3/toml") as track:
        track.artifact("configured in the project", name="note")
    record = nbtrack.get_run("last")
    assert record.load_artifact("note") == "configured in the project"
    digest = record.artifacts[0].hash
    assert _keys(_s3fs(s3_endpoint), f"{BUCKET}/from-toml") == [
        f"{BUCKET}/from-toml/{digest[:2]}/{digest[2:]}"
    ]


def test_a_short_password_in_the_bucket_url_is_hidden_and_the_toml_refuses_one(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore repeats ``user:password@bucket`` as the "bucket name" in its error; the
    value rule skips values as short as ``pw`` (too like ordinary words), so the URL's
    own ``:password@`` form is hidden whatever its length. In nbtrack.toml (shared with
    the project) a password in ``[store] artifacts`` is refused: one warning, no upload."""
    monkeypatch.delenv(config.ENV_ARTIFACTS_OPTIONS, raising=False)
    monkeypatch.setenv(config.ENV_ARTIFACTS, f"s3://ana:pw@{BUCKET}/x")
    with pytest.warns(TrackingWarning):
        with nbtrack.run(name="s3/short") as track:
            track.artifact(b"payload", name="raw")
    (warning,) = nbtrack.get_run("last").warnings
    assert "artifact 'raw' was not stored" in warning
    assert ":pw@" not in warning and f"ana:<redacted>@{BUCKET}" in warning

    monkeypatch.delenv(config.ENV_ARTIFACTS)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nbtrack.toml").write_text(f'[store]\nartifacts = "s3://ana:pw@{BUCKET}/x"\n')
    with pytest.warns(TrackingWarning):
        with nbtrack.run(name="s3/toml-password") as track:
            track.artifact(b"payload", name="raw")
            ran = True
    assert ran
    (warning,) = nbtrack.get_run("last").warnings
    assert f"[store] artifacts s3://ana:<redacted>@{BUCKET}/x carries a password" in warning
    assert ":pw@" not in warning and "~/.aws/credentials" in warning
