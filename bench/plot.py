"""bench/results/overhead.png: latency distributions, one line per path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.suite import SuiteResult  # noqa: E402


def overhead_chart(r: SuiteResult, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, series, title in ((axes[0], "nonstream", "non-streaming, total"), (axes[1], "ttft", "streaming, time to first token")):
        for p in r.latency.paths:
            values = sorted(r.latency.samples_ms[p.key][series])
            if not values:
                continue
            share = [100 * (i + 0.5) / len(values) for i in range(len(values))]
            ax.plot(values, share, label=f"({p.key}) {p.label}", linewidth=1.4)
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("requests at or below (%)")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"llm-router overhead: {r.latency.requests_per_path:,} sequential requests per path, {r.mode} run {r.started_at}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
