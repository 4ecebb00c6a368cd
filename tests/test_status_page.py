"""The status page in a real browser: Debian's headless Chromium, driven by Selenium through Debian's
chromedriver (nothing is downloaded). The page asks for the master key, shows backends, servers and
routing decisions, and starts a server with a click; it answers a key-less or team-key request as the
API does. Its charts (issue 27.5): the SVGs GET /v1/router/status/charts draws hold what the spend
ledger holds, bucket by bucket, and the page shows them for the last hour and the last day; the
drawing functions (router_plugins/charts.py) are checked in-process at the end."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from router_config.gateway_config import SpendSettings
from router_plugins import charts
from router_plugins.keys import hash_key
from router_plugins.state.database import StateDatabase
from router_plugins.state.spend import Bucket, GroupTotals, Series, SpendLedger, SpendRow
from tests.support.configs import core_config, set_spec
from tests.support.gateway import Gateway
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

MASTER = "sk-master-SENTINEL-page-0001"
ALICE = "sk-llmr-alice-SENTINEL-page-0001"
"""A key with a budget of $1 a day, in team red, whose budget is $2 a week."""
PROMPT = "a prompt the page must never show 7f3a"
REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "status-page.png"
CHARTS_SCREENSHOT = REPO / "docs" / "status-charts.png"
"""Shown in the README; rewritten when LLM_ROUTER_UPDATE_SCREENSHOT=1."""


@pytest.fixture(scope="module")
def gateway(cloud, tmp_path_factory) -> Iterator[tuple[Gateway, str]]:
    config = core_config(tmp_path_factory.mktemp("page"), cloud.url, keys_file=True)
    set_spec(config, "local-text", flags=("--start-delay", "2"))  # long enough to see it starting
    added = subprocess.run([sys.executable, "-m", "llm_router.cli", "keys", "add", "viewer", "--team", "t", "--config", str(config)],
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    keys_file = config.parent / "keys.yaml"
    keys = yaml.safe_load(keys_file.read_text())
    keys["keys"].append({"name": "alice", "team": "red", "sha256": hash_key(ALICE), "budget": "1/day"})
    keys["teams"] = {"red": {"budget": "2/week"}}
    keys_file.write_text(yaml.safe_dump(keys))
    env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-page-0001", "ANTHROPIC_API_KEY": "sk-ant-test-page-0001"}
    with Gateway(config, env) as gw:
        yield gw, added.stdout.strip()


@pytest.fixture
def browser(tmp_path) -> Iterator[webdriver.Chrome]:
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    try:
        yield driver
    finally:
        driver.quit()


# The page redraws its tables every second: each read and click is one script, so that no element
# found in one step is gone by the next.

def _state(driver: webdriver.Chrome, server: str) -> str | None:
    return driver.execute_script(f'const c = document.querySelector(\'#servers tr[data-server="{server}"] td.state\'); return c && c.textContent;')


def _text(driver: webdriver.Chrome, element_id: str) -> str:
    return driver.execute_script(f'return document.getElementById("{element_id}").innerText;')


def _click(driver: webdriver.Chrome, server: str, action: str) -> None:
    driver.execute_script(f'document.querySelector(\'#servers tr[data-server="{server}"] button[data-action="{action}"]\').click();')


def test_a_click_starts_a_server_and_the_page_shows_it_starting_then_ready(gateway, browser, tmp_path):
    gw, _ = gateway
    browser.get(f"{gw.url}/router/ui")
    browser.find_element(By.ID, "key").send_keys(MASTER)
    browser.find_element(By.ID, "use-key").click()
    wait_until(lambda: _state(browser, "local-text") == "stopped", 20, "the page to show local-text stopped")
    _click(browser, "local-text", "start")
    seen = ["stopped"]

    def ready() -> bool:
        state = _state(browser, "local-text")
        if state and state != seen[-1]:
            seen.append(state)
        return state == "ready"

    wait_until(ready, 30, "the page to show local-text ready")
    assert seen == ["stopped", "starting", "ready"]
    assert gw.post("/v1/chat/completions", {"model": "auto", "messages": [{"role": "user", "content": PROMPT}]}, key=MASTER).status_code == 200
    wait_until(lambda: "default" in _text(browser, "decisions"), 10, "the decision to show")
    decisions = _text(browser, "decisions")
    assert "local-text" in decisions and "200" in decisions and "master" in decisions
    assert PROMPT not in browser.page_source and MASTER not in browser.page_source
    assert browser.get_cookies() == [] and MASTER not in browser.current_url  # the key stays in the tab
    shot = tmp_path / "status-page.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("LLM_ROUTER_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(shot, SCREENSHOT)


def test_the_page_answers_a_request_without_a_key_with_401_and_asks_for_one(gateway):
    gw, _ = gateway
    response = httpx.get(f"{gw.url}/router/ui", timeout=30)
    assert response.status_code == 401 and 'id="key"' in response.text


def test_the_page_and_its_data_refuse_a_team_key(gateway):
    gw, team = gateway
    for path in ("/router/ui", "/v1/router/status"):
        assert httpx.get(f"{gw.url}{path}", headers={"authorization": f"Bearer {team}"}, timeout=30).status_code == 403


# ---- the charts ------------------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"
SENT = {"gpt-4o": 3, "dead-end": 1, "auto": 2}
"""What the charts' fixture sends as alice: priced answers, a failure (502) and auto requests (to local-text)."""


def _ledger(gw: Gateway) -> sqlite3.Connection:
    return sqlite3.connect(gw.config.parent / "run" / "state.db", timeout=10)


@pytest.fixture(scope="module")
def charted(gateway) -> tuple[Gateway, str]:
    """The gateway once alice's requests are in its ledger (after whatever the page's other tests sent)."""
    gw, team = gateway
    (before,) = _ledger(gw).execute("SELECT count(*) FROM spend").fetchone()
    for model, count in SENT.items():
        for i in range(count):
            answer = gw.post("/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": f"chart me {model} {i}"}]},
                             key=ALICE, timeout=120)
            assert answer.status_code == (502 if model == "dead-end" else 200), answer.text
    wait_until(lambda: _ledger(gw).execute("SELECT count(*) FROM spend").fetchone()[0] == before + sum(SENT.values()), 30,
               "the ledger to hold every request")
    return gw, team


def _charts(gw: Gateway, window: str = "hour") -> ET.Element:
    """The chart route's fragment, parsed as XML (so every text in it is escaped)."""
    answer = gw.get(f"/v1/router/status/charts?window={window}", key=MASTER)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html"), answer.text
    return ET.fromstring(answer.text)


def _chart(root: ET.Element, name: str) -> ET.Element:
    found = [e for e in root.iter(f"{SVG}svg") if e.get("data-chart") == name]
    assert len(found) == 1, name
    return found[0]


def _rows_by_bucket(gw: Gateway, root: ET.Element, columns: str, where: str = "1") -> dict[float, list[tuple]]:
    """The ledger's rows in the fragment's window, by the start of their bucket."""
    start, end, size = (float(root.get(a)) for a in ("data-start", "data-end", "data-bucket-s"))
    rows = _ledger(gw).execute(f"SELECT at, {columns} FROM spend WHERE at >= ? AND at < ? AND {where}", (start, end)).fetchall()
    buckets: dict[float, list[tuple]] = {}
    for at, *rest in rows:
        buckets.setdefault(start + (at - start) // size * size, []).append(tuple(rest))
    return buckets


def test_the_requests_chart_draws_the_ledgers_requests_and_failures_per_minute(charted):
    gw, _ = charted
    root = _charts(gw)
    drawn = {float(g.get("data-start")): g for g in _chart(root, "requests").iter(f"{SVG}g") if g.get("class") == "bucket"}
    assert len(drawn) == 60 and float(root.get("data-bucket-s")) == 60
    ledger = _rows_by_bucket(gw, root, "status")
    assert {s: int(g.get("data-total")) for s, g in drawn.items() if g.get("data-total") != "0"} == {s: len(r) for s, r in ledger.items()}
    failed = {s: r for s, g in drawn.items() for r in g.iter(f"{SVG}rect") if r.get("data-series") == "failed"}
    assert {s: int(float(r.get("data-value"))) for s, r in failed.items()} == {
        s: sum(1 for (status,) in rows if status >= 400) for s, rows in ledger.items() if any(status >= 400 for (status,) in rows)}
    assert sum(int(g.get("data-total")) for g in drawn.values()) >= sum(SENT.values())


def _nearest_rank(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) * p + 99) // 100 - 1]


def test_the_latency_chart_draws_each_minutes_p50_and_p95_of_the_answered_requests(charted):
    gw, _ = charted
    root = _charts(gw)
    drawn = {(float(c.get("data-start")), c.get("data-series")): float(c.get("data-value")) for c in _chart(root, "latency").iter(f"{SVG}circle")}
    ledger = _rows_by_bucket(gw, root, "latency_ms", "status < 400")
    assert drawn == {(s, f"p{p}"): _nearest_rank([v for (v,) in rows], p) for s, rows in ledger.items() for p in (50, 95)}
    assert drawn


def test_the_tokens_and_spend_charts_draw_each_groups_share_per_minute(charted):
    gw, _ = charted
    root = _charts(gw)
    ledger = _rows_by_bucket(gw, root, "served, input_tokens + output_tokens, cost")
    for chart, column in (("tokens", 1), ("spend", 2)):
        drawn: dict[tuple[float, str], float] = {}
        for g in _chart(root, chart).iter(f"{SVG}g"):
            if g.get("class") == "bucket":
                for r in g.iter(f"{SVG}rect"):
                    drawn[(float(g.get("data-start")), r.get("data-series"))] = float(r.get("data-value"))
        expected: dict[tuple[float, str], float] = {}
        for s, rows in ledger.items():
            for row in rows:
                expected[(s, row[0])] = expected.get((s, row[0]), 0) + row[column]
        assert drawn == pytest.approx({k: v for k, v in expected.items() if v}, rel=1e-9), chart
    assert any(group == "gpt-4o" for _, group in drawn) and all(v > 0 for v in drawn.values())


def test_the_saving_chart_draws_autos_saving_against_routing_complex(charted):
    gw, _ = charted
    root = _charts(gw)
    drawn = {float(g.get("data-start")): float(g.get("data-total")) for g in _chart(root, "saving").iter(f"{SVG}g") if g.get("class") == "bucket"}
    ledger = _rows_by_bucket(gw, root, "baseline - cost", "baseline IS NOT NULL")
    assert {s: v for s, v in drawn.items() if v} == pytest.approx({s: sum(v for (v,) in rows) for s, rows in ledger.items()}, rel=1e-9)
    assert sum(drawn.values()) > 0  # auto went to local-text, which costs nothing here; claude-sonnet would have


def test_the_budget_chart_draws_a_keys_and_a_teams_spend_against_their_budgets(charted):
    gw, _ = charted
    rows = {g.get("data-label"): g for g in _chart(_charts(gw), "budgets").iter(f"{SVG}g") if g.get("class") == "budget-row"}
    today = dt.datetime.now(dt.timezone.utc).date()
    monday = today - dt.timedelta(days=today.weekday())
    ledger = _ledger(gw)
    (alice,) = ledger.execute("SELECT sum(cost) FROM spend WHERE key_name = 'alice' AND day = ?", (today.isoformat(),)).fetchone()
    (red,) = ledger.execute("SELECT sum(cost) FROM spend WHERE team = 'red' AND day >= ?", (monday.isoformat(),)).fetchone()
    assert alice > 0
    key, team = rows["alice (red)"], rows["team red"]
    assert (float(key.get("data-spent")), float(key.get("data-budget")), key.get("data-period")) == (pytest.approx(alice, rel=1e-9), 1.0, "day")
    assert (float(team.get("data-spent")), float(team.get("data-budget")), team.get("data-period")) == (pytest.approx(red, rel=1e-9), 2.0, "week")
    assert [line.get("class") for line in key.iter(f"{SVG}line")] == ["budget"]


def test_the_day_window_draws_96_quarter_hours(charted):
    gw, _ = charted
    root = _charts(gw, "day")
    buckets = [g for g in _chart(root, "requests").iter(f"{SVG}g") if g.get("class") == "bucket"]
    assert root.get("data-window") == "day" and float(root.get("data-bucket-s")) == 900 and len(buckets) == 96
    (total,) = _ledger(gw).execute("SELECT count(*) FROM spend WHERE at >= ?", (float(root.get("data-start")),)).fetchone()
    assert sum(int(g.get("data-total")) for g in buckets) == total >= sum(SENT.values())


def test_the_charts_refuse_a_team_key(gateway):
    gw, team = gateway
    answer = gw.get("/v1/router/status/charts?window=hour", key=team)
    assert answer.status_code == 403 and answer.json()["error"]["message"]


@pytest.mark.parametrize("window", ["week", "", "HOUR", "<svg>"])
def test_a_bad_window_gets_a_400_naming_it(gateway, window):
    gw, _ = gateway
    answer = httpx.get(f"{gw.url}/v1/router/status/charts", params={"window": window}, headers={"authorization": f"Bearer {MASTER}"}, timeout=30)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["param"], error["type"]) == ("window", "invalid_request_error") and "hour, day" in error["message"]


_CHARTS_SHOWN = """
const svgs = [...document.querySelectorAll('#charts svg.chart')];
const win = document.querySelector('#charts .charts');
return {window: win && win.dataset.window, shown: svgs.filter((s) => { const r = s.getBoundingClientRect(); return r.width > 100 && r.height > 50; })
  .map((s) => s.dataset.chart), buckets: svgs.length ? svgs[0].querySelectorAll('g.bucket').length : 0};
"""


def test_the_page_shows_the_charts_for_the_last_hour_then_the_last_day(charted, browser, tmp_path):
    gw, _ = charted
    browser.get(f"{gw.url}/router/ui")
    browser.find_element(By.ID, "key").send_keys(MASTER)
    browser.find_element(By.ID, "use-key").click()
    every = ["requests", "latency", "tokens", "spend", "saving", "budgets"]
    shown = wait_until(lambda: (v := browser.execute_script(_CHARTS_SHOWN))["shown"] == every and v, 30, "the page to show every chart")
    assert (shown["window"], shown["buckets"]) == ("hour", 60)
    assert MASTER not in browser.page_source and ALICE not in browser.page_source
    browser.execute_script('document.getElementById("charts-heading").scrollIntoView();')
    shot = tmp_path / "status-charts.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("LLM_ROUTER_UPDATE_SCREENSHOT") == "1":
        shutil.copy(shot, CHARTS_SCREENSHOT)
    browser.execute_script('document.querySelector(\'#window button[data-window="day"]\').click();')
    day = wait_until(lambda: (v := browser.execute_script(_CHARTS_SHOWN))["window"] == "day" and v, 30, "the page to show the last day")
    assert (day["shown"], day["buckets"]) == (every, 96)


# ---- the drawing functions, in-process -------------------------------------------------------------

UTC = ZoneInfo("UTC")


@pytest.mark.parametrize("value, ceiling", [(0, 1), (-3, 1), (0.7, 1), (1, 1), (1.2, 2), (2.2, 2.5), (3, 5), (7, 10), (0.013, 0.02), (420, 500)])
def test_an_axis_tops_at_a_round_number_at_or_above_the_highest_value(value, ceiling):
    assert charts.nice_ceiling(value) == pytest.approx(ceiling)


def test_bars_are_scaled_to_the_axis_and_stacked():
    svg = ET.fromstring(charts.time_bars("t", "t", [0, 60], 60, {"a": [1, 3], "b": [1, 0]}, "count", UTC))
    rects = {(r.get("data-series"), float(r.get("data-value"))): r for r in svg.iter(f"{SVG}rect") if r.get("data-series")}
    floor = charts.HEIGHT - 26
    top = 12
    per_unit = (floor - top) / 5  # the highest stack is 3 (b's 0 draws nothing): the axis tops at 5
    assert float(rects[("a", 3)].get("height")) == pytest.approx(3 * per_unit, abs=0.1)
    a1, b1 = rects[("a", 1)], rects[("b", 1)]
    assert float(a1.get("y")) == pytest.approx(floor - per_unit, abs=0.1)
    assert float(b1.get("y")) == pytest.approx(floor - 2 * per_unit, abs=0.1)  # b sits on a
    assert ("b", 0) not in rects


def test_negative_bars_hang_below_zero():
    svg = ET.fromstring(charts.time_bars("t", "t", [0, 60], 60, {"saving": [2, -1]}, "usd", UTC))
    up, down = (r for r in svg.iter(f"{SVG}rect") if r.get("data-series"))
    assert float(down.get("y")) == pytest.approx(float(up.get("y")) + float(up.get("height")), abs=0.1)  # both meet at the zero line


def test_a_line_breaks_where_a_bucket_has_no_value():
    svg = ET.fromstring(charts.time_lines("t", "t", [0, 60, 120, 180, 240], 60, {"p50": [1, 2, None, 3, 4]}, "ms", UTC))
    assert len(list(svg.iter(f"{SVG}polyline"))) == 2 and len(list(svg.iter(f"{SVG}circle"))) == 4


def test_every_text_is_escaped():
    evil = '<script>alert("x")</script> & \'q\''
    drawn = charts.time_bars("c", evil, [0], 60, {evil: [1], "b": [2]}, "count", UTC) + charts.budget_bars(
        "b", evil, [charts.BudgetBar(evil, 1.0, 2.0, "day"), charts.BudgetBar(evil, 1.0, None, "hour")])
    assert "<script" not in drawn and "&lt;script&gt;" in drawn
    for svg in (drawn[:drawn.index("</svg>") + 6], drawn[drawn.index("</svg>") + 6:]):
        labels = [e.get("data-series") or e.get("data-label") for e in ET.fromstring(svg).iter() if e.get("data-series") or e.get("data-label")]
        assert evil in labels  # read back as written


def test_the_fragment_holds_every_chart_with_nothing_recorded():
    series = Series(60, [Bucket(i * 60.0, 0, 0, None, None, 0.0, {}) for i in range(60)], [], {})
    root = ET.fromstring(charts.charts_html(series, "hour", [], UTC))
    assert [s.get("data-chart") for s in root.iter(f"{SVG}svg")] == ["requests", "latency", "tokens", "spend", "saving", "budgets"]
    assert sum(1 for e in root.iter() if e.get("class") == "empty") == 6


def test_a_budget_bar_turns_amber_at_80_percent_and_red_past_the_budget():
    rows = [charts.BudgetBar("ok", 1, 10, "day"), charts.BudgetBar("near", 8, 10, "day"), charts.BudgetBar("over", 11, 10, "day")]
    svg = ET.fromstring(charts.budget_bars("b", "b", rows))
    colors = {g.get("data-label"): next(g.iter(f"{SVG}rect")).get("fill") for g in svg.iter(f"{SVG}g")}
    assert colors == {"ok": "#20a37a", "near": "#e1852b", "over": "#d63a5c"}
    lines = [float(l.get("x1")) for l in svg.iter(f"{SVG}line") if l.get("class") == "budget"]
    assert len(set(lines)) == 1  # the same $10 budget, on one dollar scale


def test_groups_totals_add_input_and_output_tokens():
    assert GroupTotals(1, 10, 5, 0.0).tokens == 15


def test_the_ledgers_series_buckets_rows_by_time_with_nearest_rank_percentiles(tmp_path):
    ledger = SpendLedger(StateDatabase(tmp_path / "state.db"), SpendSettings())
    now = 1_800_000_030.0  # half a minute into a minute
    rows = [(now - 3700, "gpt-4o", 200, 10.0, None),  # before the hour: not drawn
            *((now - 90 + i, "gpt-4o", 200, float(ms), None) for i, ms in enumerate(range(10, 110, 10))),  # ten in one minute
            (now - 5, "local-text", 200, 7.0, 0.5), (now - 4, "local-text", 502, 1.0, 0.5)]

    async def record() -> None:
        for i, (at, served, status, ms, baseline) in enumerate(rows):
            await ledger.record(SpendRow(f"r{i}", at, "k", "t", "chat", "auto", served, "default", status, False, 3, 4,
                                         0.0 if status >= 400 else 0.1, baseline, ms))
    asyncio.run(record())
    series = ledger.series(3600, 60, now)
    assert len(series.buckets) == 60 and series.end == 1_800_000_060 and series.start == series.end - 3600
    full, last = series.buckets[-2], series.buckets[-1]
    assert (full.start, full.requests, full.p50_ms, full.p95_ms) == (1_799_999_940, 10, 50.0, 100.0)
    assert (last.requests, last.failures, last.p50_ms, last.p95_ms) == (2, 1, 7.0, 7.0)  # the failure's latency isn't counted
    assert last.saving_usd == pytest.approx(0.4 + 0.5) and last.groups["local-text"].tokens == 14
    assert sum(b.requests for b in series.buckets) == 12 and series.groups == ["gpt-4o", "local-text"]
    assert series.key_cost == {("k", "t"): pytest.approx(1.1)}
