"""Gateway memory: RSS idle and after many requests, llm-router next to stock LiteLLM.

RSS is summed over the gateway process and its descendants in its own process group, which
leaves out the model servers the launcher starts (they run in sessions of their own).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

from bench import loadgen
from bench.paths import RequestPath
from bench.processes import Managed

MB = 1024 * 1024
TOP_UP_CONCURRENCY = 16


@dataclass(frozen=True)
class Reading:
    mb: float
    requests: int
    """Requests the gateway had answered when read."""


@dataclass(frozen=True)
class MemoryResult:
    key: str
    label: str
    at_start: Reading
    idle: Reading
    after: Reading
    growth_pct: float
    """(after - idle) / idle: idle is read after the warm-up, so first-use imports don't count as growth."""


def read(process: Managed, requests: int, samples: int = 5) -> Reading:
    values = []
    for _ in range(samples):
        values.append(process.rss_bytes() / MB)
        time.sleep(0.1)
    return Reading(round(statistics.median(values), 1), requests)


def result(key: str, label: str, at_start: Reading, idle: Reading, after: Reading) -> MemoryResult:
    return MemoryResult(key, label, at_start, idle, after, round((after.mb - idle.mb) / idle.mb * 100, 2))


def send(path: RequestPath, count: int, concurrency: int = TOP_UP_CONCURRENCY) -> int:
    """Send `count` requests; return how many failed."""
    return asyncio.run(_send(path, count, concurrency)) if count > 0 else 0


async def _send(path: RequestPath, count: int, concurrency: int) -> int:
    remaining = count
    outcome = loadgen.Outcome()
    body = path.body()
    async with loadgen.session(concurrency) as http:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await loadgen.post(http, path, body, outcome, lambda: True)

        await loadgen.gather_workers(concurrency, worker)
    return len(outcome.errors)
