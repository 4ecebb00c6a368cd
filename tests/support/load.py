"""A bounded load generator that classifies every request's ending (used by the load test and bench/soak.py)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class LoadReport:
    sent: int = 0
    complete: int = 0
    clear_errors: int = 0
    hung: int = 0
    truncated_as_success: int = 0
    unclear_failures: int = 0
    streams: int = 0
    by_status: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    """How each request that got no complete answer ended: its HTTP status, or the exception the client
    raised (its type and message) when it got none, e.g. the connection failed."""
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"sent={self.sent} (streams={self.streams}) complete={self.complete} clear_errors={self.clear_errors} "
                f"hung={self.hung} truncated_as_success={self.truncated_as_success} unclear={self.unclear_failures} "
                f"statuses={dict(self.by_status)} failures={dict(self.failures)} in {self.seconds:.1f}s")


async def _one(client: httpx.AsyncClient, url: str, model: str, stream: bool, report: LoadReport, timeout: float) -> None:
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": f"load {random.random():.6f}"}]}
    try:
        async with asyncio.timeout(timeout):
            if not stream:
                response = await client.post(url, json=body)
                report.by_status[response.status_code] += 1
                data = response.json()
                if response.status_code == 200 and data["choices"][0]["message"]["content"]:
                    report.complete += 1
                elif response.status_code >= 400 and data.get("error", {}).get("message"):
                    report.clear_errors += 1
                    report.failures[f"HTTP {response.status_code}"] += 1
                else:
                    report.unclear_failures += 1
                    report.failures[f"HTTP {response.status_code}, unclear"] += 1
                return
            async with client.stream("POST", url, json=body) as response:
                report.by_status[response.status_code] += 1
                if response.status_code != 200:
                    data = json.loads(await response.aread())
                    report.clear_errors += bool(data.get("error", {}).get("message"))
                    report.unclear_failures += not data.get("error", {}).get("message")
                    report.failures[f"HTTP {response.status_code}"] += 1
                    return
                text, done, error = "", False, False
                async for line in response.aiter_lines():
                    if line == "data: [DONE]":
                        done = True
                    elif line.startswith("data: "):
                        event = json.loads(line[6:])
                        error = error or "error" in event
                        text += "".join(c.get("delta", {}).get("content") or "" for c in event.get("choices", []))
                # Every fake upstream ends its answer with the prompt it was sent: a complete answer has it.
                if done and not error and body["messages"][0]["content"] in text:
                    report.complete += 1
                elif done and not error:
                    report.truncated_as_success += 1
                    report.failures["stream truncated, reported as complete"] += 1
                else:
                    report.clear_errors += 1
                    report.failures["stream ended with an error event" if error else "stream ended without [DONE]"] += 1
    except TimeoutError:
        report.hung += 1
        report.failures["hung"] += 1
    except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
        report.clear_errors += 1  # the connection was closed on the client: it knows it failed
        report.failures[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1


async def run_load(base_url: str, models: list[str], total: int, concurrency: int, stream_every: int = 3,
                   timeout: float = 60.0, headers: dict[str, str] | None = None) -> LoadReport:
    report = LoadReport()
    url = f"{base_url}/v1/chat/completions"
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=timeout + 5, limits=limits, headers=headers) as client:
        async def worker() -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                stream = i % stream_every == 0
                report.sent += 1
                report.streams += stream
                await _one(client, url, models[i % len(models)], stream, report, timeout)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    report.seconds = time.monotonic() - started
    return report
