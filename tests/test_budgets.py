"""Budgets (issue 27, item 2): dollars per period for a key and for a team, held on every API.

Through a real gateway of two workers with the fake cloud (priced by LiteLLM's cost map) and a free
local model: answers carry what is left; past a budget a priced model by name is a 429 in the
caller's format that clients don't retry, `auto` goes to the free model with reason `budget`, and no
fallback hop goes from a free group to a priced one; a team's budget holds for all its keys; the
share used is a metric. In-process: periods reset at midnight in the configured time zone, and the
keys file and the command line read and write budgets.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from router_config.gateway_config import SpendLimit, SpendSettings, load_config
from router_plugins.budgets import REMAINING_HEADER, Budgets
from router_plugins.keys import KeyFileError, KeyStore, TeamKey, hash_key
from router_plugins.state.database import StateDatabase
from router_plugins.state.spend import SpendLedger, SpendRow
from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway
from tests.support.prompts import HARD
from tests.support.waiting import wait_until

MASTER = "sk-master-SENTINEL-budgets-0001"
ENV = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-budgets-openai-0001", "ANTHROPIC_API_KEY": "sk-ant-test-budgets-0001"}
ROOMY, BROKE, MATE_1, MATE_2 = (f"sk-llmr-{n}-SENTINEL-budgets-0001" for n in ("roomy", "broke", "mate1", "mate2"))
TINY = "0.000001/day"
"""Less than any priced request costs: one request spends it."""


def _config(tmp: Path, cloud_url: str) -> Path:
    config = core_config(tmp, cloud_url, keys_file=True)
    # `down` is free here (a local-priced group on a dead port) and falls back to gpt-4o, which is priced.
    lines = config.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "model: openai/fake-down" in line)
    lines.insert(at + 1, "    model_info: {price_per_million_tokens: {input: 0, output: 0}}")
    config.write_text("\n".join(lines) + "\n")
    (tmp / "keys.yaml").write_text(
        f"keys:\n"
        f"- {{name: roomy, team: red, sha256: {hash_key(ROOMY)}, budget: 100/month}}\n"
        f"- {{name: broke, team: red, sha256: {hash_key(BROKE)}, budget: {TINY}}}\n"
        f"- {{name: mate1, team: blue, sha256: {hash_key(MATE_1)}}}\n"
        f"- {{name: mate2, team: blue, sha256: {hash_key(MATE_2)}}}\n"
        f"teams: {{blue: {{budget: {TINY}}}}}\n")
    return config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("budgets")
    with FakeCloud() as cloud, Gateway(_config(tmp, cloud.url), ENV, workers=2) as gw:
        yield gw, cloud


def _chat(gw: Gateway, key: str, model: str, text: str = "hello", **extra: object) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": text}], **extra},
                      headers={"authorization": f"Bearer {key}"}, timeout=60)


def _spend(gw: Gateway, key: str) -> None:
    """One priced request, then wait until every worker sees it spent (the ledger row commits after the answer)."""
    assert _chat(gw, key, "gpt-4o").status_code == 200
    wait_until(lambda: all(_chat(gw, key, "gpt-4o").status_code == 429 for _ in range(4)), 20, "the budget to be spent")


@pytest.fixture(scope="module")
def broke(setup):
    gw, _ = setup
    _spend(gw, BROKE)
    return gw


# ---- before the budget runs out -------------------------------------------------------------------


def test_an_answer_carries_what_is_left_of_the_budget(setup):
    gw, _ = setup
    first = float(_chat(gw, ROOMY, "gpt-4o").headers[REMAINING_HEADER])
    assert 99.9 < first <= 100
    wait_until(lambda: float(_chat(gw, ROOMY, "local-text").headers[REMAINING_HEADER]) < first, 20, "the spend to be counted")


def test_a_key_without_a_budget_gets_no_remaining_header(setup):
    gw, _ = setup
    assert REMAINING_HEADER not in _chat(gw, MASTER, "gpt-4o").headers


def test_the_share_used_is_a_metric_by_key_name(setup):
    gw, _ = setup
    _chat(gw, ROOMY, "gpt-4o")
    scrape = httpx.get(gw.url + "/metrics/", headers={"authorization": f"Bearer {MASTER}"}, timeout=30).text
    (line,) = [l for l in scrape.splitlines() if l.startswith("llm_router_budget_used_ratio{") and 'name="roomy"' in l]
    assert 'scope="key"' in line and 0 < float(line.rsplit(" ", 1)[1]) < 0.01
    assert ROOMY not in scrape


# ---- past the budget ------------------------------------------------------------------------------


def test_a_priced_model_by_name_is_refused_with_openais_insufficient_quota(broke):
    answer = _chat(broke, BROKE, "gpt-4o")
    assert answer.status_code == 429 and answer.headers["x-should-retry"] == "false"
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    tomorrow = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).strftime("%Y-%m-%d 00:00 UTC")
    assert "broke" in error["message"] and TINY in error["message"] and tomorrow in error["message"]


def test_on_messages_the_refusal_is_anthropics_billing_error(broke):
    answer = httpx.post(broke.url + "/v1/messages", json={"model": "claude-sonnet", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]},
                        headers={"x-api-key": BROKE}, timeout=60)
    assert answer.status_code == 429 and answer.headers["x-should-retry"] == "false"
    assert answer.json()["type"] == "error" and answer.json()["error"]["type"] == "billing_error"


def test_on_responses_a_priced_model_is_refused_too(broke):
    answer = httpx.post(broke.url + "/v1/responses", json={"model": "gpt-4o", "input": "hi"}, headers={"authorization": f"Bearer {BROKE}"}, timeout=60)
    assert answer.status_code == 429 and answer.json()["error"]["code"] == "insufficient_quota"


def test_auto_goes_to_the_free_model_with_reason_budget(broke):
    answer = _chat(broke, BROKE, "auto", HARD)
    assert answer.status_code == 200, answer.text
    assert (answer.headers["x-llm-router-reason"], answer.headers["x-llm-router-model"]) == ("budget", "local-text")
    assert float(answer.headers[REMAINING_HEADER]) == 0


def test_explain_says_budget(broke):
    explained = httpx.post(broke.url + "/v1/router/explain", json={"model": "auto", "messages": [{"role": "user", "content": HARD}]},
                           headers={"authorization": f"Bearer {BROKE}"}, timeout=30).json()
    assert explained["reason"] == "budget" and explained["model"] == "local-text"


def test_a_free_model_by_name_still_answers(broke):
    assert _chat(broke, BROKE, "local-text").status_code == 200


def test_no_fallback_hop_goes_from_a_free_group_to_a_priced_one(broke, setup):
    _, cloud = setup
    before = len(cloud.requests_for("gpt-4o"))
    answer = _chat(broke, BROKE, "down")
    assert answer.status_code == 502 and "gpt-4o: over budget" in answer.json()["error"]["message"], answer.text
    assert len(cloud.requests_for("gpt-4o")) == before


def test_a_key_with_budget_left_is_not_held_back_by_another_keys(broke):
    assert _chat(broke, ROOMY, "gpt-4o").status_code == 200


def test_a_teams_budget_holds_for_all_its_keys(setup):
    gw, _ = setup
    _spend(gw, MATE_1)
    answer = _chat(gw, MATE_2, "gpt-4o")
    assert answer.status_code == 429 and "Team blue's budget" in answer.json()["error"]["message"]


def test_the_master_key_has_no_budget(broke):
    assert _chat(broke, MASTER, "gpt-4o").status_code == 200


# ---- periods --------------------------------------------------------------------------------------


def _ledger(tmp: Path, zone: str) -> SpendLedger:
    return SpendLedger(StateDatabase(tmp / "state.db"), SpendSettings(time_zone=zone))


def _row(at: float, cost: float) -> SpendRow:
    return SpendRow(request_id=f"r{at}", at=at, key_name="alice", team="red", api="chat", requested="gpt-4o", served="gpt-4o",
                    reason="explicit", status=200, stream=False, input_tokens=10, output_tokens=10, cost=cost, baseline=None, latency_ms=1.0)


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_a_budget_resets_at_midnight_in_the_configured_time_zone(tmp_path, period):
    import asyncio

    zone = ZoneInfo("America/New_York")
    ledger = _ledger(tmp_path, "America/New_York")
    # Thursday 2026-12-31, 23:30 in New York: the last half hour of a day, a week (from Monday 28th) and a month.
    spent_at = dt.datetime(2026, 12, 31, 23, 30, tzinfo=zone).timestamp()
    asyncio.run(ledger.record(_row(spent_at, 5.0)))
    config = load_config(core_config(tmp_path, "http://127.0.0.1:9"))
    budgets = Budgets(config, ledger, None)
    key = TeamKey("alice", "red", "x", budget=SpendLimit(usd=5, period=period))
    before = budgets.standing(key, now=spent_at + 60)
    assert before is not None and before.exhausted
    boundary = {"day": dt.datetime(2027, 1, 1, tzinfo=zone), "week": dt.datetime(2027, 1, 4, tzinfo=zone),
                "month": dt.datetime(2027, 1, 1, tzinfo=zone)}[period]
    assert before.resets_at == boundary
    after = budgets.standing(key, now=boundary.timestamp() + 1)
    assert after is not None and not after.exhausted and after.remaining == 5


def test_the_tighter_of_a_key_and_its_teams_budget_stands(tmp_path):
    import asyncio

    ledger = _ledger(tmp_path, "UTC")
    asyncio.run(ledger.record(_row(dt.datetime.now().timestamp(), 3.0)))
    keys = KeyStore(tmp_path / "keys.yaml")
    keys.set_team_budget("red", SpendLimit.model_validate("4/day"))
    budgets = Budgets(load_config(core_config(tmp_path, "http://127.0.0.1:9")), ledger, keys)
    standing = budgets.standing(TeamKey("alice", "red", "x", budget=SpendLimit.model_validate("10/month")))
    assert standing is not None and (standing.scope, standing.remaining) == ("team", 1.0)


# ---- the keys file and the command line -------------------------------------------------------------


@pytest.mark.parametrize("text,limit", [("50/month", (50.0, "month")), ("$2.5/day", (2.5, "day")), ("200 / week", (200.0, "week"))])
def test_a_budget_is_written_as_dollars_per_period(text, limit):
    parsed = SpendLimit.model_validate(text)
    assert (parsed.usd, parsed.period) == limit


@pytest.mark.parametrize("text", ["50", "50/year", "-5/day", "0/day", "fifty/month"])
def test_a_bad_budget_is_refused_with_the_form_to_write(text):
    with pytest.raises(ValueError, match="day|greater than 0"):
        SpendLimit.model_validate(text)


def test_a_bad_budget_in_the_keys_file_names_the_key_and_the_fix(tmp_path):
    (tmp_path / "keys.yaml").write_text("keys: [{name: alice, team: red, sha256: abc, budget: lots}]\n")
    with pytest.raises(KeyFileError, match=r"key 'alice': budget: .*llm-router keys budget alice"):
        KeyStore(tmp_path / "keys.yaml").all()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llm_router.cli", *args], capture_output=True, text=True, timeout=120)


def test_keys_add_and_keys_budget_set_change_and_remove_budgets(tmp_path):
    config = str(core_config(tmp_path, "http://127.0.0.1:9", keys_file=True))
    assert _cli("keys", "add", "alice", "--team", "red", "--budget", "50/month", "--config", config).returncode == 0
    store = KeyStore(tmp_path / "keys.yaml")
    assert [str(k.budget) for k in store.all()] == ["$50/month"]
    assert _cli("keys", "budget", "alice", "80/week", "--config", config).returncode == 0
    assert _cli("keys", "budget", "red", "200/month", "--team", "--config", config).returncode == 0
    assert [str(k.budget) for k in store.all()] == ["$80/week"] and str(store.team_budget("red")) == "$200/month"
    assert _cli("keys", "budget", "alice", "none", "--config", config).returncode == 0
    assert [k.budget for k in store.all()] == [None]


def test_keys_budget_on_an_unknown_key_says_so(tmp_path):
    config = str(core_config(tmp_path, "http://127.0.0.1:9", keys_file=True))
    done = _cli("keys", "budget", "nobody", "5/day", "--config", config)
    assert done.returncode == 1 and "no active key named 'nobody'" in done.stderr
