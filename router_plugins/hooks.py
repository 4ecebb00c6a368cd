"""The LiteLLM hooks that make the proxy llm-router.

Registered in litellm_config.yaml as `litellm_settings.callbacks: [router_plugins.hooks.router_hooks]`.
- `async_pre_call_hook` (once per request): content routing, the key's model allowlist, rpm.
- `async_pre_call_deployment_hook` (every attempt, fallback hops included): fail fast on a
  missing cloud key; make sure a local deployment's server is running.
- failure/success events: release the server lease, remember why each attempt failed.
- `async_post_call_failure_hook`: one clear 502/503 naming every backend tried.
- `async_post_call_response_headers_hook`: x-llm-router-model / x-llm-router-reason.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import litellm
from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger

from launchers.server import ServerUnavailable
from llm_router.gateway import Gateway, current
from router_plugins.auth import team_key_of
from router_plugins.redaction import redact
from router_plugins.routing import NoAllowedGroup

log = logging.getLogger("llm_router.hooks")

_ROUTED_CALL_TYPES = frozenset({"completion", "acompletion"})
_DECISION_KEY = "llm_router"
# Upstream failures the router may fall back from; anything else (a 4xx the client caused)
# keeps its own status and message.
_BACKEND_FAILURE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class BackendUnavailable(Exception):
    """Raised from the deployment hook so LiteLLM moves to the next fallback without an HTTP call."""

    status_code = 503


class RouterHooks(CustomLogger):
    # ---- once per request ------------------------------------------------------------------

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> dict:
        if call_type not in _ROUTED_CALL_TYPES:
            return data
        gw = current()
        key = team_key_of(user_api_key_dict)
        try:
            decision = gw.router.decide(data, gw.availability_for(key))
        except NoAllowedGroup:
            raise HTTPException(403, "This key may not use any model group that can serve this request.")
        if key is not None:
            group = gw.config.resolve(decision.model)
            if not key.allows(group):
                raise HTTPException(403, f"This key may not use model '{decision.model}'. Allowed: {', '.join(key.models)}.")
            if key.rpm is not None and not gw.rate_limiter.allow(key.name, key.rpm):
                raise HTTPException(429, f"Rate limit exceeded: this key allows {key.rpm} requests per minute.")
        data["model"] = decision.model
        metadata = data.setdefault("metadata", {})
        metadata[_DECISION_KEY] = {"model": decision.model, "reason": decision.reason}
        return data

    # ---- every attempt ---------------------------------------------------------------------

    async def async_pre_call_deployment_hook(self, kwargs: dict, call_type: Any) -> dict:
        gw = current()
        group = _group_of(kwargs)
        model_info = kwargs.get("model_info") or {}
        request_id = _request_id(kwargs)
        try:
            launcher_spec = model_info.get("launcher")
            if launcher_spec:
                await self._ensure_local(gw, kwargs, Path(launcher_spec).stem, request_id, group)
            else:
                self._check_cloud_key(gw, kwargs, group)
        except (ServerUnavailable, BackendUnavailable) as exc:
            why = exc.why if isinstance(exc, ServerUnavailable) else str(exc)
            gw.record_attempt(request_id, group, why, unavailable=True)
            raise
        return kwargs

    @staticmethod
    def _check_cloud_key(gw: Gateway, kwargs: dict, group: str) -> None:
        # LiteLLM's /health probes come without model_info and never reach a key-less backend.
        for d in gw.config.deployments_of(group):
            if d.litellm_model == kwargs.get("model") or d.litellm_model.endswith("/" + str(kwargs.get("model"))):
                missing = d.missing_key()
                if missing and not kwargs.get("api_key"):
                    raise BackendUnavailable(f"{missing} is not set")
                return

    @staticmethod
    async def _ensure_local(gw: Gateway, kwargs: dict, name: str, request_id: str, group: str) -> None:
        server = gw.launcher.server(name)
        if not server.is_ready and server.spec.cold_start == "fallback":
            decision = (kwargs.get("metadata") or {}).get(_DECISION_KEY) or {}
            content_routed = decision.get("reason") not in (None, "explicit")
            if content_routed and gw.config.fallback_chain(group):
                server.start_in_background()
                raise ServerUnavailable(name, "cold; starting in the background while a fallback serves this request")
        await server.ensure_ready()
        server.lease(f"{request_id}:{name}")
        kwargs.setdefault("metadata", {})["llm_router_lease"] = name

    # ---- attempt and request outcomes ------------------------------------------------------

    async def async_post_call_failure_deployment_hook(self, request_data: dict, original_exception: Exception, *args: Any, **kwargs: Any) -> None:
        gw = current()
        request_id = _request_id(request_data)
        self._release(gw, request_data)
        if not isinstance(original_exception, (ServerUnavailable, BackendUnavailable)):
            reason = _short_reason(original_exception)
            gw.record_attempt(request_id, _group_of(request_data), reason, unavailable=reason.startswith("rate limited"))
            lease = (request_data.get("metadata") or {}).get("llm_router_lease")
            if lease:
                await gw.launcher.server(lease).check_alive()

    async def async_log_success_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._release(current(), kwargs)

    async def async_log_failure_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._release(current(), kwargs)

    @staticmethod
    def _release(gw: Gateway, kwargs: dict) -> None:
        metadata = kwargs.get("metadata") or (kwargs.get("litellm_params") or {}).get("metadata") or {}
        name = metadata.get("llm_router_lease")
        if name and name in gw.launcher.servers:
            gw.launcher.server(name).release(f"{_request_id(kwargs)}:{name}")

    async def async_post_call_failure_hook(
        self, request_data: dict, original_exception: Exception, user_api_key_dict: Any, traceback_str: str | None = None
    ) -> HTTPException | None:
        gw = current()
        attempts = gw.pop_attempts(_request_id(request_data))
        status = getattr(original_exception, "status_code", None)
        if isinstance(original_exception, HTTPException) or not attempts:
            return None
        if isinstance(status, int) and status not in _BACKEND_FAILURE_STATUSES and status < 500:
            return None
        unavailable = all(a.unavailable for a in attempts)
        tried = "; ".join(f"{a.group}: {a.why}" for a in attempts)
        message = redact(f"All backends failed for this request. Tried {len(attempts)}: {tried}", gw.secrets())
        return HTTPException(503 if unavailable else 502, message)

    async def async_post_call_response_headers_hook(
        self, data: dict, user_api_key_dict: Any, response: Any, request_headers: dict | None = None, litellm_call_info: dict | None = None
    ) -> dict[str, str] | None:
        decision = (data.get("metadata") or {}).get(_DECISION_KEY)
        if not decision:
            return None
        return {"x-llm-router-model": decision["model"], "x-llm-router-reason": decision["reason"]}


def _group_of(kwargs: dict) -> str:
    metadata = kwargs.get("metadata") or {}
    return str(metadata.get("model_group") or kwargs.get("model") or "?")


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


router_hooks = RouterHooks()
