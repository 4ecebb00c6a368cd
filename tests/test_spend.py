"""The spend ledger and its reports (issue 27, items 1, 3 and 4).

Through a real gateway: every request on every inference API gets one row, whose
cost is exact against the fake cloud's token counts and LiteLLM's prices (a local model's configured
price, 0 by default), streamed or not, after a fallback too; `auto` requests carry what they would
have cost on routing.complex's first group. The rows hold no prompt and no key. Reports: the
`llm-router usage` command (while the gateway writes), GET /v1/router/usage (a team key sees its own
key's usage only) and Prometheus. In-process: periods, `--since`, retention. Durability under
SIGKILL and a gateway of two workers under load are at the end (slow); two Redis-backed replicas
in tests/test_replicas.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import litellm
import pytest

from router_config.gateway_config import ConfigError, SpendSettings, load_config
from router_plugins.access import MASTER as MASTER_CALLER
from router_plugins.accounting import Accounting
from router_plugins.keys import hash_key
from router_plugins.request_records import Decision, RequestRecord
from router_plugins.state import periods
from router_plugins.state.database import StateDatabase
from router_plugins.state.spend import SpendLedger, SpendRow
from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway
from tests.support.waiting import wait_until

MASTER = "sk-master-SENTINEL-spend-0001"
ALICE = "sk-llmr-alice-SENTINEL-spend-0001"
BOB = "sk-llmr-bob-SENTINEL-spend-0001"
ENV = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-spend-openai-0001", "ANTHROPIC_API_KEY": "sk-ant-test-spend-anthropic-0001"}
LOCAL_PRICE = (0.5, 1.5)
"""local-text's configured dollars per million input and output tokens (local-vision has none: 0)."""
# LiteLLM's names for the fake cloud's models in its cost map.
PRICED_AS = {"gpt-4o": "gpt-4o", "claude-sonnet": "claude-sonnet-4-5", "flaky-500": "gpt-4o"}
APIS = ("chat", "responses", "messages")


def _config(tmp: Path, cloud_url: str) -> Path:
    config = core_config(tmp, cloud_url, keys_file=True, extra_llm_router="spend: {retention_days: 30}")
    price = f"price_per_million_tokens: {{input: {LOCAL_PRICE[0]}, output: {LOCAL_PRICE[1]}}}"
    config.write_text(config.read_text().replace("max_input_tokens: 300}", f"max_input_tokens: 300, {price}}}"))
    (tmp / "keys.yaml").write_text(f"keys: [{{name: alice, team: red, sha256: {hash_key(ALICE)}}}, "
                                   f"{{name: bob, team: blue, sha256: {hash_key(BOB)}}}]\n")
    return config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spend")
    with FakeCloud() as cloud, Gateway(_config(tmp, cloud.url), ENV) as gw:
        yield gw, cloud


# ---- sending and reading -------------------------------------------------------------------------


def _body(api: str, model: str, text: str, stream: bool) -> tuple[str, dict]:
    if api == "chat":
        return "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    if api == "responses":
        return "/v1/responses", {"model": model, "input": text, "stream": stream}
    return "/v1/messages", {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}], "stream": stream}


def _send(gw: Gateway, api: str, model: str, text: str, *, stream: bool = False, key: str = ALICE) -> tuple[str, dict | None, httpx.Headers]:
    """One request: (LiteLLM's call id, the usage the client was told or None for a stream, the headers)."""
    path, body = _body(api, model, text, stream)
    headers = {"authorization": f"Bearer {key}"}
    if not stream:
        answer = httpx.post(gw.url + path, json=body, headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.headers["x-litellm-call-id"], answer.json()["usage"], answer.headers
    with httpx.stream("POST", gw.url + path, json=body, headers=headers, timeout=60) as answer:
        assert answer.status_code == 200
        raw = b"".join(answer.iter_bytes())
    assert any(end in raw for end in (b"[DONE]", b"message_stop", b"response.completed")), raw[-300:]  # the whole stream
    return answer.headers["x-litellm-call-id"], None, answer.headers


def _tokens(api: str, usage: dict) -> tuple[int, int]:
    if api == "chat":
        return usage["prompt_tokens"], usage["completion_tokens"]
    return usage["input_tokens"], usage["output_tokens"]


def _ledger(gw: Gateway) -> sqlite3.Connection:
    connection = sqlite3.connect(gw.config.parent / "run" / "state.db", timeout=10)
    connection.row_factory = sqlite3.Row
    return connection


def _row(gw: Gateway, call_id: str) -> sqlite3.Row:
    """The request's ledger row, once its callback (after the answer) has written it."""
    def read() -> sqlite3.Row | None:
        return _ledger(gw).execute("SELECT * FROM spend WHERE request_id = ?", (call_id,)).fetchone()
    return wait_until(read, 30, f"the ledger row of {call_id}")


def _price(model: str, tokens: tuple[int, int]) -> float:
    entry = litellm.model_cost[PRICED_AS[model]]
    return tokens[0] * entry["input_cost_per_token"] + tokens[1] * entry["output_cost_per_token"]


def _cli(gw: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_router.cli", "usage", *args, "--config", str(gw.config)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **ENV})


def _usage(gw: Gateway, key: str = MASTER, **query: str) -> httpx.Response:
    return httpx.get(gw.url + "/v1/router/usage", params=query, headers={"authorization": f"Bearer {key}"}, timeout=30)


# ---- what each request costs -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet"])
@pytest.mark.parametrize("api", APIS)
def test_spend_is_exact_against_the_upstreams_tokens_and_litellms_prices(setup, api, model, stream):
    gw, _ = setup
    text = f"What does this cost? ({api} {model} {stream})"
    twin_id, usage, _ = _send(gw, api, model, text)  # the fake answers the same text with the same counts
    tokens = _tokens(api, usage)
    call_id = _send(gw, api, model, text, stream=stream)[0] if stream else twin_id
    row = _row(gw, call_id)
    assert (row["input_tokens"], row["output_tokens"]) == tokens
    assert row["cost"] == pytest.approx(_price(model, tokens), rel=1e-9) and row["cost"] > 0
    assert (row["api"], row["requested"], row["served"], row["reason"], row["status"], row["stream"]) == (
        api, model, model, "explicit", 200, int(stream))
    assert (row["key_name"], row["team"], row["baseline"]) == ("alice", "red", None)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_after_a_fallback_the_request_costs_what_the_group_that_served_it_charges(setup, api, stream):
    gw, cloud = setup
    text = f"Fall back and count ({api} {stream})"
    _, usage, _ = _send(gw, api, "gpt-4o", text)
    call_id, _, headers = _send(gw, api, "flaky-500", text, stream=stream)
    assert headers["x-litellm-model-group"] == "gpt-4o"
    row = _row(gw, call_id)
    assert (row["requested"], row["served"], row["status"]) == ("flaky-500", "gpt-4o", 200)
    assert row["cost"] == pytest.approx(_price("gpt-4o", _tokens(api, usage)), rel=1e-9)
    assert _ledger(gw).execute("SELECT count(*) FROM spend WHERE request_id = ?", (call_id,)).fetchone()[0] == 1


@pytest.mark.parametrize("api", APIS)
def test_a_local_model_costs_its_configured_price_and_auto_records_what_the_complex_group_would_have_cost(setup, api):
    gw, _ = setup
    call_id, usage, headers = _send(gw, api, "auto", f"hello local ({api})")
    assert headers["x-litellm-model-group"] == "local-text"
    tokens = _tokens(api, usage)
    row = _row(gw, call_id)
    assert (row["requested"], row["served"], row["reason"]) == ("auto", "local-text", "default")
    assert row["cost"] == pytest.approx((tokens[0] * LOCAL_PRICE[0] + tokens[1] * LOCAL_PRICE[1]) / 1e6, rel=1e-9)
    # routing.complex's first group is claude-sonnet: the same tokens at its price.
    assert row["baseline"] == pytest.approx(_price("claude-sonnet", tokens), rel=1e-9)


def test_a_local_model_without_a_price_costs_nothing(setup):
    gw, _ = setup
    call_id, usage, _ = _send(gw, "chat", "local-vision", "hello unpriced")
    row = _row(gw, call_id)
    assert row["cost"] == 0.0 and row["input_tokens"] == usage["prompt_tokens"] > 0


def test_a_failed_request_is_recorded_with_its_status_and_no_cost(setup):
    gw, _ = setup
    answer = httpx.post(gw.url + "/v1/chat/completions", json={"model": "dead-end", "messages": [{"role": "user", "content": "fail"}]},
                        headers={"authorization": f"Bearer {BOB}"}, timeout=60)
    assert answer.status_code == 502
    row = _row(gw, answer.headers["x-litellm-call-id"])
    assert (row["status"], row["cost"], row["served"], row["key_name"]) == (502, 0.0, "dead-end", "bob")


@pytest.mark.parametrize("path, body, api", [
    ("/v1/completions", {"model": "gpt-4o", "prompt": "complete me"}, "completions"),
    ("/v1/embeddings", {"model": "gpt-4o", "input": "embed me"}, "embeddings"),
    ("/chat/completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "an alias, unversioned"}]}, "chat"),
])
def test_every_inference_route_is_recorded(setup, path, body, api):
    gw, _ = setup
    answer = httpx.post(gw.url + path, json=body, headers={"authorization": f"Bearer {ALICE}"}, timeout=60)
    assert answer.status_code == 200, answer.text
    row = _row(gw, answer.headers["x-litellm-call-id"])
    assert (row["api"], row["requested"], row["served"]) == (api, body["model"], "gpt-4o")


def test_the_ledger_holds_no_prompt_text_and_no_key(setup):
    gw, _ = setup
    secret = "zebra-SENTINEL-ledger-prompt"
    ids = [_send(gw, api, model, f"{secret} {api}", key=key)[0]
           for api, model, key in (("chat", "gpt-4o", ALICE), ("messages", "claude-sonnet", BOB), ("chat", "auto", MASTER))]
    for call_id in ids:
        _row(gw, call_id)
    ledger = _ledger(gw)
    dumped = "\n".join(line for line in ledger.iterdump() if not line.startswith(('INSERT INTO "responses"', "INSERT INTO responses")))
    for forbidden in (secret, ALICE, BOB, MASTER, hash_key(ALICE), hash_key(BOB), ENV["OPENAI_API_KEY"]):
        assert forbidden not in dumped
    # Chat and Messages are never stored anywhere in the database: its files don't hold the prompt at all.
    for path in (gw.config.parent / "run").glob("state.db*"):
        assert secret.encode() not in path.read_bytes()


# ---- reports -------------------------------------------------------------------------------------


def test_a_team_key_sees_only_its_own_usage_and_the_master_key_sees_everyones(setup):
    gw, _ = setup
    for key in (ALICE, BOB):
        _row(gw, _send(gw, "chat", "gpt-4o", "report me", key=key)[0])
    everyone = {line["key"]: line for line in _usage(gw, by="key").json()["data"]}
    assert {"alice", "bob", "master"} <= set(everyone)
    for key, name, team in ((ALICE, "alice", "red"), (BOB, "bob", "blue")):
        assert [(line["key"], line["team"]) for line in _usage(gw, key, by="key").json()["data"]] == [(name, team)]
        for by in ("team", "model", "day"):
            total = _usage(gw, key, by=by).json()["total"]
            assert (total["requests"], total["cost_usd"]) == (everyone[name]["requests"], pytest.approx(everyone[name]["cost_usd"]))


def test_the_usage_command_reports_by_key_team_model_and_day_as_the_api_does(setup):
    gw, _ = setup
    _row(gw, _send(gw, "chat", "gpt-4o", "report by every dimension")[0])
    for by in ("key", "team", "model", "day"):
        exported = _cli(gw, "--by", by, "--format", "json")
        assert exported.returncode == 0, exported.stderr
        api = _usage(gw, by=by).json()
        assert json.loads(exported.stdout)["data"] == api["data"]
        table = _cli(gw, "--by", by)
        assert table.returncode == 0 and "TOTAL" in table.stdout and "COST USD" in table.stdout
    csv_lines = _cli(gw, "--by", "model", "--format", "csv").stdout.splitlines()
    assert csv_lines[0] == "model,requests,failures,input_tokens,output_tokens,cost_usd,saving_usd"
    assert any(line.startswith("gpt-4o,") for line in csv_lines[1:])


def test_the_usage_command_exports_every_request_without_text(setup):
    gw, _ = setup
    call_id = _send(gw, "responses", "gpt-4o", "export this request")[0]
    _row(gw, call_id)
    rows = json.loads(_cli(gw, "--by", "request", "--format", "json", "--since", "today").stdout)
    (row,) = [r for r in rows if r["request_id"] == call_id]
    assert set(row) == {"request_id", "at", "day", "key_name", "team", "api", "requested", "served", "reason", "status", "stream",
                        "input_tokens", "output_tokens", "cost", "baseline", "latency_ms"}
    assert "export this request" not in json.dumps(rows)


def test_auto_saving_is_reported_per_day_and_per_key(setup):
    gw, _ = setup
    row = _row(gw, _send(gw, "chat", "auto", "save me some money", key=BOB)[0])
    saving = row["baseline"] - row["cost"]
    assert saving > 0
    by_key = {line["key"]: line for line in _usage(gw, by="key").json()["data"]}
    by_day = _usage(gw, by="day").json()["data"]
    expected = _ledger(gw).execute("SELECT sum(baseline - cost) FROM spend WHERE key_name = 'bob' AND baseline IS NOT NULL").fetchone()[0]
    assert by_key["bob"]["saving_usd"] == pytest.approx(expected, abs=1e-6)
    assert by_day[-1]["day"] == periods.today(SpendSettings().zone).isoformat() and by_day[-1]["saving_usd"] >= saving - 1e-9


def test_prometheus_counts_spend_by_key_name_team_and_group_and_autos_baseline_never_a_key(setup):
    gw, _ = setup
    _row(gw, _send(gw, "chat", "gpt-4o", "count me in prometheus")[0])
    _row(gw, _send(gw, "chat", "auto", "and me too")[0])
    scrape = httpx.get(gw.url + "/metrics", headers={"authorization": f"Bearer {MASTER}"}, timeout=30, follow_redirects=True).text
    spend = {line.split("{", 1)[1].rsplit("}", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in scrape.splitlines()
             if line.startswith("llm_router_spend_usd_total{")}
    recorded = _ledger(gw).execute("SELECT sum(cost) FROM spend WHERE key_name = 'alice' AND team = 'red' AND served = 'gpt-4o'").fetchone()[0]
    assert spend['group="gpt-4o",key="alice",team="red"'] == pytest.approx(recorded)
    assert any(line.startswith('llm_router_auto_baseline_usd_total{key="alice",team="red"}') for line in scrape.splitlines())
    for secret in (ALICE, BOB, MASTER):
        assert secret not in scrape


@pytest.mark.parametrize("args, says", [
    (("--since", "7x"), "--since '7x' is not a period"),
    (("--since", "0d"), "covers no day"),
    (("--since", "2999-01-01"), "is in the future"),
])
def test_the_usage_command_refuses_a_bad_since_with_a_clear_error(setup, args, says):
    gw, _ = setup
    refused = _cli(gw, *args)
    assert refused.returncode == 2 and says in refused.stderr and refused.stdout == ""
    assert "Traceback" not in refused.stderr


def test_the_usage_api_refuses_bad_input_with_a_400(setup):
    gw, _ = setup
    for query, param in (({"since": "yesterday-ish"}, "since"), ({"by": "colour"}, "by")):
        answer = _usage(gw, **query)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, answer.text


def test_usage_needs_a_key(setup):
    gw, _ = setup
    assert httpx.get(gw.url + "/v1/router/usage", timeout=30).status_code == 401


# ---- in-process: periods, spend in a period, retention ------------------------------------------


def _row_at(at: float, key: str = "alice", team: str = "red", cost: float = 1.0, request_id: str | None = None) -> SpendRow:
    return SpendRow(request_id or f"r-{at}-{key}", at, key, team, "chat", "gpt-4o", "gpt-4o", "explicit", 200, False, 10, 5, cost, None, 1.0)


def _ledger_in(tmp_path: Path, **settings: object) -> SpendLedger:
    return SpendLedger(StateDatabase(tmp_path / "state.db"), SpendSettings(**settings))


def test_spend_in_a_day_a_week_from_monday_and_a_month_in_the_configured_time_zone(tmp_path):
    ledger = _ledger_in(tmp_path, time_zone="America/New_York")
    zone = ledger.settings.zone
    now = dt.datetime(2026, 12, 9, 12, tzinfo=zone).timestamp()  # a Wednesday

    def at(day: int, hour: int = 12) -> float:
        return dt.datetime(2026, 12, day, hour, tzinfo=zone).timestamp()

    async def record() -> None:
        for moment, cost in ((at(9), 1.0), (at(8), 2.0), (at(7, 0), 4.0), (at(6, 23), 8.0), (at(1, 0), 16.0),
                             (dt.datetime(2026, 11, 30, 23, tzinfo=zone).timestamp(), 32.0)):
            await ledger.record(_row_at(moment, cost=cost))
        await ledger.record(_row_at(at(9), key="bob", team="red", cost=64.0))

    asyncio.run(record())
    assert ledger.spent("key", "alice", "day", now) == 1.0
    assert ledger.spent("key", "alice", "week", now) == 1.0 + 2.0 + 4.0  # from Monday the 7th, 00:00 in New York
    assert ledger.spent("key", "alice", "month", now) == 1.0 + 2.0 + 4.0 + 8.0 + 16.0
    assert ledger.spent("team", "red", "day", now) == 65.0
    assert periods.current("week", zone, now).resets_at == dt.datetime(2026, 12, 14, tzinfo=zone)
    assert periods.current("month", zone, now).resets_at == dt.datetime(2027, 1, 1, tzinfo=zone)


def test_a_request_is_recorded_once_however_often_its_end_is_reported(tmp_path):
    config = load_config(core_config(tmp_path, "http://127.0.0.1:9"))
    ledger = SpendLedger(StateDatabase(tmp_path / "state.db"), config.settings.spend)
    accounting = Accounting(config, ledger)
    record = RequestRecord(requested="gpt-4o", decision=Decision("gpt-4o", "explicit"))
    kwargs = {"litellm_call_id": "the-one", "standard_logging_object": {
        "call_type": "acompletion", "model_group": "gpt-4o", "prompt_tokens": 10, "completion_tokens": 5, "response_cost": 1.0,
        "metadata": {"user_api_key_alias": "alice", "user_api_key_team_alias": "red"}}}

    async def report_twice() -> None:
        await accounting.succeeded(record, kwargs, None, None)
        await accounting.succeeded(record, kwargs, None, None)
        await accounting.failed(record, kwargs, MASTER_CALLER, 500)

    asyncio.run(report_twice())
    assert [r["request_id"] for r in ledger.requests(dt.date.today())] == ["the-one"]
    assert ledger.spent("key", "alice", "day") == 1.0


def test_rows_and_totals_older_than_the_retention_period_are_deleted(tmp_path):
    db = StateDatabase(tmp_path / "state.db")
    ledger = SpendLedger(db, SpendSettings(retention_days=30))
    now = time.time()

    async def record() -> None:
        await ledger.record(_row_at(now - 5 * 86_400))
        await ledger.record(_row_at(now))

    asyncio.run(record())
    ten_days_ago = dt.date.today() - dt.timedelta(days=10)
    assert ledger.report("day", ten_days_ago).total.requests == 2
    ledger.settings = SpendSettings(retention_days=3)  # as a reload of the config does
    db.maintain_now().result(30)  # as the writer thread does every few minutes
    assert ledger.report("day", ten_days_ago).total.requests == 1
    assert len(list(ledger.requests(ten_days_ago))) == 1


@pytest.mark.parametrize("since, first", [("1d", "2026-12-09"), ("7d", "2026-12-03"), ("2w", "2026-11-26"), ("today", "2026-12-09"),
                                          ("2026-12-01", "2026-12-01")])
def test_since_names_whole_days_ending_today(since, first):
    zone = SpendSettings().zone
    assert periods.parse_since(since, zone, dt.datetime(2026, 12, 9, 12, tzinfo=zone).timestamp()).isoformat() == first


def test_an_unknown_time_zone_is_refused_at_load_naming_the_key(tmp_path):
    config = core_config(tmp_path, "http://127.0.0.1:9", extra_llm_router="spend: {time_zone: Mars/Olympus}")
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert "llm_router.spend.time_zone" in str(refused.value) and "Mars/Olympus" in str(refused.value)


def test_a_negative_price_is_refused_at_load(tmp_path):
    config = core_config(tmp_path, "http://127.0.0.1:9")
    config.write_text(config.read_text().replace("max_input_tokens: 300}", "max_input_tokens: 300, price_per_million_tokens: {input: -1}}"))
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert "price_per_million_tokens.input" in str(refused.value)


# ---- a gateway of several workers under load, and SIGKILL -------------------------------------------


async def _load(url: str, total: int, concurrency: int, completed: list[tuple[str, float]], stop: asyncio.Event | None = None) -> int:
    """Chat requests to gpt-4o; each one answered is noted (call id, when). Returns how many were sent."""
    sent = 0
    queue = list(range(total))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while queue and not (stop and stop.is_set()):
            n = queue.pop()
            sent += 1
            body = {"model": "gpt-4o", "stream": n % 3 == 0, "messages": [{"role": "user", "content": f"load {n}"}]}
            try:
                async with client.stream("POST", url + "/v1/chat/completions", json=body) as answer:
                    raw = await answer.aread()
                    if answer.status_code == 200 and (b"[DONE]" in raw or not body["stream"]):
                        completed.append((answer.headers["x-litellm-call-id"], time.monotonic()))
            except httpx.HTTPError:
                return  # the gateway is gone

    async with httpx.AsyncClient(timeout=60, headers={"authorization": f"Bearer {ALICE}"}) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return sent


@pytest.mark.slow
def test_two_workers_under_load_record_every_request_once_while_usage_reads_the_ledger(tmp_path, cloud):
    with Gateway(_config(tmp_path, cloud.url), ENV, workers=2) as gw:
        completed: list[tuple[str, float]] = []
        readers: list[subprocess.CompletedProcess[str]] = []

        async def load_and_read() -> int:
            load = asyncio.ensure_future(_load(gw.url, 300, 16, completed))
            while not load.done():
                readers.append(await asyncio.to_thread(_cli, gw, "--by", "model", "--format", "json"))
            return await load

        assert asyncio.run(load_and_read()) == 300 == len(completed)
        assert readers and all(r.returncode == 0 and json.loads(r.stdout)["by"] == "model" for r in readers)
        ids = {call_id for call_id, _ in completed}
        wait_until(lambda: _ledger(gw).execute("SELECT count(*) FROM spend").fetchone()[0] == 300, 30, "every row")
        assert {r[0] for r in _ledger(gw).execute("SELECT request_id FROM spend")} == ids
        (model,) = _usage(gw, by="model").json()["data"]
        assert (model["model"], model["requests"]) == ("gpt-4o", 300)


@pytest.mark.slow
def test_sigkill_mid_load_loses_at_most_the_requests_in_flight(tmp_path, cloud):
    gw = Gateway(_config(tmp_path, cloud.url), ENV, workers=2).start()
    completed: list[tuple[str, float]] = []
    try:
        async def load_then_kill() -> tuple[int, float]:
            stop = asyncio.Event()
            load = asyncio.ensure_future(_load(gw.url, 100_000, 16, completed, stop))
            await asyncio.to_thread(wait_until, lambda: len(completed) >= 400, 120, "400 answers")
            assert gw.proc is not None
            os.killpg(gw.proc.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            stop.set()
            return await load, killed_at

        sent, killed_at = asyncio.run(load_then_kill())
    finally:
        gw.stop()
    database = sqlite3.connect(tmp_path / "run" / "state.db")
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    recorded = {r[0] for r in database.execute("SELECT request_id FROM spend")}
    answered = {call_id for call_id, _ in completed}
    lost = answered - recorded
    print(f"\nSIGKILL after {len(answered)} answers of {sent} sent: {len(recorded)} rows, {len(lost)} answered but not recorded")
    # In flight at the kill: the 16 requests being answered, and those answered whose callback (after the
    # answer) had not yet committed. Any answered a second before the kill was recorded.
    assert not {call_id for call_id, at in completed if at < killed_at - 1.0} - recorded
    assert len(lost) <= 16, f"{len(lost)} of {len(answered)} answered requests missing"
    assert len(recorded) <= sent
    totals = database.execute("SELECT sum(requests) FROM usage_days").fetchone()[0]
    assert totals == len(recorded)  # rows and daily totals are written together or not at all
