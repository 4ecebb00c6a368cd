"""What real clients send gets through the door: every request in tests/clients/corpus/, replayed as recorded.

The corpus is each client's own traffic (`python -m tests.clients.record`): Claude Code's system
turns inside `messages` and its `?beta=true`, Codex's developer turns and `prompt_cache_key`,
the Agents SDK's empty `tools`, LangChain's defaults. Replayed through a real gateway with the
recorded path, query string, headers and body (only the key added), each must get its answer
from a backend, on `auto` and on an explicit name.
"""

from __future__ import annotations

import json

import httpx
import pytest

from router_plugins.client_dialects import fold_system_turns
from router_plugins.routes import classify
from router_plugins.validation import parse_body
from tests.clients.record import CORPUS_DIR
from tests.support.answers import errors_in, is_complete
from tests.support.configs import CLIENTS_TEAM_KEY, clients_gateway

CORPUS = {path.stem: json.loads(path.read_text()) for path in sorted(CORPUS_DIR.glob("*.json"))}
CALLS = [pytest.param(client, i, id=f"{client}-{i}") for client, calls in CORPUS.items() for i in range(len(calls))]
EXPLICIT = {"/v1/messages": "claude-sonnet", "/v1/chat/completions": "gpt-4o", "/v1/responses": "gpt-4o"}


def _call(client: str, index: int) -> dict:
    return CORPUS[client][index]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with clients_gateway(tmp_path_factory.mktemp("corpus")) as (gw, _):
        yield gw


def test_the_corpus_holds_every_client_the_readme_names():
    assert set(CORPUS) == {"claude-code", "codex", "openai-agents", "langchain-openai", "langchain-anthropic"}
    assert all(CORPUS.values())


def test_claude_code_sends_system_turns_inside_messages_and_a_beta_query():
    """The traffic that refused Claude Code at the door: if a new version stops sending it, this says so."""
    first = _call("claude-code", 0)
    assert first["path"] == "/v1/messages?beta=true"
    assert "system" in [m["role"] for m in first["body"]["messages"]]
    assert first["body"]["max_tokens"] >= 32000


@pytest.mark.parametrize("client, index", CALLS)
def test_the_door_accepts_every_recorded_body(client, index):
    call = _call(client, index)
    route = classify(call["method"], call["path"].split("?", 1)[0])
    body = parse_body(json.dumps(call["body"]).encode(), route.operation, route.model)
    assert body is not None and body["model"] == "auto"


@pytest.mark.parametrize("client, index", [p for p in CALLS if p.values[0] == "claude-code"])
def test_system_turns_are_folded_into_the_system_prompt_in_order(client, index):
    body = json.loads(json.dumps(_call(client, index)["body"]))
    turns = [m for m in body["messages"] if m["role"] == "system"]
    before = len(body["system"])
    assert fold_system_turns(body)
    assert [m["role"] for m in body["messages"]] == [r for r in (m["role"] for m in _call(client, index)["body"]["messages"]) if r != "system"]
    assert body["system"][before:] == [{"type": "text", "text": t["content"]} if isinstance(t["content"], str) else t["content"][0] for t in turns]


@pytest.mark.parametrize("model", ["auto", "explicit"])
@pytest.mark.parametrize("client, index", CALLS)
def test_every_recorded_request_is_answered_through_the_gateway(gateway, client, index, model):
    call = _call(client, index)
    path = call["path"].split("?", 1)[0]
    body = {**call["body"], "model": EXPLICIT[path] if model == "explicit" else "auto"}
    headers = {**call["headers"], "authorization": f"Bearer {CLIENTS_TEAM_KEY}"}
    with httpx.stream(call["method"], gateway.url + call["path"], headers=headers, content=json.dumps(body), timeout=120) as response:
        text = response.read().decode()
    assert response.status_code == 200, text[:2000]
    assert is_complete(text), text[:2000]
    assert not errors_in(text), text[:2000]
    if model == "explicit":
        assert response.headers["x-llm-router-model"] == body["model"]
