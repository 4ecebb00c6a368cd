"""Streams that wait for a cold start: keep-alive comments fill the wait, and the routing headers go out
with the first of them. One gateway for these tests, in a module of its own: its local server (2 s to
start) would count among the servers the launcher tests count."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.configs import core_config, set_spec
from tests.support.gateway import Gateway


@pytest.fixture(scope="module")
def pinging(tmp_path_factory, cloud):
    """A gateway whose streams get keep-alive comments while local-text takes 2 s to start; each test stops
    local-text (cold()) before a stream that must wait for its start."""
    config = core_config(tmp_path_factory.mktemp("pinging"), cloud.url)
    config.write_text(config.read_text() + "litellm_settings:\n  sse_keepalive_ping_interval_seconds: 0.3\n")
    set_spec(config, "local-text", flags=["--start-delay", "2"])
    with Gateway(config) as gw:
        yield gw


def _cold(gw: Gateway) -> None:
    assert gw.post("/v1/router/servers/local-text/stop").json()["state"] == "stopped"


def test_a_stream_waiting_for_a_cold_server_receives_keepalive_comments(pinging):
    _cold(pinging)
    comments, data = 0, []
    body = {"model": "local-text", "stream": True, "messages": [{"role": "user", "content": "hello"}]}
    with httpx.stream("POST", f"{pinging.url}/v1/chat/completions", json=body, timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith(":"):
                comments += int(not data)
            elif line.startswith("data: ") and line != "data: [DONE]":
                data.append(json.loads(line[6:]))
    assert comments >= 2
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in data if c.get("choices"))
    assert text.startswith("local:fake-text says: hello")


COLD_STREAMS = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hello"}]}, "[DONE]"),
    "responses": ("/v1/responses", {"input": "hello"}, "response.completed"),
    "messages": ("/v1/messages", {"max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}, "message_stop"),
}
"""Each API's streamed request, and what only its complete stream carries."""


@pytest.mark.parametrize("api", COLD_STREAMS)
def test_a_stream_waiting_for_a_cold_start_carries_the_routing_headers(pinging, api):
    """The decision is made before the start begins, so its headers go out with the first keep-alive comment."""
    path, body, complete = COLD_STREAMS[api]
    _cold(pinging)
    with httpx.stream("POST", pinging.url + path, json={"model": "auto", "stream": True, **body}, timeout=60) as response:
        lines = list(response.iter_lines())
    assert lines[0].startswith(":"), lines[:3]  # the response began with a keep-alive comment, before the start ended
    assert any(complete in line for line in lines), lines[-5:]
    assert response.headers.get("x-llm-router-model") == "local-text", dict(response.headers)
    assert response.headers.get("x-llm-router-reason") == "default", dict(response.headers)
