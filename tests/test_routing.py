"""Routing decisions in-process: reasons, preferences, skip rules. Nothing is started or called."""

from __future__ import annotations

import base64

import pytest

from router_config.gateway_config import load_config
from router_plugins.gateway import Gateway
from router_plugins.access import MASTER, Caller, Role
from router_plugins.conversation import Shape, read
from router_plugins.keys import TeamKey
from router_plugins.errors import ApiError
from router_plugins.signals import TIER_CHARS
from tests.support.configs import core_config, set_spec


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
    assert d.signals.difficulty < d.signals.difficulty_threshold
    assert (d.signals.complexity_tier, d.signals.complexity_chars) == (None, 0)  # LiteLLM's tiers are off by default


def test_a_prompt_whose_size_fits_the_window_is_not_counted(gateway):
    d = _decide(gateway, "hello " * 40)  # 240 bytes: under local-text's 300-token window whatever the tokenizer
    assert d.reason == "default" and d.signals.tokens_estimated


def test_a_prompt_whose_size_cannot_tell_is_counted_exactly_by_litellm(gateway):
    fits, overflows = _decide(gateway, "hello " * 60), _decide(gateway, "hello, world. " * 140)
    assert not fits.signals.tokens_estimated and fits.signals.tokens < 300 and fits.reason == "default"
    assert not overflows.signals.tokens_estimated and overflows.signals.tokens > 300 and overflows.reason == "context"


def test_litellm_tiers_where_configured_rate_the_head_of_the_last_user_turn(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-routing-0004")
    config = core_config(tmp_path, "http://127.0.0.1:9")
    config.write_text(config.read_text().replace("complexity: {max_chars: 2000}", "complexity: {max_chars: 2000, tiers: [REASONING]}\n"
                                                 "  difficulty: {threshold: 1.0}"))
    gw = Gateway(load_config(config))
    head = "Thanks, that was helpful. Here is the rest of the story you asked me to finish for my daughter tonight. " * 2
    assert gw.router.reader.classify(head + "Think step by step and explain your reasoning.")[0] == "REASONING"
    tail = _decide(gw, head + "Think step by step and explain your reasoning.")
    assert (tail.signals.complexity_chars, tail.signals.complexity_tier, tail.reason) == (TIER_CHARS, "SIMPLE", "default")
    ahead = _decide(gw, "Think step by step and explain your reasoning. " + head)
    assert (ahead.signals.complexity_tier, ahead.reason) == ("REASONING", "complex")


def test_images_win_over_length(gateway):
    d = _decide(gateway, [*_image(10), {"type": "text", "text": "x" * 5000}])
    assert (d.model, d.reason) == ("local-vision", "vision")
    assert d.signals.images == 1


def test_with_an_image_neither_the_score_nor_the_token_counter_runs(gateway):
    d = _decide(gateway, [*_image(10), {"type": "text", "text": "Think step by step and explain your reasoning. " * 10}])
    assert (d.reason, d.signals.difficulty, d.signals.tokens_estimated) == ("vision", None, True)


def test_text_over_max_chars_is_complex_with_an_estimated_token_count(gateway):
    d = _decide(gateway, "hello " * 400)
    assert d.reason in ("complex", "context")
    assert d.signals.tokens_estimated and d.signals.difficulty is None


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


def test_tools_with_no_group_the_key_may_use_that_can_call_them_are_a_400(gateway):
    key = TeamKey(name="k", team="t", sha256="0" * 64, models=("local-text", "local-vision"))
    body = {"model": "auto", "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]}
    with pytest.raises(ApiError, match="No model group this key may use that is available here can serve this request, which offers tools") as refused:
        gateway.router.decide(body, Shape.CHAT, gateway.availability_for(Caller(Role.TEAM, key)))
    assert refused.value.status == 400
    assert refused.value.groups == (("local-text", "can't call tools"), ("local-vision", "can't call tools"))  # never a group the key can't see


TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


def _with_tools(model: str = "auto") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "weather?"}], "tools": TOOLS}


def test_tools_with_no_available_group_that_can_call_them_are_a_400_naming_every_group(gateway, monkeypatch):
    """The keyless machine of issue 26: the local models are available but can't call tools; the cloud ones could."""
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ApiError) as refused:
        gateway.router.decide(_with_tools(), Shape.CHAT, gateway.availability_for(MASTER))
    error = refused.value
    assert (error.status, error.param) == (400, "tools")
    groups = dict(error.groups)
    assert set(groups) == set(gateway.config.groups)
    assert groups["local-text"] == groups["local-vision"] == "can't call tools"
    assert groups["gpt-4o"] == "OPENAI_API_KEY is not set" and groups["claude-sonnet"] == "ANTHROPIC_API_KEY is not set"
    assert error.message.startswith("No model group that is available here can serve this request, which offers tools.")
    assert all(f"{group}: {why}" in error.message for group, why in error.groups)


def test_an_explicit_model_whose_chain_cannot_serve_tools_gets_the_same_400(gateway, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    refused = gateway.router.refusal(_with_tools("gpt-4o"), Shape.CHAT, gateway.availability_for(MASTER))
    assert refused is not None and refused.status == 400 and dict(refused.groups)["gpt-4o"] == "OPENAI_API_KEY is not set"


def test_a_missing_key_for_a_request_another_group_could_serve_is_no_refusal(gateway, monkeypatch):
    """gpt-4o can call tools here: claude-sonnet's missing key is the deployment's state (a 503), not the request's fault."""
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert gateway.router.refusal(_with_tools("claude-sonnet"), Shape.CHAT, gateway.availability_for(MASTER)) is None


def test_tools_where_no_group_at_all_is_available_are_no_refusal(gateway, monkeypatch):
    """Nothing here can serve anything: the deployment's state (its one 503), whatever the request asks."""
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    unavailable = {group: "needs a GPU" for group in gateway.config.groups}
    assert gateway.router.refusal(_with_tools(), Shape.CHAT, unavailable.get) is None
    assert gateway.router.decide(_with_tools(), Shape.CHAT, unavailable.get).model == "local-text"  # its chain's 503 follows


def test_an_image_with_no_available_group_that_can_see_is_a_400_naming_every_group(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = core_config(tmp_path, "http://127.0.0.1:9")
    set_spec(config, "local-vision", auto_start="false")
    gw = Gateway(load_config(config))
    with pytest.raises(ApiError) as refused:
        _decide(gw, _image(10))
    groups = dict(refused.value.groups)
    assert refused.value.status == 400 and "which has images" in refused.value.message
    assert groups["local-text"] == "can't see images"
    assert groups["local-vision"] == "auto_start is false and the server is not running"
    assert groups["gpt-4o"] == "OPENAI_API_KEY is not set"


def test_tools_that_only_a_group_auto_does_not_route_to_can_call_are_a_400_that_names_it(gateway):
    key = TeamKey(name="k", team="t", sha256="0" * 64, models=("local-text", "gpt-4o"))  # gpt-4o is in none of routing's lists
    with pytest.raises(ApiError) as refused:
        gateway.router.decide(_with_tools(), Shape.CHAT, gateway.availability_for(Caller(Role.TEAM, key)))
    assert refused.value.status == 400 and "No model group this key may use that auto routes to can serve" in refused.value.message
    assert refused.value.groups == (("gpt-4o", None), ("local-text", "can't call tools"))


def test_an_explicit_model_that_cannot_call_tools_names_every_group_and_those_that_can(gateway):
    with pytest.raises(ApiError) as refused:
        gateway.router.decide(_with_tools("local-text"), Shape.CHAT, gateway.availability_for(MASTER))
    assert refused.value.status == 400 and "Model 'local-text' can't call tools" in refused.value.message
    groups = dict(refused.value.groups)
    assert groups["local-text"] == "can't call tools" and groups["gpt-4o"] is None  # None: it can serve this request
    assert "gpt-4o: can serve it" in refused.value.message


# ---- what each API's shapes give routing (router_plugins/conversation.read) ---------------

PNG_URL = "https://images.example.com/cat.png"


def test_responses_reads_instructions_input_items_images_and_tool_outputs():
    body = {"instructions": "be brief", "tools": [{"type": "function", "name": "weather"}], "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "look at "}, {"type": "input_image", "image_url": PNG_URL},
                                     {"type": "input_image", "file_id": "file-1"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "a cat"}]},
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"role": "user", "content": "and now?"}]}
    c = read(body, Shape.RESPONSES)
    assert c.turns == (("system", "be brief"), ("user", "look at "), ("assistant", "a cat"), ("tool", "sunny"), ("user", "and now?"))
    assert (c.images, c.last_user_text, c.wants_tools) == (2, "and now?", True)


def test_responses_reads_a_string_input():
    c = read({"instructions": "be brief", "input": "hello"}, Shape.RESPONSES)
    assert (c.turns, c.images, c.wants_tools) == ((("system", "be brief"), ("user", "hello")), 0, False)


def test_messages_reads_system_blocks_images_and_tool_results():
    image_url = {"type": "image", "source": {"type": "url", "url": PNG_URL}}
    image_b64 = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    body = {"system": [{"type": "text", "text": "be "}, {"type": "text", "text": "brief"}], "messages": [
        {"role": "user", "content": [{"type": "text", "text": "what is this?"}, image_url]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "a screenshot"}, image_b64]}]}]}
    c = read(body, Shape.MESSAGES)
    assert c.turns == (("system", "be brief"), ("user", "what is this?"), ("assistant", ""), ("user", "a screenshot"))
    assert (c.images, c.last_user_text, c.wants_tools) == (2, "a screenshot", False)


def test_files_and_pdf_documents_are_neither_images_nor_text():
    """Routing can't read a PDF without decoding it, and a PDF is not an image: it must not send a request to vision."""
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.7 " + b"x" * 5000).decode()
    chat = {"messages": [{"role": "user", "content": [{"type": "text", "text": "summarize"},
                                                      {"type": "file", "file": {"file_data": pdf, "filename": "a.pdf"}}]}]}
    responses = {"input": [{"role": "user", "content": [{"type": "input_text", "text": "summarize"},
                                                        {"type": "input_file", "file_data": pdf, "filename": "a.pdf"},
                                                        {"type": "input_file", "file_url": "https://docs.example.com/a.pdf"}]}]}
    messages = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "summarize"},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf.split(",", 1)[1]}},
        {"type": "document", "source": {"type": "url", "url": "https://docs.example.com/a.pdf"}},
        {"type": "document", "source": {"type": "file", "file_id": "file-1"}}]}]}
    for body, shape in ((chat, Shape.CHAT), (responses, Shape.RESPONSES), (messages, Shape.MESSAGES)):
        c = read(body, shape)
        assert (c.images, c.chars) == (0, len("summarize")), shape


def test_plain_text_documents_are_read_as_text():
    body = {"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "first. "}},
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "second."}]}}]}]}
    assert read(body, Shape.MESSAGES).turns == (("user", "first. second."),)



def _by_url(url: str = "https://images.example.com/cat.png") -> list[dict]:
    return [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": url}}]


def test_an_image_by_url_skips_a_local_group_that_would_fetch_it_from_this_machine(gateway):
    d = _decide(gateway, _by_url())
    assert (d.model, d.reason) == ("claude-sonnet", "vision")  # its provider fetches the URL on its side
    assert ("local-vision", "would fetch a media URL from this machine") in [(s.group, s.why) for s in d.skipped]


def test_an_explicit_local_model_refuses_an_image_by_url_with_the_fix(gateway):
    with pytest.raises(ApiError) as info:
        _decide(gateway, _by_url(), model="local-vision")
    assert info.value.status == 400
    assert "inline as base64 data URLs" in info.value.message and "fetch_media_urls" in info.value.message


def test_an_image_inline_still_goes_to_the_local_vision_group(gateway):
    assert _decide(gateway, _image(10)).model == "local-vision"


def test_a_local_group_whose_spec_lets_it_fetch_takes_images_by_url(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-routing-0001")
    config = core_config(tmp_path, "http://127.0.0.1:9")
    set_spec(config, "local-vision", fetch_media_urls="true")
    gw = Gateway(load_config(config))
    assert _decide(gw, _by_url(), model="local-vision").model == "local-vision"
    assert _decide(gw, _by_url()).model == "local-vision"


@pytest.mark.parametrize(("shape", "body", "by_url"), [
    (Shape.CHAT, {"messages": [{"role": "user", "content": _by_url()}]}, True),
    (Shape.CHAT, {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_url": "https://x.example/a.pdf"}}]}]}, True),
    (Shape.CHAT, {"messages": [{"role": "user", "content": _image(10)}]}, False),
    (Shape.RESPONSES, {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x.example/a.png"}]}]}, True),
    (Shape.RESPONSES, {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-123"}]}]}, False),
    (Shape.MESSAGES, {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://x.example/a.png"}}]}]}]}, True),
    (Shape.MESSAGES, {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                                              "data": "iVBORw0K"}}]}]}, False),
])
def test_a_conversation_knows_whether_it_gives_media_by_url(shape, body, by_url):
    assert read(body, shape).remote_media is by_url
