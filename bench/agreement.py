"""How often the bounded `auto` decision agrees with full scoring, over the fixed corpus (bench/corpus.py).

Full scoring is the decision without its bounds: LiteLLM's exact token count of every turn of a
prompt up to `max_chars`, and the difficulty score on all of the user's words (the bounded decision
reads their first `SCORED_CHARS` characters, half from the first user turn and half from the last
in a longer conversation). Both run on one config whose default group has the shipped CPU model's
1,536-token window, so the context reason is in play, with every group available.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench import corpus

# LiteLLM is imported where the agreement is measured, never by the bench process that reads the result.
if TYPE_CHECKING:
    from router_plugins.conversation import Conversation
    from router_plugins.routing import ContentRouter
    from router_plugins.signals import SignalReader, Signals

WINDOW_TOKENS = 1536
CONFIG = f"""\
model_list:
  - model_name: small
    litellm_params: {{model: hosted_vllm/SmolLM2-135M-Instruct, api_base: "http://127.0.0.1:9/v1", api_key: none}}
    model_info: {{max_input_tokens: {WINDOW_TOKENS}}}
  - model_name: large
    litellm_params: {{model: openai/gpt-4o, api_base: "http://127.0.0.1:9/v1", api_key: none}}
    model_info: {{supports_vision: true, max_input_tokens: 128000}}
routing: {{vision: [large], complex: [large], default: [small], complexity: {{max_chars: 2000}}}}
"""


@dataclass(frozen=True)
class AgreementResult:
    conversations: int
    reasons_agree: int
    reason_share: float
    scored: int
    """Conversations whose route the difficulty score decides: no image, the user's words within max_chars."""
    sides_agree: int
    """Of those, the ones whose bounded score falls on the same side of the threshold as the full one."""
    side_share: float
    scored_chars: int
    """How much of the user's words the bounded decision scores (router_plugins.difficulty.SCORED_CHARS)."""
    head_only: int
    """Scored conversations whose user's words the bounded decision doesn't read whole."""
    head_only_sides_agree: int
    reasons_full: dict[str, int]
    """How full scoring routes the corpus."""
    side_changes: dict[str, int]
    """'full -> bounded' reasons where the two sides differ, most frequent first."""


def measure(size: int = corpus.SIZE) -> AgreementResult:
    from router_plugins.conversation import Shape, read
    from router_plugins.difficulty import SCORED_CHARS

    router = windowed_router()
    reader = router.reader
    assert reader is not None
    window = router.window(lambda group: None)
    reasons: Counter[str] = Counter()
    changes: Counter[str] = Counter()
    agree = scored = sides_agree = head_only = head_only_agree = 0
    for body in corpus.conversations(size):
        conversation = read(body, Shape.CHAT)
        full, bounded = full_signals(reader, conversation, router.threshold), reader.read(conversation, window, router.threshold)
        reason, bounded_reason = router.reason(full, window), router.reason(bounded, window)
        reasons[reason] += 1
        agree += reason == bounded_reason
        if full.difficulty is None or bounded.difficulty is None:
            continue
        same = (full.difficulty >= router.threshold) == (bounded.difficulty >= router.threshold)
        scored += 1
        sides_agree += same
        if len(conversation.user_words(SCORED_CHARS)) < len(conversation.user_words(conversation.user_chars + 1)):
            head_only += 1
            head_only_agree += same
        if not same:
            changes[f"{reason} -> {bounded_reason}"] += 1
    return AgreementResult(size, agree, agree / size, scored, sides_agree, sides_agree / scored if scored else float("nan"),
                           SCORED_CHARS, head_only, head_only_agree, dict(reasons.most_common()), dict(changes.most_common()))


def full_signals(reader: SignalReader, conversation: Conversation, threshold: float) -> Signals:
    """The signals without the decision's bounds: every token counted up to max_chars, and all of the user's words scored."""
    from router_plugins.signals import Signals, count_tokens, estimate_tokens

    chars, user_chars = conversation.chars, conversation.user_chars
    if conversation.images:
        return Signals(chars, user_chars, estimate_tokens(conversation), True, conversation.images, None, None)
    exact = chars <= reader.max_chars
    tokens = count_tokens(reader.count_model, conversation) if exact else estimate_tokens(conversation)
    if reader.length(conversation) > reader.max_chars:
        return Signals(chars, user_chars, tokens, not exact, 0, None, None)
    words = conversation.user_words(user_chars + 1)
    whole = reader.scorer.score(words, limit=len(words))
    return Signals(chars, user_chars, tokens, not exact, 0, round(whole, 4), round(threshold, 4))


def windowed_router() -> ContentRouter:
    """A router for CONFIG: no launch specs, so nothing in it looks at this machine."""
    from router_config.gateway_config import load_config
    from router_plugins.routing import ContentRouter

    path = Path(tempfile.mkdtemp(prefix="llm-router-agreement-")) / "litellm_config.yaml"
    path.write_text(CONFIG)
    return ContentRouter(load_config(path))
