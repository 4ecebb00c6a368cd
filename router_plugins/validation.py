"""Checking a chat-completion body before LiteLLM sees it.

LiteLLM accepts many malformed bodies and answers some with a 500 or forwards them
upstream; a gateway should answer each with a 400 in OpenAI's error format that names the
offending field. The checks look at structure only: no image is decoded or fetched, and an
image URL naming a loopback, private or link-local address is refused so that no component
behind us can be made to fetch it.
"""

from __future__ import annotations

import ipaddress
import json
import math
import socket
from typing import Any
from urllib.parse import urlsplit

from router_plugins.errors import invalid

MAX_MESSAGES = 4096
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal", "input_text", "input_image"})
_LOCAL_HOSTNAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "metadata.google.internal"})
_RANGES: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "presence_penalty": (float, -2.0, 2.0),
    "frequency_penalty": (float, -2.0, 2.0),
    "n": (int, 1, 128),
    "max_tokens": (int, 1, 10_000_000),
    "max_completion_tokens": (int, 1, 10_000_000),
}


def parse_chat_body(raw: bytes) -> dict[str, Any]:
    """The body as a dict, or raise a 400 ApiError naming what is wrong."""
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
    _check_chat_body(body)
    return body


def _check_chat_body(body: dict[str, Any]) -> None:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise invalid("'model' must be a string.", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("'messages' must be a non-empty list of message objects.", "messages")
    if len(messages) > MAX_MESSAGES:
        raise invalid(f"Too many messages ({len(messages)}); at most {MAX_MESSAGES}.", "messages")
    for i, message in enumerate(messages):
        _check_message(message, f"messages[{i}]")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise invalid("'stream' must be true or false.", "stream")
    for name, (kind, low, high) in _RANGES.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise invalid(f"'{name}' must be {'an integer' if kind is int else 'a number'}.", name)
        if not (low <= value <= high) or (isinstance(value, float) and math.isnan(value)):
            raise invalid(f"'{name}' must be between {low:g} and {high:g}; got {value}.", name)


def _check_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise invalid(f"'{where}' must be an object with 'role' and 'content'.", where)
    role = message.get("role")
    if role not in _ROLES:
        raise invalid(f"'{where}.role' must be one of {sorted(_ROLES)}.", f"{where}.role")
    content = message.get("content")
    if content is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return
        raise invalid(f"'{where}.content' is missing.", f"{where}.content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid(f"'{where}.content' must be a string or a list of content parts.", f"{where}.content")
    for j, part in enumerate(content):
        _check_part(part, f"{where}.content[{j}]")


def _check_part(part: Any, where: str) -> None:
    if not isinstance(part, dict) or part.get("type") not in _PART_TYPES:
        raise invalid(f"'{where}' must be a content part with a known 'type' ({sorted(_PART_TYPES)}).", where)
    kind = part["type"]
    if kind in ("text", "input_text") and not isinstance(part.get("text"), str):
        raise invalid(f"'{where}.text' must be a string.", f"{where}.text")
    if kind in ("image_url", "input_image"):
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            raise invalid(f"'{where}.image_url.url' must be a string.", f"{where}.image_url")
        _check_image_url(url, f"{where}.image_url")


def _check_image_url(url: str, where: str) -> None:
    if url.startswith("data:"):
        header = url[5:url.find(",")] if "," in url else ""
        if not header.startswith("image/") or not header.endswith(";base64"):
            raise invalid(f"'{where}' must be a data:image/...;base64, URL or an https URL.", where)
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(f"'{where}' must be an http(s) URL or a base64 data URL.", where)
    if _is_internal_host(parts.hostname):
        raise invalid(f"'{where}' points at a loopback, private or link-local address; send the image inline as base64.", where)


def _is_internal_host(host: str) -> bool:
    host = host.strip("[]").lower().rstrip(".")
    if host in _LOCAL_HOSTNAMES or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            # URL fetchers also accept 127.1, 0x7f000001, 2130706433 and octal forms as IPv4.
            ip = ipaddress.ip_address(socket.inet_ntoa(socket.inet_aton(host)))
        except OSError:
            return False
    return not ip.is_global
