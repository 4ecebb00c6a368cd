"""The gateway's own OpenAPI document (`GET /openapi.json`): every route it serves to a key-holder.

LiteLLM's document lists over 900 operations, most of which llm-router doesn't serve, and leaves
the request bodies of its inference routes undescribed. This one lists what a client can reach:
the inference routes under their aliases, the model list, health and explain, with each body's
fields. The field types are left open on purpose: the door checks them (router_plugins/
validation.py), so a tool that fuzzes from this document tries any JSON value in every field.
"""

from __future__ import annotations

from typing import Any

_ANY: dict[str, Any] = {}
_CHAT = {"model": {"type": "string"}, "messages": _ANY, "stream": _ANY, "tools": _ANY, "tool_choice": _ANY, "temperature": _ANY,
         "max_tokens": _ANY, "n": _ANY, "top_p": _ANY, "metadata": _ANY, "response_format": _ANY}
_COMPLETIONS = {"model": {"type": "string"}, "prompt": _ANY, "max_tokens": _ANY, "stream": _ANY, "temperature": _ANY}
_EMBEDDINGS = {"model": {"type": "string"}, "input": _ANY, "dimensions": _ANY, "encoding_format": _ANY}
_RESPONSES = {"model": {"type": "string"}, "input": _ANY, "instructions": _ANY, "stream": _ANY, "tools": _ANY,
              "max_output_tokens": _ANY, "metadata": _ANY, "previous_response_id": _ANY}
_MESSAGES = {"model": {"type": "string"}, "max_tokens": _ANY, "messages": _ANY, "system": _ANY, "stream": _ANY, "tools": _ANY,
             "tool_choice": _ANY, "metadata": _ANY, "temperature": _ANY}
_COUNT_TOKENS = {k: v for k, v in _MESSAGES.items() if k not in ("max_tokens", "stream")}
_BATCH = {"input_file_id": _ANY, "endpoint": _ANY, "completion_window": _ANY, "metadata": _ANY}

_MODEL_PATHS = ("/engines/{model}", "/openai/deployments/{model}")


def openapi_document(serves_files_and_batches: bool) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}

    def add(method: str, path: str, body: dict[str, Any] | None = None, required: tuple[str, ...] = ()) -> None:
        operation: dict[str, Any] = {"operationId": f"{method}{path}", "responses": {"default": {"description": "an answer or an error"}}}
        parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in _parameters(path)]
        if parameters:
            operation["parameters"] = parameters
        if body is not None:
            schema = {"type": "object", "properties": body, "required": list(required)}
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        paths.setdefault(path, {})[method] = operation

    for prefix in ("/v1", ""):
        add("post", f"{prefix}/chat/completions", _CHAT, ("messages",))
        add("post", f"{prefix}/completions", _COMPLETIONS, ("model", "prompt"))
        add("post", f"{prefix}/embeddings", _EMBEDDINGS, ("model", "input"))
        add("post", f"{prefix}/responses", _RESPONSES, ("input",))
        add("get", f"{prefix}/responses/{{response_id}}")
        add("delete", f"{prefix}/responses/{{response_id}}")
        add("get", f"{prefix}/responses/{{response_id}}/input_items")
        add("post", f"{prefix}/responses/{{response_id}}/cancel")
        add("get", f"{prefix}/models")
        add("get", f"{prefix}/models/{{model_id}}")
        if serves_files_and_batches:
            add("post", f"{prefix}/batches", _BATCH, ("input_file_id", "endpoint", "completion_window"))
            add("get", f"{prefix}/batches")
            add("get", f"{prefix}/batches/{{batch_id}}")
            add("get", f"{prefix}/files")
            add("get", f"{prefix}/files/{{file_id}}")
    for prefix in _MODEL_PATHS:
        add("post", f"{prefix}/chat/completions", {k: v for k, v in _CHAT.items() if k != "model"}, ("messages",))
        add("post", f"{prefix}/completions", {k: v for k, v in _COMPLETIONS.items() if k != "model"}, ("prompt",))
        add("post", f"{prefix}/embeddings", {k: v for k, v in _EMBEDDINGS.items() if k != "model"}, ("input",))
    add("post", "/v1/messages", _MESSAGES, ("model", "max_tokens", "messages"))
    add("post", "/v1/messages/count_tokens", _COUNT_TOKENS, ("model", "messages"))
    add("get", "/v1/health")
    add("post", "/v1/router/explain", _CHAT, ("messages",))
    return {"openapi": "3.0.3", "info": {"title": "llm-router", "version": "1"}, "paths": paths}


def _parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
