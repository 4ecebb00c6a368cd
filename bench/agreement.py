"""How often the bounded `auto` decision agrees with full scoring, over the fixed corpus (bench/corpus.py).

Full scoring is what the decision did before its cost was bounded: LiteLLM's exact token count of
every turn and its complexity scorer on the whole last user turn, for conversations up to
`max_chars` (beyond, both estimate the tokens from the UTF-8 size and the length rule decides).
Both run on one config whose default group has the shipped CPU model's 1,536-token window, so the
context reason is in play, with every group available.
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
    rated: int
    """Conversations whose route the tier can decide: no image, up to max_chars."""
    tiers_agree: int
    tier_share: float
    scored_chars: int
    """How much of the last user turn the bounded decision scores (router_plugins.signals.SCORED_CHARS)."""
    head_only: int
    """Rated conversations whose last user turn is longer than that."""
    head_only_tiers_agree: int
    reasons_full: dict[str, int]
    """How full scoring routes the corpus."""
    tier_changes: dict[str, int]
    """'full -> bounded' tier pairs where they differ, most frequent first."""


def measure(size: int = corpus.SIZE) -> AgreementResult:
    from router_plugins.conversation import Shape, read
    from router_plugins.signals import SCORED_CHARS

    router = windowed_router()
    reader = router.reader
    assert reader is not None
    window = router.window(lambda group: None)
    reasons: Counter[str] = Counter()
    changes: Counter[str] = Counter()
    agree = rated = tiers_agree = head_only = head_only_agree = 0
    for body in corpus.conversations(size):
        conversation = read(body, Shape.CHAT)
        full, bounded = full_signals(reader, conversation), reader.read(conversation, window)
        reason = router.reason(full, window)
        reasons[reason] += 1
        agree += reason == router.reason(bounded, window)
        if full.complexity_tier is None or conversation.images:
            continue
        same = full.complexity_tier == bounded.complexity_tier
        rated += 1
        tiers_agree += same
        if len(conversation.last_user_text) > SCORED_CHARS:
            head_only += 1
            head_only_agree += same
        if not same:
            changes[f"{full.complexity_tier} -> {bounded.complexity_tier}"] += 1
    return AgreementResult(size, agree, agree / size, rated, tiers_agree, tiers_agree / rated if rated else float("nan"),
                           SCORED_CHARS, head_only, head_only_agree, dict(reasons.most_common()), dict(changes.most_common()))


def full_signals(reader: SignalReader, conversation: Conversation) -> Signals:
    """The signals as the decision read them before its cost was bounded."""
    from router_plugins.signals import Signals, count_tokens, estimate_tokens

    chars = conversation.chars
    if chars > reader.max_chars:
        return Signals(chars, estimate_tokens(conversation), True, conversation.images, None, None, 0)
    tier, score, _ = reader.scorer.classify(conversation.last_user_text)
    return Signals(chars, count_tokens(reader.count_model, conversation), False, conversation.images, str(tier.value),
                   round(float(score), 4), len(conversation.last_user_text))


def windowed_router() -> ContentRouter:
    """A router for CONFIG: no launch specs, so nothing in it looks at this machine."""
    from router_config.gateway_config import load_config
    from router_plugins.routing import ContentRouter

    path = Path(tempfile.mkdtemp(prefix="llm-router-agreement-")) / "litellm_config.yaml"
    path.write_text(CONFIG)
    return ContentRouter(load_config(path))
