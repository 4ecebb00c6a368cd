"""LiteLLM proxy hooks that can never act in llm-router, taken off LiteLLM's callback lists at startup.

LiteLLM registers these hooks on every proxy. Each enforces limits or budgets that LiteLLM keeps
on its virtual keys, teams, users, end users or agents: state in its database and agent
registry, which llm-router doesn't use. Our auth (router_plugins/auth.py) builds keys that carry
none of those fields, and a team key's rpm limit is enforced by our own pre-call hook. So these
hooks find nothing to enforce on any request, yet LiteLLM calls each at several points of every
request (pre-call, deployment filter, success and failure events): together about 0.8 ms of CPU
per request on the bench machine (README, Performance).

The exception is LiteLLM's rate limiter when replicas share a Redis (`llm_router.redis`, which
becomes LiteLLM's `general_settings.coordination_redis`): it then counts team keys' rpm there,
exactly across every process (router_plugins/auth.py hands it the limit), so it stays.

LiteLLM itself leaves out, for the same reason, the proxy hooks that need a database when none
is configured. Hooks that could act without a database stay: guardrail session routing, the
Responses API ID check, skills, prompt-cache observation and service logging.
"""

from __future__ import annotations

import litellm
from litellm.proxy.hooks import (
    PROXY_CacheControlCheck,
    PROXY_MaxBudgetPerSessionHandler,
    PROXY_MaxIterationsHandler,
    PROXY_MaxParallelRequestsHandler_v3,
)
from litellm.proxy.hooks.model_max_budget_limiter import PROXY_VirtualKeyModelMaxBudgetLimiter

INERT_PROXY_HOOKS: tuple[type, ...] = (
    PROXY_MaxParallelRequestsHandler_v3,  # rpm/tpm/parallel limits of keys, teams, users, end users, orgs, tags
    PROXY_VirtualKeyModelMaxBudgetLimiter,  # per-model budgets of keys, users, teams
    PROXY_CacheControlCheck,  # a key's allowed_cache_controls
    PROXY_MaxBudgetPerSessionHandler,  # an agent's max_budget_per_session
    PROXY_MaxIterationsHandler,  # an agent's (or a key's metadata's) max_iterations
)


def remove() -> list[str]:
    """Take the inert hooks off every LiteLLM callback list; returns the class names removed.

    Call it after LiteLLM's proxy startup, which is where it registers them."""
    from litellm.proxy.proxy_server import general_settings

    manager = litellm.logging_callback_manager
    counts_in_redis = "coordination_redis" in general_settings
    inert = {id(c): c for c in manager.get_all_callbacks() if isinstance(c, INERT_PROXY_HOOKS)
             and not (counts_in_redis and isinstance(c, PROXY_MaxParallelRequestsHandler_v3))}
    for hook in inert.values():
        manager.remove_callback_from_all_lists(hook)
    return sorted(type(hook).__name__ for hook in inert.values())
