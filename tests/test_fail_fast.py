"""A request the gateway can't serve gets its answer at once: one attempt per backend, one 503 the
SDKs don't retry, and no start of a server that can't or mustn't start.

bench/fail_fast.py measures how fast; these check the behaviour those figures rest on.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.configs import core_config, set_spec, shipped_config_copy
from tests.support.gateway import Gateway
from tests.support.sdk import sdk_http_requests

HI = [{"role": "user", "content": "hi"}]


def _servers(gw: Gateway) -> dict[str, str]:
    return {s["name"]: s["state"] for s in gw.get("/v1/router/servers").json()["servers"]}


def _with_retries(config: Path) -> Path:
    """LiteLLM retries every failed attempt twice in this config, unless an attempt says not to."""
    config.write_text(config.read_text().replace("num_retries: 0", "num_retries: 2"))
    return config


def _assert_backend_unavailable(response: httpx.Response) -> str:
    """The 503 in the caller's API format: OpenAI's `backend_unavailable`, or Anthropic's error envelope."""
    assert response.status_code == 503, response.text
    assert response.headers["x-should-retry"] == "false"
    body = response.json()
    anthropic = response.request.url.path.endswith("/messages")
    assert body.get("type") == ("error" if anthropic else None), body
    assert body["error"]["type"] == ("api_error" if anthropic else "backend_unavailable"), body
    return body["error"]["message"]


def test_a_server_that_crashes_on_start_is_one_attempt_even_where_litellm_would_retry(tmp_path, cloud):
    config = _with_retries(core_config(tmp_path, cloud.url))
    set_spec(config, "local-text", flags=("--crash-on-start",))
    with Gateway(config) as gw:  # no ANTHROPIC_API_KEY: the fallback, claude-sonnet, can't serve either
        message = _assert_backend_unavailable(gw.post("/v1/chat/completions", {"model": "local-text", "messages": HI}))
    assert message.startswith("All backends failed for this request. Tried 2: local-text: "), message
    assert message.count("local-text:") == 1 and "claude-sonnet: ANTHROPIC_API_KEY is not set" in message
    assert (tmp_path / "logs" / "local-text.log").read_text().count("simulated start failure") == 1


@pytest.fixture(scope="module")
def keyless(tmp_path_factory):
    """The shipped config on this machine: no cloud keys, no GPU, SmolLM2's weights not prepared here
    (SmolLM2 is available: it prepares on first use, and can't call tools or see images)."""
    with Gateway(shipped_config_copy(tmp_path_factory.mktemp("keyless"), link_cpu_weights=False)) as gw:
        yield gw


@pytest.mark.parametrize("path,body", [
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI}),
    ("/v1/responses", {"model": "gpt-4o", "input": "hi"}),
    ("/v1/messages", {"model": "gpt-4o", "max_tokens": 5, "messages": HI}),
], ids=["chat", "responses", "messages"])
def test_a_chain_that_cannot_serve_here_is_one_503_the_sdk_sends_once(keyless, path, body):
    _assert_backend_unavailable(keyless.post(path, body))
    assert sdk_http_requests(keyless.url, path, body) == 1
    assert set(_servers(keyless).values()) == {"stopped"}, _servers(keyless)


TOOL = {"name": "weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
WITH_TOOLS = {
    "chat": ("/v1/chat/completions", {"messages": HI, "tools": [{"type": "function", "function": TOOL}]}),
    "responses": ("/v1/responses", {"input": "hi", "tools": [{"type": "function", **TOOL}]}),
    "messages": ("/v1/messages", {"max_tokens": 5, "messages": HI,
                                  "tools": [{"name": TOOL["name"], "description": TOOL["description"], "input_schema": TOOL["parameters"]}]}),
}
KEYLESS_REASONS = {
    "smollm2-135m-cpu": "can't call tools", "qwen2.5-vl-7b": "can't call tools",
    "gpt-4o": "OPENAI_API_KEY is not set", "gpt-4o-mini": "OPENAI_API_KEY is not set",
    "claude-sonnet": "ANTHROPIC_API_KEY is not set", "claude-haiku": "ANTHROPIC_API_KEY is not set",
}
"""Why each shipped group can't take a request with tools on a keyless machine without a GPU (qwen3-14b could call
tools: its reason is its own, the missing engine and GPU)."""


def _assert_refused_naming_every_group(response: httpx.Response) -> dict[str, str | None]:
    """The 400 in the caller's API format, naming every group and why, in its message and in
    `provider_specific_fields.groups`; the groups it names, and why."""
    assert response.status_code == 400, response.text
    assert "x-should-retry" not in response.headers  # a 4xx: no SDK retries it
    body = response.json()
    anthropic = response.request.url.path.endswith("/messages")
    assert body.get("type") == ("error" if anthropic else None), body
    assert body["error"]["type"] == "invalid_request_error", body
    groups = {g["group"]: g["why"] for g in body["error"]["provider_specific_fields"]["groups"]}
    assert all(f"{group}: {why}" in body["error"]["message"] for group, why in groups.items()), body
    return groups


@pytest.mark.parametrize("api", WITH_TOOLS)
@pytest.mark.parametrize("model", ["auto", "gpt-4o"])
def test_tools_with_no_available_group_that_can_call_them_are_one_400_naming_every_group(keyless, api, model):
    """Issue 26: a coding agent's request (tools, always) on a keyless machine. Not a 503, which agents retry."""
    path, body = WITH_TOOLS[api]
    groups = _assert_refused_naming_every_group(keyless.post(path, {"model": model, **body}))
    assert set(groups) == {"qwen3-14b", *KEYLESS_REASONS}
    assert {group: groups[group] for group in KEYLESS_REASONS} == KEYLESS_REASONS
    assert "needs a GPU" in groups["qwen3-14b"]
    assert sdk_http_requests(keyless.url, path, {"model": model, **body}) == 1
    assert set(_servers(keyless).values()) == {"stopped"}, _servers(keyless)


def test_an_image_with_no_available_group_that_can_see_is_one_400_naming_every_group(keyless):
    png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    groups = _assert_refused_naming_every_group(keyless.post("/v1/chat/completions", {"model": "auto", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": png}}]}]}))
    assert groups["smollm2-135m-cpu"] == "can't see images" and groups["gpt-4o"] == "OPENAI_API_KEY is not set"
    assert "needs a GPU" in groups["qwen2.5-vl-7b"]


def test_auto_start_false_refuses_a_start_for_a_request_that_names_the_server(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    set_spec(config, "local-text", auto_start="false")
    with Gateway(config) as gw:
        message = _assert_backend_unavailable(gw.post("/v1/chat/completions", {"model": "local-text", "messages": HI}))
        assert "local-text: auto_start is false and the server is not running" in message
        assert _servers(gw)["local-text"] == "stopped"


def test_auto_start_false_refuses_the_background_start_of_cold_start_fallback(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    set_spec(config, "local-text", auto_start="false", cold_start="fallback")
    with Gateway(config, {"ANTHROPIC_API_KEY": "sk-ant-test-fail-fast"}) as gw:
        answer = gw.post("/v1/chat/completions", {"model": "auto", "messages": HI})
        assert answer.status_code == 200 and answer.headers["x-litellm-model-group"] == "claude-sonnet", answer.text
        assert _servers(gw)["local-text"] == "stopped"
