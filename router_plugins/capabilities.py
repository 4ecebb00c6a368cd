"""What each model group can take: images, tools, media by URL. Declared in `model_info` (or the
launch spec), else LiteLLM's model map."""

from __future__ import annotations

from dataclasses import dataclass

import litellm

from router_config.gateway_config import Deployment, GatewayConfig


@dataclass(frozen=True)
class GroupCapabilities:
    vision: bool
    tools: bool
    media_urls: bool
    """Takes images and files by URL: a cloud provider fetches them on its side; a local server only
    where its spec lets it fetch from this machine (`fetch_media_urls`)."""


def group_capabilities(config: GatewayConfig) -> dict[str, GroupCapabilities]:
    """Per group, what every one of its deployments can do (LiteLLM may pick any of them)."""
    return {
        group: GroupCapabilities(
            vision=all(_vision(d) for d in config.deployments_of(group)),
            tools=all(_tools(d) for d in config.deployments_of(group)),
            media_urls=all(takes_media_urls(d) for d in config.deployments_of(group)),
        )
        for group in config.groups
    }


def takes_media_urls(d: Deployment) -> bool:
    return d.launch_spec is None or d.launch_spec.fetch_media_urls


def _vision(d: Deployment) -> bool:
    return d.supports_vision if d.supports_vision is not None else _from_litellm(litellm.supports_vision, d)


def _tools(d: Deployment) -> bool:
    if d.supports_function_calling is not None:
        return d.supports_function_calling
    if d.launch_spec is not None:
        return d.launch_spec.calls_tools
    return _from_litellm(litellm.supports_function_calling, d)


def _from_litellm(lookup, d: Deployment) -> bool:  # type: ignore[no-untyped-def]
    if d.is_local:
        return False  # a local server's abilities come from its launch spec or model_info
    try:
        return bool(lookup(model=d.litellm_model))
    except Exception:  # LiteLLM raises for models its map doesn't know
        return False
