"""llm-router's own HTTP endpoints, served beside LiteLLM's: health, explain, server admin.

None of them sends a completion to a backend; only the admin ones start or stop servers.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from launchers.server import ServerUnavailable
from llm_router.gateway import Gateway, current
from router_plugins.keys import TeamKey, same_secret
from router_plugins.redaction import redact
from router_plugins.routing import NoAllowedGroup
from router_plugins.validation import InvalidRequest, parse_chat_body

PATHS = frozenset({"/health", "/v1/health", "/v1/router/explain", "/v1/router/servers"})
PATH_PREFIXES = ("/v1/router/servers/",)


def openai_error(status: int, message: str, type_: str, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": str(status)}}, status_code=status)


class _Denied(Exception):
    def __init__(self, response: JSONResponse):
        self.response = response


def _caller(gw: Gateway, request: Request, admin: bool) -> TeamKey | None:
    """The team key of the caller (None for master/open); raise _Denied when not allowed."""
    master = gw.master_key
    if master is None:
        return None
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not given:
        raise _Denied(openai_error(401, "Missing API key. Send it as 'Authorization: Bearer <key>'.", "authentication_error"))
    if same_secret(given, master):
        return None
    key = gw.keys.lookup(given) if gw.keys else None
    if key is None or key.revoked:
        raise _Denied(openai_error(401, "Invalid or revoked API key.", "authentication_error"))
    if admin:
        raise _Denied(openai_error(403, "This endpoint needs the master key.", "permission_error"))
    return key


def build_app() -> FastAPI:
    app = FastAPI(title="llm-router", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(_Denied)
    async def _denied(_: Request, exc: _Denied) -> JSONResponse:
        return exc.response

    @app.get("/v1/health")
    @app.get("/health")
    async def health() -> JSONResponse:
        gw = current()
        backends = {name: asdict(h) for name, h in gw.health().items()}
        body = json.dumps({"status": "ok", "backends": backends})
        return JSONResponse(json.loads(redact(body, gw.secrets())))

    @app.post("/v1/router/explain")
    async def explain(request: Request) -> JSONResponse:
        gw = current()
        key = _caller(gw, request, admin=False)
        body = await _json_body(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            decision = gw.router.decide(body, gw.availability_for(key))
        except NoAllowedGroup:
            return openai_error(403, "This key may not use any model group that can serve this request.", "permission_error")
        return JSONResponse(decision.as_json())

    @app.get("/v1/router/servers")
    async def servers(request: Request) -> JSONResponse:
        gw = current()
        _caller(gw, request, admin=True)
        return JSONResponse({"servers": [asdict(s) for s in gw.launcher.statuses()]})

    @app.post("/v1/router/servers/{name}/{action}")
    async def server_action(name: str, action: str, request: Request) -> JSONResponse:
        gw = current()
        _caller(gw, request, admin=True)
        if name not in gw.launcher.servers:
            return openai_error(404, f"No local model server named '{name}'. Known: {sorted(gw.launcher.servers)}", "invalid_request_error", "name")
        server = gw.launcher.server(name)
        if action == "start":
            try:
                await server.ensure_ready()
            except ServerUnavailable as exc:
                return openai_error(503, str(exc), "service_unavailable")
        elif action == "stop":
            await server.stop("stopped by an operator")
        else:
            return openai_error(404, f"Unknown action '{action}'; use start or stop.", "invalid_request_error", "action")
        return JSONResponse(asdict(server.status()))

    return app


async def _json_body(request: Request) -> dict[str, Any] | JSONResponse:
    try:
        return parse_chat_body(await request.body())
    except InvalidRequest as exc:
        return openai_error(exc.status, exc.message, "invalid_request_error", exc.param)
