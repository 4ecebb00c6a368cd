"""Several gateway replicas sharing a Redis, and GPU hosts as their upstreams (README, Several replicas
and GPU hosts).

One machine, loopback only, everything real: a redis-server with a password, two front replicas,
and two GPU-host gateways whose model servers are the fake model server. The fronts list the GPU
hosts' model groups as deployments (`llm_router_remote: true`) with a service key each; GPU host 1
comes first for `gpu-text` (`order`), both serve `gpu-even` alike, and `gpu-lazy` (a slow-starting
server on GPU host 1) is `cold_start: fallback` with gpt-4o (the fake cloud) after it.

The gateways start once for the module (those tests are marked slow); tests that kill something
(a GPU host, Redis, a replica) come last, in that order. Replicas share stored responses and their
spend totals through Redis too (router_plugins/state/replicas.py). The config checks at the top start nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import httpx
import pytest
import yaml

from router_config.gateway_config import ConfigError, load_config
from router_config.litellm_settings import litellm_config
from router_plugins.keys import KeyStore, TeamKey
from tests.fakes.cloud import FakeCloud
from tests.support.gateway import FAKE_MODEL_SERVER, Gateway, fake_server_spec, free_port
from tests.support.load import run_load
from tests.support.processes import count_spawned
from tests.support.redis import RedisServer
from tests.support.waiting import wait_until

MASTER = "sk-master-SENTINEL-replicas-0001"
REDIS_PASSWORD = "redis-pw-SENTINEL-replicas-0001"
OPENAI_KEY = "sk-test-replicas-openai-0001"
HI = [{"role": "user", "content": "hi"}]
COOLDOWN_S = 300
"""How long the shaky group's failing deployment stays cooled down once it answered 429."""


# ---- the config: validated at load, written for LiteLLM once ------------------------------------


def _problems(tmp: Path, llm_router: str, extra: str = "", model_info: str = "") -> list[str]:
    config = tmp / "litellm_config.yaml"
    config.write_text(dedent(f"""
        model_list:
          - model_name: gpu-text
            litellm_params: {{model: openai/gpu-text, api_base: "http://gpu-1:8000/v1", api_key: os.environ/GPU1_SERVICE_KEY}}
            model_info: {{llm_router_remote: true{model_info}}}
        llm_router: {llm_router}
    """) + dedent(extra))
    try:
        load_config(config)
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


@pytest.mark.parametrize("block, key, fix", [
    ("{redis: {host: r1, url: 'redis://r1:6379/0'}}", "llm_router.redis", "see the README"),
    ("{redis: {url: 'redis://:hunter2@r1:6379/0'}}", "llm_router.redis.url", "see the README"),
    ("{redis: {host: r1, password_env: 'hunter2!'}}", "llm_router.redis.password_env", "see the README"),
    ("{redis: {host: r1, password_env: LLM_ROUTER_TEST_UNSET_PASSWORD}}", "llm_router.redis.password_env", "export LLM_ROUTER_TEST_UNSET_PASSWORD"),
    ("{redis: {host: r1, port: 0}}", "llm_router.redis.port", "see the README"),
])
def test_a_wrong_redis_block_is_refused_at_load_naming_its_key_and_fix(tmp_path, block, key, fix):
    problems = _problems(tmp_path, block)
    assert len(problems) == 1 and f": {key}: " in problems[0] and fix in problems[0], problems
    assert "hunter2" not in problems[0]  # a password where it doesn't belong is never echoed


def test_litellm_redis_settings_beside_llm_router_redis_are_refused(tmp_path):
    problems = _problems(tmp_path, "{redis: {host: r1}}", "router_settings: {redis_host: r2, redis_port: 6379}\n"
                                                          "general_settings: {coordination_redis: {host: r2}}\n")
    assert [p.split(": ")[1] for p in problems] == ["router_settings.redis_host", "router_settings.redis_port",
                                                     "general_settings.coordination_redis"]
    assert all("configure Redis once, in llm_router.redis" in p for p in problems)


@pytest.mark.parametrize("entry, key", [
    ("{model: openai/gpu-text, api_base: 'http://gpu-1:8000/v1', api_key: sk-inline-0001}", "api_key"),
    ("{model: anthropic/gpu-text, api_base: 'http://gpu-1:8000/v1', api_key: os.environ/K}", "model"),
    ("{model: openai/gpu-text, api_key: os.environ/K}", "api_base"),
])
def test_a_wrong_remote_deployment_is_refused_at_load(tmp_path, entry, key):
    config = tmp_path / "litellm_config.yaml"
    config.write_text(f"model_list:\n  - model_name: gpu-text\n    litellm_params: {entry}\n    model_info: {{llm_router_remote: true}}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert [str(p).split(": ")[1] for p in refused.value.problems] == [f"model_list[0].litellm_params.{key}"]


def test_cold_start_in_model_info_needs_the_remote_flag_and_a_known_value(tmp_path):
    assert _problems(tmp_path, "{}", model_info=", cold_start: later")[0].split(": ")[1] == "model_list[0].model_info.cold_start"
    config = tmp_path / "litellm_config.yaml"
    config.write_text(config.read_text().replace("llm_router_remote: true, ", ""))
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert "add `llm_router_remote: true`" in str(refused.value)


def test_a_remote_deployment_is_read_from_its_entry(tmp_path):
    assert _problems(tmp_path, "{}", model_info=", cold_start: fallback") == []
    (d,) = load_config(tmp_path / "litellm_config.yaml").deployments
    assert d.remote is not None and (d.remote.base_url, d.remote.group, d.remote.cold_start) == ("http://gpu-1:8000", "gpu-text", "fallback")
    assert d.key_env == "GPU1_SERVICE_KEY"


def test_litellm_gets_the_same_redis_twice_with_its_password_as_a_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_ROUTER_TEST_REDIS_PASSWORD", "redis-pw-SENTINEL-config-0001")
    assert _problems(tmp_path, "{redis: {host: r1, port: 6380, password_env: LLM_ROUTER_TEST_REDIS_PASSWORD}}") == []
    written = litellm_config(load_config(tmp_path / "litellm_config.yaml"))
    password = "os.environ/LLM_ROUTER_TEST_REDIS_PASSWORD"
    router = written["router_settings"]
    assert (router["redis_host"], router["redis_port"], router["redis_password"]) == ("r1", 6380, password)
    assert router["cache_kwargs"] == {"socket_timeout": 1, "socket_connect_timeout": 1}
    assert written["general_settings"]["coordination_redis"] == {"host": "r1", "port": 6380, "password": password,
                                                                 "socket_timeout": 1, "socket_connect_timeout": 1}
    assert "redis-pw-SENTINEL" not in yaml.safe_dump(written)


def test_without_the_redis_block_litellm_gets_no_redis(tmp_path):
    assert _problems(tmp_path, "{}") == []
    written = yaml.safe_dump(litellm_config(load_config(tmp_path / "litellm_config.yaml")))
    assert "redis" not in written


def test_keys_learned_from_other_replicas_are_never_forgotten_and_a_revocation_wins(tmp_path):
    store = KeyStore(tmp_path / "keys.yaml")
    mine = store.add("mine", "t")
    theirs = TeamKey("theirs", "t", "a" * 64)
    store.learn([theirs])
    store.learn([])  # a Redis that restarted empty
    assert store.by_digest("a" * 64) == theirs
    store.learn([TeamKey("mine", "t", store.lookup(mine).sha256, revoked=True), TeamKey("theirs", "t", "a" * 64)])
    assert store.lookup(mine).revoked  # revoked on another replica, though not in this file
    store.learn([TeamKey("theirs", "t", "a" * 64, revoked=True)])
    store.learn([theirs])  # an older copy doesn't bring it back
    assert store.by_digest("a" * 64).revoked


@dataclass
class Fleet:
    redis: RedisServer
    cloud: FakeCloud
    fronts: list[Gateway]
    gpus: list[Gateway]
    secrets: list[str]
    env: dict[str, str]

    def keys_cli(self, front: int, *args: str) -> subprocess.CompletedProcess[str]:
        return _keys_cli(self.fronts[front].config, self.env, *args)

    def add_key(self, front: int, name: str, *args: str) -> str:
        done = self.keys_cli(front, "add", name, "--team", "research", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def _keys_cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_router.cli", "keys", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **env})


def _gpu_host(tmp: Path, name: str, groups: dict[str, tuple[str, ...]]) -> Path:
    """A GPU host's gateway config: each group a fake model server, started on demand."""
    (tmp / "models").mkdir(parents=True)
    entries = []
    for group, flags in groups.items():
        port = free_port()
        (tmp / "models" / f"{group}.yaml").write_text(fake_server_spec(port, f"{name}-{group}", *flags, startup_timeout_s=30, idle_ttl_s=0))
        entries.append(f"""
          - model_name: {group}
            litellm_params: {{model: hosted_vllm/{name}-{group}, api_base: "http://127.0.0.1:{port}/v1", api_key: none}}
            model_info: {{launcher: models/{group}.yaml}}""")
    config = tmp / "litellm_config.yaml"
    config.write_text(dedent(f"""
        model_list:{"".join(entries)}
        router_settings: {{num_retries: 0}}
        llm_router: {{state_dir: run, log_dir: logs, keys_file: keys.yaml}}
    """))
    return config


def _front(tmp: Path, cloud_url: str, gpu1: str, gpu2: str, redis_port: int) -> Path:
    """A front replica's config: the GPU hosts' groups as remote deployments, cloud groups, one Redis."""
    tmp.mkdir(parents=True)
    config = tmp / "litellm_config.yaml"
    remote = "model_info: {llm_router_remote: true}"
    config.write_text(dedent(f"""
        model_list:
          - model_name: gpu-text
            litellm_params: {{model: openai/gpu-text, api_base: "{gpu1}/v1", api_key: os.environ/GPU1_SERVICE_KEY, order: 1}}
            {remote}
          - model_name: gpu-text
            litellm_params: {{model: openai/gpu-text, api_base: "{gpu2}/v1", api_key: os.environ/GPU2_SERVICE_KEY, order: 2}}
            {remote}
          - model_name: gpu-even
            litellm_params: {{model: openai/gpu-text, api_base: "{gpu1}/v1", api_key: os.environ/GPU1_SERVICE_KEY}}
            {remote}
          - model_name: gpu-even
            litellm_params: {{model: openai/gpu-text, api_base: "{gpu2}/v1", api_key: os.environ/GPU2_SERVICE_KEY}}
            {remote}
          - model_name: gpu-lazy
            litellm_params: {{model: openai/gpu-lazy, api_base: "{gpu1}/v1", api_key: os.environ/GPU1_SERVICE_KEY}}
            model_info: {{llm_router_remote: true, cold_start: fallback}}
          - model_name: gpt-4o
            litellm_params: {{model: openai/gpt-4o, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}
          - model_name: slow
            litellm_params: {{model: openai/fake-slow-0.5, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}
          - model_name: shaky
            litellm_params: {{model: openai/fake-status-429, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}
            model_info: {{cooldown_time: {COOLDOWN_S}}}
          - model_name: shaky
            litellm_params: {{model: openai/fake-shaky-ok, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}
        router_settings:
          num_retries: 0
          fallbacks:
            - gpu-lazy: [gpt-4o]
        routing: {{vision: [gpt-4o], complex: [gpt-4o], default: [gpu-lazy], complexity: {{tiers: [COMPLEX, REASONING]}}, difficulty: {{threshold: 1.0}}}}
        llm_router:
          state_dir: run
          log_dir: logs
          keys_file: keys.yaml
          redis: {{host: 127.0.0.1, port: {redis_port}, password_env: LLM_ROUTER_REDIS_PASSWORD}}
    """))
    return config


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replicas")
    (tmp / "redis").mkdir()
    with RedisServer(tmp / "redis", REDIS_PASSWORD) as redis_server, FakeCloud() as cloud:
        gpu_configs = [_gpu_host(tmp / "gpu1", "gpu1", {"gpu-text": (), "gpu-lazy": ("--start-delay", "3")}),
                       _gpu_host(tmp / "gpu2", "gpu2", {"gpu-text": ()})]
        gpus = [Gateway(config, {"LLM_ROUTER_MASTER_KEY": MASTER}) for config in gpu_configs]
        # The service key of each GPU host: a team key there, as `llm-router keys add` prints it.
        service_keys = []
        for config in gpu_configs:
            done = _keys_cli(config, {}, "add", "fronts", "--team", "infra")
            assert done.returncode == 0, done.stderr
            service_keys.append(done.stdout.strip())
        env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": OPENAI_KEY, "LLM_ROUTER_REDIS_PASSWORD": REDIS_PASSWORD,
               "GPU1_SERVICE_KEY": service_keys[0], "GPU2_SERVICE_KEY": service_keys[1]}
        fronts = [Gateway(_front(tmp / f"front{i}", cloud.url, gpus[0].url, gpus[1].url, redis_server.port), env) for i in (1, 2)]
        everyone = [*gpus, *fronts]
        try:
            # Started side by side: each gateway spends most of its start importing LiteLLM.
            with concurrent.futures.ThreadPoolExecutor(len(everyone)) as pool:
                list(pool.map(Gateway.start, everyone))
            yield Fleet(redis_server, cloud, fronts, gpus, [MASTER, REDIS_PASSWORD, OPENAI_KEY, *service_keys], env)
        finally:
            for gw in everyone:
                gw.stop()


def _chat(gw: Gateway, model: str, key: str = MASTER) -> httpx.Response:
    return gw.post("/v1/chat/completions", {"model": model, "messages": HI}, key=key)


def _health(gw: Gateway) -> dict:
    return gw.get("/v1/health", key=MASTER).json()


def _backend(gw: Gateway, group: str) -> dict:
    return _health(gw)["backends"][group]


def _answered_by(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"].split(" says:")[0]


def _starts(gpu: Gateway, group: str) -> int:
    """How many times the GPU host started the group's server (its launcher logs each transition once)."""
    return (gpu.config.parent / "logs" / "router.log").read_text().count(f"{group}: stopped -> starting")


def _log(gw: Gateway) -> str:
    return gw.log_text() + (gw.config.parent / "logs" / "router.log").read_text()


def _kill(gw: Gateway) -> None:
    assert gw.proc is not None
    os.killpg(gw.proc.pid, signal.SIGKILL)
    gw.proc.wait(10)


def _knows(gw: Gateway, key: str) -> bool:
    return gw.get("/v1/models", key=key).status_code == 200


@pytest.mark.slow
def test_health_shows_each_gpu_hosts_state_and_redis_without_a_completion(fleet):
    gpu1, gpu2 = (gpu.url.removeprefix("http://") for gpu in fleet.gpus)
    for front in fleet.fronts:
        wait_until(lambda: _backend(front, "gpu-lazy")["state"] == "stopped", 15, "GPU host 1's state on the front")
        wait_until(lambda: "unreachable" not in _backend(front, "gpu-text")["detail"], 15, "GPU host 2's state on the front")
        health = _health(front)
        assert health["redis"] == "up"
        assert health["backends"]["gpu-text"] == {
            "healthy": True, "state": "stopped", "detail": f"{gpu1} stopped: starts on demand; {gpu2} stopped: starts on demand"}
        assert health["backends"]["gpu-lazy"] == {"healthy": True, "state": "stopped", "detail": f"{gpu1}: starts on demand"}
    assert count_spawned(str(FAKE_MODEL_SERVER), "gpu1-") + count_spawned(str(FAKE_MODEL_SERVER), "gpu2-") == 0


@pytest.mark.slow
def test_twenty_concurrent_cold_requests_over_both_replicas_start_the_gpu_hosts_server_once(fleet):
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: _chat(fleet.fronts[i % 2], "gpu-text"), range(20)))
    assert [_answered_by(a) for a in answers] == ["local:gpu1-gpu-text"] * 20
    assert _starts(fleet.gpus[0], "gpu-text") == 1
    assert count_spawned(str(FAKE_MODEL_SERVER), "gpu1-gpu-text") == 1
    for front in fleet.fronts:
        wait_until(lambda: _backend(front, "gpu-text")["state"] == "ready", 10, "the front to see the server ready")


@pytest.mark.slow
def test_cold_start_fallback_works_across_the_hop(fleet):
    first = fleet.fronts[0].post("/v1/chat/completions", {"model": "auto", "messages": HI}, key=MASTER)
    assert first.headers["x-llm-router-model"] == "gpu-lazy"
    assert first.headers["x-litellm-model-group"] == "gpt-4o"  # served at once, while GPU host 1 starts gpu-lazy
    for front in fleet.fronts:
        wait_until(lambda: _backend(front, "gpu-lazy")["state"] == "ready", 30, "gpu-lazy to be ready on GPU host 1")
    later = fleet.fronts[1].post("/v1/chat/completions", {"model": "auto", "messages": HI}, key=MASTER)
    assert later.headers["x-litellm-model-group"] == "gpu-lazy"
    assert _answered_by(later) == "local:gpu1-gpu-lazy"
    assert _starts(fleet.gpus[0], "gpu-lazy") == 1


@pytest.mark.slow
def test_a_key_with_rpm_10_gets_exactly_10_answers_a_minute_across_both_replicas(fleet):
    key = fleet.add_key(0, "counted", "--rpm", "10")
    wait_until(lambda: _knows(fleet.fronts[1], key), 5, "the other replica to know the new key")
    before = len(fleet.cloud.requests_for("gpt-4o"))
    statuses = Counter(_chat(fleet.fronts[i % 2], "gpt-4o", key).status_code for i in range(14))
    assert statuses == {200: 10, 429: 4}
    assert len(fleet.cloud.requests_for("gpt-4o")) - before == 10


@pytest.mark.slow
def test_a_key_past_its_budget_on_one_replica_is_refused_on_the_other(fleet):
    key = fleet.add_key(0, "budgeted", "--budget", "0.000001/day")
    wait_until(lambda: _knows(fleet.fronts[1], key), 5, "the other replica to know the new key and its budget")
    assert _chat(fleet.fronts[0], "gpt-4o", key).status_code == 200
    wait_until(lambda: _chat(fleet.fronts[1], "gpt-4o", key).status_code == 429, 15, "the other replica to see the spend through Redis")
    refused = _chat(fleet.fronts[1], "gpt-4o", key)
    assert refused.json()["error"]["code"] == "insufficient_quota" and "budgeted" in refused.json()["error"]["message"]


@pytest.mark.slow
def test_token_counting_which_litellms_limiter_never_sees_is_limited_to_each_processs_share(fleet):
    key = fleet.add_key(0, "counting", "--rpm", "4")
    wait_until(lambda: _knows(fleet.fronts[1], key), 5, "the other replica to know the new key")
    counting = [("/v1/messages/count_tokens", {"model": "gpt-4o", "messages": HI}), ("/v1/responses/input_tokens", {"model": "gpt-4o", "input": "hi"})]
    answers = [fleet.fronts[i % 2].post(*counting[i // 2 % 2], key=key) for i in range(12)]
    # Past the limit, 429; within it, whatever the backend says (the fake cloud has no OpenAI
    # input_tokens endpoint, which LiteLLM asks for gpt-4o: 404).
    passed = [a.status_code for a in answers if a.status_code != 429]
    assert 2 <= len(passed) <= 4 and 429 in {a.status_code for a in answers}, [a.status_code for a in answers]
    assert "this key allows 4 requests per minute" in next(a.text for a in answers if a.status_code == 429)


@pytest.mark.slow
def test_a_key_revoked_through_one_replica_is_refused_by_the_other_within_2s(fleet):
    key = fleet.add_key(0, "leaving")
    wait_until(lambda: _knows(fleet.fronts[1], key), 5, "the other replica to know the new key")
    assert fleet.keys_cli(0, "revoke", "leaving").returncode == 0
    wait_until(lambda: fleet.fronts[1].get("/v1/models", key=key).status_code == 401, 2, "the other replica to refuse the revoked key")
    assert _chat(fleet.fronts[1], "gpt-4o", key).status_code == 401
    assert _chat(fleet.fronts[0], "gpt-4o", key).status_code == 401


@pytest.mark.slow
def test_a_cooldown_learned_by_one_replica_is_honoured_by_the_other(fleet):
    failing = lambda: len(fleet.cloud.requests_for("fake-status-429"))  # noqa: E731
    for _ in range(30):
        _chat(fleet.fronts[0], "shaky")
        if failing():
            break
    assert failing() == 1, "replica 1 never tried the failing deployment"
    redis_client = fleet.redis.client()
    (cooldown,) = wait_until(lambda: redis_client.keys("deployment:*:cooldown"), 5, "the cooldown to reach Redis")
    # A replica reads cooldowns from Redis at most once a second (LiteLLM's DEFAULT_COOLDOWN_REDIS_READ_INTERVAL_SECONDS):
    # once this one has been there longer, no read replica 2 made before it was written still stands.
    wait_until(lambda: 0 < redis_client.pttl(cooldown) <= (COOLDOWN_S - 1.1) * 1000, 5, "LiteLLM's read interval to pass")
    answers = [_chat(fleet.fronts[1], "shaky") for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10
    assert failing() == 1  # replica 2 never sent the deployment a request


@pytest.mark.slow
def test_two_gpu_hosts_with_equal_priority_both_serve(fleet):
    served = Counter(_answered_by(_chat(fleet.fronts[i % 2], "gpu-even")) for i in range(16))
    assert set(served) == {"local:gpu1-gpu-text", "local:gpu2-gpu-text"}, served


@pytest.mark.slow
def test_with_order_the_first_gpu_host_serves_until_killed_then_the_second_with_no_client_error(fleet):
    assert {_answered_by(_chat(fleet.fronts[i % 2], "gpu-text")) for i in range(6)} == {"local:gpu1-gpu-text"}
    _kill(fleet.gpus[0])
    assert [_answered_by(_chat(fleet.fronts[i % 2], "gpu-text")) for i in range(10)] == ["local:gpu2-gpu-text"] * 10
    for front in fleet.fronts:
        wait_until(lambda: "unreachable" in _backend(front, "gpu-text")["detail"], 5, "the front to see GPU host 1 gone")
        assert _backend(front, "gpu-text")["state"] == "ready"


async def _load_while(fleet: Fleet, model: str, upstream: str, total: int, event, *, after: int) -> list:
    """Load on both replicas; `event()` runs once the upstream model has had `after` requests of it."""
    before = len(fleet.cloud.requests_for(upstream))

    def trigger() -> None:
        wait_until(lambda: len(fleet.cloud.requests_for(upstream)) >= before + after, 60, "the load to get going")
        event()

    headers = {"authorization": f"Bearer {MASTER}"}
    *reports, _ = await asyncio.gather(*(run_load(front.url, [model], total, 4, headers=headers, timeout=30) for front in fleet.fronts),
                                       asyncio.to_thread(trigger))
    return reports


# Before the tests that kill Redis, a GPU host and a front: these need both fronts and Redis.
# LiteLLM's scorer rates this COMPLEX; "thanks" alone rates SIMPLE. The fleet routes by those tiers
# alone: the difficulty score reads the first user turn with the last, so it would lift the
# follow-up without affinity's help.
OPENING = "Design a scalable distributed architecture: analyze the algorithm, prove correctness, optimize performance, and compare trade-offs"


def _conversation(opening: str, follow_up: str | None = None) -> dict:
    messages = [{"role": "user", "content": opening}]
    if follow_up is not None:
        messages += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": follow_up}]
    return {"model": "auto", "messages": messages}


@pytest.mark.slow
def test_a_conversation_escalated_on_one_replica_keeps_its_tier_on_the_other(fleet):
    opening = f"{OPENING} (replicas)"
    first = fleet.fronts[0].post("/v1/chat/completions", _conversation(opening), key=MASTER)
    assert (first.headers["x-llm-router-reason"], first.headers["x-llm-router-model"]) == ("complex", "gpt-4o")
    follow_up = _conversation(opening, "thanks")
    wait_until(lambda: fleet.fronts[1].post("/v1/router/explain", follow_up, key=MASTER).json()["reason"] == "affinity", 10,
               "the other replica to learn the conversation's tier through Redis")
    second = fleet.fronts[1].post("/v1/chat/completions", follow_up, key=MASTER)
    assert (second.headers["x-llm-router-reason"], second.headers["x-llm-router-model"]) == ("affinity", "gpt-4o")


@pytest.mark.slow
def test_redis_holds_conversation_hashes_never_prompt_text(fleet):
    marker = "zebra-SENTINEL-affinity-text"
    fleet.fronts[0].post("/v1/chat/completions", _conversation(f"{OPENING} {marker}"), key=MASTER)
    client = fleet.redis.client()
    wait_until(lambda: client.zcard("llm-router:conversation-tiers") > 0, 10, "the tier to reach Redis")
    for key in client.scan_iter():
        kind = client.type(key).decode()
        values = {"zset": lambda: client.zrange(key, 0, -1), "hash": lambda: list(client.hgetall(key).items()),
                  "string": lambda: [client.get(key)], "list": lambda: client.lrange(key, 0, -1), "set": lambda: list(client.smembers(key))}
        dumped = repr(values.get(kind, lambda: [])())
        assert marker not in dumped and "architecture" not in dumped, key


@pytest.mark.slow
def test_a_responses_chain_started_on_one_replica_goes_on_on_the_other(fleet):
    """Each answer is in Redis before its last byte goes out: the next turn finds it on the other replica at once."""
    previous, said = None, []
    for n in range(4):
        front = fleet.fronts[n % 2]
        response = front.post("/v1/responses", {"model": "gpt-4o", "input": f"Replica turn {n}",
                                                **({"previous_response_id": previous} if previous else {})}, key=MASTER)
        assert response.status_code == 200, response.text
        previous = response.json()["id"]
        said.append(response.json()["output"][0]["content"][0]["text"])
    (last,) = [r.body for r in fleet.cloud.requests_for("gpt-4o") if "Replica turn 3" in str(r.body)]
    assert all(f"Replica turn {n}" in str(last["input"]) and said[n] in str(last["input"]) for n in range(3))
    for front in fleet.fronts:
        assert front.get(f"/v1/responses/{previous}", key=MASTER).json()["output"][0]["content"][0]["text"] == said[3]


def _usage_of(front: Gateway, key_name: str) -> dict | None:
    return next((line for line in front.get("/v1/router/usage?by=key", key=MASTER).json()["data"] if line["key"] == key_name), None)


@pytest.mark.slow
def test_every_replica_reports_the_spend_of_all_of_them(fleet):
    key = fleet.add_key(0, "spender")
    wait_until(lambda: _knows(fleet.fronts[1], key), 5, "the other replica to know the new key")
    answers = [_chat(fleet.fronts[i % 2], "gpt-4o", key) for i in range(6)]
    assert all(a.status_code == 200 for a in answers)
    for front in fleet.fronts:
        line = wait_until(lambda: (u := _usage_of(front, "spender")) and u["requests"] == 6 and u, 10, "both replicas' spend on each")
        assert line["cost_usd"] > 0 and line["team"] == "research"
    (here, there) = (_usage_of(front, "spender") for front in fleet.fronts)
    assert here == there


@pytest.mark.slow
def test_redis_killed_mid_load_loses_and_hangs_nothing_and_service_recovers(fleet):
    outage_key = fleet.add_key(0, "outage", "--rpm", "4")
    wait_until(lambda: _knows(fleet.fronts[1], outage_key), 5, "the other replica to know the new key")
    reports = asyncio.run(_load_while(fleet, "gpt-4o", "gpt-4o", 120, fleet.redis.kill, after=40))
    for report in reports:
        assert (report.hung, report.unclear_failures, report.truncated_as_success) == (0, 0, 0), report.summary()
        assert report.complete == report.sent, report.summary()
    for front in fleet.fronts:
        wait_until(lambda: _health(front)["redis"] == "down", 5, "the health to show Redis down")
        assert "is unreachable" in _log(front) and "per-process shares" in _log(front)
    # Each replica (one process each) now allows its share of the key's 4 requests a minute.
    assert Counter(_chat(fleet.fronts[i % 2], "gpt-4o", outage_key).status_code for i in range(8)) == {200: 4, 429: 4}

    fleet.redis.start()
    for front in fleet.fronts:
        wait_until(lambda: _health(front)["redis"] == "up", 15, "the health to show Redis back")
    key = fleet.add_key(0, "after", "--rpm", "3")
    wait_until(lambda: _knows(fleet.fronts[1], key), 5, "the other replica to know a key added after the restart")
    assert Counter(_chat(fleet.fronts[i % 2], "gpt-4o", key).status_code for i in range(6)) == {200: 3, 429: 3}
    assert _knows(fleet.fronts[1], outage_key)  # known before the restart, and published again by its replica


@pytest.mark.slow
def test_after_redis_restarts_empty_every_replicas_spend_is_shared_again_and_nothing_is_lost(fleet):
    """Runs after the test that kills Redis: it came back empty, and each replica published its totals again."""
    client = fleet.redis.client()
    wait_until(lambda: client.hlen("llm-router:usage:versions") > 0, 10, "the replicas to publish their totals again")
    before = {front.url: _usage_of(front, "spender") for front in fleet.fronts}
    assert before[fleet.fronts[0].url]["requests"] == before[fleet.fronts[1].url]["requests"] >= 6
    key = fleet.add_key(0, "after-restart")
    wait_until(lambda: _knows(fleet.fronts[1], key), 5, "the other replica to know the new key")
    assert _chat(fleet.fronts[1], "gpt-4o", key).status_code == 200
    line = wait_until(lambda: _usage_of(fleet.fronts[0], "after-restart"), 10, "a request after the restart on the other replica")
    assert line["requests"] == 1


@pytest.mark.slow
def test_no_secret_reaches_a_log_health_or_the_files_litellm_reads(fleet):
    for gw in [*fleet.fronts, *fleet.gpus]:
        outputs = [_log(gw), (gw.config.parent / "run" / "litellm-proxy.yaml").read_text()]
        if gw.proc is not None and gw.proc.poll() is None:
            outputs.append(gw.get("/v1/health", key=MASTER).text)
        for secret in fleet.secrets:
            assert not any(secret in output for output in outputs)


@pytest.mark.slow
def test_a_replica_killed_mid_load_fails_its_requests_in_flight_visibly_and_the_other_keeps_serving(fleet):
    killed, survivor = asyncio.run(_load_while(fleet, "slow", "fake-slow-0.5", 60, lambda: _kill(fleet.fronts[0]), after=8))
    assert (killed.hung, killed.unclear_failures, killed.truncated_as_success) == (0, 0, 0), killed.summary()
    assert killed.clear_errors >= 1 and killed.complete + killed.clear_errors == killed.sent, killed.summary()
    assert survivor.complete == survivor.sent, survivor.summary()
