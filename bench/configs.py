"""The configurations the bench runs: stock LiteLLM and llm-router over one fake upstream.

Both use the same model list. llm-router's explicit model (`local-gpt`) is a local launched
group whose launch spec runs tests/fakes/cloud.py on the upstream's own port, so the launcher
adopts the running upstream and its per-request path (lease, readiness, release) runs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.gateway import fake_server_spec, free_port

REPO = Path(__file__).resolve().parents[1]
FAKE_CLOUD = REPO / "tests" / "fakes" / "cloud.py"
UPSTREAM_MODEL = "fake-gpt"  # what tests/fakes/cloud.py lists on /v1/models

LOCAL_GROUP = "local-gpt"
CLOUD_GROUP = "cloud-gpt"
COLD_GROUP = "cold-fake"
STAMPEDE_GROUP = "stampede-fake"
VLLM_GROUP = "tiny-vllm"
COLD_START_DELAY_S = 2


@dataclass(frozen=True)
class VllmAssets:
    executable: Path
    model_dir: Path


@dataclass(frozen=True)
class RouterSetup:
    dir: Path
    config: Path
    cold_served_name: str
    stampede_served_name: str
    vllm_served_name: str | None

    def spec_path(self, group: str) -> Path:
        return self.dir / "models" / f"{group}.yaml"


def upstream_argv(port: int) -> list[str]:
    return [sys.executable, str(FAKE_CLOUD), "--port", str(port)]


def write_stock(directory: Path, model_list: list[dict[str, Any]]) -> Path:
    """LiteLLM's own proxy config: the same model list, no callbacks, no routing/llm_router sections."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {"model_list": model_list, "router_settings": _router_settings(), "litellm_settings": _litellm_settings()}
    path = directory / "stock.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_router(directory: Path, upstream_port: int, run_id: str, vllm: VllmAssets | None) -> tuple[RouterSetup, list[dict[str, Any]]]:
    """llm-router's config, launch specs and state folders in `directory`; also returns its model list."""
    models = directory / "models"
    models.mkdir(parents=True, exist_ok=True)
    # Served names unique to this run, so counting processes by command line sees only ours.
    cold_name, stampede_name = f"bench-cold-{run_id}", f"bench-stampede-{run_id}"
    cold_port, stampede_port = free_port(), free_port()
    delay = ("--start-delay", str(COLD_START_DELAY_S))
    (models / f"{LOCAL_GROUP}.yaml").write_text(_adopted_upstream_spec(upstream_port))
    (models / f"{COLD_GROUP}.yaml").write_text(fake_server_spec(cold_port, cold_name, *delay, startup_timeout_s=60, idle_ttl_s=0))
    (models / f"{STAMPEDE_GROUP}.yaml").write_text(fake_server_spec(stampede_port, stampede_name, *delay, startup_timeout_s=60, idle_ttl_s=0))
    upstream = f"http://127.0.0.1:{upstream_port}"
    model_list: list[dict[str, Any]] = [
        _local(LOCAL_GROUP, UPSTREAM_MODEL, upstream_port),
        {"model_name": CLOUD_GROUP,
         "litellm_params": {"model": "openai/fake-gpt-cloud", "api_base": f"{upstream}/v1", "api_key": "bench-not-a-secret"},
         "model_info": {"supports_vision": True}},
        _local(COLD_GROUP, cold_name, cold_port),
        _local(STAMPEDE_GROUP, stampede_name, stampede_port),
    ]
    vllm_name = None
    if vllm is not None:
        vllm_name, vllm_port = f"bench-tiny-{run_id}", free_port()
        (models / f"{VLLM_GROUP}.yaml").write_text(_vllm_spec(vllm, vllm_name, vllm_port))
        model_list.append(_local(VLLM_GROUP, vllm_name, vllm_port))
    config = {
        "model_list": model_list,
        "router_settings": _router_settings(),
        "routing": {"trigger_models": ["auto"], "vision": [CLOUD_GROUP], "complex": [CLOUD_GROUP], "default": [LOCAL_GROUP],
                    "complexity": {"max_chars": 2000}},
        "llm_router": {"keys_file": "keys.yaml", "state_dir": "run", "log_dir": "logs", "max_request_mb": 20},
        "litellm_settings": {**_litellm_settings(), "callbacks": ["router_plugins.hooks.router_hooks"]},
        "general_settings": {"custom_auth": "router_plugins.auth.authenticate"},
    }
    path = directory / "litellm_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return RouterSetup(directory, path, cold_name, stampede_name, vllm_name), model_list


def write_router_without_plugins(directory: Path, model_list: list[dict[str, Any]]) -> Path:
    """LiteLLM's config for path (f) (bench/bare_litellm.py): the same model list, no hooks, no custom auth."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {"model_list": [{k: v for k, v in m.items() if k != "model_info"} for m in model_list],
              "router_settings": _router_settings(), "litellm_settings": _litellm_settings()}
    path = directory / "litellm_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _local(group: str, served_name: str, port: int) -> dict[str, Any]:
    return {"model_name": group,
            "litellm_params": {"model": f"hosted_vllm/{served_name}", "api_base": f"http://127.0.0.1:{port}/v1", "api_key": "none"},
            "model_info": {"launcher": f"models/{group}.yaml"}}


def _router_settings() -> dict[str, Any]:
    return {"fallbacks": [{LOCAL_GROUP: [CLOUD_GROUP]}], "num_retries": 0, "timeout": 600}


def _litellm_settings() -> dict[str, Any]:
    return {"drop_params": True, "sse_keepalive_ping_interval_seconds": 10}


def _adopted_upstream_spec(port: int) -> str:
    spec = {"engine": "command", "served_model_name": UPSTREAM_MODEL, "port": port,
            "command": [sys.executable, str(FAKE_CLOUD), "--port", "{port}"],
            "health_path": "/health", "startup_timeout_s": 30, "idle_ttl_s": 0}
    return yaml.safe_dump(spec, sort_keys=False)


def _vllm_spec(vllm: VllmAssets, served_name: str, port: int) -> str:
    # The fast CPU settings of tests/test_real_vllm.py.
    spec = {"engine": "vllm", "model": str(vllm.model_dir), "served_model_name": served_name, "port": port,
            "vllm_command": str(vllm.executable), "max_model_len": 512, "dtype": "float32", "enforce_eager": True,
            "extra_args": ["--kv-cache-memory-bytes", "67108864", "--distributed-executor-backend", "uni"],
            "env": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}, "startup_timeout_s": 300, "idle_ttl_s": 0}
    return yaml.safe_dump(spec, sort_keys=False)
