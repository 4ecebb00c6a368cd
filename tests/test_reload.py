"""Config changes without a restart: `llm-router reload` (and SIGHUP to serve) rereads the config and
launch specs, checks them as `check` does, and applies them live, on every worker, without restarting
a model whose spec didn't change; an invalid file changes nothing, and what only a restart applies
is named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.configs import core_config, set_spec
from tests.support.gateway import FAKE_MODEL_SERVER, Gateway
from tests.support.processes import processes_matching
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def gateway(cloud, tmp_path_factory) -> Iterator[Gateway]:
    config = core_config(tmp_path_factory.mktemp("reload"), cloud.url)
    env = {"OPENAI_API_KEY": "sk-test-reload-0001", "ANTHROPIC_API_KEY": "sk-ant-test-reload-0001"}
    with Gateway(config, env, workers=2) as gw:
        yield gw


def _edit(config: Path, change) -> None:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(config.read_text())
    change(raw)
    config.write_text(yaml.safe_dump(raw, sort_keys=False))


def _reload(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_router.cli", "reload", "--config", str(config)], capture_output=True, text=True, timeout=60)


def _auto_goes_to(gw: Gateway, group: str, requests: int = 6) -> bool:
    """Whether `requests` auto requests in a row (spread over both workers) are all routed to `group`."""
    return all(gw.post("/v1/chat/completions", {"model": "auto", "messages": HI}).headers.get("x-llm-router-model") == group
               for _ in range(requests))


def _server_pid(gw: Gateway, name: str) -> int | None:
    return next(s["pid"] for s in gw.get("/v1/router/servers").json()["servers"] if s["name"] == name)


def _default_group(group: str):  # type: ignore[no-untyped-def]
    def change(raw: dict) -> None:
        raw["routing"]["default"] = [group]
    return change


def test_a_routing_change_applies_on_every_worker_within_a_second_and_restarts_no_model(gateway):
    assert _auto_goes_to(gateway, "local-text")
    pid = _server_pid(gateway, "local-text")
    _edit(gateway.config, _default_group("gpt-4o"))
    done = _reload(gateway.config)
    assert done.returncode == 0, done.stderr
    assert "needs a gateway restart: nothing" in done.stdout
    wait_until(lambda: _auto_goes_to(gateway, "gpt-4o"), 1, "every worker to route by the new rules")
    assert _server_pid(gateway, "local-text") == pid  # still the same process


def test_an_invalid_config_changes_nothing_and_says_why(gateway):
    _edit(gateway.config, _default_group("gpt-4o"))
    assert _reload(gateway.config).returncode == 0
    _edit(gateway.config, _default_group("no-such-group"))
    refused = _reload(gateway.config)
    assert refused.returncode == 2
    assert "routing.default" in refused.stderr and "no-such-group" in refused.stderr
    assert _auto_goes_to(gateway, "gpt-4o")  # the rules in force before


def test_a_changed_launch_command_restarts_that_server_when_idle_and_no_other(gateway):
    _edit(gateway.config, _default_group("local-text"))
    assert _reload(gateway.config).returncode == 0
    for model in ("local-text", "local-vision"):
        assert gateway.post("/v1/chat/completions", {"model": model, "messages": HI}).status_code == 200
    text, vision = _server_pid(gateway, "local-text"), _server_pid(gateway, "local-vision")
    set_spec(gateway.config, "local-text", flags=("--response-delay", "0.01"))
    done = _reload(gateway.config)
    assert done.returncode == 0 and "restarting when idle: local-text" in done.stdout, done.stdout
    wait_until(lambda: _server_pid(gateway, "local-text") not in (None, text), 20, "local-text to restart")
    assert any("--response-delay" in " ".join(p.cmdline()) for p in processes_matching(str(FAKE_MODEL_SERVER)) if "fake-text" in " ".join(p.cmdline()))
    assert _server_pid(gateway, "local-vision") == vision


def test_a_new_model_list_entry_is_named_as_needing_a_restart(gateway):
    def add_group(raw: dict) -> None:
        raw["model_list"].append({"model_name": "gpt-4o-mini", "litellm_params": dict(raw["model_list"][0]["litellm_params"], model="openai/gpt-4o-mini")})

    _edit(gateway.config, add_group)
    done = _reload(gateway.config)
    assert done.returncode == 0
    assert "needs a gateway restart: model_list: gpt-4o-mini/" in done.stdout and "added" in done.stdout


def test_sighup_to_serve_reloads_too(gateway):
    _edit(gateway.config, lambda raw: raw["model_list"].pop())  # as it was: nothing needs a restart
    _edit(gateway.config, _default_group("claude-sonnet"))
    os.kill(gateway.proc.pid, signal.SIGHUP)
    wait_until(lambda: _auto_goes_to(gateway, "claude-sonnet"), 5, "SIGHUP's reload")
    assert gateway.proc.poll() is None
