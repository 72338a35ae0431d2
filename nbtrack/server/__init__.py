"""The Jupyter server extension: REST endpoints the JupyterLab Runs panel reads.

Enabled by ``jupyter-config/server-config/nbtrack.json`` (installed with the package), or by
hand with ``jupyter server extension enable nbtrack``.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "nbtrack.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from nbtrack.server.handlers import setup_handlers

    setup_handlers(server_app.web_app)
    server_app.log.info("nbtrack: Runs panel endpoints registered under /nbtrack/")
