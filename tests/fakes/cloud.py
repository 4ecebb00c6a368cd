"""Fake OpenAI + Anthropic upstream that speaks both providers' real wire formats.

Behaviour is picked from the requested upstream model name, so one server serves
many scenarios at once (``fake-status-500``, ``claude-slow-0.5``, ``gpt-hang`` ...);
``FakeCloud.set_mode`` overrides it for one model name (for flapping upstreams).

    with FakeCloud() as cloud:
        httpx.post(f"{cloud.url}/v1/chat/completions", json={...})
        assert cloud.requests[-1].model == "fake-gpt"

OpenAI's files and batches API is served too (uploads and batches kept in memory, an unknown id
answering 404 as OpenAI does, an id with a ``status-NNN`` token answering that status), and so are
stored Responses (kept unless `store: false`; a previous_response_id or an id it doesn't hold is
refused as OpenAI refuses it).

Also runnable: ``python tests/fakes/cloud.py --port 8999`` serves until interrupted.
"""

from __future__ import annotations

import argparse
import email.parser
import json
import re
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

try:
    from . import _common as wire
    from . import handler, tools
except ImportError:  # run as a script
    import _common as wire  # type: ignore[no-redef]
    import handler  # type: ignore[no-redef]
    import tools  # type: ignore[no-redef]

JSON = dict[str, Any]
Provider = Literal["openai", "anthropic"]

OPENAI_PATHS = frozenset({"/v1/chat/completions", "/chat/completions", "/v1/responses", "/v1/completions", "/v1/embeddings"})
ANTHROPIC_PATHS = frozenset({"/v1/messages", "/messages", "/v1/messages/count_tokens"})
MODEL_PATHS = frozenset({"/v1/models", "/models"})
LISTED_MODELS = ["fake-gpt", "fake-claude"]


# ------------------------------------------------------------------------ behaviour

Kind = Literal["ok", "status", "stream-break-before", "stream-break-after", "hang"]

# Tokens must stand alone in the name ("fake-hang", not "shanghai").
_STATUS_RE = re.compile(r"(?<![a-z0-9])status-(\d{3})(?!\d)")
_SLOW_RE = re.compile(r"(?<![a-z0-9])slow-(\d+(?:\.\d+)?)")
_HANG_RE = re.compile(r"(?<![a-z0-9])hang(?![a-z0-9])")


@dataclass(frozen=True)
class Behaviour:
    kind: Kind = "ok"
    status: int = 200
    delay: float = 0.0  # from "slow-S"; applied before whatever `kind` does


def parse_behaviour(spec: str) -> Behaviour:
    """Behaviour for a model name or a set_mode value. Unknown names are "ok"."""
    spec = spec.lower()
    slow = _SLOW_RE.search(spec)
    delay = float(slow.group(1)) if slow else 0.0
    status = _STATUS_RE.search(spec)
    if status and int(status.group(1)) >= 300:
        return Behaviour("status", int(status.group(1)), delay)
    if "stream-break-before" in spec:
        return Behaviour("stream-break-before", delay=delay)
    if "stream-break-after" in spec:
        return Behaviour("stream-break-after", delay=delay)
    if _HANG_RE.search(spec):
        return Behaviour("hang", delay=delay)
    return Behaviour("ok", delay=delay)


# ------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    model: str
    stream: bool
    headers: dict[str, str]  # keys lower-cased
    body: JSON = field(repr=False)

    @property
    def api_key(self) -> str | None:
        """The key from `x-api-key` or a `Bearer` Authorization header, if any."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth.removeprefix("Bearer ").strip() or None


# ---------------------------------------------------------------------- error bodies

_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_error(status: int, message: str | None = None) -> JSON:
    error_type = _ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {
        "type": "error",
        "error": {"type": error_type, "message": message or f"Simulated upstream error (HTTP {status})."},
    }


def provider_error(provider: Provider, status: int, message: str | None = None) -> JSON:
    return anthropic_error(status, message) if provider == "anthropic" else wire.openai_error(status, message)


# --------------------------------------------------------------------- Anthropic format


def anthropic_message(model: str, text: str, input_tokens: int) -> JSON:
    return {
        "id": wire.new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": wire.count_tokens(text)},
    }


def anthropic_events(model: str, text: str, input_tokens: int) -> list[tuple[str, JSON]]:
    start = anthropic_message(model, "", input_tokens)
    start.update(content=[], stop_reason=None)
    start["usage"]["output_tokens"] = 1
    events: list[tuple[str, JSON]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
    ]
    events += [
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
        for piece in wire.split_text(text)
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": wire.count_tokens(text)},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


# ------------------------------------------------------------------ files and batches

# OpenAI's files and batches API, as much of it as LiteLLM forwards: an unknown id is a 404 in
# OpenAI's words, like the real one's; an id with a `status-NNN` token answers that status.
_FILES_RE = re.compile(r"(?:/v1)?/files(?:/(?P<id>[^/]+)(?P<content>/content)?)?")
_BATCHES_RE = re.compile(r"(?:/v1)?/batches(?:/(?P<id>[^/]+)(?P<cancel>/cancel)?)?")


class FilesAndBatches:
    """The fake's uploaded files and created batches, in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.files: dict[str, tuple[JSON, bytes]] = {}
        self.batches: dict[str, JSON] = {}

    def answer(self, method: str, route: str, body: bytes, content_type: str) -> tuple[int, Any] | None:
        """(status, JSON body, or bytes for a file's content) for a files or batches request; None for another path."""
        files, batches = _FILES_RE.fullmatch(route), _BATCHES_RE.fullmatch(route)
        match = files or batches
        if match is None:
            return None
        ident = match.group("id")
        status = _STATUS_RE.search(ident or "")
        if status:
            code = int(status.group(1))
            return code, wire.openai_error(code)
        with self._lock:
            if files:
                return self._files(method, ident, bool(files.group("content")), body, content_type)
            return self._batches(method, ident, bool(batches.group("cancel")), body)

    def _files(self, method: str, ident: str | None, content: bool, body: bytes, content_type: str) -> tuple[int, Any]:
        if ident is None and method == "GET":
            return 200, {"object": "list", "data": [meta for meta, _ in self.files.values()], "has_more": False}
        if ident is None and method == "POST":
            return self._upload(body, content_type)
        if ident not in self.files:
            return 404, _no_such("File", ident)
        if method == "DELETE":
            del self.files[ident]
            return 200, {"id": ident, "object": "file", "deleted": True}
        meta, data = self.files[ident]
        return 200, data if content else meta

    def _upload(self, body: bytes, content_type: str) -> tuple[int, Any]:
        parts = email.parser.BytesParser().parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        fields = {part.get_param("name", header="content-disposition"): part for part in parts.get_payload()} if parts.is_multipart() else {}
        upload, purpose = fields.get("file"), fields.get("purpose")
        if upload is None or purpose is None:
            return 400, wire.openai_error(400, "Missing required parameter: 'file' and 'purpose' are both required.")
        data = upload.get_payload(decode=True) or b""
        ident = wire.new_id("file-")
        meta = {"id": ident, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": upload.get_filename() or "upload", "purpose": (purpose.get_payload(decode=True) or b"").decode(), "status": "processed"}
        self.files[ident] = (meta, data)
        return 200, meta

    def _batches(self, method: str, ident: str | None, cancel: bool, body: bytes) -> tuple[int, Any]:
        if ident is None and method == "GET":
            return 200, {"object": "list", "data": list(self.batches.values()), "has_more": False}
        if ident is None and method == "POST":
            try:
                request = json.loads(body or b"null")
            except ValueError:
                request = None
            if not isinstance(request, dict):
                return 400, wire.openai_error(400, "Request body must be a JSON object.")
            file_id = request.get("input_file_id")
            if not isinstance(file_id, str) or file_id not in self.files:
                return 404, _no_such("File", str(file_id))
            batch = {"id": wire.new_id("batch_"), "object": "batch", "endpoint": request.get("endpoint"), "input_file_id": file_id,
                     "completion_window": request.get("completion_window"), "status": "validating", "created_at": int(time.time()),
                     "output_file_id": None, "error_file_id": None, "errors": None, "metadata": request.get("metadata"),
                     "request_counts": {"total": 0, "completed": 0, "failed": 0}}
            self.batches[batch["id"]] = batch
            return 200, batch
        if ident not in self.batches:
            return 404, _no_such("Batch", ident)
        if cancel:
            self.batches[ident] = {**self.batches[ident], "status": "cancelling"}
        return 200, self.batches[ident]


# ------------------------------------------------------------------ stored responses

_RESPONSE_RE = re.compile(r"(?:/v1)?/responses/(?P<id>[^/]+)(?P<items>/input_items)?")


class StoredResponses:
    """OpenAI's stored responses, as the real API keeps them: every response made without `store: false`,
    with the input it was given (its previous responses' included). A previous_response_id the fake doesn't
    hold is a 400 `previous_response_not_found`, and a GET or DELETE of an unknown id a 404, as OpenAI answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.kept: dict[str, tuple[JSON, list[Any]]] = {}

    def refuse_previous(self, body: JSON) -> tuple[int, JSON] | None:
        """The error for a request whose previous_response_id isn't kept here; None when it is (or none is named)."""
        previous = body.get("previous_response_id")
        with self._lock:
            if previous is None or previous in self.kept:
                return None
        error = wire.openai_error(400, f"Previous response with id '{previous}' not found.")
        error["error"].update(param="previous_response_id", code="previous_response_not_found")
        return 400, error

    def keep(self, body: JSON) -> Any:
        """What keeps the response made for `body` (unless it asks `store: false`)."""
        def made(response: JSON) -> None:
            if body.get("store") is False or not isinstance(response.get("id"), str):
                return
            own = body.get("input")
            items = [{"role": "user", "content": own}] if isinstance(own, str) else list(own or [])
            with self._lock:
                earlier = self.kept.get(body.get("previous_response_id") or "")
                history = [*earlier[1], *earlier[0].get("output", [])] if earlier else []
                self.kept[response["id"]] = (response, [*history, *items])
        return made

    def answer(self, method: str, route: str) -> tuple[int, JSON] | None:
        """GET (input_items too) or DELETE of a stored response; None for another path."""
        match = _RESPONSE_RE.fullmatch(route)
        if match is None:
            return None
        ident = match.group("id")
        with self._lock:
            kept = self.kept.get(ident)
            if kept is None:
                error = wire.openai_error(404, f"Response with id '{ident}' not found.")
                error["error"]["param"] = "response_id"
                return 404, error
            if method == "DELETE":
                del self.kept[ident]
                return 200, {"id": ident, "object": "response", "deleted": True}
        if match.group("items"):
            return 200, {"object": "list", "data": list(reversed(kept[1])), "has_more": False}
        return 200, kept[0]


def _no_such(kind: str, ident: str | None) -> JSON:
    error = wire.openai_error(404, f"No such {kind} object: {ident}")
    error["error"]["param"] = "id"
    return error


# ----------------------------------------------------------------------------- server


class _CloudServer(handler.FakeHTTPServer):
    cloud: FakeCloud


class _CloudHandler(handler.FakeHandler):
    server: _CloudServer

    def setup(self) -> None:
        super().setup()
        self.server.cloud._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.cloud._track(self.connection, add=False)

    def _files_or_batches(self, method: str) -> bool:
        """Answer a files or batches request (True), or leave the request to the caller (False)."""
        if not (_FILES_RE.fullmatch(self.route) or _BATCHES_RE.fullmatch(self.route)):
            return False
        body = self.read_body() if method != "GET" else b""
        status, answer = self.server.cloud.files_and_batches.answer(method, self.route, body, self.headers.get("Content-Type", ""))
        if isinstance(answer, bytes):
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        else:
            self.send_json(status, answer)
        return True

    def _stored_response(self, method: str) -> bool:
        """Answer a GET or DELETE of a stored response (True), or leave the request to the caller (False)."""
        answer = self.server.cloud.responses.answer(method, self.route)
        if answer is None:
            return False
        self.read_body()
        self.send_json(*answer)
        return True

    def do_DELETE(self) -> None:
        if not self._files_or_batches("DELETE") and not self._stored_response("DELETE"):
            self.read_body()
            self.send_json(404, wire.openai_error(404, f"Unknown path {self.route}"))

    def do_GET(self) -> None:
        if self._files_or_batches("GET") or self._stored_response("GET"):
            return
        if self.route in MODEL_PATHS:
            self.send_json(200, wire.openai_model_list(LISTED_MODELS, "fake-cloud"))
        elif self.route in ("/", "/health"):
            self.send_empty(200)
        else:
            self.send_json(404, wire.openai_error(404, f"Unknown path {self.route}"))

    def do_POST(self) -> None:
        provider: Provider
        if self.route in OPENAI_PATHS:
            provider = "openai"
        elif self.route in ANTHROPIC_PATHS:
            provider = "anthropic"
        elif self._files_or_batches("POST"):
            return
        else:
            self.read_body()
            self.send_json(404, wire.openai_error(404, f"Unknown path {self.route}"))
            return
        body = self.read_json()
        if body is None:
            self.send_json(400, provider_error(provider, 400, "Request body must be a JSON object."))
            return

        cloud = self.server.cloud
        model = str(body.get("model", ""))
        stream = bool(body.get("stream"))
        headers = {name.lower(): value for name, value in self.headers.items()}
        cloud._record(RecordedRequest(self.route, model, stream, headers, body))
        behaviour = cloud.behaviour_for(model)

        if behaviour.delay and cloud._stopping.wait(behaviour.delay):
            self.abort()
            return
        if behaviour.kind == "hang":
            cloud._stopping.wait()
            self.abort()
            return
        if behaviour.kind == "status":
            self._send_error(provider, behaviour.status)
            return
        if behaviour.kind == "stream-break-before":
            if stream:
                self.start_stream()
                self.abort()
            else:
                self._send_error(provider, 500)
            return

        break_after = behaviour.kind == "stream-break-after"
        if self.route == "/v1/responses":
            refused = cloud.responses.refuse_previous(body)
            if refused is not None:
                self.send_json(*refused)
                return
            self.send_openai_response(model, f"openai:{model} says: {handler.responses_text(body)}", body, cloud.responses.keep(body))
        elif self.route == "/v1/completions":
            prompt = str(body.get("prompt", ""))
            self.send_json(200, wire.openai_text_completion(model, f"openai:{model} says: {prompt[:wire.USER_TEXT_CAP]}", wire.count_tokens(prompt)))
        elif self.route == "/v1/embeddings":
            self.send_json(200, wire.openai_embeddings(model, body.get("input")))
        elif self.route == "/v1/messages/count_tokens":
            self.send_json(200, {"input_tokens": wire.prompt_tokens(body.get("messages"), body.get("system"))})
        elif provider == "openai":
            self.send_openai_chat(model, f"openai:{model} says: {handler.chat_text(body)}", body, break_after_first=break_after)
        else:
            self._send_anthropic(model, body, break_after=break_after)

    def _send_error(self, provider: Provider, status: int) -> None:
        headers = {"request-id" if provider == "anthropic" else "x-request-id": wire.new_id("req_")}
        if status == 429:
            headers["retry-after"] = "0"
        self.send_json(status, provider_error(provider, status), headers)

    def _send_anthropic(self, model: str, body: JSON, *, break_after: bool) -> None:
        input_tokens = wire.prompt_tokens(body.get("messages"), body.get("system"))
        tool = tools.messages_tool_to_call(body)
        if tool is not None:
            self.send_answer(body, tools.anthropic_tool_use(model, tool, input_tokens), tools.anthropic_tool_use_events(model, tool, input_tokens))
            return
        result = tools.messages_tool_result(body)
        said = f"tool said: {result}" if result is not None else wire.last_user_text(body.get("messages"))
        text = f"anthropic:{model} says: {said}"
        headers = {"request-id": wire.new_id("req_")}
        if not body.get("stream"):
            self.send_json(200, anthropic_message(model, text, input_tokens), headers)
            return
        self.start_stream(headers)
        for name, event in anthropic_events(model, text, input_tokens):
            self.send_sse(event, event=name)
            if break_after and name == "content_block_delta":
                self.abort()
                return
        self.end_stream()


class FakeCloud:
    """Fake OpenAI + Anthropic upstream on 127.0.0.1, served from a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requests: list[RecordedRequest] = []
        self._port = port
        self._lock = threading.Lock()
        self._modes: dict[str, Behaviour] = {}
        self.files_and_batches = FilesAndBatches()
        self.responses = StoredResponses()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _CloudServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------

    def start(self) -> FakeCloud:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _CloudServer((self.host, self._port), _CloudHandler)
        server.cloud = self
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-cloud-{self._port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections (including hung and slow requests)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # idle keep-alive connections would otherwise keep answering
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Start and block until interrupted (script mode)."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        finally:
            self.stop()

    def __enter__(self) -> FakeCloud:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    # scenario control --------------------------------------------------------------

    def set_mode(self, model: str, mode: str) -> None:
        """Override the behaviour for requests naming `model` ("ok", "status-503", "slow-2", "hang", ...)."""
        behaviour = parse_behaviour(mode)
        if behaviour == Behaviour() and mode.lower() not in ("ok", "normal"):
            raise ValueError(f"unknown fake-cloud mode {mode!r}")
        with self._lock:
            self._modes[model] = behaviour

    def clear_modes(self) -> None:
        with self._lock:
            self._modes.clear()

    def behaviour_for(self, model: str) -> Behaviour:
        with self._lock:
            override = self._modes.get(model)
        return override if override is not None else parse_behaviour(model)

    # recording -------------------------------------------------------------------

    def requests_for(self, model: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.model == model]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI + Anthropic upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    cloud = FakeCloud(args.host, args.port).start()
    print(f"INFO fake cloud listening on {cloud.url}", flush=True)
    try:
        cloud.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
