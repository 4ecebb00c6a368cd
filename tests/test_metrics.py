"""GET /metrics: one Prometheus scrape of a two-worker gateway shows LiteLLM's request metrics and
ours (routing decisions, skipped groups, fallback hops, server states, cold starts, evictions,
drain waits), with counts that match exactly what the test sent, whichever worker answered."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.configs import core_config, set_spec
from tests.support.gateway import Gateway
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

MASTER = "sk-master-SENTINEL-metrics-0001"
OPENAI = "sk-test-SENTINEL-metrics-0002"
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def _chat(gw: Gateway, model: str, content: object) -> httpx.Response:
    return gw.post("/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": content}]}, key=MASTER)


def _inflight(gw: Gateway, name: str) -> int:
    return next(s["inflight"] for s in gw.get("/v1/router/servers", MASTER).json()["servers"] if s["name"] == name)


@pytest.fixture(scope="module")
def scraped(cloud, tmp_path_factory):
    """A gateway under a known load, and its scrape: {(name, labels): value}."""
    config = core_config(tmp_path_factory.mktemp("metrics"), cloud.url,
                         extra_llm_router="memory_budget: {host_gib: 20, drain_timeout_s: 30}\nmetrics_public: true")
    for name in ("local-text", "local-vision"):
        set_spec(config, name, memory="{host_gib: 15}")  # the two can't run together: they take turns
    set_spec(config, "local-text", flags=("--response-delay", "1"))
    # No Anthropic key: the complex group is skipped, and a long prompt goes to the default group.
    with Gateway(config, {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": OPENAI}, workers=2) as gw:
        sent = [_chat(gw, "auto", f"hi {i}") for i in range(3)]  # default: local-text, one cold start
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            busy = pool.submit(_chat, gw, "auto", "still busy")  # holds local-text...
            wait_until(lambda: _inflight(gw, "local-text") == 1, 20, "the request to hold local-text")
            sent.append(_chat(gw, "auto", [{"type": "image_url", "image_url": {"url": PNG}}]))  # ...so vision waits, then evicts it
            sent.append(busy.result())
        sent.append(_chat(gw, "flaky-500", "hi"))  # explicit; falls back to gpt-4o
        # Too long for the default group's window (300 tokens): claude-sonnet would take it, but has no key,
        # so local-text does, and evicts local-vision.
        sent.append(_chat(gw, "auto", "word " * 600))
        assert [r.status_code for r in sent] == [200] * len(sent), [r.text[:200] for r in sent]
        scrape = httpx.get(f"{gw.url}/metrics", follow_redirects=True, timeout=30)  # metrics_public: no key
        assert scrape.status_code == 200
        yield scrape.text, _samples(scrape.text)


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: dict, name: str, **labels: str) -> float:
    """The sum over every sample of `name` whose labels include `labels` (LiteLLM adds many of its own)."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


def test_routing_decisions_are_counted_by_reason_and_group(scraped):
    _, samples = scraped
    assert _value(samples, "llm_router_routing_decisions_total", reason="default", group="local-text") == 4
    assert _value(samples, "llm_router_routing_decisions_total", reason="vision", group="local-vision") == 1
    assert _value(samples, "llm_router_routing_decisions_total", reason="context", group="local-text") == 1
    assert _value(samples, "llm_router_routing_decisions_total", reason="explicit", group="flaky-500") == 1
    assert _value(samples, "llm_router_routing_decisions_total") == 7


def test_skipped_groups_and_fallback_hops_are_counted(scraped):
    _, samples = scraped
    assert _value(samples, "llm_router_routing_skipped_total", group="claude-sonnet", cause="no API key") == 1
    assert _value(samples, "llm_router_routing_skipped_total") == 1
    assert _value(samples, "llm_router_fallback_hops_total", from_group="flaky-500", to_group="gpt-4o") == 1
    assert _value(samples, "llm_router_fallback_hops_total") == 1


def test_the_owners_server_facts_are_in_the_same_scrape(scraped):
    _, samples = scraped
    assert _value(samples, "llm_router_cold_starts_total", server="local-text", outcome="ready") == 2
    assert _value(samples, "llm_router_cold_starts_total", server="local-vision", outcome="ready") == 1
    assert _value(samples, "llm_router_cold_start_seconds_count", server="local-text") == 2
    assert _value(samples, "llm_router_evictions_total", server="local-text") == 1
    assert _value(samples, "llm_router_evictions_total", server="local-vision") == 1
    assert _value(samples, "llm_router_drain_waits_total", server="local-vision") == 1
    assert _value(samples, "llm_router_server_state", server="local-text", state="ready") == 1
    assert _value(samples, "llm_router_server_state", server="local-vision", state="stopped") == 1
    assert _value(samples, "llm_router_server_state", server="local-vision", state="ready") == 0
    assert _value(samples, "llm_router_requests_waiting_for_start") == 0


def test_litellms_own_request_metrics_count_every_request_of_every_worker(scraped):
    _, samples = scraped
    assert _value(samples, "litellm_proxy_total_requests_metric_total") == 7
    assert _value(samples, "litellm_proxy_total_requests_metric_total", requested_model="local-vision") == 1


def test_litellms_request_latency_and_token_metrics_are_scraped_and_its_database_ones_are_not(scraped):
    from router_config.litellm_settings import LITELLM_METRICS

    text, samples = scraped
    families = {name for name, _ in samples}
    assert {"litellm_request_total_latency_metric_count", "litellm_llm_api_latency_metric_count", "litellm_input_tokens_metric_total"} <= families
    # The in-flight gauge is the proxy's own, outside the callback and its filter.
    assert {n for n in families if n.startswith("litellm_") and not n.startswith(LITELLM_METRICS)} <= {"litellm_in_flight_requests"}
    assert "litellm_remaining_api_key_budget_metric" not in text and "litellm_spend_metric" not in text


def test_no_secret_is_in_the_scrape(scraped):
    text, _ = scraped
    assert MASTER not in text and OPENAI not in text
