"""Soak: the reliability load (a third streaming, 32 clients, one backend flapping) for 10 minutes.

    uv run python bench/soak.py [--minutes 10] [--concurrency 32]

Prints, per minute and at the end, how every request ended (complete, clear error, hung,
truncated stream reported as success) and the gateway's RSS and open file descriptors, so
growth shows. Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.cloud import FakeCloud  # noqa: E402
from tests.support.configs import core_config  # noqa: E402
from tests.support.gateway import Gateway  # noqa: E402
from tests.support.load import LoadReport, run_load  # noqa: E402


def _gateway_usage(pid: int) -> tuple[float, int]:
    """RSS in MiB and open fds of the gateway process (launched model servers excluded)."""
    proc = psutil.Process(pid)
    return proc.memory_info().rss / 2**20, proc.num_fds()


def _flap(cloud: FakeCloud, stop: threading.Event) -> None:
    down = True
    while not stop.is_set():
        cloud.set_mode("gpt-4o", "status-503") if down else cloud.clear_modes()
        down = not down
        stop.wait(5.0)
    cloud.clear_modes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1000, help="requests per measurement round")
    args = parser.parse_args()

    totals = LoadReport()
    with tempfile.TemporaryDirectory(prefix="llm-router-soak-") as tmp, FakeCloud() as cloud:
        config = core_config(Path(tmp), cloud.url)
        config.write_text(config.read_text().replace("    - no-key: [gpt-4o]\n", "    - no-key: [gpt-4o]\n    - gpt-4o: [claude-sonnet]\n"))
        env = {"OPENAI_API_KEY": "sk-soak-openai-0000", "ANTHROPIC_API_KEY": "sk-ant-soak-0000"}
        with Gateway(config, env) as gw:
            assert gw.proc is not None
            stop = threading.Event()
            threading.Thread(target=_flap, args=(cloud, stop), daemon=True).start()
            rss0, fds0 = _gateway_usage(gw.proc.pid)
            print(f"start: gateway RSS {rss0:.0f} MiB, {fds0} open fds")
            deadline = time.monotonic() + args.minutes * 60
            try:
                while time.monotonic() < deadline:
                    r = asyncio.run(run_load(gw.url, ["gpt-4o", "auto", "claude-sonnet", "local-text"], args.batch, args.concurrency))
                    for name in ("sent", "complete", "clear_errors", "hung", "truncated_as_success", "unclear_failures", "streams", "seconds"):
                        setattr(totals, name, getattr(totals, name) + getattr(r, name))
                    totals.by_status.update(r.by_status)
                    totals.failures.update(r.failures)
                    rss, fds = _gateway_usage(gw.proc.pid)
                    print(f"{r.summary()} | RSS {rss:.0f} MiB ({(rss - rss0) / rss0:+.1%}), {fds} fds", flush=True)
            finally:
                stop.set()
            rss, fds = _gateway_usage(gw.proc.pid)
    ok = totals.hung == totals.truncated_as_success == totals.unclear_failures == 0
    print(f"\nsoak total: {totals.summary()}")
    print(f"gateway RSS {rss0:.0f} -> {rss:.0f} MiB ({(rss - rss0) / rss0:+.1%}), open fds {fds0} -> {fds}")
    print("result:", "nothing lost" if ok else "FAILURES (see counts above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
