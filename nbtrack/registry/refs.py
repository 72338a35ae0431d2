"""How models, versions and aliases are named, and how a reference to a version is read.

A reference names one version of a model:

``digits-classifier/3`` or ``models:/digits-classifier/3``
    version 3;
``digits-classifier@production`` or ``models:/digits-classifier/production``
    the version in a stage (production holds at most one; for other stages, the newest);
``digits-classifier@champion`` or ``models:/digits-classifier@champion``
    the version an alias points at;
``digits-classifier@latest``
    the newest version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nbtrack.errors import UsageError
from nbtrack.registry.records import STAGES

#: Model and alias names: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or
#: digit. No ``/``, ``@`` or ``:``, so a reference reads one way only.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Selectors that are not aliases.
RESERVED_SELECTORS = frozenset({"latest", *(str(s) for s in STAGES)})
_PREFIX = "models:/"


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model name, else a one-line :class:`UsageError`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError(
            f"{name!r} is not a model name: use letters, digits, '.', '_' and '-' "
            "(at most 128, starting with a letter or digit), e.g. digits-classifier"
        )
    return name


def check_alias_name(alias: str) -> str:
    """``alias`` if it can name an alias (not a stage, not ``latest``, not a number)."""
    if not isinstance(alias, str) or not _NAME.fullmatch(alias) or alias.isdigit():
        raise UsageError(
            f"{alias!r} is not an alias name: use letters, digits, '.', '_' and '-', "
            "not only digits, e.g. champion"
        )
    if alias.lower() in RESERVED_SELECTORS:
        raise UsageError(
            f"{alias!r} cannot be an alias: it already means a stage or the newest version "
            f"(reserved: {', '.join(sorted(RESERVED_SELECTORS))}); pick another name, e.g. prod"
        )
    return alias


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: a model and either a version number or a selector."""

    model: str
    version: int | None = None
    selector: str | None = None  # a stage, an alias, or "latest"

    def __str__(self) -> str:
        return (
            f"{self.model}/{self.version}"
            if self.version is not None
            else (f"{self.model}@{self.selector}")
        )


def parse_ref(text: str) -> ModelRef:
    """Read a reference (see the module's docstring); a bad one is a one-line UsageError."""
    raw = str(text).strip()
    body = raw[len(_PREFIX) :] if raw.startswith(_PREFIX) else raw
    if "@" in body:
        name, _, selector = body.partition("@")
        check_model_name(name)
        if selector.isdigit():
            return ModelRef(name, version=int(selector))
        if not selector or not _NAME.fullmatch(selector):
            raise _bad_ref(raw)
        lowered = selector.lower()
        return ModelRef(name, selector=lowered if lowered in RESERVED_SELECTORS else selector)
    if "/" in body:
        name, _, tail = body.partition("/")
        check_model_name(name)
        if tail.isdigit() and len(tail) < 12:
            return ModelRef(name, version=int(tail))
        if raw.startswith(_PREFIX) and tail.lower() in RESERVED_SELECTORS:
            return ModelRef(name, selector=tail.lower())  # MLflow's models:/name/Production
        raise _bad_ref(raw)
    raise _bad_ref(raw)


def _bad_ref(raw: str) -> UsageError:
    return UsageError(
        f"{raw!r} does not name a model version; write NAME/3, NAME@production, "
        "NAME@<alias>, NAME@latest or models:/NAME/3"
    )


__all__ = [
    "ModelRef",
    "RESERVED_SELECTORS",
    "check_alias_name",
    "check_model_name",
    "parse_ref",
]
