"""Content-aware routing: which model group a chat request goes to, and why.

The decision never decodes or fetches an image and never calls a backend, and its cost is
bounded whatever the prompt size: the complexity scorer and the exact token count only run on
prompts up to `complexity.max_chars`; anything longer is complex by the length rule alone and
its token count is estimated from its UTF-8 size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import litellm
from litellm.router_strategy.complexity_router.complexity_router import ComplexityRouter

from router_config.gateway_config import GatewayConfig
from router_plugins.access import FORBIDDEN

Reason = Literal["explicit", "vision", "context", "complex", "default"]

# A UTF-8 byte is at most one token for the byte-level BPE tokenizers we count with, and real
# text averages about four bytes a token: good enough to tell "too long for the window" apart
# from "long" on prompts where an exact count would cost more than the request is worth.
_BYTES_PER_TOKEN_ESTIMATE = 4
_IMAGE_PART_TYPES = frozenset({"image_url", "input_image", "image"})

Availability = Callable[[str], str | None]
"""Returns None when a model group can serve here, else why not."""


@dataclass(frozen=True)
class Signals:
    chars: int
    tokens: int
    tokens_estimated: bool
    images: int
    complexity_tier: str | None
    complexity_score: float | None


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

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "reason": self.reason,
            "signals": asdict(self.signals) if self.signals else None,
            "fallbacks": list(self.fallbacks),
            "skipped": [asdict(s) for s in self.skipped],
        }


class NoAllowedGroup(Exception):
    """Every group the rules would pick is forbidden for this key."""


class ContentRouter:
    def __init__(self, config: GatewayConfig):
        self._config = config
        self._rules = config.routing
        # Reuse LiteLLM's own local complexity scorer; it needs no router for classify().
        self._scorer = ComplexityRouter(model_name="llm-router-scorer", litellm_router_instance=None)  # type: ignore[arg-type]

    def is_content_routed(self, model: Any) -> bool:
        return model is None or model == "" or model in self._rules.trigger_models

    def decide(self, body: dict[str, Any], availability: Availability) -> RoutingDecision:
        requested = body.get("model")
        if not self.is_content_routed(requested):
            group = self._config.resolve(str(requested))
            return RoutingDecision(str(requested), "explicit", None, self._config.fallback_chain(group))
        signals = self.signals(body.get("messages"))
        reason = self._reason(signals, availability)
        group, skipped = self._pick(reason, availability)
        return RoutingDecision(group, reason, signals, self._config.fallback_chain(group), skipped)

    def signals(self, messages: Any) -> Signals:
        texts, images = _scan(messages)
        chars = sum(len(t) for t in texts)
        rules = self._rules.complexity
        if chars > rules.max_chars:
            size = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
            return Signals(chars, size // _BYTES_PER_TOKEN_ESTIMATE, True, images, None, None)
        tokens = litellm.token_counter(model=self._count_model(), messages=_text_only(messages)) if chars else 0
        tier, score, _ = self._scorer.classify(_last_user_text(messages))
        return Signals(chars, tokens, False, images, str(tier.value), round(float(score), 4))

    def _reason(self, s: Signals, availability: Availability) -> Reason:
        if s.images:
            return "vision"
        # The window that matters is the one of the default group that would actually serve.
        default = next((g for g in self._rules.default if availability(g) is None), self._rules.default[0])
        window = self._config.context_window(default)
        if window is not None and s.tokens > window:
            return "context"
        if s.chars > self._rules.complexity.max_chars or s.complexity_tier in self._rules.complexity.tiers:
            return "complex"
        return "default"

    def _pick(self, reason: Reason, availability: Availability) -> tuple[str, tuple[SkippedGroup, ...]]:
        preferences = self._preferences(reason)
        skipped = []
        for group in preferences:
            why = availability(group)
            if why is None:
                return group, tuple(skipped)
            skipped.append(SkippedGroup(group, why))
        if all(s.why == FORBIDDEN for s in skipped):
            raise NoAllowedGroup(reason)
        # Nothing can serve: send it to the first allowed preference so the client gets that
        # backend's clear error (and its fallbacks are still tried) rather than a guess.
        first = next(s.group for s in skipped if s.why != FORBIDDEN)
        return first, tuple(skipped)

    def _preferences(self, reason: Reason) -> tuple[str, ...]:
        """The reason's own groups first, then the other text groups (vision-capable ones for images)."""
        rules = self._rules
        own = {"vision": rules.vision, "context": rules.complex, "complex": rules.complex, "default": rules.default}[reason]
        others = (*rules.default, *rules.complex) if reason != "default" else rules.complex
        if reason == "vision":
            others = tuple(g for g in others if self._config.supports_vision(g))
        return tuple(dict.fromkeys((*own, *others)))

    def _count_model(self) -> str:
        deployments = self._config.deployments_of(self._rules.default[0])
        return deployments[0].litellm_model if deployments else "gpt-4o"



def _parts(content: Any) -> Iterable[Any]:
    if isinstance(content, list):
        return content
    return ()


def _scan(messages: Any) -> tuple[list[str], int]:
    texts: list[str] = []
    images = 0
    if not isinstance(messages, list):
        return texts, images
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        for part in _parts(content):
            if not isinstance(part, dict):
                continue
            if part.get("type") in _IMAGE_PART_TYPES:
                images += 1
            elif isinstance(part.get("text"), str):
                texts.append(part["text"])
    return texts, images


def _text_only(messages: Any) -> list[dict[str, str]]:
    out = []
    for message in messages if isinstance(messages, list) else ():
        if isinstance(message, dict):
            texts, _ = _scan([message])
            out.append({"role": str(message.get("role", "user")), "content": "".join(texts)})
    return out


def _last_user_text(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else ()):
        if isinstance(message, dict) and message.get("role") == "user":
            return "".join(_scan([message])[0])
    return ""
