"""An upstream's error keeps its meaning on every route: its 4xx reaches the client as that 4xx, in the
client's error format, and its 5xx as a 502 that names it; never a 500, never a traceback in the log.

Batches and files are where LiteLLM's own error path fails: on its batches routes it imports a
database client (prisma) that llm-router doesn't install, so without the door an upstream's 404
became a 500 with a traceback (issue 21, item 5). The gateway here serves batches and files (an
OpenAI deployment on OpenAI's default base URL, which OPENAI_BASE_URL points at the fake cloud), and
the fake cloud answers them as OpenAI does: an unknown id is a 404, an id with a `status-NNN` token
answers that status.
"""

from __future__ import annotations

import json

import fastapi
import httpx
import openai
import pytest
import yaml

from router_plugins.errors import Api, error_meant
from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway

MASTER = "sk-master-SENTINEL-upstream-errors-0001"
HEADERS = {"authorization": f"Bearer {MASTER}"}
BATCH_BODY = {"input_file_id": "file-unknown", "endpoint": "/v1/chat/completions", "completion_window": "24h"}
# The eight batch operations, each under both aliases, on ids the upstream doesn't know.
BATCH_REQUESTS = [(method, f"{prefix}{path}", body) for prefix in ("/v1", "") for method, path, body in
                  (("GET", "/batches/batch_unknown", None), ("POST", "/batches/batch_unknown/cancel", None), ("POST", "/batches", BATCH_BODY))]
FILE_REQUESTS = [(method, f"{prefix}{path}", None) for prefix in ("/v1", "") for method, path in
                 (("GET", "/files/file-unknown"), ("DELETE", "/files/file-unknown"), ("GET", "/files/file-unknown/content"))]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with FakeCloud() as cloud:
        config = core_config(tmp_path_factory.mktemp("upstream-errors"), cloud.url)
        raw = yaml.safe_load(config.read_text())
        raw["model_list"].append({"model_name": "gpt-4o-default-base", "litellm_params": {"model": "openai/gpt-4o", "api_key": "os.environ/OPENAI_API_KEY"}})
        config.write_text(yaml.safe_dump(raw, sort_keys=False))
        env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-upstream-errors-0001",
               "ANTHROPIC_API_KEY": "sk-ant-test-upstream-errors-0001", "OPENAI_BASE_URL": f"{cloud.url}/v1"}
        with Gateway(config, env) as gw:
            yield gw, cloud


def _send(gw: Gateway, method: str, path: str, body: object = None) -> httpx.Response:
    return httpx.request(method, gw.url + path, json=body, headers=HEADERS, timeout=60)


def _openai_error(response: httpx.Response) -> dict:
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"], error
    return error


@pytest.mark.parametrize(("method", "path", "body"), BATCH_REQUESTS, ids=[f"{m} {p}" for m, p, _ in BATCH_REQUESTS])
def test_an_upstream_404_on_a_batch_route_reaches_the_client_as_a_404_with_its_message(setup, method, path, body):
    gw, _ = setup
    response = _send(gw, method, path, body)
    assert response.status_code == 404, response.text[:300]
    assert "No such" in _openai_error(response)["message"]


@pytest.mark.parametrize(("method", "path", "body"), FILE_REQUESTS, ids=[f"{m} {p}" for m, p, _ in FILE_REQUESTS])
def test_an_upstream_404_on_a_file_route_reaches_the_client_as_a_404_with_its_message(setup, method, path, body):
    gw, _ = setup
    response = _send(gw, method, path, body)
    assert response.status_code == 404, response.text[:300]
    assert "No such File object" in _openai_error(response)["message"]


@pytest.mark.parametrize("status", [400, 403, 422])
def test_an_upstream_4xx_on_a_batch_route_keeps_its_status(setup, status):
    gw, _ = setup
    response = _send(gw, "GET", f"/v1/batches/batch_status-{status}")
    assert response.status_code == status, response.text[:300]
    assert f"HTTP {status}" in _openai_error(response)["message"]


def test_an_upstream_5xx_on_a_batch_route_is_a_502_that_names_it(setup):
    gw, _ = setup
    response = _send(gw, "GET", "/v1/batches/batch_status-500")
    assert response.status_code == 502, response.text[:300]
    assert "The upstream failed (HTTP 500)" in _openai_error(response)["message"]


def test_an_upstream_4xx_on_a_batch_route_logs_one_line_and_no_traceback(setup):
    gw, _ = setup
    path = "/v1/batches/batch_logged-once"
    before = len(gw.log_text())
    assert _send(gw, "GET", path).status_code == 404
    # The door logs its line before it answers, so the line is there once the answer is.
    logged = gw.log_text()[before:]
    lines = [line for line in logged.splitlines() if "llm_router.app" in line or "LiteLLM" in line or line.startswith(("Traceback", " "))]
    assert len(lines) == 1 and f"404 GET '{path}'" in lines[0] and "No such Batch object" in lines[0], lines


def test_batches_and_files_answered_by_the_upstream_reach_the_client(setup):
    gw, cloud = setup
    client = gw.client(api_key=MASTER)
    uploaded = client.files.create(file=("input.jsonl", _batch_line()), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.retrieve(batch.id).id == batch.id
    assert client.batches.cancel(batch.id).status == "cancelling"
    assert batch.id in {b.id for b in client.batches.list().data}
    assert client.files.content(uploaded.id).read() == _batch_line()
    assert client.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def _batch_line() -> bytes:
    request = {"custom_id": "1", "method": "POST", "url": "/v1/chat/completions",
               "body": {"model": "gpt-4o-default-base", "messages": [{"role": "user", "content": "hi"}]}}
    return (json.dumps(request) + "\n").encode()


# What the door reads from an exception that escaped LiteLLM (router_plugins/errors.py, error_meant).


def _escaped(original: Exception) -> Exception:
    """What escapes LiteLLM's batches routes: its error path's own failure, raised while handling `original`."""
    try:
        try:
            raise original
        except Exception:
            raise ModuleNotFoundError("No module named 'prisma'")  # noqa: B904  (chained implicitly, as LiteLLM's is)
    except ModuleNotFoundError as escaped:
        return escaped


def _upstream(status: int, body: dict) -> openai.APIStatusError:
    request = httpx.Request("GET", "https://upstream.example/v1/batches/b")
    response = httpx.Response(status, json=body, request=request)
    return openai.OpenAI(api_key="x", base_url="https://upstream.example/v1")._make_status_error_from_response(response)


def test_an_escaped_upstream_4xx_is_answered_in_anthropics_format_with_its_status_and_message():
    meant = error_meant(_escaped(_upstream(404, {"type": "error", "error": {"type": "not_found_error", "message": "No such batch"}})))
    assert meant is not None and meant.status == 404
    assert json.loads(meant.body(Api.ANTHROPIC)) == {"type": "error", "error": {"type": "not_found_error", "message": "No such batch"}}


def test_an_escaped_upstream_4xx_is_answered_in_openais_format_with_its_status_message_and_param():
    meant = error_meant(_escaped(_upstream(400, {"error": {"message": "Bad id", "type": "invalid_request_error", "param": "batch_id"}})))
    assert meant is not None
    assert json.loads(meant.body(Api.OPENAI))["error"] == {"message": "Bad id", "type": "invalid_request_error", "param": "batch_id", "code": "400"}


def test_litellms_own_escaped_4xx_keeps_its_status():
    meant = error_meant(_escaped(fastapi.HTTPException(status_code=400, detail="Invalid batch request")))
    assert meant is not None and (meant.status, meant.message) == (400, "Invalid batch request")


def test_an_escaped_upstream_5xx_is_a_502_naming_its_status():
    meant = error_meant(_escaped(_upstream(503, {"error": {"message": "overloaded"}})))
    assert meant is not None and meant.status == 502 and meant.message == "The upstream failed (HTTP 503): overloaded"


def test_an_exception_with_no_status_in_its_chain_is_a_bug():
    assert error_meant(_escaped(KeyError("model"))) is None
    assert error_meant(_escaped(fastapi.HTTPException(status_code=500, detail="LiteLLM's own failure"))) is None
