"""A ``jupyter lab`` of a test module's own, serving the freshly built extension.

For the browser tests that need their own root, settings or environment (the session-wide
server is ``jupyter_lab`` in conftest.py). The lab's config, runtime and data folders live
in a temporary folder, so the user's settings and extension config never leak in; the
extension is the one just built (``nbtrack/labextension``), not whatever an earlier
``pip install`` copied into ``sys.prefix``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
BUILT = REPO / "nbtrack" / "labextension"

assert (BUILT / "package.json").exists(), (
    "the JupyterLab extension is not built: pip install -e . (or cd labextension && jlpm build:prod)"
)


def write_notebook(path: Path, sources: list[str]) -> Path:
    """Write a notebook of code cells (Python 3 kernel) at ``path``; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@dataclass(frozen=True)
class LabFolders:
    """Where one lab keeps its files: ``root`` is what it serves."""

    base: Path
    root: Path
    config: Path
    runtime: Path
    data: Path


def lab_folders(base: Path, *, auto_start_kernel: bool = False) -> LabFolders:
    """Create a lab's folders under ``base``: the extension linked in, the server extension
    enabled, JupyterLab's news off (and, if asked, a notebook's kernel started on open)."""
    folders = LabFolders(base, *(base / n for n in ("root", "config", "runtime", "data")))
    for folder in (folders.root, folders.config, folders.runtime, folders.data / "labextensions"):
        folder.mkdir(parents=True)
    (folders.data / "labextensions" / "nbtrack").symlink_to(BUILT, target_is_directory=True)
    (folders.config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"nbtrack.server": True}}})
    )
    plugins: list[tuple[str, dict[str, object]]] = [
        ("apputils-extension/notification", {"fetchNews": "false"})
    ]
    if auto_start_kernel:
        plugins.append(("notebook-extension/tracker", {"autoStartDefaultKernel": True}))
    for plugin, settings in plugins:
        folder, name = plugin.split("/")
        path = folders.config / "lab" / "user-settings" / "@jupyterlab" / folder
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{name}.jupyterlab-settings").write_text(json.dumps(settings))
    return folders


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_lab(
    folders: LabFolders, token: str, artifacts: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``jupyter lab`` on 127.0.0.1 over ``folders.root``; yields its URL once it
    answers. No ``NBTRACK_*`` / ``JUPYTER_*`` variable of this process reaches it (``env``
    adds some); its log is copied into ``artifacts`` when it stops."""
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACK_", "JUPYTER_"))}
    environ.update(
        JUPYTER_CONFIG_DIR=str(folders.config),
        JUPYTER_RUNTIME_DIR=str(folders.runtime),
        JUPYTER_PATH=str(folders.data),
        NBTRACK_SUMMARY="0",
    )
    environ.update(env or {})
    log_path = folders.base / "lab.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--allow-root",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={folders.root}",
        ],
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folders.root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError(log_path.read_text()[-3000:]) from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(log_path, artifacts / "lab.log")
