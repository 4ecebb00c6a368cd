"""What writing the spend ledger costs per request, in CPU (issue 27: at most 0.2 ms).

In-process, the path a gateway worker runs after each answer (router_plugins/accounting.py): the row
built from LiteLLM's logging payload, an `auto` request's baseline priced with LiteLLM's cost map,
the Prometheus counters (in multiprocess mode, as under `llm-router serve`), and the awaited commit
of the row with its day's totals to the state database by its writer thread. An `auto` request to
a local model, the most work a row takes.

CPU is the process's (every thread: the writer's commits included), per request, less that of the
same loop awaiting nothing, in interleaved rounds so noise on the machine falls on both alike; with
1 callback at a time (one transaction per row, the worst case) and with 16 at once (as under load,
when a transaction commits several rows). Commit latency is the wall time a callback waits.

Standalone: `python -m bench.ledger_cost [--requests N] [--output FILE]` writes its JSON (default
bench/results/ledger-cost-<date>.json). In the suite it runs in a subprocess of its own (`--json OUT`)
once the gateways have started and sit idle.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.processes import REPO
from bench.stats import Summary, summarize_ms

CPU_MAX_MS = 0.2
"""Issue 27: writing the ledger adds no more than 0.2 ms of CPU per request."""
ROUNDS = 10
CONCURRENCIES = (1, 16)


@dataclass(frozen=True)
class Cell:
    concurrency: int
    requests: int
    cpu_ms_per_request: float
    """Process CPU per request, less the empty loop's."""
    commit_wait_ms: Summary
    rows_per_s: float


@dataclass(frozen=True)
class LedgerCostResult:
    cells: list[Cell]
    database_mb: float

    @property
    def worst_cpu_ms(self) -> float:
        return max(c.cpu_ms_per_request for c in self.cells)


def _config(directory: Path) -> Path:
    config = directory / "litellm_config.yaml"
    config.write_text("""model_list:
  - model_name: claude-sonnet
    litellm_params: {model: anthropic/claude-sonnet-4-5, api_key: os.environ/ANTHROPIC_API_KEY}
  - model_name: local-text
    litellm_params: {model: hosted_vllm/bench-text, api_base: "http://127.0.0.1:9/v1", api_key: none}
routing: {vision: [claude-sonnet], complex: [claude-sonnet], default: [local-text]}
llm_router: {state_dir: run}
""")
    return config


def measure(requests: int) -> LedgerCostResult:
    scratch = Path(tempfile.mkdtemp(prefix="llm-router-bench-ledger-"))
    # As under `llm-router serve`: prometheus_client in multiprocess mode, set before it is imported.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(scratch))
    from router_config import environment

    environment.apply_defaults()  # LiteLLM offline, as the gateway runs it
    from router_config.gateway_config import load_config
    from router_plugins.accounting import Accounting
    from router_plugins.request_records import Decision, RequestRecord
    from router_plugins.state.database import StateDatabase
    from router_plugins.state.spend import SpendLedger

    config = load_config(_config(scratch))
    db = StateDatabase(scratch / "run" / "state.db")
    accounting = Accounting(config, SpendLedger(db, config.settings.spend))
    decision = Decision("local-text", "default", "default")

    def kwargs() -> dict[str, Any]:
        return {"litellm_call_id": str(uuid.uuid4()), "stream": False, "standard_logging_object": {
            "call_type": "acompletion", "model_group": "local-text", "prompt_tokens": 812, "completion_tokens": 164,
            "response_cost": 0.0, "metadata": {"user_api_key_alias": "alice", "user_api_key_team_alias": "research"}}}

    async def one(waits: list[float]) -> None:
        started = time.perf_counter()
        await accounting.succeeded(RequestRecord(requested="auto", decision=decision), kwargs(), None, None)
        waits.append(time.perf_counter() - started)

    async def nothing(waits: list[float]) -> None:
        RequestRecord(requested="auto", decision=decision), kwargs()  # the same inputs are built, and nothing is recorded
        await asyncio.sleep(0)

    async def block(step: Any, count: int, concurrency: int, waits: list[float]) -> tuple[float, float]:
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(count // concurrency):
            await asyncio.gather(*(step(waits) for _ in range(concurrency)))
        return time.process_time() - cpu, time.perf_counter() - wall

    async def run() -> list[Cell]:
        await block(one, 200, 16, [])  # warm: the writer thread, the cost map, the counters
        cells = []
        for concurrency in CONCURRENCIES:
            per_round = max(concurrency, requests // ROUNDS // concurrency * concurrency)
            cpu = {True: 0.0, False: 0.0}
            wall, waits = 0.0, []
            for r in range(ROUNDS):
                for recorded in ((True, False) if r % 2 == 0 else (False, True)):
                    used, took = await block(one if recorded else nothing, per_round, concurrency, waits)
                    cpu[recorded] += used
                    wall += took if recorded else 0.0
            total = per_round * ROUNDS
            cells.append(Cell(concurrency, total, round((cpu[True] - cpu[False]) * 1000 / total, 4), summarize_ms(waits),
                              round(total / wall, 1)))
        return cells

    cells = asyncio.run(run())
    db.close()
    return LedgerCostResult(cells, round(db.path.stat().st_size / 2**20, 2))


def from_json(data: dict[str, Any]) -> LedgerCostResult:
    return LedgerCostResult([Cell(**{**c, "commit_wait_ms": Summary(**c["commit_wait_ms"])}) for c in data["cells"]], data["database_mb"])


def lines(result: LedgerCostResult) -> list[str]:
    return [f"{c.concurrency:>2} callback(s) at a time: {c.cpu_ms_per_request:.3f} ms CPU per request (target <= {CPU_MAX_MS}), "
            f"commit wait p50 {c.commit_wait_ms.p50:.2f} ms, p99 {c.commit_wait_ms.p99:.2f} ms, {c.rows_per_s:,.0f} rows/s"
            for c in result.cells]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_cost", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=20_000, help="recorded requests per concurrency (default 20,000)")
    parser.add_argument("--json", type=Path, default=None, help="write only this JSON (the suite's subprocess)")
    parser.add_argument("--output", type=Path, default=None, help="default: bench/results/ledger-cost-<date>.json")
    args = parser.parse_args(argv)
    result = measure(args.requests)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(result)))
        return 0
    for line in lines(result):
        print(line)
    now = dt.datetime.now().astimezone()
    out = args.output or REPO / "bench" / "results" / f"ledger-cost-{now.date().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": now.date().isoformat(), "started_at": now.isoformat(timespec="seconds"),
                               "cpu_max_ms": CPU_MAX_MS, **asdict(result)}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if result.worst_cpu_ms <= CPU_MAX_MS else 1


if __name__ == "__main__":
    sys.exit(main())
