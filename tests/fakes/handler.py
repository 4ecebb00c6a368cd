"""HTTP plumbing shared by the fake servers: JSON, SSE (chunked), abrupt closes, and OpenAI answers
(chat and Responses, tool calls included).

Standard library only, so that the fakes start in a few tens of milliseconds.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

try:
    from . import _common as wire
    from . import tools
except ImportError:  # run as a script
    import _common as wire  # type: ignore[no-redef]
    import tools  # type: ignore[no-redef]

JSON = dict[str, Any]


def chat_text(body: JSON) -> str:
    """What a fake says to a chat request: the last user text, or the tool result it was given."""
    result = tools.chat_tool_result(body)
    return f"tool said: {result}" if result is not None else wire.last_user_text(body.get("messages"))


def responses_text(body: JSON) -> str:
    result = tools.responses_tool_result(body)
    return f"tool said: {result}" if result is not None else wire.responses_input_text(body.get("input"))


class FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default backlog of 5 drops SYNs under bursts of concurrent clients, which costs a 1 s retransmit.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response are routine here (timeouts, cancelled streams).
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class FakeHandler(BaseHTTPRequestHandler):
    """Request handler with JSON, SSE (chunked) and abrupt-close helpers."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two sends; with Nagle on, a keep-alive client's delayed ACK
    # would add ~40 ms to every reused connection, which no real upstream charges.
    disable_nagle_algorithm = True
    server_version = "fake-llm"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def route(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # skip trailers
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def read_json(self) -> JSON | None:
        """The request body as a JSON object, or None if it isn't one."""
        try:
            body = json.loads(self.read_body() or b"null")
        except (ValueError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) else None

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def send_empty(self, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def start_stream(self, headers: dict[str, str] | None = None) -> None:
        # Chunked encoding (not read-until-EOF) so that an abrupt close is a protocol
        # error for the client instead of looking like a normal end of body.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        self.wfile.flush()

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_sse(self, data: JSON | str, event: str | None = None) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        prefix = f"event: {event}\n" if event else ""
        self.send_chunk(f"{prefix}data: {text}\n\n".encode())

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def abort(self) -> None:
        """Drop the connection without finishing the response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_openai_response(self, model: str, content: str, body: JSON, made: Callable[[JSON], None] | None = None) -> None:
        """Answer a Responses API request, streaming if the body asks for it. made: given the response
        object (a stream's completed one) before it is sent."""
        prompt = wire.count_tokens(wire.responses_input_text(body.get("input")))
        tool = tools.responses_tool_to_call(body)
        if tool is not None:
            self.send_answer(body, tools.response_tool_call(model, tool, prompt), tools.response_tool_call_events(model, tool, prompt), made)
            return
        self.send_answer(body, wire.openai_response(model, content, prompt), wire.openai_response_events(model, content, prompt), made)

    def send_answer(self, body: JSON, whole: JSON, events: list[tuple[str | None, JSON | str]],
                    made: Callable[[JSON], None] | None = None) -> None:
        """`whole` as JSON, or `events` (name, data) as SSE when the body asks for a stream. made: given the
        response object (`whole`, or a Responses stream's completed one) before it is sent."""
        if not body.get("stream"):
            if made is not None:
                made(whole)
            self.send_json(200, whole, {"x-request-id": wire.new_id("req_")})
            return
        if made is not None:
            made(next((e["response"] for name, e in events if name == "response.completed" and isinstance(e, dict)), {}))
        self.start_stream({"x-request-id": wire.new_id("req_")})
        for name, event in events:
            self.send_sse(event, event=name)
        self.end_stream()

    def send_openai_chat(self, model: str, content: str, body: JSON, *, break_after_first: bool = False) -> None:
        """Answer an OpenAI chat request, streaming if the body asks for it."""
        prompt = wire.prompt_tokens(body.get("messages"))
        headers = {"x-request-id": wire.new_id("req_")}
        tool = tools.chat_tool_to_call(body)
        if tool is not None:
            chunks = [(None, chunk) for chunk in tools.chat_tool_call_chunks(model, tool)] + [(None, "[DONE]")]
            self.send_answer(body, tools.chat_tool_call_completion(model, tool, prompt), chunks)
            return
        if not body.get("stream"):
            self.send_json(200, wire.openai_chat_completion(model, content, prompt), headers)
            return
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        chunks = wire.openai_chat_chunks(model, content, prompt, include_usage)
        self.start_stream(headers)
        if break_after_first:
            for chunk in chunks[:2]:  # role chunk + one content chunk
                self.send_sse(chunk)
            self.abort()
            return
        for chunk in chunks:
            self.send_sse(chunk)
        self.send_sse("[DONE]")
        self.end_stream()
