"""The LiteLLM hooks that make the proxy llm-router.

`llm-router serve` registers them itself (router_config/litellm_settings.py):
- `async_pre_call_hook` (once per request): content routing, and the key's allowlist for the
  group routing picked; a request whose every hop can't serve here (no key, no GPU...) gets its
  one clear 503 at once, marked not worth retrying.
- `async_pre_call_deployment_hook` (every attempt, fallback hops and every route included): the
  key's allowlist for this deployment; a hop that can't serve fails over without an HTTP call
  and without a retry (a local model whose window can't hold the input among them); lower the
  output the request reserves to what that window leaves; make sure a local deployment's server
  is running (asking the machine's owner, which leases it to this request).
- `async_post_call_success_hook`: a Responses answer's id keeps its turn's tier (affinity).
- failure/success events: release the lease, remember why each attempt failed, have the owner
  check a local server that failed a request; a request's success event and its failure hook
  write its row of the spend ledger (router_plugins/accounting.py).
- `async_post_call_failure_hook`: one clear 502/503 (or 403) naming every backend tried.
- `async_post_call_response_headers_hook`: x-llm-router-model / x-llm-router-reason, and
  x-llm-router-max-tokens where the request's reserved output was lowered to fit a local model's
  window (router_plugins/output_budget.py) rather than refused by it.

What we learn about a request (the decision, each attempt) is kept in the gateway's request
records (router_plugins/request_records.py) by LiteLLM's call id, never in the request: on the Responses and Messages routes LiteLLM
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
from litellm.proxy._types import ProxyException, UserAPIKeyAuth

from launchers.server import ServerUnavailable
from router_config.gateway_config import Deployment
from router_plugins import metrics, output_budget
from router_plugins.accounting import ACCOUNTED_CALL_TYPES
from router_plugins.access import FORBIDDEN, OVER_BUDGET, Caller
from router_plugins.auth import LiteLLMAuth
from router_plugins.errors import ApiError, status_of
from router_plugins.gateway import Gateway
from router_plugins.request_records import Attempt, Decision
from router_plugins.redaction import redact
from router_plugins.conversation import Shape
from router_plugins.routing import Availability, RoutingDecision

log = logging.getLogger("llm_router.hooks")

_SHAPES = {"completion": Shape.CHAT, "acompletion": Shape.CHAT, "responses": Shape.RESPONSES, "aresponses": Shape.RESPONSES,
           "anthropic_messages": Shape.MESSAGES}
_EXPLICIT_ONLY_CALL_TYPES = frozenset({"text_completion", "atext_completion", "embedding", "aembedding"})
# Upstream failures the router may fall back from; anything else (a 4xx the client caused)
# keeps its own status and message.
_BACKEND_FAILURE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
OUTPUT_BUDGET_HEADER = "x-llm-router-max-tokens"
"""On an answer whose reserved output was lowered to fit the serving model's window: the output it got."""


class BackendUnavailable(Exception):
    """Raised from the deployment hook so LiteLLM moves to the next fallback without an HTTP call."""

    status_code = 503
    num_retries = 0
    """LiteLLM's router reads an exception's num_retries: this hop can't serve, so trying it again can't help."""


class RouterHooks(CustomLogger):
    def __init__(self, gateway: Gateway, auth: LiteLLMAuth):
        super().__init__()
        self._gateway = gateway
        self._auth = auth

    # ---- once per request ------------------------------------------------------------------

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> dict:
        shape = _SHAPES.get(call_type)
        gw = self._gateway
        if call_type in ACCOUNTED_CALL_TYPES:
            gw.requests.began(_request_id(data), data.get("model") if isinstance(data.get("model"), str) else "")
        if shape is None:
            if call_type in _EXPLICIT_ONLY_CALL_TYPES and gw.router.is_content_routed(data.get("model")):
                raise _raised(ApiError(400, f"'{data.get('model') or ''}' is routed by content on chat completions, responses "
                                                     "and messages only; name a model here.", "model"))
            return data
        caller = self._auth.caller_of(user_api_key_dict)
        headers = (data.get("proxy_server_request") or {}).get("headers") or {}
        try:
            available = gw.availability_for(caller)  # reads the key's budget: once per request
            decision = gw.router.decide(data, shape, available, gw.conversations, headers, caller.difficulty)
            gw.access.check_group(caller, decision.model)
            self._check_chain_can_serve(decision, data, shape, caller, available)
        except ApiError as exc:
            raise _raised(exc) from None
        data["model"] = decision.model
        # The tier routing chose, not the group that ends up serving: a fallback never rewrites it.
        if decision.conversation is not None and decision.tier is not None:
            gw.conversations.remember(decision.conversation.digest, decision.tier)
        gw.requests.decided(_request_id(data), Decision(decision.model, decision.reason, decision.tier))
        metrics.decided(decision)
        return data

    def _check_chain_can_serve(self, decision: RoutingDecision, data: dict, shape: Shape, caller: Caller, available: Availability) -> None:
        """A request whose every hop can't serve here gets its one clear error now, without trying any."""
        gw = self._gateway
        if decision.model not in gw.config.groups:
            return  # a name nobody configured: LiteLLM's own 400 lists the names it knows
        if decision.reason == "explicit" and available(decision.model) == OVER_BUDGET:
            raise self._over_budget(caller)  # a priced model by name: never quietly a free fallback instead
        reasons = []
        for group in (decision.model, *decision.fallbacks):
            why = available(group) or gw.router.misfit(group, data, shape)
            if why is None:
                return
            reasons.append((group, why))
        # What the request asks for, if no group available here can do it, is the client's to change: a 400.
        refused = gw.router.refusal(data, shape, available)
        if refused is not None:
            raise refused
        if any(why == OVER_BUDGET for _, why in reasons):
            raise self._over_budget(caller)
        chain = {group for group, _ in reasons}
        reasons += [(s.group, s.why) for s in decision.skipped if s.group not in chain and s.why != FORBIDDEN]  # routing's, for auto
        message = redact(f"No backend can serve this request here. {'; '.join(f'{g}: {why}' for g, why in reasons)}", gw.secrets())
        raise ApiError(503, message, kind="backend_unavailable", retryable=False, groups=tuple(reasons))

    def _over_budget(self, caller: Caller) -> ApiError:
        standing = self._gateway.budgets.standing(caller.key)
        if standing is None:  # its budget was taken away this instant
            return ApiError(503, "A priced model was unavailable to this key for its budget; try again.", kind="backend_unavailable")
        return standing.refusal()

    # ---- every attempt ---------------------------------------------------------------------

    async def async_pre_call_deployment_hook(self, kwargs: dict, call_type: Any) -> dict:
        gw = self._gateway
        deployment = gw.config.deployment(str((kwargs.get("model_info") or {}).get("id")))
        request_id = _request_id(kwargs)
        group = deployment.group if deployment else None
        caller = self._auth.caller_of(_litellm_key(kwargs))
        refused = gw.access.check_attempt(caller, group)
        if refused is None and group is not None and gw.budgets.is_priced(group):
            # A fallback hop from a free group to a priced one, past the budget, is not made.
            standing = gw.budgets.standing(caller.key)
            refused = OVER_BUDGET if standing is not None and standing.exhausted else None
        if refused:
            gw.requests.attempted(request_id, Attempt(group or "this request", refused, unavailable=True))
            raise BackendUnavailable(refused)
        if deployment is None:
            return kwargs  # a call that names no deployment of ours (files, batches)
        failed_on = gw.requests.last_attempted_group(request_id)
        if failed_on is not None and failed_on != deployment.group:
            metrics.fallback_hop(failed_on, deployment.group)
        why = self._why_not(deployment, kwargs, _shape_of(call_type), request_id)
        budget = output_budget.fit(kwargs, deployment.window, deployment.litellm_model) if why is None else None
        if budget is not None and not budget.fits:
            why = budget.why_not()
        if why is None and deployment.launch_spec is not None:
            try:
                await self._ensure_local(kwargs, call_type, deployment, request_id)
            except ServerUnavailable as exc:
                why = exc.why
        elif why is None and deployment.remote is not None and deployment.remote.cold_start == "fallback":
            why = gw.remotes.cold_start_fallback(deployment, self._may_fall_back_when_cold(deployment, request_id))
        if why is not None:
            gw.requests.attempted(request_id, Attempt(deployment.group, why, unavailable=True))
            raise BackendUnavailable(why)
        if budget is not None and budget.lowered:
            output_budget.lower(kwargs, budget)
            gw.requests.lowered_output(request_id, budget)
        return kwargs

    def _why_not(self, deployment: Deployment, kwargs: dict, shape: Shape, request_id: str) -> str | None:
        """Why this attempt can't be made, found without a network call or a start; None to go ahead."""
        gw = self._gateway
        misfit = gw.router.misfit(deployment.group, kwargs, shape)
        if misfit is not None:
            return misfit
        problem = gw.deployment_problem(deployment)
        if problem is not None:
            return problem
        if deployment.launch_spec is not None and gw.requests.failed_on(request_id, deployment.group):
            # A local server that failed this request once (it died, or stopped answering) is not
            # tried again for it: the request falls over, and the next one starts the server again.
            return "failed on this request"
        return None

    async def _ensure_local(self, kwargs: dict, call_type: Any, deployment: Deployment, request_id: str) -> None:
        gw = self._gateway
        spec = deployment.launch_spec
        assert spec is not None
        if spec.cold_start == "fallback" and not gw.servers.view(spec.name).is_ready and self._may_fall_back_when_cold(deployment, request_id):
            await gw.servers.start_in_background(spec.name)
            raise ServerUnavailable(spec.name, "cold; starting in the background while a fallback serves this request")
        await gw.servers.ensure_ready(spec.name, lease=request_id)
        if spec.system_prompt:
            _give_system_prompt(kwargs, call_type, spec.system_prompt)

    def _may_fall_back_when_cold(self, deployment: Deployment, request_id: str) -> bool:
        """cold_start: fallback applies only to a request routed by content with a fallback chain after this group."""
        decision = self._gateway.requests.decision(request_id)
        content_routed = decision is not None and decision.reason != "explicit"
        return content_routed and bool(self._gateway.config.fallback_chain(deployment.group))

    # ---- attempt and request outcomes ------------------------------------------------------

    async def async_post_call_failure_deployment_hook(self, request_data: dict, original_exception: Exception, *args: Any, **kwargs: Any) -> None:
        gw = self._gateway
        request_id = _request_id(request_data)
        self._release(request_data)
        if isinstance(original_exception, BackendUnavailable):
            return
        deployment = gw.config.deployment(str((request_data.get("model_info") or {}).get("id")))
        reason = _short_reason(original_exception)
        group = deployment.group if deployment else "this request"
        gw.requests.attempted(request_id, Attempt(group, reason, unavailable=reason.startswith("rate limited")))
        if deployment is not None and deployment.launch_spec is not None:
            try:
                await gw.servers.check_alive(deployment.launch_spec.name)
            except ServerUnavailable:
                pass  # the owner is unreachable: the next request says so

    async def async_log_success_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._release(kwargs)
        record = self._gateway.requests.record(_request_id(kwargs))
        await self._gateway.accounting.succeeded(record, kwargs, start_time, end_time)

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        """A Responses API answer, as the client gets it, keeps its turn's tier for a next turn that names it
        as previous_response_id. (A streamed answer's id isn't seen here: the door sees it while the Responses
        store is on, llm_router/app.py.)"""
        response_id = getattr(response, "id", None)
        if isinstance(response_id, str):
            self._gateway.remember_response_tier(_request_id(data), response_id)
        return response

    async def async_log_failure_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._release(kwargs)

    def _release(self, kwargs: dict) -> None:
        self._gateway.servers.release(_request_id(kwargs))

    async def async_post_call_failure_hook(
        self, request_data: dict, original_exception: Exception, user_api_key_dict: Any, traceback_str: str | None = None
    ) -> HTTPException | None:
        record = self._gateway.requests.record(_request_id(request_data))
        answer = self._failure_answer(request_data, original_exception, user_api_key_dict)
        status = answer.status_code if answer is not None else status_of(original_exception)
        await self._gateway.accounting.failed(record, request_data, self._auth.caller_of(user_api_key_dict), status or 500)
        return answer

    def _failure_answer(self, request_data: dict, original_exception: Exception, user_api_key_dict: Any) -> HTTPException | None:
        gw = self._gateway
        request_id = _request_id(request_data)
        attempts = gw.requests.finish(request_id).attempts
        status = getattr(original_exception, "status_code", None)
        if isinstance(original_exception, (HTTPException, ProxyException)) or not attempts:
            return None
        if isinstance(status, int) and status not in _BACKEND_FAILURE_STATUSES and status < 500:
            return None
        error = _failure(attempts, gw.secrets())
        if error.status == 503 and any(a.why == OVER_BUDGET for a in attempts):
            error = self._over_budget(self._auth.caller_of(user_api_key_dict))
        gw.requests.failed_with(request_id, error)
        return _Returned(error)

    async def async_post_call_response_headers_hook(
        self, data: dict, user_api_key_dict: Any, response: Any, request_headers: dict | None = None, litellm_call_info: dict | None = None
    ) -> dict[str, str] | None:
        record = self._gateway.requests.record(_request_id(data))
        headers = routing_headers(record.decision)
        if record.output_budget is not None:
            headers[OUTPUT_BUDGET_HEADER] = str(record.output_budget.granted)
        return headers or None


def routing_headers(decision: Decision | None) -> dict[str, str]:
    """x-llm-router-model and x-llm-router-reason: where routing sent a request, and why; none before its decision."""
    if decision is None:
        return {}
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


def _shape_of(call_type: Any) -> Shape:
    """The API shape of a deployment call's kwargs (LiteLLM passes its CallTypes enum, or its value)."""
    return _SHAPES.get(str(getattr(call_type, "value", call_type)), Shape.CHAT)


def _give_system_prompt(kwargs: dict, call_type: Any, prompt: str) -> None:
    """The launch spec's system prompt, for a request that brings none, in the shape of its call."""
    shape = _shape_of(call_type)
    if shape is Shape.RESPONSES:
        items = kwargs.get("input")
        has_own = isinstance(items, list) and any(isinstance(i, dict) and i.get("role") in ("system", "developer") for i in items)
        if not kwargs.get("instructions") and not has_own:
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


def _failure(attempts: list[Attempt], secrets: list[str]) -> ApiError:
    """One clear error for a request every backend of which failed, naming each and why."""
    if all(a.why == FORBIDDEN for a in attempts):
        return ApiError(403, f"This key may not use {', '.join(a.group for a in attempts)}.")
    tried = "; ".join(f"{a.group}: {a.why}" for a in attempts)
    message = redact(f"All backends failed for this request. Tried {len(attempts)}: {tried}", secrets)
    if all(a.unavailable for a in attempts):
        return ApiError(503, message, kind="backend_unavailable", retryable=False)
    return ApiError(502, message, kind="backend_error")


def _raised(error: ApiError) -> ProxyException:
    """Our error as a hook raises it: LiteLLM passes a ProxyException to the client as it is, on every
    API, with its status, `type`, headers and `provider_specific_fields`."""
    return ProxyException(message=error.message, type=error.type, param=error.param, code=error.status, headers=_headers(error),
                          provider_specific_fields=error.extra_fields)


class _Returned(HTTPException):
    """Our error as the failure hook returns it: LiteLLM takes only an HTTPException from there, and
    reads its status, its headers, and its `type` and `param` attributes."""

    def __init__(self, error: ApiError):
        super().__init__(error.status, error.message, headers=_headers(error) or None)
        self.type = error.type
        self.param = error.param


def _headers(error: ApiError) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in error.headers() if name != b"content-type"}


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
