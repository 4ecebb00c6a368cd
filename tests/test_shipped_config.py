"""The shipped litellm_config.yaml as an admin runs it, with cloud base URLs from the environment."""

from __future__ import annotations

import shutil
from pathlib import Path

import anthropic
import pytest

from tests.support.gateway import Gateway

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shipped(cloud, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shipped")
    shutil.copy(REPO / "litellm_config.yaml", tmp / "litellm_config.yaml")
    (tmp / "models").mkdir()
    for spec in (REPO / "models").glob("*.yaml"):
        shutil.copy(spec, tmp / "models" / spec.name)
    env = {"OPENAI_API_KEY": "sk-test-shipped-0001", "ANTHROPIC_API_KEY": "sk-ant-test-shipped-0001",
           "OPENAI_BASE_URL": f"{cloud.url}/v1", "ANTHROPIC_BASE_URL": cloud.url}
    with Gateway(tmp / "litellm_config.yaml", env) as gw:
        yield gw


@pytest.mark.parametrize(("name", "upstream"), [
    ("gpt-4o", "openai:gpt-4o"), ("gpt-4", "openai:gpt-4o"), ("gpt-4-turbo", "openai:gpt-4o"),
    ("gpt-3.5-turbo", "openai:gpt-4o-mini"), ("gpt-4o-mini", "openai:gpt-4o-mini"),
    ("claude-3-5-sonnet-20241022", "anthropic:claude-sonnet-4-5"), ("claude-3-5-sonnet", "anthropic:claude-sonnet-4-5"),
    ("claude-3-opus", "anthropic:claude-sonnet-4-5"), ("claude-3-5-haiku", "anthropic:claude-haiku-4-5"),
    ("claude-haiku", "anthropic:claude-haiku-4-5"),
])
def test_cloud_names_resolve_to_their_provider_through_the_base_url_variables(shipped, cloud, name, upstream):
    answer = shipped.client().chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content.startswith(f"{upstream} says: hi")
    assert cloud.requests[-1].api_key in ("sk-test-shipped-0001", "sk-ant-test-shipped-0001")


@pytest.mark.parametrize("name", ["Qwen3-14B-unsloth-bnb-4bit", "qwen3-14b"])
def test_a_local_model_that_cannot_run_here_falls_back_to_claude_by_group_or_served_name(shipped, name):
    raw = shipped.client().chat.completions.with_raw_response.create(model=name, messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-litellm-model-group"] == "claude-sonnet"


def test_the_vision_models_served_name_resolves_to_its_group(shipped):
    raw = shipped.client().chat.completions.with_raw_response.create(model="Qwen2.5-VL-7B-Instruct-unsloth-bnb-4bit",
                                                                     messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-llm-router-model"] == "qwen2.5-vl-7b"
    assert raw.headers["x-litellm-model-group"] == "gpt-4o"  # its fallback: no GPU here


@pytest.fixture(scope="module")
def keyless(tmp_path_factory):
    """The shipped config on a machine with no API keys."""
    tmp = tmp_path_factory.mktemp("keyless")
    shutil.copy(REPO / "litellm_config.yaml", tmp / "litellm_config.yaml")
    (tmp / "models").mkdir()
    for spec in (REPO / "models").glob("*.yaml"):
        shutil.copy(spec, tmp / "models" / spec.name)
    with Gateway(tmp / "litellm_config.yaml", {}) as gw:
        yield gw


@pytest.mark.parametrize(("name", "reason"), [
    ("gpt-4", "gpt-4o: OPENAI_API_KEY is not set"), ("gpt-4-turbo", "gpt-4o: OPENAI_API_KEY is not set"),
    ("gpt-3.5-turbo", "gpt-4o-mini: OPENAI_API_KEY is not set"), ("claude-3-5-sonnet-20241022", "claude-sonnet: ANTHROPIC_API_KEY is not set"),
    ("claude-3-5-sonnet", "claude-sonnet: ANTHROPIC_API_KEY is not set"),
    ("claude-3-opus", "claude-sonnet: ANTHROPIC_API_KEY is not set"), ("claude-3-5-haiku", "claude-haiku: ANTHROPIC_API_KEY is not set"),
])
def test_an_alias_without_its_key_fails_with_its_targets_reason_and_walks_its_fallbacks(keyless, name, reason):
    response = keyless.post("/v1/chat/completions", {"model": name, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 503, response.text
    message = response.json()["error"]["message"]
    assert reason in message
    assert message.count("is not set") >= 2  # the target's fallback group was tried too


def _messages_failure(gateway: Gateway, model: str) -> anthropic.APIStatusError:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0, timeout=60)
    with pytest.raises(anthropic.APIStatusError) as failed:
        client.messages.create(model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    return failed.value


@pytest.mark.parametrize("name", ["claude-3-5-sonnet", "claude-3-5-sonnet-20241022"])
def test_an_alias_without_its_key_on_the_messages_api_gets_the_clear_reason(keyless, name):
    failure = _messages_failure(keyless, name)
    assert failure.status_code == 503
    assert "ANTHROPIC_API_KEY is not set" in failure.message and "AuthenticationError" not in failure.message


def test_the_messages_api_names_every_backend_tried_when_an_aliases_chain_fails(keyless):
    message = _messages_failure(keyless, "claude-3-5-sonnet").message
    assert "claude-sonnet: ANTHROPIC_API_KEY is not set" in message and "gpt-4o: OPENAI_API_KEY is not set" in message


def test_a_local_model_that_cannot_run_here_falls_back_to_claude(shipped):
    raw = shipped.client().chat.completions.with_raw_response.create(model="qwen3-14b", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-litellm-model-group"] == "claude-sonnet"


def test_a_long_auto_prompt_goes_to_claude_sonnet(shipped):
    raw = shipped.client().chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "word " * 600}])
    assert raw.headers["x-llm-router-model"] == "claude-sonnet"
    assert raw.headers["x-llm-router-reason"] == "complex"


def test_an_image_goes_to_gpt_4o_when_the_local_vision_model_cannot_run(shipped):
    png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAAABJRU5ErkJggg=="
    content = [{"type": "text", "text": "what is it?"}, {"type": "image_url", "image_url": {"url": png}}]
    raw = shipped.client().chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": content}])
    assert raw.headers["x-llm-router-reason"] == "vision"
    assert raw.headers["x-llm-router-model"] == "gpt-4o"


def test_the_model_list_on_a_bare_machine_offers_what_can_serve_and_says_why_the_rest_cannot(keyless):
    listing = keyless.get("/v1/models").json()
    offered = {m["id"]: m["owned_by"] for m in listing["data"]}
    assert offered == {"auto": "llm-router", "smollm2-135m-cpu": "vllm"}
    why = {m["id"]: m["why"] for m in listing["unavailable"]}
    assert why["gpt-4o"] == "OPENAI_API_KEY is not set" and why["claude-sonnet"] == "ANTHROPIC_API_KEY is not set"
    assert "needs a GPU" in why["qwen3-14b"]
    assert {m["owned_by"] for m in listing["unavailable"]} == {"openai", "anthropic", "vllm"}
