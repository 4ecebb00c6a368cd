"""Every client a team runs: OpenAI chat, OpenAI Responses and Anthropic Messages, through their real SDKs.

Each API gets `auto`, explicit names, served names, aliases, images and tools, streaming and
not, and the launcher, fallbacks and missing keys. Content routing reads each API's own shapes;
what llm-router decides never reaches the upstream and never comes back in the body; tools go
only to groups that can call them. The gateway has a master key, as a team's would, and the
local fakes record what they receive, so a test can read the body an upstream got.
"""

from __future__ import annotations

import base64
import json
import uuid
from textwrap import dedent

import anthropic
import openai
import pytest

from router_plugins.keys import hash_key
from tests.fakes.cloud import FakeCloud
from tests.support.gateway import Gateway, fake_server_spec, free_port

MASTER = "sk-master-clients-0001"
NO_TOOLS_KEY = "sk-llmr-clients-no-tools-0001"
"""A team key allowed only groups that can't call tools."""
LOCAL = {"local-plain": ("fake-plain", {}), "local-tools": ("fake-tools", {"system_prompt": "be kind"}), "local-vision": ("fake-vision", {})}
"""Local groups: the fake model server's served name, and more launch-spec keys."""

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n" + b"\0" * 64).decode()
TOOLS_OPENAI = [{"type": "function", "function": {"name": "weather", "description": "Weather in a city",
                                                  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
TOOLS_RESPONSES = [{"type": "function", "name": "weather", "description": "Weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
TOOLS_ANTHROPIC = [{"name": "weather", "description": "Weather in a city",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def _local_specs(tmp) -> dict[str, int]:
    """Launch specs for the three local groups, each recording what it receives (see Gateway.received); their ports."""
    (tmp / "models").mkdir(exist_ok=True)
    ports = {}
    for name, (served, extra) in LOCAL.items():
        ports[name] = free_port()
        (tmp / "models" / f"{name}.yaml").write_text(fake_server_spec(
            ports[name], served, "--record-requests", str(tmp / f"{name}.requests.jsonl"), startup_timeout_s=30, idle_ttl_s=0, **extra))
    return ports


def _config(tmp, cloud_url: str):
    port = _local_specs(tmp)
    path = tmp / "litellm_config.yaml"
    path.write_text(dedent(f"""
        model_list:
          - {{model_name: gpt-4o, litellm_params: {{model: openai/gpt-4o, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}}}
          - {{model_name: claude-sonnet, litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: "{cloud_url}", api_key: os.environ/ANTHROPIC_API_KEY}}}}
          - model_name: local-plain
            litellm_params: {{model: hosted_vllm/fake-plain, api_base: "http://127.0.0.1:{port['local-plain']}/v1", api_key: none}}
            model_info: {{launcher: models/local-plain.yaml}}
          - model_name: local-tools
            litellm_params: {{model: hosted_vllm/fake-tools, api_base: "http://127.0.0.1:{port['local-tools']}/v1", api_key: none}}
            model_info: {{launcher: models/local-tools.yaml, supports_function_calling: true}}
          - model_name: local-vision
            litellm_params: {{model: hosted_vllm/fake-vision, api_base: "http://127.0.0.1:{port['local-vision']}/v1", api_key: none}}
            model_info: {{launcher: models/local-vision.yaml, supports_vision: true}}
          - model_name: flaky
            litellm_params: {{model: openai/fake-status-500, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}
            model_info: {{supports_function_calling: true}}
          - model_name: no-key
            litellm_params: {{model: openai/gpt-4o-nokey, api_base: "{cloud_url}/v1", api_key: os.environ/LLM_ROUTER_TEST_UNSET_KEY}}
        router_settings:
          num_retries: 0
          model_group_alias: {{gpt-4: gpt-4o, claude-3-5-sonnet: claude-sonnet}}
          fallbacks: [{{flaky: [local-plain, gpt-4o]}}, {{no-key: [gpt-4o]}}]
        # The length rule measures the whole prompt here, so that a long `instructions` or `system` shows it is read;
        # the difficulty score is off (threshold 1.0): a random marker's words would otherwise decide some tiers.
        routing: {{vision: [local-vision], complex: [claude-sonnet], default: [local-plain, local-tools, gpt-4o], complexity: {{length_of: prompt}},
                   difficulty: {{threshold: 1.0}}}}
        llm_router: {{state_dir: run, log_dir: logs, keys_file: keys.yaml}}
    """))
    (tmp / "keys.yaml").write_text(json.dumps({"keys": [
        {"name": "no-tools", "team": "t", "sha256": hash_key(NO_TOOLS_KEY), "models": ["local-plain", "local-vision"]}]}))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with FakeCloud() as cloud:
        config = _config(tmp_path_factory.mktemp("clients"), cloud.url)
        env = {"OPENAI_API_KEY": "sk-test-clients-0001", "ANTHROPIC_API_KEY": "sk-ant-test-clients-0001", "LLM_ROUTER_MASTER_KEY": MASTER}
        with Gateway(config, env) as gw:
            yield gw, cloud


def _oa(gw: Gateway, key: str = MASTER) -> openai.OpenAI:
    return gw.client(api_key=key)


def _an(gw: Gateway, key: str = MASTER) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0, timeout=60)


def _upstream_bodies(gw: Gateway, cloud: FakeCloud, marker: str) -> list[dict]:
    """Every body any upstream, cloud or local, received that carries `marker`."""
    bodies = [r.body for r in cloud.requests] + [b for group in LOCAL for b in gw.received(group)]
    return [b for b in bodies if marker in json.dumps(b)]


# One call per API: (text answered, response headers, tool calls), for a prompt, an optional image and tools;
# `fields` are more of the API's own (Responses `instructions`, Messages `system`).

def _chat(gw, model, text, image=False, stream=False, tools=None, messages=None, key=MASTER, **fields):
    content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": PNG}}] if image else text
    messages = messages or [{"role": "user", "content": content}]
    extra = {**fields, "tools": tools} if tools else fields
    if stream:
        with _oa(gw, key).chat.completions.with_streaming_response.create(model=model, messages=messages, stream=True, **extra) as raw:
            chunks = list(raw.parse())
            answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
            return answer, raw.headers, calls
    raw = _oa(gw, key).chat.completions.with_raw_response.create(model=model, messages=messages, **extra)
    message = raw.parse().choices[0].message
    return message.content or "", raw.headers, message.tool_calls or []


def _responses(gw, model, text, image=False, stream=False, tools=None, items=None, key=MASTER, **fields):
    items = items or [{"role": "user", "content": [{"type": "input_text", "text": text},
                                                     *([{"type": "input_image", "image_url": PNG}] if image else [])]}]
    extra = {**fields, "tools": tools} if tools else fields
    if stream:
        with _oa(gw, key).responses.with_streaming_response.create(model=model, input=items, stream=True, **extra) as raw:
            events = list(raw.parse())
            done = next(e.response for e in events if e.type == "response.completed")
            return done.output_text, raw.headers, [o for o in done.output if o.type == "function_call"]
    raw = _oa(gw, key).responses.with_raw_response.create(model=model, input=items, **extra)
    response = raw.parse()
    return response.output_text, raw.headers, [o for o in response.output if o.type == "function_call"]


def _messages(gw, model, text, image=False, stream=False, tools=None, messages=None, key=MASTER, **fields):
    content = [{"type": "text", "text": text}]
    if image:
        content.append({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG.split(",", 1)[1]}})
    messages = messages or [{"role": "user", "content": content}]
    extra = {**fields, "tools": tools} if tools else fields
    if stream:
        with _an(gw, key).messages.with_streaming_response.create(model=model, max_tokens=64, messages=messages, stream=True, **extra) as raw:
            events = list(raw.parse())
            answer = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
            calls = [e.content_block for e in events if e.type == "content_block_start" and e.content_block.type == "tool_use"]
            return answer, raw.headers, calls
    raw = _an(gw, key).messages.with_raw_response.create(model=model, max_tokens=64, messages=messages, **extra)
    message = raw.parse()
    return "".join(b.text for b in message.content if b.type == "text"), raw.headers, [b for b in message.content if b.type == "tool_use"]


def _called(calls: list) -> list[str]:
    """The names of the tools called (a streamed chat call names its tool in its first delta only)."""
    names = [getattr(c, "name", None) or getattr(getattr(c, "function", None), "name", None) for c in calls]
    return [n for n in names if n]


APIS = {"chat": _chat, "responses": _responses, "messages": _messages}
CALLS = [(api, stream) for api in APIS for stream in (False, True)]


@pytest.mark.parametrize("api,stream", CALLS)
def test_auto_is_routed_by_content_on_every_api(setup, api, stream):
    gw, _ = setup
    text, headers, _ = APIS[api](gw, "auto", "What is the capital of France?", stream=stream)
    assert "capital of France" in text
    assert (headers["x-llm-router-model"], headers["x-llm-router-reason"]) == ("local-plain", "default")


@pytest.mark.parametrize("api,stream", CALLS)
def test_an_image_goes_to_the_vision_model_on_every_api(setup, api, stream):
    gw, _ = setup
    _, headers, _ = APIS[api](gw, "auto", "what is in this picture?", image=True, stream=stream)
    assert (headers["x-llm-router-model"], headers["x-llm-router-reason"]) == ("local-vision", "vision")


@pytest.mark.parametrize("api,stream", CALLS)
@pytest.mark.parametrize("name,group", [("claude-sonnet", "claude-sonnet"), ("gpt-4", "gpt-4o"), ("claude-3-5-sonnet", "claude-sonnet"),
                                        ("fake-plain", "local-plain")])
def test_explicit_names_aliases_and_served_names_go_where_they_say(setup, api, stream, name, group):
    gw, _ = setup
    text, headers, _ = APIS[api](gw, name, "hello there", stream=stream)
    assert "hello there" in text
    assert headers["x-litellm-model-group"] == group
    assert (headers["x-llm-router-model"], headers["x-llm-router-reason"]) == (group, "explicit")


TOOLS = {"chat": TOOLS_OPENAI, "responses": TOOLS_RESPONSES, "messages": TOOLS_ANTHROPIC}
REFUSED = {"chat": openai.BadRequestError, "responses": openai.BadRequestError, "messages": anthropic.BadRequestError}


# ---- what routing reads in each API's shapes -----------------------------------------------

IMAGE_BY_URL = {"type": "image", "source": {"type": "url", "url": "https://images.example.com/cat.png"}}
IMAGE_IN_A_TOOL_RESULT = [
    {"role": "user", "content": "take a screenshot"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "screenshot", "input": {}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG.split(",", 1)[1]}}]}]},
]


@pytest.mark.parametrize("api,fields,routed", [
    ("responses", {"instructions": "y " * 1500}, ("claude-sonnet", "complex")),
    ("messages", {"system": "y " * 1500}, ("claude-sonnet", "complex")),
    # By URL, the image goes to a vision group whose provider fetches it, not to the local server.
    ("messages", {"messages": [{"role": "user", "content": [{"type": "text", "text": "what is it?"}, IMAGE_BY_URL]}]}, ("gpt-4o", "vision")),
    ("messages", {"messages": IMAGE_IN_A_TOOL_RESULT}, ("local-vision", "vision")),
], ids=["responses-instructions", "messages-system", "messages-image-url", "messages-image-in-tool-result"])
def test_routing_reads_each_apis_own_shapes(setup, api, fields, routed):
    gw, _ = setup
    _, headers, _ = APIS[api](gw, "auto", "hi", **fields)
    assert (headers["x-llm-router-model"], headers["x-llm-router-reason"]) == routed
    assert headers["x-litellm-model-group"] == routed[0]


IMAGE_URL = "https://images.example.com/cat.png"
BY_URL = {
    "chat": {"messages": [{"role": "user", "content": [{"type": "text", "text": "what is it?"}, {"type": "image_url", "image_url": {"url": IMAGE_URL}}]}]},
    "responses": {"items": [{"role": "user", "content": [{"type": "input_text", "text": "what is it?"}, {"type": "input_image", "image_url": IMAGE_URL}]}]},
    "messages": {"messages": [{"role": "user", "content": [{"type": "text", "text": "what is it?"}, IMAGE_BY_URL]}]},
}


@pytest.mark.parametrize("api", APIS)
def test_an_image_by_url_never_reaches_a_local_server(setup, api):
    # A local vLLM would fetch the URL from this machine: the request goes where the provider fetches it.
    gw, _ = setup
    before = len(gw.received("local-vision"))
    _, headers, _ = APIS[api](gw, "auto", "", **BY_URL[api])
    assert (headers["x-llm-router-reason"], headers["x-litellm-model-group"]) == ("vision", "gpt-4o")
    with pytest.raises(REFUSED[api], match="send them inline as base64"):
        APIS[api](gw, "local-vision", "", **BY_URL[api])
    assert len(gw.received("local-vision")) == before


@pytest.mark.parametrize("query,body,explained", [
    ("", {"model": "auto", "instructions": "y " * 1500, "input": "hi"}, ("responses", "complex", "claude-sonnet")),
    ("", {"model": "auto", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": PNG}]}]}, ("responses", "vision", "local-vision")),
    ("?api=responses", {"model": "auto", "input": "hi"}, ("responses", "default", "local-plain")),
    ("", {"model": "auto", "system": "y " * 1500, "messages": [{"role": "user", "content": "hi"}]}, ("messages", "complex", "claude-sonnet")),
    ("", {"model": "auto", "messages": IMAGE_IN_A_TOOL_RESULT}, ("messages", "vision", "local-vision")),
    # A Claude agent's earlier turn with a thinking block, which tells no API apart by itself.
    ("?api=messages", {"model": "auto", "tools": TOOLS_ANTHROPIC, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "use the tool", "signature": "c2ln"}]},
        {"role": "user", "content": "go on"}]}, ("messages", "default", "local-tools")),
], ids=["responses-detected", "responses-image-detected", "responses-named", "messages-detected", "messages-tool-result-detected",
        "messages-named"])
def test_explain_reads_responses_and_messages_bodies(setup, query, body, explained):
    gw, _ = setup
    answer = gw.post("/v1/router/explain" + query, body, key=MASTER)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["api"], answer.json()["reason"], answer.json()["model"]) == explained


# ---- the decision stays ours ---------------------------------------------------------------

# LiteLLM forwards a Responses body's whole `metadata` to OpenAI and to vLLM: there a decision kept in
# it would leak. On Messages it forwards only Anthropic's `user_id` (natively) or nothing (the bridge to
# vLLM's chat API), so those cases guard the rest of the body and the answer.
@pytest.mark.parametrize("api,model,words,group,forwarded", [
    ("responses", "auto", 3, "local-plain", True),
    ("responses", "gpt-4o", 3, "gpt-4o", True),
    ("messages", "auto", 1500, "claude-sonnet", True),
    ("messages", "auto", 3, "local-plain", False),
])
def test_the_decision_never_reaches_the_upstream_nor_the_client(setup, api, model, words, group, forwarded):
    gw, cloud = setup
    marker = uuid.uuid4().hex
    text = marker + " x" * words
    if api == "responses":
        metadata = {"mine": marker}
        raw = gw.post("/v1/responses", {"model": model, "input": text, "metadata": metadata}, key=MASTER)
    else:
        metadata = {"user_id": marker}
        raw = gw.post("/v1/messages", {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": text}], "metadata": metadata},
                      key=MASTER)
    assert raw.status_code == 200, raw.text
    assert raw.headers["x-litellm-model-group"] == group
    assert "llm_router" not in raw.text
    [upstream] = _upstream_bodies(gw, cloud, marker)
    assert upstream.get("metadata") == (metadata if forwarded else None)  # the client's own, and nothing of ours
    assert "llm_router" not in json.dumps(upstream) and "llm-router" not in json.dumps(upstream)


# ---- tools ---------------------------------------------------------------------------------

@pytest.mark.parametrize("api,stream", CALLS)
def test_a_request_with_tools_skips_a_group_that_cannot_call_them(setup, api, stream):
    gw, _ = setup
    _, headers, calls = APIS[api](gw, "auto", "weather in Paris?", stream=stream, tools=TOOLS[api])
    assert headers["x-llm-router-model"] == "local-tools"  # local-plain, the first default, can't call tools
    assert _called(calls) == ["weather"]
    explain = gw.post("/v1/router/explain", {"model": "auto", "messages": [{"role": "user", "content": "weather?"}], "tools": TOOLS_OPENAI},
                      key=MASTER).json()
    assert {"group": "local-plain", "why": "can't call tools"} in explain["skipped"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model,group", [("auto", "local-tools"), ("gpt-4o", "gpt-4o")])
def test_a_tool_round_trip_through_chat_completions(setup, stream, model, group):
    gw, _ = setup
    _, _, calls = _chat(gw, model, "weather in Paris?", stream=stream, tools=TOOLS_OPENAI)
    call_id = calls[0].id
    messages = [{"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "function",
                                                                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]},
                {"role": "tool", "tool_call_id": call_id, "content": "sunny"}]
    text, headers, _ = _chat(gw, model, "", stream=stream, tools=TOOLS_OPENAI, messages=messages)
    assert "tool said: sunny" in text
    assert headers["x-litellm-model-group"] == group


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model,group", [("auto", "local-tools"), ("gpt-4o", "gpt-4o")])
def test_a_tool_round_trip_through_the_responses_api(setup, stream, model, group):
    gw, _ = setup
    _, _, calls = _responses(gw, model, "weather in Paris?", stream=stream, tools=TOOLS_RESPONSES)
    assert calls and calls[0].name == "weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    items = [{"role": "user", "content": "weather in Paris?"},
             {"type": "function_call", "call_id": calls[0].call_id, "name": "weather", "arguments": calls[0].arguments},
             {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}]
    text, headers, _ = _responses(gw, model, "", stream=stream, tools=TOOLS_RESPONSES, items=items)
    assert "tool said: sunny" in text
    assert headers["x-litellm-model-group"] == group


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model,group", [("auto", "local-tools"), ("claude-sonnet", "claude-sonnet")])
def test_a_tool_round_trip_through_the_messages_api(setup, stream, model, group):
    gw, _ = setup
    _, _, calls = _messages(gw, model, "weather in Paris?", stream=stream, tools=TOOLS_ANTHROPIC)
    assert calls and calls[0].name == "weather"
    messages = [{"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": calls[0].id, "name": "weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny"}]}]
    text, headers, _ = _messages(gw, model, "", stream=stream, tools=TOOLS_ANTHROPIC, messages=messages)
    assert "tool said: sunny" in text
    assert headers["x-litellm-model-group"] == group


@pytest.mark.parametrize("api", APIS)
def test_a_fallback_hop_that_cannot_call_tools_is_skipped(setup, api):
    gw, _ = setup
    marker = uuid.uuid4().hex
    _, headers, calls = APIS[api](gw, "flaky", f"weather? {marker}", tools=TOOLS[api])
    assert headers["x-litellm-model-group"] == "gpt-4o"  # flaky's chain is local-plain, then gpt-4o
    assert _called(calls) == ["weather"]
    assert not [b for b in gw.received("local-plain") if marker in json.dumps(b)]


@pytest.mark.parametrize("api", APIS)
def test_an_explicit_model_that_cannot_call_tools_gets_one_clear_400(setup, api):
    gw, _ = setup
    with pytest.raises(REFUSED[api]) as refused:
        APIS[api](gw, "local-plain", "weather?", tools=TOOLS[api])
    assert "can't call tools" in str(refused.value)


@pytest.mark.parametrize("api", APIS)
def test_auto_with_tools_is_a_400_when_no_group_the_key_may_use_can_call_them(setup, api):
    gw, _ = setup
    with pytest.raises(REFUSED[api], match="No model group this key may use that is available here can serve this request, which offers tools"):
        APIS[api](gw, "auto", "weather?", tools=TOOLS[api], key=NO_TOOLS_KEY)


# ---- the launcher, fallbacks and missing keys on the Responses and Messages APIs -----------

@pytest.mark.parametrize("api", ["responses", "messages"])
def test_a_cold_local_server_is_started_by_a_request_on(setup, api):
    gw, _ = setup
    stopped = gw.post("/v1/router/servers/local-plain/stop", key=MASTER)
    assert stopped.json()["state"] == "stopped", stopped.text
    text, headers, _ = APIS[api](gw, "auto", "hello there")
    assert "local:fake-plain says: hello there" in text
    assert headers["x-litellm-model-group"] == "local-plain"
    state = {s["name"]: s["state"] for s in gw.get("/v1/router/servers", key=MASTER).json()["servers"]}
    assert state["local-plain"] == "ready"


@pytest.mark.parametrize("api,stream", [c for c in CALLS if c[0] != "chat"])
def test_a_failing_group_falls_back_on(setup, api, stream):
    gw, cloud = setup
    marker = uuid.uuid4().hex
    text, headers, _ = APIS[api](gw, "flaky", f"hello {marker}", stream=stream)
    assert marker in text
    assert (headers["x-llm-router-model"], headers["x-litellm-model-group"]) == ("flaky", "local-plain")
    assert [r for r in cloud.requests_for("fake-status-500") if marker in json.dumps(r.body)]  # it was tried first


@pytest.mark.parametrize("api", ["responses", "messages"])
def test_a_group_without_its_key_fails_over_without_a_network_call_on(setup, api):
    gw, cloud = setup
    text, headers, _ = APIS[api](gw, "no-key", "hello")
    assert text.startswith("openai:gpt-4o says:")
    assert headers["x-litellm-model-group"] == "gpt-4o"
    assert not cloud.requests_for("gpt-4o-nokey")


# ---- a launch spec's system prompt ---------------------------------------------------------

@pytest.mark.parametrize("api", APIS)
def test_a_local_models_system_prompt_applies_when_the_request_has_none(setup, api):
    gw, _ = setup
    text = APIS[api](gw, "local-tools", "hello")[0]
    assert text.count("[system: be kind]") == 1


@pytest.mark.parametrize("api,fields", [
    ("chat", {"messages": [{"role": "system", "content": "be terse"}, {"role": "user", "content": "hello"}]}),
    ("chat", {"messages": [{"role": "developer", "content": "be terse"}, {"role": "user", "content": "hello"}]}),
    ("responses", {"instructions": "be terse"}),
    ("responses", {"items": [{"role": "system", "content": "be terse"}, {"role": "user", "content": "hello"}]}),
    ("responses", {"items": [{"role": "developer", "content": "be terse"}, {"role": "user", "content": "hello"}]}),
    ("messages", {"system": "be terse"}),
    ("messages", {"system": [{"type": "text", "text": "be terse"}]}),
], ids=["chat-system", "chat-developer", "responses-instructions", "responses-system-item", "responses-developer-item",
        "messages-system", "messages-system-blocks"])
def test_a_clients_own_system_prompt_wins_over_the_specs(setup, api, fields):
    gw, _ = setup
    text = APIS[api](gw, "local-tools", "hello", **fields)[0]
    assert "[system: be terse]" in text and "be kind" not in text


# ---- the model list, other APIs, a config without our sections -----------------------------

def test_the_model_list_offers_auto_and_the_real_providers(setup):
    gw, _ = setup
    listed = {m["id"]: m["owned_by"] for m in gw.get("/v1/models", key=MASTER).json()["data"]}
    assert listed["auto"] == "llm-router"
    assert (listed["gpt-4o"], listed["claude-sonnet"], listed["local-plain"]) == ("openai", "anthropic", "local")


def test_auto_is_for_chat_responses_and_messages_only(setup):
    gw, _ = setup
    with pytest.raises(openai.BadRequestError, match="routed by content"):
        _oa(gw).embeddings.create(model="auto", input="hi")


def test_count_tokens_answers_for_auto_with_the_model_the_messages_would_go_to(setup):
    gw, cloud = setup
    cloud.clear_requests()
    counted = _an(gw).messages.count_tokens(model="auto", messages=[{"role": "user", "content": "x " * 1500}])
    assert counted.input_tokens > 0
    assert [r.model for r in cloud.requests] == ["claude-sonnet-4-5"]  # long: the complex group


def test_a_config_with_only_a_model_list_serves_its_models_and_auto_says_why_not(tmp_path):
    port = _local_specs(tmp_path)["local-plain"]
    with FakeCloud() as cloud:
        (tmp_path / "litellm_config.yaml").write_text(dedent(f"""
            model_list:
              - {{model_name: gpt-4o, litellm_params: {{model: openai/gpt-4o, api_base: "{cloud.url}/v1", api_key: os.environ/OPENAI_API_KEY}}}}
              - model_name: local-plain
                litellm_params: {{model: hosted_vllm/fake-plain, api_base: "http://127.0.0.1:{port}/v1", api_key: none}}
                model_info: {{launcher: models/local-plain.yaml}}
        """))
        with Gateway(tmp_path / "litellm_config.yaml", {"OPENAI_API_KEY": "sk-test-clients-0001"}) as gw:
            assert "hello" in _chat(gw, "gpt-4o", "hello")[0]
            assert "hello" in _messages(gw, "local-plain", "hello")[0]  # its server is started on demand
            for api in APIS:
                with pytest.raises(REFUSED[api], match="routing isn't configured"):
                    APIS[api](gw, "auto", "hello")
            assert "auto" not in {m["id"] for m in gw.get("/v1/models").json()["data"]}
