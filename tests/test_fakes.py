"""The fake upstreams speak the real OpenAI / Anthropic / vLLM wire formats."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fakes.cloud import FakeCloud
from tests.support.gateway import free_port

MODEL_SERVER = Path(__file__).parent / "fakes" / "model_server.py"
USER_MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def cloud() -> Iterator[FakeCloud]:
    with FakeCloud() as fake:
        yield fake


@pytest.fixture
def client(cloud: FakeCloud) -> Iterator[httpx.Client]:
    cloud.clear_modes()
    with httpx.Client(base_url=cloud.url, timeout=5) as http:
        yield http


def sse_data(lines: Iterator[str]) -> list[str]:
    return [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]


# ------------------------------------------------------------------------- FakeCloud


def test_openai_non_stream_returns_chat_completion_object(client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", json={"model": "fake-gpt", "messages": USER_MESSAGES})

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
    assert body["model"] == "fake-gpt"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "openai:fake-gpt says: hello there", "refusal": None}
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_openai_list_content_parts_are_joined_and_capped(client: httpx.Client) -> None:
    parts = [{"type": "text", "text": "look at"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "x" * 300}]
    response = client.post("/chat/completions", json={"model": "fake-gpt", "messages": [{"role": "user", "content": parts}]})

    content = response.json()["choices"][0]["message"]["content"]
    assert content.startswith("openai:fake-gpt says: look at xxx")
    assert len(content) == len("openai:fake-gpt says: ") + 200


def test_openai_stream_yields_full_text_usage_and_done(client: httpx.Client) -> None:
    request = {"model": "fake-gpt", "messages": USER_MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/chat/completions", json=request) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        data = sse_data(response.iter_lines())

    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "fake-gpt" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "openai:fake-gpt says: hello there"
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 1
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_anthropic_non_stream_returns_message_object(client: httpx.Client) -> None:
    request = {
        "model": "claude-fake",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    body = client.post("/v1/messages", json=request, headers={"x-api-key": "sk-ant"}).json()

    assert body["id"].startswith("msg_")
    assert body["type"] == "message" and body["role"] == "assistant" and body["model"] == "claude-fake"
    assert body["content"] == [{"type": "text", "text": "anthropic:claude-fake says: hi"}]
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0


def test_anthropic_stream_emits_event_sequence_in_order(client: httpx.Client) -> None:
    request = {"model": "claude-fake", "max_tokens": 100, "stream": True, "system": "be brief", "messages": USER_MESSAGES[1:]}
    with client.stream("POST", "/v1/messages", json=request) as response:
        lines = list(response.iter_lines())

    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    payloads = [json.loads(d) for d in sse_data(iter(lines))]
    deltas = events.count("content_block_delta")
    assert deltas > 1
    assert events == [
        "message_start", "content_block_start", "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    assert [p["type"] for p in payloads] == events
    text = "".join(p["delta"]["text"] for p in payloads if p["type"] == "content_block_delta")
    assert text == "anthropic:claude-fake says: hello there"
    message_delta = payloads[-2]
    assert message_delta["delta"]["stop_reason"] == "end_turn" and message_delta["usage"]["output_tokens"] > 0


def test_models_endpoint_lists_models_in_openai_format(client: httpx.Client) -> None:
    body = client.get("/v1/models").json()

    assert body["object"] == "list"
    assert len(body["data"]) >= 2 and all(m["object"] == "model" for m in body["data"])


def test_status_mode_returns_openai_error_body(client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", json={"model": "fake-status-500", "messages": USER_MESSAGES})

    assert response.status_code == 500
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] is None


def test_status_429_returns_anthropic_rate_limit_error_with_retry_after(client: httpx.Client) -> None:
    response = client.post("/v1/messages", json={"model": "claude-status-429", "messages": USER_MESSAGES[1:], "stream": True})

    assert response.status_code == 429
    assert response.headers["retry-after"] == "0"
    assert response.json() == {"type": "error", "error": {"type": "rate_limit_error", "message": response.json()["error"]["message"]}}


def test_stream_break_before_raises_protocol_error(client: httpx.Client) -> None:
    request = {"model": "fake-stream-break-before", "messages": USER_MESSAGES, "stream": True}
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("POST", "/v1/chat/completions", json=request) as response:
            assert response.status_code == 200
            list(response.iter_lines())

    assert client.post("/v1/chat/completions", json={**request, "stream": False}).status_code == 500


def test_stream_break_after_delivers_one_chunk_then_raises(client: httpx.Client) -> None:
    request = {"model": "fake-stream-break-after", "messages": USER_MESSAGES, "stream": True}
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("POST", "/v1/chat/completions", json=request) as response:
            for line in response.iter_lines():
                received.append(line)

    data = sse_data(iter(received))
    assert len(data) == 2 and "[DONE]" not in data
    assert json.loads(data[1])["choices"][0]["delta"]["content"]


def test_set_mode_overrides_model_name_until_cleared(cloud: FakeCloud, client: httpx.Client) -> None:
    request = {"model": "fake-gpt", "messages": USER_MESSAGES}
    cloud.set_mode("fake-gpt", "status-503")
    assert client.post("/v1/chat/completions", json=request).status_code == 503
    cloud.set_mode("fake-gpt", "ok")
    assert client.post("/v1/chat/completions", json=request).status_code == 200
    cloud.set_mode("fake-gpt", "status-503")
    cloud.clear_modes()
    assert client.post("/v1/chat/completions", json=request).status_code == 200
    with pytest.raises(ValueError):
        cloud.set_mode("fake-gpt", "no-such-mode")


def test_slow_mode_delays_the_answer(client: httpx.Client) -> None:
    started = time.monotonic()
    response = client.post("/v1/chat/completions", json={"model": "fake-slow-0.3", "messages": USER_MESSAGES})

    assert response.status_code == 200
    assert 0.3 <= time.monotonic() - started < 2


def test_requests_are_recorded_with_auth_headers(cloud: FakeCloud, client: httpx.Client) -> None:
    client.post("/v1/chat/completions", json={"model": "rec-openai", "messages": USER_MESSAGES}, headers={"Authorization": "Bearer sk-one"})
    client.post("/v1/messages", json={"model": "rec-claude", "messages": USER_MESSAGES[1:], "stream": True}, headers={"x-api-key": "sk-two"})

    [openai_request] = cloud.requests_for("rec-openai")
    [anthropic_request] = cloud.requests_for("rec-claude")
    assert (openai_request.path, openai_request.stream, openai_request.api_key) == ("/v1/chat/completions", False, "sk-one")
    assert openai_request.headers["authorization"] == "Bearer sk-one"
    assert (anthropic_request.path, anthropic_request.stream, anthropic_request.api_key) == ("/v1/messages", True, "sk-two")
    assert anthropic_request.body["messages"] == USER_MESSAGES[1:]


def test_stop_does_not_hang_on_a_hung_request() -> None:
    fake = FakeCloud().start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(f"{fake.url}/v1/chat/completions", json={"model": "fake-hang", "messages": []}, timeout=10)
        except httpx.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 2
    while not fake.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    fake.stop()
    caller.join(timeout=2)

    assert time.monotonic() - started < 1.5
    assert not caller.is_alive() and len(errors) == 1


# ---------------------------------------------------------------------- model_server


Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start model_server.py in its own process group; SIGKILL the group afterwards."""
    processes: list[subprocess.Popen[str]] = []

    def start(*options: str, name: str = "local-tiny") -> tuple[subprocess.Popen[str], str]:
        port = free_port()
        command = [sys.executable, str(MODEL_SERVER), "--port", str(port), "--served-model-name", name, *options]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        processes.append(process)
        return process, f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate(timeout=5)


def wait_healthy(url: str, timeout: float = 5) -> float:
    """Seconds until GET /health answers 200."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not healthy after {timeout} s")


def chat(url: str, model: str = "local-tiny", **extra: object) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json={"model": model, "messages": USER_MESSAGES, **extra}, timeout=5)


def test_model_server_binds_only_after_start_delay(spawn: Spawn) -> None:
    _, url = spawn("--start-delay", "1")

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=1)
    assert wait_healthy(url) > 0.5
    health = httpx.get(f"{url}/health")
    assert health.status_code == 200 and health.content == b""
    assert [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]] == ["local-tiny"]


def test_model_server_answers_chat_in_openai_format(spawn: Spawn) -> None:
    _, url = spawn()
    wait_healthy(url)

    assert chat(url).json()["choices"][0]["message"]["content"] == "local:local-tiny says: hello there [system: be brief]"
    with httpx.stream("POST", f"{url}/v1/chat/completions", json={"model": "local-tiny", "messages": USER_MESSAGES, "stream": True}) as response:
        data = sse_data(response.iter_lines())
    assert data[-1] == "[DONE]"
    assert "".join(json.loads(d)["choices"][0]["delta"].get("content", "") for d in data[:-1]) == "local:local-tiny says: hello there [system: be brief]"
    completion = httpx.post(f"{url}/v1/completions", json={"model": "local-tiny", "prompt": "ping", "max_tokens": 1}).json()
    assert completion["object"] == "text_completion" and completion["choices"][0]["text"]


def test_model_server_rejects_unknown_model_with_404(spawn: Spawn) -> None:
    _, url = spawn()
    wait_healthy(url)

    response = chat(url, model="someone-else")
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_model_server_crash_on_start_exits_3_with_fatal_line(spawn: Spawn) -> None:
    process, _ = spawn("--crash-on-start")

    _, stderr = process.communicate(timeout=5)
    assert process.returncode == 3
    assert stderr.strip().splitlines()[-1] == "FATAL: simulated start failure: CUDA out of memory"


def test_model_server_group_sigterm_exits_0_and_leaves_no_child(spawn: Spawn, tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    process, url = spawn("--spawn-child", "--pid-file", str(pid_file))
    wait_healthy(url)
    assert int(pid_file.read_text()) == process.pid
    children = psutil.Process(process.pid).children(recursive=True)
    assert len(children) == 1

    os.killpg(process.pid, signal.SIGTERM)
    stdout, _ = process.communicate(timeout=5)

    assert process.returncode == 0
    assert f"pid {children[0].pid}" in stdout
    _, alive = psutil.wait_procs(children, timeout=3)
    assert alive == []


def test_model_server_ignore_sigterm_needs_sigkill(spawn: Spawn) -> None:
    process, url = spawn("--ignore-sigterm")
    wait_healthy(url)

    os.killpg(process.pid, signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.5)
    assert httpx.get(f"{url}/health").status_code == 200
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=5) == -signal.SIGKILL


def test_model_server_dies_after_n_requests(spawn: Spawn) -> None:
    process, url = spawn("--die-after-requests", "2")
    wait_healthy(url)

    assert chat(url).status_code == 200
    assert chat(url, stream=True).status_code == 200
    assert process.wait(timeout=5) == 1
    with pytest.raises(httpx.TransportError):
        chat(url)


def test_model_server_answers_50_concurrent_slow_requests_in_parallel(spawn: Spawn) -> None:
    _, url = spawn("--response-delay", "0.5")
    wait_healthy(url)

    with httpx.Client(timeout=10, limits=httpx.Limits(max_connections=100)) as http:
        def one(i: int) -> int:
            payload = {"model": "local-tiny", "messages": [{"role": "user", "content": f"q{i}"}]}
            return http.post(f"{url}/v1/chat/completions", json=payload).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(one, range(50)))
        elapsed = time.monotonic() - started

    assert statuses == [200] * 50
    assert elapsed < 2  # serially it would take 25 s


# ---------------------------------------------------------------------- the harness (tests/support/gateway.py)


def test_free_port_never_hands_out_a_port_twice() -> None:
    """The kernel's port 0 gives a port back within a few draws; two xdist workers' gateways then raced for one
    port, and the loser's test talked to the winner until it stopped (the load flake of issue 26)."""
    ports = [free_port() for _ in range(300)]  # the kernel's own draws repeat in 300 nearly always (41 of 50 times in 200)
    assert len(set(ports)) == len(ports)


def test_free_port_hands_out_no_port_an_outgoing_connection_may_take() -> None:
    """An outgoing connection takes a port from the kernel's ephemeral range as its own; a gateway handed that
    port seconds earlier then fails to bind it (a CI run lost a test to 'address already in use')."""
    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = [free_port() for _ in range(50)]
    assert not [p for p in ports if low <= p <= high]


def test_a_gateway_is_ready_only_when_it_is_its_own_process_that_answers_on_its_port(tmp_path: Path, cloud: FakeCloud) -> None:
    """Another process answering on the port (here an impostor that answers anything 200) is never taken for the gateway."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.support.configs import core_config
    from tests.support.gateway import Gateway

    class Impostor(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    gateway = Gateway(core_config(tmp_path, cloud.url))
    impostor = ThreadingHTTPServer(("127.0.0.1", gateway.port), Impostor)
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    try:
        with pytest.raises(RuntimeError, match="gateway exited"):
            gateway.start()
        assert f"error while attempting to bind on address ('127.0.0.1', {gateway.port}): address already in use" in gateway.log_text()
    finally:
        impostor.shutdown()
        impostor.server_close()
        gateway.stop()
