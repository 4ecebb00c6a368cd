"""The benchmark suite runs end to end (tiny counts) and writes a complete JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("date", "machine", "versions", "latency", "throughput", "routing_cost", "affinity", "ledger", "cold_start", "stampede", "memory",
            "profile", "targets", "cleanup")


def test_bench_smoke_writes_every_section(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--output", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-12000:]
    (report,) = tmp_path.glob("*.json")
    data = json.loads(report.read_text())
    assert all(section in data for section in SECTIONS), sorted(data)
    assert data["mode"] == "smoke"
    assert {p["key"] for p in data["latency"]["paths"]} == {"a", "b", "c", "d", "f"}
    assert {o["key"] for o in data["latency"]["overheads"]} == {"c", "d", "f"}
    assert {c["key"] for c in data["throughput"]["cells"]} >= {"a", "b", "c", "d"}
    assert [c["name"] for c in data["routing_cost"]["cases"] if c["name"].startswith("image")] == ["image 10 KB", "image 1 MB", "image 10 MB"]
    assert data["affinity"]["conversations"] >= 300 and data["affinity"]["on"]["downward_switches"] == 0
    assert data["affinity"]["off"]["downward_switches"] > 0 and data["affinity"]["on"]["decisions"] == data["affinity"]["turns"]
    assert [c["concurrency"] for c in data["ledger"]["cells"]] == [1, 16] and all(c["requests"] > 0 for c in data["ledger"]["cells"])
    assert data["stampede"] and data["cold_start"] and {m["key"] for m in data["memory"]} == {"stock", "router"}
    assert data["targets"] and all({"requirement", "figure", "met"} <= set(t) for t in data["targets"])
    assert data["machine"]["cpu_count"] >= 1 and data["versions"]["litellm"]
    assert data["cleanup"]["left_running"] == 0
    assert (tmp_path / "overhead.png").stat().st_size > 0
    markdown = (tmp_path / "BENCHMARKS.md").read_text()
    assert markdown.startswith("# llm-router benchmarks")
    assert "## Where a request's milliseconds go" in markdown and "### Settings measured one at a time" in markdown
    assert "### Conversation affinity" in markdown and "## The spend ledger's cost per request" in markdown
