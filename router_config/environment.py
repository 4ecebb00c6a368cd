"""Process environment the gateway runs with, set before LiteLLM is imported."""

from __future__ import annotations

import os

MASTER_KEY_ENV = "LLM_ROUTER_MASTER_KEY"
CONFIG_ENV = "LLM_ROUTER_CONFIG"
"""The admin's config file (default ./litellm_config.yaml); `serve` sets it for its workers."""
SECRET_FILE_SUFFIX = "_FILE"
"""LLM_ROUTER_MASTER_KEY_FILE=/run/secrets/master names a file holding LLM_ROUTER_MASTER_KEY, and so for every
variable holding a secret (router_config/gateway_config.py reads them at load)."""
WORKERS_ENV = "LLM_ROUTER_WORKERS"
"""`serve`'s default for --workers (a container's environment sets it); `serve` sets it for its workers,
each of which enforces its share of a key's rpm limit."""


ACCESS_LOG_ENV = "LLM_ROUTER_ACCESS_LOG"
"""`1`: one log line per request (uvicorn's access log). Off by default: it costs time on every request."""


def worker_count() -> int:
    try:
        return max(1, int(os.environ.get(WORKERS_ENV, "1")))
    except ValueError:
        return 1


def access_log_enabled() -> bool:
    return os.environ.get(ACCESS_LOG_ENV, "0") == "1"


DEFAULTS = {
    # No network calls at import (the cost map) and no .env surprises from the working directory.
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true",
    # After a Redis outage LiteLLM's Redis clients stay away from it this long (its default: 60 s), and
    # replicas' cooldowns and rate limits stay per process until then (router_plugins/shared.py).
    # Without llm_router.redis LiteLLM has no Redis and this changes nothing.
    "REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "2",
    # LiteLLM's own knob for the collector's thresholds (gen0, gen1, gen2; Python's default is 700, 10, 10).
    # On Python 3.11 a collection that starts while a ContextVar is being set can free the context's
    # variables under it when a finalizer sets one too (CPython gh-148891, fixed only in 3.12's collector);
    # LiteLLM sets one per routed request. The gateway died of it twice in the bench. Collecting 30 times
    # less often makes that rarer, and each young collection still takes well under a millisecond.
    "PYTHON_GC_THRESHOLD": "20000,20,20",
}


def apply_defaults() -> None:
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    master = os.environ.get(MASTER_KEY_ENV)
    if master:
        # LiteLLM's own admin routes then need the same key as ours.
        os.environ["LITELLM_MASTER_KEY"] = master
    else:
        # An open gateway is deliberate here: `serve` only allows it on loopback.
        os.environ.pop("LITELLM_MASTER_KEY", None)
        os.environ["LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY"] = "true"
