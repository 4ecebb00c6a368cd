"""Responses conversations that chain by previous_response_id on every backend (issue 26, item 1).

Through a real gateway with two workers (a turn lands on either): the fake cloud keeps responses
unless `store: false` and refuses an id it doesn't hold, as OpenAI does, and the local fake model
server refuses any previous_response_id, as vLLM does without its opt-in store. So a chain passes
only if the gateway sends each backend the whole conversation instead of the id. Every upstream
answer says who served it and the last user text; the local server records what it received.

In-process: what a stream's or a body's final response is, the TTL and the bound.
The OpenAI Agents SDK chaining by previous_response_id is in tests/test_real_clients.py; a chain
across two Redis-backed replicas in tests/test_replicas.py.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import httpx
import openai
import pytest

from router_config.gateway_config import ResponsesStore as StoreSettings
from router_config.gateway_config import load_config
from router_plugins.access import MASTER as MASTER_CALLER
from router_plugins.access import Caller, Role
from router_plugins.errors import ApiError
from router_plugins.keys import TeamKey, hash_key
from router_plugins.state.database import StateDatabase
from router_plugins.state.responses import AnswerReader, ResponseStore, Turn
from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config, set_spec
from tests.support.gateway import Gateway
from tests.support.prompts import HARD

MASTER = "sk-master-SENTINEL-responses-0001"
ALICE = "sk-llmr-alice-responses-0001"
BOB = "sk-llmr-bob-responses-0001"
ENV = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-responses-openai-0001",
       "ANTHROPIC_API_KEY": "sk-ant-test-responses-anthropic-0001"}
LOCAL = "local:fake-text says:"
GPT = "openai:gpt-4o says:"
SONNET = "anthropic:claude-sonnet-4-5 says:"
# The difficulty score sends this to routing.complex; a short question stays local.
COMPLEX = HARD


def _config(tmp: Path, cloud_url: str, responses: str = "") -> Path:
    config = core_config(tmp, cloud_url, keys_file=True, extra_llm_router=responses)
    set_spec(config, "local-text", flags=("--record-requests", str(tmp / "local-text.requests.jsonl")))
    (tmp / "keys.yaml").write_text(f"keys: [{{name: alice, team: red, sha256: {hash_key(ALICE)}}}, "
                                   f"{{name: bob, team: blue, sha256: {hash_key(BOB)}}}]\n")
    return config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("responses")
    with FakeCloud() as cloud, Gateway(_config(tmp, cloud.url), ENV, workers=2) as gw:
        yield gw, cloud


def _client(gw: Gateway, key: str = ALICE) -> openai.OpenAI:
    return gw.client(key)


def _ask(gw: Gateway, model: str, text: str, previous: str | None = None, *, stream: bool = False, key: str = ALICE,
         **extra: object) -> tuple[str, str, httpx.Headers]:
    """One turn: (the response id, its text, the answer's headers)."""
    client = _client(gw, key)
    args = {"model": model, "input": text, **({"previous_response_id": previous} if previous else {}), **extra}
    if not stream:
        raw = client.responses.with_raw_response.create(**args)
        response = raw.parse()
        return response.id, response.output_text, raw.headers
    with client.responses.with_streaming_response.create(stream=True, **args) as raw:
        completed = [event.response for event in raw.parse() if event.type == "response.completed"]
        headers = raw.headers
    (response,) = completed
    return response.id, response.output_text, headers


def _local_received(gw: Gateway, marker: str) -> list[dict]:
    return [body for body in gw.received("local-text") if marker in json.dumps(body)]


def _cloud_received(cloud: FakeCloud, marker: str) -> list[dict]:
    return [r.body for r in cloud.requests if marker in json.dumps(r.body)]


def _error(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


# ---- chains ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_three_turn_chain_on_a_local_model_sends_it_the_whole_conversation(setup, stream):
    gw, _ = setup
    tag = f"local {stream}"
    first, first_text, _ = _ask(gw, "auto", f"Name a colour ({tag})", stream=stream)
    second, second_text, _ = _ask(gw, "auto", f"Another one ({tag})", first, stream=stream)
    third, third_text, headers = _ask(gw, "auto", f"And a third ({tag})", second, stream=stream)
    assert all(text.startswith(LOCAL) for text in (first_text, second_text, third_text))
    assert headers["x-litellm-model-group"] == "local-text"
    (received,) = _local_received(gw, f"And a third ({tag})")
    sent = json.dumps(received["input"])
    # Every earlier turn, the question and the model's answer, then the new question.
    for part in (f"Name a colour ({tag})", first_text, f"Another one ({tag})", second_text, f"And a third ({tag})"):
        assert json.dumps(part)[1:-1] in sent
    assert "previous_response_id" not in received


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("model, served_by", [("gpt-4o", GPT), ("claude-sonnet", SONNET)], ids=["openai", "anthropic"])
def test_a_three_turn_chain_on_a_cloud_model_sends_it_the_whole_conversation(setup, model, served_by, stream):
    gw, cloud = setup
    tag = f"{model} {stream}"
    first, first_text, _ = _ask(gw, model, f"Name a city ({tag})", stream=stream)
    second, second_text, _ = _ask(gw, model, f"Another city ({tag})", first, stream=stream)
    _, third_text, _ = _ask(gw, model, f"A third city ({tag})", second, stream=stream)
    assert all(text.startswith(served_by) for text in (first_text, second_text, third_text))
    (received,) = _cloud_received(cloud, f"A third city ({tag})")
    sent = json.dumps(received)
    for part in (f"Name a city ({tag})", first_text, f"Another city ({tag})", second_text):
        assert json.dumps(part)[1:-1] in sent
    assert "previous_response_id" not in received


def test_a_chain_crosses_a_fallback_and_the_fallback_gets_the_whole_conversation(setup):
    gw, cloud = setup
    first, first_text, _ = _ask(gw, "local-text", "Start on the local model (fallback)")
    assert first_text.startswith(LOCAL)
    # flaky-500 fails; its fallback, gpt-4o, serves the turn.
    second, second_text, headers = _ask(gw, "flaky-500", "Go on after a failure (fallback)", first)
    assert headers["x-litellm-model-group"] == "gpt-4o" and second_text.startswith(GPT)
    (received,) = [b for b in _cloud_received(cloud, "Go on after a failure (fallback)") if b["model"] == "gpt-4o"]
    assert "Start on the local model (fallback)" in json.dumps(received) and json.dumps(first_text)[1:-1] in json.dumps(received)
    _, third_text, _ = _ask(gw, "auto", "And back to auto (fallback)", second)
    (back,) = _local_received(gw, "And back to auto (fallback)")
    assert third_text.startswith(LOCAL) and json.dumps(second_text)[1:-1] in json.dumps(back)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_chain_crosses_an_affinity_escalation_and_the_strong_model_gets_the_whole_conversation(setup, stream):
    gw, cloud = setup
    tag = f"escalation {stream}"
    first, first_text, headers = _ask(gw, "auto", f"hello ({tag})", stream=stream)
    assert headers["x-llm-router-reason"] == "default" and first_text.startswith(LOCAL)
    second, second_text, headers = _ask(gw, "auto", f"{COMPLEX} ({tag})", first, stream=stream)
    assert (headers["x-llm-router-reason"], headers["x-llm-router-model"]) == ("complex", "claude-sonnet")
    (escalated,) = _cloud_received(cloud, f"{COMPLEX} ({tag})")
    assert f"hello ({tag})" in json.dumps(escalated) and json.dumps(first_text)[1:-1] in json.dumps(escalated)
    # The follow-up alone rates simple: the conversation's remembered tier keeps it on the strong model.
    _, third_text, headers = _ask(gw, "auto", f"thanks ({tag})", second, stream=stream)
    assert (headers["x-llm-router-reason"], headers["x-llm-router-model"]) == ("affinity", "claude-sonnet")
    (kept,) = _cloud_received(cloud, f"thanks ({tag})")
    assert all(json.dumps(p)[1:-1] in json.dumps(kept) for p in (f"hello ({tag})", first_text, COMPLEX, second_text))


def test_a_client_cant_claim_to_continue_a_response_by_the_doors_own_header(setup):
    gw, _ = setup
    escalated, _, _ = _ask(gw, "auto", f"{COMPLEX} (claimed)")
    answer = httpx.post(gw.url + "/v1/responses", json={"model": "auto", "input": "thanks (claimed)"}, timeout=60,
                        headers={"authorization": f"Bearer {ALICE}", "x-llm-router-previous-response-id": escalated})
    assert answer.headers["x-llm-router-reason"] == "default"


def test_a_tool_round_trip_chained_by_previous_response_id_carries_the_call_and_its_result(setup):
    gw, cloud = setup
    tool = {"type": "function", "name": "weather", "description": "The weather", "parameters": {"type": "object", "properties": {}}}
    call_id, _, _ = _ask(gw, "gpt-4o", "Weather please (tool chain)", tools=[tool])
    response = _client(gw).responses.retrieve(call_id)
    (call,) = [item for item in response.output if item.type == "function_call"]
    _, text, _ = _ask(gw, "gpt-4o", [{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}], call_id, tools=[tool])
    assert "tool said: sunny" in text
    (received,) = [b for b in _cloud_received(cloud, "Weather please (tool chain)") if "function_call_output" in json.dumps(b)]
    assert [item.get("type") for item in received["input"]][-2:] == ["function_call", "function_call_output"]


# ---- what is kept, and for whom ---------------------------------------------------------------------


def test_store_false_keeps_nothing_and_chaining_to_it_is_a_clear_400(setup):
    gw, _ = setup
    response_id, _, _ = _ask(gw, "gpt-4o", "Forget me (store false)", store=False)
    with pytest.raises(openai.BadRequestError) as refused:
        _ask(gw, "gpt-4o", "Remember?", response_id)
    assert "store: false" in _error(refused.value)["message"] and _error(refused.value)["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        _client(gw).responses.retrieve(response_id)
    database = sqlite3.connect(gw.config.parent / "run" / "state.db")
    assert not any(b"Forget me (store false)" in (body or b"") for (body,) in database.execute("SELECT body FROM responses"))


def test_an_unknown_id_is_a_400_to_chain_to_and_a_404_to_read_or_delete(setup):
    gw, cloud = setup
    before = len(cloud.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        _ask(gw, "gpt-4o", "Continue what?", "resp_unknown0001")
    assert _error(refused.value)["message"] == "Previous response with id 'resp_unknown0001' not found."
    client = _client(gw)
    for read in (client.responses.retrieve, client.responses.delete, client.responses.input_items.list):
        with pytest.raises(openai.NotFoundError):
            read("resp_unknown0001")
    assert len(cloud.requests) == before


def test_another_keys_response_does_not_exist_for_a_key_and_the_master_key_sees_it(setup):
    gw, _ = setup
    response_id, text, _ = _ask(gw, "gpt-4o", "Alice's secret (other key)", key=ALICE)
    bob = _client(gw, BOB)
    with pytest.raises(openai.BadRequestError) as refused:
        _ask(gw, "gpt-4o", "Tell me Alice's secret", response_id, key=BOB)
    assert "not found" in _error(refused.value)["message"]
    for read in (bob.responses.retrieve, bob.responses.input_items.list, bob.responses.delete):
        with pytest.raises(openai.NotFoundError):
            read(response_id)
    assert _client(gw, MASTER).responses.retrieve(response_id).output_text == text
    assert _client(gw, ALICE).responses.retrieve(response_id).output_text == text


def test_a_kept_response_is_read_listed_and_deleted_from_the_store(setup):
    gw, _ = setup
    client = _client(gw)
    first, _, _ = _ask(gw, "gpt-4o", "One (read)")
    second, second_text, _ = _ask(gw, "local-text", "Two (read)", first)
    assert client.responses.retrieve(second).output_text == second_text
    items = client.responses.input_items.list(second, order="asc")
    assert [item.type for item in items.data] == ["message", "message", "message"]
    assert [item.role for item in items.data] == ["user", "assistant", "user"]
    newest_first = client.responses.input_items.list(second, limit=1)
    assert newest_first.data[0].content[0].text == "Two (read)" and newest_first.has_more
    deleted = httpx.delete(f"{gw.url}/v1/responses/{second}", headers={"authorization": f"Bearer {ALICE}"}, timeout=30)
    assert deleted.status_code == 200 and deleted.json() == {"id": second, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second)
    with pytest.raises(openai.BadRequestError):
        _ask(gw, "gpt-4o", "Three (read)", second)


def test_input_items_refuses_a_bad_limit_or_order_with_a_400(setup):
    gw, _ = setup
    response_id, _, _ = _ask(gw, "gpt-4o", "Listed (bad query)")
    for query in ("limit=0", "limit=101", "limit=ten", "order=sideways"):
        answer = gw.get(f"/v1/responses/{response_id}/input_items?{query}", key=ALICE)
        assert answer.status_code == 400 and answer.json()["error"]["param"] in ("limit", "order"), query


def test_a_chain_holds_across_the_workers_turn_after_turn(setup):
    """Two workers: with eight turns, both serve some; each turn finds the one before it, whoever kept it."""
    gw, _ = setup
    previous = None
    for n in range(8):
        previous, text, _ = _ask(gw, "auto", f"Turn {n} (workers)", previous)
        assert text.startswith(LOCAL)
    (last,) = _local_received(gw, "Turn 7 (workers)")
    assert all(f"Turn {n} (workers)" in json.dumps(last) for n in range(8))


def test_with_the_store_off_previous_response_id_goes_to_the_backend_and_nothing_is_kept(tmp_path, cloud):
    with Gateway(_config(tmp_path, cloud.url, "responses: false"), ENV) as gw:
        first, _, _ = _ask(gw, "gpt-4o", "Kept upstream only (store off)")
        # The fake cloud keeps it as OpenAI would, and LiteLLM sends the next turn to the same deployment.
        _, text, _ = _ask(gw, "gpt-4o", "Next (store off)", first)
        assert text.startswith(GPT)
        (received,) = _cloud_received(cloud, "Next (store off)")
        assert received["previous_response_id"] and received["input"] == "Next (store off)"
        local, _, _ = _ask(gw, "local-text", "Start locally (store off)")
        _ask(gw, "local-text", "Continue locally (store off)", local)
        # vLLM keeps nothing, so it refuses the id (and a fallback answers without the conversation): the bug the store fixes.
        (refused,) = _local_received(gw, "Continue locally (store off)")
        assert refused["previous_response_id"] and "Start locally (store off)" not in json.dumps(refused)
    assert sqlite3.connect(tmp_path / "run" / "state.db").execute("SELECT count(*) FROM responses").fetchone() == (0,)


# ---- in-process: what is read off an answer, the TTL, the bound -------------------------------------


def _sse(*events: dict) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def test_the_final_response_is_read_off_a_stream_before_the_chunk_that_ends_it_goes_out():
    completed = {"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "output": []}}
    stream = _sse({"type": "response.created", "response": {"id": "resp_1"}}, {"type": "response.output_text.delta", "delta": "hi"},
                  completed) + b"data: [DONE]\n\n"
    reader = AnswerReader(streamed=True)
    cut = stream.index(b"response.completed") + 5
    assert reader.feed(stream[:cut], last=False) is None
    assert reader.feed(stream[cut:], last=False) == completed["response"]
    assert reader.feed(b"", last=True) is None


def test_the_final_response_of_a_json_answer_is_read_once_its_body_is_whole():
    reader = AnswerReader(streamed=False)
    body = json.dumps({"id": "resp_2", "status": "completed", "output": []}).encode()
    assert reader.feed(body[:10], last=False) is None
    assert reader.feed(body[10:], last=True)["id"] == "resp_2"


def _store(tmp_path: Path, **settings: object) -> ResponseStore:
    return ResponseStore(StateDatabase(tmp_path / "state.db"), StoreSettings(**settings))


async def _keep_conversations(store: ResponseStore, caller: Caller, count: int) -> list[str]:
    """`count` one-turn conversations, one after the other; their response ids."""
    ids = []
    for n in range(count):
        turn = await store.expand({"input": f"turn {n}"}, caller)
        ids.append(f"resp_inprocess{n}")
        await store.keep(turn, {"id": ids[-1], "status": "completed", "output": [{"type": "message", "role": "assistant",
                                                                                  "content": [{"type": "output_text", "text": f"ok {n}"}]}]})
    return ids


def test_a_response_is_forgotten_after_the_ttl(tmp_path):
    store = _store(tmp_path, ttl_days=1.5 / 86_400)

    async def run() -> None:
        (kept,) = await _keep_conversations(store, MASTER_CALLER, 1)
        assert (await store.retrieve(kept, MASTER_CALLER))["id"] == kept
        await asyncio.sleep(1.6)
        with pytest.raises(ApiError) as gone:
            await store.retrieve(kept, MASTER_CALLER)
        assert gone.value.status == 404

    asyncio.run(run())


def test_past_max_responses_the_least_recently_used_are_forgotten_first(tmp_path):
    store = _store(tmp_path, max_responses=3)
    alice = Caller(Role.TEAM, TeamKey("alice", "red", hash_key(ALICE)))

    async def run() -> None:
        ids = await _keep_conversations(store, alice, 5)
        kept = [i for i in ids if await _exists(store, i, alice)]
        assert kept == ids[-3:]

    asyncio.run(run())


async def _exists(store: ResponseStore, response_id: str, caller: Caller) -> bool:
    try:
        await store.retrieve(response_id, caller)
    except ApiError:
        return False
    return True


def test_a_store_false_turn_is_kept_as_a_mark_only(tmp_path):
    store = _store(tmp_path)

    async def run() -> None:
        turn = Turn("master", None, [{"role": "user", "content": "secret words"}], store=False)
        await store.keep(turn, {"id": "resp_unstored", "status": "completed", "output": []})

    asyncio.run(run())
    rows = sqlite3.connect(tmp_path / "state.db").execute("SELECT stored, body FROM responses").fetchall()
    assert rows == [(0, None)]


def test_the_store_is_on_by_default_and_off_with_responses_false(tmp_path):
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    assert load_config(core_config(tmp_path / "on", "http://127.0.0.1:9")).settings.responses.enabled
    off = load_config(core_config(tmp_path / "off", "http://127.0.0.1:9", extra_llm_router="responses: false")).settings.responses
    assert not off.enabled and off.ttl_days == 30
