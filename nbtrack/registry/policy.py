"""The registry's policy: validation gates, approvals, who may promote or move an alias, and
hook commands, read from the project's config file.

Declared in the ``[registry]`` table of the nearest ``nbtrack.toml`` (read through
:func:`nbtrack.config.project_config`), or in the nearest ``.nbtrack/gates.toml`` (the same
tables without the ``registry.`` prefix) — one of the two, checked into the repository::

    [registry.stages.production]
    metrics = ["val_acc >= 0.95", "latency_ms <= 20"]
    better_than_production = { metric = "val_acc", by = 0.005 }
    inputs_match = ["X_test", "y_test"]
    run_finished = true
    verified = true
    clean_git = true
    approvals = 1
    approvers = ["ana@example.org", "ben@example.org"]
    self_approval = false
    promoters = ["ana@example.org", "ci-bot"]

    [registry.models.digits-classifier.stages.production]
    metrics = ["val_acc >= 0.97"]          # this model only; other keys as above

    [registry.aliases.champion]
    movers = ["ana@example.org"]

    [registry.hooks]
    promote = "python scripts/notify.py"   # the event as JSON on stdin

Every mistake (a syntax error, an unknown stage, key or operator, a value of the wrong
type) is one :class:`~nbtrack.errors.RegistryConfigError` line naming the file and the key.
A metric a gate names but the version never logged is caught when the gate is evaluated
(:mod:`nbtrack.registry.gates`), naming the same file and key.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nbtrack.errors import RegistryConfigError, UsageError
from nbtrack.registry.records import STAGES, Event, Stage

#: The file that may hold the policy instead of nbtrack.toml's [registry] table.
GATES_FILE = Path(".nbtrack") / "gates.toml"

#: Comparison operators a metric threshold may use.
OPERATORS = (">=", "<=", "==", "!=", ">", "<")
_THRESHOLD = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_./:-]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>\S+)\s*$"
)

#: What a stage's table may hold, and what each key means (for messages and docs).
STAGE_KEYS: dict[str, str] = {
    "metrics": 'thresholds, e.g. ["val_acc >= 0.95"]',
    "better_than_production": '{ metric = "val_acc", by = 0.005 } (or a list of them)',
    "inputs_match": '["X_test"] (same data as production) or { X_test = "xxh3_128:..." }',
    "run_finished": "true: the version's run must have finished",
    "verified": "true: `nbtrack export --verify` must have reproduced the run",
    "clean_git": "true: the run's git work tree must have had no uncommitted edits",
    "approvals": "how many approvals the stage needs, e.g. 2",
    "approvers": 'who may approve, e.g. ["ana@example.org"] (default: anyone)',
    "self_approval": "false: whoever registered a version may not approve it",
    "promoters": "who may move versions into or out of the stage (default: anyone)",
}
_TOP_KEYS = ("stages", "models", "aliases", "hooks")


@dataclass(frozen=True)
class Threshold:
    """``metric op value``: a bound the version's metric must meet."""

    metric: str
    op: str
    value: float
    key: str

    @property
    def text(self) -> str:
        """The gate as written."""
        return f"{self.metric} {self.op} {self.value:g}"

    def holds(self, actual: float) -> bool:
        """Whether ``actual`` meets the bound (NaN never does)."""
        if math.isnan(actual):
            return False
        return {
            ">=": actual >= self.value,
            "<=": actual <= self.value,
            ">": actual > self.value,
            "<": actual < self.value,
            "==": actual == self.value,
            "!=": actual != self.value,
        }[self.op]


@dataclass(frozen=True)
class BetterThanProduction:
    """The version must beat the production version on ``metric`` by at least ``by``
    (in the metric's own direction; ``by = 0`` means no worse)."""

    metric: str
    by: float
    key: str


@dataclass(frozen=True)
class StagePolicy:
    """Everything that governs moving a version of one model into one stage."""

    stage: Stage
    thresholds: tuple[Threshold, ...] = ()
    better_than_production: tuple[BetterThanProduction, ...] = ()
    inputs_match: tuple[str, ...] = ()  # names whose fingerprints must equal production's
    inputs_pinned: tuple[tuple[str, str], ...] = ()  # (name, hash) the inputs must have
    run_finished: bool = False
    verified: bool = False
    clean_git: bool = False
    approvals: int = 0
    approvers: tuple[str, ...] | None = None  # None: anyone
    self_approval: bool = True
    promoters: tuple[str, ...] | None = None  # None: anyone
    #: Where each key was declared: key -> "file: registry.stages.production.key".
    keys: dict[str, str] = field(default_factory=dict)

    def where(self, key: str) -> str:
        """``file: table.key`` for messages (``""`` when not declared)."""
        return self.keys.get(key, "")

    @property
    def has_gates(self) -> bool:
        """Whether any validation gate is declared."""
        return bool(
            self.thresholds
            or self.better_than_production
            or self.inputs_match
            or self.inputs_pinned
            or self.run_finished
            or self.verified
            or self.clean_git
        )


@dataclass(frozen=True)
class AliasPolicy:
    """Who may move one alias."""

    alias: str
    movers: tuple[str, ...] | None
    key: str


@dataclass(frozen=True)
class Policy:
    """The whole registry policy of a project; empty when none is declared."""

    source: Path | None = None
    stages: dict[Stage, StagePolicy] = field(default_factory=dict)
    models: dict[str, dict[Stage, StagePolicy]] = field(default_factory=dict)
    aliases: dict[str, AliasPolicy] = field(default_factory=dict)
    #: event name (or "*") -> commands, each an argv list, run after the event.
    hooks: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)

    def for_stage(self, model: str, stage: Stage) -> StagePolicy:
        """The policy for moving ``model``'s versions into ``stage``."""
        found = self.models.get(model, {}).get(stage)
        if found is not None:
            return found
        return self.stages.get(stage) or StagePolicy(stage)

    def for_alias(self, alias: str) -> AliasPolicy:
        """Who may move ``alias`` (anyone, unless declared)."""
        return self.aliases.get(alias) or AliasPolicy(alias, None, "")

    def hook_commands(self, event: str) -> tuple[tuple[str, ...], ...]:
        """The commands to run after ``event``: those declared for it, then for ``"*"``."""
        return self.hooks.get(event, ()) + self.hooks.get("*", ())


def allowed(user: str, users: tuple[str, ...] | None) -> bool:
    """Whether ``user`` is in ``users`` (``None``: everyone is). Case does not matter."""
    if users is None:
        return True
    wanted = user.casefold()
    return any(u.casefold() == wanted for u in users)


# -- reading the file ----------------------------------------------------------------------
_gates_cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}


def find_gates_file(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``.nbtrack/gates.toml`` in ``start`` (default: working directory) or above."""
    here = Path(start or os.getcwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / GATES_FILE
        if candidate.is_file():
            return candidate
    return None


def _read_gates_file(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        info = path.stat()
        key = (info.st_mtime_ns, info.st_size)
        cached = _gates_cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RegistryConfigError(f"{path} cannot be read ({exc}); fix the file") from None
    _gates_cache[path] = (key, data)
    return data


def load_policy(start: str | os.PathLike[str] | None = None) -> Policy:
    """The registry policy for the project around ``start`` (default: the working directory).

    ``nbtrack.toml``'s ``[registry]`` table, else ``.nbtrack/gates.toml``; declaring it in
    both is an error (which one would win is not obvious from either file).
    """
    from nbtrack.config import project_config

    try:
        found = project_config(start)
    except UsageError as exc:  # a TOML syntax error: one line naming the file
        raise RegistryConfigError(str(exc)) from None
    table: Any = None
    source: Path | None = None
    prefix = "registry."
    if found is not None and "registry" in found[1]:
        source, table = found[0], found[1]["registry"]
    gates = find_gates_file(start)
    if gates is not None:
        if source is not None:
            raise RegistryConfigError(
                f"the registry policy is declared twice, in {source} [registry] and in "
                f"{gates}; keep one of them"
            )
        source, table, prefix = gates, _read_gates_file(gates), ""
    if source is None:
        return Policy()
    return parse_policy(table, source, prefix)


def parse_policy(table: Any, source: Path, prefix: str = "registry.") -> Policy:
    """Validate a registry table (``prefix`` is how its keys are named in messages)."""
    where = f"{source}: {prefix.rstrip('.') or 'the file'}"
    _expect_table(table, where, "a table of stages, models, aliases and hooks")
    for key in table:
        if key not in _TOP_KEYS:
            raise RegistryConfigError(
                f"{source}: {prefix}{key}: unknown key; a registry policy has "
                f"{', '.join(_TOP_KEYS)}"
            )
    stage_tables = _stage_tables(table.get("stages", {}), source, f"{prefix}stages")
    stages = {s: _build(s, raw) for s, raw in stage_tables.items()}
    models: dict[str, dict[Stage, StagePolicy]] = {}
    model_tables = table.get("models", {})
    _expect_table(model_tables, f"{source}: {prefix}models", "a table per model")
    for model, body in model_tables.items():
        here = f"{prefix}models.{model}"
        _expect_table(body, f"{source}: {here}", "a table holding `stages`")
        for key in body:
            if key != "stages":
                raise RegistryConfigError(
                    f"{source}: {here}.{key}: unknown key; a model's table holds `stages`"
                )
        own = _stage_tables(body.get("stages", {}), source, f"{here}.stages")
        # A model's table refines the defaults key by key: declare only what differs.
        models[str(model)] = {
            s: _build(s, {**stage_tables.get(s, {}), **raw}) for s, raw in own.items()
        }
    aliases = {}
    alias_tables = table.get("aliases", {})
    _expect_table(alias_tables, f"{source}: {prefix}aliases", "a table per alias")
    for alias, body in alias_tables.items():
        key = f"{source}: {prefix}aliases.{alias}"
        _expect_table(body, key, "a table with `movers`")
        for name in body:
            if name != "movers":
                raise RegistryConfigError(f"{key}.{name}: unknown key; an alias has `movers`")
        movers = _users(body["movers"], f"{key}.movers") if "movers" in body else None
        aliases[str(alias)] = AliasPolicy(str(alias), movers, f"{key}.movers")
    hooks = _hooks(table.get("hooks", {}), f"{source}: {prefix}hooks")
    return Policy(source=source, stages=stages, models=models, aliases=aliases, hooks=hooks)


# Raw stage tables keep, per key, (value, "file: dotted.key") so that a model's table can
# be merged over the defaults and every message still names where a value came from.
_Raw = dict[str, tuple[Any, str]]


def _stage_tables(stages: Any, source: Path, here: str) -> dict[Stage, _Raw]:
    _expect_table(stages, f"{source}: {here}", "a table per stage")
    out: dict[Stage, _Raw] = {}
    for name, body in stages.items():
        try:
            stage = Stage(str(name))
        except ValueError:
            raise RegistryConfigError(
                f"{source}: {here}.{name}: unknown stage; stages are "
                f"{', '.join(str(s) for s in STAGES)}"
            ) from None
        key = f"{source}: {here}.{name}"
        _expect_table(body, key, "a table of gates and approvals")
        raw: _Raw = {}
        for item, value in body.items():
            if item not in STAGE_KEYS:
                raise RegistryConfigError(
                    f"{key}.{item}: unknown key; a stage may declare {', '.join(STAGE_KEYS)}"
                )
            raw[item] = (value, f"{key}.{item}")
        _build(stage, raw)  # validate now, so the defaults' errors name their own key
        out[stage] = raw
    return out


def _build(stage: Stage, raw: _Raw) -> StagePolicy:
    values: dict[str, Any] = {}
    keys = {name: where for name, (_value, where) in raw.items()}
    for name, (value, where) in raw.items():
        if name == "metrics":
            values["thresholds"] = tuple(_threshold(v, where) for v in _list(value, where))
        elif name == "better_than_production":
            items = value if isinstance(value, list) else [value]
            values[name] = tuple(_better(v, where) for v in items)
        elif name == "inputs_match":
            if isinstance(value, dict):
                values["inputs_pinned"] = tuple(
                    (str(k), _string(v, f"{where}.{k}")) for k, v in value.items()
                )
            else:
                values[name] = tuple(_string(v, where) for v in _list(value, where))
        elif name in ("run_finished", "verified", "clean_git", "self_approval"):
            values[name] = _bool(value, where)
        elif name == "approvals":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise RegistryConfigError(f"{where} = {value!r}: give a whole number >= 0")
            values[name] = value
        elif name in ("approvers", "promoters"):
            values[name] = _users(value, where)
    policy = replace(StagePolicy(stage), keys=keys, **values)
    if policy.approvers is not None and policy.approvals > len(policy.approvers):
        raise RegistryConfigError(
            f"{keys['approvals']} = {policy.approvals}: more approvals than approvers "
            f"({len(policy.approvers)}); lower it or name more approvers"
        )
    if stage == Stage.ARCHIVED and (policy.has_gates or policy.approvals):
        raise RegistryConfigError(
            f"{next(iter(keys.values()))}: archiving is never gated; declare gates for "
            "the stages a version is promoted into"
        )
    return policy


def _expect_table(value: Any, where: str, what: str) -> None:
    if not isinstance(value, dict):
        raise RegistryConfigError(f"{where} must be {what}, not {type(value).__name__}")


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise RegistryConfigError(
            f"{where} must be a list, e.g. {STAGE_KEYS[where.rsplit('.', 1)[-1]]}"
        )
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RegistryConfigError(f"{where}: {value!r} must be a non-empty string")
    return value.strip()


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise RegistryConfigError(f"{where} = {value!r}: write true or false")
    return value


def _users(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(u, str) and u.strip() for u in value):
        raise RegistryConfigError(
            f'{where} must be a list of user names, e.g. ["ana@example.org"] '
            "(as git config user.email or NBTRACK_USER gives them)"
        )
    return tuple(u.strip() for u in value)


def _threshold(text: Any, where: str) -> Threshold:
    match = _THRESHOLD.match(text) if isinstance(text, str) else None
    if match is None:
        raise RegistryConfigError(
            f"{where}: {text!r} is not a threshold; write METRIC OP NUMBER, e.g. "
            f'"val_acc >= 0.95" (OP is one of {" ".join(OPERATORS)})'
        )
    try:
        value = float(match["value"])
    except ValueError:
        raise RegistryConfigError(
            f"{where}: {text!r}: {match['value']!r} is not a number"
        ) from None
    return Threshold(match["metric"], match["op"], value, where)


def _better(value: Any, where: str) -> BetterThanProduction:
    if not isinstance(value, dict) or "metric" not in value:
        raise RegistryConfigError(
            f'{where} must be {{ metric = "val_acc", by = 0.005 }} (or a list of them)'
        )
    unknown = set(value) - {"metric", "by"}
    if unknown:
        raise RegistryConfigError(f"{where}.{sorted(unknown)[0]}: unknown key; use metric and by")
    by = value.get("by", 0.0)
    if isinstance(by, bool) or not isinstance(by, (int, float)) or by < 0 or by != by:
        raise RegistryConfigError(f"{where}.by = {by!r}: give a number >= 0")
    return BetterThanProduction(_string(value["metric"], f"{where}.metric"), float(by), where)


def _hooks(table: Any, where: str) -> dict[str, tuple[tuple[str, ...], ...]]:
    _expect_table(table, where, "a table of event = command")
    events = {str(e) for e in Event} | {"*"}
    out: dict[str, tuple[tuple[str, ...], ...]] = {}
    for event, value in table.items():
        if event not in events:
            raise RegistryConfigError(
                f"{where}.{event}: unknown event; use one of {', '.join(sorted(events))}"
            )
        commands = value if isinstance(value, list) else [value]
        parsed = []
        for command in commands:
            text = _string(command, f"{where}.{event}")
            try:
                argv = tuple(shlex.split(text))
            except ValueError as exc:
                raise RegistryConfigError(f"{where}.{event}: {text!r}: {exc}") from None
            parsed.append(argv)
        out[str(event)] = tuple(parsed)
    return out


__all__ = [
    "AliasPolicy",
    "BetterThanProduction",
    "GATES_FILE",
    "OPERATORS",
    "Policy",
    "STAGE_KEYS",
    "StagePolicy",
    "Threshold",
    "allowed",
    "find_gates_file",
    "load_policy",
    "parse_policy",
]
