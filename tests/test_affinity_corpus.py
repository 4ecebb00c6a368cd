"""Conversation affinity over the bench's multi-turn agent corpus (bench/agent_corpus.py), in-process.

The corpus is what it claims (checked with LiteLLM's scorer on the part the decision scores), and
routed turn by turn by those tiers (the difficulty score held off, bench/affinity.py): with affinity on, no conversation ever switches down from complex or vision
to default; with `routing.affinity: false`, the short follow-ups after a complex opening do.
The bench reports the same figures and times them (bench/affinity.py).
"""

from __future__ import annotations

from collections import Counter

import pytest

from bench import affinity, agent_corpus, configs
from tests.support.gateway import free_port

_COMPLEX = {"COMPLEX", "REASONING"}


@pytest.fixture(scope="module")
def corpus():
    return agent_corpus.conversations()


@pytest.fixture(scope="module")
def routed(tmp_path_factory, corpus):
    setup, _ = configs.write_router(tmp_path_factory.mktemp("affinity-corpus"), free_port(), "affinity-test", None)
    on, off = affinity.gateways(setup.config)
    return {True: affinity.route(on, corpus), False: affinity.route(off, corpus)}


def _tiers(decisions) -> list[str]:
    return [d.tier for d in decisions]


def test_the_corpus_has_every_kind_shape_escalation_and_key(corpus):
    assert len(corpus) >= 300
    assert Counter(c.kind for c in corpus).keys() == set(agent_corpus.KINDS)
    assert Counter(c.shape for c in corpus).keys() == set(agent_corpus.SHAPES)
    assert Counter(c.escalation for c in corpus if c.escalation).keys() == set(agent_corpus.ESCALATIONS)
    assert {c.key_from for c in corpus} == {"content", "x-session-id", "prompt_cache_key", "metadata.user_id"}
    assert all(len(c.turns) >= 3 for c in corpus)
    assert agent_corpus.conversations()[7] == corpus[7]  # the same seed, the same corpus


def test_openings_questions_and_follow_ups_rate_as_their_kind_says(corpus):
    """LiteLLM's scorer, on the part of the last user turn the decision scores (bench/affinity.py routes by its tiers)."""
    from router_plugins.signals import TIER_CHARS, litellm_tiers

    classify = litellm_tiers()
    rate = lambda text: classify(text[:TIER_CHARS])[0]  # noqa: E731
    for c in corpus:
        for i, text in enumerate(c.user_texts):
            if c.kind == "complex opening" and i == 0 or c.escalation == "question" and i == c.escalates_at:
                assert rate(text) in _COMPLEX, (c.kind, i, text)
            elif i != c.escalates_at:
                assert rate(text) not in _COMPLEX, (c.kind, i, text)


def test_with_affinity_on_no_conversation_switches_down(corpus, routed):
    for c, decisions in zip(corpus, routed[True]):
        tiers = _tiers(decisions)
        assert affinity.switches(tiers)[1] == 0, (c.kind, c.shape, tiers)
        if c.escalates_at is not None:
            assert all(t != "default" for t in tiers[c.escalates_at:]), (c.kind, c.escalation, tiers)
        else:
            assert set(tiers) == {"default"}, (c.kind, tiers)  # another conversation's tier never leaks in
        assert decisions[0].conversation is not None and decisions[0].conversation.source == c.key_from


def test_with_affinity_off_short_follow_ups_after_a_complex_opening_switch_down(corpus, routed):
    down = [c for c, decisions in zip(corpus, routed[False]) if affinity.switches(_tiers(decisions))[1]]
    assert len(down) >= len(corpus) // 4, len(down)
    assert {c.kind for c in down} == {"complex opening", "escalates late"}
    assert all(d.conversation is None and d.reason != "affinity" for decisions in routed[False] for d in decisions)
