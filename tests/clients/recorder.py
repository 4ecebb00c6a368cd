"""A recording reverse proxy: what a real client sends, exactly as it sends it, before anything of ours reads it.

It listens on loopback, writes each request (method, path with its query string, headers, JSON
body) to a list, forwards it unchanged to an upstream (the fake cloud, or a gateway), and streams
the answer back. The corpus under tests/clients/corpus is recorded through it
(`python -m tests.clients.record`), and the client tests read it to see what reached the door.

Credentials never reach a record: `authorization`, `x-api-key` and any header naming a key or a
token are dropped.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import uvicorn

from tests.support.gateway import free_port

_SECRET_HEADER_WORDS = ("authorization", "api-key", "token", "cookie", "secret")
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "accept-encoding"})


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str
    """The path with its query string, as the client sent it (`/v1/messages?beta=true`)."""
    headers: dict[str, str]
    body: Any

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def recordable_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """A request's headers without credentials or hop-by-hop ones, names lower-cased."""
    kept = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if name in _HOP_HEADERS or any(word in name for word in _SECRET_HEADER_WORDS):
            continue
        kept[name] = raw_value.decode("latin-1")
    return kept


class Recorder:
    """`with Recorder(upstream) as rec:` point a client at `rec.url`; read `rec.calls` afterwards."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.calls: list[RecordedCall] = []
        self._lock = threading.Lock()
        config = uvicorn.Config(self._app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", interface="asgi3")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"recorder-{self.port}", daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the recorder failed to start")
            self._thread.join(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def calls_to(self, path_prefix: str) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self.calls if c.path.startswith(path_prefix)]

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope["path"] + (f"?{query}" if query else "")
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self.calls.append(RecordedCall(scope["method"], path, recordable_headers(scope["headers"]), body))
        forwarded = [(n, v) for n, v in scope["headers"] if n.decode("latin-1").lower() not in _HOP_HEADERS]
        async with httpx.AsyncClient(timeout=httpx.Timeout(120, connect=5)) as client:
            request = client.build_request(scope["method"], self.upstream + path, headers=forwarded, content=raw)
            response = await client.send(request, stream=True)
            try:
                headers = [(n.encode(), v.encode()) for n, v in response.headers.items()
                           if n.lower() not in ("content-length", "transfer-encoding", "connection")]
                await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except (httpx.HTTPError, asyncio.CancelledError, OSError):
                await response.aclose()
                raise
            await response.aclose()
