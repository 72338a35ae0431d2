"""The one secret rule: names in code by whole token, env names by substring, values by format."""

from __future__ import annotations

import pytest

from nbtrack.secrets import REDACTED, is_secret_env_name, is_secret_name, looks_secret, redact_text


@pytest.mark.parametrize(
    "name",
    [
        "hf_token",
        "OPENAI_API_KEY",
        "api_key",
        "apiKey",
        "dbPassword",
        "password",
        "github_pat",
        "aws_secret_access_key",
        "client_secret",
        "auth",
        "private_key",
        "db_passwd",
    ],
)
def test_secret_names_in_code(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "max_tokens",
        "tokenizer",
        "keyboard",
        "monkey",
        "sort_key",
        "key_size",
        "n_keys",
        "lr",
        "author",
        "privacy_budget",
        "path",
    ],
)
def test_ordinary_names_in_code(name: str) -> None:
    assert not is_secret_name(name)


def test_env_names_by_substring() -> None:
    assert is_secret_env_name("MY_SERVICE_KEYS")
    assert is_secret_env_name("gh_token")
    assert not is_secret_env_name("OMP_NUM_THREADS")


@pytest.mark.parametrize(
    "value",
    [
        "sk-" + "a1B2" * 8,
        "sk-proj-" + "x" * 30,
        "ghp_" + "A" * 36,
        "hf_" + "b" * 34,
        "AKIA" + "ABCDEFGHIJKLMNOP",
        "xoxb-1234567890-abcdef",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
        "postgresql://ana:hunter22@db.example/prod",
    ],
)
def test_credential_formats(value: str) -> None:
    assert looks_secret(value)
    assert REDACTED in redact_text(f"x = {value!r}")


@pytest.mark.parametrize("value", ["adam", "sk-learn", "https://example.org/a:b", "hf_hub", 3])
def test_ordinary_values(value: object) -> None:
    assert not looks_secret(value)


def test_redact_keeps_url_user_and_host_and_identity_when_clean() -> None:
    text = "conn = 'postgresql://ana:hunter22@db.example/prod'"
    assert redact_text(text) == f"conn = 'postgresql://ana:{REDACTED}@db.example/prod'"
    clean = "lr = 1e-3"
    assert redact_text(clean) is clean
    assert redact_text("token = 'abc123xyz'", ["abc123xyz"]) == f"token = '{REDACTED}'"
