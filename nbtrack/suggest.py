"""Search-space declarations that are plain values outside a sweep.

In a ``%%track --sweep N`` cell, a top-level ``name = nbtrack.suggest.KIND(...)`` declares a
searched parameter: each trial runs the cell with the call replaced by the sampled literal
(see :mod:`nbtrack.sweeps.space`). Anywhere else the call returns a plain value, so the same
cell also runs as an ordinary cell::

    lr = nbtrack.suggest.loguniform(1e-5, 1e-2)              # 0.000316... (geometric middle)
    hidden = nbtrack.suggest.choice(64, 128, 256)            # 64 (the first)
    layers = nbtrack.suggest.int(2, 8, default=3)            # 3

``default=`` is the value outside a sweep; without it, the middle of the range (geometric
for ``loguniform``/``logint``) or the first choice.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = ["uniform", "loguniform", "int", "logint", "choice"]


def _plain(kind: str, args: tuple[Any, ...], default: Any) -> Any:
    from nbtrack.sweeps.space import make_dimension

    # Validate even outside a sweep: a range that a sweep would refuse should fail here too.
    dim = make_dimension("value", kind, args, f"nbtrack.suggest.{kind}{args!r}", source="cell")
    return dim.plain_value() if default is None else default


def uniform(low: float, high: float, step: float | None = None, *, default: Any = None) -> Any:
    """A float in ``[low, high]`` (on a grid of ``step`` when given)."""
    return _plain("uniform", (low, high) if step is None else (low, high, step), default)


def loguniform(low: float, high: float, *, default: Any = None) -> Any:
    """A float in ``[low, high]`` searched on a log scale (``0 < low``)."""
    return _plain("loguniform", (low, high), default)


def int(
    low: builtins.int, high: builtins.int, step: builtins.int = 1, *, default: Any = None
) -> Any:  # noqa: A001 -- reads as the kind it declares
    """A whole number in ``[low, high]`` (every ``step``)."""
    return _plain("int", (low, high, step), default)


def logint(low: builtins.int, high: builtins.int, *, default: Any = None) -> Any:
    """A whole number in ``[low, high]`` searched on a log scale (``0 < low``)."""
    return _plain("logint", (low, high), default)


def choice(*values: Any, default: Any = None) -> Any:
    """One of ``values`` (numbers, strings, bools or None)."""
    return _plain("choice", values, default)
