"""Which routes llm-router serves, who may reach each, and what each of them is.

Deny by default, twice. A path is an inference, team or public route only if it fully matches
one of the templates below; of LiteLLM's other routes only a few read-only admin ones are served
(to the master key). Everything else LiteLLM mounts is not served at all: its management routes
need its database, its provider pass-through and provider-default routes (images, audio, evals,
videos, vector stores, realtime, `/openai/...`, `/anthropic/...`) reach hosts the config doesn't
name, and whatever a LiteLLM upgrade adds stays off until it is listed here. Ids match `[^/]+`
even where LiteLLM's own template takes a whole sub-path, so a template here never matches a path
that LiteLLM would hand to a route not listed.
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


_ID = r"[^/]+"
_MODEL = r"(?P<model>.+)"

_TEMPLATES: tuple[tuple[str, str, Access, Operation], ...] = (
    ("POST", r"(/v1)?/chat/completions", Access.INFERENCE, Operation.CHAT),
    ("POST", rf"/(openai/deployments|engines)/{_MODEL}/chat/completions", Access.INFERENCE, Operation.CHAT),
    ("POST", r"(/v1)?/completions", Access.INFERENCE, Operation.COMPLETIONS),
    ("POST", rf"/(openai/deployments|engines)/{_MODEL}/completions", Access.INFERENCE, Operation.COMPLETIONS),
    ("POST", r"(/v1)?/embeddings", Access.INFERENCE, Operation.EMBEDDINGS),
    ("POST", rf"/(openai/deployments|engines)/{_MODEL}/embeddings", Access.INFERENCE, Operation.EMBEDDINGS),
    ("POST", r"(/v1)?/responses(/compact|/input_tokens)?", Access.INFERENCE, Operation.RESPONSES),
    ("GET|DELETE", rf"(/v1)?/responses/{_ID}", Access.INFERENCE, Operation.RESPONSE_BY_ID),
    ("GET", rf"(/v1)?/responses/{_ID}/input_items", Access.INFERENCE, Operation.RESPONSE_BY_ID),
    ("POST", rf"(/v1)?/responses/{_ID}/cancel", Access.INFERENCE, Operation.RESPONSE_BY_ID),
    ("POST", r"/v1/messages", Access.INFERENCE, Operation.MESSAGES),
    ("POST", r"/v1/messages/count_tokens", Access.INFERENCE, Operation.COUNT_TOKENS),
    ("GET|POST", r"(/v1)?/batches", Access.INFERENCE, Operation.BATCHES),
    ("GET", rf"(/v1)?/batches/{_ID}", Access.INFERENCE, Operation.BATCH_BY_ID),
    ("POST", rf"(/v1)?/batches/{_ID}/cancel", Access.INFERENCE, Operation.BATCH_BY_ID),
    ("GET|POST", r"(/v1)?/files", Access.INFERENCE, Operation.FILES),
    ("GET|DELETE", rf"(/v1)?/files/{_ID}", Access.INFERENCE, Operation.FILES),
    ("GET", rf"(/v1)?/files/{_ID}/content", Access.INFERENCE, Operation.FILES),
    ("GET", rf"(/v1)?/models(/{_ID})?", Access.TEAM, Operation.OTHER),
    ("GET", r"(/v1)?/health", Access.TEAM, Operation.OTHER),
    ("POST", r"/v1/router/explain", Access.TEAM, Operation.OTHER),
    ("GET|HEAD|OPTIONS", r"/health/(liveliness|liveness|readiness)", Access.PUBLIC, Operation.OTHER),
    ("GET", r"(/v1)?/model/info|/model_group/info|/routes|/openapi\.json|/active/callbacks|/get/config/callbacks"
            r"|/debug/asyncio-tasks|/utils/supported_openai_params|/metrics|/v1/router/servers", Access.ADMIN, Operation.OTHER),
    ("POST", r"/utils/token_counter|/utils/transform_request|/v1/router/servers/[^/]+/[^/]+", Access.ADMIN, Operation.OTHER),
)

_COMPILED = tuple(
    (frozenset(methods.split("|")), re.compile(pattern + r"\Z"), access, operation)
    for methods, pattern, access, operation in _TEMPLATES
)


def api_of(path: str) -> Api:
    """The error format a caller of `path` reads: Anthropic's for Messages API paths, under any prefix."""
    return Api.ANTHROPIC if "/v1/messages" in path or path.startswith("/anthropic") else Api.OPENAI


@lru_cache(maxsize=4096)
def classify(method: str, path: str) -> Route:
    path = path.rstrip("/") or "/"
    api = api_of(path)
    allowed: set[str] = set()
    for methods, pattern, access, operation in _COMPILED:
        match = pattern.match(path)
        if match and method in methods:
            return Route(access, operation, api, match.groupdict().get("model"))
        if match:
            allowed |= methods
    if allowed and method != "WEBSOCKET":
        return Route(Access.WRONG_METHOD, Operation.OTHER, api, allowed=tuple(sorted(allowed)))
    return Route(Access.NOT_SERVED, Operation.OTHER, api)
