"""Who ran a run: ``RunRecord.user`` on both stores, in the text and HTML summaries and in
``nbtrack show`` / ``--json`` (the PostgreSQL store is the session's real server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nbtrack
from nbtrack import config
from nbtrack.store.routing import connect_store
from nbtrack.summary import run_html, run_text


@pytest.fixture(params=("sqlite", "postgresql"))
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store")
    return str(request.getfixturevalue("pg_url"))


def test_the_record_and_its_renderings_name_the_user(
    location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_ARTIFACTS", str(tmp_path / "artifacts"))
    store = connect_store(location)
    try:
        for user in ("Ana <ana@example.com>", "bo"):
            monkeypatch.setenv(config.ENV_USER, user)
            with nbtrack.run(name="fit", store=store, capture_env=False) as track:
                track.log(loss=0.5)
        first, second = nbtrack.get_run(1, store=store), nbtrack.get_run(2, store=store)
    finally:
        store.close()
    assert (first.user, second.user) == ("Ana <ana@example.com>", "bo")
    assert first.to_dict()["user"] == "Ana <ana@example.com>"
    assert "\n  user:    Ana <ana@example.com>\n" in run_text(first)
    html = run_html(first)
    assert "by Ana &lt;ana@example.com&gt;" in html and "<ana@" not in html

    env = {k: v for k, v in os.environ.items() if k != config.ENV_STORE}
    show = [sys.executable, "-m", "nbtrack", "show", "2", "--store", location]
    text = subprocess.run(show, env=env, capture_output=True, text=True, check=True, timeout=120)
    assert "  user:    bo" in text.stdout.splitlines()
    data = subprocess.run(
        [*show, "--json"], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(data.stdout)["user"] == "bo"
