"""The bounded `auto` decision against full scoring, on the fixed corpus: the one test that checks figures.

Figures, not timings: how often the decision, which rates only the head of the last user turn and
counts tokens only where a prompt's size can't tell, routes and rates as LiteLLM's scorer and
token counter on everything would (bench/agreement.py; the bench reports the same figures).
"""

from __future__ import annotations

from bench import agreement


def test_the_bounded_decision_routes_and_rates_as_full_scoring_on_the_corpus():
    result = agreement.measure()
    assert result.conversations >= 1000 and result.rated >= 300, result  # the corpus exercises the scorer
    assert set(result.reasons_full) == {"vision", "context", "complex", "default"}, result
    assert result.reason_share >= 0.99, result
    assert result.tier_share >= 0.95, result
