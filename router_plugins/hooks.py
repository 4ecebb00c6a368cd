"""The LiteLLM hooks that make the proxy llm-router.

`llm-router serve` registers them itself (router_config/litellm_settings.py):
- `async_pre_call_hook` (once per request): content routing, and the key's allowlist for the
  group routing picked.
- `async_pre_call_deployment_hook` (every attempt, fallback hops and every route included): the
  key's allowlist for this deployment; fail fast on a missing cloud key; make sure a local
  deployment's server is running.
- failure/success events: release the server lease, remember why each attempt failed.
- `async_post_call_failure_hook`: one clear 502/503 (or 403) naming every backend tried.
- `async_post_call_response_headers_hook`: x-llm-router-model / x-llm-router-reason.

What we learn about a request (the decision, each attempt) is kept in the gateway's request
ledger by LiteLLM's call id, never in the request: on the Responses and Messages routes LiteLLM
forwards the client's `metadata` to the provider. The caller behind an attempt is read from
LiteLLM's own key object, which a client can't forge in a JSON body.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import litellm
from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import UserAPIKeyAuth

from launchers.server import ServerUnavailable
from router_config.gateway_config import Deployment
from router_plugins.access import FORBIDDEN
from router_plugins.auth import LiteLLMAuth
from router_plugins.errors import ApiError
from router_plugins.gateway import Gateway
from router_plugins.ledger import Attempt, Decision
from router_plugins.redaction import redact
from router_plugins.conversation import Shape, offers_tools
from router_plugins.routing import CANNOT_CALL_TOOLS

log = logging.getLogger("llm_router.hooks")

_SHAPES = {"completion": Shape.CHAT, "acompletion": Shape.CHAT, "responses": Shape.RESPONSES, "aresponses": Shape.RESPONSES,
           "anthropic_messages": Shape.MESSAGES}
_EXPLICIT_ONLY_CALL_TYPES = frozenset({"text_completion", "atext_completion", "embedding", "aembedding"})
# Upstream failures the router may fall back from; anything else (a 4xx the client caused)
# keeps its own status and message.
_BACKEND_FAILURE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class BackendUnavailable(Exception):
    """Raised from the deployment hook so LiteLLM moves to the next fallback without an HTTP call."""

    status_code = 503


class RouterHooks(CustomLogger):
    def __init__(self, gateway: Gateway, auth: LiteLLMAuth):
        super().__init__()
        self._gateway = gateway
        self._auth = auth

    # ---- once per request ------------------------------------------------------------------

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> dict:
        shape = _SHAPES.get(call_type)
        gw = self._gateway
        if shape is None:
            if call_type in _EXPLICIT_ONLY_CALL_TYPES and gw.router.is_content_routed(data.get("model")):
                raise HTTPException(400, f"'{data.get('model') or ''}' is routed by content on chat completions, responses and "
                                         "messages only; name a model here.")
            return data
        caller = self._auth.caller_of(user_api_key_dict)
        try:
            decision = gw.router.decide(data, shape, gw.availability_for(caller))
            gw.access.check_group(caller, decision.model)
        except ApiError as exc:
            raise HTTPException(exc.status, exc.message)
        data["model"] = decision.model
        gw.requests.decided(_request_id(data), Decision(decision.model, decision.reason))
        return data

    # ---- every attempt ---------------------------------------------------------------------

    async def async_pre_call_deployment_hook(self, kwargs: dict, call_type: Any) -> dict:
        gw = self._gateway
        deployment = gw.config.deployment(str((kwargs.get("model_info") or {}).get("id")))
        request_id = _request_id(kwargs)
        group = deployment.group if deployment else None
        caller = self._auth.caller_of(_litellm_key(kwargs))
        refused = gw.access.check_attempt(caller, group)
        if refused:
            gw.requests.attempted(request_id, Attempt(group or "this request", refused, unavailable=True))
            raise BackendUnavailable(refused)
        if deployment is None:
            return kwargs  # a call that names no deployment of ours (files, batches)
        if offers_tools(kwargs, Shape.CHAT) and not gw.router.can_call_tools(deployment.group):
            gw.requests.attempted(request_id, Attempt(deployment.group, CANNOT_CALL_TOOLS, unavailable=True))
            raise BackendUnavailable(CANNOT_CALL_TOOLS)
        try:
            if deployment.launch_spec is not None:
                await self._ensure_local(kwargs, call_type, deployment, request_id)
            else:
                _check_cloud_key(kwargs, deployment)
        except (ServerUnavailable, BackendUnavailable) as exc:
            why = exc.why if isinstance(exc, ServerUnavailable) else str(exc)
            gw.requests.attempted(request_id, Attempt(deployment.group, why, unavailable=True))
            raise
        return kwargs

    async def _ensure_local(self, kwargs: dict, call_type: Any, deployment: Deployment, request_id: str) -> None:
        gw = self._gateway
        assert deployment.launch_spec is not None
        name = deployment.launch_spec.name
        server = gw.launcher.server(name)
        if not server.is_ready and server.spec.cold_start == "fallback":
            decision = gw.requests.decision(request_id)
            content_routed = decision is not None and decision.reason != "explicit"
            if content_routed and gw.config.fallback_chain(deployment.group):
                server.start_in_background()
                raise ServerUnavailable(name, "cold; starting in the background while a fallback serves this request")
        await server.ensure_ready()
        server.lease(request_id)
        if deployment.launch_spec.system_prompt:
            _give_system_prompt(kwargs, call_type, deployment.launch_spec.system_prompt)

    # ---- attempt and request outcomes ------------------------------------------------------

    async def async_post_call_failure_deployment_hook(self, request_data: dict, original_exception: Exception, *args: Any, **kwargs: Any) -> None:
        gw = self._gateway
        request_id = _request_id(request_data)
        self._release(request_data)
        if isinstance(original_exception, (ServerUnavailable, BackendUnavailable)):
            return
        deployment = gw.config.deployment(str((request_data.get("model_info") or {}).get("id")))
        reason = _short_reason(original_exception)
        group = deployment.group if deployment else "this request"
        gw.requests.attempted(request_id, Attempt(group, reason, unavailable=reason.startswith("rate limited")))
        if deployment is not None and deployment.launch_spec is not None:
            await gw.launcher.server(deployment.launch_spec.name).check_alive()

    async def async_log_success_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._release(kwargs)

    async def async_log_failure_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._release(kwargs)

    def _release(self, kwargs: dict) -> None:
        request_id = _request_id(kwargs)
        for server in self._gateway.launcher.servers.values():
            server.release(request_id)

    async def async_post_call_failure_hook(
        self, request_data: dict, original_exception: Exception, user_api_key_dict: Any, traceback_str: str | None = None
    ) -> HTTPException | None:
        gw = self._gateway
        attempts = gw.requests.finish(_request_id(request_data)).attempts
        status = getattr(original_exception, "status_code", None)
        if isinstance(original_exception, HTTPException) or not attempts:
            return None
        if isinstance(status, int) and status not in _BACKEND_FAILURE_STATUSES and status < 500:
            return None
        if all(a.why == FORBIDDEN for a in attempts):
            return HTTPException(403, f"This key may not use {', '.join(a.group for a in attempts)}.")
        unavailable = all(a.unavailable for a in attempts)
        tried = "; ".join(f"{a.group}: {a.why}" for a in attempts)
        message = redact(f"All backends failed for this request. Tried {len(attempts)}: {tried}", gw.secrets())
        return HTTPException(503 if unavailable else 502, message)

    async def async_post_call_response_headers_hook(
        self, data: dict, user_api_key_dict: Any, response: Any, request_headers: dict | None = None, litellm_call_info: dict | None = None
    ) -> dict[str, str] | None:
        decision = self._gateway.requests.decision(_request_id(data))
        if decision is None:
            return None
        return {"x-llm-router-model": _header_value(decision.model), "x-llm-router-reason": decision.reason}


def _litellm_key(kwargs: dict) -> UserAPIKeyAuth | None:
    """LiteLLM's key object for this request, from whichever metadata the route keeps it in.

    Only an instance counts: a client can put anything in a JSON body, but not a Python object."""
    for name in ("litellm_metadata", "metadata"):
        metadata = kwargs.get(name)
        key = metadata.get("user_api_key_auth") if isinstance(metadata, dict) else None
        if isinstance(key, UserAPIKeyAuth):
            return key
    return None


def _give_system_prompt(kwargs: dict, call_type: Any, prompt: str) -> None:
    """The launch spec's system prompt, for a request that brings none, in the shape of its call."""
    shape = _SHAPES.get(str(getattr(call_type, "value", call_type)))
    if shape is Shape.RESPONSES:
        if not kwargs.get("instructions"):
            kwargs["instructions"] = prompt
    elif shape is Shape.MESSAGES:
        if not kwargs.get("system"):
            kwargs["system"] = prompt
    elif shape is Shape.CHAT:
        messages = kwargs.get("messages")
        if isinstance(messages, list) and not any(isinstance(m, dict) and m.get("role") in ("system", "developer") for m in messages):
            kwargs["messages"] = [{"role": "system", "content": prompt}, *messages]


def _header_value(text: str) -> str:
    """A name the client sent, safe in a header: anything but printable ASCII percent-encoded."""
    return quote(text, safe=_PRINTABLE)


_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def _check_cloud_key(kwargs: dict, deployment: Deployment) -> None:
    missing = deployment.missing_key()
    if missing and not kwargs.get("api_key"):
        raise BackendUnavailable(f"{missing} is not set")


def _request_id(kwargs: dict) -> str:
    return str(kwargs.get("litellm_call_id") or id(kwargs))


def _short_reason(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    kind = type(exc).__name__
    if isinstance(exc, litellm.Timeout):
        return "timed out"
    if isinstance(exc, litellm.RateLimitError):
        return "rate limited (429)"
    text = str(exc).split("\n", 1)[0]
    if "Connection error" in text or isinstance(exc, litellm.APIConnectionError):
        return "connection failed"
    return f"{kind} ({status})" if status else kind
