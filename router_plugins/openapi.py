"""The gateway's own OpenAPI document (`GET /openapi.json`): every route it serves to a key-holder.

LiteLLM's document lists over 900 operations, most of which llm-router doesn't serve, and leaves
the request bodies of its inference routes undescribed. This one is generated from the route
table (router_plugins/routes.py), so it lists exactly the inference and team routes the door
serves, under every alias. Each body's main fields are described as a client sends them, so that
requests generated from the document (by a fuzzer, say) get through to a backend; some fields are
left open to any JSON value on purpose: the door checks them (router_plugins/validation.py)."""

from __future__ import annotations

from typing import Any

from router_plugins.routes import TEMPLATES, Access, Operation

Schema = dict[str, Any]
_ANY: Schema = {}
_TEXT: Schema = {"type": "string", "maxLength": 200}
# `auto` is the default trigger name: the gateway picks the model from the request's content.
_MODEL: Schema = {"anyOf": [{"enum": ["auto"]}, {"type": "string"}]}
_BOOLEAN: Schema = {"type": "boolean"}
_TOOL_CHOICE: Schema = {"enum": ["auto", "none"]}


def _integer(low: int, high: int) -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high}


def _number(low: float, high: float) -> Schema:
    return {"type": "number", "minimum": low, "maximum": high}


def _messages(roles: list[str]) -> Schema:
    message = {"type": "object", "properties": {"role": {"enum": roles}, "content": _TEXT}, "required": ["role", "content"]}
    return {"type": "array", "minItems": 1, "maxItems": 3, "items": message}


_CHAT: Schema = {"model": _MODEL, "messages": _messages(["system", "user", "assistant"]), "stream": _BOOLEAN,
                 "temperature": _number(0, 2), "top_p": _number(0, 1), "max_tokens": _integer(1, 64), "n": _integer(1, 2),
                 "tools": _ANY, "tool_choice": _TOOL_CHOICE, "metadata": _ANY,
                 "response_format": {"type": "object", "properties": {"type": {"enum": ["text", "json_object"]}}, "required": ["type"]}}
_COMPLETIONS: Schema = {"model": _MODEL, "prompt": _TEXT, "max_tokens": _integer(1, 64), "stream": _BOOLEAN, "temperature": _number(0, 2)}
_EMBEDDINGS: Schema = {"model": _MODEL, "input": _TEXT, "dimensions": _ANY, "encoding_format": _ANY}
_RESPONSES: Schema = {"model": _MODEL, "input": {"anyOf": [_TEXT, _messages(["user", "assistant"])]}, "instructions": _TEXT,
                      "stream": _BOOLEAN, "max_output_tokens": _integer(16, 64), "tools": _ANY, "metadata": _ANY,
                      "previous_response_id": _ANY}
_COUNT_TOKENS: Schema = {"model": _MODEL, "messages": _messages(["user", "assistant"]), "system": _TEXT, "tools": _ANY,
                         "metadata": _ANY, "temperature": _number(0, 1)}
_MESSAGES: Schema = {**_COUNT_TOKENS, "max_tokens": _integer(1, 64), "stream": _BOOLEAN}
_BATCH: Schema = {"input_file_id": _TEXT, "endpoint": {"enum": ["/v1/chat/completions"]}, "completion_window": {"enum": ["24h"]},
                  "metadata": _ANY}
_UPLOAD: Schema = {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}, "purpose": {"type": "string"}},
                   "required": ["file", "purpose"]}

# The JSON body each operation takes on POST, and the fields it can't do without.
_BODIES: dict[Operation, tuple[Schema, tuple[str, ...]]] = {
    Operation.CHAT: (_CHAT, ("messages",)),
    Operation.COMPLETIONS: (_COMPLETIONS, ("model", "prompt")),
    Operation.EMBEDDINGS: (_EMBEDDINGS, ("model", "input")),
    Operation.RESPONSES: (_RESPONSES, ("input",)),
    Operation.MESSAGES: (_MESSAGES, ("model", "max_tokens", "messages")),
    Operation.COUNT_TOKENS: (_COUNT_TOKENS, ("model", "messages")),
    Operation.BATCHES: (_BATCH, ("input_file_id", "endpoint", "completion_window")),
}
# Explain takes the body of the request it explains; a chat one is described.
_EXPLAIN = "/v1/router/explain"
_SERVED = (Access.INFERENCE, Access.TEAM)


def openapi_document(serves_files_and_batches: bool) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for template in TEMPLATES:
        if template.access not in _SERVED or (template.operation.can_reach_any_model and not serves_files_and_batches):
            continue
        for path in template.paths:
            for method in sorted(template.methods):
                paths.setdefault(path, {})[method.lower()] = _operation(method, path, template.operation)
    return {"openapi": "3.0.3", "info": {"title": "llm-router", "version": "1"}, "paths": paths}


def _operation(method: str, path: str, operation: Operation) -> dict[str, Any]:
    described: dict[str, Any] = {"operationId": f"{method.lower()}{path}", "responses": {"default": {"description": "an answer or an error"}}}
    parameters = [{"name": name, "in": "path", "required": True, "schema": _MODEL if name == "model" else {"type": "string"}}
                  for name in _parameters(path)]
    if parameters:
        described["parameters"] = parameters
    content = _content(method, path, operation)
    if content is not None:
        described["requestBody"] = {"required": True, "content": content}
    return described


def _content(method: str, path: str, operation: Operation) -> dict[str, Any] | None:
    if method != "POST":
        return None
    if operation is Operation.FILES:
        return {"multipart/form-data": {"schema": _UPLOAD}}
    body = _BODIES[Operation.CHAT] if path == _EXPLAIN else _BODIES.get(operation)
    if body is None:
        return None
    fields, required = body
    if "{model}" in path:  # the path names the model
        fields, required = {k: v for k, v in fields.items() if k != "model"}, tuple(r for r in required if r != "model")
    return {"application/json": {"schema": {"type": "object", "properties": fields, "required": list(required)}}}


def _parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
