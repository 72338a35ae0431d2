"""``nbtrack.models_widget()``: the model registry in the notebook (ipywidgets).

Top to bottom: an error line (hidden when all is well); the model, the version and which
stage's gates to show (each version's next stage by default), and refresh; the model at a
glance (versions in each stage, aliases); a table of its versions with the gates' verdict;
the chosen version in full — every gate result, approvals, lineage back to its run, stage
history.

A view, not a control panel: it only reads (:class:`~nbtrack.registry.RegistryReader`), so
it never promotes anything by accident; promote with ``nbtrack models promote`` or the
JupyterLab panel. Everything the mouse does can be done from code::

    w = nbtrack.models_widget("digits-classifier")
    w.version = 2
    w.stage = "production"
    w.refresh()
"""

from __future__ import annotations

import os
from typing import Any

from nbtrack.errors import NbtrackError
from nbtrack.registry import RegistryReader, parse_stage
from nbtrack.registry.records import STAGES, ModelSummary, ModelVersion, Stage, next_stage
from nbtrack.widgets import models_html
from nbtrack.widgets.models_html import GateOutcome

#: The stage picker's first choice: each version's next stage.
NEXT = "(next stage)"


class ModelsWidget:
    """The registry view; display it as the last expression of a cell.

    Drive it with :attr:`model`, :attr:`version`, :attr:`stage` and :meth:`refresh`; read
    what it shows from :attr:`models`, :attr:`versions`, :attr:`gates`, :attr:`error` and
    :attr:`html`.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        store: Any = None,
        stage: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        import ipywidgets as W

        self._reader: RegistryReader | None = None
        self._problem = ""
        self._busy = False
        self.models: list[ModelSummary] = []
        self.versions: list[ModelVersion] = []
        #: Gate outcome per version number, for the stage shown (``None``: none to go to).
        self.gates: dict[int, GateOutcome] = {}
        try:
            from nbtrack.store.routing import open_store
            from nbtrack.store.sqlite import Store

            opened = store if isinstance(store, Store) else open_store(store)
            # The policy file is found from the notebook's folder, as the kernel's registry does.
            self._reader = RegistryReader(opened, cwd=cwd or os.getcwd())
        except NbtrackError as exc:  # an unreadable store: an empty view that says why
            self._problem = str(exc)

        self._error = W.HTML("", layout=W.Layout(display="none"))
        self._model = W.Dropdown(options=[], description="model", layout=W.Layout(width="320px"))
        self._version = W.Dropdown(
            options=[], description="version", layout=W.Layout(width="200px")
        )
        self._stage = W.Dropdown(
            options=[NEXT, *(str(s) for s in STAGES if s != Stage.ARCHIVED)],
            value=NEXT,
            description="gates for",
            layout=W.Layout(width="260px"),
        )
        self._refresh = W.Button(
            description="refresh",
            icon="refresh",
            tooltip="read the registry again",
            layout=W.Layout(width="100px"),
        )
        self._summary = W.HTML("")
        self._table = W.HTML("")
        self._detail = W.HTML("")
        self.widget = W.VBox(
            [
                self._error,
                W.HBox([self._model, self._version, self._stage, self._refresh]),
                self._summary,
                self._table,
                self._detail,
            ]
        )
        self.widget.add_class("nbtrack-models-widget")
        if stage:
            self._stage.value = str(parse_stage(stage))
        self._model.observe(lambda _: self._on_model(), names="value")
        self._version.observe(lambda _: self._draw(), names="value")
        self._stage.observe(lambda _: self._on_model(keep_version=True), names="value")
        self._refresh.on_click(lambda _: self.refresh())
        self.refresh(model)

    # -- what code can drive -----------------------------------------------------------------
    @property
    def model(self) -> str | None:
        """The model shown."""
        value = self._model.value
        return str(value) if value else None

    @model.setter
    def model(self, name: str) -> None:
        if name not in self._model.options:
            known = ", ".join(str(o) for o in self._model.options) or "none"
            raise NbtrackError(f"no model {name!r} in the registry (models: {known})")
        self._model.value = name

    @property
    def version(self) -> int | None:
        """The version shown in full."""
        value = self._version.value
        return int(value) if value is not None else None

    @version.setter
    def version(self, number: int) -> None:
        numbers = [v.version for v in self.versions]
        if number not in numbers:
            raise NbtrackError(
                f"{self.model} has no version {number} (versions: "
                f"{', '.join(str(n) for n in sorted(numbers)) or 'none'})"
            )
        self._version.value = number

    @property
    def stage(self) -> str | None:
        """Which stage's gates are shown (``None``: each version's next stage)."""
        value = self._stage.value
        return None if value == NEXT else str(value)

    @stage.setter
    def stage(self, value: str | None) -> None:
        self._stage.value = NEXT if value is None else str(parse_stage(value))

    @property
    def error(self) -> str:
        """What went wrong, in words (empty when all is well)."""
        return self._problem

    @property
    def html(self) -> str:
        """Everything the view shows, as HTML (summary, versions, the chosen version)."""
        return str(self._summary.value + self._table.value + self._detail.value)

    def refresh(self, model: str | None = None) -> None:
        """Read the registry again (new versions, stages, approvals, gates)."""
        if self._reader is None:  # the store could not be opened: keep saying why
            self._show_error()
            return
        self._problem = ""
        try:
            self.models = self._reader.models()
        except NbtrackError as exc:
            self.models = []
            self._problem = str(exc)
        names = [m.name for m in self.models]
        wanted = model or self.model or (names[0] if names else None)
        self._busy = True
        try:
            self._model.options = names
            self._model.value = wanted if wanted in names else (names[0] if names else None)
        finally:
            self._busy = False
        if model is not None and model not in names and not self._problem:
            known = ", ".join(names) or "none"
            self._problem = f"no model {model!r} in the registry (models: {known})"
        self._on_model(keep_version=True)

    # -- drawing ---------------------------------------------------------------------------
    def _on_model(self, keep_version: bool = False) -> None:
        if self._busy:
            return
        reader, name = self._reader, self.model
        self.versions, self.gates = [], {}
        if reader is not None and name:
            try:
                self.versions = reader.versions(name)
                self.gates = {v.version: self._gate(reader, v) for v in self.versions}
            except NbtrackError as exc:
                self._problem = str(exc)
        keep = self.version if keep_version else None
        numbers = [v.version for v in sorted(self.versions, key=lambda v: -v.version)]
        self._busy = True
        try:
            self._version.options = [(f"v{n}", n) for n in numbers]
            self._version.value = keep if keep in numbers else (numbers[0] if numbers else None)
        finally:
            self._busy = False
        self._draw()

    def _gate(self, reader: RegistryReader, version: ModelVersion) -> GateOutcome:
        target = parse_stage(self.stage) if self.stage else next_stage(version.stage)
        if target is None or version.stage in (target, Stage.ARCHIVED):
            return None
        try:
            return reader.check(version.model, version.version, target)
        except NbtrackError as exc:  # a policy file that cannot be read, an unknown metric
            return str(exc)

    def _draw(self) -> None:
        if self._busy:
            return
        self._show_error()
        reader, name = self._reader, self.model
        summary = next((m for m in self.models if m.name == name), None)
        if summary is None:
            self._summary.value = (
                "<p><i>no registered models; register one with "
                "<code>track.register(NAME)</code> in a tracked cell, "
                "<code>nbtrack.register(RUN, NAME)</code> or "
                "<code>nbtrack models register RUN NAME</code></i></p>"
            )
            self._table.value = self._detail.value = ""
            return
        self._summary.value = models_html.summary_html(summary)
        self._table.value = models_html.versions_html(self.versions, self.gates, self.version)
        chosen = next((v for v in self.versions if v.version == self.version), None)
        if chosen is None or reader is None:
            self._detail.value = ""
            return
        try:
            decisions = reader.decisions(chosen.model, chosen.version)
            periods = reader.history(chosen.model, version=chosen.version)
            status = reader.run_facts(chosen).status
        except NbtrackError as exc:
            self._problem = str(exc)
            self._show_error()
            return
        self._detail.value = models_html.version_html(
            chosen, self.gates.get(chosen.version), decisions, periods, status
        )

    def _show_error(self) -> None:
        import html

        self._error.value = (
            f"<div class='nbtrack-error' style='color:#cf222e'>{html.escape(self._problem)}</div>"
            if self._problem
            else ""
        )
        self._error.layout.display = None if self._problem else "none"

    # -- display -----------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def models_widget(
    model: str | None = None, *, store: Any = None, stage: str | None = None
) -> ModelsWidget:
    """The registry view of ``store`` (default: this kernel's store), showing ``model``
    (default: the first); ``stage`` picks whose gates to show (default: each version's next)."""
    return ModelsWidget(model, store=store, stage=stage)


__all__ = ["NEXT", "ModelsWidget", "models_widget"]
