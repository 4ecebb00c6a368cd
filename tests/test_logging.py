"""What the gateway logs: no access line unless LLM_ROUTER_ACCESS_LOG=1 asks for it; one line, without
a traceback, for each failed request (4xx or 5xx), whatever failed it; the traceback of an error
nobody meant, with a JSON 500 for its client; and start-up lines about llm-router's own settings,
not LiteLLM's notices about features it doesn't use."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.configs import core_config
from tests.support.gateway import Gateway

ACCESS_LINE = '"POST /v1/chat/completions HTTP/1.1" 200'
MASTER = "sk-master-SENTINEL-logging-0001"
HI = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def gateway(cloud, tmp_path_factory) -> Iterator[Gateway]:
    config = core_config(tmp_path_factory.mktemp("logging"), cloud.url, keys_file=True)
    env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-logging-0001", "ANTHROPIC_API_KEY": "sk-ant-test-logging-0001"}
    with Gateway(config, env) as gw:
        yield gw


def _ask(gw: Gateway, key: str = "unused") -> None:
    gw.client(api_key=key).chat.completions.create(model="gpt-4o", messages=HI)


def _router_log(gw: Gateway) -> Path:
    return gw.config.parent / "logs" / "router.log"


def test_no_access_log_line_by_default_while_server_events_are_still_logged(gateway):
    _ask(gateway, MASTER)
    logs = gateway.log_text() + _router_log(gateway).read_text()
    assert ACCESS_LINE not in logs
    assert "Application startup complete" in logs


def test_access_log_writes_one_line_per_request_when_asked_for(cloud, tmp_path):
    env = {"OPENAI_API_KEY": "sk-test-unused", "LLM_ROUTER_ACCESS_LOG": "1"}
    with Gateway(core_config(tmp_path, cloud.url), env) as gw:
        _ask(gw)
        _ask(gw)
        router_log = _router_log(gw).read_text()
    assert router_log.count(ACCESS_LINE) == 2


def test_each_request_answered_4xx_is_one_line_without_a_traceback(gateway, cloud):
    start = len(_router_log(gateway).read_text())
    cloud.set_mode("gpt-4o", "status-400")
    try:
        answers = [
            gateway.post("/v1/chat/completions", content=b'{"model": "gpt-4o", "messages": [', key=MASTER),  # the door: bad JSON
            gateway.post("/v1/chat/completions", {"model": "gpt-4o", "messages": HI}, key="sk-not-a-key-0001"),  # the door: 401
            gateway.post("/v1/chat/completions", {"model": "gpt-4o", "messages": HI, "temperature": 9}, key=MASTER),  # the door: a field
            gateway.post("/v1/chat/completions", content=b'{"messages": "' + b"a" * 2 * 2**20 + b'"}', key=MASTER),  # the door: 413
            gateway.post("/v1/messages", {"model": "claude-sonnet", "messages": HI}, key=MASTER),  # the door, Anthropic's format
            gateway.post("/v1/chat/completions", {"model": "no-such-model", "messages": HI}, key=MASTER),  # LiteLLM
            gateway.post("/v1/chat/completions", {"model": "gpt-4o", "messages": HI}, key=MASTER),  # the upstream
            gateway.get("/v1/models/no-such-model", key=MASTER),  # our endpoint
        ]
    finally:
        cloud.clear_modes()
    assert [a.status_code // 100 for a in answers] == [4] * len(answers), [a.status_code for a in answers]
    _assert_one_line_each(_router_log(gateway).read_text()[start:], answers)


def test_each_request_answered_5xx_is_one_line_with_its_request_id_and_group(gateway):
    start = len(_router_log(gateway).read_text())
    answers = [  # every backend of the chain failed: anthropic-500, then dead-end
        gateway.post("/v1/chat/completions", {"model": "anthropic-500", "messages": HI}, key=MASTER),
        gateway.post("/v1/messages", {"model": "anthropic-500", "max_tokens": 5, "messages": HI}, key=MASTER),
    ]
    assert [a.status_code for a in answers] == [502, 502], [a.text for a in answers]
    lines = _assert_one_line_each(_router_log(gateway).read_text()[start:], answers)
    for line, answer in zip(lines, answers):
        assert f"request={answer.headers['x-litellm-call-id']}" in line and "anthropic-500" in line, line
        assert "Tried 2: anthropic-500" in line, line


def _assert_one_line_each(written: str, answers: list) -> list[str]:
    """The lines logged for `answers`, one each, in order, from the door, with no traceback."""
    assert "Traceback" not in written
    lines = written.splitlines()
    assert [line.split(": ", 1)[0].rsplit(" ", 1)[-1] for line in lines] == ["llm_router.app"] * len(answers), written
    assert [int(line.split(": ", 1)[1].split(" ", 1)[0]) for line in lines] == [a.status_code for a in answers], written
    return lines


def test_start_up_lines_describe_llm_routers_settings_not_litellms_defaults(gateway):
    logs = gateway.log_text() + _router_log(gateway).read_text()
    assert "LITELLM_MASTER_KEY is not set" not in logs and "dangerously_permit_weak_or_unset_master_key" not in logs
    assert "custom_auth_run_common_checks" not in logs
    assert "llm-router: master key set, team keys from keys.yaml" in logs


@pytest.fixture
def broken_keys_file(gateway) -> Iterator[None]:
    """An operator breaks the keys file while the gateway runs: looking a team key up then raises."""
    keys = gateway.config.parent / "keys.yaml"
    keys.write_text("keys: [unclosed")
    yield
    keys.unlink()


def test_an_error_nobody_meant_gets_a_json_500_in_the_callers_format(gateway, broken_keys_file):
    chat = gateway.post("/v1/chat/completions", {"model": "gpt-4o", "messages": HI}, key="sk-team-unknown-0001")
    messages = gateway.post("/v1/messages", {"model": "claude-sonnet", "max_tokens": 5, "messages": HI}, key="sk-team-unknown-0001")
    assert (chat.status_code, messages.status_code) == (500, 500)
    assert chat.json()["error"]["message"]
    assert messages.json()["type"] == "error" and messages.json()["error"]["message"]


def test_an_error_nobody_meant_is_logged_once_with_its_traceback(gateway, broken_keys_file):
    start = len(_router_log(gateway).read_text())
    gateway.post("/v1/chat/completions", {"model": "gpt-4o", "messages": HI}, key="sk-team-unknown-0001")
    written = _router_log(gateway).read_text()[start:]
    records = re.findall(r"^\d{4}-\d\d-\d\d .*$", written, re.MULTILINE)
    assert len(records) == 1 and "failed on POST '/v1/chat/completions'" in records[0], records
    assert "Traceback (most recent call last)" in written and "KeyFileError" in written
