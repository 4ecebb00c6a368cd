"""llm-router's routing metrics for Prometheus: decisions, skipped groups, fallback hops.

LiteLLM's own `prometheus` callback counts requests, tokens, latency, time to first token and
its fallbacks; these say why requests went where they went. Recorded in each worker; under
`llm-router serve` prometheus_client's multiprocess mode adds every worker's up in one scrape.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from router_plugins.access import FORBIDDEN
from router_plugins.routing import CANNOT_CALL_TOOLS, CANNOT_FETCH_MEDIA, RoutingDecision

_DECISIONS = Counter("llm_router_routing_decisions", "Routing decisions, by reason and the group chosen", ["reason", "group"])
_SKIPPED = Counter("llm_router_routing_skipped", "Groups content routing passed over, by cause", ["group", "cause"])
_AFFINITY = Counter("llm_router_affinity_hits", "auto turns routed up to their conversation's remembered tier", ["tier"])
_HOPS = Counter("llm_router_fallback_hops", "Moves of a request from a group that failed it to the next one", ["from_group", "to_group"])
DIFFICULTY_BUCKETS = tuple(round(i / 100, 2) for i in range(1, 101))
"""A hundredth wide: `llm-router calibrate` reads a threshold for a share off this histogram."""
DIFFICULTY = Histogram("llm_router_difficulty", "Difficulty scores of the text requests auto routed", buckets=DIFFICULTY_BUCKETS)


def decided(decision: RoutingDecision) -> None:
    _DECISIONS.labels(decision.reason, decision.model).inc()
    if decision.reason == "affinity" and decision.tier is not None:
        _AFFINITY.labels(decision.tier).inc()
    for skipped in decision.skipped:
        _SKIPPED.labels(skipped.group, _cause(skipped.why)).inc()
    if decision.signals is not None and decision.signals.difficulty is not None:
        DIFFICULTY.observe(decision.signals.difficulty)


def fallback_hop(from_group: str, to_group: str) -> None:
    _HOPS.labels(from_group, to_group).inc()


def _cause(why: str) -> str:
    """A short, bounded label for why a group was skipped (the full reason is in explain)."""
    if why == FORBIDDEN:
        return "not allowed for the key"
    if why == CANNOT_CALL_TOOLS:
        return "can't call tools"
    if why == CANNOT_FETCH_MEDIA:
        return "media by URL"
    if why.endswith("is not set"):
        return "no API key"
    if "memory budget" in why:
        return "memory budget"
    if "auto_start" in why:
        return "auto_start off"
    return "can't run here"
