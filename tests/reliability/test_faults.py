"""Faults end with an answer from a fallback or one clear error, never a hang or a silent loss.

Each test prints what it tried and what happened, as counts (run pytest with -s to see them).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time

import httpx
import openai
import pytest

from tests.support.configs import core_config
from tests.support.gateway import FAKE_MODEL_SERVER, Gateway
from tests.support.processes import count_spawned, processes_matching
from tests.support.waiting import wait_until

OPENAI = "sk-test-reliability-openai-0001"
ANTHROPIC = "sk-ant-test-reliability-0001"
CHAT = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def gateway(cloud, tmp_path_factory):
    config = core_config(tmp_path_factory.mktemp("faults"), cloud.url)
    text = config.read_text()
    text = text.replace("  - model_name: no-key\n", f"""  - model_name: mid-stream
    litellm_params: {{model: openai/fake-stream-break-after, api_base: "{cloud.url}/v1", api_key: os.environ/OPENAI_API_KEY}}
  - model_name: flapping
    litellm_params: {{model: openai/flapper, api_base: "{cloud.url}/v1", api_key: os.environ/OPENAI_API_KEY, timeout: 2}}
  - model_name: no-key\n""")
    text = text.replace("    - no-key: [gpt-4o]\n", "    - no-key: [gpt-4o]\n    - flapping: [claude-sonnet]\n    - mid-stream: [gpt-4o]\n")
    config.write_text(text)
    with Gateway(config, {"OPENAI_API_KEY": OPENAI, "ANTHROPIC_API_KEY": ANTHROPIC}) as gw:
        yield gw


def _stream_outcome(gw: Gateway, model: str) -> tuple[str, bool, str | None]:
    """(text received, ended with [DONE], error event message or None), read as a raw SSE client would."""
    text, done, error = "", False, None
    body = {"model": model, "stream": True, "messages": CHAT}
    try:
        with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=30) as response:
            if response.status_code != 200:
                return "", False, f"HTTP {response.status_code}"
            for line in response.iter_lines():
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    event = json.loads(line[6:])
                    if "error" in event:
                        error = str(event["error"].get("message"))
                    else:
                        text += "".join(c["delta"].get("content") or "" for c in event.get("choices", []))
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}"
    return text, done, error


def test_a_stream_dying_after_its_first_chunk_is_never_reported_as_a_complete_answer(gateway):
    text, done, error = _stream_outcome(gateway, "mid-stream")
    print(f"\nmid-stream break: received {len(text)} chars, [DONE]={done}, error={error!r}")
    complete = text.startswith("openai:gpt-4o says: hello")  # continued on the fallback
    assert complete or (error is not None and not done)


def test_a_client_disconnecting_mid_stream_leaves_the_gateway_serving(gateway):
    body = {"model": "local-text", "stream": True, "messages": CHAT}
    for _ in range(5):
        with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=30) as response:
            next(response.iter_lines())  # read one line, then hang up
    ok = gateway.client().chat.completions.create(model="local-text", messages=CHAT)
    print(f"\nclient disconnects: 5 streams abandoned, next request answered: {bool(ok.choices[0].message.content)}")
    assert ok.choices[0].message.content


@pytest.mark.parametrize("mode", ["status-500", "status-429", "slow-5", "stream-break-before", "hang"])
def test_each_failure_mode_of_a_backend_ends_with_the_fallbacks_answer(gateway, cloud, mode):
    cloud.set_mode("flapper", mode)
    try:
        started = time.monotonic()
        answer = gateway.client(timeout=60).chat.completions.with_raw_response.create(model="flapping", messages=CHAT)
        stream = list(gateway.client(timeout=60).chat.completions.create(model="flapping", messages=CHAT, stream=True))
    finally:
        cloud.clear_modes()
    elapsed = time.monotonic() - started
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    print(f"\nbackend {mode}: non-stream served by {answer.headers['x-litellm-model-group']}, stream text {len(text)} chars, {elapsed:.1f}s")
    assert answer.headers["x-litellm-model-group"] == "claude-sonnet"
    assert text.startswith("anthropic:claude-sonnet-4-5 says: hello")


def test_a_local_server_killed_while_serving_is_restarted_by_the_next_request(gateway):
    client = gateway.client()
    client.chat.completions.create(model="local-text", messages=CHAT)
    # This gateway's own server, by the pid it reports: every gateway built by core_config serves a
    # "fake-text", and those of test files running at the same time (other xdist workers, another
    # test run) are alive too, so a search by command line over the whole machine can find several.
    victim = _pid(gateway, "local-text")
    assert victim in {p.pid for p in processes_matching(str(FAKE_MODEL_SERVER))}
    assert count_spawned(str(FAKE_MODEL_SERVER), "fake-text") == 1
    os.kill(victim, signal.SIGKILL)
    outcomes: list[str] = []

    def served_locally_again() -> bool:
        try:
            raw = client.chat.completions.with_raw_response.create(model="local-text", messages=CHAT)
            outcomes.append(raw.headers["x-litellm-model-group"])
        except openai.APIStatusError as exc:
            outcomes.append(f"error {exc.status_code}")
        return outcomes[-1] == "local-text"

    wait_until(served_locally_again, timeout=60, what="a request served by local-text again")
    print(f"\nSIGKILL while serving: requests until local-text served again -> {outcomes}")
    assert all(o in ("local-text", "claude-sonnet") for o in outcomes)
    assert count_spawned(str(FAKE_MODEL_SERVER), "fake-text") == 1


def test_sigterm_with_requests_in_flight_finishes_them_refuses_new_ones_and_stops_servers(cloud, tmp_path):
    config = core_config(tmp_path, cloud.url)
    spec = tmp_path / "models" / "local-text.yaml"
    spec.write_text(spec.read_text().replace("'--served-model-name'", "'--response-delay', '2', '--served-model-name'"))
    gw = Gateway(config).start()
    try:
        gw.post("/v1/chat/completions", {"model": "local-text", "messages": CHAT})
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            in_flight = [pool.submit(gw.post, "/v1/chat/completions", {"model": "local-text", "messages": CHAT}) for _ in range(6)]
            wait_until(lambda: _inflight(gw, "local-text") == 6, what="six requests in flight at local-text")
            gw.proc.send_signal(signal.SIGTERM)
            late = wait_until(lambda: _refused(gw), what="the gateway refusing new requests after SIGTERM")
            codes = [f.result().status_code for f in in_flight]
        gw.proc.wait(60)
    finally:
        gw.stop()
    print(f"\nSIGTERM: in flight {codes}, request after SIGTERM -> {late}")
    assert codes == [200] * 6
    assert late in ("ConnectError", "closed unanswered", 503)
    port = next(line.split(": ")[1] for line in spec.read_text().splitlines() if line.startswith("port:"))
    assert count_spawned(f"--port {port}", "fake-text") == 0


def _pid(gw: Gateway, name: str) -> int:
    pid = next(s["pid"] for s in gw.get("/v1/router/servers").json()["servers"] if s["name"] == name)
    assert isinstance(pid, int), f"{name} reports no pid"
    return pid


def _inflight(gw: Gateway, name: str) -> int:
    return next(s["inflight"] for s in gw.get("/v1/router/servers").json()["servers"] if s["name"] == name)


def _refused(gw: Gateway) -> str | int | None:
    """How a new request is refused (connection refused, closed unanswered, or 503), None while the gateway still accepts it.

    A connection that reaches the gateway just as it stops listening is refused one step later:
    the kernel resets the connections it had queued for the closed listener, and uvicorn closes
    those it had accepted but not yet read a request from. Either way no response was sent, as
    with a refused connection. A timeout is no refusal: it propagates.
    """
    try:
        status = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "local-text", "messages": CHAT}, timeout=5).status_code
    except httpx.ConnectError:
        return "ConnectError"
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return "closed unanswered"
    return status if status == 503 else None
