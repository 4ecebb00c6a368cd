"""A fuzzer nobody here wrote: schemathesis, on the gateway's own OpenAPI document, finds no server error.

The module's fixture fuzzes every operation the document lists (the inference routes under their
aliases, batches and files, the model list, health, explain) with the master key and with a team
key, from a fixed seed and a bounded number of examples, with data that fits the document and data
that breaks it, and keeps every answer. The config has an OpenAI deployment on OpenAI's default base
URL (OPENAI_BASE_URL, here the fake cloud's), so batches and files are served and published too;
the fake cloud answers them as OpenAI does (an unknown id is a 404). The tests then read those
answers and the gateway's log, so each holds whichever runs first or alone: no answer is a 5xx,
no published operation is refused as not served, every answer is JSON, a good share of the
requests got through to the fake upstream, and the log holds no traceback. The document itself is
checked against the route table.

No 5xx at all, not even a 502 or 503: every upstream here is up and answers a bad request with a
4xx, so a gateway 5xx would be the gateway's failure or a 4xx it misreported, never an upstream
being down. (Upstreams that are down, and the 502/503 that says so, are tests/test_fallbacks.py's.)
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from router_plugins.routes import TEMPLATES, Access, classify
from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway

MASTER = "sk-master-SENTINEL-fuzz-0001"
EXAMPLES = 8


@dataclass(frozen=True)
class Answer:
    operation: str
    request: str
    status: int
    content_type: str
    text: str


@dataclass(frozen=True)
class Fuzzed:
    gateway: Gateway
    cloud: FakeCloud
    answers: list[Answer]
    upstream_requests: int


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with FakeCloud() as cloud:
        config = _with_files_and_batches(core_config(tmp_path_factory.mktemp("fuzz"), cloud.url, keys_file=True))
        done = subprocess.run([sys.executable, "-m", "llm_router.cli", "keys", "add", "team", "--team", "t", "--models", "gpt-4o,claude-sonnet",
                               "--config", str(config)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-fuzz-0001", "ANTHROPIC_API_KEY": "sk-ant-test-fuzz-0001",
               "OPENAI_BASE_URL": f"{cloud.url}/v1"}
        with Gateway(config, env) as gw:
            yield gw, cloud, done.stdout.strip()


def _with_files_and_batches(config):
    """An OpenAI deployment on OpenAI's default base URL, where LiteLLM sends files and batches: so they are served."""
    raw = yaml.safe_load(config.read_text())
    raw["model_list"].append({"model_name": "gpt-4o-default-base", "litellm_params": {"model": "openai/gpt-4o", "api_key": "os.environ/OPENAI_API_KEY"}})
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


@pytest.fixture(scope="module")
def fuzzed(served) -> Fuzzed:
    gw, cloud, team = served
    schema = schemathesis.openapi.from_url(f"{gw.url}/openapi.json", headers={"authorization": f"Bearer {MASTER}"})
    before = len(cloud.requests)
    answers: list[Answer] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
        for key in (MASTER, team):
            answers += _fuzz(cases, gw, key)
    return Fuzzed(gw, cloud, answers, len(cloud.requests) - before)


def _fuzz(cases: st.SearchStrategy, gw: Gateway, key: str) -> list[Answer]:
    answers: list[Answer] = []

    @given(case=cases)
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def send(case) -> None:
        response = case.call(base_url=gw.url, headers={"authorization": f"Bearer {key}"}, timeout=30)
        content_type = (response.headers.get("content-type") or [""])[0]
        request = f"{case.method} {case.formatted_path} {case.body!r:.300}"
        answers.append(Answer(case.operation.label, request, response.status_code, content_type, response.text[:300]))

    send()
    return answers


def test_no_fuzzed_request_gets_a_server_error(fuzzed):
    errors = [a for a in fuzzed.answers if a.status >= 500]
    assert not errors, errors[:5]


def test_no_published_operation_is_refused_as_not_served(fuzzed):
    # 501: not served (by the door, or an upstream's "not implemented" passed on); 405: not with this method.
    refused = [a for a in fuzzed.answers if a.status in (405, 501)]
    assert not refused, refused[:5]


def test_every_fuzzed_answer_is_json(fuzzed):
    not_json = [a for a in fuzzed.answers if not a.content_type.startswith(("application/json", "text/event-stream"))]
    assert not not_json, not_json[:5]


def test_a_share_of_fuzzed_requests_gets_through_to_a_backend(fuzzed):
    answered = [a for a in fuzzed.answers if 200 <= a.status < 300]
    # Most operations can't answer 2xx to generated data (ids that don't exist, models not named
    # in the config) and half the data breaks the document on purpose.
    assert len(answered) >= len(fuzzed.answers) // 20, (len(answered), len(fuzzed.answers))
    assert {"POST /v1/chat/completions", "POST /v1/responses", "POST /v1/messages"} <= {a.operation for a in answered}
    assert fuzzed.upstream_requests > 0


def test_the_fuzzed_gateway_logged_no_traceback(fuzzed):
    log = fuzzed.gateway.log_text() + (fuzzed.gateway.config.parent / "logs" / "router.log").read_text()
    # A traceback's frames; LiteLLM's own one-line records may name one ("... Traceback (most recent call last):").
    frames = [line for line in log.splitlines() if line.startswith(("Traceback", '  File "'))]
    assert not frames, frames[:5]


def test_the_document_lists_every_route_the_door_serves_a_key_holder(served):
    gw, _, _ = served
    document = httpx.get(f"{gw.url}/openapi.json", headers={"authorization": f"Bearer {MASTER}"}, timeout=30).json()
    listed = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    served_routes = {(method, path) for t in TEMPLATES if t.access in (Access.INFERENCE, Access.TEAM) for path in t.paths for method in t.methods}
    assert listed == served_routes
    for method, path in listed:
        assert classify(method, path.replace("{", "").replace("}", "")).access in (Access.INFERENCE, Access.TEAM), (method, path)
    assert {("POST", "/v1/responses/compact"), ("POST", "/responses/input_tokens"), ("GET", "/health"), ("DELETE", "/v1/files/{file_id}"),
            ("POST", "/v1/batches/{batch_id}/cancel")} <= listed
