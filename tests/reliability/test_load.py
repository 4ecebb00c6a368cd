"""Load while a backend flaps: every request ends with a complete answer or a clear error."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway
from tests.support.load import run_load

pytestmark = pytest.mark.slow


def _flap(cloud: FakeCloud, model: str, stop: threading.Event, period: float = 5.0) -> None:
    down = True
    while not stop.is_set():
        if down:
            cloud.set_mode(model, "status-503")
        else:
            cloud.clear_modes()
        down = not down
        stop.wait(period)
    cloud.clear_modes()


@pytest.fixture(scope="module")
def flapping_gateway(tmp_path_factory):
    with FakeCloud() as cloud:
        config = core_config(tmp_path_factory.mktemp("load"), cloud.url)
        config.write_text(config.read_text().replace("    - no-key: [gpt-4o]\n", "    - no-key: [gpt-4o]\n    - gpt-4o: [claude-sonnet]\n"))
        with Gateway(config, {"OPENAI_API_KEY": "sk-test-load-0001", "ANTHROPIC_API_KEY": "sk-ant-test-load-0001"}) as gw:
            yield gw, cloud


def test_two_thousand_requests_with_a_flapping_backend_lose_nothing(flapping_gateway):
    gw, cloud = flapping_gateway
    stop = threading.Event()
    # gpt-4o flaps (down 5 s, up 5 s); claude-sonnet is its fallback; local-text and auto run beside it.
    flapper = threading.Thread(target=_flap, args=(cloud, "gpt-4o", stop), daemon=True)
    flapper.start()
    try:
        report = asyncio.run(run_load(gw.url, ["gpt-4o", "auto", "claude-sonnet", "local-text"], total=2000, concurrency=32, timeout=60))
    finally:
        stop.set()
        flapper.join(10)
    assert gw.proc is not None
    gateway = "running" if gw.proc.poll() is None else f"exited with {gw.proc.returncode}"
    print(f"\nload with gpt-4o flapping: {report.summary()}; the gateway {gateway}")
    assert gateway == "running", gw.log_text()[-3000:]
    assert report.sent == 2000
    assert report.hung == 0, report.summary()
    assert report.truncated_as_success == 0, report.summary()
    assert report.unclear_failures == 0, report.summary()
    assert report.complete + report.clear_errors == 2000, report.summary()
    assert report.complete == 2000, report.summary()  # gpt-4o's down phases are served by its fallback
