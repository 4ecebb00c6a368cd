"""Turning one run into the printed table, the JSON file and BENCHMARKS.md."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.affinity import COST_MAX_MS as AFFINITY_COST_MAX_MS
from bench.affinity import AffinityResult
from bench.ledger_cost import CPU_MAX_MS as LEDGER_CPU_MAX_MS
from bench.suite import SuiteResult
from bench.targets import OVERHEAD_SHARE_MAX

REPRODUCE = """\
```
uv run python -m bench            # full run (~10 min): bench/results/<date>.json, BENCHMARKS.md, bench/results/overhead.png
uv run python -m bench --quick    # under 3 minutes, fewer requests and shorter cells, same outputs
uv run python -m bench --output DIR   # write the JSON, the chart and a BENCHMARKS.md into DIR instead
uv run python -m bench.affinity   # conversation affinity alone (~20 s): bench/results/affinity-<date>.json and its section here
uv run python -m bench.ledger_cost   # the spend ledger's cost alone (~1 min): bench/results/ledger-cost-<date>.json
```"""


def to_json(r: SuiteResult) -> dict[str, Any]:
    data = asdict(r)
    data["latency"].pop("samples_ms", None)
    return _finite(data)


def write_json(r: SuiteResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(r), indent=2) + "\n")


def _finite(value: Any) -> Any:
    """NaN (a figure that couldn't be measured) becomes null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# ---- tables ---------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, padded so that it also reads well in a terminal."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows)])


def _f(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _met(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "not measured"}[met]


def targets_table(r: SuiteResult) -> str:
    rows = [[t.requirement, f"{_f(t.figure, 3)} {t.unit}", _met(t.met) + (f" ({t.note})" if t.note else "")] for t in r.targets]
    return table(["target", "figure", "result"], rows)


def latency_table(r: SuiteResult) -> str:
    rows = [[f"({p.key}) {p.label}", _f(p.nonstream.p50), _f(p.nonstream.p90), _f(p.nonstream.p99), _f(p.nonstream.mean),
             _f(p.ttft.p50), _f(p.ttft.p99), _f(p.stream_total.p50), _f(p.stream_total.p99), str(p.errors)] for p in r.latency.paths]
    return table(["path", "p50", "p90", "p99", "mean", "TTFT p50", "TTFT p99", "stream total p50", "stream total p99", "errors"], rows)


def overhead_table(r: SuiteResult) -> str:
    rows = [[f"({o.key})-(b)", _f(o.minus_stock_p50_ms), _f(o.minus_stock_p99_ms), _f(o.minus_stock_mean_ms),
             _f(o.ttft_minus_stock_p50_ms), _f(o.ttft_minus_stock_p99_ms), _f(o.share_of_stock_overhead_p50, 3),
             _f(o.share_of_stock_overhead_p99, 3)] for o in r.latency.overheads]
    return table(["difference", "p50 ms", "p99 ms", "mean ms", "TTFT p50 ms", "TTFT p99 ms", "(x)-(a) / (b)-(a) at p50",
                  "(x)-(a) / (b)-(a) at p99"], rows)


def throughput_table(r: SuiteResult) -> str:
    levels = sorted({c.concurrency for c in r.throughput.cells})
    rows = []
    for key, label in r.paths.items():
        cells = [r.throughput.cell(key, n) for n in levels]
        rows.append([f"({key}) {label}", *(f"{_f(c.rps, 1)} ({c.errors} err)" if c else "-" for c in cells),
                     *(_f(c.server_cpu_ms_per_request, 2) if c else "-" for c in cells)])
    return table(["path", *(f"{n} client{'s' if n > 1 else ''}: req/s" for n in levels),
                  *(f"server CPU ms/req at {n}" for n in levels)], rows)


def routing_table(r: SuiteResult) -> str:
    rows = [[c.name, _f(c.median_us, 1), _f(c.p90_us, 1), c.reason, str(c.scored_chars) if c.scored_chars else "-",
             "yes" if c.tokens_counted else "no", f"{c.decisions:,}"] for c in r.routing_cost.cases]
    return table(["prompt", "median µs", "p90 µs", "reason", "chars scored", "tokens counted", "decisions"], rows)


def agreement_table(r: SuiteResult) -> str:
    a = r.routing_cost.agreement
    rows = [
        ["reason (vision, context, complex, default)", "every conversation", f"{a.reasons_agree:,} of {a.conversations:,}", _pct(a.reason_share)],
        ["side of the difficulty threshold", "those the score decides: no image, the user's words within max_chars",
         f"{a.sides_agree:,} of {a.scored:,}", _pct(a.side_share)],
        ["side of the difficulty threshold", f"of those, the ones whose user's words the {a.scored_chars} characters scored don't hold whole",
         f"{a.head_only_sides_agree:,} of {a.head_only:,}", _pct(a.head_only_sides_agree / a.head_only if a.head_only else None)],
    ]
    return table(["agrees with full scoring on", "over", "conversations", "share"], rows)


AFFINITY_START, AFFINITY_END = "<!-- bench:affinity -->", "<!-- /bench:affinity -->"
AFFINITY_BEFORE = "## Where a request's milliseconds go"
"""Where the affinity section goes in a BENCHMARKS.md that has none yet."""


def affinity_table(a: AffinityResult) -> str:
    on, off = a.on, a.off
    per_decision = f"{a.on.decisions:,} decisions each"
    rows = [
        ["tier switches per conversation (mean)", _f(on.switches_per_conversation), _f(off.switches_per_conversation)],
        ["downward switches (complex or vision to a lower tier)", f"{on.downward_switches:,}", f"{off.downward_switches:,}"],
        ["conversations with a downward switch", f"{on.conversations_switching_down:,} ({_pct(on.share_switching_down)})",
         f"{off.conversations_switching_down:,} ({_pct(off.share_switching_down)})"],
        ["upward switches", f"{on.upward_switches:,}", f"{off.upward_switches:,}"],
        ["turns routed by affinity (reason `affinity`)", f"{on.by_affinity:,}", f"{off.by_affinity:,}"],
        ["turns routed default / complex / vision", " / ".join(f"{n:,}" for n in on.tiers.values()),
         " / ".join(f"{n:,}" for n in off.tiers.values())],
        [f"decision median ms ({per_decision})", _f(on.median_ms, 4), _f(off.median_ms, 4)],
        ["decision p99 ms", _f(on.p99_ms, 4), _f(off.p99_ms, 4)],
    ]
    return table(["over the agent corpus", "affinity on", "affinity off"], rows)


def affinity_kinds_table(a: AffinityResult) -> str:
    rows = [[k.kind, f"{k.conversations:,}", f"{k.turns:,}", _f(k.switches_per_conversation_on), _f(k.switches_per_conversation_off),
             f"{k.switching_down_on:,}", f"{k.switching_down_off:,}"] for k in a.kinds]
    return table(["conversations that", "conversations", "turns", "switches per conversation, on", "off",
                  "with a downward switch, on", "off"], rows)


def affinity_verdict(a: AffinityResult) -> str:
    met = _met(None if math.isnan(a.median_diff_ms) else a.median_diff_ms <= AFFINITY_COST_MAX_MS)
    return (f"Affinity adds {_f(a.median_diff_ms, 4)} ms to the median decision (target <= {AFFINITY_COST_MAX_MS} ms: {met}); "
            f"{_f(a.p99_diff_ms, 4)} ms at p99; the median of each turn's on-minus-off time is {_f(a.paired_median_diff_ms, 4)} ms.")


def affinity_section(a: AffinityResult, provenance: str) -> str:
    kinds = {k.kind: k.conversations for k in a.kinds}
    labels = {"question": "a complex question", "paste": "a pasted log or file longer than `max_chars`", "image": "an image"}
    escalations = ", ".join(f"{labels.get(what, what)}: {n}" for what, n in sorted(a.escalations.items()))
    keys = ", ".join(f"{source} {n}" for source, n in a.key_sources.items())
    intro = (
        f"`bench/affinity.py` routes every turn of {a.conversations:,} multi-turn agent conversations ({a.turns:,} turns) built from "
        "a fixed seed by `bench/agent_corpus.py`, in order, in-process, through two gateways built from the bench's llm-router "
        "config: one with affinity on (the default) and one with `routing.affinity: false`. Each turn resends the whole history, "
        f"as agents do, on chat completions, the Responses API and Messages ({', '.join(f'{n} {s}' for s, n in a.shapes.items())}). "
        f"{kinds.get('complex opening', 0)} open with a task LiteLLM's scorer rates COMPLEX or REASONING and follow up with short turns "
        f"(\"thanks\", \"now rename x to y\", \"run the tests again\"); {kinds.get('escalates late', 0)} open simple and escalate "
        f"late ({escalations}), then follow up short; "
        f"{kinds.get('stays simple', 0)} stay simple. Keys: {keys}. A switch is a turn routed at another tier than the turn before; "
        "each decision is timed as the gateway makes it (`router.decide`, then `remember` of the tier), both gateways back to back "
        f"per turn, {a.passes} timed pass(es) over the corpus with fresh tables after an untimed one. Run: {provenance}."
    )
    note = ("With affinity off, a pasted log or an image stays in the history every later turn resends, which keeps those turns "
            "complex (by length) or vision anyway: the downward switches come after complex openings and complex questions. System "
            "prompts are short here: an agent's system prompt of several KB is longer than `max_chars` alone, and routes every turn "
            "complex by length whatever affinity does.")
    raised = (f"No conversation that stays simple was routed above default with affinity on ({a.simple_raised_on} raised)."
              if a.simple_raised_on == 0 else
              f"{a.simple_raised_on} conversation(s) that stay simple were routed above default with affinity on.")
    return "\n\n".join([AFFINITY_START, "### Conversation affinity", intro, affinity_table(a), affinity_kinds_table(a),
                         affinity_verdict(a) + " " + raised + " " + note, AFFINITY_END])


def write_affinity_section(a: AffinityResult, path: Path, provenance: str) -> None:
    """Replace the affinity section of BENCHMARKS.md (or add it, before the profile) with this run's."""
    text = path.read_text()
    section = affinity_section(a, provenance)
    if AFFINITY_START in text:
        start, end = text.index(AFFINITY_START), text.index(AFFINITY_END) + len(AFFINITY_END)
        text = text[:start] + section + text[end:]
    else:
        at = text.index(AFFINITY_BEFORE)
        text = text[:at] + section + "\n\n" + text[at:]
    path.write_text(text)


def affinity_terminal(a: AffinityResult) -> str:
    return "\n\n".join([f"Conversation affinity ({a.conversations} agent conversations, {a.turns} turns)\n" + affinity_table(a),
                        affinity_kinds_table(a), affinity_verdict(a)])


def _pct(share: float | None) -> str:
    return "-" if share is None or math.isnan(share) else f"{100 * share:.1f}%"


def ledger_table(r: SuiteResult) -> str:
    rows = [[f"{c.concurrency} at a time", f"{c.requests:,}", _f(c.cpu_ms_per_request, 3), _f(c.commit_wait_ms.p50, 2), _f(c.commit_wait_ms.p99, 2),
             f"{c.rows_per_s:,.0f}"] for c in r.ledger.cells]
    return table(["callbacks", "requests", f"CPU ms per request (target <= {LEDGER_CPU_MAX_MS})", "commit wait p50 ms",
                  "commit wait p99 ms", "rows/s"], rows)


def profile_table(r: SuiteResult) -> str:
    rows = [[c.name, _pct(c.share), _f(c.ms_per_request)] for c in r.profile.categories]
    return table(["where (py-spy, samples holding the GIL)", "share", "CPU ms per request"], rows)


def profile_functions_table(r: SuiteResult) -> str:
    rows = [[f"`{c.name}`", _pct(c.share), _f(c.ms_per_request)] for c in r.profile.top_self]
    return table(["function running itself (leaf frame)", "share", "CPU ms per request"], rows)


def ab_results(results: Path) -> list[dict[str, Any]]:
    """The newest `python -m bench.ab` result of each setting, in bench/results."""
    newest: dict[str, dict[str, Any]] = {}
    for path in sorted(results.glob("ab-*.json")):
        data = json.loads(path.read_text())
        newest[data["variant"]] = {**data, "file": path.name}
    return list(newest.values())


def ab_table(results: list[dict[str, Any]]) -> str:
    rows = [[f"`{a['variant']}`: {a['description']}", a["date"], str(len(a["p50_b_minus_a_ms"])),
             ", ".join(f"{x:+.2f}" for x in a["p50_b_minus_a_ms"]), f"{a['mean_p50_b_minus_a_ms']:+.2f}",
             f"{a['mean_cpu_b_minus_a_ms']:+.2f}", f"`bench/results/{a['file']}`"] for a in results]
    return table(["B: the setting", "date", "pairs", "p50 B-A per pair (ms)", "mean p50 B-A (ms)", "mean CPU B-A (ms/request)", "raw"], rows)


HEADLINE_START, HEADLINE_END = "<!-- bench:headline -->", "<!-- /bench:headline -->"


def headline(r: SuiteResult, benchmarks: str) -> str:
    """The README's headline table: the paths a reader compares, from this run."""
    rows = []
    for key, label in (("a", "direct to the upstream"), ("b", "stock LiteLLM proxy"),
                       ("c", "llm-router, 1 worker, explicit local model (keys, launcher on)"), ("d", "llm-router, 1 worker, `auto`"),
                       ("e", "llm-router, `--workers 2` (the default)"), ("f", "LiteLLM under `llm-router serve`, none of our plugins (reference)")):
        lat = next((p for p in r.latency.paths if p.key == key), None)
        over = next((o for o in r.latency.overheads if o.key == key), None)
        cell = r.throughput.cell(key, 16)
        if lat is None and cell is None:
            continue
        rows.append([label, f"{_f(lat.nonstream.p50)} ms" if lat else "", f"{_f(over.share_of_stock_overhead_p50, 3)}" if over else "",
                     f"{cell.rps:,.0f}" if cell else ""])
    met = sum(t.met is True for t in r.targets)
    judged = sum(t.met is not None for t in r.targets)
    missed = [t.requirement for t in r.targets if t.met is False]
    lines = [HEADLINE_START,
             f"From the {r.mode} run of {r.date} on this {r.machine.cpu_count}-core machine (litellm {r.versions.litellm}); "
             f"{met} of {judged} targets met{': not met: ' + '; '.join(missed) if missed else ''}. All figures: [{benchmarks}]({benchmarks}).",
             "",
             table(["path", "p50 latency", "(x-a)/(b-a) at p50", "req/s at 16 clients"], rows),
             HEADLINE_END]
    return "\n".join(lines)


def write_headline(r: SuiteResult, readme: Path, benchmarks: str) -> None:
    """Replace the headline between its markers in the README."""
    text = readme.read_text()
    start, end = text.index(HEADLINE_START), text.index(HEADLINE_END) + len(HEADLINE_END)
    readme.write_text(text[:start] + headline(r, benchmarks) + text[end:])


def cold_table(r: SuiteResult) -> str:
    rows = []
    for c in r.cold_start:
        if c.skipped:
            rows.append([c.engine, "-", "-", "-", "-", "-", "0", f"skipped: {c.skipped}"])
        else:
            spread = max(t.by_hand_s for t in c.trials) - min(t.by_hand_s for t in c.trials)
            rows.append([c.engine, _f(c.by_hand_median_s, 3), _f(c.gateway_median_s, 3), _f(c.same_start_overhead_median_ms, 0),
                         _f(c.overhead_median_ms, 0), _f(spread * 1000, 0), str(len(c.trials)),
                         ", ".join(f"{_f(t.same_start_overhead_ms, 0)} / {_f(t.overhead_ms, 0)}" for t in c.trials)])
    return table(["server", "by hand: first answer s", "gateway: first token s", "launcher overhead ms, same start (median)",
                  "vs separate by-hand start ms (median)", "by-hand spread ms", "trials", "per trial ms (same start / separate)"], rows)


def stampede_table(r: SuiteResult) -> str:
    rows = [[s.gateway, str(s.processes_started), f"{s.answered}/{s.requests}", str(s.errors), _f(s.wait_p50_s, 3), _f(s.wait_p99_s, 3),
             _f(s.wait_max_s, 3)] for s in r.stampede]
    return table(["gateway", "processes started", "answered", "errors", "wait p50 s", "wait p99 s", "wait max s"], rows)


def memory_table(r: SuiteResult) -> str:
    rows = [[m.label, _f(m.at_start.mb, 0), f"{_f(m.idle.mb, 0)} ({m.idle.requests:,} req)", f"{_f(m.after.mb, 0)} ({m.after.requests:,} req)",
             f"{m.growth_pct:+.1f}%"] for m in r.memory]
    return table(["gateway", "RSS at start MB", "idle MB (after warm-up)", "after MB", "growth vs idle"], rows)


def terminal(r: SuiteResult) -> str:
    sections = [
        f"llm-router benchmark, {r.mode} run, {r.started_at}, {r.machine.cpu_count} x {r.machine.cpu_model}, "
        f"litellm {r.versions.litellm}, Python {r.versions.python}, {r.duration_s:.0f} s",
        "Latency, sequential requests (ms)\n" + latency_table(r),
        "Overhead vs stock LiteLLM (b), non-streaming unless TTFT\n" + overhead_table(r),
        "Throughput\n" + throughput_table(r),
        "Routing decision cost\n" + routing_table(r),
        affinity_terminal(r.affinity),
        "Spend ledger: what recording a request costs\n" + ledger_table(r),
        "Cold start\n" + cold_table(r),
        "Cold-start stampede\n" + stampede_table(r),
        "Memory (RSS of the gateway and its own children, launched model servers excluded)\n" + memory_table(r),
        "Targets\n" + targets_table(r),
    ]
    if r.notes:
        sections.append("Notes\n" + "\n".join(f"- {n}" for n in r.notes))
    if r.cleanup:
        sections.append(f"Cleanup: {r.cleanup.left_running} process(es) of this run left running; "
                        f"{len(r.cleanup.swept)} killed by the final sweep")
    return "\n\n".join(sections)


# ---- BENCHMARKS.md ----------------------------------------------------------------------------


def _profile_intro(r: SuiteResult) -> str:
    p = r.profile
    if p.skipped:
        return f"Not profiled in this run: {p.skipped}."
    return (f"`bench/profile.py`: py-spy sampled the one-worker gateway at 250 Hz while the bench sent {p.requests:,} sequential "
            f"requests of path ({p.path}); {p.samples:,} samples. The gateway spent {_f(p.cpu_ms_per_request)} ms of CPU per request "
            f"({_f(p.wall_ms_per_request)} ms wall, the client included). Each sample goes to the work it is part of wherever that sits "
            "in the stack (a cost calculation inside LiteLLM's success logging is cost calculation), else to the deepest layer it reached.")


def markdown(r: SuiteResult, json_name: str, chart: str, results_dir: Path) -> str:
    met = sum(t.met is True for t in r.targets)
    judged = sum(t.met is not None for t in r.targets)
    lat = r.latency
    parts = [
        "# llm-router benchmarks",
        "Generated by `python -m bench` from its own measurements; do not edit by hand. "
        f"Raw figures: `{json_name}`.",
        f"**Run:** {r.mode} mode, {r.started_at}, {r.duration_s:.0f} s. "
        f"**Machine:** {r.machine.cpu_count} CPUs ({r.machine.cpu_model}), {r.machine.memory_gib:g} GiB RAM, Linux {r.machine.kernel}. "
        f"**Versions:** litellm {r.versions.litellm}, Python {r.versions.python}, llm-router {r.versions.llm_router}, httpx {r.versions.httpx}, aiohttp {r.versions.aiohttp}.",
        f"## Targets: {met} of {judged} met",
        targets_table(r),
        "## How it is measured",
        "\n".join([
            "Everything runs on this one machine over loopback: the client (the bench process), the gateways and one fake "
            "upstream (`tests/fakes/cloud.py`, a single subprocess) that every path reaches in the end.",
            "",
            "- **(a)** direct to the fake upstream.",
            "- **(b)** the stock LiteLLM proxy, same version installed as a user installs it (`litellm[proxy]` alone, in its own "
            "environment under `~/.cache/llm-router/bench/`), same model list, no callbacks, no `routing:`/`llm_router:` sections, no auth, "
            "run by its own `litellm` CLI with its defaults (uvicorn's per-request access log included, which `llm-router serve` leaves "
            "off unless `LLM_ROUTER_ACCESS_LOG=1`).",
            "- **(c)** llm-router with routing, the launcher and team keys on: `LLM_ROUTER_MASTER_KEY` set, every request sent with a team key "
            "(model allowlist and an rpm limit, so both checks run), the model named explicitly. That model, `local-gpt`, is a local launched "
            "group whose launch spec (`engine: command` running `tests/fakes/cloud.py`) has the upstream's own port, so the launcher adopts "
            "the running upstream and its per-request path (readiness check, lease, release) runs.",
            "- **(d)** llm-router with `model: auto`, content-routed to that same group (reason `default`).",
            "- **(e)** llm-router with `--workers 2` (llm-router's default where there are 2+ CPUs), as (c); throughput and stampede only. "
            "(c) and (d) run one worker, like stock LiteLLM's one process; the bench always passes `--workers`.",
            "- **(f)** a reference point, latency only: `llm-router serve` (one worker, its serving settings) with the same model list "
            "but none of our plugins: no hooks, no custom auth, no master key, no launch specs. Its (f)-(a) / (b)-(a) is what LiteLLM "
            "itself costs per request under our settings, the floor that (c)'s figure is made of plus what routing, keys and the "
            "launcher add.",
            "",
            f"Latency: {lat.requests_per_path:,} sequential non-streaming and as many streaming requests per path, one keep-alive "
            f"`httpx.Client` per path, measured in {lat.rounds} interleaved rounds (a block of each path per round, in rotating order) so "
            "noise on the shared machine falls on every path alike; each figure that matters is a difference or ratio within this one run. "
            "TTFT is the time to the first SSE chunk that carries content.",
            f"Throughput: completed requests per second over a fixed {r.throughput.duration_s:g} s window per cell (after a short warm-up; "
            "a request still running at the end of the window doesn't count), from one asyncio loop in the bench process using aiohttp "
            "with a connection pool sized to the concurrency (httpx's `AsyncClient` was tried first: at 64 clients its pool took a whole "
            f"core for ~100 req/s against the fake upstream; see `bench/loadgen.py`). **The client shares the {r.machine.cpu_count} cores "
            "with the gateways and the upstream**, so the direct path (a) is client-bound and every gateway figure is lower than on a "
            "machine with cores to spare. *Server CPU ms/req* is the CPU time (user + system, whole process group) the serving process "
            "spent per completed request during the window: the upstream's for (a), the gateway's otherwise; unlike req/s it does not "
            "depend on how much CPU the client and the neighbours left over.",
            "Routing cost: `router.decide` in-process, in a Python process of its own, with the bench's llm-router config and no key "
            "(availability checks included), timed while the gateways sit idle; median over many decisions per prompt. 2,000 characters "
            "is `routing.complexity.max_chars`, the longest user's text the difficulty score rates. The bench's default group declares no "
            "context window, so one more row times the same prompt where the default group has the shipped CPU model's 1,536-token "
            "window: the one case where only LiteLLM's exact token count can tell whether the prompt fits.",
            f"Agreement: {r.routing_cost.agreement.conversations:,} conversations built from a fixed seed by `bench/corpus.py` (eleven "
            "languages; 1 to 41 user turns; short asks, pasted code, logs, documents and data of up to 300 KB; agent system prompts; "
            "images), each decided twice on a config whose default group has that 1,536-token window: as `auto` decides now, and "
            "with full scoring, without its bounds (LiteLLM's exact token count of every turn up to `max_chars`, and the difficulty "
            "score on all of the user's words). `tests/test_routing_corpus.py` checks both shares against the targets.",
            "Cold start: the launch spec's own command and environment started by hand and polled every 10 ms with a chat completion until "
            "one is answered, against a streamed request through the gateway to the first token, trials alternating which goes first. "
            "Two starts of the same server differ by up to a second for real vLLM, more than the overhead itself, so the target is "
            "judged on the *same-start* overhead: during each gateway trial the bench also polls the server the launcher is starting "
            "directly, every 10 ms, as by hand; the overhead is the gateway's first token minus that first direct answer, plus the "
            "time from the request to the server process's spawn (from /proc, exact to 10 ms). The separate-start difference is "
            "shown beside it. The real vLLM server is started once, unmeasured, before its trials (its first start pays for "
            "one-time work). *By-hand spread* is the range of the by-hand times.",
            "Stampede: concurrent requests for a cold model; server processes counted with psutil by command line (the served name is "
            "unique to the run) while the requests are in flight.",
            "Memory: RSS summed over the gateway process and its descendants in its own process group (model servers the launcher "
            "starts run in sessions of their own and are left out). *Idle* is read after the warm-up requests, so first-use imports "
            "are not counted as growth; *after* counts every chat completion the bench sent that gateway, topped up to the target count.",
            "Every process the bench starts leads its own session and carries a marker in its environment; all are stopped at the end "
            "(also on error or Ctrl-C) and a final sweep checks, with psutil, that none is left "
            f"(this run: {r.cleanup.left_running if r.cleanup else '?'} left).",
        ]),
        f"![Latency distributions]({chart})",
        "## Latency, sequential requests (ms)",
        latency_table(r),
        "### Overhead against stock LiteLLM",
        overhead_table(r),
        "## Throughput",
        throughput_table(r),
        "## Routing decision cost",
        routing_table(r),
        "### Agreement with full scoring",
        agreement_table(r),
        "How full scoring routes the corpus: " + ", ".join(f"{reason} {n:,}" for reason, n in r.routing_cost.agreement.reasons_full.items())
        + ". Where the two fall on different sides of the threshold (full -> bounded): "
        + (", ".join(f"{pair} ({n})" for pair, n in r.routing_cost.agreement.side_changes.items()) or "none") + ".",
        affinity_section(r.affinity, f"this {r.mode} run"),
        "## The spend ledger's cost per request",
        "`bench/ledger_cost.py`, in-process: the path a worker runs after each answer (router_plugins/accounting.py), an `auto` "
        "request to a local model: its row built from LiteLLM's logging payload, its baseline priced, the Prometheus counters "
        "(multiprocess mode) and the awaited commit of the row with its day's totals. CPU of the whole process, the writer thread's "
        "included, less the same loop recording nothing, in interleaved rounds.",
        ledger_table(r),
        "## Where a request's milliseconds go",
        _profile_intro(r),
        profile_table(r),
        profile_functions_table(r),
        "### Settings measured one at a time",
        "`python -m bench.ab SETTING` starts pairs of one-worker gateways on one fake upstream, A with llm-router's defaults "
        "and B with one setting changed, and sends both the explicit local model path (c) in interleaved blocks, so noise falls "
        "on both alike. A negative B-A means B is cheaper. The newest result of each setting in `bench/results/`:",
        ab_table(ab_results(results_dir)),
        "## Cold start through the launcher",
        cold_table(r),
        "## Cold-start stampede",
        stampede_table(r),
        "## Memory",
        memory_table(r),
    ]
    parts += ["## Reading the numbers", reading(r)]
    if r.notes:
        parts += ["## Notes from this run", "\n".join(f"- {n}" for n in r.notes)]
    parts += ["## Reproduce", REPRODUCE]
    return "\n\n".join(parts) + "\n"


def reading(r: SuiteResult) -> str:
    """What the figures of this run say about the targets, computed from them."""
    lines = []
    direct, stock = r.latency.path("a"), r.latency.path("b")
    stock_over = stock.nonstream.p50 - direct.nonstream.p50
    lines.append(f"- Stock LiteLLM itself adds {_f(stock_over)} ms at p50 over a direct call on this machine. llm-router runs on top of "
                 f"that same request path, so (c-a)/(b-a) <= {OVERHEAD_SHARE_MAX} means answering {_f((1 - OVERHEAD_SHARE_MAX) * stock_over)} ms "
                 "sooner than stock LiteLLM "
                 "per request (a saving to find, not an overhead to bound).")
    by_key = {p.key: p for p in r.latency.paths}
    floor = next((o for o in r.latency.overheads if o.key == "f"), None)
    if "c" in by_key and floor is not None and stock_over > 0:
        lines.append(f"- LiteLLM's own request path under `llm-router serve`, with none of our plugins (f), already costs "
                     f"{_f(floor.share_of_stock_overhead_p50, 3)}x stock's overhead; routing, team keys and the launcher add "
                     f"{_f(by_key['c'].nonstream.p50 - by_key['f'].nonstream.p50)} ms at p50 on top of it (c)-(f).")
    if "c" in by_key and "d" in by_key:
        short = next((c for c in r.routing_cost.cases if c.name == "text short"), None)
        lines.append(f"- `auto` costs {_f(by_key['d'].nonstream.p50 - by_key['c'].nonstream.p50)} ms more than the explicit model at p50; "
                     f"the routing decision for a short prompt costs {_f(short.median_us / 1000 if short else None, 3)} ms in-process.")
    cost = r.routing_cost
    slowest = cost.slowest
    lines.append(f"- The dearest `auto` decision is {slowest.name}: {_f(slowest.median_us / 1000, 3)} ms at the median. Up to "
                 f"`max_chars`, the difficulty score reads the first {cost.agreement.scored_chars} characters of the user's words "
                 "(a dictionary lookup per word); beyond, and with images, the route doesn't depend on it and it doesn't run. The exact "
                 "token count runs only where a prompt's size can't tell whether it fits the window.")
    lines.append(f"- On the corpus, the decision routes {_pct(cost.agreement.reason_share)} of conversations as full scoring did and "
                 f"puts {_pct(cost.agreement.side_share)} of those the score decides on the same side of the threshold.")
    b16, c16, e16 = (r.throughput.cell(k, 16) for k in ("b", "c", "e"))
    if b16 and c16 and b16.rps > 0:
        text = (f"- At 16 clients one llm-router worker serves {_f(c16.rps / b16.rps, 2)}x stock's requests per second, spending "
                f"{_f(c16.server_cpu_ms_per_request)} ms of CPU per request against stock's {_f(b16.server_cpu_ms_per_request)} ms")
        if e16:
            text += f"; with `--workers 2` it serves {_f(e16.rps / b16.rps, 2)}x"
        lines.append(text + ".")
    return "\n".join(lines)


def write_markdown(r: SuiteResult, path: Path, json_name: str, chart: str, results_dir: Path) -> None:
    path.write_text(markdown(r, json_name, chart, results_dir))
