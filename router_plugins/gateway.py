"""The gateway's runtime state in one worker process: config, router, keys, and the machine's model servers.

Built once per worker by the app (llm_router/app.py) and handed to the hooks, the auth
function and our endpoints, which all read it through this object. Local model servers belong
to the machine's one owner (launchers/owner.py); a worker asks it through `servers` and reads
the state it pushes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from launchers import budget, provision
from launchers.owner_client import OwnerClient
from launchers.paths import RuntimePaths
from launchers.requirements import missing_requirements
from launchers.server import ServerState
from router_config.environment import MASTER_KEY_ENV, worker_count
from router_config.gateway_config import AffinitySettings, Deployment, GatewayConfig
from router_plugins.access import FORBIDDEN, OVER_BUDGET, AccessPolicy, Caller
from router_plugins.accounting import Accounting
from router_plugins.affinity import ConversationTiers, response_key
from router_plugins.budgets import Budgets
from router_plugins.keys import KeyStore, RateLimiter
from router_plugins.request_records import RequestRecords
from router_plugins.remotes import RemoteBackends
from router_plugins.routing import Availability, ContentRouter
from router_plugins.shared import RedisState, SharedState
from router_plugins.state.database import StateDatabase
from router_plugins.state.replicas import RemoteResponses, UsageReplication
from router_plugins.state.responses import ResponseStore
from router_plugins.state.spend import SpendLedger

_AVAILABILITY_TTL_S = 1.0


@dataclass(frozen=True)
class BackendHealth:
    healthy: bool
    state: str
    detail: str


class Gateway:
    def __init__(self, config: GatewayConfig):
        self.config = config
        self.router = ContentRouter(config)
        s = config.settings
        self.keys = KeyStore(config.resolve_path(s.keys_file)) if s.keys_file else None
        # Each kept up to date by a thread of its own, so that no request waits on Redis or a GPU host.
        workers = worker_count()
        self.shared = SharedState(s.redis, self.keys, workers) if s.redis else None
        self.access = AccessPolicy(os.environ.get(MASTER_KEY_ENV) or None, self.keys, RateLimiter(workers), self.shared)
        self.remotes = RemoteBackends(config.deployments)
        self.paths = RuntimePaths(config.resolve_path(s.state_dir), config.resolve_path(s.log_dir))
        self.servers = OwnerClient(self.paths.owner_socket, list(config.local_specs()))
        self.requests = RequestRecords()
        self.conversations = ConversationTiers(config.routing.affinity if config.routing else AffinitySettings())
        """Each conversation's routing tier, for affinity: shared through Redis where set, else through the owner."""
        self.state = StateDatabase(self.paths.state_database)
        """The machine's state database: stored responses and the spend ledger (router_plugins/state/)."""
        self.spend = SpendLedger(self.state, s.spend)
        self.accounting = Accounting(config, self.spend)
        self.budgets = Budgets(config, self.spend, self.keys)
        self.responses = (ResponseStore(self.state, s.responses, RemoteResponses(s.redis) if s.redis else None)
                          if s.responses.enabled else None)
        """None with `llm_router.responses: false`: previous_response_id then goes to the backend as it is."""
        self._usage_replication = UsageReplication(s.redis, self.state, self.spend) if s.redis else None
        self._availability: dict[str, tuple[float, str | None]] = {}

    def start(self) -> None:
        """Start what runs beside requests: only a serving process does, so that a Gateway built
        elsewhere (the bench, a check) never counts itself among Redis' workers or polls hosts."""
        if self.shared is not None:
            self.shared.keep_tiers(self.conversations)
            self.shared.start()
        else:
            self.conversations.share_with(self.servers.share_tier)
            self.servers.on_tier(self.conversations.learn)
        if self._usage_replication is not None:
            self._usage_replication.start()
        self.remotes.start()
        self.servers.start()

    def remember_response_tier(self, call_id: str, response_id: str) -> None:
        """A Responses answer keeps the tier its turn was routed at, for a next turn that names it as previous_response_id."""
        decision = self.requests.decision(call_id)
        if response_id.startswith("resp") and decision is not None and decision.tier is not None:
            self.conversations.remember(response_key(response_id).digest, decision.tier)

    # ---- routing availability -------------------------------------------------------------

    def unavailable_reason(self, group: str) -> str | None:
        """Why no deployment of `group` can serve on this machine right now, found without a network call.

        Remembered for a second: the answer looks at files and the environment, which change
        rarely, and routing asks it for several groups on every request.
        """
        now = time.monotonic()
        cached = self._availability.get(group)
        if cached is not None and cached[0] > now:
            return cached[1]
        reason = self._unavailable_reason(group)
        self._availability[group] = (now + _AVAILABILITY_TTL_S, reason)
        return reason

    def _unavailable_reason(self, group: str) -> str | None:
        reasons = [self.deployment_problem(d) for d in self.config.deployments_of(group)]
        if not reasons:
            return "no such model group"
        if any(r is None for r in reasons):
            return None
        return "; ".join(dict.fromkeys(r for r in reasons if r))

    def availability_for(self, caller: Caller) -> Availability:
        """Why each group can't serve this caller now: its allowlist, its budget (priced groups past it), the machine."""
        standing = self.budgets.standing(caller.key)
        over_budget = standing is not None and standing.exhausted

        def available(group: str) -> str | None:
            if not caller.may_use(group):
                return FORBIDDEN
            if over_budget and self.budgets.is_priced(group):
                return OVER_BUDGET
            return self.unavailable_reason(group)

        return available

    def deployment_problem(self, d: Deployment) -> str | None:
        """Why this deployment can't serve on this machine right now (no key, no GPU, no weights...), or None."""
        if d.launch_spec is None:
            missing = d.missing_key()
            if missing:
                return f"{missing} is not set"
            return self.remotes.problem(d) if d.remote is not None else None
        spec = d.launch_spec
        if not spec.auto_start and not self.servers.view(spec.name).is_ready:
            return "auto_start is false and the server is not running"
        problems = missing_requirements(spec)
        over_budget = budget.never_fits(self.config.settings.memory_budget, spec)
        if over_budget:
            problems.append(f"memory budget: {over_budget}")
        return "; ".join(problems) or None

    # ---- health ---------------------------------------------------------------------------

    def health(self) -> dict[str, BackendHealth]:
        out: dict[str, BackendHealth] = {}
        for group in self.config.groups:
            out[group] = self._group_health(self.config.deployments_of(group))
        return out

    def _group_health(self, deployments: tuple[Deployment, ...]) -> BackendHealth:
        d = deployments[0]
        if d.launch_spec is None:
            missing = d.missing_key()
            if missing:
                return BackendHealth(False, "unconfigured", f"{missing} is not set")
            if d.remote is not None:
                return BackendHealth(*self.remotes.health(deployments))
            return BackendHealth(True, "configured", f"{d.provider} key present; not probed (no completions are sent)")
        server = self.servers.view(d.launch_spec.name)
        problem = self.deployment_problem(d)
        if server.state is ServerState.READY:
            return BackendHealth(True, "ready", f"port {d.launch_spec.port}")
        if problem:
            return BackendHealth(False, "unavailable", problem)
        pending = provision.pending_preparation(d.launch_spec)
        if server.state is ServerState.FAILED:
            detail = server.last_error or ""
        elif server.state is ServerState.STARTING:
            detail = f"preparing {', '.join(pending)} (first use only; progress in logs/router.log)" if pending else "starting"
        elif pending:
            detail = f"starts on demand; first prepares {', '.join(pending)} (minutes, once)"
        else:
            detail = "starts on demand"
        return BackendHealth(server.state is not ServerState.FAILED, server.state.value, detail)

    def redis_state(self) -> RedisState | None:
        """up, recovering (answering again; rpm limits not yet exact) or down; None without llm_router.redis."""
        return self.shared.state if self.shared is not None else None

    def reload(self, config: GatewayConfig) -> None:
        """Take a reread configuration live: routing rules, fallbacks, aliases, deployments' facts. (Keys
        are reread from their file as they change; what only a restart applies, the owner named.)"""
        self.config = config
        self.router = ContentRouter(config)
        if config.routing is not None:
            self.conversations.settings = config.routing.affinity
        self.accounting.reload(config)
        self.budgets.reload(config)
        self.spend.settings = config.settings.spend
        if self.responses is not None and config.settings.responses.enabled:
            self.responses.settings = config.settings.responses
        self._availability.clear()

    def secrets(self) -> list[str]:
        """Values that must never appear in logs or responses."""
        return self.config.secrets()
