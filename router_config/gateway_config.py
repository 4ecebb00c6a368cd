"""The gateway's one config file, validated once at load into typed objects.

`litellm_config.yaml` is LiteLLM's own config (model_list, router_settings, ...) plus two
top-level sections LiteLLM ignores: `routing:` (content-aware routing rules) and
`llm_router:` (keys file, memory budget, state and log folders). Every problem found is
reported with the file, the key and the fix; nothing reads raw dicts after this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from router_config.environment import CONFIG_ENV, MASTER_KEY_ENV
from router_config.problems import ConfigError, ConfigProblem, from_validation_error, read_mapping
from router_config.spec import LaunchSpec, load_spec

TRIGGER_DEFAULT = ("auto",)
CUSTOM_AUTH = "llm_router.app.custom_auth"
"""llm-router's key checks, which `serve` registers as LiteLLM's custom_auth."""
_OUR_AUTH = frozenset({CUSTOM_AUTH, "router_plugins.auth.authenticate"})
COMPLEXITY_TIERS = ("SIMPLE", "MEDIUM", "COMPLEX", "REASONING")

# LiteLLM providers whose key comes from a well-known environment variable when the
# deployment doesn't name one.
_PROVIDER_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComplexityRules(_Strict):
    max_chars: int = Field(2000, gt=0)
    """A prompt longer than this many characters is complex (the original router's rule)."""
    tiers: tuple[str, ...] = ("COMPLEX", "REASONING")
    """LiteLLM complexity-scorer tiers that count as complex."""

    @field_validator("tiers")
    @classmethod
    def _known_tiers(cls, tiers: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in tiers if t not in COMPLEXITY_TIERS]
        if unknown:
            raise ValueError(f"unknown tier(s) {unknown}; use some of {list(COMPLEXITY_TIERS)}")
        return tiers


def _as_tuple(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


class RoutingRules(_Strict):
    """Which requests are content-routed, and the groups each reason prefers, in order."""

    trigger_models: tuple[str, ...] = TRIGGER_DEFAULT
    vision: tuple[str, ...]
    complex: tuple[str, ...]
    default: tuple[str, ...]
    complexity: ComplexityRules = ComplexityRules()

    _listify = field_validator("trigger_models", "vision", "complex", "default", mode="before")(
        classmethod(lambda cls, v: _as_tuple(v))
    )


class MemoryBudget(_Strict):
    """What the local model servers may hold at once. Unset means unlimited."""

    gpu_gib: dict[int, float] = Field(default_factory=dict)
    """GiB per GPU device index."""
    host_gib: float | None = None
    drain_timeout_s: float = Field(30.0, ge=0)
    """How long a start waits for busy servers to drain before the request fails over."""


class GatewaySettings(_Strict):
    keys_file: str | None = None
    max_request_mb: float = Field(20.0, gt=0)
    """Larger request bodies get 413 before anything parses them."""
    state_dir: str = "run"
    log_dir: str = "logs"
    memory_budget: MemoryBudget = MemoryBudget()


@dataclass(frozen=True)
class Deployment:
    """One `model_list` entry, reduced to what the gateway needs to know about it."""

    id: str
    """LiteLLM's `model_info.id`: the admin's, else `<group>/<n>`. Hooks find the deployment by it."""
    group: str
    litellm_model: str
    provider: str
    api_base: str | None
    key_env: str | None
    """Environment variable holding the API key, or None when the key is inline or unneeded."""
    launch_spec: LaunchSpec | None
    max_input_tokens: int | None
    supports_vision: bool | None
    supports_function_calling: bool | None
    """Declared in model_info; None: ask LiteLLM's model map (router_plugins/capabilities.py)."""

    @property
    def is_local(self) -> bool:
        return self.launch_spec is not None

    def missing_key(self) -> str | None:
        """The environment variable that must be set for this deployment to work, if unset."""
        if self.key_env and not os.environ.get(self.key_env):
            return self.key_env
        return None


@dataclass(frozen=True)
class GatewayConfig:
    path: Path
    deployments: tuple[Deployment, ...]
    aliases: dict[str, str]
    fallbacks: dict[str, tuple[str, ...]]
    routing: RoutingRules | None
    """None: no `routing:` section, so `auto` can't be answered (a clear 400 says so)."""
    settings: GatewaySettings
    raw: dict[str, Any] = field(repr=False)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.group for d in self.deployments))

    def deployments_of(self, group: str) -> tuple[Deployment, ...]:
        return tuple(d for d in self.deployments if d.group == group)

    @property
    def serves_files_and_batches(self) -> bool:
        """LiteLLM sends files and batches to OpenAI's default base URL (or OPENAI_BASE_URL): a host the
        config names only when an OpenAI deployment uses that default too."""
        return any(d.provider == "openai" and not d.api_base and not d.is_local for d in self.deployments)

    def deployment(self, deployment_id: str) -> Deployment | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    def resolve(self, name: str) -> str:
        return self.aliases.get(name, name)

    def fallback_chain(self, group: str) -> tuple[str, ...]:
        """The groups LiteLLM tries after `group`, depth first, each once."""
        chain: list[str] = []

        def walk(g: str) -> None:
            for nxt in self.fallbacks.get(g, ()):
                if nxt != group and nxt not in chain:
                    chain.append(nxt)
                    walk(nxt)

        walk(group)
        return tuple(chain)

    def context_window(self, group: str) -> int | None:
        windows = [d.max_input_tokens for d in self.deployments_of(group) if d.max_input_tokens]
        return min(windows) if windows else None

    @property
    def max_request_bytes(self) -> int:
        return int(self.settings.max_request_mb * 2**20)

    def local_specs(self) -> dict[str, LaunchSpec]:
        return {d.launch_spec.name: d.launch_spec for d in self.deployments if d.launch_spec}

    def secrets(self) -> list[str]:
        """The secret values set in this environment (the master key, every deployment's API key), to keep
        out of logs and responses."""
        names = {MASTER_KEY_ENV, "LITELLM_MASTER_KEY", *_PROVIDER_KEY_ENV.values()}
        names |= {d.key_env for d in self.deployments if d.key_env}
        return [v for v in (os.environ.get(n) for n in names) if v and len(v) >= 6]

    def resolve_path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.base_dir / p


def load_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Load and validate the whole config, launch specs included; raise ConfigError listing every problem."""
    path = Path(path).resolve()
    raw = read_mapping(path, "pass --config PATH or create litellm_config.yaml", "the shipped litellm_config.yaml")
    return _Loader(path, raw).load()


class _Loader:
    def __init__(self, path: Path, raw: dict[str, Any]):
        self.path = path
        self.file = str(path)
        self.raw = raw
        self.problems: list[ConfigProblem] = []

    def problem(self, key: str, problem: str, fix: str) -> None:
        self.problems.append(ConfigProblem(self.file, key, problem, fix))

    def load(self) -> GatewayConfig:
        deployments = self._deployments()
        router_settings = self.raw.get("router_settings") or {}
        aliases = self._aliases(router_settings)
        fallbacks = self._fallbacks(router_settings)
        routing = self._model(RoutingRules, "routing", self.raw["routing"]) if self.raw.get("routing") is not None else None
        settings = self._model(GatewaySettings, "llm_router", self.raw.get("llm_router") or {})
        groups = {d.group for d in deployments}
        self._check_group_references(groups, aliases, fallbacks, routing)
        aliases = {**_served_names(deployments, groups), **aliases}
        self._check_ports(deployments)
        self._check_custom_auth()
        if self.problems:
            raise ConfigError(self.problems)
        assert settings is not None
        return GatewayConfig(self.path, tuple(deployments), aliases, fallbacks, routing, settings, self.raw)

    def _model(self, cls: type[BaseModel], key: str, value: Any) -> Any:
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            self.problems.extend(from_validation_error(self.file, key, exc))
            return None

    def _deployments(self) -> list[Deployment]:
        entries = self.raw.get("model_list")
        if not isinstance(entries, list) or not entries:
            self.problem("model_list", "no models configured", "add at least one model_list entry")
            return []
        out = []
        for i, entry in enumerate(entries):
            d = self._deployment(f"model_list[{i}]", entry, i)
            if d:
                out.append(d)
        return out

    def _deployment(self, key: str, entry: Any, index: int) -> Deployment | None:
        if not isinstance(entry, dict) or not isinstance(entry.get("model_name"), str):
            self.problem(f"{key}.model_name", "missing", "give every model_list entry a model_name")
            return None
        params = entry.get("litellm_params")
        if not isinstance(params, dict) or not isinstance(params.get("model"), str):
            self.problem(f"{key}.litellm_params.model", "missing", "set litellm_params.model, e.g. openai/gpt-4o")
            return None
        info = entry.get("model_info") or {}
        model = params["model"]
        provider = model.split("/", 1)[0] if "/" in model else "openai"
        spec = None
        if "launcher" in info:
            spec = self._launch_spec(f"{key}.model_info.launcher", info["launcher"], params)
        group = entry["model_name"]
        return Deployment(
            id=str(info.get("id") or f"{group}/{index}"),
            group=group,
            litellm_model=model,
            provider=provider,
            api_base=params.get("api_base"),
            key_env=_key_env(provider, params.get("api_key"), local=spec is not None or "launcher" in info),
            launch_spec=spec,
            max_input_tokens=info.get("max_input_tokens"),
            supports_vision=_flag(info.get("supports_vision")),
            supports_function_calling=_flag(info.get("supports_function_calling")),
        )

    def _launch_spec(self, key: str, relative: Any, params: dict[str, Any]) -> LaunchSpec | None:
        if not isinstance(relative, str):
            self.problem(key, "must be a path", "write e.g. `launcher: models/qwen3-14b.yaml`")
            return None
        spec_path = self.path.parent / relative
        try:
            spec = load_spec(spec_path)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return None
        api_base = params.get("api_base") or ""
        if f":{spec.port}" not in api_base:
            self.problem(
                f"{key.rsplit('.model_info', 1)[0]}.litellm_params.api_base",
                f"'{api_base}' does not use port {spec.port} from {relative}",
                f"set api_base to http://{spec.host}:{spec.port}/v1",
            )
        return spec

    def _aliases(self, router_settings: dict[str, Any]) -> dict[str, str]:
        aliases = router_settings.get("model_group_alias") or {}
        if not isinstance(aliases, dict):
            self.problem("router_settings.model_group_alias", "must map alias -> group", "write `gpt-4: gpt-4o`")
            return {}
        return {str(k): (v["model"] if isinstance(v, dict) else str(v)) for k, v in aliases.items()}

    def _fallbacks(self, router_settings: dict[str, Any]) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for i, item in enumerate(router_settings.get("fallbacks") or []):
            if not isinstance(item, dict) or len(item) != 1:
                self.problem(f"router_settings.fallbacks[{i}]", "must be one `group: [next, ...]` mapping", "write `- qwen3-14b: [claude-sonnet]`")
                continue
            (group, chain), = item.items()
            out[group] = tuple(_as_tuple(chain) or ())
        return out

    def _check_group_references(
        self, groups: set[str], aliases: dict[str, str], fallbacks: dict[str, tuple[str, ...]], routing: RoutingRules | None
    ) -> None:
        def need(key: str, group: str) -> None:
            if group not in groups:
                self.problem(key, f"names model group '{group}', which no model_list entry defines", f"add a model_list entry named '{group}' or use one of {sorted(groups)}")

        for alias, target in aliases.items():
            need(f"router_settings.model_group_alias.{alias}", target)
        for group, chain in fallbacks.items():
            need(f"router_settings.fallbacks.{group}", group)
            for nxt in chain:
                need(f"router_settings.fallbacks.{group}", nxt)
        if routing:
            for reason in ("vision", "complex", "default"):
                for group in getattr(routing, reason):
                    need(f"routing.{reason}", group)
            for name in routing.trigger_models:
                if name in groups:
                    self.problem("routing.trigger_models", f"'{name}' is also a model group, so it could never be named explicitly", "rename the trigger or the group")

    def _check_custom_auth(self) -> None:
        general = self.raw.get("general_settings") or {}
        value = general.get("custom_auth") if isinstance(general, dict) else None
        if value is not None and value not in _OUR_AUTH:
            self.problem("general_settings.custom_auth", f"'{value}' would replace llm-router's key checks",
                         "remove it: llm-router registers its own (master key and team keys, see the README)")

    def _check_ports(self, deployments: list[Deployment]) -> None:
        seen: dict[int, str] = {}
        for d in deployments:
            spec = d.launch_spec
            if not spec or seen.get(spec.port) == spec.name:
                continue
            if spec.port in seen:
                self.problem(f"{spec.name}.port", f"port {spec.port} is also used by {seen[spec.port]}", "give each launch spec its own port")
            seen[spec.port] = spec.name


def _served_names(deployments: list[Deployment], groups: set[str]) -> dict[str, str]:
    """A local server's served model name (what its users type, e.g. Qwen3-14B-unsloth-bnb-4bit) names its group."""
    return {d.launch_spec.served_model_name: d.group for d in deployments
            if d.launch_spec is not None and d.launch_spec.served_model_name not in groups}


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _key_env(provider: str, api_key: Any, local: bool) -> str | None:
    if isinstance(api_key, str) and api_key.startswith("os.environ/"):
        return api_key.removeprefix("os.environ/")
    if api_key or local:
        return None
    return _PROVIDER_KEY_ENV.get(provider)


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV, "litellm_config.yaml"))

