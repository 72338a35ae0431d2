"""Thin tornado handlers: parse the request, call one function of :mod:`payloads` (runs) or
:mod:`nbtrack.server.registry` (models), answer JSON.

Every handler is authenticated; POST is XSRF-checked by ``APIHandler``. Errors always come
back as JSON ``{"message": ..., "reason": ...}`` with a status code, never as a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from nbtrack.errors import (
    AmbiguousRunError,
    AuditLogError,
    ExportError,
    NbtrackError,
    PromotionRefusedError,
    RegistryConfigError,
    RegistryConflictError,
    RegistryError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreSchemaError,
    UnknownModelError,
    UnknownRunError,
)
from nbtrack.server import exporting, payloads, registry
from nbtrack.server.paths import BadNotebookPath, PathRefused, notebook_file

#: (error class, HTTP status, reason) — the first match wins, so subclasses come first.
ERROR_STATUS: list[tuple[type[BaseException], int, str]] = [
    (PathRefused, 403, "path-refused"),
    (BadNotebookPath, 400, "bad-path"),
    (payloads.NoStoreError, 404, "no-store"),
    (UnknownRunError, 404, "unknown-run"),
    (AmbiguousRunError, 400, "ambiguous-run"),
    (StoreCorruptError, 500, "store-corrupt"),
    (StoreSchemaError, 500, "store-schema"),
    (StoreLockedError, 503, "store-locked"),
    (StoreError, 500, "store-error"),
    (ExportError, 422, "export-failed"),
    (UnknownModelError, 404, "unknown-model"),
    (RegistryConfigError, 422, "registry-config"),
    (PromotionRefusedError, 409, "promotion-refused"),
    (RegistryConflictError, 409, "registry-conflict"),
    (AuditLogError, 409, "audit-log-failed"),
    (RegistryError, 409, "registry-refused"),
    (NbtrackError, 400, "nbtrack-error"),
]

#: Version numbers are SQLite integers: anything larger is not a version, and is refused
#: before it reaches the store (where it would overflow).
MAX_VERSION = 2**63 - 1


class NbtrackHandler(APIHandler):
    """Shared request parsing and error translation."""

    #: Whether the endpoint reads a notebook ``path`` (the security tests check that each
    #: such endpoint confines it to the server's root).
    takes_notebook: ClassVar[bool] = True

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # APIHandler would put a traceback into the JSON of unexpected errors; we never do.
        self.set_header("Content-Type", "application/json")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, tornado.web.HTTPError):
            message = exc.log_message or self._reason
            reason = getattr(exc, "nbtrack_reason", None) or exc.reason or self._reason
        else:
            message = "the nbtrack server extension failed unexpectedly; see the server log"
            reason = "internal-error"
        self.finish(json.dumps({"message": message, "reason": reason}))

    def root_dir(self) -> str:
        root = self.settings.get("server_root_dir") or self.contents_manager.root_dir
        return str(root)

    def notebook(self, path: str | None) -> Path:
        if not path:
            raise _http(400, "bad-request", "missing 'path': the notebook's path")
        if not path.endswith(".ipynb"):
            raise _http(400, "bad-request", f"{path!r} is not a notebook (.ipynb) path")
        return notebook_file(self.root_dir(), path)

    def require(self, name: str) -> str:
        value = self.get_query_argument(name, None)
        if not value:
            raise _http(400, "bad-request", f"missing query argument {name!r}")
        return value

    def body(self) -> dict[str, Any]:
        """The request body, which must be a JSON object."""
        try:
            body = self.get_json_body() or {}
        except tornado.web.HTTPError:
            raise _http(400, "bad-request", "the request body is not JSON") from None
        if not isinstance(body, dict):
            raise _http(400, "bad-request", "the request body must be a JSON object")
        return body

    async def answer(self, func: Callable[..., Any], *args: Any) -> None:
        # SQLite may wait on a busy store: keep the server's event loop free meanwhile.
        result = await asyncio.to_thread(func, *args)
        self.finish(json.dumps(result))


def _http(status: int, reason: str, message: str) -> tornado.web.HTTPError:
    err = tornado.web.HTTPError(status, message)
    err.nbtrack_reason = reason  # type: ignore[attr-defined]
    return err


def translate_errors(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Turn nbtrack's errors into HTTP errors whose JSON says what went wrong."""

    @functools.wraps(method)
    async def wrapper(self: NbtrackHandler, *args: Any, **kwargs: Any) -> None:
        try:
            await method(self, *args, **kwargs)
        except NbtrackError as exc:
            for cls, status, reason in ERROR_STATUS:
                if isinstance(exc, cls):
                    raise _http(status, reason, str(exc)) from exc
            raise  # pragma: no cover - NbtrackError is the last row

    return wrapper


class RunsHandler(NbtrackHandler):
    """``GET /nbtrack/runs?path=NB[&project=NAME]``: the notebook's runs, newest first;
    with ``project``, only that project's."""

    @tornado.web.authenticated
    @translate_errors
    async def get(self) -> None:
        await self.answer(
            payloads.runs_payload,
            self.notebook(self.get_query_argument("path", None)),
            self.get_query_argument("project", None) or None,
        )


class RunHandler(NbtrackHandler):
    """``GET /nbtrack/run?path=NB&run=REF``: one run in full."""

    @tornado.web.authenticated
    @translate_errors
    async def get(self) -> None:
        notebook = self.notebook(self.get_query_argument("path", None))
        await self.answer(payloads.run_payload, notebook, self.require("run"))


class DiffHandler(NbtrackHandler):
    """``GET /nbtrack/diff?path=NB&a=REF&b=REF``: what differs between two runs."""

    @tornado.web.authenticated
    @translate_errors
    async def get(self) -> None:
        notebook = self.notebook(self.get_query_argument("path", None))
        await self.answer(payloads.diff_payload, notebook, self.require("a"), self.require("b"))


class ExportHandler(NbtrackHandler):
    """``POST /nbtrack/export`` with ``{"path": NB, "run": REF?}``: write a script next to
    the notebook (the whole notebook, or what one run needs) and answer its path."""

    @tornado.web.authenticated
    @translate_errors
    async def post(self) -> None:
        body = self.body()
        notebook = self.notebook(body.get("path"))
        run = body.get("run")
        if run is not None and not isinstance(run, (str, int)):
            raise _http(400, "bad-request", "'run' must be a run number or id")
        root = self.root_dir()
        await self.answer(
            exporting.export_script, root, notebook, None if run is None else str(run)
        )


def _text(body: dict[str, Any], key: str) -> str | None:
    """An optional string field of a JSON body (``None`` when absent or empty)."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _http(400, "bad-request", f"{key!r} must be a string")
    return value


def _required(body: dict[str, Any], key: str) -> str:
    """A string field the request cannot do without."""
    value = _text(body, key)
    if value is None:
        raise _http(400, "bad-request", f"missing {key!r} in the request body")
    return value


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise _http(400, "bad-request", f"{key!r} must be true or false")
    return value


def _version(value: object) -> int:
    """A version number from a JSON number or a string of digits."""
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 19:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        raise _http(400, "bad-request", "'version' must be a version number (1, 2, ...)")
    return value


class ModelsHandler(NbtrackHandler):
    """``GET /nbtrack/models?path=NB``: every registered model of the notebook's store;
    ``&model=NAME[&stage=S]``: one model with its versions, their lineage, decisions, stage
    history and gate results (for ``S``, default each version's next stage)."""

    @tornado.web.authenticated
    @translate_errors
    async def get(self) -> None:
        notebook = self.notebook(self.get_query_argument("path", None))
        name = self.get_query_argument("model", None)
        if not name:
            await self.answer(registry.models_payload, notebook)
            return
        stage = self.get_query_argument("stage", None) or None
        await self.answer(registry.model_payload, notebook, name, stage)


class AuditHandler(NbtrackHandler):
    """``GET /nbtrack/models/audit?path=NB[&model=NAME][&limit=N][&verify=1]``: the newest
    entries of the registry's audit log and, with ``verify``, the check of its hash chain."""

    @tornado.web.authenticated
    @translate_errors
    async def get(self) -> None:
        notebook = self.notebook(self.get_query_argument("path", None))
        text = self.get_query_argument("limit", "50")
        if not text.isdecimal() or len(text) > 6:
            raise _http(400, "bad-request", "'limit' must be a whole number of entries")
        verify = self.get_query_argument("verify", "") in ("1", "true", "yes")
        model = self.get_query_argument("model", None) or None
        await self.answer(registry.audit_payload, notebook, model, int(text), verify)


class PromoteHandler(NbtrackHandler):
    """``POST /nbtrack/models/promote`` with ``{"path", "model", "version", "stage",
    "reason"?, "force"?, "dry_run"?}``: move a version (``dry_run``: the gate results and
    who holds the stage now, nothing written)."""

    @tornado.web.authenticated
    @translate_errors
    async def post(self) -> None:
        body = self.body()
        notebook = self.notebook(body.get("path"))
        await self.answer(
            functools.partial(
                registry.promote_payload,
                notebook,
                _required(body, "model"),
                _version(body.get("version")),
                _required(body, "stage"),
                reason=_text(body, "reason"),
                force=_flag(body, "force"),
                dry_run=_flag(body, "dry_run"),
            )
        )


class RollbackHandler(NbtrackHandler):
    """``POST /nbtrack/models/rollback`` with ``{"path", "model", "stage"?, "reason"?,
    "dry_run"?}``: put back the stage's previous version (``dry_run``: which one would come
    back and which would leave, nothing written)."""

    @tornado.web.authenticated
    @translate_errors
    async def post(self) -> None:
        body = self.body()
        notebook = self.notebook(body.get("path"))
        await self.answer(
            functools.partial(
                registry.rollback_payload,
                notebook,
                _required(body, "model"),
                _text(body, "stage") or "production",
                reason=_text(body, "reason"),
                dry_run=_flag(body, "dry_run"),
            )
        )


class ApproveHandler(NbtrackHandler):
    """``POST /nbtrack/models/approve`` with ``{"path", "model", "version", "stage",
    "comment"?, "decision"?: "approve" | "reject"}``: record the acting user's decision."""

    @tornado.web.authenticated
    @translate_errors
    async def post(self) -> None:
        body = self.body()
        notebook = self.notebook(body.get("path"))
        decision = _text(body, "decision") or "approve"
        if decision not in ("approve", "reject"):
            raise _http(400, "bad-request", "'decision' must be 'approve' or 'reject'")
        await self.answer(
            functools.partial(
                registry.decide_payload,
                notebook,
                _required(body, "model"),
                _version(body.get("version")),
                _required(body, "stage"),
                approve=decision == "approve",
                comment=_text(body, "comment"),
            )
        )


class UnknownEndpointHandler(NbtrackHandler):
    """Any other path under ``/nbtrack``: a JSON 404 that lists the endpoints, where
    Jupyter would answer with its HTML page."""

    takes_notebook = False

    def _unknown(self) -> None:
        known = ", ".join(route for route, _ in ENDPOINTS[:-1])
        raise _http(
            404,
            "unknown-endpoint",
            f"no nbtrack endpoint {self.request.path!r:.200}; the endpoints are {known}",
        )

    @tornado.web.authenticated
    def get(self, *args: str) -> None:
        """Not an endpoint: 404."""
        self._unknown()

    @tornado.web.authenticated
    def post(self, *args: str) -> None:
        """Not an endpoint: 404."""
        self._unknown()

    @tornado.web.authenticated
    def put(self, *args: str) -> None:
        """Not an endpoint: 404."""
        self._unknown()

    @tornado.web.authenticated
    def patch(self, *args: str) -> None:
        """Not an endpoint: 404."""
        self._unknown()

    @tornado.web.authenticated
    def delete(self, *args: str) -> None:
        """Not an endpoint: 404."""
        self._unknown()


#: Every route under ``<base_url>/nbtrack/`` and its handler, in matching order (the
#: catch-all last). :func:`setup_handlers` registers exactly these; the security tests
#: enumerate them, so a new endpoint is checked for auth, XSRF and path confinement.
ENDPOINTS: list[tuple[str, type[NbtrackHandler]]] = [
    ("runs", RunsHandler),
    ("run", RunHandler),
    ("diff", DiffHandler),
    ("export", ExportHandler),
    ("models", ModelsHandler),
    ("models/audit", AuditHandler),
    ("models/promote", PromoteHandler),
    ("models/rollback", RollbackHandler),
    ("models/approve", ApproveHandler),
    ("(.*)", UnknownEndpointHandler),
]


def setup_handlers(web_app: Any) -> None:
    """Register the handlers under ``<base_url>/nbtrack/``."""
    base = url_path_join(web_app.settings["base_url"], "nbtrack")
    routes: list[tuple[str, type[NbtrackHandler]]] = [
        (url_path_join(base, route), handler) for route, handler in ENDPOINTS
    ]
    routes.append((base, UnknownEndpointHandler))  # "/nbtrack" itself, without a slash
    web_app.add_handlers(".*$", routes)
