"""Finding processes our tests started, to prove nothing is left running."""

from __future__ import annotations

import psutil

from tests.support.gateway import FAKE_MODEL_SERVER


def processes_matching(marker: str) -> list[psutil.Process]:
    """Live processes whose command line contains `marker`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def model_server_processes() -> list[psutil.Process]:
    return processes_matching(str(FAKE_MODEL_SERVER))


def count_spawned(marker: str, served_name: str) -> int:
    """How many server processes whose command line has `marker` and `served_name` exist right now."""
    return sum(1 for p in processes_matching(marker) if served_name in " ".join(p.cmdline()))
