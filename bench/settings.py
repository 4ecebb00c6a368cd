"""How much each mode measures: full (the published numbers), quick (< 3 min) and smoke (< 60 s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    mode: str
    latency_requests: int
    """Sequential requests per path, each mode (non-streaming and streaming)."""
    latency_rounds: int
    warmup: int
    throughput_s: float
    concurrencies: tuple[int, ...]
    routing_repeats: int
    cold_trials: int
    vllm_trials: int
    """0: no real vLLM cold start."""
    stampede_requests: int
    memory_requests: int
    profile_requests: int
    """Sequential requests py-spy samples through llm-router (bench/profile.py)."""
    affinity_passes: int = 1
    """Timed passes over the agent corpus, each deciding every turn with affinity on and off (bench/affinity.py)."""
    ledger_requests: int = 400
    """Requests recorded in the spend ledger per concurrency (bench/ledger_cost.py)."""
    workers2: bool = True
    """Also run llm-router --workers 2 (throughput, stampede): one more gateway start (~15 s)."""


FULL = Settings("full", latency_requests=1000, latency_rounds=50, warmup=30, throughput_s=10.0, concurrencies=(1, 16, 64),
                routing_repeats=2000, affinity_passes=10, ledger_requests=20_000, cold_trials=5, vllm_trials=3, stampede_requests=64, memory_requests=10_000,
                profile_requests=3000)
QUICK = Settings("quick", latency_requests=250, latency_rounds=25, warmup=20, throughput_s=3.0, concurrencies=(1, 16, 64),
                 routing_repeats=300, affinity_passes=3, ledger_requests=4_000, cold_trials=2, vllm_trials=0, stampede_requests=64, memory_requests=2_000,
                 profile_requests=1000)
SMOKE = Settings("smoke", latency_requests=20, latency_rounds=2, warmup=2, throughput_s=0.2, concurrencies=(1, 16),
                 routing_repeats=10, cold_trials=1, vllm_trials=0, stampede_requests=64, memory_requests=100,
                 profile_requests=50, workers2=False)

MODES = {s.mode: s for s in (FULL, QUICK, SMOKE)}
