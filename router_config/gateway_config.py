"""The gateway's one config file, validated once at load into typed objects.

`litellm_config.yaml` is LiteLLM's own config (model_list, router_settings, ...) plus two
top-level sections LiteLLM ignores: `routing:` (content-aware routing rules) and
`llm_router:` (keys file, memory budget, state and log folders). Every problem found is
reported with the file, the key and the fix; nothing reads raw dicts after this module.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from router_config.environment import CONFIG_ENV, MASTER_KEY_ENV, SECRET_FILE_SUFFIX
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
    """Text longer than this many characters is complex (the original router's rule)."""
    length_of: Literal["user", "prompt"] = "user"
    """What max_chars measures: `user`, the user's own words (the text the difficulty score reads, so an
    agent's long system prompt and tool definitions don't make every turn complex), or `prompt`, every turn
    and the system prompt (the original rule)."""
    tiers: tuple[str, ...] = ()
    """LiteLLM complexity-scorer tiers that count as complex; none by default (the difficulty score decides)."""

    @field_validator("tiers")
    @classmethod
    def _known_tiers(cls, tiers: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in tiers if t not in COMPLEXITY_TIERS]
        if unknown:
            raise ValueError(f"unknown tier(s) {unknown}; use some of {list(COMPLEXITY_TIERS)}")
        return tiers


DEFAULT_STRONG_SHARE = 0.25


class DifficultySetting(_Strict):
    """When a text request's difficulty score sends it to `routing.complex`: at or above `threshold`, or at the
    threshold that sends about `share` of requests there. One of the two; neither means share 0.25."""

    threshold: float | None = Field(None, ge=0, le=1)
    share: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _one_knob(self) -> DifficultySetting:
        if self.threshold is not None and self.share is not None:
            raise ValueError("set either threshold or share, not both (share is turned into a threshold; "
                             "`llm-router calibrate --share S` prints the threshold for your traffic)")
        return self

    @property
    def strong_share(self) -> float:
        """The share asked for, where no threshold is set."""
        return DEFAULT_STRONG_SHARE if self.share is None else self.share


class AffinitySettings(_Strict):
    """Conversation affinity for `auto` (router_plugins/affinity.py). `affinity: false` turns it off."""

    enabled: bool = True
    ttl_s: float = Field(3600.0, gt=0)
    """A conversation not routed for this long is forgotten."""
    max_conversations: int = Field(100_000, ge=1)
    """The most conversations each process remembers; the least recently routed go first."""


def _as_tuple(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


def _enabled_switch(value: Any) -> Any:
    """`section: false` (or true) for a section with an `enabled` switch."""
    return {"enabled": value} if isinstance(value, bool) else value


class RoutingRules(_Strict):
    """Which requests are content-routed, and the groups each reason prefers, in order."""

    trigger_models: tuple[str, ...] = TRIGGER_DEFAULT
    vision: tuple[str, ...]
    complex: tuple[str, ...]
    default: tuple[str, ...]
    complexity: ComplexityRules = ComplexityRules()
    difficulty: DifficultySetting = DifficultySetting()
    affinity: AffinitySettings = AffinitySettings()
    """On by default: an agent's task stays with the model tier that took it on."""

    _listify = field_validator("trigger_models", "vision", "complex", "default", mode="before")(
        classmethod(lambda cls, v: _as_tuple(v))
    )
    _affinity_switch = field_validator("affinity", mode="before")(classmethod(lambda cls, v: _enabled_switch(v)))


class MemoryBudget(_Strict):
    """What the local model servers may hold at once. Unset means unlimited."""

    gpu_gib: dict[int, float] = Field(default_factory=dict)
    """GiB per GPU device index."""
    host_gib: float | None = None
    drain_timeout_s: float = Field(30.0, ge=0)
    """How long a start waits for busy servers to drain before the request fails over."""


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class RedisSettings(_Strict):
    """The Redis that gateway replicas share (README, Several replicas and GPU hosts). Set once here:
    llm-router's own state and LiteLLM's (router cooldowns, its rate limiter) both use it."""

    host: str | None = None
    port: int = Field(6379, ge=1, le=65535)
    url: str | None = None
    """redis://host:port/db or rediss://...; instead of host and port."""
    password_env: str | None = None
    """The name of the environment variable holding the password, never the password itself."""

    @field_validator("url")
    @classmethod
    def _url_without_password(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("must look like redis://host:6379/0 (or rediss:// for TLS)")
        if parts.password is not None:
            raise ValueError("holds a password; put it in an environment variable and name that in password_env")
        return url

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, name: str | None) -> str | None:
        if name is not None and not _ENV_NAME.match(name):
            # Not echoed: an admin may have put the password itself here.
            raise ValueError("is not an environment variable name; write the variable's name, e.g. LLM_ROUTER_REDIS_PASSWORD, "
                             "never the password")
        return name

    @model_validator(mode="after")
    def _one_target(self) -> RedisSettings:
        if (self.host is None) == (self.url is None):
            raise ValueError("set either host (and port) or url")
        return self

    @property
    def address(self) -> str:
        """host:port, for logs and health: never the password."""
        if self.url is not None:
            parts = urlsplit(self.url)
            return f"{parts.hostname}:{parts.port or 6379}"
        return f"{self.host}:{self.port}"

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None


class ResponsesStore(_Strict):
    """The Responses store (router_plugins/state/responses.py): what a turn chained by previous_response_id
    needs, kept for each Responses answer not made with `store: false`. `responses: false` turns it off."""

    enabled: bool = True
    ttl_days: float = Field(30.0, gt=0)
    """A response is forgotten this long after it was made (OpenAI keeps stored responses 30 days)."""
    max_responses: int = Field(100_000, ge=1)
    """The most responses kept on this machine (and in Redis across replicas); the oldest go first."""

    @property
    def ttl_s(self) -> float:
        return self.ttl_days * 86_400


class SpendSettings(_Strict):
    """The spend ledger (router_plugins/state/spend.py): one row per request, never its text."""

    retention_days: int = Field(90, ge=1)
    """Rows and daily totals older than this many days are deleted."""
    time_zone: str = "UTC"
    """Where a day (and a week from Monday, and a month) begins, for usage reports and spend per period."""

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{name}' is not a time zone this machine knows; write e.g. UTC or Europe/Paris") from None
        return name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


BudgetPeriod = Literal["day", "week", "month"]
_LIMIT = re.compile(r"\$?\s*(\d+(?:\.\d+)?)\s*/\s*(day|week|month)\Z")


class SpendLimit(_Strict):
    """A budget: at most `usd` dollars per day, week (from Monday) or month, in llm_router.spend.time_zone.
    Written `50/month` on the command line and in the keys file, or as {usd: 50, period: month}."""

    usd: float = Field(gt=0)
    period: BudgetPeriod

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        match = _LIMIT.match(value.strip().lower())
        if match is None:
            raise ValueError(f"'{value}' is not a budget; write dollars per period: 50/day, 200/week or 1000/month")
        return {"usd": float(match.group(1)), "period": match.group(2)}

    def __str__(self) -> str:
        return f"${self.text}"

    @property
    def text(self) -> str:
        """As the keys file and the command line write it."""
        return f"{self.usd:.6f}".rstrip("0").rstrip(".") + f"/{self.period}"


class GatewaySettings(_Strict):
    keys_file: str | None = None
    max_request_mb: float = Field(20.0, gt=0)
    """Larger request bodies get 413 before anything parses them."""
    state_dir: str = "run"
    log_dir: str = "logs"
    memory_budget: MemoryBudget = MemoryBudget()
    redis: RedisSettings | None = None
    """Shared state for several gateway replicas; None: each gateway keeps its own, as on one host."""
    metrics: bool = True
    """GET /metrics in Prometheus' format: LiteLLM's `prometheus` callback and our own metrics."""
    metrics_public: bool = False
    """Serve /metrics without a key (to a scraper on a trusted network); by default it needs the master key."""
    shutdown_grace_s: float = Field(30.0, ge=0)
    """After SIGTERM, how long requests in flight may take to finish before they are cut off. Under a
    container runtime, keep it below the runtime's stop timeout (10 s by default, compose's stop_grace_period)."""
    responses: ResponsesStore = ResponsesStore()
    """On by default: Responses clients chain turns by previous_response_id on every backend."""
    spend: SpendSettings = SpendSettings()

    _responses_switch = field_validator("responses", mode="before")(classmethod(lambda cls, v: _enabled_switch(v)))


class Price(_Strict):
    """What a deployment costs in dollars per million tokens (model_info.price_per_million_tokens). A local
    model costs 0 unless priced; a cloud model costs what LiteLLM's cost map says unless priced."""

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)


PRICE_KEY = "price_per_million_tokens"
REMOTE_FLAG = "llm_router_remote"
"""The model_info key that marks a deployment served by another llm-router (a GPU host)."""


@dataclass(frozen=True)
class RemoteGateway:
    """Another llm-router serving a deployment: a GPU host that owns its model servers. This gateway
    reads the host's state from its /v1/health and sends it requests with a service key (a team key
    of the host)."""

    base_url: str
    """The host's gateway, e.g. http://gpu-1:8000 (the deployment's api_base without /v1)."""
    group: str
    """The model group asked for there: the deployment's model without its `openai/`."""
    cold_start: Literal["wait", "fallback"]
    """What an `auto` request does while the host's server is cold (the launch spec's setting, for this hop)."""

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc


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
    remote: RemoteGateway | None = None
    """Set when another llm-router (a GPU host) serves it: model_info.llm_router_remote."""
    price: Price | None = None
    """model_info.price_per_million_tokens; None: LiteLLM's cost map prices it (a local model: 0)."""

    @property
    def is_local(self) -> bool:
        return self.launch_spec is not None

    @property
    def set_price(self) -> Price | None:
        """The price llm-router gives LiteLLM for this deployment: its configured one, else 0 for a model
        this gateway or a GPU host serves (which LiteLLM's cost map doesn't know); None: LiteLLM's own."""
        if self.price is not None:
            return self.price
        return Price() if self.launch_spec is not None or self.remote is not None else None

    @property
    def window(self) -> int | None:
        """The context window, input and output together, where the gateway knows it: a local server's max_model_len."""
        return self.launch_spec.max_model_len if self.launch_spec is not None else None

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
        names = {"LITELLM_MASTER_KEY", *_secret_names(self.deployments, self.settings)}
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
        self._secrets_from_files(_secret_names(deployments, settings or GatewaySettings()))
        groups = {d.group for d in deployments}
        self._check_group_references(groups, aliases, fallbacks, routing)
        aliases = {**_served_names(deployments, groups), **aliases}
        self._check_ports(deployments)
        self._check_custom_auth()
        if settings is not None and settings.redis is not None:
            self._check_redis(settings.redis, router_settings)
        if self.problems:
            raise ConfigError(self.problems)
        assert settings is not None
        return GatewayConfig(self.path, tuple(deployments), aliases, fallbacks, routing, settings, self.raw)

    def _secrets_from_files(self, names: Iterable[str]) -> None:
        """The `_FILE` convention of official images: NAME_FILE names a file (a mounted secret) holding
        NAME's value. It is read once, here, into NAME, and NAME_FILE is unset, so the workers and a
        later reload see NAME alone; a new secret in the file needs a restart."""
        for name in sorted(names):
            file_var = f"{name}{SECRET_FILE_SUFFIX}"
            path = os.environ.get(file_var)
            if path is None:
                continue
            key = f"{file_var} (environment)"
            if os.environ.get(name):
                self.problem(key, f"is set, and so is {name}", f"set only one of them: {file_var} for a mounted secret file, or {name}")
                continue
            try:
                value = Path(path).read_text().strip()
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else "not text"
                self.problem(key, f"names {path}, which can't be read ({why})",
                             f"mount the secret file there, readable by the gateway's user, or unset {file_var}")
                continue
            if not value:
                self.problem(key, f"names {path}, which is empty", f"write {name}'s value into {path}")
                continue
            os.environ[name] = value
            del os.environ[file_var]

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
        remote = None
        if REMOTE_FLAG in info or "cold_start" in info:
            remote = self._remote(key, info, params, provider)
        group = entry["model_name"]
        price = self._model(Price, f"{key}.model_info.{PRICE_KEY}", info[PRICE_KEY]) if PRICE_KEY in info else None
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
            remote=remote,
            price=price,
        )

    def _remote(self, key: str, info: dict[str, Any], params: dict[str, Any], provider: str) -> RemoteGateway | None:
        """A deployment another llm-router serves (model_info.llm_router_remote: true), checked."""
        found_before = len(self.problems)
        if REMOTE_FLAG in info and info[REMOTE_FLAG] is not True:
            self.problem(f"{key}.model_info.{REMOTE_FLAG}", f"is {info[REMOTE_FLAG]!r}", f"write `{REMOTE_FLAG}: true`, or remove it")
            return None
        if REMOTE_FLAG not in info:
            self.problem(f"{key}.model_info.cold_start", "is for a deployment served by another llm-router",
                         f"add `{REMOTE_FLAG}: true` for a GPU host's gateway, or set cold_start in the local model's launch spec")
            return None
        if "launcher" in info:
            self.problem(f"{key}.model_info", f"has both launcher and {REMOTE_FLAG}",
                         "keep launcher for a server this gateway runs, or llm_router_remote for one another llm-router runs")
        model = str(params.get("model"))
        if provider != "openai" or "/" not in model:
            self.problem(f"{key}.litellm_params.model", f"'{model}': another llm-router speaks OpenAI's API",
                         "write openai/<the model group's name on that host>")
        api_base = params.get("api_base")
        parts = urlsplit(api_base) if isinstance(api_base, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem(f"{key}.litellm_params.api_base", f"{api_base!r} is not the address of the host's gateway",
                         "write e.g. http://gpu-1:8000/v1")
        api_key = params.get("api_key")
        if not (isinstance(api_key, str) and api_key.startswith("os.environ/")):
            self.problem(f"{key}.litellm_params.api_key", "the service key (a team key of that host) must come from the environment",
                         "write os.environ/<VARIABLE> and set that variable to the key `llm-router keys add` printed there")
        cold_start = info.get("cold_start", "wait")
        if cold_start not in ("wait", "fallback"):
            self.problem(f"{key}.model_info.cold_start", f"{cold_start!r} is not wait or fallback", "write wait (the default) or fallback")
        if len(self.problems) > found_before:
            return None
        return RemoteGateway(base_url=str(api_base).rstrip("/").removesuffix("/v1"), group=model.split("/", 1)[1],
                             cold_start=cold_start)

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

    def _check_redis(self, redis: RedisSettings, router_settings: dict[str, Any]) -> None:
        if redis.password_env and not os.environ.get(redis.password_env):
            self.problem("llm_router.redis.password_env", f"names {redis.password_env}, which is not set",
                         f"export {redis.password_env} with the Redis password, or remove password_env for a Redis without one")
        theirs = [f"router_settings.{k}" for k in ("redis_host", "redis_port", "redis_password", "redis_url") if k in router_settings]
        general = self.raw.get("general_settings") or {}
        if isinstance(general, dict) and "coordination_redis" in general:
            theirs.append("general_settings.coordination_redis")
        for key in theirs:
            self.problem(key, "LiteLLM's Redis is set from llm_router.redis", "remove it: configure Redis once, in llm_router.redis")

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


def _secret_names(deployments: Iterable[Deployment], settings: GatewaySettings) -> set[str]:
    """The environment variables that hold secrets: the master key, providers' and deployments' API keys,
    Redis's password."""
    names = {MASTER_KEY_ENV, *_PROVIDER_KEY_ENV.values()}
    names |= {d.key_env for d in deployments if d.key_env}
    if settings.redis is not None and settings.redis.password_env:
        names.add(settings.redis.password_env)
    return names


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

