"""llm-router's own HTTP endpoints, served beside LiteLLM's: models, health, explain, server admin.

The door (llm_router/app.py) has authenticated the caller and applied the route policy before a
request gets here (router_plugins/routes.py: models, health and explain are team routes, the
server admin routes need the master key). None of them sends a completion to a backend; only
the admin ones start or stop servers.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from launchers.server import ServerUnavailable
from router_plugins.access import MASTER, Caller
from router_plugins.auth import CALLER_STATE
from router_plugins.errors import Api, ApiError
from router_plugins.gateway import Gateway
from router_plugins.redaction import redact
from router_plugins.routing import NoAllowedGroup
from router_plugins.validation import parse_chat_body

PATHS = frozenset({"/health", "/v1/health", "/v1/router/explain", "/v1/router/servers", "/v1/models", "/models"})
PATH_PREFIXES = ("/v1/router/servers/", "/v1/models/", "/models/")


def is_ours(path: str) -> bool:
    return path in PATHS or path.startswith(PATH_PREFIXES)


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(json.loads(error.body(Api.OPENAI)), status_code=error.status)


def build_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(title="llm-router", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.get("/v1/models")
    @app.get("/models")
    async def models(request: Request) -> JSONResponse:
        caller = _caller(request)
        return JSONResponse({"object": "list", "data": [_model(g) for g in gateway.config.groups if caller.may_use(g)]})

    @app.get("/v1/models/{model_id:path}")
    @app.get("/models/{model_id:path}")
    async def model(model_id: str, request: Request) -> JSONResponse:
        group = gateway.config.resolve(model_id)
        if group not in gateway.config.groups or not _caller(request).may_use(group):
            raise ApiError(404, f"The model '{model_id}' does not exist or this key may not use it.", "model")
        return JSONResponse(_model(model_id))

    @app.get("/v1/health")
    @app.get("/health")
    async def health() -> JSONResponse:
        backends = {name: asdict(h) for name, h in gateway.health().items()}
        body = json.dumps({"status": "ok", "backends": backends})
        return JSONResponse(json.loads(redact(body, gateway.secrets())))

    @app.post("/v1/router/explain")
    async def explain(request: Request) -> JSONResponse:
        body = parse_chat_body(await request.body())
        try:
            decision = gateway.router.decide(body, gateway.availability_for(_caller(request)))
        except NoAllowedGroup:
            raise ApiError(403, "This key may not use any model group that can serve this request.")
        return JSONResponse(decision.as_json())

    @app.get("/v1/router/servers")
    async def servers() -> JSONResponse:
        return JSONResponse({"servers": [asdict(s) for s in gateway.launcher.statuses()]})

    @app.post("/v1/router/servers/{name}/{action}")
    async def server_action(name: str, action: str) -> JSONResponse:
        if name not in gateway.launcher.servers:
            raise ApiError(404, f"No local model server named '{name}'. Known: {sorted(gateway.launcher.servers)}", "name")
        server = gateway.launcher.server(name)
        if action == "start":
            try:
                await server.ensure_ready()
            except ServerUnavailable as exc:
                raise ApiError(503, str(exc))
        elif action == "stop":
            await server.stop("stopped by an operator")
        else:
            raise ApiError(404, f"Unknown action '{action}'; use start or stop.", "action")
        return JSONResponse(asdict(server.status()))

    return app


def _caller(request: Request) -> Caller:
    return getattr(request.state, CALLER_STATE, None) or MASTER


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _STARTED, "owned_by": "llm-router"}


_STARTED = int(time.time())
