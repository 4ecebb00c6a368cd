"""Cold start: time to first token through the gateway vs the same server started by hand.

By hand = the launch spec's own command line and environment, started by the bench and polled
every 10 ms with a chat completion until one is answered. Through the gateway = a streamed
request for the cold group, until its first token. The difference is the launcher's overhead.
Trials alternate which of the two goes first.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import httpx

from bench.paths import chat_body, first_token_seen
from bench.processes import RouterGateway, Supervisor, wait_port_free

if TYPE_CHECKING:
    from launchers.spec import LaunchSpec

POLL_S = 0.01


@dataclass(frozen=True)
class ColdTrial:
    by_hand_s: float
    gateway_ttft_s: float
    overhead_ms: float


@dataclass(frozen=True)
class ColdStartResult:
    engine: str
    group: str
    trials: list[ColdTrial]
    by_hand_median_s: float | None
    gateway_median_s: float | None
    overhead_median_ms: float | None
    """Median of the per-trial differences."""
    skipped: str | None = None


def skipped(engine: str, group: str, why: str) -> ColdStartResult:
    return ColdStartResult(engine, group, [], None, None, None, why)


def measure(sup: Supervisor, gateway: RouterGateway, group: str, spec_path: Path, engine: str, trials: int,
            prime: bool = False) -> ColdStartResult:
    """`prime`: start the server once by hand, unmeasured, so that the first measured start doesn't
    pay alone for one-time work (a real engine's caches, cold pages of its files)."""
    from launchers.server import RuntimePaths
    from launchers.spec import load_spec

    spec = load_spec(spec_path)
    # The environment the launcher gives its servers (launchers/server.py, _spawn).
    paths = RuntimePaths(spec_path.parent.parent / "run", spec_path.parent.parent / "logs")
    cache = paths.state_dir / "cache" / spec.name
    cache.mkdir(parents=True, exist_ok=True)
    env = sup.env({"VLLM_CACHE_ROOT": str(cache), "TMPDIR": str(paths.tmp_dir(spec.name)), **spec.environment()})
    if prime:
        _by_hand(sup, spec, env)
    results = []
    for i in range(trials):
        if i % 2 == 0:
            hand = _by_hand(sup, spec, env)
            through = _through_gateway(gateway, group, spec.port, spec.startup_timeout_s)
        else:
            through = _through_gateway(gateway, group, spec.port, spec.startup_timeout_s)
            hand = _by_hand(sup, spec, env)
        results.append(ColdTrial(hand, through, (through - hand) * 1000))
    return ColdStartResult(
        engine, group, results,
        statistics.median(t.by_hand_s for t in results),
        statistics.median(t.gateway_ttft_s for t in results),
        statistics.median(t.overhead_ms for t in results),
    )


def _by_hand(sup: Supervisor, spec: LaunchSpec, env: dict[str, str]) -> float:
    """Seconds from starting the server's command to its first answered chat completion."""
    served, timeout = spec.served_model_name, spec.startup_timeout_s
    wait_port_free(spec.port)
    body = chat_body(served, max_tokens=1)
    with httpx.Client(timeout=timeout) as client:
        start = perf_counter()
        proc = sup.start(f"by-hand-{served}", spec.argv(), env=env, cwd=spec.source.parent)
        try:
            while True:
                if not proc.alive():
                    raise RuntimeError(f"{served} exited while starting:\n{proc.log_tail()}")
                if perf_counter() - start > timeout:
                    raise RuntimeError(f"{served} did not answer within {timeout:g}s:\n{proc.log_tail()}")
                try:
                    response = client.post(f"{spec.base_url}/v1/chat/completions", content=body, headers={"content-type": "application/json"})
                    if response.status_code == 200:
                        return perf_counter() - start
                except httpx.TransportError:
                    pass
                time.sleep(POLL_S)
        finally:
            sup.stop(proc)
            wait_port_free(spec.port)


def _through_gateway(gateway: RouterGateway, group: str, port: int, timeout: float) -> float:
    state = gateway.server_state(group)
    if state not in ("stopped", "failed"):
        raise RuntimeError(f"{group} is {state}, not cold")
    wait_port_free(port)
    headers = {"content-type": "application/json", "authorization": f"Bearer {gateway.team_key}"}
    first: float | None = None
    try:
        start = perf_counter()
        with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", content=chat_body(group, stream=True, max_tokens=8),
                          headers=headers, timeout=timeout) as response:
            if response.status_code != 200:
                response.read()
                raise RuntimeError(f"cold request to {group}: HTTP {response.status_code}: {response.text[:500]}")
            for line in response.iter_lines():
                if first is None and first_token_seen(line):
                    first = perf_counter() - start
    finally:
        gateway.stop_server(group)
        wait_port_free(port)
    if first is None:
        raise RuntimeError(f"cold request to {group}: the stream ended without a token")
    return first
