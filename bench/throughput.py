"""Throughput: completed requests per second for a fixed time at 1, 16 and 64 concurrent clients.

The client is one asyncio loop in the bench process with a connection pool sized to the
concurrency; it shares the machine's cores with the gateway and the upstream.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from time import perf_counter

import httpx

from bench.paths import RequestPath
from bench.stats import percentile

WARMUP_S = 0.5


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
    first_error: str | None


@dataclass
class ThroughputResult:
    duration_s: float
    cells: list[Cell]
    sent: dict[str, int]

    def cell(self, key: str, concurrency: int) -> Cell | None:
        return next((c for c in self.cells if c.key == key and c.concurrency == concurrency), None)


def measure(paths: list[RequestPath], concurrencies: list[int], duration_s: float) -> ThroughputResult:
    cells: list[Cell] = []
    sent: dict[str, int] = {p.key: 0 for p in paths}
    # Concurrency outermost: the paths of one level are measured close together in time.
    for concurrency in concurrencies:
        for path in paths:
            cell, count = asyncio.run(_cell(path, concurrency, duration_s))
            cells.append(cell)
            sent[path.key] += count
    return ThroughputResult(duration_s, cells, sent)


async def _cell(path: RequestPath, concurrency: int, duration_s: float) -> tuple[Cell, int]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    body = path.body()
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker(until: float, record: bool) -> None:
            nonlocal sent
            loop = asyncio.get_running_loop()
            while loop.time() < until:
                start = perf_counter()
                sent += 1
                try:
                    response = await client.post(path.chat_url, content=body, headers=path.headers)
                    ok = response.status_code == 200
                    problem = f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, problem = False, f"{type(exc).__name__}: {exc}"[:300]
                # A request still running at the deadline doesn't count: the window is fixed.
                if record and loop.time() <= until:
                    if ok:
                        latencies.append(perf_counter() - start)
                    else:
                        errors.append(problem)

        loop = asyncio.get_running_loop()
        warm_until = loop.time() + min(WARMUP_S, duration_s)
        await asyncio.gather(*(worker(warm_until, False) for _ in range(concurrency)))
        until = loop.time() + duration_s
        await asyncio.gather(*(worker(until, True) for _ in range(concurrency)))
    ms = sorted(x * 1000 for x in latencies)
    cell = Cell(path.key, path.label, concurrency, duration_s, len(latencies), len(errors), len(latencies) / duration_s,
                percentile(ms, 50), percentile(ms, 99), errors[0] if errors else None)
    return cell, sent
