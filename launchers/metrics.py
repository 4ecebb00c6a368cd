"""The launcher's Prometheus metrics: local servers' states, cold starts, evictions, drain waits,
preparation steps and requests waiting on a start.

They are recorded in the machine's owner process. Under `llm-router serve`, prometheus_client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by serve) puts them beside the workers' and
LiteLLM's, and one scrape of any worker's /metrics reads them all.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STATES = ("stopped", "starting", "ready", "stopping", "failed")

# The latest value wins across processes: a new owner (after a takeover) overwrites the old one's.
_SERVER_STATE = Gauge("llm_router_server_state", "1 for the state a local model server is in, 0 for the others",
                      ["server", "state"], multiprocess_mode="mostrecent")
_WAITING = Gauge("llm_router_requests_waiting_for_start", "Requests waiting for a local model server to be ready",
                 ["server"], multiprocess_mode="mostrecent")
_COLD_STARTS = Counter("llm_router_cold_starts", "Starts of a local model server, by outcome (ready, failed, cancelled)",
                       ["server", "outcome"])
_COLD_START_SECONDS = Histogram("llm_router_cold_start_seconds", "Seconds from a start's beginning to ready", ["server"],
                                buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600))
_EVICTIONS = Counter("llm_router_evictions", "Idle servers stopped to make room for another under the memory budget", ["server"])
_DRAIN_WAITS = Counter("llm_router_drain_waits", "Starts that waited for busy servers to drain before they fit", ["server"])
_PREPARATION_STEPS = Counter("llm_router_preparation_steps", "Steps of preparation recipes run, by outcome", ["recipe", "outcome"])


def server_state(server: str, state: str) -> None:
    for each in STATES:
        _SERVER_STATE.labels(server, each).set(1 if each == state else 0)


def waiting_for_start(server: str, count: int) -> None:
    _WAITING.labels(server).set(count)


def cold_start(server: str, outcome: str, seconds: float | None = None) -> None:
    _COLD_STARTS.labels(server, outcome).inc()
    if seconds is not None:
        _COLD_START_SECONDS.labels(server).observe(seconds)


def eviction(server: str) -> None:
    _EVICTIONS.labels(server).inc()


def drain_wait(server: str) -> None:
    _DRAIN_WAITS.labels(server).inc()


def preparation_step(recipe: str, outcome: str) -> None:
    _PREPARATION_STEPS.labels(recipe, outcome).inc()
