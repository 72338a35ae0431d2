"""The run table widget: one page of formatted rows, sortable headers, row selection.

An ``anywidget`` (already required by plotly's ``FigureWidget``), so the table is a real
HTML table in the browser whose clicks come back to Python as trait changes: ``sort_by`` and
``ascending`` (header clicks), ``page`` (pager) and ``selected`` (checkboxes and rows).
Only the current page travels to the browser, which keeps 1,000 runs cheap.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets

_HERE = Path(__file__).parent


class RunTable(anywidget.AnyWidget):
    """One page of runs; Python fills ``columns`` and ``rows``, the browser sets the rest."""

    _esm = _HERE / "run_table.js"
    _css = _HERE / "run_table.css"

    #: ``[{"key": "params.lr", "label": "lr", "group": "params"}, ...]``
    columns = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: ``[{"number": 3, "cells": [...], "best": [column indices], "status": ...}, ...]``
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    sort_by = traitlets.Unicode("number").tag(sync=True)
    ascending = traitlets.Bool(True).tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    page_count = traitlets.Int(0).tag(sync=True)
    #: Run numbers, in the order they were selected.
    selected = traitlets.List(traitlets.Int()).tag(sync=True)
    #: The best run for the chosen metric among the filtered runs (-1: none).
    best_run = traitlets.Int(-1).tag(sync=True)
    summary = traitlets.Unicode("").tag(sync=True)
    empty_message = traitlets.Unicode("no runs").tag(sync=True)
