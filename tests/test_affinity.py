"""One conversation, one tier: a conversation `auto` escalated keeps its tier for its follow-ups.

In-process: how a conversation is keyed on each API, what the table of tiers keeps and forgets.
Through real gateways: chat, Responses and Messages each get a complex opening and three short
follow-ups resending the history; a follow-up that lands on another gateway process of the machine
keeps the tier; an entry expires after the configured idle time; a client's session id wins over
the content; explicit names ignore affinity; and no prompt text is kept anywhere. The two
Redis-backed replicas are in tests/test_replicas.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from router_config.gateway_config import AffinitySettings, load_config
from router_plugins.affinity import SESSION_HEADER, ConversationTiers, conversation_key
from router_plugins.conversation import Shape, read
from router_plugins.gateway import Gateway as InProcessGateway
from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway
from tests.support.waiting import wait_until

# LiteLLM's scorer rates this COMPLEX; each follow-up alone rates SIMPLE. The live tests route by those
# tiers alone (as bench/affinity.py does): the difficulty score reads the first user turn with the
# last, so a hard opening would lift its follow-ups without affinity's help.
OPENING = "Design a scalable distributed architecture: analyze the algorithm, prove correctness, optimize performance, and compare trade-offs"
FOLLOW_UPS = ("thanks", "now rename x to y", "and add a test")
SYSTEM = "You are a careful engineer."
MASTER = "sk-master-affinity-0001"


# ---- the key --------------------------------------------------------------------------------------


def _bodies(first_user: str, follow_up: str | None = None) -> dict[Shape, dict]:
    """The same conversation on each API: a system prompt, the first user turn, and optionally a follow-up."""
    chat = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": first_user}]
    responses = [{"role": "user", "content": first_user}]
    messages = [{"role": "user", "content": first_user}]
    if follow_up is not None:
        chat += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": follow_up}]
        responses += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": follow_up}]
        messages += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": follow_up}]
    return {Shape.CHAT: {"model": "auto", "messages": chat},
            Shape.RESPONSES: {"model": "auto", "instructions": SYSTEM, "input": responses},
            Shape.MESSAGES: {"model": "auto", "max_tokens": 100, "system": SYSTEM, "messages": messages}}


def _key(body: dict, shape: Shape, headers: dict | None = None):
    return conversation_key(body, shape, read(body, shape), headers or {})


def test_the_content_key_is_the_same_on_every_api_and_as_the_conversation_grows():
    keys = {_key(body, shape) for shape, body in _bodies(OPENING).items()}
    keys |= {_key(body, shape) for shape, body in _bodies(OPENING, "thanks").items()}
    assert len(keys) == 1 and next(iter(keys)).source == "content"


def test_another_first_turn_is_another_conversation():
    assert _key(_bodies(OPENING)[Shape.CHAT], Shape.CHAT) != _key(_bodies("hello there")[Shape.CHAT], Shape.CHAT)


@pytest.mark.parametrize("shape, field, value, source", [
    (Shape.MESSAGES, "metadata", {"user_id": '{"session_id": "abc"}'}, "metadata.user_id"),
    (Shape.CHAT, "prompt_cache_key", "session-abc", "prompt_cache_key"),
    (Shape.RESPONSES, "prompt_cache_key", "session-abc", "prompt_cache_key"),
    (Shape.MESSAGES, "metadata", {"user_id": "user_3f2a_account_9c1d_session_77e0"}, "metadata.user_id"),
    (Shape.RESPONSES, "previous_response_id", "resp_abc", "previous_response_id"),
])
def test_a_session_identity_in_the_body_is_the_key(shape, field, value, source):
    one = _key({**_bodies(OPENING)[shape], field: value}, shape)
    other = _key({**_bodies("something else entirely")[shape], field: value}, shape)
    assert one == other and one.source == source


@pytest.mark.parametrize("shape, field, alice, bob", [
    (Shape.CHAT, "user", "alice", "bob"),
    (Shape.RESPONSES, "user", "alice", "bob"),
    (Shape.MESSAGES, "metadata", {"user_id": "alice"}, {"user_id": "bob"}),
    (Shape.MESSAGES, "metadata", {"user_id": '{"device_id": "d-alice", "session_id": ""}'}, {"user_id": '{"device_id": "d-bob"}'}),
])
def test_a_field_that_names_a_person_only_scopes_the_conversation(shape, field, alice, bob):
    first = _key({**_bodies(OPENING)[shape], field: alice}, shape)
    later_turn = _key({**_bodies(OPENING, "thanks")[shape], field: alice}, shape)
    other_conversation = _key({**_bodies("something else entirely")[shape], field: alice}, shape)
    other_person = _key({**_bodies(OPENING)[shape], field: bob}, shape)
    assert first == later_turn and first.source.endswith("+ content")
    assert other_conversation != first and other_person != first


def test_the_session_header_wins_over_every_other_identity():
    body = {**_bodies(OPENING)[Shape.CHAT], "prompt_cache_key": "k", "user": "alice"}
    key = _key(body, Shape.CHAT, {SESSION_HEADER: "s-1"})
    assert key.source == SESSION_HEADER and key == _key(_bodies("other")[Shape.CHAT], Shape.CHAT, {"X-Session-Id": "s-1"})


def test_the_key_is_a_hash_that_holds_no_prompt_text():
    key = _key(_bodies(OPENING)[Shape.CHAT], Shape.CHAT)
    assert len(key.digest) == 32 and "architecture" not in key.digest


# ---- the table -----------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_tier_is_kept_never_lowered_and_raised_by_a_higher_one():
    tiers = ConversationTiers(AffinitySettings())
    tiers.remember("c", "complex")
    tiers.remember("c", "default")
    assert tiers.recall("c") == "complex"
    tiers.remember("c", "vision")
    assert tiers.recall("c") == "vision"


def test_default_is_not_remembered():
    tiers = ConversationTiers(AffinitySettings())
    tiers.remember("c", "default")
    assert tiers.recall("c") is None and len(tiers) == 0


def test_an_entry_is_forgotten_after_the_idle_ttl_and_each_turn_refreshes_it():
    clock = _Clock()
    tiers = ConversationTiers(AffinitySettings(ttl_s=10), clock)
    tiers.remember("c", "complex")
    clock.now = 9
    tiers.remember("c", "default")  # a turn of the conversation: refreshed
    clock.now = 18
    assert tiers.recall("c") == "complex"
    clock.now = 29
    assert tiers.recall("c") is None


def test_the_table_is_bounded_under_a_flood_of_conversations():
    tiers = ConversationTiers(AffinitySettings(max_conversations=100))
    for i in range(10_000):
        tiers.remember(f"c{i}", "complex")
    assert len(tiers) == 100 and tiers.recall("c9999") == "complex" and tiers.recall("c0") is None


def test_what_one_process_learns_is_shared_and_what_others_share_is_learned():
    told: list[tuple[str, str]] = []
    here, there = ConversationTiers(AffinitySettings()), ConversationTiers(AffinitySettings())
    here.share_with(lambda conversation, tier: told.append((conversation, tier)))
    here.remember("c", "complex")
    here.remember("c", "complex")  # a refresh soon after: not told again
    assert told == [("c", "complex")]
    there.learn(*told[0])
    assert there.recall("c") == "complex"


# ---- routing, in-process --------------------------------------------------------------------------


@pytest.fixture
def routing(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-affinity-0001")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-affinity-0001")
    return InProcessGateway(load_config(_config(tmp_path, "http://127.0.0.1:9")))


def _route(gw: InProcessGateway, body: dict, shape: Shape):
    from router_plugins.access import MASTER as MASTER_CALLER

    decision = gw.router.decide(body, shape, gw.availability_for(MASTER_CALLER), gw.conversations, {})
    if decision.conversation is not None and decision.tier is not None:
        gw.conversations.remember(decision.conversation.digest, decision.tier)
    return decision


@pytest.mark.parametrize("shape", list(Shape))
def test_follow_ups_stay_on_the_openings_tier_in_process(routing, shape):
    opening = _route(routing, _bodies(OPENING)[shape], shape)
    assert (opening.reason, opening.model) == ("complex", "claude-sonnet")
    for follow_up in FOLLOW_UPS:
        decision = _route(routing, _bodies(OPENING, follow_up)[shape], shape)
        assert (decision.reason, decision.model, decision.remembered) == ("affinity", "claude-sonnet", "complex")


def test_an_image_later_in_the_conversation_still_escalates_and_is_remembered(routing):
    _route(routing, _bodies(OPENING)[Shape.CHAT], Shape.CHAT)
    body = _bodies(OPENING, "look")[Shape.CHAT]
    body["messages"][-1]["content"] = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    assert _route(routing, body, Shape.CHAT).reason == "vision"
    assert _route(routing, _bodies(OPENING, "thanks")[Shape.CHAT], Shape.CHAT).tier == "vision"


def test_with_affinity_off_each_turn_is_routed_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-affinity-0001")
    config = _config(tmp_path, "http://127.0.0.1:9")
    config.write_text(config.read_text().replace("affinity: {ttl_s: 3600}", "affinity: false"))
    gw = InProcessGateway(load_config(config))
    assert _route(gw, _bodies(OPENING)[Shape.CHAT], Shape.CHAT).reason == "complex"
    decision = _route(gw, _bodies(OPENING, "thanks")[Shape.CHAT], Shape.CHAT)
    assert decision.reason == "default" and decision.conversation is None


# ---- through real gateways -----------------------------------------------------------------------

PATHS = {Shape.CHAT: "/v1/chat/completions", Shape.RESPONSES: "/v1/responses", Shape.MESSAGES: "/v1/messages"}


def _config(tmp: Path, cloud_url: str, ttl_s: float = 3600) -> Path:
    config = core_config(tmp, cloud_url)
    config.write_text(config.read_text().replace("complexity: {max_chars: 2000}", "complexity: {max_chars: 2000, tiers: [COMPLEX, REASONING]}\n"
                                                 f"  difficulty: {{threshold: 1.0}}\n  affinity: {{ttl_s: {ttl_s}}}"))
    return config


@pytest.fixture(scope="module")
def cloud():
    with FakeCloud() as fake:
        yield fake


def _env() -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test-affinity-0001", "ANTHROPIC_API_KEY": "sk-ant-test-affinity-0001", "LLM_ROUTER_MASTER_KEY": MASTER}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, cloud):
    with Gateway(_config(tmp_path_factory.mktemp("affinity"), cloud.url), _env(), workers=2) as gw:
        yield gw


def _send(gw: Gateway, shape: Shape, body: dict, headers: dict | None = None) -> httpx.Response:
    response = httpx.post(gw.url + PATHS[shape], json=body, timeout=60, headers={"authorization": f"Bearer {MASTER}", **(headers or {})})
    assert response.status_code == 200, response.text
    return response


def _routed(response: httpx.Response) -> tuple[str, str]:
    return response.headers["x-llm-router-reason"], response.headers["x-llm-router-model"]


def _explain(gw: Gateway, body: dict, headers: dict | None = None) -> dict:
    return httpx.post(gw.url + "/v1/router/explain", json=body, timeout=30, headers={"authorization": f"Bearer {MASTER}", **(headers or {})}).json()


@pytest.mark.parametrize("shape", list(Shape))
def test_a_complex_opening_keeps_its_tier_for_three_follow_ups(gateway, shape):
    opening = f"{OPENING} ({shape.value} gateway)"
    assert _routed(_send(gateway, shape, _bodies(opening)[shape])) == ("complex", "claude-sonnet")
    for follow_up in FOLLOW_UPS:
        assert _routed(_send(gateway, shape, _bodies(opening, follow_up)[shape])) == ("affinity", "claude-sonnet")


@pytest.mark.parametrize("shape", list(Shape))
def test_a_new_conversation_with_a_short_prompt_stays_default(gateway, shape):
    assert _routed(_send(gateway, shape, _bodies(f"hello ({shape.value})")[shape])) == ("default", "local-text")


def test_a_client_session_id_wins_over_the_content(gateway):
    session = {SESSION_HEADER: "session-affinity-1"}
    _send(gateway, Shape.CHAT, _bodies(f"{OPENING} (session)")[Shape.CHAT], session)
    assert _routed(_send(gateway, Shape.CHAT, _bodies("an unrelated short question")[Shape.CHAT], session))[0] == "affinity"
    other = {SESSION_HEADER: "session-affinity-2"}
    assert _routed(_send(gateway, Shape.CHAT, _bodies(f"{OPENING} (session)", "thanks")[Shape.CHAT], other))[0] == "default"


def test_a_responses_turn_naming_its_previous_response_keeps_the_tier(gateway):
    first = _send(gateway, Shape.RESPONSES, _bodies(f"{OPENING} (chained)")[Shape.RESPONSES])
    follow_up = {"model": "auto", "previous_response_id": first.json()["id"], "input": "thanks"}
    assert wait_until(lambda: _explain(gateway, follow_up)["reason"] == "affinity", 10, "the response to remember its tier")
    assert _routed(_send(gateway, Shape.RESPONSES, follow_up)) == ("affinity", "claude-sonnet")


def test_an_explicit_name_ignores_affinity(gateway):
    _send(gateway, Shape.CHAT, _bodies(f"{OPENING} (explicit)")[Shape.CHAT])
    body = {**_bodies(f"{OPENING} (explicit)", "thanks")[Shape.CHAT], "model": "local-text"}
    assert _routed(_send(gateway, Shape.CHAT, body)) == ("explicit", "local-text")


def test_explain_says_when_affinity_decided(gateway):
    _send(gateway, Shape.CHAT, _bodies(f"{OPENING} (explain)")[Shape.CHAT])
    explained = _explain(gateway, _bodies(f"{OPENING} (explain)", "thanks")[Shape.CHAT])
    assert explained["reason"] == "affinity"
    assert explained["affinity"] == {"key_from": "content", "remembered": "complex", "tier": "complex"}


def test_affinity_hits_are_counted_in_prometheus(gateway):
    _send(gateway, Shape.CHAT, _bodies(f"{OPENING} (metrics)")[Shape.CHAT])
    _send(gateway, Shape.CHAT, _bodies(f"{OPENING} (metrics)", "thanks")[Shape.CHAT])
    scrape = httpx.get(gateway.url + "/metrics", headers={"authorization": f"Bearer {MASTER}"}, timeout=30, follow_redirects=True).text
    hits = [line for line in scrape.splitlines() if line.startswith("llm_router_affinity_hits_total{")]
    assert hits and float(hits[0].rsplit(" ", 1)[1]) >= 1


def test_a_follow_up_on_another_gateway_process_of_the_machine_keeps_the_tier(tmp_path, cloud):
    """A second gateway with the same config shares the machine's owner: what one process routed, the other knows."""
    config = _config(tmp_path, cloud.url)
    with Gateway(config, _env()) as first, Gateway(config, _env()) as second:
        _send(first, Shape.MESSAGES, _bodies(f"{OPENING} (two processes)")[Shape.MESSAGES])
        follow_up = _bodies(f"{OPENING} (two processes)", "thanks")[Shape.MESSAGES]
        wait_until(lambda: _explain(second, follow_up)["reason"] == "affinity", 10, "the other process to learn the tier")
        assert _routed(_send(second, Shape.MESSAGES, follow_up)) == ("affinity", "claude-sonnet")


def test_a_conversation_is_forgotten_after_the_configured_idle_time(tmp_path, cloud):
    with Gateway(_config(tmp_path, cloud.url, ttl_s=2), _env()) as gw:
        _send(gw, Shape.CHAT, _bodies(f"{OPENING} (expiry)")[Shape.CHAT])
        follow_up = _bodies(f"{OPENING} (expiry)", "thanks")[Shape.CHAT]
        assert _explain(gw, follow_up)["reason"] == "affinity"
        wait_until(lambda: _explain(gw, follow_up)["reason"] == "default", 10, "the idle conversation to be forgotten")


def test_no_prompt_text_is_kept_in_the_owners_state(gateway):
    marker = "zebra-marker-affinity"
    _send(gateway, Shape.CHAT, _bodies(f"{OPENING} {marker}")[Shape.CHAT])
    status = httpx.get(gateway.url + "/v1/router/status", headers={"authorization": f"Bearer {MASTER}"}, timeout=30).text
    assert marker not in status
    state = gateway.config.parent / "run"
    assert all(marker not in path.read_text(errors="replace") for path in state.rglob("*") if path.is_file())
