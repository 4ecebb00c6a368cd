"""llm-router's metrics for Prometheus: routing decisions, skipped groups, fallback hops, spend and auto's saving.

LiteLLM's own `prometheus` callback counts requests, tokens, latency, time to first token and
its fallbacks; these say why requests went where they went. Recorded in each worker; under
`llm-router serve` prometheus_client's multiprocess mode adds every worker's up in one scrape.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from router_plugins.access import FORBIDDEN, OVER_BUDGET
from router_plugins.routing import CANNOT_CALL_TOOLS, CANNOT_FETCH_MEDIA, RoutingDecision

_DECISIONS = Counter("llm_router_routing_decisions", "Routing decisions, by reason and the group chosen", ["reason", "group"])
_SKIPPED = Counter("llm_router_routing_skipped", "Groups content routing passed over, by cause", ["group", "cause"])
_AFFINITY = Counter("llm_router_affinity_hits", "auto turns routed up to their conversation's remembered tier", ["tier"])
_HOPS = Counter("llm_router_fallback_hops", "Moves of a request from a group that failed it to the next one", ["from_group", "to_group"])
DIFFICULTY_BUCKETS = tuple(round(i / 100, 2) for i in range(1, 101))
"""A hundredth wide: `llm-router calibrate` reads a threshold for a share off this histogram."""
DIFFICULTY = Histogram("llm_router_difficulty", "Difficulty scores of the text requests auto routed", buckets=DIFFICULTY_BUCKETS)
_SPEND = Counter("llm_router_spend_usd", "Dollars spent, as the spend ledger records them, by key name, team and the group that served",
                 ["key", "team", "group"])
# auto's saving is the baseline less the spend (a counter can't go down, and a request may cost more than its baseline).
_AUTO_SPEND = Counter("llm_router_auto_spend_usd", "Dollars auto requests cost, by key name and team", ["key", "team"])
_AUTO_BASELINE = Counter("llm_router_auto_baseline_usd", "Dollars auto requests would have cost on routing.complex's first group, "
                         "priced from the same tokens, by key name and team", ["key", "team"])

# The latest reading of any worker wins: the spend it is read from is the machine's, not the worker's.
_BUDGET_USED = Gauge("llm_router_budget_used_ratio", "The share of its current period's budget a key or team has spent "
                     "(1 = spent), as of its latest request; for alerts at 0.8", ["scope", "name"], multiprocess_mode="mostrecent")


def decided(decision: RoutingDecision) -> None:
    _DECISIONS.labels(decision.reason, decision.model).inc()
    if decision.reason == "affinity" and decision.tier is not None:
        _AFFINITY.labels(decision.tier).inc()
    for skipped in decision.skipped:
        _SKIPPED.labels(skipped.group, _cause(skipped.why)).inc()
    if decision.signals is not None and decision.signals.difficulty is not None:
        DIFFICULTY.observe(decision.signals.difficulty)


def spent(key: str, team: str, group: str, cost: float, baseline: float | None) -> None:
    """A request recorded in the spend ledger (baseline: an auto request's). Labels are names from the keys
    file and the config, never a key."""
    _SPEND.labels(key, team, group).inc(cost)
    if baseline is not None:
        _AUTO_SPEND.labels(key, team).inc(cost)
        _AUTO_BASELINE.labels(key, team).inc(baseline)


def budget_used(scope: str, name: str, share: float) -> None:
    """scope: key (name: the key's name) or team."""
    _BUDGET_USED.labels(scope, name).set(share)


def fallback_hop(from_group: str, to_group: str) -> None:
    _HOPS.labels(from_group, to_group).inc()


def _cause(why: str) -> str:
    """A short, bounded label for why a group was skipped (the full reason is in explain)."""
    if why == FORBIDDEN:
        return "not allowed for the key"
    if why == OVER_BUDGET:
        return OVER_BUDGET
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
