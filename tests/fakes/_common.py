"""Wire-format helpers (OpenAI chat, completions, embeddings, Responses) shared by the fake servers.

Standard library only, so that the fakes start in a few tens of milliseconds.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

JSON = dict[str, Any]

USER_TEXT_CAP = 200
STREAM_PARTS = 4


# --------------------------------------------------------------------------- text


def text_of(content: Any) -> str:
    """Text of an OpenAI/Anthropic message content: a string or a list of parts/blocks (Responses' `input_text` too)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") in ("text", "input_text"):
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
                return text_of(item["content"])[:USER_TEXT_CAP]
    return ""


def response_object(response_id: str, model: str, status: str, output: list[JSON], input_tokens: int, output_tokens: int) -> JSON:
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
    return response_object(new_id("resp_"), model, "completed", [_message_item(new_id("msg_"), text, "completed")],
                            input_tokens, count_tokens(text))


def openai_response_events(model: str, text: str, input_tokens: int) -> list[tuple[str, JSON]]:
    """The Responses API's stream for one text answer: (event name, data) pairs."""
    response_id, item_id = new_id("resp_"), new_id("msg_")
    part = {"type": "output_text", "text": "", "annotations": []}
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    events: list[tuple[str, JSON]] = [
        ("response.created", {"response": response_object(response_id, model, "in_progress", [], input_tokens, 0)}),
        ("response.in_progress", {"response": response_object(response_id, model, "in_progress", [], input_tokens, 0)}),
        ("response.output_item.added", {"output_index": 0, "item": _message_item(item_id, "", "in_progress")}),
        ("response.content_part.added", {**where, "part": part}),
    ]
    events += [("response.output_text.delta", {**where, "delta": piece}) for piece in split_text(text)]
    done = _message_item(item_id, text, "completed")
    events += [
        ("response.output_text.done", {**where, "text": text}),
        ("response.content_part.done", {**where, "part": {**part, "text": text}}),
        ("response.output_item.done", {"output_index": 0, "item": done}),
        ("response.completed", {"response": response_object(response_id, model, "completed", [done], input_tokens, count_tokens(text))}),
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
