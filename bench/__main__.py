"""`python -m bench [--quick] [--output DIR]`: run the benchmark suite and write its reports."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from bench.processes import REPO
from bench.settings import FULL, QUICK, SMOKE, Settings

RESULTS = REPO / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings: Settings = SMOKE if args.smoke else QUICK if args.quick else FULL
    # Smoke numbers are meaningless: never let them replace the published ones.
    output: Path | None = args.output or (Path(tempfile.mkdtemp(prefix="llm-router-bench-smoke-")) if args.smoke else None)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so that every `finally` (process cleanup) runs

    from bench import plot, report, routing_quality, suite

    try:
        result = suite.run(settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        print("interrupted (the cleanup line above says what was left running)", file=sys.stderr)
        return 130
    out_dir = output or RESULTS
    json_path = out_dir / f"{result.date}.json"
    chart_path = out_dir / "overhead.png"
    report.write_json(result, json_path)
    plot.overhead_chart(result, chart_path)
    if output is None:
        md_path = REPO / "BENCHMARKS.md"
        report.write_markdown(result, md_path, str(json_path.relative_to(REPO)), str(chart_path.relative_to(REPO)), RESULTS)
        report.write_headline(result, REPO / "README.md", md_path.name)
    else:
        md_path = out_dir / "BENCHMARKS.md"
        report.write_markdown(result, md_path, json_path.name, chart_path.name, RESULTS)
    print(report.terminal(result))
    print(f"\nwrote {json_path}, {chart_path}, {md_path}")
    if not args.smoke:  # minutes of scoring, and figures that don't depend on the mode
        print("routing quality on labelled data (bench/routing_quality.py)", file=sys.stderr, flush=True)
        print("\n" + routing_quality.run_into(out_dir, md_path, f"`python -m bench`{' --quick' if args.quick else ''}"))
    return 0 if result.cleanup is not None and result.cleanup.left_running == 0 else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="llm-router's benchmark suite (see BENCHMARKS.md).")
    parser.add_argument("--quick", action="store_true", help="fewer requests and shorter cells: under 3 minutes")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=None,
                        help="write the JSON, the chart and a BENCHMARKS.md into this folder (default: bench/results and ./BENCHMARKS.md)")
    return parser


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
