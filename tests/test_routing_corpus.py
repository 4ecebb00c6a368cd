"""The bounded `auto` decision against full scoring, on the fixed corpus: the one test that checks figures.

Figures, not timings: how often the decision, which scores only the head of the user's words and
counts tokens only where a prompt's size can't tell, routes as the difficulty score on all of the
user's words and LiteLLM's token counter on everything would (bench/agreement.py; the bench reports
the same figures).
"""

from __future__ import annotations

from bench import agreement


def test_the_bounded_decision_routes_and_rates_as_full_scoring_on_the_corpus():
    result = agreement.measure()
    assert result.conversations >= 1000 and result.scored >= 300, result  # the corpus exercises the score
    assert set(result.reasons_full) == {"vision", "context", "complex", "default"}, result
    assert result.reason_share >= 0.99, result
    assert result.side_share >= 0.95, result
