"""The gateway through the real OpenAI SDK: routing, explicit models, headers, explain, health."""

from __future__ import annotations

import http.client
import signal
import time

import pytest

from tests.support.configs import core_config
from tests.support.gateway import Gateway
from tests.support.prompts import HARD

SENTINEL_OPENAI = "sk-test-openai-SENTINEL-0001"
SENTINEL_ANTHROPIC = "sk-ant-test-SENTINEL-0002"
TINY_PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def gateway(cloud, tmp_path_factory):
    config = core_config(tmp_path_factory.mktemp("core"), cloud.url)
    env = {"OPENAI_API_KEY": SENTINEL_OPENAI, "ANTHROPIC_API_KEY": SENTINEL_ANTHROPIC}
    with Gateway(config, env) as gw:
        yield gw


def _raw(gateway, body):
    return gateway.client().chat.completions.with_raw_response.create(**body)


def test_auto_short_prompt_goes_to_the_default_local_group(gateway):
    raw = _raw(gateway, {"model": "auto", "messages": [{"role": "user", "content": "What is the capital of France?"}]})
    assert raw.headers["x-llm-router-model"] == "local-text"
    assert raw.headers["x-llm-router-reason"] == "default"
    assert raw.parse().choices[0].message.content.startswith("local:fake-text says: What is the capital")


def test_missing_model_is_content_routed_like_auto(gateway):
    response = gateway.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hello"}]})
    assert response.status_code == 200
    assert response.headers["x-llm-router-reason"] == "default"


def test_image_anywhere_in_the_conversation_goes_to_the_vision_group(gateway):
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": TINY_PNG}}]},
        {"role": "assistant", "content": "a dot"},
        {"role": "user", "content": "and its colour?"},
    ]
    raw = _raw(gateway, {"model": "auto", "messages": messages})
    assert raw.headers["x-llm-router-model"] == "local-vision"
    assert raw.headers["x-llm-router-reason"] == "vision"
    assert "fake-vision" in raw.parse().choices[0].message.content


def test_long_prompt_goes_to_the_complex_group(gateway, cloud):
    raw = _raw(gateway, {"model": "auto", "messages": [{"role": "user", "content": "word " * 500}]})
    assert raw.headers["x-llm-router-model"] == "claude-sonnet"
    assert raw.headers["x-llm-router-reason"] in ("complex", "context")
    assert raw.parse().choices[0].message.content.startswith("anthropic:claude-sonnet-4-5 says")


def test_prompt_over_the_default_context_window_is_routed_for_context(gateway):
    # 1,500 characters is under max_chars, but ~375+ tokens exceed local-text's 300-token window.
    text = " ".join(f"w{i}" for i in range(450))[:1500]
    raw = _raw(gateway, {"model": "auto", "messages": [{"role": "user", "content": text}]})
    assert raw.headers["x-llm-router-reason"] == "context"
    assert raw.headers["x-llm-router-model"] == "claude-sonnet"


def test_a_hard_short_prompt_is_routed_by_its_difficulty_score(gateway):
    raw = _raw(gateway, {"model": "auto", "messages": [{"role": "user", "content": HARD}]})
    assert raw.headers["x-llm-router-reason"] == "complex"


def test_explicit_model_is_never_rerouted(gateway, cloud):
    raw = _raw(gateway, {"model": "gpt-4o", "messages": [{"role": "user", "content": "word " * 900}]})
    assert raw.headers["x-llm-router-reason"] == "explicit"
    assert raw.headers["x-llm-router-model"] == "gpt-4o"
    assert raw.headers["x-litellm-model-group"] == "gpt-4o"
    assert raw.parse().choices[0].message.content.startswith("openai:gpt-4o says")


def test_alias_resolves_to_its_group(gateway):
    raw = _raw(gateway, {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]})
    assert raw.headers["x-llm-router-reason"] == "explicit"
    assert raw.parse().choices[0].message.content.startswith("openai:gpt-4o says")


def test_streaming_through_the_sdk_returns_the_whole_answer_and_headers(gateway):
    stream = gateway.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "stream please"}], stream=True
    )
    assert stream.headers["x-llm-router-model"] == "local-text"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream.parse() if chunk.choices)
    assert text.startswith("local:fake-text says: stream please")


def test_anthropic_streaming_is_translated_to_openai_chunks(gateway):
    stream = gateway.client().chat.completions.create(model="claude-sonnet", messages=[{"role": "user", "content": "hey"}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.startswith("anthropic:claude-sonnet-4-5 says: hey")


def test_explain_returns_the_decision_without_calling_a_backend(gateway, cloud):
    before = len(cloud.requests)
    body = {"model": "auto", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": TINY_PNG}}]}]}
    response = gateway.post("/v1/router/explain", body)
    assert response.status_code == 200
    data = response.json()
    assert data["model"] == "local-vision" and data["reason"] == "vision"
    assert data["signals"]["images"] == 1
    assert set(data["signals"]) >= {"chars", "user_chars", "tokens", "images", "difficulty", "difficulty_threshold"}
    assert isinstance(data["fallbacks"], list)
    assert len(cloud.requests) == before


def test_explain_lists_the_fallback_chain(gateway):
    data = gateway.post("/v1/router/explain", {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).json()
    assert data["model"] == "local-text"
    assert data["fallbacks"] == ["claude-sonnet"]


def test_explain_rejects_a_body_without_messages(gateway):
    response = gateway.post("/v1/router/explain", {"model": "auto"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


def test_health_reports_every_backend_fast_and_without_secrets(gateway, cloud):
    before = len(cloud.requests)
    started = time.monotonic()
    response = gateway.get("/v1/health")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    backends = response.json()["backends"]
    assert backends["no-key"] == {"healthy": False, "state": "unconfigured", "detail": "LLM_ROUTER_TEST_UNSET_KEY is not set"}
    assert backends["gpt-4o"]["healthy"] is True
    assert backends["local-text"]["state"] in ("stopped", "ready")
    assert SENTINEL_OPENAI not in response.text and SENTINEL_ANTHROPIC not in response.text
    assert len(cloud.requests) == before
    assert elapsed < 2.0  # generous for a loaded CI machine; the bench measures the real figure
    assert gateway.get("/health").json()["backends"].keys() == backends.keys()


def test_models_lists_the_configured_groups(gateway):
    ids = {m.id for m in gateway.client().models.list()}
    assert {"gpt-4o", "claude-sonnet", "local-text", "local-vision"} <= ids


def test_an_idle_keep_alive_connection_outlives_the_sdk_pool_expiry(gateway):
    # httpx, under the OpenAI SDK, reuses a pooled connection for up to 5 s of idleness; the
    # gateway must not close it first, or the reused request meets a reset.
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        conn.request("GET", "/health/liveliness")
        first = conn.getresponse()
        first.read()
        time.sleep(5.5)
        conn.request("GET", "/health/liveliness")
        assert (first.status, conn.getresponse().status) == (200, 200)
    finally:
        conn.close()


def test_a_gateway_that_crashes_leaves_its_python_stack_in_its_output(cloud, tmp_path):
    gw = Gateway(core_config(tmp_path, cloud.url)).start()
    try:
        gw.proc.send_signal(signal.SIGSEGV)
        gw.proc.wait(20)
    finally:
        gw.stop()
    output = gw.log_text()
    assert "Fatal Python error: Segmentation fault" in output
    assert "uvicorn" in output.split("Fatal Python error")[1]  # the stack, down to the server loop
