"""A team key's models and rpm hold on every inference API, through the real OpenAI and Anthropic SDKs.

One key may use gpt-4o and claude-sonnet only; another may use everything at 4 requests a
minute. Every refusal is checked at the upstream too: a refused request never reaches it.
"""

from __future__ import annotations

import subprocess
import sys
from textwrap import dedent

import anthropic
import httpx
import openai
import pytest

from tests.fakes.cloud import FakeCloud
from tests.support.gateway import Gateway

MASTER = "sk-master-SENTINEL-apis-0001"
OPENAI_KEY = "sk-test-apis-openai-0001"
ANTHROPIC_KEY = "sk-ant-test-apis-anthropic-0001"
HI = [{"role": "user", "content": "hi"}]


def _config(tmp, cloud_url: str):
    path = tmp / "litellm_config.yaml"
    path.write_text(dedent(f"""
        model_list:
          - {{model_name: gpt-4o, litellm_params: {{model: openai/gpt-4o, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}}}
          - {{model_name: gpt-4o-mini, litellm_params: {{model: openai/gpt-4o-mini, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}}}
          - {{model_name: claude-sonnet, litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: "{cloud_url}", api_key: os.environ/ANTHROPIC_API_KEY}}}}
          - {{model_name: claude-haiku, litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: "{cloud_url}", api_key: os.environ/ANTHROPIC_API_KEY}}}}
          - {{model_name: gpt-4o-default-base, litellm_params: {{model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY}}}}
          - {{model_name: flaky, litellm_params: {{model: openai/fake-status-500, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}}}
        router_settings:
          num_retries: 0
          model_group_alias: {{gpt-4-mini: gpt-4o-mini}}
          fallbacks:
            - flaky: [gpt-4o-mini, gpt-4o]
        routing: {{vision: [gpt-4o], complex: [claude-sonnet], default: [gpt-4o]}}
        llm_router: {{state_dir: run, log_dir: logs, keys_file: keys.yaml}}
    """))
    return path


def _add_key(config, name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "llm_router.cli", "keys", "add", name, "--team", "t", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with FakeCloud() as cloud:
        config = _config(tmp_path_factory.mktemp("apis"), cloud.url)
        keys = {"narrow": _add_key(config, "narrow", "--models", "gpt-4o,claude-sonnet,flaky"),
                "counted": _add_key(config, "counted", "--rpm", "4"),
                "wide": _add_key(config, "wide")}
        # gpt-4o-default-base uses OpenAI's default base URL, here the fake's: so files and batches are served.
        env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
               "OPENAI_BASE_URL": f"{cloud.url}/v1"}
        with Gateway(config, env) as gw:
            yield gw, keys, cloud


def _openai(gw: Gateway, key: str) -> openai.OpenAI:
    return gw.client(api_key=key)


def _anthropic(gw: Gateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0, timeout=60)


def _upstream_models(cloud: FakeCloud) -> list[str]:
    return [r.model for r in cloud.requests]


OPENAI_CALLS = {
    "chat": lambda c, m: c.chat.completions.create(model=m, messages=HI),
    "chat-stream": lambda c, m: list(c.chat.completions.create(model=m, messages=HI, stream=True)),
    "completions": lambda c, m: c.completions.create(model=m, prompt="hi"),
    "embeddings": lambda c, m: c.embeddings.create(model=m, input="hi"),
    "responses": lambda c, m: c.responses.create(model=m, input="hi"),
    "responses-stream": lambda c, m: list(c.responses.create(model=m, input="hi", stream=True)),
}
ANTHROPIC_CALLS = {
    "messages": lambda c, m: c.messages.create(model=m, max_tokens=16, messages=HI),
    "messages-stream": lambda c, m: list(c.messages.create(model=m, max_tokens=16, messages=HI, stream=True)),
    "count_tokens": lambda c, m: c.messages.count_tokens(model=m, messages=HI),
}


@pytest.mark.parametrize("call", sorted(OPENAI_CALLS))
def test_the_openai_sdk_reaches_an_allowed_model(setup, call):
    gw, keys, _ = setup
    OPENAI_CALLS[call](_openai(gw, keys["narrow"]), "gpt-4o")


@pytest.mark.parametrize("call", sorted(OPENAI_CALLS))
@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4-mini"])
def test_the_openai_sdk_is_refused_a_model_outside_the_key_on_every_api(setup, call, model):
    gw, keys, cloud = setup
    before = len(cloud.requests)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        OPENAI_CALLS[call](_openai(gw, keys["narrow"]), model)
    assert "may not use model 'gpt-4o-mini'" in str(refused.value)
    assert len(cloud.requests) == before


@pytest.mark.parametrize("call", sorted(ANTHROPIC_CALLS))
def test_the_anthropic_sdk_reaches_an_allowed_model(setup, call):
    gw, keys, _ = setup
    ANTHROPIC_CALLS[call](_anthropic(gw, keys["narrow"]), "claude-sonnet")


@pytest.mark.parametrize("call", sorted(ANTHROPIC_CALLS))
def test_the_anthropic_sdk_is_refused_a_model_outside_the_key(setup, call):
    gw, keys, cloud = setup
    before = len(cloud.requests)
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        ANTHROPIC_CALLS[call](_anthropic(gw, keys["narrow"]), "claude-haiku")
    assert refused.value.body["type"] == "error" and refused.value.body["error"]["type"] == "permission_error"  # Anthropic's shape
    assert len(cloud.requests) == before


@pytest.mark.parametrize("prefix", ["/engines", "/openai/deployments"])
@pytest.mark.parametrize("operation", ["chat/completions", "completions", "embeddings"])
def test_a_model_named_in_the_path_is_checked_too(setup, prefix, operation):
    gw, keys, cloud = setup
    before = len(cloud.requests)
    body = {"messages": HI, "prompt": "hi", "input": "hi"}
    response = gw.post(f"{prefix}/gpt-4o-mini/{operation}", body, key=keys["narrow"])
    assert response.status_code == 403, response.text
    assert len(cloud.requests) == before


def test_a_fallback_hop_to_a_model_outside_the_key_is_skipped(setup):
    gw, keys, cloud = setup
    cloud.clear_requests()
    raw = _openai(gw, keys["narrow"]).chat.completions.with_raw_response.create(model="flaky", messages=HI)
    assert raw.headers["x-litellm-model-group"] == "gpt-4o"
    assert "gpt-4o-mini" not in _upstream_models(cloud)


def test_a_response_of_a_model_outside_the_key_cannot_be_retrieved(setup):
    """The Responses store answers by id: to a key other than the one that made a response, it doesn't exist."""
    gw, keys, cloud = setup
    created = _openai(gw, MASTER).responses.create(model="gpt-4o-mini", input="hi")
    before = len(cloud.requests)
    for call in (lambda c: c.responses.retrieve(created.id), lambda c: c.responses.input_items.list(created.id),
                 lambda c: c.responses.delete(created.id)):
        with pytest.raises(openai.NotFoundError):
            call(_openai(gw, keys["narrow"]))
    assert len(cloud.requests) == before


@pytest.mark.parametrize("path", ["/v1/files", "/v1/batches"])
def test_files_and_batches_need_a_key_allowed_every_model(setup, path):
    gw, keys, cloud = setup
    before = len(cloud.requests)
    narrow = httpx.get(gw.url + path, headers={"authorization": f"Bearer {keys['narrow']}"}, timeout=30)
    assert narrow.status_code == 403 and "can name any model" in narrow.json()["error"]["message"]
    wide = httpx.get(gw.url + path, headers={"authorization": f"Bearer {keys['wide']}"}, timeout=30)
    assert wide.status_code not in (401, 403), wide.text
    assert len(cloud.requests) == before


def test_one_rpm_budget_counts_every_api(setup):
    gw, keys, _ = setup
    key = keys["counted"]
    OPENAI_CALLS["chat"](_openai(gw, key), "gpt-4o")
    OPENAI_CALLS["responses"](_openai(gw, key), "gpt-4o")
    ANTHROPIC_CALLS["messages"](_anthropic(gw, key), "claude-sonnet")
    OPENAI_CALLS["embeddings"](_openai(gw, key), "gpt-4o")
    with pytest.raises(openai.RateLimitError):
        OPENAI_CALLS["completions"](_openai(gw, key), "gpt-4o")
    with pytest.raises(anthropic.RateLimitError) as limited:
        ANTHROPIC_CALLS["messages"](_anthropic(gw, key), "claude-sonnet")
    assert limited.value.body["error"]["type"] == "rate_limit_error"


def test_the_model_list_shows_a_team_key_only_its_models(setup):
    gw, keys, _ = setup
    listed = {m.id for m in _openai(gw, keys["narrow"]).models.list()}
    assert {"gpt-4o", "claude-sonnet", "flaky"} <= listed
    assert not {"gpt-4o-mini", "claude-haiku"} & listed
    with pytest.raises(openai.NotFoundError):
        _openai(gw, keys["narrow"]).models.retrieve("gpt-4o-mini")


def test_no_secret_appears_in_a_refused_answer(setup):
    gw, keys, cloud = setup
    answers = [
        gw.post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": HI}, key=keys["narrow"]).text,
        gw.post("/v1/messages", {"model": "claude-haiku", "max_tokens": 5, "messages": HI}, key=keys["narrow"]).text,
        gw.get("/model/info", key=keys["narrow"]).text,
        gw.get("/v1/model/info").text,
    ]
    for answer in answers:
        for secret in (MASTER, OPENAI_KEY, ANTHROPIC_KEY, cloud.url, *keys.values()):
            assert secret not in answer
