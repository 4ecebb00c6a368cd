"""Throughput: completed requests per second for a fixed time at 1, 16 and 64 concurrent clients.

The client is one asyncio loop in the bench process (aiohttp, a connection pool sized to the
concurrency; see bench/loadgen.py); it shares the machine's cores with the gateway and the upstream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from bench import loadgen
from bench.paths import RequestPath
from bench.stats import percentile

WARMUP_S = 0.25


@dataclass(frozen=True)
class Cell:
    key: str
    label: str
    concurrency: int
    duration_s: float
    completed: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms_per_request: float
    """CPU time the serving process (the gateway, or the upstream for a) spent per completed request."""
    first_error: str | None


@dataclass
class ThroughputResult:
    duration_s: float
    cells: list[Cell]
    sent: dict[str, int]

    def cell(self, key: str, concurrency: int) -> Cell | None:
        return next((c for c in self.cells if c.key == key and c.concurrency == concurrency), None)


def measure(paths: list[RequestPath], concurrencies: list[int], duration_s: float, cpu_seconds: Callable[[RequestPath], float]) -> ThroughputResult:
    """`cpu_seconds(path)`: CPU time used so far by the process serving `path`."""
    cells: list[Cell] = []
    sent: dict[str, int] = {p.key: 0 for p in paths}
    # Concurrency outermost: the paths of one level are measured close together in time.
    for concurrency in concurrencies:
        for path in paths:
            cell, count = asyncio.run(_cell(path, concurrency, duration_s, lambda: cpu_seconds(path)))
            cells.append(cell)
            sent[path.key] += count
    return ThroughputResult(duration_s, cells, sent)


async def _cell(path: RequestPath, concurrency: int, duration_s: float, cpu_seconds: Callable[[], float]) -> tuple[Cell, int]:
    loop = asyncio.get_running_loop()
    body = path.body()
    warm, measured = loadgen.Outcome(), loadgen.Outcome()
    async with loadgen.session(concurrency) as http:

        async def run(until: float, into: loadgen.Outcome) -> None:
            async def worker() -> None:
                while loop.time() < until:
                    # A request still running at the deadline doesn't count: the window is fixed.
                    await loadgen.post(http, path, body, into, lambda: loop.time() <= until)

            await loadgen.gather_workers(concurrency, worker)

        await run(loop.time() + min(WARMUP_S, duration_s), warm)
        cpu_before = cpu_seconds()
        await run(loop.time() + duration_s, measured)
        cpu_used = cpu_seconds() - cpu_before
    ms = sorted(x * 1000 for x in measured.latencies_s)
    per_request = cpu_used * 1000 / len(ms) if ms else float("nan")
    cell = Cell(path.key, path.label, concurrency, duration_s, len(ms), len(measured.errors), len(ms) / duration_s,
                percentile(ms, 50), percentile(ms, 99), per_request, measured.errors[0] if measured.errors else None)
    return cell, warm.sent + measured.sent
