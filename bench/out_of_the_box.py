"""Out of the box on the CPU: how long until a newcomer's first `auto` answer, and then per answer.

    uv run python -m bench.out_of_the_box            # later runs: engine and weights already prepared
    uv run python -m bench.out_of_the_box --fresh    # first-ever run: prepares into an empty home

Starts `llm-router serve` with the shipped config and no API keys, sends the README's first
request (model `auto`, "What is the capital of France?") until it answers, then ten more short
ones. Prints the figures and writes bench/results/out_of_the_box-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.support.configs import shipped_config_copy
from tests.support.gateway import free_port

REPO = Path(__file__).resolve().parents[1]
QUESTION = {"model": "auto", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
TARGETS = {"fresh_first_answer_s": 300.0, "cold_first_answer_s": 40.0, "short_answer_s": 1.0}


def _workspace(tmp: Path, fresh: bool) -> Path:
    """The shipped config and specs in tmp; prepared weights reused unless fresh."""
    if not fresh:
        subprocess.run([sys.executable, "-m", "llm_router.cli", "prepare", "smollm2-135m-cpu", "--config", str(REPO / "litellm_config.yaml")], check=True)
    return shipped_config_copy(tmp, link_cpu_weights=not fresh)


def _ask(url: str, timeout: float) -> tuple[float, str]:
    started = time.monotonic()
    response = httpx.post(f"{url}/v1/chat/completions", json=QUESTION, timeout=timeout)
    response.raise_for_status()
    return time.monotonic() - started, response.json()["choices"][0]["message"]["content"]


def run(fresh: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="llm-router-oob-") as tmp_name:
        tmp = Path(tmp_name)
        config = _workspace(tmp, fresh)
        env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LLM_ROUTER_MASTER_KEY")}
        if fresh:
            env["LLM_ROUTER_HOME"] = str(tmp / "home")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        gateway = subprocess.Popen([sys.executable, "-m", "llm_router.cli", "serve", "--config", str(config), "--port", str(port)],
                                   env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            while True:
                try:
                    httpx.get(f"{url}/health/liveliness", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if gateway.poll() is not None or time.monotonic() - started > 120:
                        raise RuntimeError("the gateway did not start")
                    time.sleep(0.1)
            gateway_up = time.monotonic() - started
            _, first_answer = _ask(url, timeout=900)
            first = time.monotonic() - started
            later = [_ask(url, timeout=60)[0] for _ in range(10)]
        finally:
            os.killpg(gateway.pid, signal.SIGTERM)
            gateway.wait(60)
    key = "fresh_first_answer_s" if fresh else "cold_first_answer_s"
    return {
        "mode": "fresh" if fresh else "prepared",
        "gateway_start_s": round(gateway_up, 2),
        key: round(first, 2),
        "first_answer": first_answer,
        "short_answer_p50_s": round(statistics.median(later), 3),
        "short_answer_max_s": round(max(later), 3),
        "targets": {key: {"target": TARGETS[key], "met": first <= TARGETS[key]},
                    "short_answer_s": {"target": TARGETS["short_answer_s"], "met": max(later) <= TARGETS["short_answer_s"]}},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fresh", action="store_true", help="prepare engine and weights from nothing, into a temporary home")
    args = parser.parse_args()
    result = {"date": dt.date.today().isoformat(), "cpus": os.cpu_count(), **run(args.fresh)}
    print(json.dumps(result, indent=2))
    out = REPO / "bench" / "results" / f"out_of_the_box-{result['mode']}-{result['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
