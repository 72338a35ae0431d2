"""``jupyter nbconvert --to nbtrack NOTEBOOK.ipynb``: the nbconvert face of the exporter.

Registered as an nbconvert exporter through the ``nbconvert.exporters`` entry point
``nbtrack = "nbtrack.export.nbconvert:NbtrackExporter"``; without the entry point it still
works by its full name: ``--to nbtrack.export.nbconvert.NbtrackExporter``. Options::

    --NbtrackExporter.track=False           # %%track cells as plain code
    --NbtrackExporter.allow_ipython=True    # keep unknown magics as IPython calls
"""

from __future__ import annotations

from typing import Any

from nbconvert.exporters import Exporter
from traitlets import Bool

from nbtrack.export.notebook import export_notebook_node

__all__ = ["NbtrackExporter"]


class NbtrackExporter(Exporter):
    """A notebook as a plain Python script: magics translated, %%track cells as runs."""

    export_from_notebook = "Python script (nbtrack)"
    output_mimetype = "text/x-python"

    track = Bool(True, help="Export %%track cells as `with nbtrack.run(...)` blocks.").tag(
        config=True
    )
    allow_ipython = Bool(
        False,
        help="Keep magics with no Python equivalent as calls into IPython instead of failing.",
    ).tag(config=True)

    def _file_extension_default(self) -> str:
        return ".py"

    def from_notebook_node(  # type: ignore[override]  # nbconvert's own exporters return str
        self, nb: Any, resources: dict[str, Any] | None = None, **kw: Any
    ) -> tuple[str, dict[str, Any]]:
        """Convert a notebook node to the script text (and nbconvert's resources)."""
        nb_copy, resources = super().from_notebook_node(nb, resources, **kw)
        name = (resources.get("metadata") or {}).get("name") or "notebook"
        text = export_notebook_node(
            nb_copy, name=f"{name}.ipynb", track=self.track, allow_ipython=self.allow_ipython
        )
        resources["output_extension"] = ".py"
        return text, resources
