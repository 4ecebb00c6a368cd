"""What each request cost, read from LiteLLM's callbacks into the spend ledger and Prometheus.

A request that reached LiteLLM's pre-call hook on an inference route (router_plugins/hooks.py notes
it in the request records) gets one ledger row when it ends: from the success event of the attempt
that answered (after the answer has gone out, a stream's included, with LiteLLM's response_cost and
token counts in its standard logging payload and the group that served), or from the failure hook
when every attempt failed (cost 0). The key's name and team come from LiteLLM's key object (its alias and team alias), the
model asked for and the routing reason from the request records: never a prompt, never a key.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import litellm

from router_config.gateway_config import Deployment, GatewayConfig
from router_plugins import metrics
from router_plugins.access import Caller
from router_plugins.request_records import RequestRecord
from router_plugins.state.spend import SpendLedger, SpendRow

log = logging.getLogger("llm_router.accounting")

ACCOUNTED_CALL_TYPES = frozenset({"completion", "acompletion", "responses", "aresponses", "anthropic_messages", "text_completion",
                                  "atext_completion", "embedding", "aembedding"})
"""LiteLLM's call types of the inference routes: each such request gets a ledger row."""
_API = {"completion": "chat", "responses": "responses", "anthropic_messages": "messages", "text_completion": "completions",
        "embedding": "embeddings"}
UNKNOWN_MODEL = "(unknown)"
"""What the ledger says for a requested name the config doesn't know: a client's free text is never kept."""


class Accounting:
    def __init__(self, config: GatewayConfig, ledger: SpendLedger) -> None:
        self._ledger = ledger
        self.reload(config)

    def reload(self, config: GatewayConfig) -> None:
        self._config = config
        self._rates: Any = _UNREAD
        self._names = frozenset((*(config.routing.trigger_models if config.routing else ()), *config.groups, *config.aliases))
        """The model names the ledger keeps as requested: a trigger name, a group, or an alias."""

    async def succeeded(self, record: RequestRecord, kwargs: dict[str, Any], start: Any, end: Any) -> None:
        """The success event of a request's answering attempt (LiteLLM's call, or one of its fallbacks). The
        key's name and team are read from LiteLLM's logging metadata (our key object's alias and team alias):
        LiteLLM takes the key object itself out of an event's metadata."""
        payload = kwargs.get("standard_logging_object") or {}
        metadata = payload.get("metadata") or {}
        who = (str(metadata.get("user_api_key_alias") or "-"), str(metadata.get("user_api_key_team_alias") or ""))
        served = payload.get("model_group") or (record.decision.model if record.decision else None) or UNKNOWN_MODEL
        input_tokens, output_tokens = int(payload.get("prompt_tokens") or 0), int(payload.get("completion_tokens") or 0)
        cost = float(payload.get("response_cost") or 0.0)
        auto = record.decision is not None and record.decision.reason != "explicit"
        await self._record(record, who, kwargs, status=200, served=served, tokens=(input_tokens, output_tokens), cost=cost,
                           baseline=self.baseline(input_tokens, output_tokens) if auto else None, latency_s=_seconds(start, end))

    async def failed(self, record: RequestRecord, request_data: dict[str, Any], caller: Caller, status: int) -> None:
        """A request that ended in an error: every attempt failed, or it was refused before any."""
        attempts = record.attempts
        served = attempts[-1].group if attempts else record.decision.model if record.decision else UNKNOWN_MODEL
        latency = (dt.datetime.now().timestamp() - record.began_at) if record.began_at else 0.0
        who = (caller.name, caller.key.team if caller.key is not None else "")
        await self._record(record, who, request_data, status=status, served=served, tokens=(0, 0), cost=0.0, baseline=None,
                           latency_s=latency)

    def baseline(self, input_tokens: int, output_tokens: int) -> float | None:
        """What these tokens would have cost on the first group of routing.complex (None: it has no price)."""
        rates = self._baseline_rates()
        if rates is None:
            return None
        if rates is _TIERED:
            model = self._baseline_deployment().litellm_model  # type: ignore[union-attr]
            prompt, completion = litellm.cost_per_token(model=model, prompt_tokens=input_tokens, completion_tokens=output_tokens)
            return prompt + completion
        return input_tokens * rates[0] + output_tokens * rates[1]

    def _baseline_deployment(self) -> Deployment | None:
        rules = self._config.routing
        deployments = self._config.deployments_of(rules.complex[0]) if rules and rules.complex else ()
        return deployments[0] if deployments else None

    def _baseline_rates(self) -> tuple[float, float] | None:
        """The baseline's dollars per input and output token: its configured price, else LiteLLM's cost map's, read once
        (LiteLLM's own cost_per_token takes a third of a millisecond). _TIERED: a price that depends on the request's size,
        which only LiteLLM's cost_per_token knows."""
        if self._rates is _UNREAD:
            self._rates = rates_of(self._baseline_deployment())
        return self._rates

    async def _record(self, record: RequestRecord, who: tuple[str, str], kwargs: dict[str, Any], *, status: int, served: str,
                      tokens: tuple[int, int], cost: float, baseline: float | None, latency_s: float) -> None:
        """who: the key's name and team."""
        request_id = str(kwargs.get("litellm_call_id") or "")
        if not request_id or record.requested is None or record.accounted:
            return
        record.accounted = True  # before any await: the success event and the failure hook run on one loop
        payload = kwargs.get("standard_logging_object") or {}
        call_type = str(payload.get("call_type") or kwargs.get("call_type") or "")
        row = SpendRow(request_id=request_id, at=dt.datetime.now().timestamp(), key_name=who[0], team=who[1],
                       api=_api_of(call_type),
                       requested=self._known(record.requested), served=served, reason=record.decision.reason if record.decision else "explicit",
                       status=status, stream=bool(kwargs.get("stream")), input_tokens=tokens[0], output_tokens=tokens[1],
                       cost=cost, baseline=baseline, latency_ms=round(latency_s * 1000, 1))
        try:
            await self._ledger.record(row)
        except Exception:
            log.exception("the spend ledger failed to record request %s (key %s)", request_id, row.key_name)
            return
        metrics.spent(row.key_name, row.team, row.served, row.cost, row.baseline)

    def _known(self, requested: str) -> str:
        """The requested name as the ledger keeps it: one the config knows (an empty one is content-routed); anything
        else is not kept."""
        if requested in self._names:
            return requested
        return "auto" if not requested and self._config.routing else UNKNOWN_MODEL


_UNREAD = object()
_TIERED = (float("nan"), float("nan"))


def rates_of(deployment: Deployment | None) -> tuple[float, float] | None:
    if deployment is None:
        return None
    price = deployment.set_price
    if price is not None:
        return price.input / 1e6, price.output / 1e6
    try:
        info = litellm.get_model_info(deployment.litellm_model)
    except Exception:  # a model LiteLLM's cost map doesn't know: no saving can be said
        return None
    if any("_above_" in name and value for name, value in info.items() if "cost" in name and "batches" not in name and "cache" not in name):
        return _TIERED
    if info.get("input_cost_per_token") is None or info.get("output_cost_per_token") is None:
        return None
    return float(info["input_cost_per_token"]), float(info["output_cost_per_token"])


def _api_of(call_type: str) -> str:
    """chat, responses, messages, completions or embeddings, from LiteLLM's call type (acompletion, aresponses, ...)."""
    plain = call_type[1:] if call_type.startswith("a") and call_type[1:] in _API else call_type
    return _API.get(plain, plain)


def _seconds(start: Any, end: Any) -> float:
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        return max(0.0, (end - start).total_seconds())
    if isinstance(start, (int, float)) and isinstance(end, (int, float)):
        return max(0.0, float(end) - float(start))
    return 0.0
