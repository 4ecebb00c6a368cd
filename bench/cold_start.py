"""Cold start: time to first token through the gateway vs the same server started by hand.

By hand = the launch spec's own command line and environment, started by the bench and polled
every 10 ms with a chat completion until one is answered. Through the gateway = a streamed
request for the cold group, until its first token. The difference is the launcher's overhead.
Trials alternate which of the two goes first.

Two starts of a real engine differ by up to a second, far more than the overhead, so each
gateway trial also measures it within its own start: while the launcher starts the server,
the bench polls that server directly, as by hand. The same-start overhead is the gateway's
first token minus the server's own first answer, plus the time from the request to the
server's spawn (read from /proc), which the direct poll can't see.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import httpx

from bench.paths import chat_body, first_token_seen
from bench.processes import RouterGateway, Supervisor, wait_port_free
from tests.support.processes import processes_matching

if TYPE_CHECKING:
    from router_config.spec import LaunchSpec

POLL_S = 0.01


@dataclass(frozen=True)
class ColdTrial:
    by_hand_s: float
    gateway_ttft_s: float
    overhead_ms: float
    """Gateway time to first token minus the by-hand start's first answer (two separate starts)."""
    same_start_overhead_ms: float
    """Within the gateway's own start: first token minus the server's first direct answer, plus the spawn delay."""


@dataclass(frozen=True)
class ColdStartResult:
    engine: str
    group: str
    trials: list[ColdTrial]
    by_hand_median_s: float | None
    gateway_median_s: float | None
    overhead_median_ms: float | None
    """Median of the per-trial differences."""
    same_start_overhead_median_ms: float | None
    skipped: str | None = None


def skipped(engine: str, group: str, why: str) -> ColdStartResult:
    return ColdStartResult(engine, group, [], None, None, None, None, why)


def measure(sup: Supervisor, gateway: RouterGateway, group: str, spec_path: Path, engine: str, trials: int,
            prime: bool = False) -> ColdStartResult:
    """`prime`: start the server once by hand, unmeasured, so that the first measured start doesn't
    pay alone for one-time work (a real engine's caches, cold pages of its files)."""
    from launchers.paths import RuntimePaths
    from router_config.spec import load_spec

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
            through = _through_gateway(gateway, group, spec)
        else:
            through = _through_gateway(gateway, group, spec)
            hand = _by_hand(sup, spec, env)
        results.append(ColdTrial(hand, through.ttft_s, (through.ttft_s - hand) * 1000, through.same_start_overhead_s * 1000))
    return ColdStartResult(
        engine, group, results,
        statistics.median(t.by_hand_s for t in results),
        statistics.median(t.gateway_ttft_s for t in results),
        statistics.median(t.overhead_ms for t in results),
        statistics.median(t.same_start_overhead_ms for t in results),
    )


def _by_hand(sup: Supervisor, spec: LaunchSpec, env: dict[str, str]) -> float:
    """Seconds from starting the server's command to its first answered chat completion."""
    served, timeout = spec.served_model_name, spec.startup_timeout_s
    wait_port_free(spec.port)
    with httpx.Client(timeout=timeout) as client:
        start = perf_counter()
        proc = sup.start(f"by-hand-{served}", spec.argv(), env=env, cwd=spec.source.parent)
        try:
            while True:
                if not proc.alive():
                    raise RuntimeError(f"{served} exited while starting:\n{proc.log_tail()}")
                if perf_counter() - start > timeout:
                    raise RuntimeError(f"{served} did not answer within {timeout:g}s:\n{proc.log_tail()}")
                if _answers(client, spec):
                    return perf_counter() - start
                time.sleep(POLL_S)
        finally:
            sup.stop(proc)
            wait_port_free(spec.port)


@dataclass(frozen=True)
class _GatewayStart:
    ttft_s: float
    same_start_overhead_s: float


def _through_gateway(gateway: RouterGateway, group: str, spec: LaunchSpec) -> _GatewayStart:
    state = gateway.server_state(group)
    if state not in ("stopped", "failed"):
        raise RuntimeError(f"{group} is {state}, not cold")
    wait_port_free(spec.port)
    headers = {"content-type": "application/json", "authorization": f"Bearer {gateway.team_key}"}
    first: float | None = None
    spawned: float | None = None
    direct = _DirectPoll(spec)
    try:
        start = perf_counter()
        direct.begin(start)
        with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", content=chat_body(group, stream=True, max_tokens=8),
                          headers=headers, timeout=spec.startup_timeout_s) as response:
            if response.status_code != 200:
                response.read()
                raise RuntimeError(f"cold request to {group}: HTTP {response.status_code}: {response.text[:500]}")
            for line in response.iter_lines():
                if first is None and first_token_seen(line):
                    first = perf_counter() - start
                    spawned = _spawned_at(spec.served_model_name) - start
    finally:
        # The server answered the gateway, so a direct poll answers within a poll or two.
        answered = direct.finish(wait_s=10.0 if first is not None else 0.0)
        gateway.stop_server(group)
        wait_port_free(spec.port)
    if first is None or spawned is None:
        raise RuntimeError(f"cold request to {group}: the stream ended without a token")
    if answered is None:
        raise RuntimeError(f"cold request to {group}: the server never answered the bench's direct poll")
    return _GatewayStart(first, first - answered + spawned)


class _DirectPoll:
    """Polls the server the launcher is starting, as by hand, and keeps the time of its first answer."""

    def __init__(self, spec: LaunchSpec) -> None:
        self._spec = spec
        self._done = threading.Event()
        self._answered_event = threading.Event()
        self._answered: float | None = None
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._start = 0.0

    def begin(self, start: float) -> None:
        self._start = start
        self._thread.start()

    def finish(self, wait_s: float) -> float | None:
        """Seconds from `start` to the server's first direct answer, waiting up to `wait_s` for it (None if none came)."""
        self._answered_event.wait(wait_s)
        self._done.set()
        self._thread.join(self._spec.startup_timeout_s)
        return self._answered

    def _poll(self) -> None:
        with httpx.Client(timeout=self._spec.startup_timeout_s) as client:
            while not self._done.is_set():
                if _answers(client, self._spec):
                    self._answered = perf_counter() - self._start
                    self._answered_event.set()
                    return
                time.sleep(POLL_S)


def _answers(client: httpx.Client, spec: LaunchSpec) -> bool:
    """One poll, as by hand: whether the server answers a one-token chat completion now."""
    try:
        response = client.post(f"{spec.base_url}/v1/chat/completions", content=chat_body(spec.served_model_name, max_tokens=1),
                               headers={"content-type": "application/json"})
    except httpx.TransportError:
        return False
    return response.status_code == 200


def _spawned_at(served_name: str) -> float:
    """When the oldest live process serving `served_name` was spawned, on the perf_counter clock.

    Process start times come from /proc in clock ticks since boot; /proc/uptime is read on the
    same clock, so the age is exact to a tick (10 ms), unlike psutil's create_time, whose boot
    time is rounded to the second.
    """
    ages = [_age_s(p.pid) for p in processes_matching(served_name)]
    ages = [a for a in ages if a is not None]
    if not ages:
        raise RuntimeError(f"no live process serves {served_name}")
    return perf_counter() - max(ages)


def _age_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # Field 22 (starttime); the command name (field 2) may contain spaces, so count from its ')'.
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
