"""One setting's effect on the per-request cost of `llm-router serve`, over several gateway processes each way.

    python -m bench.ab VARIANT [--pairs 3] [--requests 1500]

Each pair is two fresh one-worker gateways on the same fake upstream, one without the setting (A,
llm-router's default) and one with it (B), started together and measured in interleaved blocks of
sequential requests (the explicit local model with a team key, path (c) of the suite), so noise on
the shared machine falls on both alike. Per process: p50 latency and the gateway's CPU per request.
The figures are B minus A, per pair, and their mean: a setting that brings back work a cut took
off shows the cut's gain as a positive difference. Writes bench/results/ab-VARIANT-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench import configs
from bench.paths import RequestPath
from bench.processes import REPO, RouterGateway, Server, Supervisor, add_team_key, launch_router, start_upstream, wait_ready
from bench.stats import percentile
from tests.support.gateway import free_port

BLOCK = 50
WARM_UP = 300
ConfigEdit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Variant:
    """How B differs from A: the setting that brings a cut's work back, or a setting to try."""

    description: str
    env: dict[str, str] = field(default_factory=dict)
    edit: ConfigEdit | None = None


def _llm_router(**settings: Any) -> ConfigEdit:
    return lambda config: config["llm_router"].update(settings)


def _litellm_settings(**settings: Any) -> ConfigEdit:
    return lambda config: config["litellm_settings"].update(settings)


def _priced(input_cost: float, output_cost: float) -> ConfigEdit:
    def edit(config: dict[str, Any]) -> None:
        for entry in config["model_list"]:
            if entry["model_name"] == configs.LOCAL_GROUP:
                entry["model_info"].update(input_cost_per_token=input_cost, output_cost_per_token=output_cost)

    return edit


VARIANTS: dict[str, Variant] = {
    "metrics-all": Variant("litellm_settings.prometheus_metrics_config: [] (every metric of LiteLLM's prometheus callback)",
                           edit=_litellm_settings(prometheus_metrics_config=[])),
    "zero-price": Variant("the local group declares a price of 0 per token", edit=_priced(0.0, 0.0)),
    "metrics-off": Variant("llm_router.metrics: false (no LiteLLM Prometheus callback, no /metrics)", edit=_llm_router(metrics=False)),
}


@dataclass(frozen=True)
class Process:
    side: str
    p50_ms: float
    cpu_ms_per_request: float


@dataclass(frozen=True)
class AbResult:
    variant: str
    description: str
    date: str
    requests_per_process: int
    processes: list[Process]
    p50_b_minus_a_ms: list[float]
    cpu_b_minus_a_ms: list[float]

    @property
    def mean_p50_ms(self) -> float:
        return statistics.fmean(self.p50_b_minus_a_ms)

    @property
    def mean_cpu_ms(self) -> float:
        return statistics.fmean(self.cpu_b_minus_a_ms)


def measure(name: str, pairs: int, requests: int, log: Callable[[str], None]) -> AbResult:
    variant = VARIANTS[name]
    work = Path(tempfile.mkdtemp(prefix=f"llm-router-ab-{name}-"))
    processes: list[Process] = []
    with Supervisor(work / "logs") as sup:
        port = free_port()
        upstream = start_upstream(sup, configs.upstream_argv(port), port)
        for i in range(pairs):
            log(f"pair {i + 1} of {pairs}: starting A and B")
            a = _gateway(sup, work / f"a{i}", upstream, port, Variant("A"))
            b = _gateway(sup, work / f"b{i}", upstream, port, variant)
            for g in (a, b):
                wait_ready(g)
            processes += _interleaved(a, b, requests)
            sup.stop(a.process)
            sup.stop(b.process)
            log(f"pair {i + 1}: A p50 {processes[-2].p50_ms:.2f} ms, {processes[-2].cpu_ms_per_request:.2f} ms CPU; "
                f"B p50 {processes[-1].p50_ms:.2f} ms, {processes[-1].cpu_ms_per_request:.2f} ms CPU")
    a_side, b_side = processes[0::2], processes[1::2]
    return AbResult(name, variant.description, dt.date.today().isoformat(), requests, processes,
                    [b.p50_ms - a.p50_ms for a, b in zip(a_side, b_side)],
                    [b.cpu_ms_per_request - a.cpu_ms_per_request for a, b in zip(a_side, b_side)])


def _gateway(sup: Supervisor, directory: Path, upstream: Server, port: int, variant: Variant) -> RouterGateway:
    setup, model_list = configs.write_router(directory, port, sup.marker[:8] + directory.name, None)
    if variant.edit is not None:
        config = yaml.safe_load(setup.config.read_text())
        variant.edit(config)
        setup.config.write_text(yaml.safe_dump(config, sort_keys=False))
    key = add_team_key(sup, setup.config, [m["model_name"] for m in model_list])
    return launch_router(sup, f"gateway-{directory.name}", setup.config, "sk-bench-master-" + sup.marker, key, env=variant.env)


def _interleaved(a: RouterGateway, b: RouterGateway, requests: int) -> list[Process]:
    paths = [RequestPath(g.name, g.name, g.url, configs.LOCAL_GROUP, g.team_key) for g in (a, b)]
    clients = [httpx.Client(timeout=60) for _ in paths]
    latencies: list[list[float]] = [[], []]
    cpu = [0.0, 0.0]
    try:
        for client, path in zip(clients, paths):
            _send(client, path, WARM_UP, [])
        for block in range(-(-requests // BLOCK)):
            for i in (0, 1) if block % 2 == 0 else (1, 0):
                gateway = (a, b)[i]
                before = gateway.process.cpu_seconds()
                _send(clients[i], paths[i], min(BLOCK, requests - len(latencies[i])), latencies[i])
                cpu[i] += gateway.process.cpu_seconds() - before
    finally:
        for client in clients:
            client.close()
    return [Process(side, percentile(sorted(lat), 50) * 1000, 1000 * c / len(lat)) for side, lat, c in zip("AB", latencies, cpu)]


def _send(client: httpx.Client, path: RequestPath, count: int, into: list[float]) -> None:
    body = path.body()
    for _ in range(count):
        start = time.perf_counter()
        client.post(path.chat_url, content=body, headers=path.headers).raise_for_status()
        into.append(time.perf_counter() - start)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1500)
    args = parser.parse_args(argv)
    result = measure(args.variant, args.pairs, args.requests, lambda line: print(line, file=sys.stderr, flush=True))
    out = REPO / "bench" / "results" / f"ab-{args.variant}-{result.date}.json"
    out.write_text(json.dumps({**asdict(result), "mean_p50_b_minus_a_ms": result.mean_p50_ms,
                               "mean_cpu_b_minus_a_ms": result.mean_cpu_ms}, indent=2) + "\n")
    print(f"{args.variant}: {result.description}\n  B-A p50 per pair (ms): {[round(x, 3) for x in result.p50_b_minus_a_ms]}, "
          f"mean {result.mean_p50_ms:+.3f}\n  B-A CPU per request per pair (ms): {[round(x, 3) for x in result.cpu_b_minus_a_ms]}, "
          f"mean {result.mean_cpu_ms:+.3f}\n  wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
