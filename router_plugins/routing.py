"""Content-aware routing: which model group a request goes to, and why, on all three APIs.

For `auto`: images go to `routing.vision`; a prompt longer than the default group's window, or
user's words longer than `max_chars`, to `routing.complex`; so does a text request whose
difficulty score (router_plugins/difficulty.py) is at or above the threshold (the key's own, or
`routing.difficulty`); the rest to `routing.default`. The decision never decodes or fetches an
image and never calls a backend, and its cost is bounded whatever the prompt size
(router_plugins/signals.py). A request that offers tools goes only to a group that can call
them; an explicit name is never rerouted. A later turn of a conversation `auto` escalated goes to
at least the tier remembered for it (router_plugins/affinity.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from router_config.gateway_config import TRIGGER_DEFAULT, DifficultySetting, GatewayConfig
from router_plugins import output_budget
from router_plugins.access import FORBIDDEN, OVER_BUDGET
from router_plugins.affinity import ConversationKey, ConversationTiers, Tier, conversation_key, higher
from router_plugins.capabilities import group_capabilities
from router_plugins.conversation import Conversation, Shape, offers_tools, read
from router_plugins.difficulty import DifficultyScorer, shipped_scorer
from router_plugins.errors import ApiError
from router_plugins.output_budget import OutputBudget
from router_plugins.signals import SignalReader, Signals, litellm_tiers

Reason = Literal["explicit", "vision", "context", "complex", "default", "affinity", "budget"]
_TIER_OF: dict[str, Tier] = {"vision": "vision", "context": "complex", "complex": "complex", "default": "default"}

CANNOT_CALL_TOOLS = "can't call tools"
CANNOT_SEE_IMAGES = "can't see images"
CANNOT_FETCH_MEDIA = "would fetch a media URL from this machine"
_REQUEST_CAUSED = frozenset({CANNOT_CALL_TOOLS, CANNOT_SEE_IMAGES, CANNOT_FETCH_MEDIA})
"""Reasons a group can't take a request that lie in the request, not in the backend."""
_ASKS = {CANNOT_CALL_TOOLS: "offers tools", CANNOT_SEE_IMAGES: "has images", CANNOT_FETCH_MEDIA: "gives images or files by URL"}

Availability = Callable[[str], str | None]
"""Returns None when a model group can serve here, else why not."""


@dataclass(frozen=True)
class SkippedGroup:
    group: str
    why: str


@dataclass(frozen=True)
class RoutingDecision:
    model: str
    reason: Reason
    signals: Signals | None
    fallbacks: tuple[str, ...]
    skipped: tuple[SkippedGroup, ...] = ()
    tier: Tier | None = None
    """The tier `auto` routed at (None for an explicit name): at least the conversation's remembered one."""
    conversation: ConversationKey | None = None
    """The key `auto` remembers this conversation by; None for an explicit name, or with affinity off."""
    remembered: Tier | None = None
    """The tier remembered for the conversation before this turn."""

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "reason": self.reason,
            "signals": asdict(self.signals) if self.signals else None,
            "fallbacks": list(self.fallbacks),
            "skipped": [asdict(s) for s in self.skipped],
            "affinity": {"key_from": self.conversation.source, "remembered": self.remembered, "tier": self.tier}
            if self.conversation else None,
        }


class ContentRouter:
    def __init__(self, config: GatewayConfig):
        self._config = config
        self._rules = config.routing
        self._capabilities = group_capabilities(config)
        self._triggers = frozenset(config.routing.trigger_models if config.routing else TRIGGER_DEFAULT)
        self.scorer: DifficultyScorer = shipped_scorer()
        self.reader = None
        self.threshold = 0.0
        if config.routing is not None:
            rules = config.routing.complexity
            self.reader = SignalReader(rules.max_chars, rules.length_of, self._count_model(), self.scorer,
                                       litellm_tiers() if rules.tiers else None)
            self.threshold = self.threshold_for(config.routing.difficulty)

    def threshold_for(self, setting: DifficultySetting) -> float:
        """The difficulty threshold a setting asks for: its own, or the one that sends its share of the
        difficulty model's reference prompts to the strong model."""
        if setting.threshold is not None:
            return setting.threshold
        return self.scorer.model.threshold_for_share(setting.strong_share)

    @property
    def trigger_names(self) -> tuple[str, ...]:
        """The names `auto` routing answers to; none when routing isn't configured."""
        return tuple(self._rules.trigger_models) if self._rules else ()

    def is_content_routed(self, model: Any) -> bool:
        return model is None or model == "" or (isinstance(model, str) and model in self._triggers)

    def misfit(self, group: str, body: dict[str, Any], shape: Shape) -> str | None:
        """Why `group` can't take this request for a reason in the request itself (tools, media by URL); None if it can."""
        caps = self._capabilities.get(group)
        if caps is None:
            return None  # a name we don't know is LiteLLM's to refuse
        if not caps.tools and offers_tools(body, shape):
            return CANNOT_CALL_TOOLS
        if not caps.media_urls and read(body, shape).remote_media:
            return CANNOT_FETCH_MEDIA
        return None

    def decide(self, body: dict[str, Any], shape: Shape, availability: Availability,
               tiers: ConversationTiers | None = None, headers: Mapping[str, str] | None = None,
               difficulty: DifficultySetting | None = None) -> RoutingDecision:
        """Raise a 4xx ApiError when no group may take the request.

        tiers: the conversations this process remembers, for affinity (read only: the caller
        remembers the decision once the request is on its way). headers: the request's, for a
        session id. difficulty: the calling key's own setting, in place of the config's."""
        requested = body.get("model")
        if not self.is_content_routed(requested):
            group = self._config.resolve(str(requested))
            misfit = self.misfit(group, body, shape)
            if misfit == CANNOT_CALL_TOOLS:
                raise self._refused(f"Model '{requested}' can't call tools; drop `tools` or name a model group that can.",
                                    read(body, shape), availability, "tools")
            if misfit == CANNOT_FETCH_MEDIA:
                raise self._refused(f"Model '{requested}' runs on this machine, which doesn't fetch images or files by URL; send "
                                    "them inline as base64 data URLs (or set fetch_media_urls: true in its launch spec).",
                                    read(body, shape), availability, "messages")
            return RoutingDecision(group, "explicit", None, self._config.fallback_chain(group))
        if self._rules is None:
            raise ApiError(400, f"Content routing isn't configured, so '{requested or ''}' names no model: add a `routing:` "
                                f"section to the config (see the README) or name a model ({', '.join(self._config.groups)}).", "model")
        conversation = read(body, shape)
        window = self.window(availability)
        assert self.reader is not None
        threshold = self.threshold if difficulty is None else self.threshold_for(difficulty)
        signals = self.reader.read(conversation, window, threshold)
        reason: Reason = self.reason(signals, window)
        tier = _TIER_OF[reason]
        key = remembered = None
        if tiers is not None and self._rules.affinity.enabled:
            key = conversation_key(body, shape, conversation, headers or {})
            remembered = tiers.recall(key.digest) if key else None
            if remembered is not None and higher(tier, remembered) != tier:
                reason, tier = "affinity", remembered
        group, skipped = self._pick(tier, conversation, availability)
        if any(s.why == OVER_BUDGET for s in skipped):
            reason = "budget"  # the tier's priced groups were passed over: the key or its team is past its budget
        return RoutingDecision(group, reason, signals, self._config.fallback_chain(group), skipped, tier, key, remembered)

    def output_budget(self, group: str, body: dict[str, Any]) -> OutputBudget | None:
        """The output the request would get from `group`'s first deployment (the deployment hook fits each attempt)."""
        deployments = self._config.deployments_of(group)
        return output_budget.fit(body, deployments[0].window, deployments[0].litellm_model) if deployments else None

    def window(self, availability: Availability) -> int | None:
        """The context window that matters: the one of the default group that would actually serve."""
        assert self._rules is not None
        default = next((g for g in self._rules.default if availability(g) is None), self._rules.default[0])
        return self._config.context_window(default)

    def reason(self, s: Signals, window: int | None) -> Reason:
        assert self._rules is not None
        if s.images:
            return "vision"
        if window is not None and s.tokens > window:
            return "context"
        rules = self._rules.complexity
        length = s.user_chars if rules.length_of == "user" else s.chars
        if length > rules.max_chars or s.complexity_tier in rules.tiers:
            return "complex"
        if s.difficulty is not None and s.difficulty_threshold is not None and s.difficulty >= s.difficulty_threshold:
            return "complex"
        return "default"

    def _for_request(self, conversation: Conversation, availability: Availability) -> Availability:
        if not conversation.wants_tools and not conversation.remote_media:
            return availability

        def available(group: str) -> str | None:
            caps = self._capabilities[group]
            if conversation.wants_tools and not caps.tools:
                return availability(group) or CANNOT_CALL_TOOLS
            if conversation.remote_media and not caps.media_urls:
                return availability(group) or CANNOT_FETCH_MEDIA
            return availability(group)

        return available

    def refusal(self, body: dict[str, Any], shape: Shape, availability: Availability) -> ApiError | None:
        """The 400 for a request that asks for what no model group available here can do (tools, images,
        media by URL), naming every group and why; None if an available group can do it, or if no group
        is available at all (then the deployment's state stands in the way, not the request: a 503)."""
        conversation = read(body, shape)
        return self._cannot_serve(conversation, availability) if self._asks_too_much(conversation, availability) else None

    def _pick(self, tier: Tier, conversation: Conversation, availability: Availability) -> tuple[str, tuple[SkippedGroup, ...]]:
        skipped = []
        for_request = self._for_request(conversation, availability)
        for group in self._preferences(tier):
            why = for_request(group)
            if why is None:
                return group, tuple(skipped)
            skipped.append(SkippedGroup(group, why))
        if all(s.why == FORBIDDEN for s in skipped):
            raise ApiError(403, "This key may not use any model group that can serve this request.")
        first = next((s.group for s in skipped if s.why != FORBIDDEN and s.why not in _REQUEST_CAUSED), None)
        if first is None or self._asks_too_much(conversation, availability):
            # What the request asks for stands in the way (a group that could, if any, is not one auto routes to).
            raise self._cannot_serve(conversation, availability)
        # Nothing can serve: send it to the first allowed preference so the client gets that
        # backend's clear error (and its fallbacks are still tried) rather than a guess.
        return first, tuple(skipped)

    def _needs(self, conversation: Conversation) -> list[str]:
        """What the request asks of a model group beyond text, each as the reason a group that can't gives."""
        return [why for why, asked in ((CANNOT_CALL_TOOLS, conversation.wants_tools), (CANNOT_SEE_IMAGES, conversation.images > 0),
                                       (CANNOT_FETCH_MEDIA, conversation.remote_media)) if asked]

    def _unable(self, group: str, conversation: Conversation) -> str | None:
        """Why `group` can't take this request for a reason in the request itself; None if it can."""
        caps = self._capabilities[group]
        able = {CANNOT_CALL_TOOLS: caps.tools, CANNOT_SEE_IMAGES: caps.vision, CANNOT_FETCH_MEDIA: caps.media_urls}
        return next((why for why in self._needs(conversation) if not able[why]), None)

    def _asks_too_much(self, conversation: Conversation, availability: Availability) -> bool:
        """Some group the caller may use is available here, and none of those can do what the request asks."""
        if not self._needs(conversation):
            return False
        available = [group for group in self._config.groups if availability(group) is None]
        return bool(available) and all(self._unable(group, conversation) for group in available)

    def _cannot_serve(self, conversation: Conversation, availability: Availability) -> ApiError:
        needs = self._needs(conversation)
        limited = any(availability(group) == FORBIDDEN for group in self._config.groups)
        # Where a group could, it is one auto doesn't route to (none of routing's lists names it): name it.
        where = "that is available here" if self._asks_too_much(conversation, availability) else "that auto routes to"
        media = " Send images and files inline as base64 data URLs." if CANNOT_FETCH_MEDIA in needs else ""
        return self._refused(f"No model group {'this key may use ' if limited else ''}{where} can serve this request, which "
                             f"{' and '.join(_ASKS[why] for why in needs)}.{media}", conversation, availability)

    def _refused(self, lead: str, conversation: Conversation, availability: Availability, param: str | None = None) -> ApiError:
        """A 400 that names every group the caller may use and why it can't take this request (None where it could)."""
        groups = tuple((group, self._unable(group, conversation) or unavailable) for group in self._config.groups
                       if (unavailable := availability(group)) != FORBIDDEN)
        named = "; ".join(f"{group}: {why or 'can serve it'}" for group, why in groups)
        return ApiError(400, f"{lead} Every model group: {named}.", param or ("tools" if conversation.wants_tools else "messages"),
                        groups=groups)

    def _preferences(self, tier: Tier) -> tuple[str, ...]:
        """The tier's own groups first, then the other text groups (vision-capable ones for images)."""
        rules = self._rules
        assert rules is not None
        own = {"vision": rules.vision, "complex": rules.complex, "default": rules.default}[tier]
        others = (*rules.default, *rules.complex) if tier != "default" else rules.complex
        if tier == "vision":
            others = tuple(g for g in others if self._capabilities[g].vision)
        return tuple(dict.fromkeys((*own, *others)))

    def _count_model(self) -> str:
        assert self._rules is not None
        deployments = self._config.deployments_of(self._rules.default[0])
        return deployments[0].litellm_model if deployments else "gpt-4o"

