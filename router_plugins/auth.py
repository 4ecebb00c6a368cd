"""Who may call the gateway: the master key, or a team key from the keys file.

Registered as `general_settings.custom_auth: router_plugins.auth.authenticate`. Works with no
database. With no master key set the gateway is open (and `llm-router serve` refuses to bind
beyond loopback); the model allowlist and rpm of a team key are enforced in the pre-call hook,
against the group routing picked.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth

from llm_router.gateway import current
from router_plugins.keys import TeamKey, hash_key, same_secret

_TEAM_KEY_FIELD = "llm_router_team_key"


async def authenticate(request: Request, api_key: str) -> UserAPIKeyAuth:
    key = (api_key or "").removeprefix("Bearer ").strip()
    gw = current()
    master = gw.master_key
    if master is None:
        return UserAPIKeyAuth(api_key="open", user_role=LitellmUserRoles.PROXY_ADMIN, key_alias="open-gateway")
    if not key:
        raise HTTPException(401, "Missing API key. Send it as 'Authorization: Bearer <key>'.")
    if same_secret(key, master):
        return UserAPIKeyAuth(api_key=hash_key(key), user_role=LitellmUserRoles.PROXY_ADMIN, key_alias="master")
    team_key = gw.keys.lookup(key) if gw.keys else None
    if team_key is None or team_key.revoked:
        raise HTTPException(401, "Invalid or revoked API key.")
    # The team goes in team_alias, not team_id: our teams live in the keys file, not LiteLLM's
    # database, and a team_id makes LiteLLM copy its whole config on every request looking for
    # per-team settings. LiteLLM's logging still reports the team as user_api_key_team_alias.
    return UserAPIKeyAuth(
        api_key=team_key.sha256,
        key_alias=team_key.name,
        team_alias=team_key.team,
        user_role=LitellmUserRoles.INTERNAL_USER,
        metadata={_TEAM_KEY_FIELD: team_key.name},
    )


def team_key_of(user_api_key_dict: Any) -> TeamKey | None:
    """The team key behind a request, or None for the master key and an open gateway."""
    name = (getattr(user_api_key_dict, "metadata", None) or {}).get(_TEAM_KEY_FIELD)
    if not name:
        return None
    keys = current().keys
    digest = getattr(user_api_key_dict, "api_key", None)
    return keys.by_digest(digest) if keys and isinstance(digest, str) else None
