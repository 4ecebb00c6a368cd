"""Finding processes our tests started, to prove nothing is left running.

Every process a test session starts inherits SESSION_ENV (tests/conftest.py sets it, one value
per pytest process, so per xdist worker too), and only processes carrying this session's value
count: test files running at the same time on other workers, or a benchmark on the same
machine, never show up in another session's counts.
"""

from __future__ import annotations

import os

import psutil

from tests.support.gateway import FAKE_MODEL_SERVER

SESSION_ENV = "LLM_ROUTER_TEST_SESSION"


def processes_matching(marker: str) -> list[psutil.Process]:
    """Live processes of this test session (all of them outside one) whose command line contains `marker`."""
    session = os.environ.get(SESSION_ENV)
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or marker not in " ".join(proc.info["cmdline"] or []):
                continue
            if session is None or proc.environ().get(SESSION_ENV) == session:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def model_server_processes() -> list[psutil.Process]:
    return processes_matching(str(FAKE_MODEL_SERVER))


def count_spawned(marker: str, served_name: str) -> int:
    """How many server processes whose command line has `marker` and `served_name` exist right now."""
    return sum(1 for p in processes_matching(marker) if served_name in _command_line(p))


def _command_line(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""  # it exited meanwhile
