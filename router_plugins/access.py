"""Who is calling, and what they may do: one policy for every route, LiteLLM's and ours.

A caller is the master key, a team key from the keys file, or anyone at all on an open gateway
(no master key; `serve` then binds loopback only). The policy:
- no key (or a wrong or revoked one) gets 401 on every route but the public probes;
- a team key reaches only inference and team routes (router_plugins/routes.py), and on those
  only the model groups of its allowlist, within its one rpm budget across all routes (counted
  here, or, while replicas share a Redis, by LiteLLM's own limiter there: see count_request);
- the master key reaches everything.

It is applied at the door (llm_router/app.py) for every request, from what the request names;
by the pre-call hook to the group that content routing picked; and by the deployment hook to
every attempt, fallback hops included, so that no path to a backend escapes it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from router_config.gateway_config import DifficultySetting
from router_plugins.errors import ApiError
from router_plugins.keys import KeyStore, RateLimiter, TeamKey, same_secret
from router_plugins.routes import Access, Route, not_served_message

if TYPE_CHECKING:
    from router_plugins.shared import SharedState

FORBIDDEN = "not allowed for this key"
OVER_BUDGET = "over budget"
"""Why a priced group is unavailable to a key past its budget or its team's (router_plugins/budgets.py)."""

# Where LiteLLM looks for a key, first match wins (litellm/proxy/auth/user_api_key_auth.py,
# get_api_key): the door reads the same headers so it judges the key LiteLLM will see.
_KEY_HEADERS = ("x-litellm-api-key", "authorization", "api-key", "x-api-key", "x-goog-api-key", "ocp-apim-subscription-key")
_SCHEMES = ("Bearer ", "bearer ", "Basic ")


class Role(str, enum.Enum):
    OPEN = "open"
    MASTER = "master"
    TEAM = "team"


@dataclass(frozen=True)
class Caller:
    role: Role
    key: TeamKey | None = None

    @property
    def name(self) -> str:
        return self.key.name if self.key else self.role.value

    @property
    def is_team(self) -> bool:
        return self.role is Role.TEAM

    def may_use(self, group: str) -> bool:
        return self.key is None or self.key.allows(group)

    def may_use_any_model(self) -> bool:
        return self.key is None or "*" in self.key.models

    @property
    def difficulty(self) -> DifficultySetting | None:
        """The key's own difficulty threshold or share for `auto`, if it has one."""
        return self.key.difficulty if self.key else None


OPEN = Caller(Role.OPEN)
MASTER = Caller(Role.MASTER)


def presented_key(headers: Mapping[str, str]) -> str:
    """The key a request presents, read from the first header LiteLLM would read it from."""
    for name in _KEY_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if name in ("authorization", "x-litellm-api-key"):
            scheme = next((s for s in _SCHEMES if value.startswith(s)), None)
            if scheme is None and name == "authorization":
                return ""
            return value[len(scheme):].strip() if scheme else value.strip()
        return value.strip()
    return ""


class AccessPolicy:
    def __init__(self, master_key: str | None, keys: KeyStore | None, rate_limiter: RateLimiter, shared: SharedState | None = None):
        self._master = master_key
        self._keys = keys
        self._rate_limiter = rate_limiter
        self._shared = shared

    @property
    def is_open(self) -> bool:
        return self._master is None

    def caller(self, presented: str) -> Caller:
        """Who presents this key; raise a 401 ApiError if nobody we know."""
        if self._master is None:
            return OPEN
        if not presented:
            raise ApiError(401, "Missing API key. Send it as 'Authorization: Bearer <key>' (or 'x-api-key: <key>').")
        if same_secret(presented, self._master):
            return MASTER
        key = self._keys.lookup(presented) if self._keys else None
        if key is None or key.revoked:
            raise ApiError(401, "Invalid or revoked API key.")
        return Caller(Role.TEAM, key)

    def team_caller(self, digest: str) -> Caller:
        """The team key with this digest as LiteLLM carries it through a request (its `api_key`),
        looked up again so that a key revoked meanwhile is refused on its next attempt."""
        key = self._keys.by_digest(digest) if self._keys else None
        return Caller(Role.TEAM, key)

    def check_route(self, caller: Caller, route: Route, method: str, path: str) -> None:
        if caller.is_team and route.access in (Access.ADMIN, Access.NOT_SERVED, Access.WRONG_METHOD):
            raise ApiError(403, "This route needs the master key.")
        if route.access is Access.WRONG_METHOD:
            raise ApiError(405, f"{path} takes {', '.join(route.allowed)} only.", retryable=False)
        if route.access is Access.NOT_SERVED:
            raise ApiError(501, not_served_message(method, path), retryable=False)

    def check_request(self, caller: Caller, route: Route, group: str | None) -> None:
        """A team key's request on an inference route, before anything runs: its model, then its rpm.

        group: the model group the request names (aliases resolved), or None when it names none
        (content routing decides later and is checked then)."""
        if not caller.is_team or route.access is not Access.INFERENCE:
            return
        if route.operation.can_reach_any_model and not caller.may_use_any_model():
            raise ApiError(403, f"Batches and files can name any model, which the gateway can't check; this key may use only {_allowed(caller)}.")
        if group is not None:
            self.check_group(caller, group)
        self.count_request(caller, litellm_counts=route.litellm_hooks)

    def check_group(self, caller: Caller, group: str) -> None:
        if not caller.may_use(group):
            raise ApiError(403, f"This key may not use model '{group}'. Allowed: {_allowed(caller)}.")

    @property
    def litellm_counts_rpm(self) -> bool:
        """Whether team keys' rpm is counted by LiteLLM's limiter, in the Redis the replicas share (exact
        across all of them), rather than here. Only while that Redis answers: otherwise each process
        counts its share here."""
        return self._shared is not None and self._shared.counts_rpm

    def count_request(self, caller: Caller, litellm_counts: bool = True) -> None:
        """Count a team key's request against its rpm, unless LiteLLM's limiter counts it in Redis.

        litellm_counts: whether LiteLLM's limiter sees this request at all (it runs no pre-call hook on
        the token-counting routes). One it doesn't see is counted here even with Redis, against this
        process's share of the limit: a budget of its own beside the one LiteLLM counts."""
        key = caller.key
        if key is None or key.rpm is None or (self.litellm_counts_rpm and litellm_counts):
            return
        among = self._shared.processes if self._shared is not None else None
        # By hash: keys from several replicas' files may share a name.
        if not self._rate_limiter.allow(key.sha256, key.rpm, among):
            raise ApiError(429, f"Rate limit exceeded: this key allows {key.rpm} requests per minute.")

    def check_attempt(self, caller: Caller, group: str | None) -> str | None:
        """Why this attempt at a backend is refused for the caller, or None: the deployment hook's backstop."""
        if not caller.is_team:
            return None
        if caller.key is None or caller.key.revoked:
            return "unknown or revoked key"
        if group is None:
            return None if caller.may_use_any_model() else FORBIDDEN
        return None if caller.may_use(group) else FORBIDDEN


def _allowed(caller: Caller) -> str:
    return ", ".join(caller.key.models) if caller.key else "none"
