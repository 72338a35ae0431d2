"""Live metrics of a running run: the model behind the ``%%track`` live display.

No IPython here. :class:`LiveMetrics` keeps, per metric, the latest value and step and a
short decimated history for a sparkline; :class:`LiveFeed` listens to an
:class:`~nbtrack.tracker.ActiveRun` (its background flush thread calls us, never the training
loop), starts publishing only once the run has logged something, throttles, and stops
cleanly when the run ends. What "publishing" means (an IPython display handle, a test's list)
is the caller's callback.
"""

from __future__ import annotations

import html
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: Fewest seconds between two published updates.
MIN_INTERVAL = 0.3
#: Points kept per metric for its sparkline; older points are thinned, not dropped.
MAX_POINTS = 120
SPARK_WIDTH, SPARK_HEIGHT = 120, 22


def sparkline_svg(
    values: Sequence[float],
    width: int = SPARK_WIDTH,
    height: int = SPARK_HEIGHT,
    colour: str = "#0969da",
) -> str:
    """A small inline SVG line of ``values`` (NaN and inf skipped); empty SVG for < 2 points."""
    points = [
        (i, v) for i, v in enumerate(values) if isinstance(v, (int, float)) and math.isfinite(v)
    ]
    svg = (
        f"<svg class='nbtrack-spark' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg'>"
    )
    if len(points) < 2:
        return svg + "</svg>"
    first, last = points[0][0], points[-1][0]
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    span_x = max(last - first, 1)
    span_y = (high - low) or 1.0
    pad = 2
    coords = " ".join(
        f"{pad + (i - first) / span_x * (width - 2 * pad):.1f},"
        f"{height - pad - (v - low) / span_y * (height - 2 * pad):.1f}"
        for i, v in points
    )
    end_x, end_y = coords.rsplit(" ", 1)[-1].split(",")
    return (
        svg + f"<polyline fill='none' stroke='{colour}' stroke-width='1.5' "
        f"points='{coords}'/><circle cx='{end_x}' cy='{end_y}' r='2' fill='{colour}'/></svg>"
    )


def _fmt(value: float) -> str:
    if value != value:
        return "nan"
    return f"{value:.5g}"


def _elapsed(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Series:
    """One metric's latest value and a thinned history (keeps every ``stride``-th point)."""

    __slots__ = ("value", "step", "values", "stride", "_skipped")

    def __init__(self) -> None:
        self.value = math.nan
        self.step = -1
        self.values: list[float] = []
        self.stride = 1
        self._skipped = 0

    def add(self, value: float, step: int) -> None:
        self.value, self.step = value, step
        self._skipped += 1
        if self._skipped < self.stride:
            # The latest point is always drawn: replace the tail until the stride is reached.
            if self.values:
                self.values[-1] = value
            return
        self._skipped = 0
        self.values.append(value)
        if len(self.values) > MAX_POINTS:
            self.values = self.values[::2]
            self.stride *= 2


class LiveMetrics:
    """What the live display shows: per metric the latest value, its step and a sparkline."""

    def __init__(self, title: str, start_time: float | None = None) -> None:
        self.title = title
        self.start_time = time.time() if start_time is None else start_time
        self.series: dict[str, _Series] = {}

    def observe(self, latest: Mapping[str, Sequence[Any]]) -> bool:
        """Take the run's latest ``{metric: (value, step)}``; True if anything is new.

        Called once per flush, so a metric logged many times between flushes contributes
        its last value: the sparkline samples the curve at the flush rate.
        """
        changed = False
        for key, entry in latest.items():
            value, step = float(entry[0]) if entry[0] is not None else math.nan, int(entry[1])
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = _Series()
            if step == series.step and (value == series.value or value != value):
                continue
            series.add(value, step)
            changed = True
        return changed

    def view(self, now: float | None = None, status: str = "running") -> LiveView:
        """A frozen snapshot to display (safe to hand to another thread)."""
        now = time.time() if now is None else now
        rows = [(key, s.value, s.step, list(s.values)) for key, s in self.series.items()]
        return LiveView(self.title, now - self.start_time, rows, status)


class LiveView:
    """A snapshot of live metrics; displays as HTML in notebooks and one line in text."""

    def __init__(
        self,
        title: str,
        elapsed: float,
        rows: list[tuple[str, float, int, list[float]]],
        status: str = "running",
    ) -> None:
        self.title = title
        self.elapsed = elapsed
        self.rows = rows
        self.status = status

    @property
    def step(self) -> int:
        """The highest step of any metric."""
        return max((step for _, _, step, _ in self.rows), default=-1)

    def __repr__(self) -> str:
        metrics = "  ".join(f"{key}={_fmt(value)}" for key, value, _, _ in self.rows)
        return (
            f"nbtrack: {self.title} {self.status} {_elapsed(self.elapsed)}, "
            f"step {self.step}  {metrics}"
        )

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><td style='padding:0 10px 0 0'><code>{html.escape(key)}</code></td>"
            f"<td style='padding:0 10px 0 0;text-align:right;font-variant-numeric:tabular-nums'>"
            f"{html.escape(_fmt(value))}</td>"
            f"<td style='padding:0 10px 0 0;color:#57606a'>step {step}</td>"
            f"<td style='padding:0'>{sparkline_svg(values)}</td></tr>"
            for key, value, step, values in self.rows
        )
        return (
            "<div class='nbtrack-live' style='font-family:var(--jp-ui-font-family,sans-serif);"
            "font-size:12px;border-left:3px solid #0969da;padding:4px 10px'>"
            f"<div><b>nbtrack</b> {html.escape(self.title)} <span class='nbtrack-live-status' "
            f"style='color:#0969da'>{html.escape(self.status)}</span> "
            f"<span class='nbtrack-live-elapsed'>{_elapsed(self.elapsed)}</span> · "
            f"step <span class='nbtrack-live-step'>{self.step}</span></div>"
            f"<table style='border-collapse:collapse;margin-top:2px'>{body}</table></div>"
        )


Publish = Callable[[LiveView, bool], None]


class LiveFeed:
    """Feeds a run's flushed metrics to ``publish(view, first)`` while the run lasts.

    Attached with :meth:`ActiveRun.add_listener`, so it runs on the background flush thread:
    the training loop never waits for it. Nothing is published until the run has logged a
    metric (``first=True`` then), then at most once per ``min_interval`` seconds. After
    :meth:`close` nothing more is published, even by a flush already in progress.
    """

    def __init__(
        self,
        run: Any,
        publish: Publish,
        *,
        min_interval: float = MIN_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        title = f"run #{run.number}" + (f" {run.name}" if run.name else "")
        self.metrics = LiveMetrics(title, run.start_time)
        self._publish = publish
        self._min_interval = min_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._dirty = False
        self._last = 0.0
        self.updates = 0
        run.add_listener(self.on_flush)

    @property
    def started(self) -> bool:
        """Whether anything was published (the run logged at least one metric)."""
        return self._started

    def on_flush(self, run: Any) -> None:
        """The run listener: take the flushed values, publish if due (flush thread)."""
        steps = run.steps  # the step each metric last logged
        latest = {key: (value, steps.get(key, -1)) for key, value in run.metrics.items()}
        with self._lock:
            if self._closed:
                return
            self._dirty = self.metrics.observe(latest) or self._dirty
            if not self.metrics.series:
                return  # nothing logged yet: no display at all
            now = self._clock()
            if self._started and (now - self._last < self._min_interval):
                return
            if self._started and not self._dirty and now - self._last < 1.0:
                return  # only the elapsed time moved; once a second is enough for that
            first = not self._started
            self._started = True
            self._dirty = False
            self._last = now
            self.updates += 1
            self._publish(self.metrics.view(now), first)

    def close(self) -> bool:
        """Stop publishing; returns whether the display was ever started."""
        with self._lock:
            self._closed = True
            return self._started
