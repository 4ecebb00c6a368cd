"""Keys for a shared team gateway: master key, team keys from the keys file, 401/403/429."""

from __future__ import annotations

import subprocess
import sys

import openai
import pytest
import yaml

from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.waiting import wait_until
from tests.support.gateway import Gateway

MASTER = "sk-master-SENTINEL-keys-0001"
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def _keys_cli(config, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_router.cli", "keys", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with FakeCloud() as cloud:
        config = core_config(tmp_path_factory.mktemp("keys"), cloud.url, keys_file=True)
        keys = {}
        for name, extra in {"alice": ["--models", "gpt-4o,claude-sonnet"], "bob": ["--models", "*", "--rpm", "2"],
                            "carol": [], "mallory": []}.items():
            done = _keys_cli(config, "add", name, "--team", "research", *extra)
            assert done.returncode == 0, done.stderr
            keys[name] = done.stdout.strip()
        assert _keys_cli(config, "revoke", "mallory").returncode == 0
        env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-keys-openai-0001", "ANTHROPIC_API_KEY": "sk-ant-test-keys-0001"}
        with Gateway(config, env) as gw:
            yield gw, keys, config


def _status(gw, key, model):
    try:
        gw.client(api_key=key).chat.completions.create(model=model, **CHAT)
        return 200
    except openai.APIStatusError as exc:
        assert "error" in exc.response.json(), exc.response.text
        return exc.status_code


def test_keys_file_stores_only_hashes(setup):
    _, keys, config = setup
    stored = (config.parent / "keys.yaml").read_text()
    assert all(key not in stored for key in keys.values())
    entries = yaml.safe_load(stored)["keys"]
    assert {e["name"] for e in entries} == {"alice", "bob", "carol", "mallory"}
    assert all(len(e["sha256"]) == 64 for e in entries)


def test_keys_list_shows_names_and_never_keys(setup):
    _, keys, config = setup
    listing = _keys_cli(config, "list").stdout
    assert "alice" in listing and "revoked" in listing
    assert all(key not in listing for key in keys.values())


def test_missing_key_is_401(setup):
    gw, _, _ = setup
    response = gw.post("/v1/chat/completions", {"model": "gpt-4o", **CHAT})
    assert response.status_code == 401
    assert response.json()["error"]["message"]


@pytest.mark.parametrize("who", ["wrong", "revoked"])
def test_wrong_or_revoked_key_is_401(setup, who):
    gw, keys, _ = setup
    key = "sk-llmr-not-a-real-key" if who == "wrong" else keys["mallory"]
    assert _status(gw, key, "gpt-4o") == 401


def test_master_key_may_use_every_model(setup):
    gw, _, _ = setup
    assert _status(gw, MASTER, "gpt-4o") == 200
    assert _status(gw, MASTER, "claude-sonnet") == 200


def test_team_key_may_use_its_allowed_models(setup):
    gw, keys, _ = setup
    assert _status(gw, keys["alice"], "gpt-4o") == 200


def test_team_key_gets_403_for_a_forbidden_model(setup):
    gw, keys, _ = setup
    assert _status(gw, keys["alice"], "local-text") == 403


def test_alias_of_a_forbidden_group_is_403_too(setup):
    gw, keys, config = setup
    done = _keys_cli(config, "add", "dave", "--team", "ops", "--models", "claude-sonnet")
    dave = done.stdout.strip()
    assert _status(gw, dave, "gpt-4") == 403  # gpt-4 is an alias of gpt-4o


def test_auto_only_routes_among_allowed_groups(setup):
    gw, keys, _ = setup
    raw = gw.client(api_key=keys["alice"]).chat.completions.with_raw_response.create(model="auto", **CHAT)
    # The default group (local-text) is forbidden for alice; routing picks an allowed group instead.
    assert raw.headers["x-llm-router-model"] in ("gpt-4o", "claude-sonnet")
    explain = gw.post("/v1/router/explain", {"model": "auto", **CHAT}, key=keys["alice"]).json()
    assert explain["model"] != "local-text"
    assert {"group": "local-text", "why": "not allowed for this key"} in explain["skipped"]


def test_rpm_limit_gives_429(setup):
    gw, keys, _ = setup
    codes = [_status(gw, keys["bob"], "gpt-4o") for _ in range(3)]
    assert codes == [200, 200, 429]


def test_revocation_takes_effect_without_restart(setup):
    gw, keys, config = setup
    assert _status(gw, keys["carol"], "gpt-4o") == 200
    assert _keys_cli(config, "revoke", "carol").returncode == 0
    # The gateway rereads the keys file at most once a second.
    wait_until(lambda: _status(gw, keys["carol"], "gpt-4o") == 401, 5, "the revoked key to be refused")


def test_admin_endpoints_need_the_master_key(setup):
    gw, keys, _ = setup
    assert gw.get("/v1/router/servers").status_code == 401
    assert gw.get("/v1/router/servers", key=keys["alice"]).status_code == 403
    assert gw.get("/v1/router/servers", key=MASTER).status_code == 200
    assert gw.post("/v1/router/servers/local-text/start", {}, key=keys["alice"]).status_code == 403


def test_explain_needs_a_valid_key_when_a_master_key_is_set(setup):
    gw, _, _ = setup
    assert gw.post("/v1/router/explain", {"model": "auto", **CHAT}).status_code == 401


def test_no_secret_appears_in_the_gateway_log(setup):
    gw, keys, _ = setup
    log = gw.log_text() + (gw.config.parent / "logs" / "router.log").read_text()
    for secret in [MASTER, "sk-test-keys-openai-0001", "sk-ant-test-keys-0001", *keys.values()]:
        assert secret not in log


def test_open_gateway_refuses_to_bind_beyond_loopback(tmp_path):
    config = core_config(tmp_path, "http://127.0.0.1:9")
    done = subprocess.run([sys.executable, "-m", "llm_router.cli", "serve", "--config", str(config), "--host", "0.0.0.0", "--port", "1"],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "LLM_ROUTER_MASTER_KEY" in done.stderr


def test_with_several_workers_each_enforces_its_share_of_the_rpm_limit():
    from router_plugins.keys import RateLimiter

    limiter = RateLimiter(workers=2)
    assert [limiter.allow("k", 5) for _ in range(4)] == [True, True, True, False]  # ceil(5 / 2) = 3 here
