"""Overhead per request: sequential latency of each path, non-streaming and streaming.

The paths are measured in interleaved rounds (a block of each path per round, in rotating
order) so that a noisy neighbour on the shared machine hits every path alike. Blocks are short
(20 request pairs in a full run, well under a second): a burst of noise lasting seconds then
spreads over every path instead of landing on one path's block.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from time import perf_counter

import httpx

from bench.paths import RequestPath, first_token_seen
from bench.stats import Summary, summarize_ms


_CLIENT_KEEP_ALIVE_S = 4.0


class RequestFailed(Exception):
    pass


@dataclass(frozen=True)
class PathLatency:
    key: str
    label: str
    nonstream: Summary
    ttft: Summary
    stream_total: Summary
    errors: int
    first_error: str | None


@dataclass(frozen=True)
class Overhead:
    """One llm-router path against stock LiteLLM (b) and the direct call (a), same run."""

    key: str
    minus_stock_p50_ms: float
    minus_stock_p99_ms: float
    minus_stock_mean_ms: float
    ttft_minus_stock_p50_ms: float
    ttft_minus_stock_p99_ms: float
    share_of_stock_overhead_p50: float
    """(x - a) / (b - a) at p50: 1.0 means as much overhead over a direct call as stock LiteLLM."""
    share_of_stock_overhead_p99: float


@dataclass
class LatencyResult:
    requests_per_path: int
    rounds: int
    paths: list[PathLatency]
    overheads: list[Overhead]
    sent: dict[str, int]
    samples_ms: dict[str, dict[str, list[float]]] = field(repr=False)
    """Raw samples for the plot; left out of the JSON."""

    def path(self, key: str) -> PathLatency:
        return next(p for p in self.paths if p.key == key)


def timed_request(client: httpx.Client, path: RequestPath) -> float:
    start = perf_counter()
    response = client.post(path.chat_url, content=path.body(), headers=path.headers)
    elapsed = perf_counter() - start
    if response.status_code != 200:
        raise RequestFailed(f"HTTP {response.status_code}: {response.text[:300]}")
    return elapsed


def timed_stream(client: httpx.Client, path: RequestPath) -> tuple[float, float]:
    """(time to first token, total) of one streamed completion."""
    start = perf_counter()
    first: float | None = None
    with client.stream("POST", path.chat_url, content=path.body(stream=True), headers=path.headers) as response:
        if response.status_code != 200:
            response.read()
            raise RequestFailed(f"HTTP {response.status_code}: {response.text[:300]}")
        for line in response.iter_lines():
            if first is None and first_token_seen(line):
                first = perf_counter() - start
    total = perf_counter() - start
    if first is None:
        raise RequestFailed("stream ended without a token")
    return first, total


@dataclass
class _Samples:
    nonstream: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    stream_total: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    sent: int = 0

    def failed(self, exc: Exception) -> None:
        self.errors += 1
        self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"[:300]


def warm_up(paths: list[RequestPath], count: int) -> dict[str, int]:
    """`count` unrecorded request pairs per path; returns requests sent per path."""
    sent = {}
    for p in paths:
        samples = _Samples()
        with httpx.Client(timeout=60) as client:
            _block(client, p, count, samples, record=False)
        if samples.errors:
            raise RuntimeError(f"{p.label}: {samples.errors} of {count} warm-up requests failed: {samples.first_error}")
        sent[p.key] = samples.sent
    return sent


def measure(paths: list[RequestPath], requests_per_path: int, rounds: int) -> LatencyResult:
    rounds = max(1, min(rounds, requests_per_path))
    block = -(-requests_per_path // rounds)
    samples = {p.key: _Samples() for p in paths}
    # A block's connection idles while the other paths run. The client drops it before stock
    # LiteLLM would (uvicorn closes idle connections after 5 s), so no request meets a closing one.
    limits = httpx.Limits(keepalive_expiry=_CLIENT_KEEP_ALIVE_S)
    clients = {p.key: httpx.Client(timeout=60, limits=limits) for p in paths}
    try:
        for r in range(rounds):
            order = paths[r % len(paths):] + paths[: r % len(paths)]
            for p in order:
                todo = min(block, requests_per_path - len(samples[p.key].nonstream) - samples[p.key].errors)
                _block(clients[p.key], p, max(todo, 0), samples[p.key], record=True)
    finally:
        for client in clients.values():
            client.close()
    results = [PathLatency(p.key, p.label, summarize_ms(s.nonstream), summarize_ms(s.ttft), summarize_ms(s.stream_total), s.errors, s.first_error)
               for p, s in ((p, samples[p.key]) for p in paths)]
    by_key = {r.key: r for r in results}
    overheads = [_overhead(by_key[k], by_key["b"], by_key["a"]) for k in ("c", "d", "f") if k in by_key and "a" in by_key and "b" in by_key]
    raw = {k: {"nonstream": [x * 1000 for x in s.nonstream], "ttft": [x * 1000 for x in s.ttft]} for k, s in samples.items()}
    return LatencyResult(requests_per_path, rounds, results, overheads, {k: s.sent for k, s in samples.items()}, raw)


def _block(client: httpx.Client, path: RequestPath, count: int, into: _Samples, record: bool) -> None:
    # The client's own garbage collections would land on whichever path happens to be running.
    gc.collect()
    gc.disable()
    try:
        for _ in range(count):
            into.sent += 2
            try:
                plain = timed_request(client, path)
                first, total = timed_stream(client, path)
            except (RequestFailed, httpx.HTTPError) as exc:
                into.failed(exc)
                continue
            if record:
                into.nonstream.append(plain)
                into.ttft.append(first)
                into.stream_total.append(total)
    finally:
        gc.enable()


def _overhead(x: PathLatency, stock: PathLatency, direct: PathLatency) -> Overhead:
    return Overhead(
        key=x.key,
        minus_stock_p50_ms=x.nonstream.p50 - stock.nonstream.p50,
        minus_stock_p99_ms=x.nonstream.p99 - stock.nonstream.p99,
        minus_stock_mean_ms=x.nonstream.mean - stock.nonstream.mean,
        ttft_minus_stock_p50_ms=x.ttft.p50 - stock.ttft.p50,
        ttft_minus_stock_p99_ms=x.ttft.p99 - stock.ttft.p99,
        share_of_stock_overhead_p50=_share(x.nonstream.p50, stock.nonstream.p50, direct.nonstream.p50),
        share_of_stock_overhead_p99=_share(x.nonstream.p99, stock.nonstream.p99, direct.nonstream.p99),
    )


def _share(x: float, stock: float, direct: float) -> float:
    return (x - direct) / (stock - direct) if stock > direct else float("nan")
