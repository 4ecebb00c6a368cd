"""Every client a team runs: OpenAI chat, OpenAI Responses and Anthropic Messages, through their real SDKs.

Each API gets `auto`, explicit names, served names, aliases, images and tools, streaming and
not. Content routing reads each API's own shapes; what llm-router decides never reaches the
upstream and never comes back in the body; tools go only to groups that can call them.
"""

from __future__ import annotations

import base64
import json
from textwrap import dedent

import anthropic
import httpx
import openai
import pytest

from tests.fakes.cloud import FakeCloud
from tests.support.gateway import Gateway, fake_server_spec, free_port

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n" + b"\0" * 64).decode()
TOOLS_OPENAI = [{"type": "function", "function": {"name": "weather", "description": "Weather in a city",
                                                  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
TOOLS_RESPONSES = [{"type": "function", "name": "weather", "description": "Weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
TOOLS_ANTHROPIC = [{"name": "weather", "description": "Weather in a city",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def _config(tmp, cloud_url: str, routing: bool = True):
    (tmp / "models").mkdir(exist_ok=True)
    for name, served, extra in (("local-plain", "fake-plain", {}), ("local-tools", "fake-tools", {"system_prompt": "be kind"}),
                                ("local-vision", "fake-vision", {})):
        (tmp / "models" / f"{name}.yaml").write_text(fake_server_spec(free_port(), served, startup_timeout_s=30, idle_ttl_s=0, **extra))

    def port(name: str) -> str:
        return next(line for line in (tmp / "models" / f"{name}.yaml").read_text().splitlines() if line.startswith("port:")).split()[1]

    path = tmp / "litellm_config.yaml"
    path.write_text(dedent(f"""
        model_list:
          - {{model_name: gpt-4o, litellm_params: {{model: openai/gpt-4o, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}}}
          - {{model_name: claude-sonnet, litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: "{cloud_url}", api_key: os.environ/ANTHROPIC_API_KEY}}}}
          - model_name: local-plain
            litellm_params: {{model: hosted_vllm/fake-plain, api_base: "http://127.0.0.1:{port('local-plain')}/v1", api_key: none}}
            model_info: {{launcher: models/local-plain.yaml}}
          - model_name: local-tools
            litellm_params: {{model: hosted_vllm/fake-tools, api_base: "http://127.0.0.1:{port('local-tools')}/v1", api_key: none}}
            model_info: {{launcher: models/local-tools.yaml, supports_function_calling: true}}
          - model_name: local-vision
            litellm_params: {{model: hosted_vllm/fake-vision, api_base: "http://127.0.0.1:{port('local-vision')}/v1", api_key: none}}
            model_info: {{launcher: models/local-vision.yaml, supports_vision: true}}
        router_settings:
          num_retries: 0
          model_group_alias: {{gpt-4: gpt-4o, claude-3-5-sonnet: claude-sonnet}}
        llm_router: {{state_dir: run, log_dir: logs}}
    """) + ("routing: {vision: [local-vision], complex: [claude-sonnet], default: [local-plain, gpt-4o]}\n" if routing else ""))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with FakeCloud() as cloud:
        config = _config(tmp_path_factory.mktemp("clients"), cloud.url)
        with Gateway(config, {"OPENAI_API_KEY": "sk-test-clients-0001", "ANTHROPIC_API_KEY": "sk-ant-test-clients-0001"}) as gw:
            yield gw, cloud


def _oa(gw: Gateway) -> openai.OpenAI:
    return gw.client()


def _an(gw: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0, timeout=60)


# One call per API: (text answered, response headers), for a prompt, an optional image and tools.

def _chat(gw, model, text, image=False, stream=False, tools=None, messages=None):
    content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": PNG}}] if image else text
    messages = messages or [{"role": "user", "content": content}]
    extra = {"tools": tools} if tools else {}
    if stream:
        with _oa(gw).chat.completions.with_streaming_response.create(model=model, messages=messages, stream=True, **extra) as raw:
            chunks = list(raw.parse())
            answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
            return answer, raw.headers, calls
    raw = _oa(gw).chat.completions.with_raw_response.create(model=model, messages=messages, **extra)
    message = raw.parse().choices[0].message
    return message.content or "", raw.headers, message.tool_calls or []


def _responses(gw, model, text, image=False, stream=False, tools=None, items=None):
    items = items or [{"role": "user", "content": [{"type": "input_text", "text": text},
                                                     *([{"type": "input_image", "image_url": PNG}] if image else [])]}]
    extra = {"tools": tools} if tools else {}
    if stream:
        with _oa(gw).responses.with_streaming_response.create(model=model, input=items, stream=True, **extra) as raw:
            events = list(raw.parse())
            done = next(e.response for e in events if e.type == "response.completed")
            return done.output_text, raw.headers, [o for o in done.output if o.type == "function_call"]
    raw = _oa(gw).responses.with_raw_response.create(model=model, input=items, **extra)
    response = raw.parse()
    return response.output_text, raw.headers, [o for o in response.output if o.type == "function_call"]


def _messages(gw, model, text, image=False, stream=False, tools=None, messages=None):
    content = [{"type": "text", "text": text}]
    if image:
        content.append({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG.split(",", 1)[1]}})
    messages = messages or [{"role": "user", "content": content}]
    extra = {"tools": tools} if tools else {}
    if stream:
        with _an(gw).messages.with_streaming_response.create(model=model, max_tokens=64, messages=messages, stream=True, **extra) as raw:
            events = list(raw.parse())
            answer = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
            calls = [e.content_block for e in events if e.type == "content_block_start" and e.content_block.type == "tool_use"]
            return answer, raw.headers, calls
    raw = _an(gw).messages.with_raw_response.create(model=model, max_tokens=64, messages=messages, **extra)
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


@pytest.mark.parametrize("api,stream", CALLS)
def test_a_request_with_tools_skips_a_group_that_cannot_call_them(setup, api, stream):
    gw, cloud = setup
    tools = {"chat": TOOLS_OPENAI, "responses": TOOLS_RESPONSES, "messages": TOOLS_ANTHROPIC}[api]
    _, headers, calls = APIS[api](gw, "auto", "weather in Paris?", stream=stream, tools=tools)
    assert headers["x-llm-router-model"] == "gpt-4o"  # local-plain, the default, can't call tools
    assert _called(calls) == ["weather"]
    explain = gw.post("/v1/router/explain", {"model": "auto", "messages": [{"role": "user", "content": "weather?"}], "tools": TOOLS_OPENAI}).json()
    assert {"group": "local-plain", "why": "can't call tools"} in explain["skipped"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_round_trip_through_chat_completions(setup, stream):
    gw, _ = setup
    _, _, calls = _chat(gw, "local-tools", "weather in Paris?", stream=stream, tools=TOOLS_OPENAI)
    call_id = calls[0].id
    messages = [{"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "function",
                                                                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]},
                {"role": "tool", "tool_call_id": call_id, "content": "sunny"}]
    text, _, _ = _chat(gw, "local-tools", "", stream=stream, tools=TOOLS_OPENAI, messages=messages)
    assert "tool said: sunny" in text


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_round_trip_through_the_responses_api(setup, stream):
    gw, _ = setup
    _, _, calls = _responses(gw, "gpt-4o", "weather in Paris?", stream=stream, tools=TOOLS_RESPONSES)
    assert calls and calls[0].name == "weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    items = [{"role": "user", "content": "weather in Paris?"},
             {"type": "function_call", "call_id": calls[0].call_id, "name": "weather", "arguments": calls[0].arguments},
             {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}]
    text, _, _ = _responses(gw, "gpt-4o", "", stream=stream, tools=TOOLS_RESPONSES, items=items)
    assert "tool said: sunny" in text


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_round_trip_through_the_messages_api(setup, stream):
    gw, _ = setup
    _, _, calls = _messages(gw, "claude-sonnet", "weather in Paris?", stream=stream, tools=TOOLS_ANTHROPIC)
    assert calls and calls[0].name == "weather"
    messages = [{"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": calls[0].id, "name": "weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny"}]}]
    text, _, _ = _messages(gw, "claude-sonnet", "", stream=stream, tools=TOOLS_ANTHROPIC, messages=messages)
    assert "tool said: sunny" in text


@pytest.mark.parametrize("api", APIS)
def test_an_explicit_model_that_cannot_call_tools_gets_one_clear_400(setup, api):
    gw, _ = setup
    tools = {"chat": TOOLS_OPENAI, "responses": TOOLS_RESPONSES, "messages": TOOLS_ANTHROPIC}[api]
    error = openai.BadRequestError if api != "messages" else anthropic.BadRequestError
    with pytest.raises(error) as refused:
        APIS[api](gw, "local-plain", "weather?", tools=tools)
    assert "can't call tools" in str(refused.value)


@pytest.mark.parametrize("api", ["responses", "messages"])
def test_the_decision_never_reaches_the_upstream_nor_the_client(setup, api):
    gw, cloud = setup
    cloud.clear_requests()
    if api == "responses":
        raw = httpx.post(f"{gw.url}/v1/responses", json={"model": "auto", "input": "x " * 1500, "metadata": {"mine": "yes"}}, timeout=60)
    else:
        raw = httpx.post(f"{gw.url}/v1/messages", json={"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "x " * 1500}],
                                                         "metadata": {"user_id": "u1"}}, timeout=60)
    assert raw.status_code == 200, raw.text
    assert raw.headers["x-llm-router-reason"] == "complex"
    assert "llm_router" not in raw.text
    upstream = json.dumps([r.body for r in cloud.requests])
    assert cloud.requests and "llm_router" not in upstream


def test_a_local_models_system_prompt_applies_when_the_request_has_none(setup):
    gw, _ = setup
    assert "[system: be kind]" in _chat(gw, "local-tools", "hello")[0]
    assert "[system: be kind]" in _responses(gw, "local-tools", "hello")[0]
    mine = [{"role": "system", "content": "be terse"}, {"role": "user", "content": "hello"}]
    assert "[system: be terse]" in _chat(gw, "local-tools", "", messages=mine)[0]


def test_the_model_list_offers_auto_and_the_real_providers(setup):
    gw, _ = setup
    listed = {m["id"]: m["owned_by"] for m in httpx.get(f"{gw.url}/v1/models", timeout=30).json()["data"]}
    assert listed["auto"] == "llm-router"
    assert (listed["gpt-4o"], listed["claude-sonnet"], listed["local-plain"]) == ("openai", "anthropic", "local")


def test_auto_is_for_chat_responses_and_messages_only(setup):
    gw, _ = setup
    with pytest.raises(openai.BadRequestError, match="routed by content"):
        _oa(gw).embeddings.create(model="auto", input="hi")


def test_without_a_routing_section_models_serve_and_auto_says_why_not(tmp_path):
    with FakeCloud() as cloud:
        config = _config(tmp_path, cloud.url, routing=False)
        with Gateway(config, {"OPENAI_API_KEY": "sk-test-clients-0001"}) as gw:
            assert "hello" in _chat(gw, "gpt-4o", "hello")[0]
            assert "hello" in _chat(gw, "local-plain", "hello")[0]  # its server is started on demand
            with pytest.raises(openai.BadRequestError, match="routing isn't configured"):
                _chat(gw, "auto", "hello")
            assert "auto" not in {m["id"] for m in httpx.get(f"{gw.url}/v1/models", timeout=30).json()["data"]}


def test_count_tokens_answers_for_auto_with_the_model_the_messages_would_go_to(setup):
    gw, cloud = setup
    cloud.clear_requests()
    counted = _an(gw).messages.count_tokens(model="auto", messages=[{"role": "user", "content": "x " * 1500}])
    assert counted.input_tokens > 0
    assert [r.model for r in cloud.requests] == ["claude-sonnet-4-5"]  # long: the complex group
