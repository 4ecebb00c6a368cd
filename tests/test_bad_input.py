"""Bad input gets a 4xx in OpenAI's error format, never a 500 or a hang."""

from __future__ import annotations

import pytest

from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with FakeCloud() as cloud:
        config = core_config(tmp_path_factory.mktemp("bad-input"), cloud.url)
        with Gateway(config, {"OPENAI_API_KEY": "sk-test-bad-input-0001"}) as gw:
            yield gw


def _assert_openai_error(response, status_range=range(400, 500)):
    assert response.status_code in status_range, (response.status_code, response.text)
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert "type" in error


CASES = {
    "malformed JSON": b'{"model": "auto", "messages": [',
    "not an object": b'["model", "auto"]',
    "missing messages": b'{"model": "auto"}',
    "empty messages": b'{"model": "auto", "messages": []}',
    "messages not a list": b'{"model": "auto", "messages": "hello"}',
    "message not an object": b'{"model": "auto", "messages": ["hello"]}',
    "content wrong type": b'{"model": "auto", "messages": [{"role": "user", "content": 42}]}',
    "unknown role": b'{"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]}',
    "unknown model": b'{"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}',
    "model not a string": b'{"model": 7, "messages": [{"role": "user", "content": "hi"}]}',
    "non-UTF-8 bytes": b'{"model": "auto", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
    "unknown content part type": b'{"messages": [{"role": "user", "content": [{"type": "hologram", "data": 1}]}]}',
    "deeply nested JSON": b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "image data that is not an image": b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}]}]}',
    "image URL at loopback": b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:8000/x.png"}}]}]}',
    "image URL at link-local metadata": b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest/meta-data"}}]}]}',
    "image URL at a private address": b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://[fd00::1]/a.png"}}]}]}',
    "temperature out of range": b'{"model": "gpt-4o", "temperature": 7, "messages": [{"role": "user", "content": "hi"}]}',
    "n of zero": b'{"model": "gpt-4o", "n": 0, "messages": [{"role": "user", "content": "hi"}]}',
    "max_tokens not a number": b'{"model": "gpt-4o", "max_tokens": "lots", "messages": [{"role": "user", "content": "hi"}]}',
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_chat_body_gets_a_4xx_openai_error(gateway, name):
    _assert_openai_error(gateway.post("/v1/chat/completions", content=CASES[name], timeout=30))


def test_oversized_body_gets_413(gateway):
    body = b'{"model": "auto", "messages": [{"role": "user", "content": "' + b"a" * (2 * 1024 * 1024) + b'"}]}'
    response = gateway.post("/v1/chat/completions", content=body, timeout=30)
    _assert_openai_error(response, range(413, 414))


def test_gateway_still_answers_after_bad_input(gateway):
    for body in CASES.values():
        gateway.post("/v1/chat/completions", content=body, timeout=30)
    ok = gateway.post("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "still there?"}]})
    assert ok.status_code == 200
