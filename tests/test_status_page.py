"""The status page in a real browser: Debian's headless Chromium, driven by Selenium through Debian's
chromedriver (nothing is downloaded). The page asks for the master key, shows backends, servers and
routing decisions, and starts a server with a click; it answers a key-less or team-key request as the
API does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.support.configs import core_config, set_spec
from tests.support.gateway import Gateway
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

MASTER = "sk-master-SENTINEL-page-0001"
PROMPT = "a prompt the page must never show 7f3a"
REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "status-page.png"
"""Shown in the README; rewritten when LLM_ROUTER_UPDATE_SCREENSHOT=1."""


@pytest.fixture(scope="module")
def gateway(cloud, tmp_path_factory) -> Iterator[tuple[Gateway, str]]:
    config = core_config(tmp_path_factory.mktemp("page"), cloud.url, keys_file=True)
    set_spec(config, "local-text", flags=("--start-delay", "2"))  # long enough to see it starting
    added = subprocess.run([sys.executable, "-m", "llm_router.cli", "keys", "add", "viewer", "--team", "t", "--config", str(config)],
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
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
