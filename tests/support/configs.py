"""Test configurations: the gateway's YAML, pointing at fakes on loopback, or the shipped one."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from textwrap import dedent

from tests.fakes.cloud import FakeCloud
from tests.support.gateway import REPO, Gateway, closed_port, fake_server_spec, free_port

_CPU_MODEL = "smollm2-135m-cpu"
_CPU_MODEL_SHIPPED_PORT = "8003"


def shipped_config_copy(dest: Path, *, link_cpu_weights: bool) -> Path:
    """The shipped config and launch specs in `dest`, with SmolLM2 (the CPU model) on a free port.

    `link_cpu_weights`: link the checkout's prepared SmolLM2 weights in, rather than leaving the
    copy to prepare its own.
    """
    shutil.copy(REPO / "litellm_config.yaml", dest / "litellm_config.yaml")
    (dest / "models").mkdir()
    for spec in (REPO / "models").glob("*.yaml"):
        shutil.copy(spec, dest / "models" / spec.name)
    if link_cpu_weights:
        (dest / "models" / _CPU_MODEL).symlink_to(REPO / "models" / _CPU_MODEL)
    port = str(free_port())
    for path in (dest / "litellm_config.yaml", dest / "models" / f"{_CPU_MODEL}.yaml"):
        path.write_text(path.read_text().replace(_CPU_MODEL_SHIPPED_PORT, port))
    return dest / "litellm_config.yaml"


def core_config(tmp: Path, cloud_url: str, *, keys_file: bool = False, extra_llm_router: str = "") -> Path:
    """Cloud groups on the fake cloud, two local groups run by the fake model server, and failing groups."""
    text_port, vision_port = free_port(), free_port()
    (tmp / "models").mkdir(exist_ok=True)
    (tmp / "models" / "local-text.yaml").write_text(fake_server_spec(text_port, "fake-text", startup_timeout_s=30, idle_ttl_s=0))
    (tmp / "models" / "local-vision.yaml").write_text(fake_server_spec(vision_port, "fake-vision", startup_timeout_s=30, idle_ttl_s=0))
    down = closed_port()
    config = dedent(f"""
        model_list:
          - model_name: gpt-4o
            litellm_params: {{model: openai/gpt-4o, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}
          - model_name: claude-sonnet
            litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: "{cloud_url}", api_key: os.environ/ANTHROPIC_API_KEY}}
          - model_name: local-text
            litellm_params: {{model: hosted_vllm/fake-text, api_base: "http://127.0.0.1:{text_port}/v1", api_key: none}}
            model_info: {{launcher: models/local-text.yaml, max_input_tokens: 300}}
          - model_name: local-vision
            litellm_params: {{model: hosted_vllm/fake-vision, api_base: "http://127.0.0.1:{vision_port}/v1", api_key: none}}
            model_info: {{launcher: models/local-vision.yaml, supports_vision: true}}
          - model_name: flaky-500
            litellm_params: {{model: openai/fake-status-500, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}
          - model_name: flaky-429
            litellm_params: {{model: openai/fake-status-429, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}
          - model_name: slow
            litellm_params: {{model: openai/fake-slow-10, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY, timeout: 1}}
          - model_name: down
            litellm_params: {{model: openai/fake-down, api_base: "http://127.0.0.1:{down}/v1", api_key: os.environ/OPENAI_API_KEY}}
          - model_name: stream-break
            litellm_params: {{model: openai/fake-stream-break-before, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}
          - model_name: anthropic-500
            litellm_params: {{model: anthropic/claude-status-503, api_base: "{cloud_url}", api_key: os.environ/ANTHROPIC_API_KEY}}
          - model_name: dead-end
            litellm_params: {{model: openai/fake-status-502, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}
          - model_name: no-key
            litellm_params: {{model: openai/gpt-4o-nokey, api_base: "{cloud_url}/v1", api_key: os.environ/LLM_ROUTER_TEST_UNSET_KEY}}
        router_settings:
          model_group_alias: {{gpt-4: gpt-4o}}
          fallbacks:
            - flaky-500: [gpt-4o]
            - flaky-429: [gpt-4o]
            - slow: [gpt-4o]
            - down: [gpt-4o]
            - stream-break: [gpt-4o]
            - anthropic-500: [dead-end]
            - no-key: [gpt-4o]
            - local-text: [claude-sonnet]
          num_retries: 0
        routing:
          trigger_models: [auto]
          vision: [local-vision]
          complex: [claude-sonnet]
          default: [local-text]
          complexity: {{max_chars: 2000}}
        llm_router:
          state_dir: run
          log_dir: logs
          max_request_mb: 1
          {"keys_file: keys.yaml" if keys_file else ""}
          {extra_llm_router.replace(chr(10), chr(10) + " " * 10)}
    """)
    path = tmp / "litellm_config.yaml"
    path.write_text(config)
    return path


def set_spec(config: Path, name: str, *, flags: tuple[str, ...] = (), **keys: object) -> None:
    """Change a fake server's launch spec next to `config`: extra fake-server flags, and spec keys."""
    path = config.parent / "models" / f"{name}.yaml"
    text = path.read_text()
    if flags:
        extra = "".join(f"'{f}', " for f in flags)
        text = text.replace("'--served-model-name'", extra + "'--served-model-name'")
    for key, value in keys.items():
        text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{key}:")) + f"\n{key}: {value}\n"
    path.write_text(text)


CLIENTS_TEAM_KEY = "sk-llmr-clients-team-0001"
"""A team key for the real-client tests: every group, as a team's own key would be."""


def clients_config(tmp: Path, cloud_url: str, difficulty: str = "{share: 0.25}") -> Path:
    """What a team runs: OpenAI and Anthropic on the fake cloud, and a small local model (the fake server
    with vLLM's window check: 2,048 tokens for input and output together) that calls tools."""
    from router_plugins.keys import hash_key

    port = free_port()
    (tmp / "models").mkdir(exist_ok=True)
    (tmp / "models" / "local-text.yaml").write_text(fake_server_spec(
        port, "fake-text", "--max-model-len", "{max_model_len}", "--record-requests", str(tmp / "local-text.requests.jsonl"),
        max_model_len=2048, startup_timeout_s=30, idle_ttl_s=0))
    (tmp / "keys.yaml").write_text(f"keys: [{{name: team-clients, team: t, sha256: {hash_key(CLIENTS_TEAM_KEY)}, "
                                   "models: [local-text, claude-sonnet, gpt-4o], rpm: 10000}]\n")
    path = tmp / "litellm_config.yaml"
    path.write_text(dedent(f"""
        model_list:
          - model_name: gpt-4o
            litellm_params: {{model: openai/gpt-4o, api_base: "{cloud_url}/v1", api_key: os.environ/OPENAI_API_KEY}}
          - model_name: claude-sonnet
            litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: "{cloud_url}", api_key: os.environ/ANTHROPIC_API_KEY}}
          - model_name: local-text
            litellm_params: {{model: hosted_vllm/fake-text, api_base: "http://127.0.0.1:{port}/v1", api_key: none}}
            model_info: {{launcher: models/local-text.yaml, max_input_tokens: 1536, supports_function_calling: true}}
        router_settings:
          num_retries: 0
          fallbacks: [{{local-text: [claude-sonnet]}}]
        routing: {{vision: [gpt-4o], complex: [claude-sonnet, gpt-4o], default: [local-text], difficulty: {difficulty}}}
        llm_router: {{state_dir: run, log_dir: logs, keys_file: keys.yaml}}
    """))
    return path


@contextmanager
def clients_gateway(tmp: Path, difficulty: str = "{share: 0.25}") -> Iterator[tuple[Gateway, FakeCloud]]:
    """A gateway on clients_config, with a master key and both providers' keys, and its fake cloud.
    difficulty: routing.difficulty."""
    with FakeCloud() as cloud:
        env = {"OPENAI_API_KEY": "sk-test-clients-cfg-0001", "ANTHROPIC_API_KEY": "sk-ant-test-clients-cfg-0001",
               "LLM_ROUTER_MASTER_KEY": "sk-master-clients-cfg"}
        with Gateway(clients_config(tmp, cloud.url, difficulty), env) as gw:
            yield gw, cloud
