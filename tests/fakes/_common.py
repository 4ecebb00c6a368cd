"""HTTP plumbing and OpenAI wire-format helpers shared by the fake servers.

Standard library only, so that the fakes start in a few tens of milliseconds.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JSON = dict[str, Any]

USER_TEXT_CAP = 200
STREAM_PARTS = 4


# --------------------------------------------------------------------------- text


def text_of(content: Any) -> str:
    """Text of an OpenAI/Anthropic message content: a string or a list of parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
        return " ".join(parts)
    return ""


def last_user_text(messages: Any) -> str:
    """Text of the last `user` message, capped at USER_TEXT_CAP characters."""
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return text_of(message.get("content"))[:USER_TEXT_CAP]
    return ""


def count_tokens(text: str) -> int:
    """A crude but deterministic token count: whitespace-separated words, at least 1."""
    return max(1, len(text.split()))


def prompt_tokens(messages: Any, system: Any = None) -> int:
    texts = [text_of(system)]
    if isinstance(messages, list):
        texts += [text_of(m.get("content")) for m in messages if isinstance(m, dict)]
    return count_tokens(" ".join(texts))


def split_text(text: str, parts: int = STREAM_PARTS) -> list[str]:
    """Split into at most `parts` non-empty pieces that concatenate back to `text`."""
    if not text:
        return [""]
    size = -(-len(text) // parts)
    return [text[i : i + size] for i in range(0, len(text), size)]


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


# ------------------------------------------------------------------- OpenAI format


def openai_usage(prompt: int, completion: int) -> JSON:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def openai_chat_completion(model: str, content: str, prompt: int) -> JSON:
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": openai_usage(prompt, count_tokens(content)),
    }


def openai_chat_chunks(model: str, content: str, prompt: int, include_usage: bool) -> list[JSON]:
    """role chunk, content chunks, finish chunk and (optionally) the usage chunk."""
    completion_id = new_id("chatcmpl-")
    created = int(time.time())

    def chunk(delta: JSON, finish_reason: str | None) -> JSON:
        body: JSON = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            body["usage"] = None  # OpenAI sends an explicit null on every non-usage chunk
        return body

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    chunks += [chunk({"content": piece}, None) for piece in split_text(content)]
    chunks.append(chunk({}, "stop"))
    if include_usage:
        usage_chunk = chunk({}, None)
        usage_chunk["choices"] = []
        usage_chunk["usage"] = openai_usage(prompt, count_tokens(content))
        chunks.append(usage_chunk)
    return chunks


def openai_text_completion(model: str, text: str, prompt: int) -> JSON:
    return {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
        "usage": openai_usage(prompt, count_tokens(text)),
    }


def openai_embeddings(model: str, inputs: Any) -> JSON:
    texts = inputs if isinstance(inputs, list) else [inputs]
    data = [{"object": "embedding", "index": i, "embedding": [float(len(str(t)) % 7), 0.5, 0.25]} for i, t in enumerate(texts)]
    tokens = sum(count_tokens(str(t)) for t in texts)
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


# ------------------------------------------------------------ OpenAI Responses format


def responses_input_text(value: Any) -> str:
    """Text of the last user turn of a Responses API `input`: a string or a list of items."""
    if isinstance(value, str):
        return value[:USER_TEXT_CAP]
    if isinstance(value, list):
        for item in reversed(value):
            if isinstance(item, dict) and item.get("role", "user") == "user" and "content" in item:
                content = item["content"]
                if isinstance(content, list):
                    content = [{"type": "text", "text": p.get("text", "")} for p in content
                               if isinstance(p, dict) and p.get("type") in ("input_text", "text")]
                return text_of(content)[:USER_TEXT_CAP]
    return ""


def _response_object(response_id: str, model: str, status: str, output: list[JSON], input_tokens: int, output_tokens: int) -> JSON:
    return {
        "id": response_id, "object": "response", "created_at": int(time.time()), "status": status, "model": model,
        "output": output, "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
        "parallel_tool_calls": True, "temperature": 1.0, "top_p": 1.0, "tool_choice": "auto", "tools": [],
        "text": {"format": {"type": "text"}}, "truncation": "disabled",
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens,
                  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
    }


def _message_item(item_id: str, text: str, status: str) -> JSON:
    content = [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def openai_response(model: str, text: str, input_tokens: int) -> JSON:
    return _response_object(new_id("resp_"), model, "completed", [_message_item(new_id("msg_"), text, "completed")],
                            input_tokens, count_tokens(text))


def openai_response_events(model: str, text: str, input_tokens: int) -> list[tuple[str, JSON]]:
    """The Responses API's stream for one text answer: (event name, data) pairs."""
    response_id, item_id = new_id("resp_"), new_id("msg_")
    part = {"type": "output_text", "text": "", "annotations": []}
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    events: list[tuple[str, JSON]] = [
        ("response.created", {"response": _response_object(response_id, model, "in_progress", [], input_tokens, 0)}),
        ("response.in_progress", {"response": _response_object(response_id, model, "in_progress", [], input_tokens, 0)}),
        ("response.output_item.added", {"output_index": 0, "item": _message_item(item_id, "", "in_progress")}),
        ("response.content_part.added", {**where, "part": part}),
    ]
    events += [("response.output_text.delta", {**where, "delta": piece}) for piece in split_text(text)]
    done = _message_item(item_id, text, "completed")
    events += [
        ("response.output_text.done", {**where, "text": text}),
        ("response.content_part.done", {**where, "part": {**part, "text": text}}),
        ("response.output_item.done", {"output_index": 0, "item": done}),
        ("response.completed", {"response": _response_object(response_id, model, "completed", [done], input_tokens, count_tokens(text))}),
    ]
    return [(name, {"type": name, "sequence_number": n, **data}) for n, (name, data) in enumerate(events)]


def openai_model_list(model_ids: list[str], owned_by: str) -> JSON:
    created = int(time.time())
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": created, "owned_by": owned_by} for m in model_ids],
    }


_OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    429: ("requests", "rate_limit_exceeded"),
    503: ("server_error", "engine_overloaded"),
}


def openai_error(status: int, message: str | None = None) -> JSON:
    error_type, code = _OPENAI_ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {
        "error": {
            "message": message or f"Simulated upstream error (HTTP {status}).",
            "type": error_type,
            "param": None,
            "code": code,
        }
    }


# ---------------------------------------------------------------------- HTTP plumbing


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

    def send_openai_response(self, model: str, content: str, body: JSON) -> None:
        """Answer a Responses API request, streaming if the body asks for it."""
        prompt = count_tokens(responses_input_text(body.get("input")))
        if not body.get("stream"):
            self.send_json(200, openai_response(model, content, prompt), {"x-request-id": new_id("req_")})
            return
        self.start_stream({"x-request-id": new_id("req_")})
        for name, event in openai_response_events(model, content, prompt):
            self.send_sse(event, event=name)
        self.end_stream()

    def send_openai_chat(self, model: str, content: str, body: JSON, *, break_after_first: bool = False) -> None:
        """Answer an OpenAI chat request, streaming if the body asks for it."""
        prompt = prompt_tokens(body.get("messages"))
        headers = {"x-request-id": new_id("req_")}
        if not body.get("stream"):
            self.send_json(200, openai_chat_completion(model, content, prompt), headers)
            return
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        chunks = openai_chat_chunks(model, content, prompt, include_usage)
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
