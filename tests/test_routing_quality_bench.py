"""The routing-quality bench's arithmetic (bench/routing_quality.py), on small made-up sets whose answers are known.

No figure of a real router is asserted here: those are the bench's to report.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench import routing_quality as rq

WEAK = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0])
STRONG = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0])  # the gap is in prompts 1, 2 and 6


def test_a_router_that_cant_tell_prompts_apart_draws_the_diagonal():
    shares, pgr = rq.pgr_curve(np.zeros(len(WEAK)), WEAK, STRONG)
    assert np.allclose(pgr, shares) and rq.apgr(shares, pgr) == pytest.approx(0.5)
    assert rq.cpt(shares, pgr, 0.5) == pytest.approx(0.5)


def test_the_oracle_recovers_the_whole_gap_with_the_prompts_that_hold_it():
    shares, pgr = rq.pgr_curve(STRONG - WEAK, WEAK, STRONG)
    assert rq.cpt(shares, pgr, 1.0) == pytest.approx(3 / 8) and rq.apgr(shares, pgr) > 0.8


def test_a_tie_shares_its_gain_evenly():
    scores = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=float)  # ties prompt 0 (no gain) with prompt 1 (a gain)
    shares, pgr = rq.pgr_curve(scores, WEAK, STRONG)
    assert pgr[1] == pytest.approx(0.5 / 3) and pgr[2] == pytest.approx(1 / 3)


def test_the_operating_point_is_the_share_sent_the_quality_kept_and_the_gap_recovered():
    routed = np.array([False, True, False, False, False, False, False, False])
    share, quality, pgr = rq.operating_point(routed, WEAK, STRONG)
    assert (share, quality, pgr) == pytest.approx((1 / 8, 4 / 8, 1 / 3))


def test_an_inverted_router_recovers_nothing_until_the_end():
    shares, pgr = rq.pgr_curve(-(STRONG - WEAK), WEAK, STRONG)
    assert pgr[5] == pytest.approx(0.0) and pgr[-1] == pytest.approx(1.0) and rq.apgr(shares, pgr) < 0.5


def test_the_bootstrap_interval_holds_the_figure():
    rng = np.random.default_rng(1)
    weak, strong = rng.integers(0, 2, 200).astype(float), np.ones(200)
    scores = (strong - weak) + rng.normal(0, 0.8, 200)
    figures = rq.figures("noisy", "test", scores, scores >= 0.5, weak, strong, bootstrap=True)
    low, high = figures.interval["apgr"]
    assert low <= figures.apgr <= high and figures.interval["pgr"][0] <= figures.pgr <= figures.interval["pgr"][1]


def test_the_benchmarks_section_is_replaced_in_place(tmp_path):
    page = tmp_path / "BENCHMARKS.md"
    page.write_text(f"# Before\n\n{rq.START}\nold figures\n{rq.END}\n\n## After\n")
    result = rq.RoutingQualityResult(0.2, [rq.SetFigures("MT-Bench", 8, "score", 0.5, 0.8, [
        rq.figures("random", "baseline", np.zeros(8), None, WEAK, STRONG)])], 20.0, [])
    rq.write_section(result, page, "a test run", "chart.png")
    text = page.read_text()
    assert text.startswith("# Before") and text.endswith("## After\n") and "old figures" not in text
    assert text.count(rq.START) == 1 and "| random | baseline |" in text
