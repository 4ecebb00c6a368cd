"""What the numbers were measured on: the machine and the versions."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib.metadata import version


@dataclass(frozen=True)
class Machine:
    cpu_count: int
    cpu_model: str
    memory_gib: float
    kernel: str


@dataclass(frozen=True)
class Versions:
    python: str
    litellm: str
    llm_router: str
    httpx: str
    aiohttp: str


def machine() -> Machine:
    return Machine(os.cpu_count() or 0, _cpu_model(), round(_mem_total_kib() / 2**20, 1), platform.release())


def versions() -> Versions:
    return Versions(platform.python_version(), version("litellm"), version("llm-router"), version("httpx"), version("aiohttp"))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_kib() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
