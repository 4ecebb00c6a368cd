"""LiteLLM's `general_settings.custom_auth`, and the way back from LiteLLM's key object to our caller.

`llm-router serve` registers it itself (router_config/litellm_settings.py). It needs no database.
The door (llm_router/app.py) has already authenticated the request and applied the route policy;
this function reads the caller the door left on the request, and authenticates again only for a
request that didn't pass the door.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth

from router_plugins.access import MASTER, OPEN, AccessPolicy, Caller, Role
from router_plugins.errors import ApiError

CALLER_STATE = "llm_router_caller"
"""The request-state attribute the door sets to the request's Caller."""


class LiteLLMAuth:
    def __init__(self, policy: AccessPolicy):
        self._policy = policy

    async def authenticate(self, request: Request, api_key: str) -> UserAPIKeyAuth:
        caller = getattr(request.state, CALLER_STATE, None)
        if caller is None:
            try:
                caller = self._policy.caller((api_key or "").removeprefix("Bearer ").strip())
            except ApiError as exc:
                # LiteLLM turns any other exception into a 500 when it has no database.
                raise HTTPException(exc.status, exc.message) from None
        return self._as_litellm_key(caller)

    def caller_of(self, litellm_key: Any) -> Caller:
        """The caller behind LiteLLM's key object, as hooks receive it (None: LiteLLM's own call,
        a nested call whose parent request was checked)."""
        if not isinstance(litellm_key, UserAPIKeyAuth) or litellm_key.user_role == LitellmUserRoles.PROXY_ADMIN:
            return OPEN if self._policy.is_open else MASTER
        return self._policy.team_caller(str(litellm_key.api_key))

    def _as_litellm_key(self, caller: Caller) -> UserAPIKeyAuth:
        if caller.role is not Role.TEAM or caller.key is None:
            return UserAPIKeyAuth(api_key=caller.role.value, user_role=LitellmUserRoles.PROXY_ADMIN, key_alias=caller.role.value)
        # The team goes in team_alias, not team_id: our teams live in the keys file, not LiteLLM's
        # database, and a team_id makes LiteLLM copy its whole config on every request looking for
        # per-team settings. LiteLLM's logging still reports the team as user_api_key_team_alias.
        # With a Redis the replicas share, the key's rpm_limit goes to LiteLLM's limiter, which counts
        # it there (its api_key, the hash, names the key).
        return UserAPIKeyAuth(
            api_key=caller.key.sha256,
            key_alias=caller.key.name,
            team_alias=caller.key.team,
            user_role=LitellmUserRoles.INTERNAL_USER,
            rpm_limit=caller.key.rpm if self._policy.litellm_counts_rpm else None,
        )
