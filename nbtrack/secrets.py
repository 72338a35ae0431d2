"""The one rule for what looks secret, by name and by value.

Every writer that could carry a credential into the store asks here: the environment
capture (variable names), the parameter capture (names *and* values typed into a cell),
the stored code and history, notes, tags, error messages and tracebacks, and anything
shown by the server. Nothing here imports anything beyond the standard library.

Two kinds of names are judged differently, on purpose:

* **environment variables** (``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``) are matched by
  *substring* of :data:`ENV_SECRET_MARKERS`: a false positive only drops a harmless
  variable from the record, a false negative leaks a credential;
* **names in code** (``api_key = "..."``, ``password = ...``) are matched by *whole token*
  (``max_tokens``, ``keyboard`` and ``monkey`` are ordinary parameters, ``hf_token`` and
  ``openai_api_key`` are not), because a false positive there hides a real parameter.

Values are matched against the formats of common credentials (:data:`VALUE_PATTERNS`),
whatever name holds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "REDACTED",
    "ENV_SECRET_MARKERS",
    "VALUE_PATTERNS",
    "is_secret_env_name",
    "is_secret_name",
    "looks_secret",
    "redact_text",
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

#: Formats of common credentials, matched anywhere in a text.
VALUE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"),  # OpenAI, Anthropic
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),  # Hugging Face
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),  # GitLab
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
    re.compile(
        r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z]+ )*PRIVATE KEY-----|\Z)",
        re.DOTALL,
    ),
)

# scheme://user:password@host: only the password is replaced.
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)([^/\s@]+)(@)")


def is_secret_env_name(name: str) -> bool:
    """True when an environment variable name looks like it holds a secret (substring rule)."""
    upper = name.upper()
    return any(marker in upper for marker in ENV_SECRET_MARKERS)


def _tokens(name: str) -> list[str]:
    return [t.lower() for t in _SPLIT.split(name) if t]


def is_secret_name(name: str) -> bool:
    """True when a name in code (a variable, a parameter, a keyword) looks secret.

    Matching is by whole token of the name split at ``_``, ``-``, ``.`` and camelCase:
    ``hf_token``, ``OPENAI_API_KEY``, ``dbPassword``, ``github_pat`` are secret;
    ``max_tokens``, ``tokenizer``, ``keyboard``, ``sort_key`` are not.
    """
    tokens = _tokens(name)
    if any(t in _SECRET_TOKENS for t in tokens):
        return True
    return any(
        t == "key" and i > 0 and tokens[i - 1] in _KEY_QUALIFIERS for i, t in enumerate(tokens)
    )


def looks_secret(value: object) -> bool:
    """True when ``value`` is a string holding something in a known credential format."""
    if not isinstance(value, str) or len(value) < 8:
        return False
    return any(p.search(value) for p in VALUE_PATTERNS) or bool(_URL_PASSWORD.search(value))


def redact_text(text: str, values: Iterable[str] = ()) -> str:
    """``text`` with known credential formats and each of ``values`` replaced by
    :data:`REDACTED` (a URL keeps its user and host, only the password goes).

    Returns ``text`` itself (the same object) when nothing matched, so callers that memoise
    by identity stay effective.
    """
    out = text
    for value in values:
        if value and value in out:
            out = out.replace(value, REDACTED)
    for pattern in VALUE_PATTERNS:
        if pattern.search(out):
            out = pattern.sub(REDACTED, out)
    if "://" in out and _URL_PASSWORD.search(out):
        out = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), out)
    return text if out == text else out
