"""In-notebook views: the compare widget, metric plots, the live ``%%track`` display and the
model registry view.

Importing this package is cheap; ipywidgets and plotly are imported by the functions that
need them (``compare`` needs ``ipywidgets``, ``plotly`` and ``anywidget``; ``plot`` needs
``plotly``; ``models_widget`` needs ``ipywidgets``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["compare", "models_widget", "plot"]


def compare(runs: Any = None, metric: str | None = None, **kwargs: Any) -> Any:
    """The compare widget; see :func:`nbtrack.compare`."""
    from nbtrack.widgets.compare import compare as _compare

    return _compare(runs, metric, **kwargs)


def models_widget(model: str | None = None, **kwargs: Any) -> Any:
    """The registry view; see :func:`nbtrack.models_widget`."""
    from nbtrack.widgets.models import models_widget as _models_widget

    return _models_widget(model, **kwargs)


def plot(metric: str, runs: Any = None, **kwargs: Any) -> Any:
    """A plotly figure of a metric over steps; see :func:`nbtrack.plot`."""
    from nbtrack.widgets.figures import plot as _plot

    return _plot(metric, runs, **kwargs)
