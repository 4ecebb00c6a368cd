"""llm_router.shutdown_grace_s: after SIGTERM, how long requests in flight may take before they are cut off.

The gateway's container sets it below the runtime's stop timeout (tests/test_container.py stops one
with a request in flight); here a gateway with a grace of 1 s stops well before its slow upstream answers.
"""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from tests.support.configs import core_config
from tests.support.gateway import Gateway
from tests.support.waiting import wait_until

UPSTREAM_DELAY_S = 8


@pytest.mark.slow
def test_a_request_in_flight_longer_than_the_grace_is_cut_off_when_it_ends(cloud, tmp_path):
    config = core_config(tmp_path, cloud.url, extra_llm_router="shutdown_grace_s: 1")
    cloud.set_mode("gpt-4o", f"slow-{UPSTREAM_DELAY_S}")
    outcome: list[object] = []

    def ask(gw: Gateway) -> None:
        try:
            outcome.append(gw.post("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).status_code)
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    try:
        with Gateway(config, {"OPENAI_API_KEY": "sk-test-grace-openai-0001"}) as gw:
            sent = len(cloud.requests_for("gpt-4o"))
            asking = threading.Thread(target=ask, args=(gw,))
            asking.start()
            wait_until(lambda: len(cloud.requests_for("gpt-4o")) > sent, 30, "the request to reach the upstream")
            assert gw.proc is not None
            started = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)
            gw.proc.wait(30)
            took = time.monotonic() - started
            asking.join(30)
    finally:
        cloud.clear_modes()
    assert took < UPSTREAM_DELAY_S - 3, f"the gateway took {took:.1f}s to stop: it waited for the request, not 1 s"
    assert outcome and outcome != [200], outcome
