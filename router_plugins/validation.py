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
gateway at a host or account of its choosing: not by a deployment's own fields (`api_base`,
`api_key`, `aws_region_name` ...), nor by any field LiteLLM bans from request bodies, at the top
level or inside `extra_body` and `metadata`.
"""

from __future__ import annotations

import ipaddress
import json
import math
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from litellm.proxy.auth.auth_utils import is_request_body_safe
from litellm.types.router import CredentialLiteLLMParams

from router_plugins.errors import invalid
from router_plugins.routes import Operation

MAX_MESSAGES = 4096
# Anthropic blocks hold blocks (a tool_result's content, a document's `content` source) two levels
# deep at most: tool_result > document > image.
_MAX_BLOCK_DEPTH = 2
_CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_CHAT_PARTS = frozenset({"text", "image_url", "input_audio", "file", "refusal", "input_text", "input_image"})
_RESPONSES_ROLES = frozenset({"user", "assistant", "system", "developer"})
_RESPONSES_PARTS = frozenset({"input_text", "input_image", "input_file", "input_audio", "output_text", "refusal", "text"})
_MESSAGES_ROLES = frozenset({"user", "assistant", "system"})
_ANTHROPIC_BLOCKS = frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
                               "server_tool_use", "web_search_tool_result", "search_result", "container_upload"})
_LOCAL_HOSTNAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "metadata.google.internal", "metadata"})
# A deployment's credential and host fields (api_key, api_base, api_version, aws_region_name,
# vertex_location ...) and the headers sent with its requests: LiteLLM takes some of them from a
# request body, where each would choose the upstream host or the account it is reached with.
# LiteLLM's own banned list leaves part of them to an admin opt-in that llm-router doesn't offer.
_DEPLOYMENT_FIELDS = frozenset(CredentialLiteLLMParams.model_fields) | {"base_url", "extra_headers", "default_headers"}
# The prefixes by which LiteLLM takes a file id for a URL and downloads it
# (litellm/llms/openai/chat/gpt_transformation.py, contains_pdf_url).
_URL_FILE_ID_PREFIXES = ("http://", "https://", "www.")
_ENCODING_FORMATS = frozenset({"float", "base64"})
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


def parse_body(raw: bytes, operation: Operation, path_model: str | None = None) -> dict[str, Any] | None:
    """The body of a request to `operation`, checked; None for an operation whose body isn't checked here.

    path_model: the model a path names (`/engines/{model}/...`), which stands for the body's."""
    check = _CHECKS.get(operation)
    if check is None:
        return None
    body = parse_object(raw)
    _check_model(body, path_model, required=operation in _MODEL_REQUIRED)
    _check_upstream_fields(body)
    _check_common(body)
    check(body)
    return body


# ---- shared ------------------------------------------------------------------------------


def _check_model(body: dict[str, Any], path_model: str | None, required: bool) -> None:
    # The model name is echoed into a response header, where a control character breaks the answer.
    if path_model is not None and not path_model.isprintable():
        raise invalid("The model in the path may not contain control characters.", "model")
    model = body.get("model")
    if model is None:
        if required and path_model is None:
            raise invalid("'model' is required.", "model")
    elif not isinstance(model, str):
        raise invalid("'model' must be a string.", "model")
    elif not model.isprintable():
        raise invalid("'model' may not contain control characters.", "model")


def _check_upstream_fields(body: dict[str, Any]) -> None:
    extra = body.get("extra_body")
    if extra is not None and not isinstance(extra, dict):
        raise invalid("'extra_body' must be an object.", "extra_body")
    for prefix, fields in (("", body), ("extra_body.", extra or {})):
        name = next((f"{prefix}{field}" for field in fields if field in _DEPLOYMENT_FIELDS), None)
        if name is not None:
            raise invalid(f"'{name}' can't be set by a client: the gateway reaches only the upstreams its config names.", name)
    try:
        # No admin opt-in (general_settings) and no router: llm-router lets no client choose an upstream.
        is_request_body_safe(body, general_settings={}, llm_router=None, model="")
    except ValueError as exc:
        reason = str(exc).removeprefix("Rejected Request: ").split(". ")[0]
        raise invalid(f"{reason}: the gateway reaches only the upstreams its config names.") from None


def _check_common(body: dict[str, Any]) -> None:
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise invalid("'stream' must be true or false.", "stream")
    for name, (kind, low, high) in _RANGES.items():
        _number(body, name, kind, low, high)
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid("'metadata' must be an object.", "metadata")
    for name in ("tool_choice", "response_format"):
        _string_or_typed_object(body.get(name), name)


def _number(body: dict[str, Any], name: str, kind: type, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise invalid(f"'{name}' must be {'an integer' if kind is int else 'a number'}.", name)
    # A JSON integer may be far beyond any float: it is compared as an integer, never converted.
    if (isinstance(value, float) and math.isnan(value)) or not low <= value <= high:
        raise invalid(f"'{name}' must be between {_shown(low)} and {_shown(high)}.", name)


def _shown(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _string_or_typed_object(value: Any, where: str) -> None:
    if value is None or isinstance(value, str):
        return
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise invalid(f"'{where}' must be a string or an object with a string 'type'.", where)


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


def _tools(body: dict[str, Any], check_tool: Callable[[dict[str, Any], str], None]) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    for i, tool in enumerate(_list(tools, "tools", non_empty=False)):
        check_tool(_object(tool, f"tools[{i}]"), f"tools[{i}]")


def _named_tool(tool: dict[str, Any], where: str) -> None:
    """A Responses or Messages tool: a function with its name at the top, or a built-in one by its type."""
    _string(tool.get("type"), f"{where}.type", optional=True)
    _string(tool.get("name"), f"{where}.name", optional=True)


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
    _tools(body, _chat_tool)


def _chat_tool(tool: dict[str, Any], where: str) -> None:
    kind = tool.get("type", "function")
    _string(kind, f"{where}.type")
    if kind == "function":
        function = _object(tool.get("function"), f"{where}.function")
        _string(function.get("name"), f"{where}.function.name")


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
        file = _object(part.get("file"), f"{where}.file")
        _maybe_url(file.get("file_data"), f"{where}.file.file_data")
        _maybe_url(file.get("file_url"), f"{where}.file.file_url")
        _file_id(file.get("file_id"), f"{where}.file.file_id")


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
    _number(body, "dimensions", int, 1, 1_000_000)
    encoding = body.get("encoding_format")
    if encoding is not None and (not isinstance(encoding, str) or encoding not in _ENCODING_FORMATS):
        raise invalid("'encoding_format' must be float or base64.", "encoding_format")
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
    _string(body.get("previous_response_id"), "previous_response_id", optional=True)
    _tools(body, _named_tool)
    value = body.get("input")
    if isinstance(value, str) or (value is None and body.get("previous_response_id") is not None):
        return
    for i, item in enumerate(_list(value, "input")):
        _check_responses_item(item, f"input[{i}]")


def _check_responses_item(item: Any, where: str) -> None:
    item = _object(item, where)
    kind = item.get("type")
    if kind is not None and not isinstance(kind, str):
        raise invalid(f"'{where}.type' must be a string.", f"{where}.type")
    if kind in (None, "message"):
        _role(item, where, _RESPONSES_ROLES)
        _check_responses_parts(item.get("content"), f"{where}.content")
    elif kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            _string(item.get(name), f"{where}.{name}")
    elif kind == "function_call_output":
        _string(item.get("call_id"), f"{where}.call_id")
        output = item.get("output")
        if not isinstance(output, (str, list)):
            raise invalid(f"'{where}.output' must be a string or a list.", f"{where}.output")
        _check_responses_parts(output, f"{where}.output")


def _check_responses_parts(content: Any, where: str) -> None:
    """A message's content, or a function call's output: a string, or a list of parts."""
    if isinstance(content, str):
        return
    for j, part in enumerate(_list(content, where, non_empty=False)):
        part_where = f"{where}[{j}]"
        kind = _kind(part, part_where, _RESPONSES_PARTS)
        if kind in ("input_text", "output_text", "text"):
            _string(part.get("text"), f"{part_where}.text")
        elif kind == "input_image":
            _maybe_url(part.get("image_url"), f"{part_where}.image_url", image=True)
            _file_id(part.get("file_id"), f"{part_where}.file_id")
        elif kind == "input_file":
            _maybe_url(part.get("file_url"), f"{part_where}.file_url")
            _maybe_url(part.get("file_data"), f"{part_where}.file_data")
            _file_id(part.get("file_id"), f"{part_where}.file_id")


# ---- messages and count_tokens -----------------------------------------------------------


def _check_messages(body: dict[str, Any]) -> None:
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise invalid("'max_tokens' is required.", "max_tokens")
    _check_anthropic_conversation(body)


def _check_anthropic_conversation(body: dict[str, Any]) -> None:
    _check_system_prompt(body.get("system"), "system")
    for i, message in enumerate(_list(body.get("messages"), "messages")):
        where = f"messages[{i}]"
        message = _object(message, where)
        if _role(message, where, _MESSAGES_ROLES) == "system":
            # Real clients' system turns (router_plugins/client_dialects.py): folded into `system` at the door.
            _check_system_prompt(message.get("content"), f"{where}.content", required=True)
            continue
        content = message.get("content")
        if isinstance(content, str):
            continue
        for j, block in enumerate(_list(content, f"{where}.content")):
            _check_anthropic_block(block, f"{where}.content[{j}]", 0)
    _tools(body, _named_tool)


def _check_system_prompt(system: Any, where: str, required: bool = False) -> None:
    """A Messages system prompt: a string, or a list of text blocks."""
    if (system is None and not required) or isinstance(system, str):
        return
    for i, block in enumerate(_list(system, where, non_empty=False)):
        _kind(block, f"{where}[{i}]", frozenset({"text"}))
        _string(block.get("text"), f"{where}[{i}].text")


def _check_anthropic_block(block: Any, where: str, depth: int) -> None:
    kind = _kind(block, where, _ANTHROPIC_BLOCKS)
    if kind == "text":
        _string(block.get("text"), f"{where}.text")
    elif kind in ("image", "document"):
        _check_anthropic_source(_object(block.get("source"), f"{where}.source"), f"{where}.source", kind == "image", depth)
    elif kind == "tool_use":
        _string(block.get("id"), f"{where}.id")
        _string(block.get("name"), f"{where}.name")
    elif kind == "tool_result":
        _string(block.get("tool_use_id"), f"{where}.tool_use_id")
        _check_inner_blocks(block.get("content"), f"{where}.content", depth)
    elif kind == "search_result":
        _check_inner_blocks(block.get("content"), f"{where}.content", depth)


def _check_anthropic_source(source: dict[str, Any], where: str, image: bool, depth: int) -> None:
    kind = source.get("type")
    if kind == "url":
        url = source.get("url")
        _string(url, f"{where}.url")
        check_media_url(url, f"{where}.url", image=image)
    elif kind in ("base64", "text"):
        _string(source.get("data"), f"{where}.data")
    elif kind == "content":
        _check_inner_blocks(source.get("content"), f"{where}.content", depth)
    elif kind == "file":
        _file_id(source.get("file_id"), f"{where}.file_id")
    else:
        raise invalid(f"'{where}.type' must be base64, url, text, content or file.", f"{where}.type")


def _check_inner_blocks(content: Any, where: str, depth: int) -> None:
    """Blocks held by a block: a string, or a list of blocks, each checked as a message's are."""
    if content is None or isinstance(content, str):
        return
    if depth >= _MAX_BLOCK_DEPTH:
        raise invalid(f"'{where}' nests content blocks too deeply.", where)
    for k, inner in enumerate(_list(content, where, non_empty=False)):
        _check_anthropic_block(inner, f"{where}[{k}]", depth + 1)


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


def _file_id(value: Any, where: str) -> None:
    """A file id is passed on as it is, unless LiteLLM takes it for a URL: it would download it on the gateway."""
    if value is None:
        return
    _string(value, where)
    if value.lower().startswith(_URL_FILE_ID_PREFIXES):
        check_media_url(value if "://" in value else f"https://{value}", where)
        raise invalid(f"'{where}' is a URL, which the gateway would download itself; send the file inline as base64 (file_data).", where)


def check_media_url(url: str, where: str, image: bool = False) -> None:
    """An image or file URL: inline data, or https to a public host; raise a 400 ApiError otherwise."""
    if url.startswith("data:"):
        header = url[5:url.find(",")] if "," in url else ""
        if not header.endswith(";base64") or (image and not header.startswith("image/")):
            kind = "image/..." if image else "<type>"
            raise invalid(f"'{where}' must be a data:{kind};base64, URL or an https URL.", where)
        return
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise invalid(f"'{where}' is not a valid URL.", where) from None
    if parts.scheme not in ("http", "https") or not host:
        raise invalid(f"'{where}' must be an https URL or a base64 data URL.", where)
    if _is_internal_host(host):
        raise invalid(f"'{where}' points at a loopback, private, link-local or metadata address; send it inline as base64.", where)
    if parts.scheme == "http":
        # LiteLLM downloads a plain-http URL on the gateway itself for some providers (Anthropic's, for one).
        raise invalid(f"'{where}' must be an https URL or a base64 data URL: the gateway would fetch a plain-http URL itself.", where)


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
