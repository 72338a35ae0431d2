"""The one secret rule: names in code by whole token, env names by substring, values by format."""

from __future__ import annotations

import re

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


def test_jupyters_notebook_path_is_not_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # JPY_SESSION_NAME holds the notebook's path and contains "SESSION": redacting it
    # stored every run with notebook '<redacted>' and emptied the Runs panel.
    from nbtrack.capture.environment import secret_values

    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ana/work/train.ipynb")
    monkeypatch.setenv("MY_SESSION_COOKIE", "abcdef123456")
    assert not is_secret_env_name("JPY_SESSION_NAME")
    assert "/home/ana/work/train.ipynb" not in secret_values()
    assert "abcdef123456" in secret_values()


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


# --------------------------------------------------------------------------- code and rules


def test_every_form_that_names_a_literal_is_redacted_in_code() -> None:
    from nbtrack.secrets import Redactor

    source = (
        "%%track --set password=hunter22 --name x\n"
        "%env HF_TOKEN=abcdefgh\n"
        "api_key: str = 'k1-abcdef'\n"
        "cfg.client_secret = 'k2-abcdef'\n"
        "os.environ['OPENAI_API_KEY'] = 'k3-abcdef'\n"
        "connect(password='k4-abcdef', user='ana')\n"
        "conf = {'auth': 'k5-abcdef', 'retries': 3}\n"
        "def login(token='k6-abcdef'): pass\n"
        "if db_password == 'k7-abcdef': pass\n"
        "os.environ.setdefault('GITHUB_TOKEN', 'k8-abcdef')\n"
        "user, pwd = 'ana', 'k9-abcdef'\n"
        "endpoint = 'sk-" + "x" * 20 + "'\n"
        "use_auth_token = True\n"
        "token_count = 5\n"
        "max_tokens = 'many-tokens'\n"
    )
    out = Redactor().code(source)
    for n in range(1, 10):
        assert f"k{n}-abcdef" not in out
    assert "hunter22" not in out and "abcdefgh" not in out and "sk-xxx" not in out
    assert "--set password=<redacted> --name x" in out  # a bare word stays bare there
    assert "user='ana'" in out and "'retries': 3" in out and "user, pwd = 'ana', " in out
    assert "use_auth_token = True" in out and "token_count = 5" in out
    assert "max_tokens = 'many-tokens'" in out
    compile("\n".join(out.splitlines()[2:]), "<cell>", "exec")  # still Python
    assert Redactor().code(out) == out  # redacting twice changes nothing


def test_code_that_does_not_parse_is_read_line_by_line() -> None:
    from nbtrack.secrets import Redactor

    out = Redactor().code('files = !ls\npassword = "k1-abcdef"\n')
    assert out == f"files = !ls\npassword = {REDACTED!r}\n"


def test_a_value_found_once_is_redacted_everywhere_as_a_whole_word() -> None:
    from nbtrack.secrets import Redactor

    redactor = Redactor()
    redactor.learn_code(["password = 'hunter2'"])
    redactor.learn_params({"pin": "1234", "db_token": "s3cr3t-v4lue"})
    assert redactor.text("hunter2 but not hunter22") == f"{REDACTED} but not hunter22"
    assert redactor.text("s3cr3t-v4lue") == REDACTED
    clean = "pin 1234 stays"  # shorter than six characters: only where it was bound
    assert redactor.text(clean) is clean


def test_params_argv_and_user_keyed_dicts() -> None:
    from nbtrack.secrets import Redactor

    redactor = Redactor()
    params, names = redactor.params(
        {
            "password": "x",
            "lr": 0.1,
            "use_auth": True,
            "url": "https://ana:pw12345@host/db",
            "cfg": {"api_key": "abc", "n": 2},
            "layers": [64, 64],
        }
    )
    assert names == ["password", "url"]
    assert params["cfg"] == {"api_key": REDACTED, "n": 2} and params["layers"] == [64, 64]
    assert params["use_auth"] is True and params["lr"] == 0.1
    argv = ["a.py", "--token", "t0k3n", "--api-key=xyz", "--lr", "0.1", "sk-" + "y" * 20]
    assert redactor.argv(argv) == [
        "a.py",
        "--token",
        REDACTED,
        f"--api-key={REDACTED}",
        "--lr",
        "0.1",
        REDACTED,
    ]


def test_the_recorded_magic_line_and_overrides_lose_short_secrets_too() -> None:
    from nbtrack.secrets import Redactor

    extra = {"magic_line": " --set pwd=abc --set lr=0.1 -q", "overrides": {"pwd": "abc", "lr": 0.1}}
    assert Redactor().fields({"extra": extra})["extra"] == {
        "magic_line": f" --set pwd={REDACTED} --set lr=0.1 -q",
        "overrides": {"pwd": REDACTED, "lr": 0.1},
    }


def test_project_rules_add_names_and_patterns_and_reject_bad_ones() -> None:
    from nbtrack.errors import UsageError
    from nbtrack.secrets import rules_from_table

    rules = rules_from_table({"names": ["session_id"], "patterns": ["acme-\\d{4}"]}, "t")
    assert rules.is_secret_name("user_session_id") and not rules.is_secret_name("session")
    assert rules.value_rule("id acme-1234") == "configured pattern 'acme-\\\\d{4}'"
    assert rules.redact_text("id acme-1234") == f"id {REDACTED}"
    for table, message in [
        ({"patterns": ["("]}, "t patterns[0] '(' is not a valid regular expression"),
        ({"patterns": ["x*"]}, "matches empty text"),
        ({"names": "wandb"}, "t names must be a list of strings"),
        ({"name": ["x"]}, "unknown key(s) name"),
    ]:
        with pytest.raises(UsageError, match=re.escape(message)):
            rules_from_table(table, "t")


def test_the_docs_list_every_value_rule() -> None:
    from pathlib import Path

    from nbtrack.secrets import URL_PASSWORD_RULE, VALUE_RULES

    doc = (Path(__file__).resolve().parents[1] / "docs" / "secrets.md").read_text("utf-8")
    for rule in [name for name, _ in VALUE_RULES] + [URL_PASSWORD_RULE]:
        assert f"| {rule} |" in doc, rule


def test_an_exported_binding_of_a_secret_reads_the_environment() -> None:
    from nbtrack.export.script import secrets_from_env

    source = (
        "api_key = 'sk-" + "r" * 20 + "'\n"  # a store from before redaction: the real value
        "url = 'postgresql://a:<redacted>@h/db'\n"
        "client = Client(token='<redacted>')\n"
        "connect('<redacted>')\n"
        "lr = 0.1\n"
        "use_auth_token = True\n"
    )
    out, names = secrets_from_env(source, ["api_key"])
    assert names == ["api_key", "url", "token"]
    assert out == (
        "api_key = _nbtrack_secret('api_key')\n"
        "url = _nbtrack_secret('url')\n"
        "client = Client(token=_nbtrack_secret('token'))\n"
        "connect('<redacted>')\n"  # no name to read it by: the docstring says so
        "lr = 0.1\n"
        "use_auth_token = True\n"
    )
