"""The ASGI app that `llm-router serve` runs: LiteLLM's proxy app behind our door, our endpoints beside it.

This module is the composition root. It loads the config once per worker, builds the gateway
and the plugins LiteLLM calls (`router_hooks`, `custom_auth`, which `serve` names in the config
it hands LiteLLM), and puts a door in front of every request:

1. the route's access class (router_plugins/routes.py) and the caller's key: 401 and 403 in the
   caller's API format, before LiteLLM sees anything;
2. the body: size-limited (413), and checked against its API's shape (400, router_plugins/validation.py);
3. a team key's model and rpm on inference routes (429, 403);
4. a Responses request naming a previous_response_id: expanded into the whole conversation from the
   Responses store (router_plugins/state/responses.py), and its answer kept there as it goes out.

LiteLLM is composed, not patched: requests for our paths go to our FastAPI app, everything else
to LiteLLM's. The lifespan is LiteLLM's: after its startup the proxy hooks that can't act here are
taken off (llm_router/inert_hooks.py) and the worker connects to the machine's owner of local model
servers (launchers/owner.py, which `serve` runs in its main process); after its shutdown it
disconnects, ending its leases.
"""

from __future__ import annotations

import gc
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from router_config import environment

environment.apply_defaults()

from litellm.constants import MAX_LITELLM_CALL_ID_LENGTH, RUNTIME_UPDATABLE_ROUTER_SETTINGS  # noqa: E402
from litellm.proxy import proxy_server  # noqa: E402  (needs the environment first)
from litellm.proxy.proxy_server import app as litellm_app  # noqa: E402

from llm_router import inert_hooks, logs  # noqa: E402
from router_config.gateway_config import default_config_path, load_config  # noqa: E402
from router_config.litellm_settings import litellm_config  # noqa: E402
from router_plugins import client_dialects, endpoints  # noqa: E402
from router_plugins.access import Caller, presented_key  # noqa: E402
from router_plugins.affinity import CONTINUED_HEADER  # noqa: E402
from router_plugins.auth import CALLER_STATE, LiteLLMAuth  # noqa: E402
from router_plugins.budgets import REMAINING_HEADER, BudgetStanding  # noqa: E402
from router_plugins.errors import Api, ApiError, error_meant  # noqa: E402
from router_plugins.gateway import Gateway  # noqa: E402
from router_plugins.hooks import RouterHooks, routing_headers  # noqa: E402
from router_plugins.routes import Access, Operation, Route, classify  # noqa: E402
from router_plugins.conversation import Shape  # noqa: E402
from router_plugins.state.responses import AnswerReader, Turn  # noqa: E402
from router_plugins.validation import parse_body  # noqa: E402

log = logging.getLogger("llm_router.app")

Scope = dict[str, Any]
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
METRICS_PATH = "/metrics"
CONTINUED = CONTINUED_HEADER.encode()
RESPONSES_CREATE = frozenset({"/v1/responses", "/responses"})
"""Where a Responses answer is made (not compact or input_tokens): the ones the Responses store keeps."""
"""Mounted by LiteLLM's prometheus callback; admin-only unless llm_router.metrics_public."""


class _BodyTooLarge(Exception):
    pass


class GatewayApp:
    def __init__(self, gateway: Gateway, litellm: Any) -> None:
        self._gateway = gateway
        self._litellm = litellm
        self._ours = endpoints.build_app(gateway)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._litellm(scope, receive, _lifespan_send(self._gateway, send))
            return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        route = classify(scope["method"], scope["path"])
        with logs.request_scope() as settle:
            answer = _Answer(send, scope, route, settle, self._gateway.requests.take_answer, self._gateway.servers.note_decision,
                             lambda call_id: routing_headers(self._gateway.requests.decision(call_id)))
            try:
                await self._handle(scope, receive, route, answer)
            except Exception as exc:
                await answer.fail(exc)

    async def _handle(self, scope: Scope, receive: Any, route: Route, answer: _Answer) -> None:
        caller: Caller | None = None
        try:
            caller = answer.caller = self._admit(scope, route)
            body = await self._read_body(scope, receive) if scope["method"] in _BODY_METHODS else None
            parsed = parse_body(body, route.operation, route.model) if body is not None else None
            answer.requested = route.model if route.model is not None else (parsed or {}).get("model")
            if caller is not None and caller.is_team and route.access is Access.INFERENCE:
                named = self._named_group(route, parsed)
                self._gateway.access.check_request(caller, route, named)
                standing = self._check_budget(caller, named)
                if standing is not None:
                    answer.added_headers.append((REMAINING_HEADER.encode(), f"{standing.remaining:.6f}".encode()))
            changed = parsed is not None and self._rewrite(route, parsed, caller)
            if route.operation is Operation.RESPONSES:
                # Only the door says which response a request continued (affinity keys a conversation by it).
                scope["headers"] = [(n, v) for n, v in scope["headers"] if n != CONTINUED]
            if parsed is not None and caller is not None and route.operation is Operation.RESPONSES and self._gateway.responses is not None:
                turn = await self._gateway.responses.expand(parsed, caller)
                if turn.continued is not None:
                    changed = True
                    scope["headers"].append((CONTINUED, turn.continued.encode("latin-1", "replace")))
                if scope["path"].rstrip("/") in RESPONSES_CREATE:
                    answer.keep_response(turn, self._gateway.responses.keep, self._gateway.remember_response_tier)
            if changed:
                body = json.dumps(parsed).encode()
                scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"content-length"] + [(b"content-length", str(len(body)).encode())]
        except _BodyTooLarge:
            limit_mb = self._gateway.config.max_request_bytes / 2**20
            await answer.refuse(ApiError(413, f"Request body is larger than the {limit_mb:g} MB limit.", "request_body"))
            return
        except ApiError as exc:
            if exc.status == 401 and scope["path"] == endpoints.STATUS_PAGE:
                # A browser has no key to send: the page comes with the API's 401 and asks for one.
                await endpoints.status_page(401)(scope, receive, answer.send)
                return
            await answer.refuse(exc)
            return
        scope.setdefault("state", {})[CALLER_STATE] = caller
        if route.access is Access.INFERENCE and route.litellm_hooks:
            answer.call_id = _litellm_call_id(scope)
        replay = receive if body is None else _replay(body, receive)
        app = self._ours if endpoints.is_ours(scope["path"]) or self._answers_stored(route, scope) else self._litellm
        await app(scope, replay, answer.send)

    def _admit(self, scope: Scope, route: Route) -> Caller | None:
        if route.access is Access.PUBLIC or (scope["path"].rstrip("/") == METRICS_PATH and self._gateway.config.settings.metrics_public):
            return None
        caller = self._gateway.access.caller(presented_key(_headers(scope)))
        self._gateway.access.check_route(caller, route, scope["method"] if scope["type"] == "http" else "GET", scope["path"])
        if route.operation.can_reach_any_model and not self._gateway.config.serves_files_and_batches:
            raise ApiError(501, "Files and batches go to OpenAI's default base URL (or OPENAI_BASE_URL), which no deployment "
                                "of this config uses, so llm-router doesn't serve them here.", retryable=False)
        return caller

    def _check_budget(self, caller: Caller, named: str | None) -> BudgetStanding | None:
        """Where the key's tighter budget stands, if it has one; past it, a 429 for a request that names a priced
        group, or that no group could serve (the free ones included: then there is nothing to route to)."""
        gateway = self._gateway
        standing = gateway.budgets.standing(caller.key)
        if standing is not None and standing.exhausted:
            if named is not None and gateway.budgets.is_priced(named):
                raise standing.refusal()
            available = gateway.availability_for(caller)
            if named is None and all(available(group) is not None for group in gateway.config.groups):
                raise standing.refusal()
        return standing

    def _answers_stored(self, route: Route, scope: Scope) -> bool:
        """Stored responses (GET, DELETE, input_items) are answered from the Responses store, while it is on."""
        return route.operation is Operation.RESPONSE_BY_ID and scope["method"] in ("GET", "DELETE") and self._gateway.responses is not None

    def _named_group(self, route: Route, parsed: dict[str, Any] | None) -> str | None:
        """The model group a request names by its path or body (aliases resolved), or None."""
        name = route.model if route.model is not None else (parsed or {}).get("model")
        if not isinstance(name, str) or self._gateway.router.is_content_routed(name):
            return None
        return self._gateway.config.resolve(name)

    def _rewrite(self, route: Route, parsed: dict[str, Any], caller: Caller | None) -> bool:
        """Rewrite a checked body into what every backend takes; whether anything changed.

        - Messages system turns from real clients go into `system` (router_plugins/client_dialects.py).
        - `auto` on count_tokens (which no LiteLLM hook sees) becomes the model the same messages would go to.
        """
        if route.operation not in (Operation.MESSAGES, Operation.COUNT_TOKENS):
            return False
        changed = client_dialects.fold_system_turns(parsed)
        if route.operation is Operation.COUNT_TOKENS and caller is not None and self._gateway.router.is_content_routed(parsed.get("model")):
            parsed["model"] = self._gateway.router.decide(parsed, Shape.MESSAGES, self._gateway.availability_for(caller)).model
            changed = True
        return changed

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
        limit = self._gateway.config.max_request_bytes  # read per request: a reload may change it
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _BodyTooLarge()
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _litellm_call_id(scope: Scope) -> str:
    """The id LiteLLM gives this request, which its hooks key what they learn by: the client's own
    `x-litellm-call-id` where LiteLLM takes it, else one the door sets on the request for LiteLLM to take."""
    given = dict(scope["headers"]).get(b"x-litellm-call-id", b"").decode("latin-1")
    if 0 < len(given) <= MAX_LITELLM_CALL_ID_LENGTH:
        return given
    call_id = str(uuid.uuid4())
    scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"x-litellm-call-id"] + [(b"x-litellm-call-id", call_id.encode())]
    return call_id


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later calls wait for the client's disconnect, as usual

    return replay


async def _send_error(send: Any, error: ApiError, route: Route, keep: dict[bytes, bytes] | None = None) -> None:
    """keep: headers of the answer this one replaces, whose x- headers (request id, routing) it keeps."""
    payload = error.body(route.api)
    kept = [(name, value) for name, value in (keep or {}).items() if name.startswith(b"x-") and name != b"x-should-retry"]
    headers = [*error.headers(), *kept, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


_FAILED = "The gateway failed to handle this request; the cause is in its log."
# Enough of an error answer's body to read its message for the log line.
_ERROR_BODY_LIMIT = 64 * 1024


class _Answer:
    """The answer to one HTTP request as it goes out, whoever makes it: the door, our endpoints or LiteLLM.

    Its status settles what the request logs (llm_router/logs.py). A failed request (4xx or 5xx)
    is logged as one line: status, method, path, key name, LiteLLM's request id, the group routing
    chose or that answered, and the message; never the body (it may hold a prompt) or a key. A
    plain-text 5xx (LiteLLM's error path imports a database module we don't install; a FastAPI
    app's own 500 page) goes out as a JSON error in the caller's API format, with the same status."""

    def __init__(self, send: Any, scope: Scope, route: Route, settle: Callable[[int | None], None],
                 our_answer: Callable[[str], ApiError | None], note_decision: Callable[[dict[str, Any]], None],
                 routed: Callable[[str], dict[str, str]]) -> None:
        """our_answer: the error our failure hook made of a failed request, by LiteLLM's request id.
        note_decision: where a routed request's decision and outcome go (the status page's table).
        routed: a request's routing headers, by LiteLLM's request id ({} before routing decided)."""
        self._send = send
        self._scope = scope
        self._route = route
        self._settle = settle
        self._our_answer = our_answer
        self._note_decision = note_decision
        self._routed = routed
        self.call_id: str | None = None
        """LiteLLM's id for a request its hooks see."""
        self._began = time.monotonic()
        self.requested: Any = None
        self.caller: Caller | None = None
        self.added_headers: list[tuple[bytes, bytes]] = []
        """The door's own headers on the answer (a budget's remaining dollars)."""
        self.started = False
        self._status = 0
        self._headers: dict[bytes, bytes] = {}
        self._replaced = False
        self._logged = False
        self._error_body = b""
        self._turn: Turn | None = None
        self._keep: Callable[[Turn, dict[str, Any]], Awaitable[None]] | None = None
        self._final: AnswerReader | None = None
        self._remember_tier: Callable[[str, str], None] | None = None

    def keep_response(self, turn: Turn, keep: Callable[[Turn, dict[str, Any]], Awaitable[None]],
                      remember_tier: Callable[[str, str], None]) -> None:
        """A Responses answer: `keep` it (the Responses store) before the chunk that completes it goes out,
        so that the client's next turn, on any worker or replica, finds it; a streamed one also keeps its
        turn's tier for affinity (remember_tier: LiteLLM's call id, the response id)."""
        self._turn, self._keep, self._remember_tier = turn, keep, remember_tier

    @property
    def caller_name(self) -> str:
        return self.caller.name if self.caller else "-"

    async def refuse(self, error: ApiError) -> None:
        """The door's own refusal."""
        self._log(error.status, error.message)
        await _send_error(self.send, error, self._route)

    async def fail(self, exc: Exception) -> None:
        """An exception that escaped the app handling the request (the door catches it, once).

        An upstream's error (or LiteLLM's own deliberate one) whose answer LiteLLM's error path failed
        to send (router_plugins/errors.py, error_meant) is answered as it was meant, in the caller's
        format: a 4xx keeps its status and logs one line like any client error; an upstream's 5xx is
        a 502 naming it. Anything else is a bug, ours or LiteLLM's (its app raises it again after its
        plain-text 500): logged with its traceback, and a JSON 500 unless an answer has begun."""
        meant = error_meant(exc)
        if meant is not None and meant.status < 500 and not self.started:
            cause = str(exc).strip().split("\n", 1)[0][:200]
            self._log(meant.status, f"{meant.message.strip().split(chr(10), 1)[0][:300]} (LiteLLM failed to answer it: {type(exc).__name__}: {cause})")
            await _send_error(self.send, meant, self._route)
            return
        log.exception("failed on %s %r (key %s)", self._scope["method"], self._scope["path"], self.caller_name)
        self._logged = True
        if not self.started:
            await _send_error(self.send, meant or ApiError(500, _FAILED), self._route)

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started, self._status = True, message["status"]
            if self.call_id is not None and not any(name == b"x-llm-router-model" for name, _ in message.get("headers") or []):
                # A stream LiteLLM opened early, its keep-alive comments filling the wait for a cold start, carries
                # none of the headers the hooks give: routing decided before the wait began, so its headers go now.
                routed = [(name.encode(), value.encode("latin-1")) for name, value in self._routed(self.call_id).items()]
                message = {**message, "headers": [*(message.get("headers") or []), *routed]}
            if self.added_headers:
                message = {**message, "headers": [*(message.get("headers") or []), *self.added_headers]}
            self._headers = dict(message.get("headers") or [])
            self._settle(self._status)
            if self._status >= 500 and not _is_json_or_stream(message):
                # The app that sent it raises its exception next, which the door logs with its traceback.
                self._replaced = self._logged = True
                await _send_error(self._send, ApiError(self._status, _FAILED), self._route)
                return
            if self._keep is not None and self._status == 200:
                self._final = AnswerReader(streamed=self._headers.get(b"content-type", b"").startswith(b"text/event-stream"))
            ours = self._our_answer(self._headers.get(b"x-litellm-call-id", b"").decode("latin-1")) if self._status >= 500 else None
            if ours is not None and self._route.api is Api.ANTHROPIC:
                # LiteLLM's Messages route answers a failed request from its last error, not from our
                # failure hook: the client gets the one clear error (every backend tried, and why).
                self._replaced = True
                self._status = ours.status
                self._log(ours.status, ours.message)
                await _send_error(self._send, ours, self._route, self._headers)
                return
        elif message["type"] == "http.response.body":
            if self._replaced:
                return  # the plain-text body it replaced
            if self._status >= 400 and not self._logged:
                self._error_body = (self._error_body + message.get("body", b""))[:_ERROR_BODY_LIMIT]
                if not message.get("more_body"):
                    self._log(self._status, _error_message(self._error_body))
            if not message.get("more_body"):
                self._note()
            if self._final is not None:
                await self._keep_final(message)
        await self._send(message)

    async def _keep_final(self, message: dict[str, Any]) -> None:
        assert self._final is not None and self._keep is not None and self._turn is not None and self._remember_tier is not None
        final = self._final.feed(message.get("body", b""), last=not message.get("more_body"))
        if final is None:
            return
        try:
            await self._keep(self._turn, final)
        except Exception:
            # The answer still goes out; a turn that continues it will be told it isn't kept.
            log.exception("the Responses store failed to keep a response (key %s)", self.caller_name)
        if self._final.streamed and isinstance(final.get("id"), str):
            # The success hook that does this for a whole answer never sees a stream's id.
            self._remember_tier(self._headers.get(b"x-litellm-call-id", b"").decode("latin-1"), final["id"])

    def _note(self) -> None:
        """A routed request's decision and how it ended, once its answer is complete (streams included)."""
        reason = self._headers.get(b"x-llm-router-reason")
        if reason is None:
            return
        self._note_decision({
            "time": time.time(), "key": self.caller_name, "requested": self.requested if isinstance(self.requested, str) else None,
            "reason": reason.decode("latin-1"), "chosen": _header(self._headers, b"x-llm-router-model"),
            "served": _header(self._headers, b"x-litellm-model-group"), "status": self._status,
            "latency_ms": round((time.monotonic() - self._began) * 1000, 1),
        })

    def _log(self, status: int, message: str) -> None:
        self._logged = True
        request_id = self._headers.get(b"x-litellm-call-id", b"-").decode("latin-1")
        group = (self._headers.get(b"x-litellm-model-group") or self._headers.get(b"x-llm-router-model") or b"-").decode("latin-1")
        log.info("%d %s %r key=%s request=%s group=%s: %s", status, self._scope["method"], self._scope["path"], self.caller_name,
                 request_id, group, message)


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value else None


def _is_json_or_stream(start: dict[str, Any]) -> bool:
    content_type = dict(start.get("headers") or []).get(b"content-type", b"")
    return content_type.startswith((b"application/json", b"text/event-stream"))


def _error_message(body: bytes) -> str:
    """The first line of an error answer's message, in OpenAI's, Anthropic's or FastAPI's shape; or ''."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    error = parsed.get("error") if isinstance(parsed, dict) else None
    message = error.get("message") if isinstance(error, dict) else parsed.get("detail") if isinstance(parsed, dict) else None
    return str(message).strip().split("\n", 1)[0][:300] if message else ""


def _lifespan_send(gateway: Gateway, send: Any) -> Any:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            removed = inert_hooks.remove()
            log.info("LiteLLM proxy hooks with nothing to enforce here, turned off: %s", ", ".join(removed) or "none")
            gateway.start()
            # What LiteLLM built at import lives as long as the process: the collector need never walk it again.
            gc.collect()
            gc.freeze()
        elif message["type"] == "lifespan.shutdown.complete":
            await gateway.servers.close()
            gateway.state.close()  # what is queued is committed first
        await send(message)

    return wrapped


def _reload() -> None:
    """The owner reloaded the configuration: this worker takes it too, and so does its LiteLLM router."""
    config = load_config(default_config_path())
    gateway.reload(config)
    router_settings = litellm_config(config).get("router_settings") or {}
    if proxy_server.llm_router is not None:
        proxy_server.llm_router.update_settings(**{k: v for k, v in router_settings.items() if k in RUNTIME_UPDATABLE_ROUTER_SETTINGS})
    log.info("configuration reloaded")


gateway = Gateway(load_config(default_config_path()))
logs.configure(gateway.paths.log_dir, gateway.secrets)
_litellm_auth = LiteLLMAuth(gateway.access)
custom_auth = _litellm_auth.authenticate
router_hooks = RouterHooks(gateway, _litellm_auth)
app = GatewayApp(gateway, litellm_app)
gateway.servers.on_reload(_reload)
