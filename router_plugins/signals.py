"""What content routing measures in a conversation, at a cost bounded whatever its size.

- **tokens** matter only against the context window of the default group that would serve. A
  UTF-8 byte is at most one token for the tokenizers LiteLLM counts with, so a prompt whose
  bytes (plus each turn's framing) fit the window can't overflow it and is never counted; nor is
  one with images (vision wins whatever its length). The rest is counted exactly with LiteLLM's
  counter up to the length rule's limit, and estimated from its size beyond, where the length rule
  has already decided, or where the difficulty score sends the request to `routing.complex` anyway.
- **difficulty** is the score of router_plugins/difficulty.py on the user's own words (their
  first `SCORED_CHARS` characters: the last user turn's, after the first one's in a longer
  conversation), for a text request the length rule hasn't decided.
- **complexity** is LiteLLM's keyword scorer on the first `TIER_CHARS` characters of the last user
  turn, only where `routing.complexity.tiers` names tiers that route (none by default: it costs
  most of a decision and, measured on labelled data, adds nothing to the difficulty score).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import litellm

from router_plugins.conversation import Conversation
from router_plugins.difficulty import SCORED_CHARS, DifficultyScorer

TIER_CHARS = 128
"""How much of the last user turn LiteLLM's complexity scorer rates, where tiers are configured."""
BYTES_PER_TOKEN_ESTIMATE = 4
"""Real text averages about four UTF-8 bytes a token: the estimate where an exact count isn't needed."""
_FRAMING_TOKENS_PER_TURN = 16
"""An upper bound on what a turn adds beyond its text in LiteLLM's count (role, separators)."""

Classify = Callable[[str], tuple[str, float]]
"""A complexity scorer: text -> (tier, score)."""


@dataclass(frozen=True)
class Signals:
    chars: int
    """Every turn's text, the system prompt included."""
    user_chars: int
    """The user's own words (router_plugins/conversation.py)."""
    tokens: int
    tokens_estimated: bool
    images: int
    difficulty: float | None
    """The difficulty score, for a text request up to the length rule's limit; None where it wasn't needed."""
    difficulty_threshold: float | None
    """The threshold the score was held against (the key's own, or the config's)."""
    complexity_tier: str | None = None
    complexity_score: float | None = None
    complexity_chars: int = 0
    """Characters of the last user turn LiteLLM's scorer rated (0: not rated; it runs only where tiers are configured)."""


class SignalReader:
    def __init__(self, max_chars: int, length_of: Literal["user", "prompt"], count_model: str, scorer: DifficultyScorer,
                 classify: Classify | None = None) -> None:
        self.max_chars = max_chars
        self.length_of = length_of
        self.count_model = count_model
        self.scorer = scorer
        self.classify = classify

    def length(self, conversation: Conversation) -> int:
        """What the length rule measures: the user's words, or the whole prompt."""
        return conversation.user_chars if self.length_of == "user" else conversation.chars

    def read(self, conversation: Conversation, window: int | None, threshold: float) -> Signals:
        """The signals of `conversation`, for a default group with this context window (None: unlimited)."""
        chars, user_chars = conversation.chars, conversation.user_chars
        if conversation.images:
            return Signals(chars, user_chars, estimate_tokens(conversation), True, conversation.images, None, None)
        difficulty = self.difficulty(conversation)
        # Counted exactly only up to max_chars, so that the count's cost is bounded too; and not for a request the
        # score already sends to routing.complex, where an overflowing window would send it too (reason `complex`).
        hard = difficulty is not None and difficulty >= threshold
        tokens, estimated = self._tokens(conversation, window) if chars <= self.max_chars and not hard else (estimate_tokens(conversation), True)
        if difficulty is None:
            return Signals(chars, user_chars, tokens, estimated, 0, None, None)
        if self.classify is None:
            return Signals(chars, user_chars, tokens, estimated, 0, difficulty, round(threshold, 4))
        head = conversation.last_user_text[:TIER_CHARS]
        tier, score = self.classify(head)
        return Signals(chars, user_chars, tokens, estimated, 0, difficulty, round(threshold, 4), tier, round(score, 4), len(head))

    def difficulty(self, conversation: Conversation) -> float | None:
        """The difficulty score of a text request up to the length rule's limit; None for one the score doesn't decide."""
        if conversation.images or self.length(conversation) > self.max_chars:
            return None
        return round(self.scorer.score(conversation.user_words(SCORED_CHARS)), 4)

    def _tokens(self, conversation: Conversation, window: int | None) -> tuple[int, bool]:
        size = conversation.utf8_size()
        if window is None or size + _FRAMING_TOKENS_PER_TURN * (len(conversation.turns) + 1) <= window:
            return size // BYTES_PER_TOKEN_ESTIMATE, True
        return count_tokens(self.count_model, conversation), False


def litellm_tiers() -> Classify:
    """LiteLLM's own local keyword scorer (classify() needs no router)."""
    from litellm.router_strategy.complexity_router.complexity_router import ComplexityRouter

    scorer = ComplexityRouter(model_name="llm-router-scorer", litellm_router_instance=None)  # type: ignore[arg-type]

    def classify(text: str) -> tuple[str, float]:
        tier, score, _ = scorer.classify(text)
        return str(tier.value), float(score)

    return classify


def count_tokens(model: str, conversation: Conversation) -> int:
    """LiteLLM's exact count of the conversation's text."""
    if not conversation.chars:
        return 0
    return litellm.token_counter(model=model, messages=[{"role": role, "content": text} for role, text in conversation.turns])


def estimate_tokens(conversation: Conversation) -> int:
    return conversation.utf8_size() // BYTES_PER_TOKEN_ESTIMATE
