"""Cold-start stampede: many concurrent requests for one cold local model.

Exactly one server process must be started and every request answered. Processes are
counted by command line (the served name is unique to this run), polled while the
requests are in flight.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from bench import loadgen
from bench.paths import RequestPath
from bench.processes import RouterGateway, wait_port_free
from bench.stats import percentile
from tests.support.processes import processes_matching

POLL_S = 0.1


@dataclass(frozen=True)
class StampedeResult:
    gateway: str
    requests: int
    answered: int
    errors: int
    first_error: str | None
    processes_started: int
    wait_p50_s: float
    wait_p99_s: float
    wait_max_s: float


class _ProcessWatch(threading.Thread):
    def __init__(self, marker: str):
        super().__init__(daemon=True)
        self.marker = marker
        self.pids: set[int] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.pids.update(p.pid for p in processes_matching(self.marker))
            self.done.wait(POLL_S)


def measure(gateway: RouterGateway, label: str, group: str, served_name: str, port: int, requests: int) -> StampedeResult:
    if gateway.server_state(group) not in ("stopped", "failed"):
        raise RuntimeError(f"{group} is not cold")
    watch = _ProcessWatch(served_name)
    watch.start()
    try:
        waits, errors = asyncio.run(_storm(gateway, group, requests))
        watch.pids.update(p.pid for p in processes_matching(served_name))
    finally:
        watch.done.set()
        watch.join()
        _stop_everywhere(gateway, group, served_name)
        wait_port_free(port)
    ordered = sorted(waits)
    return StampedeResult(label, requests, len(waits), len(errors), errors[0] if errors else None, len(watch.pids),
                          percentile(ordered, 50), percentile(ordered, 99), ordered[-1] if ordered else float("nan"))


async def _storm(gateway: RouterGateway, group: str, requests: int) -> tuple[list[float], list[str]]:
    path = RequestPath("stampede", group, gateway.url, group, gateway.team_key)
    outcome = loadgen.Outcome()
    body = path.body()
    async with loadgen.session(requests) as http:
        gate = asyncio.Event()

        async def one() -> None:
            await gate.wait()
            await loadgen.post(http, path, body, outcome, lambda: True)

        tasks = [asyncio.create_task(one()) for _ in range(requests)]
        await asyncio.sleep(0)  # every task is waiting on the gate: they start together
        gate.set()
        await asyncio.gather(*tasks)
    return outcome.latencies_s, outcome.errors


def _stop_everywhere(gateway: RouterGateway, group: str, served_name: str) -> None:
    # With several workers the stop lands on one of them; a worker that only adopted the
    # server stops it too (it knows the pid from the shared state file). Retry a few times.
    for _ in range(6):
        gateway.stop_server(group)
        if not processes_matching(served_name):
            return
        time.sleep(0.5)
