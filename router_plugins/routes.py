"""Which routes llm-router serves, who may reach each, and what each of them is.

Deny by default, twice. A path is an inference, team or public route only if it fully matches
one of the templates below; of LiteLLM's other routes only a few read-only admin ones are served
(to the master key). Everything else LiteLLM mounts is not served at all: its management routes
need its database, its provider pass-through and provider-default routes (images, audio, evals,
videos, vector stores, realtime, `/openai/...`, `/anthropic/...`) reach hosts the config doesn't
name, and whatever a LiteLLM upgrade adds stays off until it is listed here. Ids match `[^/]+`
even where LiteLLM's own template takes a whole sub-path, so a template here never matches a path
that LiteLLM would hand to a route not listed. A route not served is refused with its own reason
(not_served_message: an API llm-router doesn't serve, a provider pass-through, or LiteLLM's own
management routes) and a list of what llm-router serves.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache

from router_plugins.errors import Api


class Access(str, enum.Enum):
    PUBLIC = "public"
    """Anyone, even without a key: load-balancer probes that reveal nothing."""
    TEAM = "team"
    """Any valid key: the model list, health, explain."""
    INFERENCE = "inference"
    """Any valid key, within its models and its rpm."""
    ADMIN = "admin"
    """The master key only."""
    NOT_SERVED = "not served"
    """Nobody: 501 for the master key (a team key still gets 403, no key 401)."""
    WRONG_METHOD = "wrong method"
    """A path we serve, asked with a method we don't: 405."""


class Operation(str, enum.Enum):
    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    RESPONSES = "responses"
    RESPONSE_BY_ID = "response_by_id"
    MESSAGES = "messages"
    COUNT_TOKENS = "count_tokens"
    BATCHES = "batches"
    BATCH_BY_ID = "batch_by_id"
    FILES = "files"
    OTHER = "other"

    @property
    def can_reach_any_model(self) -> bool:
        """A batch file, and a file for one, can name any model: the gateway can't check which."""
        return self in (Operation.BATCHES, Operation.BATCH_BY_ID, Operation.FILES)


@dataclass(frozen=True)
class Route:
    access: Access
    operation: Operation
    api: Api
    model: str | None = None
    """The model named in the path (`/engines/{model}/...`, `/openai/deployments/{model}/...`)."""
    allowed: tuple[str, ...] = ()
    """For WRONG_METHOD: the methods the path takes."""
    litellm_hooks: bool = True
    """Whether LiteLLM runs its pre-call hooks, its rate limiter among them, on this route."""


@dataclass(frozen=True)
class Template:
    """Paths (OpenAPI-style, `{model}` and `{id}`-like parameters) and the methods they take."""

    methods: frozenset[str]
    paths: tuple[str, ...]
    access: Access
    operation: Operation
    litellm_hooks: bool = True


def _versioned(*paths: str) -> tuple[str, ...]:
    return tuple(prefix + path for path in paths for prefix in ("/v1", ""))


def _by_model(path: str) -> tuple[str, ...]:
    return (f"/openai/deployments/{{model}}{path}", f"/engines/{{model}}{path}")


def _template(methods: str, paths: tuple[str, ...], access: Access, operation: Operation = Operation.OTHER,
              litellm_hooks: bool = True) -> Template:
    return Template(frozenset(methods.split("|")), paths, access, operation, litellm_hooks)


TEMPLATES: tuple[Template, ...] = (
    _template("POST", _versioned("/chat/completions"), Access.INFERENCE, Operation.CHAT),
    _template("POST", _by_model("/chat/completions"), Access.INFERENCE, Operation.CHAT),
    _template("POST", _versioned("/completions"), Access.INFERENCE, Operation.COMPLETIONS),
    _template("POST", _by_model("/completions"), Access.INFERENCE, Operation.COMPLETIONS),
    _template("POST", _versioned("/embeddings"), Access.INFERENCE, Operation.EMBEDDINGS),
    _template("POST", _by_model("/embeddings"), Access.INFERENCE, Operation.EMBEDDINGS),
    _template("POST", _versioned("/responses", "/responses/compact"), Access.INFERENCE, Operation.RESPONSES),
    # LiteLLM counts tokens here, and on count_tokens, without running its pre-call hooks.
    _template("POST", _versioned("/responses/input_tokens"), Access.INFERENCE, Operation.RESPONSES, litellm_hooks=False),
    _template("GET|DELETE", _versioned("/responses/{response_id}"), Access.INFERENCE, Operation.RESPONSE_BY_ID),
    _template("GET", _versioned("/responses/{response_id}/input_items"), Access.INFERENCE, Operation.RESPONSE_BY_ID),
    _template("POST", _versioned("/responses/{response_id}/cancel"), Access.INFERENCE, Operation.RESPONSE_BY_ID),
    _template("POST", ("/v1/messages",), Access.INFERENCE, Operation.MESSAGES),
    _template("POST", ("/v1/messages/count_tokens",), Access.INFERENCE, Operation.COUNT_TOKENS, litellm_hooks=False),
    _template("GET|POST", _versioned("/batches"), Access.INFERENCE, Operation.BATCHES),
    _template("GET", _versioned("/batches/{batch_id}"), Access.INFERENCE, Operation.BATCH_BY_ID),
    _template("POST", _versioned("/batches/{batch_id}/cancel"), Access.INFERENCE, Operation.BATCH_BY_ID),
    _template("GET|POST", _versioned("/files"), Access.INFERENCE, Operation.FILES),
    _template("GET|DELETE", _versioned("/files/{file_id}"), Access.INFERENCE, Operation.FILES),
    _template("GET", _versioned("/files/{file_id}/content"), Access.INFERENCE, Operation.FILES),
    _template("GET", _versioned("/models", "/models/{model_id}"), Access.TEAM),
    _template("GET", _versioned("/health"), Access.TEAM),
    _template("POST", ("/v1/router/explain",), Access.TEAM),
    _template("GET", ("/v1/router/usage",), Access.TEAM),
    _template("GET|HEAD|OPTIONS", ("/health/liveliness", "/health/liveness", "/health/readiness"), Access.PUBLIC),
    _template("GET", (*_versioned("/model/info"), "/model_group/info", "/routes", "/openapi.json", "/active/callbacks",
                      "/get/config/callbacks", "/debug/asyncio-tasks", "/utils/supported_openai_params", "/metrics",
                      "/v1/router/servers", "/v1/router/status", "/v1/router/status/charts", "/router/ui"), Access.ADMIN),
    _template("POST", ("/utils/token_counter", "/utils/transform_request", "/v1/router/servers/{name}/{action}"), Access.ADMIN),
)


def _pattern(path: str) -> re.Pattern[str]:
    """`{model}` takes a whole sub-path (deployment names hold slashes), control characters included (the
    body check refuses them with a clear 400); any other parameter one segment."""
    parts = re.split(r"(\{[a-z_]+\})", path)
    regex = "".join("(?P<model>.+)" if part == "{model}" else "[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(regex + r"\Z", re.DOTALL)


_COMPILED = tuple((template, _pattern(path)) for template in TEMPLATES for path in template.paths)


def api_of(path: str) -> Api:
    """The error format a caller of `path` reads: Anthropic's for Messages API paths, under any prefix."""
    return Api.ANTHROPIC if "/v1/messages" in path or path.startswith("/anthropic") else Api.OPENAI


@lru_cache(maxsize=4096)
def classify(method: str, path: str) -> Route:
    path = path.rstrip("/") or "/"
    api = api_of(path)
    allowed: set[str] = set()
    for template, pattern in _COMPILED:
        match = pattern.match(path)
        if match and method in template.methods:
            return Route(template.access, template.operation, api, match.groupdict().get("model"), litellm_hooks=template.litellm_hooks)
        if match:
            allowed |= template.methods
    if allowed and method != "WEBSOCKET":
        return Route(Access.WRONG_METHOD, Operation.OTHER, api, allowed=tuple(sorted(allowed)))
    return Route(Access.NOT_SERVED, Operation.OTHER, api)


SERVED_SUMMARY = ("llm-router serves chat completions, completions, embeddings, responses, messages and count_tokens, "
                  "batches and files, the model list, health, explain and usage; the README's 'Route policy' lists every route.")
# The APIs LiteLLM mounts that llm-router doesn't serve, by the path's first segment (after `/v1`).
_APIS_NOT_SERVED: dict[str, str] = {
    **dict.fromkeys(("assistants", "threads"), "OpenAI's Assistants API (assistants, threads, their messages and runs)"),
    "evals": "OpenAI's Evals API",
    "images": "the Images API (image generation and editing)",
    "audio": "the Audio API (speech and transcription)",
    "videos": "the Videos API",
    **dict.fromkeys(("realtime", "live"), "the Realtime API (realtime and live sessions)"),
    **dict.fromkeys(("vector_stores", "vector_store", "indexes", "rag", "search", "search_tools"), "the vector store, RAG and search APIs"),
    "fine_tuning": "the fine-tuning API",
    "rerank": "the rerank API",
    "moderations": "the moderations API",
    "ocr": "the OCR API",
    **dict.fromkeys(("containers", "skills", "agents", "a2a", "mcp", "mcp-rest", "tool", "toolset", "memory", "interactions", "workflows"),
                    "LiteLLM's agent, tool, container and MCP APIs"),
}
# LiteLLM's routes that forward to a provider's own API at its default host (`/openai/{endpoint}`, ...).
_PROVIDER_PREFIXES = frozenset({
    "openai", "openai_passthrough", "anthropic", "azure", "azure_ai", "azure_speech", "bedrock", "cohere", "gemini", "v1beta", "mistral",
    "vllm", "vertex_ai", "vertex-ai", "openrouter", "assemblyai", "eu.assemblyai", "watsonx", "nvidia_nim", "fal_ai", "gigachat",
    "langfuse", "milvus", "cursor", "tinyfish", "typesafe", "comprehendmedical", "transcribe",
})


def not_served_message(method: str, path: str) -> str:
    """Why llm-router answers 501 to a route it doesn't serve (Access.NOT_SERVED), and what it serves instead."""
    return f"llm-router doesn't serve {method} {path}: {_not_served_reason(method, [s for s in path.split('/') if s])}. {SERVED_SUMMARY}"


def _not_served_reason(method: str, segments: list[str]) -> str:
    first = segments[0] if segments else ""
    api = segments[1:] if first in ("v1", "v2") else segments
    if api[:2] == ["messages", "batches"]:
        return "it is part of Anthropic's Message Batches API, which llm-router doesn't serve"
    if api and api[0] in _APIS_NOT_SERVED:
        return f"it is part of {_APIS_NOT_SERVED[api[0]]}, which llm-router doesn't serve"
    # LiteLLM's per-provider routes: `/{provider}/v1/batches`, `/openai/v1/responses`, `/openai/{endpoint}` ...
    if first in _PROVIDER_PREFIXES or segments[1:3] in (["v1", "batches"], ["v1", "files"]):
        remainder = "/" + "/".join(segments[1:])
        served = classify(method, remainder)
        if served.access in (Access.INFERENCE, Access.TEAM):
            return f"llm-router serves it at {remainder}, not under /{first}/"
        named = next((s for s in segments[1:] if s in _APIS_NOT_SERVED), None)
        if named is not None:
            return f"it is part of {_APIS_NOT_SERVED[named]}, which llm-router doesn't serve"
        also = f"; llm-router serves {remainder} with {', '.join(served.allowed)}" if served.access is Access.WRONG_METHOD else ""
        return (f"it is LiteLLM's pass-through to a provider's own API (/{first}/...), which reaches a host the config doesn't "
                f"name and skips llm-router's routing and key checks{also}")
    return ("it is one of LiteLLM's own management, admin, UI or login routes, which llm-router leaves off (most need LiteLLM's "
            "database, which llm-router runs without); every LiteLLM route llm-router doesn't list, one a LiteLLM upgrade adds "
            "included, stays off")
