"""Security of every ``/nbtrack/`` endpoint, through a real in-process Jupyter server.

The endpoints are enumerated from :data:`nbtrack.server.handlers.ENDPOINTS` (and checked
against the routes the running server registered), so a new endpoint is covered without
touching this file: it must refuse requests without a token or with a wrong one, refuse
cookie-authenticated writes without the XSRF token, confine notebook paths to the server's
root, and answer every error as JSON, never as an HTML page or a traceback.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import nbformat
import pytest
import tornado.web
from jupyter_server.utils import url_path_join

from nbtrack import config
from nbtrack.model import HistoryEntry
from nbtrack.server.handlers import ENDPOINTS, NbtrackHandler, UnknownEndpointHandler
from nbtrack.store.sqlite import Store
from nbtrack.tracker import RunSpec, start_run

pytest_plugins = ["pytest_jupyter.jupyter_server"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: A name only the run recorded outside the root has: it must never reach a response.
SECRET = "outside-secret-run"


def _implemented(handler: type[NbtrackHandler]) -> list[str]:
    """The HTTP methods ``handler`` defines itself (tornado answers 405 for the others)."""
    base = tornado.web.RequestHandler
    return [m for m in METHODS if getattr(handler, m.lower()) is not getattr(base, m.lower())]


#: (route, method) for every method every endpoint implements; "nope" stands for the
#: catch-all's "any other path".
CASES = [
    (route if handler is not UnknownEndpointHandler else "nope", method)
    for route, handler in ENDPOINTS
    for method in _implemented(handler)
]
WRITES = [case for case in CASES if case[1] != "GET"]
NOTEBOOK_ROUTES = [route for route, handler in ENDPOINTS if handler.takes_notebook]


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    # serve_traceback: even where Jupyter is told to show tracebacks, nbtrack's never do.
    return {
        "ServerApp": {
            "jpserver_extensions": {"nbtrack.server": True},
            "tornado_settings": {"serve_traceback": True},
        }
    }


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.ENV_STORE, raising=False)
    config.set_store_dir(None)


def _notebook_with_run(path: Path, name: str) -> Path:
    """A notebook at ``path`` and, next to it, a store holding one run called ``name``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cell = "%%track\nlr = 0.1\n"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), path)
    store = Store(path.parent / ".nbtrack")
    run = start_run(
        RunSpec(
            name=name,
            source="lr = 0.1\n",
            code="lr = 0.1\n",
            capture_env=False,
            history=[HistoryEntry(1, cell)],
            notebook=str(path),
            cwd=str(path.parent),
            namespace={"lr": 0.1},
        ),
        store=store,
    )
    run.log(acc=0.5)
    run.finish(None)
    store.close()
    return path


@pytest.fixture
def tree(jp_root_dir: Path, tmp_path: Path) -> dict[str, Path]:
    """A notebook inside the root, one outside it, and links from inside to outside."""
    inside = _notebook_with_run(jp_root_dir / "exp" / "nb.ipynb", "inside-run")
    outside = _notebook_with_run(tmp_path / "outside" / "nb.ipynb", SECRET)
    os.symlink(outside.parent, jp_root_dir / "escape")  # a folder link out of the root
    os.symlink(outside, jp_root_dir / "exp" / "link.ipynb")  # a file link out of the root
    os.symlink(inside.parent, jp_root_dir / "alias")  # a link that stays inside: allowed
    return {"root": jp_root_dir, "inside": inside, "outside": outside}


class Client:
    """Real HTTP requests to the served app, with exactly the credentials a test gives."""

    def __init__(self, http: Any, base_url: str, token: str) -> None:
        self.http, self.base_url, self.token = http, base_url, token

    def url(self, route: str, query: str = "") -> str:
        return url_path_join(self.base_url, "nbtrack", route) + (f"?{query}" if query else "")

    async def send(
        self,
        route: str,
        method: str,
        *,
        path: str = "exp/nb.ipynb",
        raw_query: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One request carrying the notebook ``path`` as the endpoint reads it: a query
        argument (with run refs) for GET, a JSON body for the other methods."""
        query = raw_query
        if query is None:
            query = (
                urlencode({"path": path, "run": "1", "a": "1", "b": "1"}) if method == "GET" else ""
            )
        body = None
        if method not in ("GET", "DELETE"):
            body = json.dumps({"path": path, "run": "1"}) if raw_query is None else "{}"
        return await self.http.fetch(
            self.url(route, query),
            method=method,
            body=body,
            headers=headers or {},
            raise_error=False,
            follow_redirects=False,
            allow_nonstandard_methods=True,
        )

    async def login(self) -> dict[str, str]:
        """Log in through Jupyter's login form; the cookies a browser would then hold."""
        login = url_path_join(self.base_url, "login")
        page = await self.http.fetch(login, raise_error=False, follow_redirects=False)
        cookies = _cookies(page)
        form = urlencode({"password": self.token, "_xsrf": cookies["_xsrf"]})
        answer = await self.http.fetch(
            login,
            method="POST",
            body=form,
            headers={"Cookie": _cookie_header(cookies)},
            raise_error=False,
            follow_redirects=False,
        )
        assert answer.code == 302, answer.code  # logged in: redirected to the app
        cookies.update(_cookies(answer))
        assert any(name.startswith("username-") for name in cookies), cookies
        return cookies


def _cookies(response: Any) -> dict[str, str]:
    found = {}
    for header in response.headers.get_list("Set-Cookie"):
        name, _, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0]
    return found


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


@pytest.fixture
def client(jp_serverapp: Any, http_server_client: Any, jp_base_url: str) -> Client:
    return Client(http_server_client, jp_base_url, jp_serverapp.identity_provider.token)


def json_error(response: Any) -> dict[str, Any]:
    """The error body, after checking it is JSON and says only what went wrong."""
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        response.code,
        response.headers.get("Content-Type"),
        response.body[:200],
    )
    body = response.body.decode("utf-8")
    assert "Traceback" not in body and "<html" not in body.lower(), body[:300]
    data = json.loads(body)
    assert set(data) <= {"message", "reason"} and data.get("message"), data
    return data


# -- the endpoints are the ones the server registered ------------------------------------------


def _registered(router: Any) -> list[tuple[str, type]]:
    found = []
    for rule in getattr(router, "rules", []):
        target = rule.target
        if isinstance(target, type) and issubclass(target, NbtrackHandler):
            found.append((rule.matcher.regex.pattern, target))
        elif hasattr(target, "rules"):
            found += _registered(target)
    return found


def test_the_enumerated_endpoints_are_exactly_those_registered(
    jp_serverapp: Any, jp_base_url: str
) -> None:
    registered = _registered(jp_serverapp.web_app.default_router)
    assert {handler for _, handler in registered} == {handler for _, handler in ENDPOINTS}
    base = url_path_join(jp_base_url, "nbtrack")
    for pattern, _ in registered:
        assert pattern.startswith(re.escape(base) if "\\" in pattern else base), pattern
    # Nothing under /nbtrack/ escapes the table (and so these tests).
    assert all(issubclass(h, NbtrackHandler) for _, h in registered)
    assert len(CASES) >= len(ENDPOINTS) and WRITES


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("route,method", CASES)
async def test_no_token_is_refused(client: Client, tree: dict, route: str, method: str) -> None:
    response = await client.send(route, method)
    assert response.code == 403, (route, method, response.code)
    json_error(response)
    assert SECRET.encode() not in response.body and b"inside-run" not in response.body


@pytest.mark.parametrize("route,method", CASES)
@pytest.mark.parametrize(
    "credentials",
    [
        {"Authorization": "token wrong-token"},
        {"Authorization": "token "},
        {"Authorization": "Bearer wrong-token"},
        {"Cookie": "username-127-0-0-1=forged; _xsrf=forged"},
    ],
    ids=["wrong-token", "empty-token", "wrong-bearer", "forged-cookie"],
)
async def test_wrong_credentials_are_refused(
    client: Client, tree: dict, route: str, method: str, credentials: dict[str, str]
) -> None:
    response = await client.send(route, method, headers=credentials)
    assert response.code == 403, (route, method, response.code)
    json_error(response)
    assert b"inside-run" not in response.body


@pytest.mark.parametrize("route", [route for route, _ in CASES if _ == "GET"])
async def test_wrong_token_in_the_query_is_refused(client: Client, tree: dict, route: str) -> None:
    query = urlencode({"path": "exp/nb.ipynb", "run": "1", "a": "1", "b": "1", "token": "x"})
    response = await client.send(route, "GET", raw_query=query)
    assert response.code == 403, (route, response.code)
    json_error(response)


async def test_the_right_token_is_accepted(client: Client, tree: dict) -> None:
    # The control for the refusals above: the same requests with the token get through.
    auth = {"Authorization": f"token {client.token}"}
    response = await client.send("runs", "GET", headers=auth)
    assert response.code == 200 and b"inside-run" in response.body


# -- XSRF --------------------------------------------------------------------------------------


@pytest.mark.parametrize("route,method", WRITES)
async def test_cookie_writes_need_the_xsrf_token(
    client: Client, tree: dict, route: str, method: str
) -> None:
    cookies = await client.login()
    logged_in = {"Cookie": _cookie_header(cookies)}
    refused = await client.send(route, method, headers=logged_in)
    assert refused.code == 403, (route, method, refused.code)
    assert "xsrf" in json_error(refused)["message"].lower()
    wrong = await client.send(route, method, headers={**logged_in, "X-XSRFToken": "forged"})
    assert wrong.code == 403, (route, method, wrong.code)
    json_error(wrong)
    # The control: with the XSRF token the same cookie gets past the check.
    allowed = await client.send(
        route, method, headers={**logged_in, "X-XSRFToken": cookies["_xsrf"]}
    )
    assert allowed.code != 403, (route, method, allowed.code, allowed.body[:200])


async def test_cookie_reads_work_without_xsrf(client: Client, tree: dict) -> None:
    cookies = await client.login()
    response = await client.send("runs", "GET", headers={"Cookie": _cookie_header(cookies)})
    assert response.code == 200 and b"inside-run" in response.body


# -- paths stay inside the root ------------------------------------------------------------------

ESCAPES = [
    "../outside/nb.ipynb",
    "exp/../../outside/nb.ipynb",
    "exp/../exp/../../outside/nb.ipynb",
    "..\\outside\\nb.ipynb",
    "/etc/passwd.ipynb",
    "//etc/passwd.ipynb",
    "C:/outside/nb.ipynb",
    "escape/nb.ipynb",  # through a folder link
    "exp/link.ipynb",  # a file link
]


@pytest.mark.parametrize("route", NOTEBOOK_ROUTES)
@pytest.mark.parametrize("path", ESCAPES)
async def test_paths_out_of_the_root_are_refused(
    client: Client, tree: dict, route: str, path: str
) -> None:
    auth = {"Authorization": f"token {client.token}"}
    handler = dict(ENDPOINTS)[route]
    for method in _implemented(handler):
        response = await client.send(route, method, path=path, headers=auth)
        assert response.code == 403, (route, method, path, response.code, response.body[:200])
        assert json_error(response)["reason"] == "path-refused"
        assert SECRET.encode() not in response.body


@pytest.mark.parametrize(
    "route", [r for r in NOTEBOOK_ROUTES if "GET" in _implemented(dict(ENDPOINTS)[r])]
)
async def test_url_encoded_escapes_are_refused_and_not_decoded_twice(
    client: Client, tree: dict, route: str, jp_root_dir: Path
) -> None:
    auth = {"Authorization": f"token {client.token}"}
    refs = "&run=1&a=1&b=1"
    # Decoded once by the server into ../outside/nb.ipynb: refused.
    for encoded in (
        "%2e%2e%2foutside%2fnb.ipynb",
        "%2E%2E%2Foutside%2Fnb.ipynb",
        "..%2foutside%2fnb.ipynb",
    ):
        response = await client.send(route, "GET", raw_query=f"path={encoded}{refs}", headers=auth)
        assert response.code == 403, (route, encoded, response.code)
        assert json_error(response)["reason"] == "path-refused"
    # Encoded twice: the server decodes once, so it is the literal name "%2e%2e%2f..." inside
    # the root (no such notebook), never the file outside.
    double = quote("%2e%2e%2foutside%2fnb.ipynb", safe="")
    response = await client.send(route, "GET", raw_query=f"path={double}{refs}", headers=auth)
    assert SECRET.encode() not in response.body
    assert response.code in (200, 404), (route, response.code)
    if response.code == 200:
        assert json.loads(response.body)["store_exists"] is False


async def test_a_link_that_stays_inside_the_root_is_allowed(client: Client, tree: dict) -> None:
    auth = {"Authorization": f"token {client.token}"}
    response = await client.send("runs", "GET", path="alias/nb.ipynb", headers=auth)
    assert response.code == 200 and b"inside-run" in response.body


# -- errors are JSON, never HTML or a traceback ---------------------------------------------


@pytest.mark.parametrize("route,method", [(r, m) for r, _ in ENDPOINTS for m in METHODS])
async def test_every_error_is_json(client: Client, tree: dict, route: str, method: str) -> None:
    auth = {"Authorization": f"token {client.token}"}
    route = "nope/deeper" if route == "(.*)" else route
    answers = [
        await client.send(route, method, path="", headers=auth),  # missing path
        await client.send(route, method, path="exp/nb.txt", headers=auth),  # not a notebook
        await client.send(route, method, path="x" * 5000 + ".ipynb", headers=auth),  # too long
        await client.send(route, method, raw_query="path=%ff%fe.ipynb&run=%ff", headers=auth),
    ]
    for response in answers:
        if response.code != 200:
            json_error(response)


async def test_unknown_paths_under_nbtrack_are_json_404(client: Client, tree: dict) -> None:
    auth = {"Authorization": f"token {client.token}"}
    for route in ("nope", "runs/extra", "../nbtrack/nope", ""):
        response = await client.http.fetch(
            client.url(route).rstrip("/"), headers=auth, raise_error=False
        )
        assert response.code == 404, (route, response.code)
        assert json_error(response)["reason"] == "unknown-endpoint"
