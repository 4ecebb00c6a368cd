"""What the gateway logs per request: no access line unless LLM_ROUTER_ACCESS_LOG=1 asks for it."""

from __future__ import annotations

from tests.support.configs import core_config
from tests.support.gateway import Gateway

ACCESS_LINE = '"POST /v1/chat/completions HTTP/1.1" 200'


def _ask(gw: Gateway) -> None:
    gw.client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])


def _logs(gw: Gateway) -> str:
    return gw.log_text() + (gw.config.parent / "logs" / "router.log").read_text()


def test_no_access_log_line_by_default_while_server_events_are_still_logged(cloud, tmp_path):
    with Gateway(core_config(tmp_path, cloud.url), {"OPENAI_API_KEY": "sk-test-unused"}) as gw:
        _ask(gw)
        logs = _logs(gw)
    assert ACCESS_LINE not in logs
    assert "Application startup complete" in logs


def test_access_log_writes_one_line_per_request_when_asked_for(cloud, tmp_path):
    env = {"OPENAI_API_KEY": "sk-test-unused", "LLM_ROUTER_ACCESS_LOG": "1"}
    with Gateway(core_config(tmp_path, cloud.url), env) as gw:
        _ask(gw)
        _ask(gw)
        router_log = (gw.config.parent / "logs" / "router.log").read_text()
    assert router_log.count(ACCESS_LINE) == 2
