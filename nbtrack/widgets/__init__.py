"""In-notebook views of runs: the compare widget, metric plots and the live ``%%track`` display.

Importing this package is cheap; ipywidgets and plotly are imported by the functions that
need them (``compare`` needs ``ipywidgets``, ``plotly`` and ``anywidget``; ``plot`` needs
``plotly``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["compare", "plot"]


def compare(runs: Any = None, metric: str | None = None, **kwargs: Any) -> Any:
    """The compare widget; see :func:`nbtrack.compare`."""
    from nbtrack.widgets.compare import compare as _compare

    return _compare(runs, metric, **kwargs)


def plot(metric: str, runs: Any = None, **kwargs: Any) -> Any:
    """A plotly figure of a metric over steps; see :func:`nbtrack.plot`."""
    from nbtrack.widgets.figures import plot as _plot

    return _plot(metric, runs, **kwargs)
