"""A metric's direction: whether a smaller or a larger value is better.

One rule, used by the summary ("better than best #N"), :func:`nbtrack.query.best_previous`,
the compare widget's best values and sort order, and later by sweeps and registry gates.
Where a direction comes from, first match wins:

1. **declared** by the run: ``track.goal(val_loss="min")`` or ``nbtrack.run(goals={...})``;
2. **config**: the ``[metrics]`` table of the project's ``nbtrack.toml`` (found from the
   working directory upwards), e.g. ``val_acc = "max"``;
3. **heuristic**: the metric's name, read as whole tokens (see :func:`heuristic_direction`).

Cheap to import: no pandas, no IPython; the config file is read only when asked, and cached.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from nbtrack.errors import UsageError

Direction = Literal["min", "max"]
Source = Literal["declared", "config", "heuristic"]

#: What a user may write for a direction, and what it means.
_SPELLINGS: dict[str, Direction] = {
    "min": "min",
    "minimize": "min",
    "minimise": "min",
    "max": "max",
    "maximize": "max",
    "maximise": "max",
}

#: Tokens naming a quantity where smaller is better.
LOWER_IS_BETTER = frozenset(
    {
        "loss",
        "losses",
        "err",
        "error",
        "errors",
        "mse",
        "mae",
        "rmse",
        "rmsle",
        "mape",
        "smape",
        "nll",
        "perplexity",
        "ppl",
        "wer",
        "cer",
        "ter",
        "latency",
        "time",
        "duration",
        "runtime",
        "regret",
        "cost",
        "fid",
        "bpd",
        "bpc",
        "divergence",
        "kl",
        "distance",
    }
)

#: Tokens that qualify a metric rather than name it: splits, aggregates, units, "best".
#: They are skipped when looking for the token that decides (``val_loss_mean`` is a loss).
MODIFIERS = frozenset(
    {
        "train",
        "training",
        "val",
        "valid",
        "validation",
        "test",
        "eval",
        "dev",
        "holdout",
        "mean",
        "avg",
        "average",
        "median",
        "final",
        "last",
        "total",
        "sum",
        "min",
        "max",
        "best",
        "smoothed",
        "ema",
        "running",
        "ms",
        "us",
        "ns",
        "s",
        "sec",
        "secs",
        "seconds",
        "minutes",
        "hours",
        "pct",
        "percent",
    }
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[_\-./\s]+")
_PERCENTILE = re.compile(r"p\d+")


def tokens(metric: str) -> list[str]:
    """``metric`` as lower-case words: split on ``_ - . /``, spaces and camelCase."""
    return [t.lower() for t in _SEPARATORS.split(_CAMEL.sub("_", metric)) if t]


def _is_modifier(token: str) -> bool:
    return token in MODIFIERS or bool(_PERCENTILE.fullmatch(token))


def deciding_token(metric: str) -> str | None:
    """The word of ``metric`` that decides its direction: the last one that is not a modifier.

    ``per X`` at the end is a rate (``loss_per_epoch`` is a loss), so it is skipped too.
    ``None`` when every word is a modifier.
    """
    words = tokens(metric)
    i = len(words) - 1
    while i >= 0:
        if i >= 1 and words[i - 1] == "per":
            i -= 2
            continue
        if not _is_modifier(words[i]):
            return words[i]
        i -= 1
    return None


def heuristic_direction(metric: str) -> Direction:
    """The direction the name suggests: ``"min"`` when its deciding word is a loss, error,
    time... (whole words only: ``power`` and ``answer_acc`` are not ``wer``), else ``"max"``.

    Only the LAST meaningful word decides, so ``best_loss_epoch`` (an epoch index) and
    ``lower_bound`` are ``"max"``. Trailing digits are ignored (``loss2`` is a loss).
    """
    word = deciding_token(metric)
    if word is None:
        return "max"
    if word in LOWER_IS_BETTER or word.rstrip("0123456789") in LOWER_IS_BETTER:
        return "min"
    return "max"


def parse_direction(value: Any, where: str) -> Direction:
    """``"min"`` or ``"max"`` for a written direction (also ``minimize``/``maximize``).

    Raises a one-line :class:`~nbtrack.errors.UsageError` naming ``where`` otherwise.
    """
    if isinstance(value, str):
        found = _SPELLINGS.get(value.strip().lower())
        if found is not None:
            return found
    raise UsageError(
        f'{where} = {value!r} is not a metric direction; use "min" or "max" '
        '(or "minimize" / "maximize")'
    )


def parse_goals(goals: Mapping[str, Any], where: str = "track.goal") -> dict[str, Direction]:
    """Validate declared directions ``{metric: "min" | "max"}``; one bad value is a UsageError."""
    return {str(k): parse_direction(v, f"{where}: {k}") for k, v in goals.items()}


def configured_goals(start: str | Path | None = None) -> dict[str, Direction]:
    """The ``[metrics]`` directions of the nearest ``nbtrack.toml`` (``{}`` when none).

    Raises :class:`~nbtrack.errors.UsageError` naming the file and key for a bad value.
    """
    from nbtrack.config import project_config

    found = project_config(start)
    if found is None:
        return {}
    path, data = found
    table = data.get("metrics", {})
    if not isinstance(table, dict):
        raise UsageError(f'{path}: [metrics] must be a table of metric = "min" | "max" lines')
    return {str(k): parse_direction(v, f"{path}: [metrics] {k}") for k, v in table.items()}


def resolve(
    metric: str,
    declared: Mapping[str, Direction] | None = None,
    configured: Mapping[str, Direction] | None = None,
) -> tuple[Direction, Source]:
    """``(direction, where it came from)`` for ``metric``: declared, then config, then name."""
    if declared and metric in declared:
        return declared[metric], "declared"
    if configured and metric in configured:
        return configured[metric], "config"
    return heuristic_direction(metric), "heuristic"


def direction(
    metric: str,
    declared: Mapping[str, Direction] | None = None,
    *,
    start: str | Path | None = None,
) -> Direction:
    """``"min"`` or ``"max"`` for ``metric``: ``declared``, then ``nbtrack.toml`` (looked up
    from ``start``, default the working directory), then the name heuristic.

    A bad ``nbtrack.toml`` is a :class:`~nbtrack.errors.UsageError`.
    """
    if declared and metric in declared:
        return declared[metric]
    return resolve(metric, None, configured_goals(start))[0]


def display_direction(metric: str) -> Direction:
    """:func:`direction` without declarations, for displays: a bad ``nbtrack.toml`` is
    ignored here (the name decides) rather than breaking a chart or a table."""
    try:
        return direction(metric)
    except UsageError:
        return heuristic_direction(metric)


def is_better(a: float, b: float, direction: Direction) -> bool:
    """Whether value ``a`` is strictly better than ``b``; NaN is never better."""
    if a != a:
        return False
    if b != b:
        return True
    return a < b if direction == "min" else a > b


def goal_entry(direction: Direction, source: Source) -> dict[str, str]:
    """How one metric's direction is stored with a run: ``{"direction": ..., "source": ...}``."""
    return {"direction": direction, "source": source}


def stored_direction(goals: Mapping[str, Any], metric: str) -> tuple[Direction, Source] | None:
    """The direction a run stored for ``metric`` (``None`` when it stored none, or garbage)."""
    entry = goals.get(metric)
    if isinstance(entry, dict):
        value = _SPELLINGS.get(str(entry.get("direction", "")).lower())
        source = entry.get("source")
        if value is not None:
            return value, source if source in ("declared", "config") else "heuristic"
    return None


def resolve_goals(
    metrics: Sequence[str] | Mapping[str, Any],
    declared: Mapping[str, Direction],
    configured: Mapping[str, Direction],
) -> dict[str, dict[str, str]]:
    """The goals a run stores: every metric it logged, plus every declared one."""
    names = list(dict.fromkeys([*metrics, *declared]))
    return {m: goal_entry(*resolve(m, declared, configured)) for m in names}


def runs_directions(
    goals_newest_first: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    configured: Mapping[str, Direction] | None = None,
) -> dict[str, Direction]:
    """One direction per metric for a set of runs (the compare widget's best values, sort).

    The newest run that stored a declared or configured direction wins; otherwise the rule
    as it stands now (``configured``, then the name), so editing ``nbtrack.toml`` re-judges
    old runs that relied on the heuristic.
    """
    out: dict[str, Direction] = {}
    for metric in metrics:
        for goals in goals_newest_first:
            found = stored_direction(goals, metric)
            if found is not None and found[1] != "heuristic":
                out[metric] = found[0]
                break
        else:
            out[metric] = resolve(metric, None, configured)[0]
    return out


__all__ = [
    "Direction",
    "LOWER_IS_BETTER",
    "MODIFIERS",
    "Source",
    "configured_goals",
    "deciding_token",
    "direction",
    "display_direction",
    "goal_entry",
    "heuristic_direction",
    "is_better",
    "parse_direction",
    "parse_goals",
    "resolve",
    "resolve_goals",
    "runs_directions",
    "stored_direction",
    "tokens",
]
