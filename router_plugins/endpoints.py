"""llm-router's own HTTP endpoints, served beside LiteLLM's: models, health, explain, usage, stored
responses (while the Responses store is on), server admin.

The door (llm_router/app.py) has authenticated the caller and applied the route policy before a
request gets here (router_plugins/routes.py: models, health, explain and usage are team routes,
stored responses inference routes, the server admin routes need the master key). None of them sends a completion to a backend; only
the admin ones start or stop servers.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from launchers.server import ServerUnavailable
from router_plugins.access import MASTER, Caller
from router_plugins.affinity import CONTINUED_HEADER
from router_plugins.auth import CALLER_STATE
from router_plugins.charts import WINDOWS, BudgetBar, charts_html
from router_plugins.errors import Api, ApiError
from router_plugins.gateway import Gateway
from router_plugins.openapi import openapi_document
from router_plugins.redaction import redact
from router_plugins.conversation import Shape, guess_shape
from router_plugins.routes import Operation
from router_plugins.state.periods import BadSince
from router_plugins.state.responses import ResponseStore
from router_plugins.state.spend import BY
from router_plugins.validation import parse_body, parse_object

PATHS = frozenset({"/health", "/v1/health", "/v1/router/explain", "/v1/router/servers", "/v1/router/status", "/v1/router/status/charts",
                   "/router/ui", "/v1/models", "/models", "/openapi.json", "/v1/router/usage"})
STATUS_PAGE = "/router/ui"
_PAGE = Path(__file__).with_name("status_page.html").read_text()
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

    @app.get("/openapi.json")
    async def openapi() -> JSONResponse:
        return JSONResponse(openapi_document(gateway.config.serves_files_and_batches))

    @app.get("/v1/models")
    @app.get("/models")
    async def models(request: Request) -> JSONResponse:
        """The trigger names and the groups that can serve now; the others, with why, under `unavailable`."""
        caller = _caller(request)
        listed = [_model(name, "llm-router") for name in gateway.router.trigger_names]
        unavailable = []
        for group in gateway.config.groups:
            if not caller.may_use(group):
                continue
            why = gateway.unavailable_reason(group)
            if why is None:
                listed.append(_model(group, _owner(gateway, group)))
            else:
                unavailable.append({"id": group, "owned_by": _owner(gateway, group), "why": redact(why, gateway.secrets())})
        return JSONResponse({"object": "list", "data": listed, "unavailable": unavailable})

    @app.get("/v1/models/{model_id:path}")
    @app.get("/models/{model_id:path}")
    async def model(model_id: str, request: Request) -> JSONResponse:
        if model_id in gateway.router.trigger_names:
            return JSONResponse(_model(model_id, "llm-router"))
        group = gateway.config.resolve(model_id)
        if group not in gateway.config.groups or not _caller(request).may_use(group):
            raise ApiError(404, f"The model '{model_id}' does not exist or this key may not use it.", "model")
        return JSONResponse(_model(model_id, _owner(gateway, group)))

    @app.get("/v1/health")
    @app.get("/health")
    async def health() -> Response:
        redis = gateway.redis_state()
        return _redacted(gateway, {"status": "ok", **({"redis": redis} if redis else {}), "backends": _backends(gateway)})

    @app.post("/v1/router/explain")
    async def explain(request: Request) -> JSONResponse:
        raw = await request.body()
        shape = _explained_shape(request.query_params.get("api"), parse_object(raw))
        body = parse_body(raw, _CHECKED_AS[shape])
        assert body is not None
        headers = {k: v for k, v in request.headers.items() if k != CONTINUED_HEADER}
        caller = _caller(request)
        if shape is Shape.RESPONSES and gateway.responses is not None:
            turn = await gateway.responses.expand(body, caller)  # routed as the door would route it
            if turn.continued is not None:
                headers[CONTINUED_HEADER] = turn.continued
        decision = gateway.router.decide(body, shape, gateway.availability_for(caller), gateway.conversations, headers,
                                         caller.difficulty)
        budget = gateway.router.output_budget(decision.model, body)
        return JSONResponse({**decision.as_json(), "api": shape.value, "output_budget": budget.as_json() if budget else None})

    @app.get("/v1/router/usage")
    async def usage(request: Request) -> JSONResponse:
        """Spend and tokens since a day (`since`, default 7d) by key, team, model or day (`by`). The master key
        sees every key's; a team key its own only."""
        by = request.query_params.get("by", "key")
        if by not in BY:
            raise ApiError(400, f"by must be one of {', '.join(BY)}.", "by")
        try:
            since = gateway.spend.since(request.query_params.get("since", "7d"))
        except BadSince as exc:
            raise ApiError(400, str(exc).replace("--since", "since"), "since") from None
        caller = _caller(request)
        key = (caller.name, caller.key.team) if caller.is_team and caller.key is not None else None
        report = await asyncio.to_thread(gateway.spend.report, by, since, key)  # type: ignore[arg-type]
        return JSONResponse(report.as_json())

    @app.get("/v1/responses/{response_id}")
    @app.get("/responses/{response_id}")
    async def stored_response(response_id: str, request: Request) -> JSONResponse:
        return JSONResponse(await _responses(gateway).retrieve(response_id, _caller(request)))

    @app.delete("/v1/responses/{response_id}")
    @app.delete("/responses/{response_id}")
    async def delete_response(response_id: str, request: Request) -> JSONResponse:
        return JSONResponse(await _responses(gateway).delete(response_id, _caller(request)))

    @app.get("/v1/responses/{response_id}/input_items")
    @app.get("/responses/{response_id}/input_items")
    async def input_items(response_id: str, request: Request) -> JSONResponse:
        query = request.query_params
        limit = query.get("limit", "20")
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise ApiError(400, "limit must be an integer from 1 to 100.", "limit")
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiError(400, "order must be asc or desc.", "order")
        return JSONResponse(await _responses(gateway).input_items(response_id, _caller(request), int(limit), order, query.get("after")))

    @app.get("/v1/router/status")
    async def status() -> Response:
        """What the status page shows: backends, local servers (state, times, memory, last error, log
        tail), memory held against the budget, and the latest routing decisions of every worker."""
        try:
            overview = await gateway.servers.overview()
        except ServerUnavailable as exc:
            raise ApiError(503, exc.why) from None
        return _redacted(gateway, {"backends": _backends(gateway), **overview, "auto": _auto_share(gateway, overview["decisions"])})

    @app.get("/v1/router/status/charts")
    async def status_charts(request: Request) -> Response:
        """The status page's charts for the last hour or day (`window`), an HTML fragment of SVGs drawn here
        (router_plugins/charts.py) from this machine's spend ledger and the keys file's budgets."""
        window = request.query_params.get("window", "hour")
        if window not in WINDOWS:
            raise ApiError(400, f"window must be one of {', '.join(WINDOWS)}.", "window")
        fragment = await asyncio.to_thread(_charts, gateway, window)
        return Response(redact(fragment, gateway.secrets()), media_type="text/html; charset=utf-8", headers={"cache-control": "no-store"})

    @app.get(STATUS_PAGE)
    async def page() -> HTMLResponse:
        return status_page(200)

    @app.get("/v1/router/servers")
    async def servers() -> JSONResponse:
        try:
            return JSONResponse({"servers": await gateway.servers.statuses()})
        except ServerUnavailable as exc:
            raise ApiError(503, exc.why) from None

    @app.post("/v1/router/servers/{name}/{action}")
    async def server_action(name: str, action: str) -> JSONResponse:
        if name not in gateway.servers.names:
            raise ApiError(404, f"No local model server named '{name}'. Known: {sorted(gateway.servers.names)}", "name")
        try:
            if action == "start":
                return JSONResponse(await gateway.servers.start_server(name))
            if action == "stop":
                return JSONResponse(await gateway.servers.stop_server(name, "stopped by an operator"))
        except ServerUnavailable as exc:
            raise ApiError(503, str(exc)) from None
        raise ApiError(404, f"Unknown action '{action}'; use start or stop.", "action")

    return app


def _auto_share(gateway: Gateway, decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """Of the latest `auto` decisions (every worker's), how many went to the strong tier, routing.complex."""
    complex_groups = set(gateway.config.routing.complex) if gateway.config.routing else set()
    routed = [d for d in decisions if d.get("reason") not in (None, "explicit")]
    strong = [d for d in routed if d["reason"] in ("complex", "context") or (d["reason"] == "affinity" and d.get("chosen") in complex_groups)]
    return {"decisions": len(routed), "strong": len(strong), "strong_share": round(len(strong) / len(routed), 3) if routed else None}


_BUDGET_ROWS = 40


def _charts(gateway: Gateway, window: str) -> str:
    since_s, bucket_s = WINDOWS[window]
    series = gateway.spend.series(since_s, bucket_s)
    return charts_html(series, window, _budget_bars(gateway, series.key_cost, window), gateway.spend.settings.zone)


def _budget_bars(gateway: Gateway, window_cost: dict[tuple[str, str], float], window: str) -> list[BudgetBar]:
    """Each active key with a budget (its spend in the budget's current period, every replica's, as the
    budget check reads it), most used first; each team with a budget; then the keys without one that
    spent in the window (this machine's ledger), dearest first."""
    keys = [k for k in gateway.keys.all() if not k.revoked] if gateway.keys is not None else []
    budgeted = []
    for k in keys:
        if k.budget is not None:
            budgeted.append(BudgetBar(_who(k.name, k.team), gateway.spend.spent("key", k.name, k.budget.period), k.budget.usd, k.budget.period))
    rows = sorted(budgeted, key=lambda r: (-(r.used or 0.0), r.label))
    teams = gateway.keys.team_budgets() if gateway.keys is not None else {}
    rows += [BudgetBar(f"team {team}", gateway.spend.spent("team", team, b.period), b.usd, b.period) for team, b in sorted(teams.items())]
    named = {k.name for k in keys if k.budget is not None}
    rows += [BudgetBar(_who(name, team), cost, None, window)
             for (name, team), cost in sorted(window_cost.items(), key=lambda kv: (-kv[1], kv[0])) if name not in named]
    return rows[:_BUDGET_ROWS]


def _who(name: str, team: str) -> str:
    return name if not team or team == name else f"{name} ({team})"


def _responses(gateway: Gateway) -> ResponseStore:
    """The door sends stored-response routes here only while the store is on (llm_router/app.py)."""
    assert gateway.responses is not None
    return gateway.responses


def _backends(gateway: Gateway) -> dict[str, Any]:
    return {name: asdict(h) for name, h in gateway.health().items()}


def _redacted(gateway: Gateway, body: dict[str, Any]) -> Response:
    """A JSON answer with every secret the gateway knows taken out (a backend's error may quote one)."""
    return Response(redact(json.dumps(body), gateway.secrets()), media_type="application/json")


def status_page(status: int) -> HTMLResponse:
    """The status page: one HTML file, no build step and nothing from a CDN. It asks for the master key
    and keeps it in the tab (sessionStorage), never in a cookie or a URL; so a browser without the key
    gets it too, with the API's answer as its status (401)."""
    return HTMLResponse(_PAGE, status_code=status, headers={"cache-control": "no-store"})


# A Messages body to explain needn't carry max_tokens: it is checked as count_tokens checks it.
_CHECKED_AS = {Shape.CHAT: Operation.CHAT, Shape.RESPONSES: Operation.RESPONSES, Shape.MESSAGES: Operation.COUNT_TOKENS}


def _explained_shape(asked: str | None, body: dict[str, Any]) -> Shape:
    """`?api=chat|responses|messages`, else told apart by the body (router_plugins/conversation.py)."""
    if asked is None:
        return guess_shape(body)
    try:
        return Shape(asked)
    except ValueError:
        raise ApiError(400, f"api must be one of {[s.value for s in Shape]}.", "api") from None


def _caller(request: Request) -> Caller:
    return getattr(request.state, CALLER_STATE, None) or MASTER


def _model(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _STARTED, "owned_by": owner}


def _owner(gateway: Gateway, group: str) -> str:
    """The real provider: openai, anthropic..., or `vllm` / `local` for a server the launcher runs."""
    d = gateway.config.deployments_of(group)[0]
    if d.launch_spec is not None:
        return "vllm" if d.launch_spec.engine == "vllm" else "local"
    return d.provider


_STARTED = int(time.time())
