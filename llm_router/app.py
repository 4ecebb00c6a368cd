"""The ASGI app that `llm-router serve` runs: LiteLLM's proxy app behind our door, our endpoints beside it.

This module is the composition root. It loads the config once per worker, builds the gateway
and the plugins LiteLLM calls (`router_hooks`, `custom_auth`, which `serve` names in the config
it hands LiteLLM), and puts a door in front of every request:

1. the route's access class (router_plugins/routes.py) and the caller's key: 401 and 403 in the
   caller's API format, before LiteLLM sees anything;
2. the body: size-limited (413), and checked against its API's shape (400, router_plugins/validation.py);
3. a team key's model and rpm on inference routes (429, 403).

LiteLLM is composed, not patched: requests for our paths go to our FastAPI app, everything else
to LiteLLM's. The lifespan is LiteLLM's: after its startup the proxy hooks that can't act here are
taken off (llm_router/inert_hooks.py) and the launcher's monitor starts; after its shutdown every
server we started is stopped.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from router_config import environment

environment.apply_defaults()

from litellm.proxy.proxy_server import app as litellm_app  # noqa: E402  (needs the environment first)

from llm_router import inert_hooks, logs  # noqa: E402
from router_config.gateway_config import default_config_path, load_config  # noqa: E402
from router_plugins import endpoints  # noqa: E402
from router_plugins.access import Caller, presented_key  # noqa: E402
from router_plugins.auth import CALLER_STATE, LiteLLMAuth  # noqa: E402
from router_plugins.errors import ApiError  # noqa: E402
from router_plugins.gateway import Gateway  # noqa: E402
from router_plugins.hooks import RouterHooks  # noqa: E402
from router_plugins.routes import Access, Operation, Route, classify  # noqa: E402
from router_plugins.conversation import Shape  # noqa: E402
from router_plugins.validation import parse_body  # noqa: E402

log = logging.getLogger("llm_router.app")

Scope = dict[str, Any]
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _BodyTooLarge(Exception):
    pass


class GatewayApp:
    def __init__(self, gateway: Gateway, litellm: Any) -> None:
        self._gateway = gateway
        self._litellm = litellm
        self._ours = endpoints.build_app(gateway)
        self._max_body = gateway.config.max_request_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._litellm(scope, receive, _lifespan_send(self._gateway, send))
            return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        route = classify(scope["method"], scope["path"])
        caller: Caller | None = None
        try:
            caller = self._admit(scope, route)
            body = await self._read_body(scope, receive) if scope["method"] in _BODY_METHODS else None
            parsed = parse_body(body, route.operation, route.model is not None) if body is not None else None
            if caller is not None and caller.is_team and route.access is Access.INFERENCE:
                self._gateway.access.check_request(caller, route, self._named_group(route, parsed))
            if route.operation is Operation.COUNT_TOKENS and parsed is not None and caller is not None:
                body = self._route_count_tokens(body, parsed, caller)
        except _BodyTooLarge:
            limit_mb = self._max_body / 2**20
            await self._refuse(send, scope, route, caller, ApiError(413, f"Request body is larger than the {limit_mb:g} MB limit.", "request_body"))
            return
        except ApiError as exc:
            await self._refuse(send, scope, route, caller, exc)
            return
        scope.setdefault("state", {})[CALLER_STATE] = caller
        replay = receive if body is None else _replay(body, receive)
        if endpoints.is_ours(scope["path"]):
            await self._ours(scope, replay, send)
        else:
            await self._litellm(scope, replay, _json_errors(send, route))

    @staticmethod
    async def _refuse(send: Any, scope: Scope, route: Route, caller: Caller | None, error: ApiError) -> None:
        # One line per refused request: never the body (it may hold a prompt), never a key.
        log.info("refused %s %r (key %s): %d %s", scope["method"], scope["path"], caller.name if caller else "-", error.status, error.message)
        await _send_error(send, error, route)

    def _admit(self, scope: Scope, route: Route) -> Caller | None:
        if route.access is Access.PUBLIC:
            return None
        caller = self._gateway.access.caller(presented_key(_headers(scope)))
        self._gateway.access.check_route(caller, route, scope["path"])
        if route.operation.can_reach_any_model and not self._gateway.config.serves_files_and_batches:
            raise ApiError(501, "Files and batches go to OpenAI's default base URL (or OPENAI_BASE_URL), which no deployment "
                                "of this config uses, so llm-router doesn't serve them here.", retryable=False)
        return caller

    def _named_group(self, route: Route, parsed: dict[str, Any] | None) -> str | None:
        """The model group a request names by its path or body (aliases resolved), or None."""
        name = route.model if route.model is not None else (parsed or {}).get("model")
        if not isinstance(name, str) or self._gateway.router.is_content_routed(name):
            return None
        return self._gateway.config.resolve(name)

    def _route_count_tokens(self, body: bytes, parsed: dict[str, Any], caller: Caller) -> bytes:
        """`auto` on count_tokens (which no LiteLLM hook sees): the model the same messages would go to."""
        if not self._gateway.router.is_content_routed(parsed.get("model")):
            return body
        decision = self._gateway.router.decide(parsed, Shape.MESSAGES, self._gateway.availability_for(caller))
        return json.dumps({**parsed, "model": decision.model}).encode()

    async def _websocket(self, scope: Scope, receive: Any, send: Any) -> None:
        # The realtime routes are LiteLLM's; no team route is a websocket.
        route = classify("WEBSOCKET", scope["path"])
        try:
            self._admit(scope, route)
        except ApiError as exc:
            if "websocket.http.response" not in scope.get("extensions", {}):
                await send({"type": "websocket.close", "code": 1008, "reason": exc.message[:120]})
                return
            payload = exc.body(route.api)
            await send({"type": "websocket.http.response.start", "status": exc.status, "headers": exc.headers()})
            await send({"type": "websocket.http.response.body", "body": payload})
            return
        await self._litellm(scope, receive, send)

    async def _read_body(self, scope: Scope, receive: Any) -> bytes:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise _BodyTooLarge()
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise _BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later calls wait for the client's disconnect, as usual

    return replay


async def _send_error(send: Any, error: ApiError, route: Route) -> None:
    payload = error.body(route.api)
    headers = [*error.headers(), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _json_errors(send: Any, route: Route) -> Any:
    """LiteLLM answers some failures with a plain-text 500 (its error path imports a database module we
    don't install): the client gets the same status as a JSON error in its API's format."""
    rewriting = False

    async def wrapped(message: dict[str, Any]) -> None:
        nonlocal rewriting
        if message["type"] == "http.response.start" and message["status"] >= 500:
            content_type = dict(message.get("headers") or []).get(b"content-type", b"")
            if not content_type.startswith(b"application/json") and not content_type.startswith(b"text/event-stream"):
                rewriting = True
                error = ApiError(message["status"], "The gateway failed to handle this request; the cause is in its log.")
                payload = error.body(route.api)
                headers = [*error.headers(), (b"content-length", str(len(payload)).encode())]
                await send({"type": "http.response.start", "status": message["status"], "headers": headers})
                await send({"type": "http.response.body", "body": payload})
                return
        if rewriting:
            return  # the plain-text body it replaced
        await send(message)

    return wrapped


def _lifespan_send(gateway: Gateway, send: Any) -> Any:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            removed = inert_hooks.remove()
            log.info("LiteLLM proxy hooks with nothing to enforce here, turned off: %s", ", ".join(removed) or "none")
            gateway.launcher.start_monitor()
        elif message["type"] == "lifespan.shutdown.complete":
            await gateway.launcher.shutdown()
        await send(message)

    return wrapped


gateway = Gateway(load_config(default_config_path()))
logs.configure(gateway.paths.log_dir, gateway.secrets)
_litellm_auth = LiteLLMAuth(gateway.access)
custom_auth = _litellm_auth.authenticate
router_hooks = RouterHooks(gateway, _litellm_auth)
app = GatewayApp(gateway, litellm_app)
