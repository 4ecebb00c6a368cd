"""What content routing measures in a conversation, at a cost bounded whatever its size.

LiteLLM decides both measures that cost anything: its token counter and its complexity scorer.
Each runs only as far as the route can depend on it:

- **tokens** matter only against the context window of the default group that would serve. A
  UTF-8 byte is at most one token for the tokenizers LiteLLM counts with, so a prompt whose
  bytes (plus each turn's framing) fit the window can't overflow it and is never counted; nor is
  one with images (vision wins whatever its length). The rest is counted exactly up to
  `max_chars` and estimated from its size beyond, where the length rule has already decided.
- **complexity** is LiteLLM's scorer on the first `SCORED_CHARS` characters of the last user turn.
  The scorer costs about 0.1 ms plus 1.3 µs per character; what a request asks sits mostly at
  its start, and `python -m bench` measures how often the head alone rates the same tier and
  routes the same way as the whole turn would, on a fixed corpus (bench/corpus.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import litellm
from litellm.router_strategy.complexity_router.complexity_router import ComplexityRouter

from router_plugins.conversation import Conversation

SCORED_CHARS = 128
"""How much of the last user turn LiteLLM's complexity scorer rates."""
BYTES_PER_TOKEN_ESTIMATE = 4
"""Real text averages about four UTF-8 bytes a token: the estimate where an exact count isn't needed."""
_FRAMING_TOKENS_PER_TURN = 16
"""An upper bound on what a turn adds beyond its text in LiteLLM's count (role, separators)."""


@dataclass(frozen=True)
class Signals:
    chars: int
    tokens: int
    tokens_estimated: bool
    images: int
    complexity_tier: str | None
    complexity_score: float | None
    complexity_chars: int
    """Characters of the last user turn the scorer rated (0: not rated, the route didn't depend on it)."""


class SignalReader:
    def __init__(self, max_chars: int, count_model: str) -> None:
        self.max_chars = max_chars
        self.count_model = count_model
        # LiteLLM's own local scorer; classify() needs no router.
        self.scorer = ComplexityRouter(model_name="llm-router-scorer", litellm_router_instance=None)  # type: ignore[arg-type]

    def read(self, conversation: Conversation, window: int | None) -> Signals:
        """The signals of `conversation`, for a default group with this context window (None: unlimited)."""
        chars = conversation.chars
        if conversation.images or chars > self.max_chars:
            return Signals(chars, estimate_tokens(conversation), True, conversation.images, None, None, 0)
        tokens, estimated = self._tokens(conversation, window)
        head = conversation.last_user_text[:SCORED_CHARS]
        tier, score, _ = self.scorer.classify(head)
        return Signals(chars, tokens, estimated, 0, str(tier.value), round(float(score), 4), len(head))

    def _tokens(self, conversation: Conversation, window: int | None) -> tuple[int, bool]:
        size = conversation.utf8_size()
        if window is None or size + _FRAMING_TOKENS_PER_TURN * (len(conversation.turns) + 1) <= window:
            return size // BYTES_PER_TOKEN_ESTIMATE, True
        return count_tokens(self.count_model, conversation), False


def count_tokens(model: str, conversation: Conversation) -> int:
    """LiteLLM's exact count of the conversation's text."""
    if not conversation.chars:
        return 0
    return litellm.token_counter(model=model, messages=[{"role": role, "content": text} for role, text in conversation.turns])


def estimate_tokens(conversation: Conversation) -> int:
    return conversation.utf8_size() // BYTES_PER_TOKEN_ESTIMATE
