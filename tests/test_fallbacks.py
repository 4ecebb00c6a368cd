"""Fallbacks users can trust: each failure mode reaches the next group; a dead chain is one clear error."""

from __future__ import annotations

import time

import openai
import pytest

from tests.support.configs import core_config
from tests.support.gateway import Gateway

SENTINEL_OPENAI = "sk-test-openai-SENTINEL-fb01"
SENTINEL_ANTHROPIC = "sk-ant-test-SENTINEL-fb02"


@pytest.fixture(scope="module")
def gateway(cloud, tmp_path_factory):
    config = core_config(tmp_path_factory.mktemp("fallbacks"), cloud.url)
    with Gateway(config, {"OPENAI_API_KEY": SENTINEL_OPENAI, "ANTHROPIC_API_KEY": SENTINEL_ANTHROPIC}) as gw:
        yield gw


@pytest.mark.parametrize("group", ["flaky-500", "down", "slow", "flaky-429"])
def test_failing_group_falls_back_to_the_next_group(gateway, group):
    raw = gateway.client().chat.completions.with_raw_response.create(model=group, messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-litellm-model-group"] == "gpt-4o"
    assert int(raw.headers["x-litellm-attempted-fallbacks"]) >= 1
    assert raw.parse().choices[0].message.content.startswith("openai:gpt-4o says: hi")


def test_stream_failing_before_its_first_chunk_falls_back(gateway):
    stream = gateway.client().chat.completions.create(model="stream-break", messages=[{"role": "user", "content": "go"}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.startswith("openai:gpt-4o says: go")


def test_missing_api_key_fails_over_without_a_network_call(gateway, cloud):
    cloud.clear_requests()
    raw = gateway.client().chat.completions.with_raw_response.create(model="no-key", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-litellm-model-group"] == "gpt-4o"
    assert not cloud.requests_for("gpt-4o-nokey")


def test_whole_chain_failing_is_one_clear_error_naming_each_backend(gateway):
    with pytest.raises(openai.APIStatusError) as info:
        gateway.client().chat.completions.create(model="anthropic-500", messages=[{"role": "user", "content": "hi"}])
    err = info.value
    assert err.status_code in (502, 503)
    message = err.body["message"] if isinstance(err.body, dict) else str(err.body)
    assert "anthropic-500" in message and "dead-end" in message
    assert SENTINEL_OPENAI not in message and SENTINEL_ANTHROPIC not in message
    assert SENTINEL_OPENAI not in gateway.log_text() and SENTINEL_ANTHROPIC not in gateway.log_text()


def test_group_with_only_a_missing_key_is_a_fast_503(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    with Gateway(config, {"ANTHROPIC_API_KEY": SENTINEL_ANTHROPIC}) as gw:  # no OpenAI key at all
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            gw.client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert time.monotonic() - started < 5
        assert info.value.status_code == 503
        assert "OPENAI_API_KEY is not set" in str(info.value.body)


def test_local_server_that_cannot_start_falls_back_to_cloud(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    spec = tmp_path / "models" / "local-text.yaml"
    spec.write_text(spec.read_text().replace("--served-model-name", "--crash-on-start', '--served-model-name"))
    with Gateway(config, {"ANTHROPIC_API_KEY": SENTINEL_ANTHROPIC}) as gw:
        raw = gw.client().chat.completions.with_raw_response.create(model="local-text", messages=[{"role": "user", "content": "hi"}])
        assert raw.headers["x-litellm-model-group"] == "claude-sonnet"
        assert "simulated start failure" in (tmp_path / "logs" / "local-text.log").read_text()
