"""Bad input gets a clear JSON 4xx on every route that takes a body, in the API's own format, and never
reaches the upstream; one image-URL policy holds in every API's shapes; routes llm-router doesn't
serve answer one clear 501.

The reproducers are the ones a fuzzer and a person found on an earlier version (issue: "Bad input
gets a clear 4xx on every route").
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway

MASTER = "sk-master-SENTINEL-bad-input-0001"
HI = [{"role": "user", "content": "hi"}]
CHAT_PATHS = ["/v1/chat/completions", "/chat/completions", "/engines/gpt-4o/chat/completions", "/openai/deployments/gpt-4o/chat/completions"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with FakeCloud() as cloud:
        config = core_config(tmp_path_factory.mktemp("bad-every-route"), cloud.url)
        env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-bad-0001", "ANTHROPIC_API_KEY": "sk-ant-test-bad-0001"}
        with Gateway(config, env) as gw:
            yield gw, cloud


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
]


@pytest.mark.parametrize("path,body", REPRODUCERS, ids=[f"{p} {json.dumps(b) if not isinstance(b, bytes) else b.decode()}"[:90] for p, b in REPRODUCERS])
def test_a_malformed_body_gets_a_json_400_and_never_reaches_the_upstream(setup, path, body):
    gw, cloud = setup
    before = len(cloud.requests)
    _assert_refused(_post(gw, path, body), path)
    assert len(cloud.requests) == before


FORBIDDEN_HOSTS = ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "metadata.google.internal", "10.0.0.7", "192.168.1.1",
                   "[fd00::1]", "2130706433", "0x7f000001", "127.1", "0177.0.0.1", "[::ffff:127.0.0.1]", "0", "printer.local"]


def _image_bodies(url: str) -> list[tuple[str, dict]]:
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": url}}]}]}
    return [
        *[(path, chat) for path in CHAT_PATHS],
        ("/v1/responses", {"model": "gpt-4o", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": url}]}]}),
        ("/v1/responses", {"model": "gpt-4o", "input": [{"role": "user", "content": [{"type": "input_file", "file_url": url}]}]}),
        ("/v1/messages", {"model": "claude-sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": url}}]}]}),
        ("/v1/messages", {"model": "claude-sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "url", "url": url}}]}]}),
        ("/v1/messages", {"model": "claude-sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "image", "source": {"type": "url", "url": url}}]}]}]}),
        ("/v1/messages/count_tokens", {"model": "claude-sonnet", "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": url}}]}]}),
    ]


@pytest.mark.parametrize("host", FORBIDDEN_HOSTS)
def test_a_media_url_at_an_internal_address_is_refused_on_every_route_and_shape(setup, host):
    gw, cloud = setup
    before = len(cloud.requests)
    for path, body in _image_bodies(f"http://{host}/latest/meta-data/x.png"):
        message = _assert_refused(_post(gw, path, body), path)
        assert "loopback, private, link-local or metadata" in message, (path, message)
    assert len(cloud.requests) == before


def test_a_media_url_at_a_public_host_passes_the_door(setup):
    gw, _ = setup
    for path, body in _image_bodies("https://images.example.com/cat.png"):
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


def test_a_client_error_leaves_no_traceback_in_the_log(setup):
    gw, _ = setup
    for path, body in REPRODUCERS:
        _post(gw, path, body)
    log = gw.log_text() + (gw.config.parent / "logs" / "router.log").read_text()
    assert "Traceback" not in log
