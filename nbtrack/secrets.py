"""The one rule for what looks secret, by name and by value, and redacting it.

Every writer that could carry a credential into the store asks here: the environment
capture (variable names), the parameter capture (names *and* values typed into a cell),
the stored code and history, notes, tags, error messages and tracebacks, git remotes,
artifacts' metadata, the exporter, and ``nbtrack scan``. Beyond the standard library this
module only uses :mod:`nbtrack.pyast.positions` (to edit literals in code) and, to read
the project's ``[secrets]`` table, :mod:`nbtrack.config` and :mod:`nbtrack.errors`.

Two kinds of names are judged differently, on purpose:

* **environment variables** (``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``) are matched by
  *substring* of :data:`ENV_SECRET_MARKERS`: a false positive only drops a harmless
  variable from the record, a false negative leaks a credential;
* **names in code** (``api_key = "..."``, ``password = ...``) are matched by *whole token*
  (``max_tokens``, ``keyboard`` and ``monkey`` are ordinary parameters, ``hf_token`` and
  ``openai_api_key`` are not), because a false positive there hides a real parameter.

Values are matched against the formats of common credentials (:data:`VALUE_RULES`),
whatever name holds them. A secret-named value that holds no text (``use_auth_token =
True``, ``token_count = 5``) is no secret and is kept.

The project's ``nbtrack.toml`` may add names and patterns (:func:`project_rules`)::

    [secrets]
    names = ["wandb", "session_id"]      # extra whole-token names in code
    patterns = ['acme-[0-9a-f]{32}']     # extra value formats (Python regexes)
"""

from __future__ import annotations

import ast
import functools
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "REDACTED",
    "ENV_SECRET_MARKERS",
    "VALUE_RULES",
    "VALUE_PATTERNS",
    "URL_PASSWORD_RULE",
    "KNOWN_VALUE_RULE",
    "SecretRules",
    "LiteralSite",
    "SecretLiteral",
    "DEFAULT_RULES",
    "Redactor",
    "is_secret_env_name",
    "secret_env_values",
    "is_secret_name",
    "looks_secret",
    "redact_text",
    "holds_secret",
    "literal_sites",
    "secret_literals",
    "outermost_spans",
    "rules_from_table",
    "project_rules",
]

#: What a secret is replaced with, everywhere.
REDACTED = "<redacted>"

#: Substrings (upper case) that make an *environment variable* name a secret.
ENV_SECRET_MARKERS: tuple[str, ...] = (
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
    "SESSION",
    "COOKIE",
    "CERT",
)

# Whole tokens of a name in code that make it secret on their own.
_SECRET_TOKENS = frozenset(
    {
        "token",
        "secret",
        "secrets",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "credential",
        "credentials",
        "auth",
        "apikey",
        "private",
        "pat",
        "cookie",
    }
)
# "key" is a secret only next to one of these ("api_key", "access_key"): "sort_key" and
# "key_size" are ordinary parameters.
_KEY_QUALIFIERS = frozenset({"api", "access", "secret", "private", "client", "signing", "auth"})

_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

#: Formats of common credentials, matched anywhere in a text: ``(rule name, pattern)``.
#: The rule name is what ``nbtrack scan`` prints (never the value).
VALUE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("OpenAI/Anthropic key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}")),
    ("GitHub token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}")),
    ("GitHub fine-grained token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{20,}")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    (
        "PEM private key",
        re.compile(
            r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----.*?"
            r"(?:-----END (?:[A-Z]+ )*PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
    ),
)
# Text each built-in format must contain: a substring test is far cheaper than a regex
# search, and most cells contain none of these, so most texts skip every regex.
_HINTS: dict[str, tuple[str, ...]] = {
    "OpenAI/Anthropic key": ("sk-",),
    "GitHub token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    "GitHub fine-grained token": ("github_pat_",),
    "Hugging Face token": ("hf_",),
    "AWS access key id": ("AKIA", "ASIA"),
    "Slack token": ("xox",),
    "GitLab token": ("glpat-",),
    "JWT": ("eyJ",),
    "PEM private key": ("PRIVATE KEY-----",),
}


def _may_match(rule: str, text: str) -> bool:
    hints = _HINTS.get(rule)
    return hints is None or any(hint in text for hint in hints)


# Every hint in one regex: one C-level search tells that a text (a run name, a path, an
# argv item: a dozen per run start) holds none of them, instead of a generator per rule.
_ANY_HINT = re.compile("|".join(re.escape(h) for hints in _HINTS.values() for h in hints))
# The built-in rules that have no hint (none today): checked on every text.
_UNHINTED_RULES = tuple((rule, p) for rule, p in VALUE_RULES if rule not in _HINTS)


#: The patterns of :data:`VALUE_RULES`, without their names.
VALUE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(p for _, p in VALUE_RULES)

#: The rule name of a password inside a URL (``scheme://user:password@host``).
URL_PASSWORD_RULE = "password in a URL"

# scheme://user:password@host: only the password is replaced.
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)([^/\s@]+)(@)")
# ...?password=…: libpq (postgresql:// URLs) takes the password as a query parameter too.
_URL_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)([^&\s#'\"]+)")

#: The rule name of a value that is secret because it was found as a secret elsewhere (a
#: password typed into one cell, repeated in an error message).
KNOWN_VALUE_RULE = "a secret value found elsewhere"

# A known secret value shorter than this is not replaced wherever it appears (redacting
# "test" everywhere would mangle code); its own literal is still redacted where it is bound.
MIN_VALUE_LENGTH = 6

_WORD_CHAR = re.compile(r"\w")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _tokens(name: str) -> tuple[str, ...]:
    return tuple(t.lower() for t in _SPLIT.split(name) if t)


@functools.lru_cache(maxsize=8192)
def _name_rule(name: str, extra: tuple[tuple[str, ...], ...]) -> str | None:
    """Which rule makes ``name`` (in code) secret: ``name 'password'``, or None."""
    tokens = _tokens(name)
    for token in tokens:
        if token in _SECRET_TOKENS:
            return f"name {token!r}"
    for i, token in enumerate(tokens):
        if token == "key" and i > 0 and tokens[i - 1] in _KEY_QUALIFIERS:
            return f"name '{tokens[i - 1]}_key'"
    for wanted in extra:
        size = len(wanted)
        if any(tokens[i : i + size] == wanted for i in range(len(tokens) - size + 1)):
            return f"configured name {'_'.join(wanted)!r}"
    return None


def holds_secret(value: object) -> bool:
    """Whether a value bound to a secret name can hold a secret: text (a string, bytes, or
    a container with some). A number, bool or None is kept (``use_auth_token = True``
    says how to authenticate, not with what; ``token_count = 5`` counts)."""
    if isinstance(value, str | bytes):
        return True
    if isinstance(value, list | tuple | set | frozenset):
        return any(holds_secret(item) for item in value)
    if isinstance(value, dict):
        return any(holds_secret(item) for item in value.values())
    return False


@dataclass(frozen=True)
class SecretRules:
    """The rules in force: the built-in ones plus a project's extra names and patterns.

    ``names`` are extra whole-token names (each as its lower-case tokens); ``patterns``
    are extra value formats as ``(rule name, compiled regex)``.
    """

    names: tuple[tuple[str, ...], ...] = ()
    patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()

    def __hash__(self) -> int:
        # Hashed on every cached code pass, i.e. once per history cell on every tracked
        # cell: the generated hash would rehash every field each time, so keep it.
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.names, self.patterns))
            object.__setattr__(self, "_hash", cached)
        return cached

    def name_rule(self, name: str) -> str | None:
        """The rule that makes ``name`` (a name in code) secret, or None."""
        return _name_rule(name, self.names)

    def is_secret_name(self, name: str) -> bool:
        """Whether ``name`` (a variable, parameter, keyword, key) looks secret."""
        return _name_rule(name, self.names) is not None

    @property
    def value_rules(self) -> tuple[tuple[str, re.Pattern[str]], ...]:
        """Every value format in force: the built-in ones, then the project's."""
        return VALUE_RULES + self.patterns

    def value_rule(self, text: str) -> str | None:
        """The first rule a credential format in ``text`` matches, or None.

        What was already redacted does not match again, so a redacted store scans clean.
        """
        if len(text) < 8:
            return None
        for rule, pattern in self._rules_for(text):
            if not _may_match(rule, text):
                continue
            for match in pattern.finditer(text):
                if match.group(0) and match.group(0) not in REDACTED:
                    return rule
        if "://" in text:
            for pattern in (_URL_PASSWORD, _URL_QUERY_PASSWORD):
                for match in pattern.finditer(text):
                    if match.group(2) != REDACTED:
                        return URL_PASSWORD_RULE
        return None

    def _rules_for(self, text: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
        """The value rules that may match ``text``: the built-in ones only when one of
        their hints is in it (most texts hold none), the project's always."""
        if _ANY_HINT.search(text) is not None:
            return self.value_rules
        return _UNHINTED_RULES + self.patterns if _UNHINTED_RULES else self.patterns

    def looks_secret(self, value: object) -> bool:
        """True when ``value`` is a string holding something in a credential format."""
        return isinstance(value, str) and self.value_rule(value) is not None

    def redact_text(self, text: str, values: Iterable[str] = ()) -> str:
        """``text`` with credential formats and each of ``values`` replaced by
        :data:`REDACTED` (a URL keeps its user and host, only the password goes).

        Returns ``text`` itself (the same object) when nothing matched, so callers that
        memoise by identity stay effective.
        """
        out = _replace_values(text, tuple(values)) if values else text
        if len(out) >= 8:
            for rule, pattern in self._rules_for(out):
                if _may_match(rule, out) and pattern.search(out):
                    out = pattern.sub(_redact_match, out)
            if "://" in out and _URL_PASSWORD.search(out):
                out = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), out)
            if "://" in out and _URL_QUERY_PASSWORD.search(out):
                out = _URL_QUERY_PASSWORD.sub(lambda m: m.group(1) + REDACTED, out)
        return text if out == text else out


def _redact_match(match: re.Match[str]) -> str:
    # A project pattern may match the marker itself; leave it as it is (idempotence).
    return match.group(0) if match.group(0) in REDACTED else REDACTED


@functools.lru_cache(maxsize=256)
def _values_pattern(values: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for all ``values``, longest first; a value that starts (ends) with a word
    character matches only where no word character precedes (follows) it, so a secret
    "hunter2" is not cut out of "hunter22"."""
    parts = []
    for value in sorted(set(values), key=len, reverse=True):
        if len(value) < MIN_VALUE_LENGTH or value == REDACTED:
            continue
        before = r"(?<!\w)" if _WORD_CHAR.match(value[0]) else ""
        after = r"(?!\w)" if _WORD_CHAR.match(value[-1]) else ""
        parts.append(before + re.escape(value) + after)
    return re.compile("|".join(parts)) if parts else None


@functools.lru_cache(maxsize=8192)
def _cached_values(text: str, values: tuple[str, ...]) -> str:
    return _replace_values(text, values)


# A run writes the same short texts again and again (its name, tags, working directory,
# script path, argv, user): each is redacted once per rules and known values, then looked
# up (~20 texts per run start and finish).
_SHORT_TEXT = 512


@functools.lru_cache(maxsize=4096)
def _cached_text(rules: SecretRules, text: str, values: tuple[str, ...]) -> str:
    return rules.redact_text(text, values)


def _replace_values(text: str, values: tuple[str, ...]) -> str:
    # A substring test first: the regex's look-arounds make it slow to search with, and
    # almost every text holds none of the values.
    if not any(value in text for value in values):
        return text
    pattern = _values_pattern(values)
    if pattern is None or not pattern.search(text):
        return text
    return pattern.sub(REDACTED, text)


#: The built-in rules, without a project's additions.
DEFAULT_RULES = SecretRules()


#: Names the substring rule would catch that hold no secret: Jupyter puts the notebook's path
#: in JPY_SESSION_NAME, and redacting that path everywhere hid every run from the Runs panel.
ENV_NOT_SECRET: frozenset[str] = frozenset({"JPY_SESSION_NAME"})


def is_secret_env_name(name: str) -> bool:
    """True when an environment variable name looks like it holds a secret (substring rule)."""
    upper = name.upper()
    if upper in ENV_NOT_SECRET:
        return False
    return any(marker in upper for marker in ENV_SECRET_MARKERS)


def secret_env_values(min_length: int = MIN_VALUE_LENGTH) -> list[str]:
    """The values of this process's secret-named environment variables (by
    :func:`is_secret_env_name`), longest first; values shorter than ``min_length`` are left
    out (redacting "1" or "true" everywhere would mangle code without protecting anything).

    Every run start asks, and decoding and judging every variable cost ~0.2 ms; the answer
    is kept with a copy of ``os.environ``'s own table and reused only while that table is
    equal to the copy, so a variable set, changed or removed (``os.environ[...] = ...``,
    ``%env``) is seen by the next call.
    """
    table = getattr(os.environ, "_data", None)  # CPython's os.environ keeps its raw table here
    if not isinstance(table, dict):
        return _scan_env(min_length)
    cached = _env_scans.get(min_length)
    # Equal tables hold the same objects, so this is a pointer comparison per variable.
    if cached is not None and cached[0] == table:
        return list(cached[1])
    snapshot = dict(table)
    found = _scan_env(min_length)
    _env_scans[min_length] = (snapshot, tuple(found))
    return found


def _scan_env(min_length: int) -> list[str]:
    found = {
        value
        for name, value in os.environ.items()
        if len(value) >= min_length and is_secret_env_name(name)
    }
    return sorted(found, key=len, reverse=True)


# min_length -> (os.environ's table when scanned, the secret values found then).
_env_scans: dict[int, tuple[dict[Any, Any], tuple[str, ...]]] = {}


def is_secret_name(name: str) -> bool:
    """True when a name in code (a variable, a parameter, a keyword) looks secret.

    Matching is by whole token of the name split at ``_``, ``-``, ``.`` and camelCase:
    ``hf_token``, ``OPENAI_API_KEY``, ``dbPassword``, ``github_pat`` are secret;
    ``max_tokens``, ``tokenizer``, ``keyboard``, ``sort_key`` are not.
    """
    return DEFAULT_RULES.is_secret_name(name)


def looks_secret(value: object) -> bool:
    """True when ``value`` is a string holding something in a known credential format."""
    return DEFAULT_RULES.looks_secret(value)


def redact_text(text: str, values: Iterable[str] = ()) -> str:
    """``text`` with known credential formats and each of ``values`` replaced by
    :data:`REDACTED` (a URL keeps its user and host, only the password goes).

    Returns ``text`` itself (the same object) when nothing matched, so callers that memoise
    by identity stay effective.
    """
    return DEFAULT_RULES.redact_text(text, values)


# --------------------------------------------------------------------------- config


def rules_from_table(table: object, where: str) -> SecretRules:
    """The rules a ``[secrets]`` table asks for (``names`` and ``patterns`` lists).

    ``where`` names the table in errors. A bad entry (not a list of strings, a regex that
    does not compile) is a one-line :class:`~nbtrack.errors.UsageError`.
    """
    from nbtrack.errors import UsageError

    if not isinstance(table, Mapping):
        raise UsageError(f"{where} must be a table with `names` and `patterns` lists")
    unknown = sorted(set(table) - {"names", "patterns"})
    if unknown:
        raise UsageError(
            f"{where} has unknown key(s) {', '.join(unknown)}; it takes `names` and `patterns`"
        )
    names: list[tuple[str, ...]] = []
    for index, name in enumerate(_string_list(table.get("names", []), f"{where} names")):
        tokens = _tokens(name)
        if not tokens:
            raise UsageError(f"{where} names[{index}] {name!r} has no letters or digits")
        names.append(tokens)
    patterns: list[tuple[str, re.Pattern[str]]] = []
    for index, text in enumerate(_string_list(table.get("patterns", []), f"{where} patterns")):
        try:
            compiled = re.compile(text)
        except re.error as exc:
            raise UsageError(
                f"{where} patterns[{index}] {text!r} is not a valid regular expression "
                f"({exc}); fix it or remove it"
            ) from None
        if compiled.search(""):
            raise UsageError(
                f"{where} patterns[{index}] {text!r} matches empty text, so it would "
                "match everywhere; make it match the secret itself"
            )
        patterns.append((f"configured pattern {text!r}", compiled))
    return SecretRules(tuple(names), tuple(patterns))


def _string_list(value: object, where: str) -> list[str]:
    from nbtrack.errors import UsageError

    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f'{where} must be a list of strings, e.g. ["wandb"]')
    return list(value)


def project_rules(start: str | os.PathLike[str] | None = None) -> SecretRules:
    """The rules for the project around ``start`` (default: the working directory): the
    built-in ones plus the ``[secrets]`` table of the nearest ``nbtrack.toml``.

    Raises :class:`~nbtrack.errors.UsageError` (one line naming the file) for a bad table.
    """
    from nbtrack.projectfile import project_config

    found = project_config(start)
    if found is None or "secrets" not in found[1]:
        return DEFAULT_RULES
    path, data = found
    return rules_from_table(data["secrets"], f"{path}: [secrets]")


# --------------------------------------------------------------------------- code


@dataclass(frozen=True)
class LiteralSite:
    """A literal in code and the name code gives it: its value, its character span in the
    source, and whether it is a bare word on a line of IPython syntax (``--set pw=abc``)
    rather than a Python literal."""

    name: str
    value: object
    start: int
    end: int
    bare: bool = False


@dataclass(frozen=True)
class SecretLiteral:
    """A literal in code that holds a secret, and the rule that says so."""

    site: LiteralSite
    rule: str


# A line of IPython syntax (magic, shell escape): not Python, but may hold NAME=VALUE.
_MAGIC_LINE = re.compile(r"(?m)^[ \t]*[%!].*$")
_MAGIC_ASSIGNMENT = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*"
    r"(?P<value>'[^'\n]*'|\"[^\"\n]*\"|[^\s'\"]+)"
)
# For code that does not parse: ``name = "value"``, ``name="value"``, ``"name": "value"``.
_TEXT_ASSIGNMENT = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)['\"]?\]?[ \t]*(?:==?|:=?)[ \t]*[rRbBuU]{0,2}"
    r"(?P<value>'[^'\n]*'|\"[^\"\n]*\")"
)


def literal_sites(source: str) -> list[LiteralSite]:
    """Every literal in ``source`` that code gives a name, in no particular order.

    A literal is *given a name* by an assignment (``x = 1``, ``x: str = ...``,
    ``cfg.x = ...``, ``env["X"] = ...``, a tuple unpacked element by element), a keyword
    argument (``f(x=...)``), a dict entry (``{"x": ...}``), a parameter default, a
    comparison (``x == ...``) or ``os.environ.setdefault("X", ...)``. Lines of IPython
    syntax (``%env X=...``, ``%%track --set x=...``) count as ``X = ...``. Code that does
    not parse is read line by line for ``x = "..."`` and ``"x": "..."``.
    """
    masked = _MAGIC_LINE.sub(lambda m: _mask_magic(m.group(0)), source)
    sites: list[LiteralSite] = []
    for line in _MAGIC_LINE.finditer(source):
        for found in _MAGIC_ASSIGNMENT.finditer(line.group(0)):
            text = found.group("value")
            quoted = text[:1] in "'\""
            start = line.start() + found.start("value")
            value = text[1:-1] if quoted else text
            sites.append(LiteralSite(found.group("name"), value, start, start + len(text), True))
    tree = _parse(masked)
    if tree is None:
        for found in _TEXT_ASSIGNMENT.finditer(masked):
            text = found.group("value")
            start = found.start("value")
            sites.append(LiteralSite(found.group("name"), text[1:-1], start, start + len(text)))
        return sites
    from nbtrack.pyast.positions import line_starts, node_span

    starts = line_starts(source)
    seen: set[int] = set()
    for name, node in _named_literals(tree):
        if id(node) in seen:
            continue  # one value, two names (``a = b = "x"``): one site
        ok, value = _literal(node)
        if ok:
            seen.add(id(node))
            start, end = node_span(source, starts, node)
            sites.append(LiteralSite(name, value, start, end))
    return sites


def _mask_magic(line: str) -> str:
    # Same length, so ast positions in the masked text are positions in the source.
    stripped = len(line) - len(line.lstrip())
    return line[:stripped] + "#" + line[stripped + 1 :]


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _is_str_constant(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _literal(node: ast.expr) -> tuple[bool, object]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _target_pairs(target: ast.expr, value: ast.expr) -> Iterator[tuple[str, ast.expr]]:
    if isinstance(target, ast.Name):
        yield target.id, value
    elif isinstance(target, ast.Attribute):
        yield target.attr, value
    elif isinstance(target, ast.Subscript):
        if isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str):
            yield target.slice.value, value
    elif (
        isinstance(target, ast.Tuple | ast.List)
        and isinstance(value, ast.Tuple | ast.List)
        and len(target.elts) == len(value.elts)
    ):
        for sub_target, sub_value in zip(target.elts, value.elts, strict=True):
            yield from _target_pairs(sub_target, sub_value)


def _named_literals(tree: ast.AST) -> Iterator[tuple[str, ast.expr]]:
    """``(name, value node)`` for every place code gives a value a name (see
    :func:`literal_sites`); value nodes may be any expression."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield from _target_pairs(target, node.value)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.NamedExpr):
            if node.value is not None:
                yield from _target_pairs(node.target, node.value)
        elif isinstance(node, ast.keyword):
            if node.arg:
                yield node.arg, node.value
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    yield key.value, value
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for left, right in zip(operands, operands[1:], strict=False):
                for a, b in ((left, right), (right, left)):
                    if isinstance(a, ast.Name | ast.Attribute):
                        yield (a.id if isinstance(a, ast.Name) else a.attr), b
        elif isinstance(node, ast.arguments):
            positional = [*node.posonlyargs, *node.args]
            if node.defaults:
                for arg, default in zip(positional[-len(node.defaults) :], node.defaults):
                    yield arg.arg, default
            for arg, kw_default in zip(node.kwonlyargs, node.kw_defaults, strict=True):
                if kw_default is not None:
                    yield arg.arg, kw_default
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("setdefault", "putenv")
            and len(node.args) >= 2
            and _is_str_constant(node.args[0])
        ):
            key = node.args[0]
            assert isinstance(key, ast.Constant)
            yield str(key.value), node.args[1]


def secret_literals(source: str, rules: SecretRules = DEFAULT_RULES) -> list[SecretLiteral]:
    """The literals in ``source`` that hold a secret: given a secret name (and not a
    bool or None), or a string in a credential format given any name.

    A credential in a string that no name is given (``connect("sk-...")``) is not listed:
    :meth:`SecretRules.redact_text` replaces just the credential inside it. Literals that
    are already :data:`REDACTED` are not listed.
    """
    found: list[SecretLiteral] = []
    for site in literal_sites(source):
        if site.value == REDACTED:
            continue
        rule = rules.name_rule(site.name)
        if rule is not None and holds_secret(site.value):
            found.append(SecretLiteral(site, rule))
        elif isinstance(site.value, str):
            format_rule = rules.value_rule(site.value)
            if format_rule is not None:
                found.append(SecretLiteral(site, format_rule))
    return found


def _leaf_strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, int | float | complex) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _leaf_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaf_strings(item)


def _has_candidate(source: str, rules: SecretRules) -> bool:
    """A cheap first look: could ``source`` bind a secret? (Most cells cannot, and this
    skips parsing them.)"""
    if "=" not in source and ":" not in source and "(" not in source:
        return False
    if any(rules.is_secret_name(word) for word in set(_IDENTIFIER.findall(source))):
        return True
    # A credential format bound to an ordinary name (``key = "sk-..."``) is found too.
    return rules.value_rule(source) is not None


@functools.lru_cache(maxsize=4096)
def _code_pass(source: str, rules: SecretRules) -> tuple[str, tuple[str, ...]]:
    """``source`` with each secret literal replaced by ``'<redacted>'`` and credential
    formats redacted, and the secret values found. Cached: a kernel's history is the same
    texts from one run to the next."""
    if not _has_candidate(source, rules):
        return rules.redact_text(source), ()
    literals = secret_literals(source, rules)
    if not literals:
        return rules.redact_text(source), ()
    from nbtrack.pyast.positions import apply_edits

    # A bare word on a magic line stays bare (``--set pw=<redacted>`` is a plain string
    # there); a Python literal becomes the string literal '<redacted>'.
    edits = {
        (lit.site.start, lit.site.end): REDACTED if lit.site.bare else repr(REDACTED)
        for lit in literals
    }
    try:
        edited = apply_edits(source, [(s, e, t) for (s, e), t in edits.items()])
    except ValueError:  # nested: a secret dict entry inside a secret-named dict
        edited = apply_edits(source, [(s, e, edits[(s, e)]) for s, e in outermost_spans(edits)])
    values = tuple(dict.fromkeys(v for lit in literals for v in _leaf_strings(lit.site.value)))
    return rules.redact_text(edited, values), values


def outermost_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` (start, end) without those inside an earlier, larger one, in order."""
    kept: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda span: (span[0], -span[1])):
        if kept and start < kept[-1][1]:
            continue
        kept.append((start, end))
    return kept


# --------------------------------------------------------------------------- redactor


class Redactor:
    """Redacts texts, code and values by one set of rules and one set of known secrets.

    ``values`` are secret values known up front (a process's secret environment
    variables); :meth:`learn_code` and :meth:`learn_params` add those found in code and
    parameters, so a password typed in one cell is also removed from a later error
    message, note or cell that repeats it.
    """

    def __init__(self, rules: SecretRules = DEFAULT_RULES, values: Iterable[str] = ()) -> None:
        """Redact by ``rules``, with ``values`` as known secrets."""
        self.rules = rules
        self._values: tuple[str, ...] = ()
        self.add_values(values)

    @property
    def values(self) -> tuple[str, ...]:
        """The known secret values (long enough to be replaced wherever they appear)."""
        return self._values

    def add_values(self, values: Iterable[str]) -> None:
        """Know more secret values."""
        fresh = [
            v
            for v in values
            if isinstance(v, str) and len(v) >= MIN_VALUE_LENGTH and v not in self._values
        ]
        if fresh:
            self._values = tuple(sorted({*self._values, *fresh}, key=len, reverse=True))

    def learn_code(self, sources: Iterable[str]) -> None:
        """Know the values of the secret literals in ``sources``."""
        for source in sources:
            if source:
                self.add_values(_code_pass(source, self.rules)[1])

    def code_many(self, sources: Sequence[str]) -> list[str]:
        """:meth:`learn_code` then :meth:`code` for each of ``sources``, in one pass over
        the cache (a run's code and its whole history, on every tracked cell)."""
        passes = [_code_pass(source, self.rules) if source else (source, ()) for source in sources]
        for _, found in passes:
            if found:
                self.add_values(found)
        values = self._values
        if not values:
            return [edited for edited, _ in passes]
        return [_cached_values(edited, values) if edited else edited for edited, _ in passes]

    def learn_params(self, params: Mapping[str, Any]) -> None:
        """Know the values of the parameters that are secret (by name or by format)."""
        for name, value in params.items():
            if self.is_secret_param(name, value):
                self.add_values(_leaf_strings(value))

    def text(self, text: str) -> str:
        """``text`` with credential formats and the known values redacted (the same
        object when nothing matched)."""
        if len(text) <= _SHORT_TEXT:
            return _cached_text(self.rules, text, self._values)
        return self.rules.redact_text(text, self._values)

    def code(self, source: str) -> str:
        """``source`` (Python, or a cell with IPython syntax) with each secret literal
        replaced by ``'<redacted>'``, and then as :meth:`text`.

        Cached by text: a kernel's history is the same texts from one run to the next, and
        the result is then the same object too (the store's text-hash memo keeps working).
        """
        if not source:
            return source
        edited, _ = _code_pass(source, self.rules)
        return _cached_values(edited, self._values) if self._values else edited

    def magic_line(self, line: str) -> str:
        """A magic's option line (``--set password=abc --name x``, as ``extra`` keeps the
        ``%%track`` line) with each secret-named ``NAME=VALUE`` redacted, however short the
        value, and then as :meth:`text`."""
        if "\n" in line or "\r" in line:
            return self.text(line)
        return self.code("%" + line)[1:]

    def is_secret_param(self, name: str, value: object) -> bool:
        """Whether a parameter is recorded as :data:`REDACTED`: a secret name (and a value
        that can hold a secret), a value in a credential format, or already redacted."""
        if value == REDACTED:
            return True
        if self.rules.is_secret_name(name) and holds_secret(value):
            return True
        return any(
            self.rules.value_rule(leaf) is not None or REDACTED in leaf
            for leaf in _leaf_strings(value)
        )

    def params(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """``(params with each secret one replaced by REDACTED, the names replaced)``."""
        out: dict[str, Any] = {}
        redacted: list[str] = []
        for name, value in params.items():
            if self.is_secret_param(str(name), value):
                out[name] = REDACTED
                redacted.append(str(name))
            else:
                out[name] = self.value(value, names=True)
        return out, redacted

    def value(self, value: Any, *, names: bool = False) -> Any:
        """A JSON-like ``value`` with every string redacted as :meth:`text`.

        With ``names``, a dict entry whose key is a secret name is redacted whole (for
        user-chosen keys: parameters, ``--set`` overrides; not for fixed schemas such as
        the environment's package table, where ``google-auth`` is a package).
        """
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list | tuple):
            return [self.value(v, names=names) for v in value]
        if isinstance(value, dict):
            return {
                k: (
                    REDACTED
                    if names and self.rules.is_secret_name(str(k)) and holds_secret(v)
                    else self.value(v, names=names)
                )
                for k, v in value.items()
            }
        return value

    def argv(self, argv: Sequence[str]) -> list[str]:
        """A command line with the value of each secret-named flag redacted
        (``--password X``, ``--api-key=X``), and then each argument as :meth:`text`."""
        out: list[str] = []
        secret_next = False
        for arg in argv:
            arg = str(arg)
            if secret_next:
                out.append(REDACTED)
                secret_next = False
                continue
            if arg.startswith("-"):
                flag, eq, _ = arg.lstrip("-").partition("=")
                if self.rules.is_secret_name(flag):
                    if eq:
                        out.append(arg[: arg.index("=") + 1] + REDACTED)
                        continue
                    secret_next = True
            out.append(self.text(arg))
        return out

    def fields(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """A run's columns (as :meth:`nbtrack.store.sqlite.Store.update_run` takes them) as
        the store may hold them: ``params`` by :meth:`params`, ``extra`` with secret-named
        keys and ``argv`` flags redacted, and every other text column or JSON value as
        :meth:`value`. Numbers, hashes, metrics, goals and history references pass as they
        are. A column added later is redacted by default."""
        out: dict[str, Any] = {}
        for column, value in fields.items():
            if column in PLAIN_COLUMNS or value is None:
                out[column] = value
            elif column == "params" and isinstance(value, Mapping):
                out[column] = self.params(value)[0]
            elif column == "extra" and isinstance(value, Mapping):
                extra = self.value(dict(value), names=True)
                if isinstance(value.get("argv"), list):
                    extra["argv"] = self.argv(value["argv"])
                if isinstance(value.get("magic_line"), str):
                    extra["magic_line"] = self.magic_line(value["magic_line"])
                out[column] = extra
            else:
                out[column] = self.value(value)
        return out

    def explain_text(self, text: str) -> list[str]:
        """The rule by which :meth:`text` would change ``text`` (never the secret): a
        credential format, else a known secret value; empty when it would not."""
        value_rule = self.rules.value_rule(text)
        if value_rule is not None:
            return [value_rule]
        if _replace_values(text, self._values) != text:
            return [KNOWN_VALUE_RULE]
        return []

    def explain_code(self, source: str) -> list[str]:
        """The rules by which :meth:`code` would change ``source``."""
        rules = [lit.rule for lit in secret_literals(source, self.rules)]
        value_rule = self.rules.value_rule(source)
        if value_rule is not None:
            rules.append(value_rule)
        return list(dict.fromkeys(rules)) or self.explain_text(source)


#: Run columns that never hold text a person typed: ids, numbers, times, hashes, metric
#: values and directions, history references (the texts themselves are blobs).
PLAIN_COLUMNS = frozenset(
    {
        "id",
        "number",
        "status",
        "kind",
        "start_time",
        "end_time",
        "heartbeat",
        "pid",
        "seed",
        "deterministic",
        "rng_hash",
        "env_hash",
        "code_hash",
        "history",
        "metrics",
        "goals",
    }
)
