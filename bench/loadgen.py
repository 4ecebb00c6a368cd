"""Concurrent load from one asyncio loop, with aiohttp.

Why not httpx.AsyncClient: on this machine its connection pool costs the client a whole core
at 64 concurrent requests (about 100 req/s against the fake upstream, the client at 100% CPU),
while aiohttp serves ~3,000 req/s at 64 clients on about half a core. The client shares the
cores with the servers it measures, so its own cost matters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from time import perf_counter

import aiohttp

from bench.paths import RequestPath

TIMEOUT_S = 120.0


@dataclass
class Outcome:
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: int = 0


def session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))


async def post(http: aiohttp.ClientSession, path: RequestPath, body: bytes, into: Outcome, record: Callable[[], bool]) -> None:
    """One request; its latency or error is kept only if `record()` is still true when it ends."""
    start = perf_counter()
    into.sent += 1
    try:
        async with http.post(path.chat_url, data=body, headers=path.headers) as response:
            payload = await response.read()
            ok, problem = response.status == 200, f"HTTP {response.status}: {payload[:200]!r}"
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        ok, problem = False, f"{type(exc).__name__}: {exc}"[:300]
    if record():
        if ok:
            into.latencies_s.append(perf_counter() - start)
        else:
            into.errors.append(problem)


async def gather_workers(count: int, worker: Callable[[], Awaitable[None]]) -> None:
    await asyncio.gather(*(worker() for _ in range(count)))
