"""The ASGI app that `llm-router serve` runs: LiteLLM's proxy app with our endpoints beside it.

LiteLLM is composed, not patched: requests for our paths go to our FastAPI app, everything
else to LiteLLM's. In front of both, request bodies are size-limited (413) and chat bodies are
checked (400) before LiteLLM parses them. The lifespan is LiteLLM's: after its startup the
proxy hooks that can't act here are taken off (llm_router/inert_hooks.py) and the launcher's
monitor starts; after its shutdown every server we started is stopped.
"""

from __future__ import annotations

import logging
from typing import Any

from llm_router import environment

environment.apply_defaults()

from litellm.proxy.proxy_server import app as litellm_app  # noqa: E402  (needs the environment first)

from llm_router import inert_hooks, logs  # noqa: E402
from llm_router.gateway import current  # noqa: E402
from router_plugins import endpoints  # noqa: E402
from router_plugins.validation import InvalidRequest, parse_chat_body  # noqa: E402

log = logging.getLogger("llm_router.app")

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})

Scope = dict[str, Any]


class _BodyTooLarge(Exception):
    pass


class GatewayApp:
    def __init__(self, max_body_bytes: int) -> None:
        self._ours = endpoints.build_app()
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await litellm_app(scope, receive, _lifespan_send(send))
            return
        if scope["type"] != "http":
            await litellm_app(scope, receive, send)
            return
        target = self._ours if _is_ours(scope["path"]) else litellm_app
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await target(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
            if scope["path"] in CHAT_PATHS:
                parse_chat_body(body)
        except _BodyTooLarge:
            limit_mb = self._max_body / 2**20
            await _send_error(send, InvalidRequest(f"Request body is larger than the {limit_mb:g} MB limit.", "request_body", 413))
            return
        except InvalidRequest as exc:
            await _send_error(send, exc)
            return
        await target(scope, _replay(body, receive), send)

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


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later calls wait for the client's disconnect, as usual

    return replay


async def _send_error(send: Any, error: InvalidRequest) -> None:
    payload = error.body()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _lifespan_send(send: Any) -> Any:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            removed = inert_hooks.remove()
            log.info("LiteLLM proxy hooks with nothing to enforce here, turned off: %s", ", ".join(removed) or "none")
            current().launcher.start_monitor()
        elif message["type"] == "lifespan.shutdown.complete":
            await current().launcher.shutdown()
        await send(message)

    return wrapped


def _is_ours(path: str) -> bool:
    return path in endpoints.PATHS or path.startswith(endpoints.PATH_PREFIXES)


logs.configure(current().paths.log_dir)
app = GatewayApp(current().config.max_request_bytes)
