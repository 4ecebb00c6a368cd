"""Routing quality on labelled public data: the quality `auto` keeps against the share it sends to the strong model.

    uv run python -m bench.routing_quality     # ~2 min: bench/results/routing-quality-<date>.json, the PNG, its BENCHMARKS.md section

For each of RouteLLM's evaluation sets (bench/routing_data.py), every prompt is scored by each
router; a router sends a prompt to the strong model when its score is at or above its threshold.

- S: the share of prompts sent to the strong model. Q: the mean quality of the routed answers.
- PGR, the performance gap recovered: (Q - Q_weak) / (Q_strong - Q_weak).
- The curve: PGR against S as the threshold sweeps every score; ties are broken at random (the
  expected value is taken), so a router that can't tell prompts apart draws the diagonal.
- APGR: the area under that curve (random 0.5). CPT(x): the smallest S whose PGR reaches x.

Every figure of the difficulty score is held out. MT-Bench is never trained or tuned on: the
shipped model (fitted on GSM8K and MMLU) is scored on it, with a bootstrap interval over its 72
questions. GSM8K and MMLU are scored two ways: in-domain, refitting on four fifths of the set and
scoring the fifth left out (5 folds), and leave-one-set-out, fitting on the other set only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench import difficulty_training as training
from bench.routing_data import STRONG_MODEL, WEAK_MODEL, LabelledSet, all_sets
from router_plugins.difficulty import DifficultyScorer, WordVectors, shipped_scorer

FOLDS = 5
BOOTSTRAP = 1000
SEED = 20261207
LENGTH_RULE_CHARS = 2000
"""The seed router's rule: a prompt longer than this goes to the strong model."""
SCORED_BY_TIERS = 128
"""How much of the last user turn today's rules gave LiteLLM's complexity scorer (router_plugins/signals.py before)."""
CURVE_POINTS = 101
SHARES = (0.1, 0.25, 0.4, 0.6)
"""`routing.difficulty.share` settings reported beside the shipped one."""
START, END = "<!-- bench:routing-quality -->", "<!-- /bench:routing-quality -->"


@dataclass(frozen=True)
class Goal:
    name: str
    requirement: str
    figure: str
    met: bool


@dataclass(frozen=True)
class RouterFigures:
    router: str
    held_out: str
    """How the figure is held out: out-of-domain, in-domain 5-fold, leave one set out, or `baseline`."""
    share: float | None
    """S at the router's own operating point (its rule, or the shipped threshold); None for a curve only."""
    quality: float | None
    pgr: float | None
    apgr: float | None
    cpt50: float | None
    cpt80: float | None
    curve: list[tuple[float, float]] | None = None
    interval: dict[str, tuple[float, float]] = field(default_factory=dict)
    """95% bootstrap intervals over the set's prompts (MT-Bench), by figure name."""


@dataclass(frozen=True)
class SetFigures:
    name: str
    prompts: int
    quality: str
    weak: float
    strong: float
    routers: list[RouterFigures]

    def router(self, name: str, held_out: str | None = None) -> RouterFigures:
        return next(r for r in self.routers if r.router == name and (held_out is None or r.held_out == held_out))


@dataclass(frozen=True)
class Setting:
    """The shipped model on MT-Bench at one `routing.difficulty.share`: what to expect at other settings."""

    share: float
    threshold: float
    mt_bench_share: float
    mt_bench_quality: float
    mt_bench_pgr: float


@dataclass(frozen=True)
class RoutingQualityResult:
    threshold: float
    sets: list[SetFigures]
    score_us_median: float
    """The difficulty score alone, per prompt (the whole decision is timed by bench/routing_cost.py)."""
    goals: list[Goal]
    settings: list[Setting] = field(default_factory=list)

    def set(self, name: str) -> SetFigures:
        return next(s for s in self.sets if s.name == name)


# ---- the curve ---------------------------------------------------------------------------------

def pgr_curve(scores: Sequence[float], weak: np.ndarray, strong: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, PGR) at every S = k/n, sending the k highest scores up; within a tie, each prompt's gain is the tie's mean."""
    s = np.asarray(scores, dtype=float)
    order = np.argsort(-s, kind="stable")
    ranked, gain = s[order], (strong - weak)[order]
    _, starts = np.unique(-ranked, return_index=True)
    bounds = np.append(starts, len(ranked))
    for a, b in zip(bounds[:-1], bounds[1:]):
        gain[a:b] = gain[a:b].mean()
    gap = strong.mean() - weak.mean()
    pgr = np.concatenate([[0.0], np.cumsum(gain)]) / len(s) / gap
    return np.arange(len(s) + 1) / len(s), pgr


def apgr(shares: np.ndarray, pgr: np.ndarray) -> float:
    return float(np.sum((shares[1:] - shares[:-1]) * (pgr[1:] + pgr[:-1]) / 2))


def cpt(shares: np.ndarray, pgr: np.ndarray, target: float) -> float:
    """The smallest S whose PGR reaches `target`."""
    reached = np.nonzero(pgr >= target - 1e-12)[0]
    return float(shares[reached[0]]) if len(reached) else 1.0


def operating_point(routed: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> tuple[float, float, float]:
    """S, Q and PGR of one routing (a boolean per prompt: sent to the strong model)."""
    quality = float(np.where(routed, strong, weak).mean())
    return float(routed.mean()), quality, (quality - weak.mean()) / (strong.mean() - weak.mean())


def figures(router: str, held_out: str, scores: Sequence[float] | None, routed: np.ndarray | None,
            weak: np.ndarray, strong: np.ndarray, bootstrap: bool = False) -> RouterFigures:
    """A router's figures on one set: its curve (when it scores) and its operating point (when it routes)."""
    share = quality = pgr = None
    if routed is not None:
        share, quality, pgr = operating_point(routed, weak, strong)
    if scores is None:
        return RouterFigures(router, held_out, share, quality, pgr, None, None, None)
    shares, curve = pgr_curve(scores, weak, strong)
    sampled = np.linspace(0, len(shares) - 1, min(CURVE_POINTS, len(shares))).round().astype(int)
    interval = _bootstrap(scores, routed, weak, strong) if bootstrap else {}
    return RouterFigures(router, held_out, share, quality, pgr, apgr(shares, curve), cpt(shares, curve, 0.5), cpt(shares, curve, 0.8),
                         [(round(float(shares[i]), 4), round(float(curve[i]), 4)) for i in sampled], interval)


def _bootstrap(scores: Sequence[float], routed: np.ndarray | None, weak: np.ndarray, strong: np.ndarray) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(SEED)
    s = np.asarray(scores, dtype=float)
    drawn: dict[str, list[float]] = {"apgr": [], "cpt50": [], "pgr": []}
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(s), len(s))
        if strong[i].mean() - weak[i].mean() <= 0:
            continue  # a resample where the strong model isn't better has no gap to recover
        shares, curve = pgr_curve(s[i], weak[i], strong[i])
        drawn["apgr"].append(apgr(shares, curve))
        drawn["cpt50"].append(cpt(shares, curve, 0.5))
        if routed is not None:
            drawn["pgr"].append(operating_point(routed[i], weak[i], strong[i])[2])
    return {k: (round(float(np.percentile(v, 2.5)), 3), round(float(np.percentile(v, 97.5)), 3)) for k, v in drawn.items() if v}


# ---- the routers ---------------------------------------------------------------------------------

def _litellm_scorer() -> Callable[[str], tuple[str, float]]:
    """LiteLLM's complexity scorer, as today's rules used it (imported here: LiteLLM's import takes seconds)."""
    from litellm.router_strategy.complexity_router.complexity_router import ComplexityRouter

    scorer = ComplexityRouter(model_name="bench-scorer", litellm_router_instance=None)  # type: ignore[arg-type]

    def classify(text: str) -> tuple[str, float]:
        tier, score, _ = scorer.classify(text)
        return str(tier.value), float(score)

    return classify


def _in_domain(data: LabelledSet, matrix: np.ndarray, words: WordVectors) -> np.ndarray:
    """Each prompt scored by a model fitted on the other folds of its own set."""
    order = np.random.default_rng(SEED).permutation(len(data.items))
    scores = np.zeros(len(data.items))
    y = training.labels(data)
    for fold in np.array_split(order, FOLDS):
        train = np.setdiff1d(order, fold)
        model = training.fit(matrix[train], y[train])
        scorer = DifficultyScorer(model, words)
        scores[fold] = [scorer.score(data.items[i].prompt) for i in fold]
    return scores


def measure(threshold: float, log: Callable[[str], None] = lambda line: None) -> RoutingQualityResult:
    _offline()
    mt, gsm, mmlu = all_sets()
    words = WordVectors.load()
    shipped = shipped_scorer()
    classify = _litellm_scorer()
    log("features of every prompt")
    matrices = {s.name: training.feature_matrix(s.prompts, words) for s in (gsm, mmlu)}
    out = []
    for data in (mt, gsm, mmlu):
        log(f"{data.name}: {len(data.items)} prompts")
        weak = np.array([i.weak for i in data.items])
        strong = np.array([i.strong for i in data.items])
        lengths = np.array([len(p) for p in data.prompts])
        litellm = [classify(p) for p in data.prompts]
        head_tiers = np.array([classify(p[:SCORED_BY_TIERS])[0] in ("COMPLEX", "REASONING") for p in data.prompts])
        today = (lengths > LENGTH_RULE_CHARS) | head_tiers
        mt_set = data is mt
        routers = [
            figures("all weak", "baseline", None, np.zeros(len(weak), bool), weak, strong),
            figures("all strong", "baseline", None, np.ones(len(weak), bool), weak, strong),
            figures("random", "baseline", np.zeros(len(weak)), None, weak, strong),
            figures("oracle", "baseline", strong - weak, None, weak, strong),
            figures(f"length > {LENGTH_RULE_CHARS:,} chars (the seed's rule)", "baseline", (lengths > LENGTH_RULE_CHARS).astype(float),
                    lengths > LENGTH_RULE_CHARS, weak, strong),
            figures("today's rules (length, LiteLLM tiers on 128 chars)", "baseline", today.astype(float), today, weak, strong),
            figures("LiteLLM's complexity scorer, swept", "baseline", [s for _, s in litellm], None, weak, strong),
        ]
        if mt_set:
            scores = np.array([shipped.score(p) for p in data.prompts])
            routers.append(figures("difficulty (shipped)", "out-of-domain", scores, scores >= threshold, weak, strong, bootstrap=True))
            settings = [_setting(share, shipped, scores, weak, strong) for share in SHARES]
            held_out, scores_for_tiers = "out-of-domain", scores
        else:
            scores = _in_domain(data, matrices[data.name], words)
            held_out, scores_for_tiers = f"in-domain {FOLDS}-fold", scores
            routers.append(figures("difficulty", held_out, scores, scores >= threshold, weak, strong))
            other = gsm if data is mmlu else mmlu
            scorer = DifficultyScorer(training.fit_sets([other], words, [matrices[other.name]]), words)
            scores = np.array([scorer.score(p) for p in data.prompts])
            routers.append(figures("difficulty", f"leave one set out (fitted on {other.name})", scores, scores >= threshold, weak, strong))
        # Whether LiteLLM's keyword tiers add anything: a request they rate COMPLEX or REASONING goes up whatever its score.
        routers.append(figures("difficulty + LiteLLM tiers (routing.complexity.tiers)", held_out, scores_for_tiers + head_tiers,
                               (scores_for_tiers >= threshold) | head_tiers, weak, strong))
        out.append(SetFigures(data.name, len(data.items), data.quality, round(float(weak.mean()), 4), round(float(strong.mean()), 4), routers))
    timing = _score_time(shipped, [p for s in (mt, gsm, mmlu) for p in s.prompts])
    result = RoutingQualityResult(threshold, out, timing, [])
    return RoutingQualityResult(threshold, out, timing, goals(result), settings)


def _setting(share: float, scorer: DifficultyScorer, scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> Setting:
    threshold = scorer.model.threshold_for_share(share)
    sent, quality, pgr = operating_point(scores >= threshold, weak, strong)
    return Setting(share, round(threshold, 4), round(sent, 3), round(quality, 3), round(pgr, 3))


def _score_time(scorer: DifficultyScorer, prompts: list[str]) -> float:
    sample = random.Random(SEED).sample(prompts, 2000)
    times = []
    for p in sample:
        start = time.perf_counter_ns()
        scorer.score(p)
        times.append((time.perf_counter_ns() - start) / 1000)
    return round(float(np.median(times)), 1)


def goals(r: RoutingQualityResult) -> list[Goal]:
    """The issue's goals for the shipped router, each met or not by this run's held-out figures."""
    mt = r.set("MT-Bench").router("difficulty (shipped)")
    gsm = r.set("GSM8K").router("difficulty", f"in-domain {FOLDS}-fold")
    mmlu = r.set("MMLU").router("difficulty", f"in-domain {FOLDS}-fold")
    gsm_shares, gsm_curve = _curve(gsm)
    mmlu_shares, mmlu_curve = _curve(mmlu)
    mt_shares, mt_curve = _curve(mt)
    mt_at_14 = float(np.interp(0.14, mt_shares, mt_curve))
    return [
        Goal("MT-Bench (out-of-domain, shipped)", "APGR >= 0.75", f"{mt.apgr:.3f}", (mt.apgr or 0) >= 0.75),
        Goal("MT-Bench (out-of-domain, shipped)", "PGR >= 0.5 at S <= 0.14", f"PGR {mt_at_14:.2f} at S 0.14; CPT(50%) {mt.cpt50:.2f}",
             (mt.cpt50 or 1) <= 0.14),
        Goal("GSM8K (in-domain, 5-fold)", "APGR >= 0.70", f"{gsm.apgr:.3f}", (gsm.apgr or 0) >= 0.70),
        Goal("GSM8K (in-domain, 5-fold)", "PGR >= 0.8 at S <= 0.55", f"CPT(80%) {cpt(gsm_shares, gsm_curve, 0.8):.2f}",
             cpt(gsm_shares, gsm_curve, 0.8) <= 0.55),
        Goal("MMLU (in-domain, 5-fold)", "APGR >= 0.65", f"{mmlu.apgr:.3f}", (mmlu.apgr or 0) >= 0.65),
        Goal("MMLU (in-domain, 5-fold)", "PGR >= 0.68 at S <= 0.45", f"CPT(68%) {cpt(mmlu_shares, mmlu_curve, 0.68):.2f}",
             cpt(mmlu_shares, mmlu_curve, 0.68) <= 0.45),
    ]


def _curve(r: RouterFigures) -> tuple[np.ndarray, np.ndarray]:
    assert r.curve is not None
    points = np.array(r.curve)
    return points[:, 0], points[:, 1]


# ---- reports ---------------------------------------------------------------------------------------

def _f(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _with_interval(r: RouterFigures, name: str, digits: int = 2) -> str:
    value = getattr(r, name)
    low_high = r.interval.get(name)
    return _f(value, digits) + (f" [{low_high[0]:.{digits}f}, {low_high[1]:.{digits}f}]" if low_high else "")


def set_table(s: SetFigures) -> str:
    digits = 2 if s.name == "MT-Bench" else 3
    rows = [[r.router, r.held_out, _f(r.share), _f(r.quality, digits), _with_interval(r, "pgr"), _with_interval(r, "apgr", 3),
             _with_interval(r, "cpt50"), _f(r.cpt80)] for r in s.routers]
    header = ["router", "held out", "S", "Q", "PGR", "APGR", "CPT(50%)", "CPT(80%)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def goals_table(r: RoutingQualityResult) -> str:
    lines = ["| set | goal | this run | met |", "|---|---|---|---|"]
    lines += [f"| {g.name} | {g.requirement} | {g.figure} | {'yes' if g.met else 'no'} |" for g in r.goals]
    return "\n".join(lines)


def settings_table(r: RoutingQualityResult) -> str:
    lines = ["| `routing.difficulty.share` | threshold | MT-Bench: S | Q | PGR |", "|---|---|---|---|---|"]
    lines += [f"| {x.share:g} | {x.threshold:.3f} | {x.mt_bench_share:.2f} | {x.mt_bench_quality:.2f} | {x.mt_bench_pgr:.2f} |" for x in r.settings]
    return "\n".join(lines)


def terminal(r: RoutingQualityResult) -> str:
    parts = [f"Routing quality: strong {STRONG_MODEL}, weak {WEAK_MODEL}; difficulty threshold {r.threshold:.3f}; "
             f"the score alone {r.score_us_median:.1f} us per prompt (median)"]
    for s in r.sets:
        parts.append(f"{s.name}: {s.prompts:,} prompts, {s.quality}: weak {s.weak:.3f}, strong {s.strong:.3f}\n" + set_table(s))
    parts.append("The shipped model on MT-Bench at other settings\n" + settings_table(r))
    parts.append("Goals\n" + goals_table(r))
    return "\n\n".join(parts)


def section(r: RoutingQualityResult, provenance: str, chart: str) -> str:
    intro = (
        "`bench/routing_quality.py` routes every prompt of RouteLLM's public evaluation sets (`bench/data/routellm/`, "
        f"Apache-2.0; strong `{STRONG_MODEL}`, weak `{WEAK_MODEL}`; contaminated prompts dropped) and reports the share S sent "
        "to the strong model, the quality Q kept, and PGR, the share of the quality gap recovered; APGR is the area under PGR "
        "against S as the threshold sweeps (random 0.5), CPT(x) the smallest S that recovers x of the gap. Every difficulty "
        "figure is held out: MT-Bench is never trained or tuned on (the shipped model, fitted on GSM8K and MMLU, with a 95% "
        "bootstrap interval over its questions in brackets); GSM8K and MMLU are scored in-domain (5-fold: refitted on four "
        "fifths, scored on the fifth) and leave-one-set-out (fitted on the other set). S, Q and PGR are at each router's "
        f"own rule, or at the shipped threshold ({r.threshold:.3f}) for the difficulty score. {provenance}."
    )
    parts = [START, "### Routing quality on labelled data", intro, f"![PGR against S]({chart})"]
    for s in r.sets:
        parts.append(f"**{s.name}**: {s.prompts:,} prompts; {s.quality}: weak {s.weak:.3f}, strong {s.strong:.3f}.\n\n" + set_table(s))
    parts.append("**Other settings.** `routing.difficulty.share` is turned into a threshold with the score's percentiles over "
                 "reference team traffic (`bench/corpus.py`); what the shipped model then does on MT-Bench (held out):\n\n" + settings_table(r))
    parts.append("**Goals** (issue 25), judged on this run:\n\n" + goals_table(r))
    parts.append(f"The difficulty score alone costs {r.score_us_median:.1f} µs per prompt (median over 2,000 prompts); the whole "
                 "`auto` decision is timed under Routing decision cost.")
    parts.append(END)
    return "\n\n".join(parts)


def write_section(r: RoutingQualityResult, path: Path, provenance: str, chart: str) -> None:
    """Replace this section of BENCHMARKS.md, or add it at the end."""
    text = path.read_text() if path.exists() else ""
    new = section(r, provenance, chart)
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + new + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + new + "\n"
    path.write_text(text)


def chart(r: RoutingQualityResult, path: Path) -> None:
    """PGR against S for each set: the difficulty score's held-out curves against the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(r.sets), figsize=(5 * len(r.sets), 4.6), sharey=True)
    for ax, s in zip(axes, r.sets):
        ax.plot([0, 1], [0, 1], color="#bbbbbb", linestyle="--", label="random")
        for router in s.routers:
            if router.curve is None or router.router == "random":
                continue
            points = np.array(router.curve)
            name = router.router if router.held_out == "baseline" else f"{router.router}, {router.held_out}"
            style = {"linewidth": 2.2} if router.held_out != "baseline" else {"linewidth": 1.2, "alpha": 0.8}
            ax.plot(points[:, 0], points[:, 1], label=name, **style)
        for router in s.routers:
            if router.share is not None and router.held_out == "baseline" and router.curve is None:
                ax.scatter([router.share], [router.pgr], marker="s", s=25, color="#555555")
        shipped = [x for x in s.routers if x.held_out != "baseline" and x.share is not None]
        for x in shipped[:1]:
            ax.scatter([x.share], [x.pgr], marker="*", s=160, color="black", zorder=5, label=f"threshold {r.threshold:.3f}")
        ax.set_title(f"{s.name} ({s.prompts:,} prompts)")
        ax.set_xlabel("S, share sent to the strong model")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.2, 1.4)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="lower right")
    axes[0].set_ylabel("PGR, quality gap recovered")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_into(out_dir: Path, benchmarks: Path, how: str, threshold: float | None = None) -> str:
    """Measure, write the JSON and the chart into `out_dir` and this section into `benchmarks`; the terminal report."""
    from bench.machine import machine

    result = measure(threshold if threshold is not None else shipped_threshold(), log=lambda line: print(line, file=sys.stderr, flush=True))
    now = dt.datetime.now().astimezone()
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"routing-quality-{now.date().isoformat()}.json"
    png_path = out_dir / "routing-quality.png"
    json_path.write_text(json.dumps({"date": now.date().isoformat(), "machine": asdict(machine()), **asdict(result)}, indent=1) + "\n")
    chart(result, png_path)
    provenance = f"{how}, {now.isoformat(timespec='seconds')}; raw figures: `{_beside(json_path, benchmarks)}`"
    write_section(result, benchmarks, provenance, _beside(png_path, benchmarks))
    return terminal(result) + f"\n\nwrote {json_path}, {png_path} and its section of {benchmarks}"


def _beside(path: Path, benchmarks: Path) -> str:
    """`path` as BENCHMARKS.md links it."""
    return str(path.relative_to(benchmarks.parent) if path.is_relative_to(benchmarks.parent) else path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.routing_quality", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--threshold", type=float, default=None, help="the difficulty threshold (default: the shipped config's)")
    parser.add_argument("--output", type=Path, default=None,
                        help="write the JSON, the PNG and a BENCHMARKS.md there (default: bench/results and ./BENCHMARKS.md)")
    args = parser.parse_args(argv)
    from bench.processes import REPO

    out_dir = args.output or REPO / "bench" / "results"
    benchmarks = (args.output / "BENCHMARKS.md") if args.output else REPO / "BENCHMARKS.md"
    print(run_into(out_dir, benchmarks, "`python -m bench.routing_quality`", args.threshold))
    return 0


def shipped_threshold() -> float:
    """The difficulty threshold of the shipped config (litellm_config.yaml)."""
    _offline()
    from bench.processes import REPO
    from router_config.gateway_config import load_config
    from router_plugins.routing import ContentRouter

    return ContentRouter(load_config(REPO / "litellm_config.yaml")).threshold


def _offline() -> None:
    """LiteLLM, imported for its scorer and the router, must not fetch its cost map."""
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


if __name__ == "__main__":
    sys.exit(main())
