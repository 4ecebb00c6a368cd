"""The agents and SDKs a team runs, pointed at the gateway as their users point them, with a team key.

Claude Code and Codex (the pinned npm CLIs, run non-interactively), the OpenAI Agents SDK, and
LangChain's ChatOpenAI and ChatAnthropic (tests/clients/agents.py), each with `auto` and with an
explicit name: one question, a follow-up in the same conversation, a streamed answer and a tool
round trip; and the Agents SDK chaining turns by previous_response_id, on a local and a cloud
model, streamed and not, a tool round trip included. The upstreams are the fakes: the cloud on loopback, and a local model server with
vLLM's 2,048-token window check. The fakes answer `<provider>:<model> says: <the last user
text>`, call the first tool offered, and answer a tool's result with `tool said: <result>`, so an
answer names who served it, and a test can read what each upstream received.
"""

from __future__ import annotations

import json

import pytest

from tests.clients.agents import CLI_CLIENTS, SDK_CLIENTS, AgentsSdk, ClaudeCode, Codex, Endpoint
from tests.fakes.cloud import FakeCloud
from tests.support.configs import CLIENTS_TEAM_KEY, clients_gateway
from tests.support.gateway import Gateway

pytestmark = pytest.mark.slow

LOCAL = "local:fake-text says:"
SONNET = "anthropic:claude-sonnet-4-5 says:"
GPT = "openai:gpt-4o says:"
# What `auto` picks for each client: agents' long system prompts and tool lists rate complex; SDK questions are short.
SDK_MODELS = [pytest.param("auto", LOCAL, id="auto"), pytest.param("local-text", LOCAL, id="explicit")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    # These tests are about what each client sends and keeps; `auto` routes by length only here (difficulty
    # threshold 1.0), so that each turn's tier doesn't hang on how hard its made-up words score.
    with clients_gateway(tmp_path_factory.mktemp("real-clients"), difficulty="{threshold: 1.0}") as (gw, cloud):
        yield gw, cloud


def _endpoint(gw: Gateway, model: str) -> Endpoint:
    return Endpoint(gw.url, CLIENTS_TEAM_KEY, model)


def _bodies_with(gw: Gateway, cloud: FakeCloud, marker: str) -> list[dict]:
    """Every body an upstream (cloud or local) received that carries `marker`."""
    return [b for b in [r.body for r in cloud.requests] + gw.received("local-text") if marker in json.dumps(b)]


# ---- the Python SDKs: OpenAI Agents SDK (Responses), LangChain ChatOpenAI (chat) and ChatAnthropic (Messages)


@pytest.mark.parametrize("model, served_by", SDK_MODELS)
@pytest.mark.parametrize("name", SDK_CLIENTS)
def test_an_sdk_client_answers_one_question(setup, name, model, served_by):
    gw, _ = setup
    answer = SDK_CLIENTS[name]().ask(_endpoint(gw, model), f"What is the capital of France? ({name} {model})")
    assert answer.text.startswith(served_by) and "capital of France" in answer.text


@pytest.mark.parametrize("model, served_by", SDK_MODELS)
@pytest.mark.parametrize("name", SDK_CLIENTS)
def test_an_sdk_client_keeps_a_conversation(setup, name, model, served_by):
    gw, cloud = setup
    client = SDK_CLIENTS[name]()
    client.ask(_endpoint(gw, model), f"First question of {name} {model}?")
    answer = client.ask(_endpoint(gw, model), f"Second question of {name} {model}?", follow_up=True)
    assert answer.text.startswith(served_by) and "Second question" in answer.text
    (follow_up,) = _bodies_with(gw, cloud, f"Second question of {name} {model}")
    assert f"First question of {name} {model}" in json.dumps(follow_up), "the follow-up carries the whole conversation"


@pytest.mark.parametrize("model, served_by", SDK_MODELS)
@pytest.mark.parametrize("name", SDK_CLIENTS)
def test_an_sdk_client_streams(setup, name, model, served_by):
    gw, cloud = setup
    answer = SDK_CLIENTS[name]().ask(_endpoint(gw, model), f"Stream a story, {name} {model}.", stream=True)
    assert answer.text.startswith(served_by) and "Stream a story" in answer.text
    (upstream,) = _bodies_with(gw, cloud, f"Stream a story, {name} {model}")
    assert upstream.get("stream") is True


@pytest.mark.parametrize("model, served_by", SDK_MODELS)
@pytest.mark.parametrize("name", SDK_CLIENTS)
def test_an_sdk_client_completes_a_tool_round_trip(setup, name, model, served_by):
    gw, _ = setup
    answer = SDK_CLIENTS[name]().ask(_endpoint(gw, model), f"What's the weather in Paris? ({name} {model})", tool=True)
    # The fake called the client's `weather` tool with Paris; the client ran it and sent its result back.
    assert answer.text.startswith(served_by) and "tool said: sunny in Paris" in answer.text


# ---- the OpenAI Agents SDK chaining by previous_response_id: the gateway keeps the conversation

CHAINED_MODELS = [pytest.param("auto", LOCAL, id="auto"), pytest.param("gpt-4o", GPT, id="openai"),
                  pytest.param("claude-sonnet", SONNET, id="anthropic")]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("model, served_by", CHAINED_MODELS)
def test_the_agents_sdk_chains_three_turns_by_previous_response_id(setup, model, served_by, stream):
    """Each follow-up sends only its own question and the last answer's id; the backend gets the whole conversation."""
    gw, cloud = setup
    client, tag = AgentsSdk(chained=True), f"{model} {stream}"
    answers = [client.ask(_endpoint(gw, model), f"{turn} chained question ({tag})?", follow_up=n > 0, stream=stream).text
               for n, turn in enumerate(("First", "Second", "Third"))]
    assert all(a.startswith(served_by) for a in answers), answers
    (third,) = _bodies_with(gw, cloud, f"Third chained question ({tag})")
    sent = json.dumps(third)
    assert "previous_response_id" not in third
    assert all(json.dumps(part)[1:-1] in sent for part in (f"First chained question ({tag})", answers[0], f"Second chained question ({tag})"))


@pytest.mark.parametrize("model, served_by", SDK_MODELS)
def test_the_agents_sdk_chains_a_tool_round_trip_by_previous_response_id(setup, model, served_by):
    """Within a run, the SDK sends the tool's result with only the id of the answer that called it."""
    gw, _ = setup
    answer = AgentsSdk(chained=True).ask(_endpoint(gw, model), f"What's the weather in Paris? (chained {model})", tool=True)
    assert answer.text.startswith(served_by) and "tool said: sunny in Paris" in answer.text


def test_langchain_anthropics_large_max_tokens_is_lowered_to_fit_the_local_window(setup):
    gw, _ = setup
    answer = SDK_CLIENTS["langchain-anthropic"]().ask(_endpoint(gw, "auto"), "How big is the window?")
    assert answer.text.startswith(LOCAL)
    (upstream,) = [b for b in gw.received("local-text") if "How big is the window?" in json.dumps(b)]
    assert 0 < upstream["max_tokens"] < 2048 < 4096, "LangChain sent 4,096; the local window holds 2,048 in all"


# ---- the agent CLIs: Claude Code (Messages, `?beta=true`, system turns) and Codex (Responses), both streaming with tools


CLI_MODELS = {
    "claude-code": [pytest.param("auto", SONNET, id="auto"), pytest.param("gpt-4o", GPT, id="explicit")],
    "codex": [pytest.param("auto", SONNET, id="auto"), pytest.param("gpt-4o", GPT, id="explicit")],
}


@pytest.mark.parametrize("model, served_by", CLI_MODELS["claude-code"])
def test_claude_code_answers_and_follows_up_with_a_tool_round_trip_each_turn(setup, tmp_path, model, served_by):
    gw, cloud = setup
    _converses(ClaudeCode(tmp_path), gw, cloud, model, served_by)


@pytest.mark.parametrize("model, served_by", CLI_MODELS["codex"])
def test_codex_answers_and_follows_up_with_a_tool_round_trip_each_turn(setup, tmp_path, model, served_by):
    gw, cloud = setup
    _converses(Codex(tmp_path), gw, cloud, model, served_by)


def _converses(client: ClaudeCode | Codex, gw: Gateway, cloud: FakeCloud, model: str, served_by: str) -> None:
    """Two turns of an agent CLI. Each offers the agent's own tools, so the fake calls the first one, the
    agent runs it (or reports why it couldn't) and sends the result back: a tool round trip per turn."""
    first = client.ask(_endpoint(gw, model), f"Opening question for {client.name} {model}")
    second = client.ask(_endpoint(gw, model), f"Follow-up for {client.name} {model}", follow_up=True)
    for answer in (first, second):
        assert served_by in answer.text and "tool said:" in answer.text, answer.text
    upstream = _bodies_with(gw, cloud, f"Follow-up for {client.name} {model}")
    assert upstream and all(body.get("stream") is True for body in upstream)
    last = json.dumps(upstream[-1])
    assert f"Opening question for {client.name} {model}" in last
    assert any(result in last for result in _TOOL_RESULTS), "the upstream got the tool's result back"


_TOOL_RESULTS = ('"tool_result"', '"function_call_output"', '"role": "tool"')
"""A tool's result as an upstream receives it: Anthropic's, the Responses API's, chat completions'."""


def test_every_client_the_readme_names_is_tested():
    assert set(CLI_CLIENTS) | set(SDK_CLIENTS) == {"claude-code", "codex", "openai-agents", "langchain-openai", "langchain-anthropic"}
