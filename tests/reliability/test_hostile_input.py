"""No input makes the gateway answer 500 or hang: generated chat bodies, hostile sizes and shapes."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway

COUNTS = {"requests": 0, "2xx": 0, "4xx": 0, "5xx": 0}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with FakeCloud() as cloud:
        config = core_config(tmp_path_factory.mktemp("hostile"), cloud.url)
        with Gateway(config, {"OPENAI_API_KEY": "sk-test-hostile-0001", "ANTHROPIC_API_KEY": "sk-ant-test-hostile-0001"}) as gw:
            yield gw
    print(f"\nhostile input: {COUNTS}")


# Integers beyond any float too: JSON has no limit, and a check that converts one raises.
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.sampled_from([10**400, -10**400]),
                         st.floats(allow_nan=False), st.text(max_size=40))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(st.text(max_size=200), json_values)}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.one_of(
        st.fixed_dictionaries({"url": st.sampled_from([
            "data:image/png;base64,iVBORw0KGgo=", "data:image/png;base64,!!!notbase64", "http://127.0.0.1/a.png",
            "http://169.254.169.254/latest", "http://10.0.0.1/x.png", "http://[::1]/x", "http://2130706433/x",
            "file:///etc/passwd", "gopher://x", "", "https://example.com/cat.png"])}),
        json_values)}),
    st.dictionaries(st.sampled_from(["type", "text", "image_url", "input_audio"]), json_values, max_size=3),
    json_values,
)
messages = st.lists(
    st.one_of(
        st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", "tool", "wizard", ""]),
                               "content": st.one_of(st.text(max_size=300), st.lists(parts, max_size=4), json_values)}),
        json_values,
    ),
    max_size=6,
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {"messages": messages},
        optional={
            "model": st.sampled_from(["auto", "", "gpt-4o", "local-text", "no-such-model", None, 7, ["x"]]),
            "stream": st.one_of(st.booleans(), json_values),
            "temperature": st.one_of(st.floats(-10, 10), json_values),
            "max_tokens": st.one_of(st.integers(-5, 10**9), json_values),
            "n": st.one_of(st.integers(-3, 300), json_values),
        },
    ),
    json_values,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies)
def test_generated_chat_bodies_never_get_a_500_or_hang(gateway, body):
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=json.dumps(body).encode(), headers={"content-type": "application/json"}, timeout=30)
    COUNTS["requests"] += 1
    COUNTS[f"{response.status_code // 100}xx"] = COUNTS.get(f"{response.status_code // 100}xx", 0) + 1
    assert response.status_code < 500, (body, response.text[:500])
    if response.status_code >= 400:
        assert "error" in response.json()


def test_ten_thousand_messages_get_a_clear_400(gateway):
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}] * 10_000}
    response = gateway.post("/v1/chat/completions", body, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


def test_a_fifty_megabyte_body_gets_413_without_being_read(gateway):
    body = b'{"messages": [{"role": "user", "content": "' + b"a" * (50 * 2**20) + b'"}]}'
    response = gateway.post("/v1/chat/completions", content=body, timeout=60)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "413"


def test_image_urls_at_internal_addresses_are_refused_before_routing(gateway):
    for url in ["http://localhost:8000/x.png", "http://127.0.0.1/x.png", "http://10.1.2.3/x.png", "http://192.168.0.1/x.png",
                "http://169.254.169.254/latest/meta-data", "http://[::1]/x.png", "http://0x7f000001/x.png", "http://2130706433/x.png"]:
        body = {"model": "auto", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}
        for path in ("/v1/chat/completions", "/v1/router/explain"):
            response = gateway.post(path, body)
            assert response.status_code == 400, (url, path, response.text)
