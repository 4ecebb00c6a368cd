"""The launcher as a client sees it, through the gateway: on demand, cold-start policies, workers, operators."""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import subprocess
import sys
import time


from launchers.paths import RuntimePaths
from tests.support.configs import core_config, set_spec
from tests.support.gateway import FAKE_MODEL_SERVER, Gateway
from tests.support.processes import count_spawned
from tests.support.waiting import wait_until

ANTHROPIC = "sk-ant-test-launcher-0001"


def test_cold_start_fallback_serves_auto_from_the_next_group_while_the_server_starts(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    set_spec(config, "local-text", flags=["--start-delay", "2"], cold_start="fallback")
    with Gateway(config, {"ANTHROPIC_API_KEY": ANTHROPIC}) as gw:
        client = gw.client()
        first = client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        assert first.headers["x-llm-router-model"] == "local-text"
        assert first.headers["x-litellm-model-group"] == "claude-sonnet"  # served at once by the fallback
        wait_until(lambda: gw.get("/v1/health").json()["backends"]["local-text"]["state"] == "ready", 30, "the background start")
        later = client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        assert later.headers["x-litellm-model-group"] == "local-text"


def test_cold_start_fallback_serves_auto_at_once_on_the_responses_and_messages_apis_too(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    set_spec(config, "local-text", flags=["--start-delay", "5"], cold_start="fallback")
    hi = [{"role": "user", "content": "hi"}]
    with Gateway(config, {"ANTHROPIC_API_KEY": ANTHROPIC}) as gw:
        for path, body in (("/v1/responses", {"model": "auto", "input": "hi"}),
                           ("/v1/messages", {"model": "auto", "max_tokens": 5, "messages": hi})):
            answer = gw.post(path, body)
            assert answer.status_code == 200, (path, answer.text)
            assert answer.headers["x-llm-router-model"] == "local-text", path
            assert answer.headers["x-litellm-model-group"] == "claude-sonnet", path
        assert gw.get("/v1/health").json()["backends"]["local-text"]["state"] == "starting"


def test_explicitly_named_local_model_waits_for_its_start(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    set_spec(config, "local-text", flags=["--start-delay", "2"], cold_start="fallback")
    with Gateway(config, {"ANTHROPIC_API_KEY": ANTHROPIC}) as gw:
        raw = gw.client().chat.completions.with_raw_response.create(model="local-text", messages=[{"role": "user", "content": "hi"}])
        assert raw.headers["x-litellm-model-group"] == "local-text"


def test_two_workers_start_one_server_for_concurrent_cold_requests(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    set_spec(config, "local-text", flags=["--start-delay", "2"])
    with Gateway(config, workers=2) as gw:
        def ask(i):
            return gw.post("/v1/chat/completions", {"model": "local-text", "messages": [{"role": "user", "content": f"q{i}"}]}).status_code

        seen = set()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(ask, i) for i in range(16)]
            while not all(f.done() for f in futures):
                seen.add(count_spawned(str(FAKE_MODEL_SERVER), "fake-text"))
                time.sleep(0.05)
            codes = [f.result() for f in futures]
        assert codes == [200] * 16
        assert max(seen) == 1
    assert count_spawned(str(FAKE_MODEL_SERVER), "fake-text") == 0


def test_gateway_shutdown_stops_every_server_it_started(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    gw = Gateway(config).start()
    try:
        for model in ("local-text", "local-vision"):
            assert gw.post("/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "hi"}]}).status_code == 200
        assert count_spawned(str(FAKE_MODEL_SERVER), "fake-text") == 1
    finally:
        assert gw.stop() in (0, -15)  # uvicorn re-raises SIGTERM after a graceful shutdown
    assert "Application shutdown complete" in gw.log_text()
    assert count_spawned(str(FAKE_MODEL_SERVER), "fake-text") == 0
    assert count_spawned(str(FAKE_MODEL_SERVER), "fake-vision") == 0
    # Stopped by the gateway before it exited, not left to the kernel's parent-death signal.
    log = (config.parent / "logs" / "router.log").read_text()
    assert "local-text: ready -> stopping (gateway shutdown)" in log and "local-vision: ready -> stopping (gateway shutdown)" in log


def test_a_gateway_killed_outright_takes_the_servers_it_started_with_it(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    gw = Gateway(config).start()
    try:
        assert gw.post("/v1/chat/completions", {"model": "local-text", "messages": [{"role": "user", "content": "hi"}]}).status_code == 200
        assert count_spawned(str(FAKE_MODEL_SERVER), "fake-text") == 1
        gw.proc.kill()  # as in a crash: no shutdown, no exit handler
        gw.proc.wait(10)
        wait_until(lambda: count_spawned(str(FAKE_MODEL_SERVER), "fake-text") == 0, 10, "the servers to die with the gateway")
    finally:
        gw.stop()
        # Nobody was left to remove the server's TMPDIR (a restarted gateway would reuse it).
        shutil.rmtree(RuntimePaths(config.parent / "run", config.parent / "logs").tmp_dir("local-text", create=False), ignore_errors=True)


def test_sigterm_lets_in_flight_requests_finish(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    set_spec(config, "local-text", flags=["--response-delay", "2"])
    gw = Gateway(config).start()
    try:
        assert gw.post("/v1/chat/completions", {"model": "local-text", "messages": [{"role": "user", "content": "warm"}]}).status_code == 200
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(gw.post, "/v1/chat/completions", {"model": "local-text", "messages": [{"role": "user", "content": "slow"}]})
            wait_until(lambda: _inflight(gw, "local-text") == 1, 10, "the slow request to reach its server")
            gw.proc.terminate()
            response = pending.result()
        assert response.status_code == 200
        assert "slow" in response.json()["choices"][0]["message"]["content"]
    finally:
        gw.stop()
    assert count_spawned(str(FAKE_MODEL_SERVER), "fake-text") == 0


def _inflight(gw, name):
    return next(s["inflight"] for s in gw.get("/v1/router/servers").json()["servers"] if s["name"] == name)


def _cli(config, *args):
    return subprocess.run([sys.executable, "-m", "llm_router.cli", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=120)


def test_operator_commands_start_report_and_stop_a_server(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    started = _cli(config, "start", "local-text")
    assert started.returncode == 0, started.stderr
    try:
        status = json.loads(_cli(config, "status", "--json").stdout)
        text = next(s for s in status["servers"] if s["name"] == "local-text")
        assert text["state"] == "ready" and text["pid"] and text["uptime_s"] is not None
        assert next(s for s in status["servers"] if s["name"] == "local-vision")["state"] == "stopped"
        table = _cli(config, "status").stdout
        assert "local-text" in table and "ready" in table
        with Gateway(config) as gw:  # the gateway adopts the running server
            assert gw.post("/v1/chat/completions", {"model": "local-text", "messages": [{"role": "user", "content": "hi"}]}).status_code == 200
            assert gw.get("/v1/health").json()["backends"]["local-text"]["state"] == "ready"
        assert count_spawned(str(FAKE_MODEL_SERVER), "fake-text") == 1  # adopted, so not stopped by the gateway
    finally:
        stopped = _cli(config, "stop", "--all")
    assert "local-text: stopped" in stopped.stdout
    assert count_spawned(str(FAKE_MODEL_SERVER), "fake-text") == 0
