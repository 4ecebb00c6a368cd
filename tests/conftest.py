import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fakes.cloud import FakeCloud  # noqa: E402
from tests.support.processes import model_server_processes  # noqa: E402

# Routing and config tests import LiteLLM in-process: keep it offline.
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session", autouse=True)
def no_model_server_left_running():
    """After the whole suite, no fake model server (or its children) may remain."""
    yield
    deadline = time.monotonic() + 15
    while model_server_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers = model_server_processes()
    for proc in leftovers:
        proc.kill()
    assert not leftovers, f"model server processes left running: {[p.pid for p in leftovers]}"


@pytest.fixture(scope="module")
def cloud():
    """A fake OpenAI + Anthropic upstream for the test module."""
    with FakeCloud() as fake:
        yield fake
