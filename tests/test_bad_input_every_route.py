"""Bad input gets a clear JSON 4xx on every route that takes a body, in the API's own format, and never
reaches the upstream; one image-URL policy holds in every API's shapes; routes llm-router doesn't
serve answer one clear 501.

The reproducers are the ones a fuzzer and a person found on an earlier version (issue: "Bad input
gets a clear 4xx on every route").
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway

MASTER = "sk-master-SENTINEL-bad-input-0001"
HI = [{"role": "user", "content": "hi"}]
CHAT_PATHS = ["/v1/chat/completions", "/chat/completions", "/engines/gpt-4o/chat/completions", "/openai/deployments/gpt-4o/chat/completions"]
RESPONSES_PATHS = ["/v1/responses", "/responses", "/v1/responses/compact", "/v1/responses/input_tokens"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with FakeCloud() as cloud:
        config = _with_a_group_the_upstream_refuses(core_config(tmp_path_factory.mktemp("bad-every-route"), cloud.url))
        env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-bad-0001", "ANTHROPIC_API_KEY": "sk-ant-test-bad-0001"}
        with Gateway(config, env) as gw:
            yield gw, cloud


def _with_a_group_the_upstream_refuses(config: Path) -> Path:
    """`refused`: its upstream answers every request 400, and it falls back to gpt-4o."""
    raw = yaml.safe_load(config.read_text())
    params = {**raw["model_list"][0]["litellm_params"], "model": "openai/fake-status-400"}
    raw["model_list"].append({"model_name": "refused", "litellm_params": params})
    raw["router_settings"]["fallbacks"].append({"refused": ["gpt-4o"]})
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


def _post(gw: Gateway, path: str, body: object) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(gw.url + path, content=content, headers={"authorization": f"Bearer {MASTER}", "content-type": "application/json"},
                      timeout=30)


def _assert_refused(response: httpx.Response, path: str, status: int = 400) -> str:
    assert response.status_code == status, (path, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    body = response.json()
    if "/v1/messages" in path:
        assert body["type"] == "error" and body["error"]["type"], body
    message = body["error"]["message"]
    assert isinstance(message, str) and message
    return message


REPRODUCERS = [
    *[(path, {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": {}, "text": "hi"}]}]}) for path in CHAT_PATHS],
    ("/v1/router/explain", {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": {}, "text": "hi"}]}]}),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": [], "content": "hi"}]}),
    ("/v1/router/explain", {"model": "gpt-4o", "messages": [{"role": [], "content": "hi"}]}),
    *[("/v1/chat/completions", {"model": f"gpt-4o{c}", "messages": HI}) for c in ("\u0000", "\n", "\r\n")],
    ("/v1/responses", {"model": "gpt-4o\n", "input": "hi"}),
    ("/v1/messages", {"model": "claude-sonnet\r\n", "max_tokens": 5, "messages": HI}),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "api_base": None}),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "api_base": "http://evil.example/v1"}),
    ("/v1/embeddings", {"model": "gpt-4o", "input": "hi", "api_base": None}),
    ("/engines/gpt-4o/chat/completions", b"[null, null]"),
    ("/v1/responses", {"model": {}, "metadata": None}),
    ("/v1/responses", {"model": "gpt-4o", "input": 42}),
    ("/v1/responses", {"model": "gpt-4o", "input": {"role": "user"}}),
    ("/v1/responses", {"model": "gpt-4o", "input": "hi", "stream": "yes"}),
    ("/v1/messages", {"model": "claude-sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": 42}]}),
    ("/v1/messages", {"model": "claude-sonnet", "max_tokens": 5, "messages": {"role": "user", "content": "hi"}}),
    ("/v1/messages", {"model": "claude-sonnet", "max_tokens": 5, "messages": HI, "stream": "yes"}),
    ("/v1/messages", {"model": "claude-sonnet", "messages": HI}),
    ("/v1/messages/count_tokens", {"model": "claude-sonnet", "messages": "hi"}),
    ("/v1/completions", {"model": "gpt-4o", "prompt": {"a": 1}}),
    ("/v1/embeddings", {"model": "gpt-4o", "input": [None]}),
    ("/v1/embeddings", {"input": "hi"}),
    # A JSON integer beyond any float, where a number is checked.
    ("/v1/chat/completions", b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "temperature": 1' + b"0" * 400 + b"}"),
    ("/v1/responses", b'{"model": "gpt-4o", "input": "hi", "max_output_tokens": -1' + b"0" * 400 + b"}"),
    # Control characters in the model a path names.
    ("/engines/gpt-4o%00/chat/completions", {"messages": HI}),
    ("/openai/deployments/gpt-4o%0D%0A/chat/completions", {"messages": HI}),
    ("/engines/gpt-4o%0A/embeddings", {"input": "hi"}),
    # Fields by which a client would choose the upstream, its account or its observability host.
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "aws_region_name": "us-east-1"}),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "extra_body": {"api_base": "http://evil.example/v1"}}),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "extra_body": {"vertex_location": "evil"}}),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "metadata": {"langfuse_host": "http://evil.example"}}),
    ("/v1/responses", {"model": "gpt-4o", "input": "hi", "langsmith_base_url": "http://evil.example"}),
    ("/v1/messages", {"model": "claude-sonnet", "max_tokens": 5, "messages": HI, "metadata": {"s3_endpoint_url": "http://evil.example"}}),
    ("/v1/messages", {"model": "claude-sonnet", "max_tokens": 5, "messages": HI, "tool_choice": 1}),
]


@pytest.mark.parametrize("path,body", REPRODUCERS, ids=[f"{p} {json.dumps(b) if not isinstance(b, bytes) else b.decode()}"[:90] for p, b in REPRODUCERS])
def test_a_malformed_body_gets_a_json_400_and_never_reaches_the_upstream(setup, path, body):
    gw, cloud = setup
    before = len(cloud.requests)
    _assert_refused(_post(gw, path, body), path)
    assert len(cloud.requests) == before


# Fields LiteLLM refuses only later, or passes on: the door refuses them first, naming them.
FIELDS = [
    ("/v1/responses", {"model": "gpt-4o", "input": "hi", "tools": [42]}, "tools[0]"),
    ("/v1/responses", {"model": "gpt-4o", "previous_response_id": "resp_1", "tools": "all"}, "tools"),
    ("/v1/responses", {"model": "gpt-4o", "previous_response_id": 7}, "previous_response_id"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "tools": [{"type": "function", "function": "lookup"}]}, "tools[0].function"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "tools": [{"type": "function", "function": {"name": 7}}]}, "tools[0].function.name"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "tool_choice": 42}, "tool_choice"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "tool_choice": {"function": {"name": "f"}}}, "tool_choice"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "response_format": {}}, "response_format"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "response_format": ["json_object"]}, "response_format"),
    ("/v1/embeddings", {"model": "gpt-4o", "input": "hi", "dimensions": 0}, "dimensions"),
    ("/v1/embeddings", {"model": "gpt-4o", "input": "hi", "dimensions": "256"}, "dimensions"),
    ("/v1/embeddings", {"model": "gpt-4o", "input": "hi", "encoding_format": "hex"}, "encoding_format"),
]


@pytest.mark.parametrize("path,body,field", FIELDS, ids=[f"{p} {f}" for p, _, f in FIELDS])
def test_a_malformed_field_is_refused_at_the_door_by_name(setup, path, body, field):
    gw, cloud = setup
    before = len(cloud.requests)
    response = _post(gw, path, body)
    _assert_refused(response, path)
    assert response.json()["error"]["param"] == field
    assert len(cloud.requests) == before


FORBIDDEN_HOSTS = ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "metadata.google.internal", "10.0.0.7", "192.168.1.1",
                   "[fd00::1]", "2130706433", "0x7f000001", "127.1", "0177.0.0.1", "[::ffff:127.0.0.1]", "0", "printer.local"]


def _chat(*parts: dict) -> dict:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, *parts]}]}


def _responses(*items: dict) -> dict:
    return {"model": "gpt-4o", "input": list(items)}


def _anthropic(*blocks: dict) -> dict:
    return {"model": "claude-sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": list(blocks)}]}


def _image_bodies(url: str, as_file_id: bool = True) -> list[tuple[str, dict]]:
    """Every route and shape that can carry a media URL, with `url` in it (also as a chat file id,
    which LiteLLM takes for a URL and downloads: gpt_transformation.py, contains_pdf_url)."""
    chat = [
        _chat({"type": "image_url", "image_url": {"url": url}}),
        _chat({"type": "image_url", "image_url": url}),
        _chat({"type": "input_image", "image_url": url}),
        _chat({"type": "file", "file": {"file_url": url}}),
        _chat({"type": "file", "file": {"file_data": url}}),
        *([_chat({"type": "file", "file": {"file_id": url}})] if as_file_id else []),
    ]
    responses = [
        _responses({"role": "user", "content": [{"type": "input_image", "image_url": url}]}),
        _responses({"role": "user", "content": [{"type": "input_file", "file_url": url}]}),
        _responses({"role": "user", "content": [{"type": "input_file", "file_data": url}]}),
        _responses({"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_image", "image_url": url}]}),
        _responses({"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_file", "file_url": url}]}),
    ]
    image, document = {"type": "image", "source": {"type": "url", "url": url}}, {"type": "document", "source": {"type": "url", "url": url}}
    anthropic = [
        _anthropic(image),
        _anthropic(document),
        _anthropic({"type": "tool_result", "tool_use_id": "t1", "content": [image]}),
        _anthropic({"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "see"}, image]}}),
        _anthropic({"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "document", "source": {"type": "content", "content": [image]}}]}),
    ]
    return [
        *[(path, body) for path in CHAT_PATHS for body in chat],
        *[(path, body) for path in RESPONSES_PATHS for body in responses],
        *[("/v1/messages", body) for body in anthropic],
        *[("/v1/messages/count_tokens", {k: v for k, v in body.items() if k != "max_tokens"}) for body in anthropic],
    ]


@pytest.mark.parametrize("host", FORBIDDEN_HOSTS)
def test_a_media_url_at_an_internal_address_is_refused_on_every_route_and_shape(setup, host):
    gw, cloud = setup
    before = len(cloud.requests)
    for path, body in _image_bodies(f"http://{host}/latest/meta-data/x.png"):
        message = _assert_refused(_post(gw, path, body), path)
        assert "loopback, private, link-local or metadata" in message, (path, message)
    assert len(cloud.requests) == before


def test_a_plain_http_media_url_is_refused_on_every_route_and_shape(setup):
    # LiteLLM fetches a plain-http image itself for some providers: only https leaves it to the provider.
    gw, cloud = setup
    before = len(cloud.requests)
    for path, body in _image_bodies("http://images.example.com/cat.png"):
        message = _assert_refused(_post(gw, path, body), path)
        assert "must be an https URL or a base64 data URL" in message, (path, message)
    assert len(cloud.requests) == before


@pytest.mark.parametrize(("path", "body"), [
    *[(path, _chat({"type": "file", "file": {"file_id": "https://files.example.com/a.pdf"}})) for path in CHAT_PATHS],
    *[(path, _responses({"role": "user", "content": [{"type": "input_file", "file_id": "www.example.com/a.pdf"}]})) for path in RESPONSES_PATHS],
])
def test_a_file_id_that_is_a_url_is_refused_since_the_gateway_would_download_it(setup, path, body):
    gw, cloud = setup
    before = len(cloud.requests)
    assert "the gateway would download itself" in _assert_refused(_post(gw, path, body), path)
    assert len(cloud.requests) == before


def test_a_media_url_at_a_public_host_passes_the_door(setup):
    gw, _ = setup
    for path, body in _image_bodies("https://images.example.com/cat.png", as_file_id=False):
        response = _post(gw, path, body)
        assert "loopback, private" not in response.text, (path, response.text[:200])


@pytest.mark.parametrize("method,path", [("GET", "/health/history"), ("GET", "/v1/threads/t1/messages"), ("POST", "/key/generate"),
                                         ("POST", "/user/new"), ("POST", "/model/new"), ("GET", "/v1/evals"), ("PUT", "/openai/v1/responses"),
                                         ("POST", "/anthropic/v1/messages"), ("POST", "/v1/images/generations"), ("GET", "/spend/logs")])
def test_a_route_llm_router_does_not_serve_answers_one_clear_501(setup, method, path):
    gw, cloud = setup
    before = len(cloud.requests)
    response = httpx.request(method, gw.url + path, json={}, headers={"authorization": f"Bearer {MASTER}"}, timeout=30)
    assert "doesn't serve" in _assert_refused(response, path, 501)
    assert response.headers["x-should-retry"] == "false"
    assert len(cloud.requests) == before


def test_an_upstream_400_reaches_the_client_once_without_a_fallback(setup):
    gw, cloud = setup
    before = len(cloud.requests)
    _assert_refused(_post(gw, "/v1/chat/completions", {"model": "refused", "messages": HI}), "/v1/chat/completions")
    assert [r.model for r in cloud.requests[before:]] == ["fake-status-400"]


def test_upstream_400s_never_count_against_the_backends_health(setup):
    """LiteLLM cools a deployment down after repeated failures; a client's mistakes are not failures."""
    gw, cloud = setup
    before = len(cloud.requests)
    statuses = [_post(gw, "/v1/chat/completions", {"model": "refused", "messages": HI}).status_code for _ in range(6)]
    assert statuses == [400] * 6
    assert [r.model for r in cloud.requests[before:]] == ["fake-status-400"] * 6  # each one still reached its backend


def test_each_client_error_is_one_log_line_without_a_traceback(setup):
    gw, _ = setup
    log = gw.config.parent / "logs" / "router.log"
    start = len(log.read_text())
    for path, body in REPRODUCERS:
        _post(gw, path, body)
    written = log.read_text()[start:]
    assert "Traceback" not in written
    assert len(written.splitlines()) == len(REPRODUCERS), written
