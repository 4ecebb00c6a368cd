"""A fuzzer nobody here wrote: schemathesis, on the gateway's own OpenAPI document, finds no server error.

Every operation the document lists (the inference routes under their aliases, the model list,
health, explain) is fuzzed with the master key and with a team key, from a fixed seed and a
bounded number of examples. No answer may be a 5xx, and every answer must be JSON; afterwards
the log holds no traceback.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway

MASTER = "sk-master-SENTINEL-fuzz-0001"
EXAMPLES = 15


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    with FakeCloud() as cloud:
        config = core_config(tmp_path_factory.mktemp("fuzz"), cloud.url, keys_file=True)
        done = subprocess.run([sys.executable, "-m", "llm_router.cli", "keys", "add", "team", "--team", "t", "--models", "gpt-4o,claude-sonnet",
                               "--config", str(config)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-fuzz-0001", "ANTHROPIC_API_KEY": "sk-ant-test-fuzz-0001"}
        with Gateway(config, env) as gw:
            yield gw, done.stdout.strip()


@pytest.fixture(scope="module")
def api_schema(fuzzed):
    gw, _ = fuzzed
    return schemathesis.openapi.from_url(f"{gw.url}/openapi.json", headers={"authorization": f"Bearer {MASTER}"})


schema = schemathesis.pytest.from_fixture("api_schema")


def _call(case, gw: Gateway, key: str) -> None:
    response = case.call(base_url=gw.url, headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith(("application/json", "text/event-stream")), response.text[:200]


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_server_error_with_the_master_key(case, fuzzed):
    gw, _ = fuzzed
    _call(case, gw, MASTER)


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_server_error_with_a_team_key(case, fuzzed):
    gw, team = fuzzed
    _call(case, gw, team)


def test_the_fuzzed_gateway_logged_no_traceback(fuzzed):
    gw, _ = fuzzed
    log = gw.log_text() + (gw.config.parent / "logs" / "router.log").read_text()
    assert "Traceback" not in log
