"""Routing decisions in-process: reasons, preferences, skip rules. Nothing is started or called."""

from __future__ import annotations

import base64

import pytest

from router_config.gateway_config import load_config
from router_plugins.gateway import Gateway
from router_plugins.access import MASTER, Caller, Role
from router_plugins.conversation import Shape
from router_plugins.keys import TeamKey
from router_plugins.errors import ApiError
from tests.support.configs import core_config


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-routing-0001")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-routing-0001")
    return Gateway(load_config(core_config(tmp_path, "http://127.0.0.1:9")))


def _decide(gw, content, model="auto", key=None):
    caller = Caller(Role.TEAM, key) if key else MASTER
    return gw.router.decide({"model": model, "messages": [{"role": "user", "content": content}]}, Shape.CHAT, gw.availability_for(caller))


def _image(size: int) -> list[dict]:
    data = base64.b64encode(b"\x89PNG" + b"\0" * size).decode()
    return [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}]


def test_short_simple_prompt_is_default(gateway):
    d = _decide(gateway, "What is the capital of France?")
    assert (d.model, d.reason) == ("local-text", "default")
    assert d.signals.complexity_tier == "SIMPLE" and not d.signals.tokens_estimated


def test_images_win_over_length(gateway):
    d = _decide(gateway, [*_image(10), {"type": "text", "text": "x" * 5000}])
    assert (d.model, d.reason) == ("local-vision", "vision")
    assert d.signals.images == 1


def test_text_over_max_chars_is_complex_with_an_estimated_token_count(gateway):
    d = _decide(gateway, "hello " * 400)
    assert d.reason in ("complex", "context")
    assert d.signals.tokens_estimated and d.signals.complexity_tier is None


def test_huge_prompt_is_routed_for_context(gateway):
    d = _decide(gateway, "hello world " * 100_000)
    assert (d.model, d.reason) == ("claude-sonnet", "context")


def test_explicit_names_are_not_rerouted_and_report_their_chain(gateway):
    d = _decide(gateway, "x" * 10_000, model="flaky-500")
    assert (d.model, d.reason, d.signals) == ("flaky-500", "explicit", None)
    assert d.fallbacks == ("gpt-4o",)


def test_empty_model_string_is_content_routed(gateway):
    assert _decide(gateway, "hi", model="").reason == "default"


def test_image_size_does_not_change_the_signals(gateway):
    small, large = _decide(gateway, _image(10_000)), _decide(gateway, _image(10_000_000))
    assert small.signals == large.signals


def test_a_cloud_group_without_its_key_is_skipped(gateway, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    d = _decide(gateway, "word " * 600)
    assert d.model == "local-text"  # the complex group can't serve; the default one can
    assert d.skipped[0].group == "claude-sonnet" and d.skipped[0].why == "ANTHROPIC_API_KEY is not set"


def test_a_local_group_whose_weights_are_missing_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-routing-0002")
    config = core_config(tmp_path, "http://127.0.0.1:9")
    (tmp_path / "models" / "local-text.yaml").write_text(
        "engine: vllm\nmodel: ./no-such-weights\nserved_model_name: fake-text\n"
        f"port: {load_config(config).local_specs()['local-text'].port}\nvllm_command: {__import__('sys').executable}\n")
    gw = Gateway(load_config(config))
    d = _decide(gw, "hi")
    assert d.model == "claude-sonnet"
    assert "model weights not found: ./no-such-weights" in d.skipped[0].why


def test_a_local_group_over_the_memory_budget_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-routing-0003")
    config = core_config(tmp_path, "http://127.0.0.1:9", extra_llm_router="memory_budget: {host_gib: 2}")
    spec = tmp_path / "models" / "local-text.yaml"
    spec.write_text(spec.read_text() + "memory: {host_gib: 3}\n")
    d = _decide(Gateway(load_config(config)), "hi")
    assert d.model == "claude-sonnet"
    assert d.skipped[0].why == "memory budget: needs 3 GiB host memory, budget is 2 GiB"


def test_a_key_only_reaches_allowed_groups_through_auto(gateway):
    key = TeamKey(name="k", team="t", sha256="0" * 64, models=("claude-sonnet",))
    d = _decide(gateway, "hi", key=key)
    assert d.model == "claude-sonnet"
    assert [(s.group, s.why) for s in d.skipped] == [("local-text", "not allowed for this key")]


def test_a_key_allowed_nothing_routable_is_refused(gateway):
    key = TeamKey(name="k", team="t", sha256="0" * 64, models=("flaky-500",))
    with pytest.raises(ApiError, match="may not use any model group"):
        _decide(gateway, "hi", key=key)


def test_when_nothing_can_serve_the_first_preference_is_chosen_to_report_its_error(gateway, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    d = _decide(gateway, "word " * 600)
    assert d.model == "local-text"  # the default group is still available here


def test_malformed_messages_do_not_break_the_decision(gateway):
    d = gateway.router.decide({"model": "auto", "messages": [None, {"content": [{"type": "text"}, "junk"]}]}, Shape.CHAT, gateway.availability_for(MASTER))
    assert d.reason == "default"
