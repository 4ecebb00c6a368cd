"""`python -m bench.limiter_cost [--rounds N] [--output FILE]`: what a team key's rpm limit costs per request,
counted by llm-router's door in each process (one gateway, no Redis) or by LiteLLM's own limiter in the
Redis replicas share (`llm_router.redis`).

Three paths, one worker each, one fake upstream, one real redis-server on loopback:
- door: no `llm_router.redis`; a key with an rpm limit, counted in the gateway process;
- redis: `llm_router.redis` set; the same kind of key, counted by LiteLLM's v3 limiter in Redis
  (a Lua script before the call, a pipelined counter update after it);
- redis, no rpm: the same gateway, a key without a limit: LiteLLM's limiter is on but counts nothing.

Sequential requests, in interleaved rounds (a block of each path per round, in rotating order) so
that noise on the shared machine hits every path alike. Per path: latency percentiles, the
gateway's CPU time per request, and for the Redis paths the commands Redis ran per request and its
own CPU time per request. The limits are far above what the run sends: every request is answered.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

from bench.processes import REPO
from bench.stats import Summary, summarize_ms
from tests.fakes.cloud import FakeCloud
from tests.support.gateway import Gateway
from tests.support.redis import RedisServer

BLOCK = 25
WARMUP = 50
RPM = 1_000_000
MASTER = "sk-bench-limiter-master-0001"
REDIS_PASSWORD = "bench-limiter-redis-0001"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello to the benchmark."}], "max_tokens": 16}


@dataclass
class PathResult:
    path: str
    latency_ms: Summary | None = None
    gateway_cpu_ms_per_request: float = 0.0
    redis_commands_per_request: float = 0.0
    redis_cpu_ms_per_request: float = 0.0
    samples_s: list[float] = field(default_factory=list, repr=False)
    gateway_cpu_s: float = field(default=0.0, repr=False)
    redis_commands: int = field(default=0, repr=False)
    redis_cpu_s: float = field(default=0.0, repr=False)


@dataclass(frozen=True)
class _Path:
    name: str
    gateway: Gateway
    key: str


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.limiter_cost", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / f"limiter-cost-{dt.date.today()}.json")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="llm-router-bench-limiter-"))
    (work / "redis").mkdir()
    env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-bench-limiter-openai-0001", "LLM_ROUTER_REDIS_PASSWORD": REDIS_PASSWORD}
    with RedisServer(work / "redis", REDIS_PASSWORD) as redis_server, FakeCloud() as cloud:
        door_config = _config(work / "door", cloud.url, None)
        shared_config = _config(work / "redis-gw", cloud.url, redis_server.port)
        with Gateway(door_config, env) as door, Gateway(shared_config, env) as shared:
            paths = [_Path("door", door, _add_key(door_config, env, "limited", "--rpm", str(RPM))),
                     _Path("redis", shared, _add_key(shared_config, env, "limited", "--rpm", str(RPM))),
                     _Path("redis, no rpm", shared, _add_key(shared_config, env, "unlimited"))]
            results = _measure(paths, args.rounds, redis_server.client())
    door_p50 = results[0].latency_ms.p50 if results[0].latency_ms else 0.0
    for r in results:
        assert r.latency_ms is not None
        print(f"{r.path:>14}: p50 {r.latency_ms.p50:.2f} ms (+{r.latency_ms.p50 - door_p50:.2f} over door), p99 {r.latency_ms.p99:.2f} ms, "
              f"gateway CPU {r.gateway_cpu_ms_per_request:.2f} ms/request, Redis {r.redis_commands_per_request:.1f} commands "
              f"and {r.redis_cpu_ms_per_request:.3f} ms CPU per request")
    result = {"date": str(dt.date.today()), "requests_per_path": args.rounds * BLOCK, "paths": [_as_json(r) for r in results],
              "redis_minus_door_p50_ms": round(results[1].latency_ms.p50 - door_p50, 3),  # type: ignore[union-attr]
              "redis_minus_door_cpu_ms": round(results[1].gateway_cpu_ms_per_request - results[0].gateway_cpu_ms_per_request, 3)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


def _config(work: Path, cloud_url: str, redis_port: int | None) -> Path:
    work.mkdir(parents=True)
    redis = f"\n  redis: {{host: 127.0.0.1, port: {redis_port}, password_env: LLM_ROUTER_REDIS_PASSWORD}}" if redis_port else ""
    config = work / "litellm_config.yaml"
    config.write_text(f"""model_list:
  - model_name: gpt-4o
    litellm_params: {{model: openai/gpt-4o, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}
router_settings: {{num_retries: 0}}
llm_router:
  keys_file: keys.yaml{redis}
""")
    return config


def _add_key(config: Path, env: dict[str, str], name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "llm_router.cli", "keys", "add", name, "--team", "bench", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **env}, check=True)
    return done.stdout.strip()


def _measure(paths: list[_Path], rounds: int, redis_client) -> list[PathResult]:  # type: ignore[no-untyped-def]
    results = {p.name: PathResult(p.name) for p in paths}
    redis_pid = int(redis_client.info("server")["process_id"])
    with httpx.Client(timeout=30) as client:
        for p in paths:
            for _ in range(WARMUP):
                _ask(client, p)
        for round_no in range(rounds):
            for p in paths[round_no % len(paths):] + paths[:round_no % len(paths)]:
                r = results[p.name]
                cpu_before, commands_before, redis_cpu_before = _cpu(p.gateway), _commands(redis_client), _cpu_of(redis_pid)
                for _ in range(BLOCK):
                    r.samples_s.append(_ask(client, p))
                r.gateway_cpu_s += _cpu(p.gateway) - cpu_before
                # Less the INFO call that read the counters.
                r.redis_commands += _commands(redis_client) - commands_before - 1
                r.redis_cpu_s += _cpu_of(redis_pid) - redis_cpu_before
    for r in results.values():
        n = len(r.samples_s)
        r.latency_ms = summarize_ms(r.samples_s)
        r.gateway_cpu_ms_per_request = round(r.gateway_cpu_s * 1000 / n, 3)
        r.redis_commands_per_request = round(r.redis_commands / n, 2)
        r.redis_cpu_ms_per_request = round(r.redis_cpu_s * 1000 / n, 4)
    return list(results.values())


def _ask(client: httpx.Client, p: _Path) -> float:
    started = time.perf_counter()
    answer = client.post(f"{p.gateway.url}/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {p.key}"})
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    return elapsed


def _cpu(gateway: Gateway) -> float:
    assert gateway.proc is not None
    root = psutil.Process(gateway.proc.pid)
    return sum(_cpu_of(p.pid) for p in [root, *root.children(recursive=True)])


def _cpu_of(pid: int) -> float:
    try:
        return sum(psutil.Process(pid).cpu_times()[:2])
    except psutil.Error:
        return 0.0


def _commands(redis_client) -> int:  # type: ignore[no-untyped-def]
    return sum(int(stats["calls"]) for stats in redis_client.info("commandstats").values())


def _as_json(r: PathResult) -> dict:
    return {k: v for k, v in asdict(r).items() if k not in ("samples_s", "gateway_cpu_s", "redis_commands", "redis_cpu_s")}


if __name__ == "__main__":
    sys.exit(main())
