"""The config LiteLLM's proxy reads: the admin's file, with llm-router's plugins always registered.

`llm-router serve` writes it into the state folder and points LiteLLM at it (CONFIG_FILE_PATH),
so a config that forgets our two plugin lines still gets routing, the launcher and the key
checks, and one that lists them gets them once. Each deployment gets its `model_info.id`
(Deployment.id), by which our hooks find it.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from router_config.gateway_config import CUSTOM_AUTH, GatewayConfig, RedisSettings

LITELLM_CONFIG_NAME = "litellm-proxy.yaml"
"""The generated file's name in the state folder."""
HOOKS = "llm_router.app.router_hooks"
# What earlier llm-router configs named for the same plugin.
_OURS = frozenset({HOOKS, "router_plugins.hooks.router_hooks"})
_OUR_SECTIONS = ("routing", "llm_router")
PROMETHEUS = "prometheus"
"""LiteLLM's Prometheus callback: it counts requests, tokens and latencies, and mounts /metrics."""
LITELLM_METRICS = (
    "litellm_proxy_total_requests_metric", "litellm_proxy_failed_requests_metric", "litellm_request_total_latency_metric",
    "litellm_llm_api_latency_metric", "litellm_llm_api_time_to_first_token_metric", "litellm_input_tokens_metric",
    "litellm_output_tokens_metric", "litellm_total_tokens_metric", "litellm_deployment_successful_fallbacks",
    "litellm_deployment_failed_fallbacks",
)
"""The metrics of LiteLLM's callback that serve was asked for: requests, latency, time to first token,
tokens and fallbacks. Its other ~60 (budgets, spend, virtual-key limits, per-deployment rate-limit
headers) describe a database llm-router doesn't run, and writing them costs 0.5 to 1 ms of CPU a request in
multiprocess mode (bench/ab.py metrics-all). An admin's own `prometheus_metrics_config` wins; `[]`
brings back every metric."""


def litellm_config(config: GatewayConfig) -> dict[str, Any]:
    raw = copy.deepcopy(config.raw)
    for section in _OUR_SECTIONS:
        raw.pop(section, None)
    settings = raw.get("litellm_settings") or {}
    callbacks = [c for c in _as_list(settings.get("callbacks")) if c not in _OURS and c != PROMETHEUS]
    settings["callbacks"] = [HOOKS, *callbacks, *([PROMETHEUS] if config.settings.metrics else [])]
    if config.settings.metrics:
        settings.setdefault("prometheus_metrics_config", [{"group": "llm-router", "metrics": list(LITELLM_METRICS)}])
    # Our door decides who reaches /metrics (the master key, or anyone with llm_router.metrics_public).
    settings["require_auth_for_metrics_endpoint"] = False
    raw["litellm_settings"] = settings
    general = raw.get("general_settings") or {}
    general["custom_auth"] = CUSTOM_AUTH
    raw["general_settings"] = general
    # Every name we resolve (served names of local models included) resolves inside LiteLLM too,
    # on routes our hooks don't see.
    router_settings = raw.get("router_settings") or {}
    router_settings["model_group_alias"] = dict(config.aliases)
    # LiteLLM falls back to another group when an upstream answers 400 (its default): a request the
    # client got wrong would then be sent again, to another backend. The client gets the 400 instead.
    router_settings.setdefault("fallback_on_unsupported_params", False)
    if config.serves_files_and_batches:
        # LiteLLM's file upload answers 500 "files_settings is not set" without it; files go where batches do.
        raw.setdefault("files_settings", [{"custom_llm_provider": "openai"}])
    if config.settings.redis is not None:
        _share_through_redis(config.settings.redis, general, router_settings)
    raw["router_settings"] = router_settings
    for entry, deployment in zip(raw["model_list"], config.deployments):
        info = entry.get("model_info") or {}
        info["id"] = deployment.id
        entry["model_info"] = info
        price = deployment.set_price
        if price is not None:
            # LiteLLM's own custom pricing: its response_cost (the spend ledger's, and x-litellm-response-cost) uses it.
            # A cached input token costs what any input token does: one price per million, as configured.
            per_input = price.input / 1e6
            entry["litellm_params"].update(input_cost_per_token=per_input, output_cost_per_token=price.output / 1e6,
                                           cache_read_input_token_cost=per_input, cache_creation_input_token_cost=per_input)
    return raw


REDIS_TIMEOUT_S = 1
"""How long a Redis operation may take before it fails: a Redis that stops answering slows a request
by at most this, and never hangs it."""


def _share_through_redis(redis: RedisSettings, general: dict[str, Any], router_settings: dict[str, Any]) -> None:
    """The admin sets Redis once, in llm_router.redis; LiteLLM gets it twice. Its router shares cooldowns
    and deployment usage through `router_settings`, and its proxy's rate limiter (which counts team keys'
    requests when Redis is set, router_plugins/auth.py) through `general_settings.coordination_redis`.
    The password stays an `os.environ/` reference that LiteLLM resolves, so this file never holds it."""
    password = {"password": f"os.environ/{redis.password_env}"} if redis.password_env else {}
    timeouts = {"socket_timeout": REDIS_TIMEOUT_S, "socket_connect_timeout": REDIS_TIMEOUT_S}
    target: dict[str, Any] = {"url": redis.url} if redis.url else {"host": redis.host, "port": redis.port}
    router_settings.update({f"redis_{name}": value for name, value in {**target, **password}.items()})
    router_settings["cache_kwargs"] = {**(router_settings.get("cache_kwargs") or {}), **timeouts}
    general["coordination_redis"] = {**target, **password, **timeouts}


def write_litellm_config(config: GatewayConfig, path: Path) -> Path:
    """Write LiteLLM's config (mode 0600: it may hold inline keys) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"# Generated by llm-router from {config.path}; edit that file instead.\n")
        yaml.safe_dump(litellm_config(config), f, sort_keys=False)
    os.replace(tmp, path)
    return path


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
