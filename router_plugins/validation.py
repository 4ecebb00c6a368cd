"""Checking a request body at the door, against the published shape of the API it calls.

LiteLLM accepts many malformed bodies: it answers some with a 500, reports others as a backend
failure after retries, and forwards the rest to the provider (for a local model, after a cold
start for a request that can only fail). So the door checks every body that reaches a model,
chat completions, completions, embeddings, responses, messages and count_tokens under every
alias, and answers a 400 naming the field, in the API's own error format.

The checks look at structure only and accept any JSON value without raising: no image is
decoded or fetched. One image-URL policy holds in every API's shapes: a URL naming a loopback,
private, link-local or metadata address, in any spelling, is refused, so that nothing behind us
(a local vLLM fetches image URLs itself) can be made to fetch it. A client may not point the
gateway at a host of its choosing (`api_base` and its kin).
"""

from __future__ import annotations

import ipaddress
import json
import math
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from router_plugins.errors import invalid
from router_plugins.routes import Operation

MAX_MESSAGES = 4096
_CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_CHAT_PARTS = frozenset({"text", "image_url", "input_audio", "file", "refusal", "input_text", "input_image"})
_RESPONSES_ROLES = frozenset({"user", "assistant", "system", "developer"})
_RESPONSES_PARTS = frozenset({"input_text", "input_image", "input_file", "input_audio", "output_text", "refusal", "text"})
_MESSAGES_ROLES = frozenset({"user", "assistant"})
_LOCAL_HOSTNAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "metadata.google.internal", "metadata"})
# Fields by which LiteLLM lets a request choose its own upstream host or credentials.
_CLIENT_UPSTREAM_FIELDS = ("api_base", "base_url", "api_key", "api_version", "user_config", "aws_access_key_id",
                           "aws_secret_access_key", "aws_session_token", "vertex_credentials", "azure_ad_token", "extra_headers")
_RANGES: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "presence_penalty": (float, -2.0, 2.0),
    "frequency_penalty": (float, -2.0, 2.0),
    "n": (int, 1, 128),
    "max_tokens": (int, 1, 10_000_000),
    "max_completion_tokens": (int, 1, 10_000_000),
    "max_output_tokens": (int, 1, 10_000_000),
    "top_k": (int, -1, 1_000_000),
}


def parse_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or raise a 400 ApiError."""
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise invalid("Request body is not valid UTF-8.", "request_body")
    except ValueError as exc:
        raise invalid(f"Request body is not valid JSON: {exc}", "request_body")
    except RecursionError:
        raise invalid("Request body is nested too deeply.", "request_body")
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object.", "request_body")
    return body


def parse_body(raw: bytes, operation: Operation, model_in_path: bool = False) -> dict[str, Any] | None:
    """The body of a request to `operation`, checked; None for an operation whose body isn't checked here."""
    check = _CHECKS.get(operation)
    if check is None:
        return None
    body = parse_object(raw)
    _check_common(body, model_required=operation in _MODEL_REQUIRED and not model_in_path)
    check(body)
    return body


# ---- shared ------------------------------------------------------------------------------


def _check_common(body: dict[str, Any], model_required: bool) -> None:
    model = body.get("model")
    if model is None:
        if model_required:
            raise invalid("'model' is required.", "model")
    elif not isinstance(model, str):
        raise invalid("'model' must be a string.", "model")
    elif not model.isprintable():
        raise invalid("'model' may not contain control characters.", "model")
    for name in _CLIENT_UPSTREAM_FIELDS:
        if name in body:
            raise invalid(f"'{name}' can't be set by a client: the gateway reaches only the upstreams its config names.", name)
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise invalid("'stream' must be true or false.", "stream")
    for name, (kind, low, high) in _RANGES.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise invalid(f"'{name}' must be {'an integer' if kind is int else 'a number'}.", name)
        if math.isnan(value) or not (low <= value <= high):
            raise invalid(f"'{name}' must be between {low:g} and {high:g}; got {value}.", name)
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid("'metadata' must be an object.", "metadata")


def _list(value: Any, where: str, non_empty: bool = True) -> list[Any]:
    if not isinstance(value, list) or (non_empty and not value):
        raise invalid(f"'{where}' must be a {'non-empty ' if non_empty else ''}list.", where)
    if len(value) > MAX_MESSAGES:
        raise invalid(f"Too many items in '{where}' ({len(value)}); at most {MAX_MESSAGES}.", where)
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"'{where}' must be an object.", where)
    return value


def _string(value: Any, where: str, optional: bool = False) -> None:
    if not (isinstance(value, str) or (optional and value is None)):
        raise invalid(f"'{where}' must be a string.", where)


def _kind(part: Any, where: str, known: frozenset[str]) -> str:
    kind = part.get("type") if isinstance(part, dict) else None
    if not isinstance(kind, str) or kind not in known:
        raise invalid(f"'{where}' must be an object with a known 'type' ({', '.join(sorted(known))}).", where)
    return kind


def _role(message: dict[str, Any], where: str, known: frozenset[str]) -> str:
    role = message.get("role")
    if not isinstance(role, str) or role not in known:
        raise invalid(f"'{where}.role' must be one of {', '.join(sorted(known))}.", f"{where}.role")
    return role


def _tools(body: dict[str, Any], name_of: Callable[[dict[str, Any]], Any]) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    for i, tool in enumerate(_list(tools, "tools", non_empty=False)):
        tool = _object(tool, f"tools[{i}]")
        name = name_of(tool)
        if name is not None and not isinstance(name, str):
            raise invalid(f"'tools[{i}]' must name its function with a string.", f"tools[{i}]")


# ---- chat completions --------------------------------------------------------------------


def _check_chat(body: dict[str, Any]) -> None:
    for i, message in enumerate(_list(body.get("messages"), "messages")):
        where = f"messages[{i}]"
        message = _object(message, where)
        role = _role(message, where, _CHAT_ROLES)
        content = message.get("content")
        if content is None:
            if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
                continue
            raise invalid(f"'{where}.content' is missing.", f"{where}.content")
        if isinstance(content, str):
            continue
        for j, part in enumerate(_list(content, f"{where}.content", non_empty=False)):
            _check_chat_part(part, f"{where}.content[{j}]")
    _tools(body, lambda tool: (tool.get("function") or {}).get("name") if isinstance(tool.get("function"), dict) else None)


def _check_chat_part(part: Any, where: str) -> None:
    kind = _kind(part, where, _CHAT_PARTS)
    if kind in ("text", "input_text"):
        _string(part.get("text"), f"{where}.text")
    elif kind in ("image_url", "input_image"):
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            raise invalid(f"'{where}.image_url.url' must be a string.", f"{where}.image_url")
        check_media_url(url, f"{where}.image_url", image=True)
    elif kind == "file":
        file = part.get("file")
        if isinstance(file, dict):
            _maybe_url(file.get("file_data"), f"{where}.file.file_data")
            _maybe_url(file.get("file_url"), f"{where}.file.file_url")


# ---- completions, embeddings -------------------------------------------------------------


def _check_completions(body: dict[str, Any]) -> None:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return
    items = _list(prompt, "prompt")
    if not (all(isinstance(p, str) for p in items) or all(_is_token(t) for t in items)
            or all(isinstance(p, list) and all(_is_token(t) for t in p) for p in items)):
        raise invalid("'prompt' must be a string, a list of strings, or tokens (a list of integers, or lists of them).", "prompt")


def _check_embeddings(body: dict[str, Any]) -> None:
    value = body.get("input")
    if isinstance(value, str):
        return
    items = _list(value, "input")
    if not (all(isinstance(p, str) for p in items) or all(_is_token(t) for t in items)
            or all(isinstance(p, list) and p and all(_is_token(t) for t in p) for p in items)):
        raise invalid("'input' must be a string, a list of strings, or tokens (a list of integers, or lists of them).", "input")


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# ---- responses ---------------------------------------------------------------------------


def _check_responses(body: dict[str, Any]) -> None:
    _string(body.get("instructions"), "instructions", optional=True)
    value = body.get("input")
    if value is None and body.get("previous_response_id") is not None:
        return
    if isinstance(value, str):
        return
    for i, item in enumerate(_list(value, "input")):
        _check_responses_item(item, f"input[{i}]")
    _tools(body, lambda tool: tool.get("name"))


def _check_responses_item(item: Any, where: str) -> None:
    item = _object(item, where)
    kind = item.get("type")
    if kind is not None and not isinstance(kind, str):
        raise invalid(f"'{where}.type' must be a string.", f"{where}.type")
    if kind in (None, "message"):
        _role(item, where, _RESPONSES_ROLES)
        content = item.get("content")
        if isinstance(content, str):
            return
        for j, part in enumerate(_list(content, f"{where}.content", non_empty=False)):
            part_where = f"{where}.content[{j}]"
            part_kind = _kind(part, part_where, _RESPONSES_PARTS)
            if part_kind in ("input_text", "output_text", "text"):
                _string(part.get("text"), f"{part_where}.text")
            elif part_kind == "input_image":
                _maybe_url(part.get("image_url"), f"{part_where}.image_url", image=True)
            elif part_kind == "input_file":
                _maybe_url(part.get("file_url"), f"{part_where}.file_url")
                _maybe_url(part.get("file_data"), f"{part_where}.file_data")
    elif kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            _string(item.get(name), f"{where}.{name}")
    elif kind == "function_call_output":
        _string(item.get("call_id"), f"{where}.call_id")
        if not isinstance(item.get("output"), (str, list)):
            raise invalid(f"'{where}.output' must be a string or a list.", f"{where}.output")


# ---- messages and count_tokens -----------------------------------------------------------


def _check_messages(body: dict[str, Any]) -> None:
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise invalid("'max_tokens' is required.", "max_tokens")
    _check_anthropic_conversation(body)


def _check_anthropic_conversation(body: dict[str, Any]) -> None:
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        for i, block in enumerate(_list(system, "system", non_empty=False)):
            if _kind(block, f"system[{i}]", frozenset({"text"})) == "text":
                _string(block.get("text"), f"system[{i}].text")
    for i, message in enumerate(_list(body.get("messages"), "messages")):
        where = f"messages[{i}]"
        message = _object(message, where)
        _role(message, where, _MESSAGES_ROLES)
        content = message.get("content")
        if isinstance(content, str):
            continue
        for j, block in enumerate(_list(content, f"{where}.content")):
            _check_anthropic_block(block, f"{where}.content[{j}]")
    _tools(body, lambda tool: tool.get("name"))


_ANTHROPIC_BLOCKS = frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
                               "server_tool_use", "web_search_tool_result", "search_result", "container_upload"})


def _check_anthropic_block(block: Any, where: str, depth: int = 0) -> None:
    kind = _kind(block, where, _ANTHROPIC_BLOCKS)
    if kind == "text":
        _string(block.get("text"), f"{where}.text")
    elif kind in ("image", "document"):
        source = _object(block.get("source"), f"{where}.source")
        source_kind = source.get("type")
        if source_kind == "url":
            url = source.get("url")
            _string(url, f"{where}.source.url")
            check_media_url(url, f"{where}.source.url", image=kind == "image")
        elif source_kind == "base64":
            _string(source.get("data"), f"{where}.source.data")
        elif source_kind not in ("text", "content", "file"):
            raise invalid(f"'{where}.source.type' must be base64, url, text, content or file.", f"{where}.source.type")
    elif kind == "tool_use":
        _string(block.get("id"), f"{where}.id")
        _string(block.get("name"), f"{where}.name")
    elif kind == "tool_result":
        _string(block.get("tool_use_id"), f"{where}.tool_use_id")
        content = block.get("content")
        if isinstance(content, list) and depth == 0:
            for k, inner in enumerate(content):
                _check_anthropic_block(inner, f"{where}.content[{k}]", depth + 1)
        elif content is not None and not isinstance(content, (str, list)):
            raise invalid(f"'{where}.content' must be a string or a list of blocks.", f"{where}.content")


# ---- batches -----------------------------------------------------------------------------


def _check_batch(body: dict[str, Any]) -> None:
    for name in ("input_file_id", "endpoint", "completion_window"):
        _string(body.get(name), name)


_CHECKS: dict[Operation, Callable[[dict[str, Any]], None]] = {
    Operation.CHAT: _check_chat,
    Operation.COMPLETIONS: _check_completions,
    Operation.EMBEDDINGS: _check_embeddings,
    Operation.RESPONSES: _check_responses,
    Operation.MESSAGES: _check_messages,
    Operation.COUNT_TOKENS: _check_anthropic_conversation,
    Operation.BATCHES: _check_batch,
}
_MODEL_REQUIRED = frozenset({Operation.COMPLETIONS, Operation.EMBEDDINGS, Operation.MESSAGES, Operation.COUNT_TOKENS})


# ---- media URLs --------------------------------------------------------------------------


def _maybe_url(value: Any, where: str, image: bool = False) -> None:
    if value is None:
        return
    _string(value, where)
    check_media_url(value, where, image)


def check_media_url(url: str, where: str, image: bool = False) -> None:
    """An image or file URL: inline data, or http(s) to a public host; raise a 400 ApiError otherwise."""
    if url.startswith("data:"):
        header = url[5:url.find(",")] if "," in url else ""
        if not header.endswith(";base64") or (image and not header.startswith("image/")):
            kind = "image/..." if image else "<type>"
            raise invalid(f"'{where}' must be a data:{kind};base64, URL or an http(s) URL.", where)
        return
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise invalid(f"'{where}' is not a valid URL.", where) from None
    if parts.scheme not in ("http", "https") or not host:
        raise invalid(f"'{where}' must be an http(s) URL or a base64 data URL.", where)
    if _is_internal_host(host):
        raise invalid(f"'{where}' points at a loopback, private, link-local or metadata address; send it inline as base64.", where)


def _is_internal_host(host: str) -> bool:
    host = host.strip("[]").lower().rstrip(".")
    if host in _LOCAL_HOSTNAMES or host.endswith((".localhost", ".local", ".internal", ".localdomain")):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        try:
            # URL fetchers also accept 127.1, 0x7f000001, 2130706433 and octal forms as IPv4.
            ip = ipaddress.ip_address(socket.inet_ntoa(socket.inet_aton(host)))
        except (OSError, ValueError):
            return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global


