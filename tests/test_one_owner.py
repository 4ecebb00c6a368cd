"""One owner per machine: the memory budget, eviction, drain, idle stop and leases hold across every
worker and every gateway process that shares a state folder, and across `llm-router start/stop`.

Two local models of 15 GiB each share a 20 GiB budget, as the original router's two Qwen models
shared one 20 GB card. Fake model servers stand in for vLLM; processes are counted for real.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from router_config.gateway_config import load_config
from tests.support.configs import core_config, set_spec
from tests.support.gateway import FAKE_MODEL_SERVER, Gateway
from tests.support.processes import count_spawned
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

ANTHROPIC = "sk-ant-test-owner-0001"
BUDGET = "memory_budget: {host_gib: 20, drain_timeout_s: 30}"
SERVED = {"local-text": "fake-text", "local-vision": "fake-vision"}


def _two_big_models(tmp: Path, cloud_url: str, **keys: object) -> Path:
    config = core_config(tmp, cloud_url, extra_llm_router=BUDGET)
    for name in SERVED:
        set_spec(config, name, memory="{host_gib: 15}", **keys)
    return config


def _running(name: str) -> int:
    return count_spawned(str(FAKE_MODEL_SERVER), SERVED[name])


def _ask(gw: Gateway, model: str, text: str = "hi", **body: object) -> httpx.Response:
    return gw.post("/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": text}], **body})


def _state(gw: Gateway, name: str) -> dict:
    return gw.get("/v1/health").json()["backends"][name]


class _Sampler:
    """Counts, every few milliseconds while a block runs, the moments both big models run at once."""

    def __init__(self) -> None:
        self.both = 0
        self.samples = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            self.samples += 1
            if _running("local-text") and _running("local-vision"):
                self.both += 1

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def test_two_workers_never_run_two_models_that_do_not_fit_the_budget_together(tmp_path, cloud):
    config = _two_big_models(tmp_path, cloud.url)
    models = ["local-text", "local-vision"] * 25
    with Gateway(config, workers=2) as gw, _Sampler() as sampler:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda m: (m, _ask(gw, m)), models))
    assert [(m, r.status_code) for m, r in answers] == [(m, 200) for m in models]
    assert all(r.headers["x-litellm-model-group"] == m for m, r in answers)  # each model served, none fell back
    assert sampler.samples > 100
    assert sampler.both == 0


def test_a_stream_on_one_model_finishes_untouched_while_the_other_waits_for_it(tmp_path, cloud):
    config = _two_big_models(tmp_path, cloud.url)
    set_spec(config, "local-text", flags=("--response-delay", "3"))
    with Gateway(config) as owner, Gateway(config) as other:
        assert _ask(owner, "local-text", "warm").status_code == 200
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            stream = pool.submit(_stream_text, other, "local-text", "a long answer")
            wait_until(lambda: _inflight(owner, "local-text") == 1, 10, "the stream to hold its server")
            vision = _ask(owner, "local-vision")
            assert stream.done()  # the vision start waited for the stream to drain
            text = stream.result()
    assert text.startswith("local:fake-text says: a long answer")
    assert vision.status_code == 200 and vision.headers["x-litellm-model-group"] == "local-vision"


def _stream_text(gw: Gateway, model: str, text: str) -> str:
    stream = gw.client().chat.completions.create(model=model, messages=[{"role": "user", "content": text}], stream=True)
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def _inflight(gw: Gateway, name: str, key: str | None = None) -> int:
    servers = gw.get("/v1/router/servers", key).json()["servers"]
    return next(s["inflight"] for s in servers if s["name"] == name)


def _pid(gw: Gateway, name: str) -> int | None:
    servers = gw.get("/v1/router/servers").json()["servers"]
    return next(s["pid"] for s in servers if s["name"] == name)


def test_idle_stop_counts_requests_from_every_gateway_process(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    set_spec(config, "local-text", idle_ttl_s=2)
    with Gateway(config) as first, Gateway(config) as second:
        assert _ask(first, "local-text").status_code == 200
        pid = _pid(first, "local-text")
        # Every request goes through `second` for three times the idle TTL: `first`, the owner,
        # must count them and keep the server.
        for i in range(12):
            assert _ask(second, "local-text", f"n{i}").headers["x-litellm-model-group"] == "local-text"
            assert _pid(first, "local-text") == pid
            time.sleep(0.5)  # the pace of this load, well under the TTL; not a synchronisation
        wait_until(lambda: _state(first, "local-text")["state"] == "stopped", 10, "the idle stop")
    assert _running("local-text") == 0


def test_llm_router_stop_while_the_gateway_runs_goes_through_its_owner(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    with Gateway(config) as gw:
        assert _ask(gw, "local-text").status_code == 200
        stopped = _cli(config, "stop", "local-text")
        assert stopped.returncode == 0 and "local-text: stopped" in stopped.stdout, stopped.stderr
        assert _state(gw, "local-text")["state"] == "stopped"  # one truth: the owner pushed it at once
        assert _running("local-text") == 0
        status = json.loads(_cli(config, "status", "--json").stdout)
        assert next(s for s in status["servers"] if s["name"] == "local-text")["state"] == "stopped"
        assert _ask(gw, "local-text").headers["x-litellm-model-group"] == "local-text"  # started again on demand
        assert _running("local-text") == 1


def test_a_gateway_process_killed_holding_a_lease_leaks_no_lease(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    set_spec(config, "local-text", flags=("--response-delay", "8"))
    with Gateway(config) as owner:
        client = Gateway(config).start()
        try:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pending = pool.submit(_ask, client, "local-text")
                wait_until(lambda: _inflight(owner, "local-text") == 1, 20, "the request to take its lease")
                os.killpg(client.proc.pid, signal.SIGKILL)
                wait_until(lambda: _inflight(owner, "local-text") == 0, 10, "the dead process's lease to end")
                with pytest.raises(httpx.HTTPError):
                    pending.result()
        finally:
            client.stop()
        assert _state(owner, "local-text")["state"] == "ready"


def test_a_ready_server_killed_from_outside_is_noticed_and_the_next_request_is_answered(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    with Gateway(config, {"ANTHROPIC_API_KEY": ANTHROPIC}) as gw:
        assert _ask(gw, "local-text").status_code == 200
        pid = _pid(gw, "local-text")
        os.killpg(pid, signal.SIGKILL)
        failed = wait_until(lambda: _state(gw, "local-text")["state"] == "failed" and _state(gw, "local-text"), 10, "health to notice")
        assert failed["healthy"] is False and "exited" in failed["detail"]
        answer = _ask(gw, "local-text")
        assert answer.status_code == 200
        assert _state(gw, "local-text")["state"] == "ready" and _pid(gw, "local-text") != pid


def test_a_second_state_folder_with_the_same_launch_spec_never_touches_the_first_ones_server(tmp_path, cloud):
    """Two configs in two folders, so two state folders, with one launch spec and so one port (issue 26): the
    second gateway's owner refuses the first one's server with one line, and sends it nothing."""
    (tmp_path / "a").mkdir()
    config = core_config(tmp_path / "a", cloud.url)
    set_spec(config, "local-text", flags=("--record-requests", str(tmp_path / "local-text.requests.jsonl")))
    shutil.copytree(tmp_path / "a", tmp_path / "b", ignore=shutil.ignore_patterns("run", "logs", "*.out"))
    other_config = tmp_path / "b" / "litellm_config.yaml"
    port = load_config(config).local_specs()["local-text"].port
    with Gateway(config) as first, Gateway(other_config) as second:
        assert _ask(first, "local-text").status_code == 200
        pid = _pid(first, "local-text")
        refused = _ask(second, "local-text", "from the second gateway")
        assert refused.status_code == 503, refused.text  # its fallback, claude-sonnet, has no key here
        line = (f"port {port} is served by a server another llm-router started for state folder {tmp_path / 'a' / 'run'}; "
                "it is not adopted. Fix: give local-text.yaml a port of its own")
        assert line in refused.json()["error"]["message"]
        assert line in _state(second, "local-text")["detail"]
        assert _state(first, "local-text")["state"] == "ready"
        second.stop()
        assert line in (tmp_path / "b" / "logs" / "router.log").read_text()
        assert _pid(first, "local-text") == pid and _ask(first, "local-text").status_code == 200
    received = [json.loads(line)["body"] for line in (tmp_path / "local-text.requests.jsonl").read_text().splitlines()]
    assert len(received) == 2 and not [b for b in received if "from the second gateway" in json.dumps(b)]


def test_a_server_started_by_hand_is_adopted_and_when_it_stops_the_gateway_starts_its_own(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    port = load_config(config).local_specs()["local-text"].port
    by_hand = subprocess.Popen([sys.executable, str(FAKE_MODEL_SERVER), "--port", str(port), "--served-model-name", "fake-text"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        with Gateway(config, {"ANTHROPIC_API_KEY": ANTHROPIC}) as gw:
            wait_until(lambda: _ask(gw, "local-text").headers.get("x-litellm-model-group") == "local-text", 30, "the adopted server to answer")
            assert _running("local-text") == 1  # adopted, not started twice
            by_hand.terminate()
            by_hand.wait(10)
            wait_until(lambda: _state(gw, "local-text")["state"] != "ready", 5, "the gateway to notice")
            again = _ask(gw, "local-text")
            assert again.status_code == 200 and again.headers["x-litellm-model-group"] == "local-text"
            assert _running("local-text") == 1
    finally:
        by_hand.kill()
        by_hand.wait(10)


def test_a_second_gateway_takes_over_when_the_owner_dies(tmp_path, cloud):
    config = core_config(tmp_path, cloud.url)
    first = Gateway(config).start()
    try:
        with Gateway(config) as second:
            assert _ask(second, "local-text").status_code == 200  # served through the first gateway's owner
            first_pid = _pid(second, "local-text")
            assert _owner_pid(first_pid) == first.proc.pid
            os.killpg(first.proc.pid, signal.SIGKILL)
            wait_until(lambda: _running("local-text") == 0, 10, "the servers to die with their owner")
            answer = wait_until(lambda: _ask(second, "local-text").status_code == 200, 20, "the second gateway to take over")
            assert answer
            assert _owner_pid(_pid(second, "local-text")) == second.proc.pid
    finally:
        first.stop()


def _owner_pid(server_pid: int | None) -> int | None:
    """The gateway process a model server was spawned by (setpriv sits between them)."""
    assert server_pid is not None
    parent = psutil.Process(server_pid).parent()
    return parent.pid if parent is not None else None


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_router.cli", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=120)
