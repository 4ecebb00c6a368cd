"""The output a request reserves fits the local model that serves it: lowered to what its window leaves, never refused.

The local group is the fake model server with vLLM's check: input plus reserved output beyond its
2,048 tokens gets vLLM's 400. Real clients reserve far more (Messages clients must send
max_tokens: 4,096 from SDK defaults, 32,000 from coding agents); the gateway lowers the reserved
output on every API, streaming or not, for `auto` and for the group's own name, and says so in
`x-llm-router-max-tokens` and the explain output. Only an input that can't fit by itself moves on
to the next group.
"""

from __future__ import annotations

import json

import httpx
import pytest

from router_plugins import output_budget
from router_plugins.hooks import OUTPUT_BUDGET_HEADER
from tests.support.answers import errors_in, is_complete
from tests.support.configs import CLIENTS_TEAM_KEY, clients_gateway
from tests.support.gateway import Gateway

WINDOW = 2048
# (path, the reserved-output field, a body with a short prompt) for each API and field name.
APIS = {
    "chat max_tokens": ("/v1/chat/completions", "max_tokens", {"messages": [{"role": "user", "content": "MARK"}]}),
    "chat max_completion_tokens": ("/v1/chat/completions", "max_completion_tokens", {"messages": [{"role": "user", "content": "MARK"}]}),
    "responses": ("/v1/responses", "max_output_tokens", {"input": "MARK"}),
    "messages": ("/v1/messages", "max_tokens", {"messages": [{"role": "user", "content": "MARK"}]}),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with clients_gateway(tmp_path_factory.mktemp("budget")) as (gw, _):
        yield gw


def _send(gw: Gateway, path: str, body: dict) -> tuple[httpx.Response, str]:
    headers = {"authorization": f"Bearer {CLIENTS_TEAM_KEY}", "content-type": "application/json"}
    with httpx.stream("POST", gw.url + path, headers=headers, content=json.dumps(body), timeout=60) as response:
        return response, response.read().decode()


def _local_body(gw: Gateway, marker: str) -> dict:
    (body,) = [b for b in gw.received("local-text") if marker in json.dumps(b)]
    return body


# ---- how the budget is measured ----------------------------------------------------------------


def test_a_request_that_reserves_no_output_or_meets_an_unknown_window_has_no_budget():
    assert output_budget.fit({"messages": [{"role": "user", "content": "hi"}]}, WINDOW, "gpt-4o") is None
    assert output_budget.fit({"max_tokens": 10, "messages": []}, None, "gpt-4o") is None


def test_a_short_prompt_keeps_what_it_reserved_when_that_fits():
    budget = output_budget.fit({"max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}, WINDOW, "gpt-4o")
    assert budget is not None and budget.fits and not budget.lowered and budget.granted == 100


def test_a_large_reservation_is_lowered_to_what_the_window_leaves_after_the_input():
    budget = output_budget.fit({"max_tokens": 32000, "messages": [{"role": "user", "content": "hi"}]}, WINDOW, "gpt-4o")
    assert budget is not None and budget.lowered
    assert budget.granted == WINDOW - budget.input_tokens and 0 < budget.input_tokens < 64


def test_the_input_bound_counts_tools_and_never_less_than_the_text_needs():
    tools = [{"type": "function", "function": {"name": "weather", "description": "word " * 300, "parameters": {}}}]
    plain = output_budget.fit({"max_tokens": 32000, "messages": [{"role": "user", "content": "hi"}]}, WINDOW, "gpt-4o")
    with_tools = output_budget.fit({"max_tokens": 32000, "tools": tools, "messages": [{"role": "user", "content": "hi"}]}, WINDOW, "gpt-4o")
    assert plain is not None and with_tools is not None
    assert with_tools.input_tokens >= plain.input_tokens + 300


def test_inline_images_are_not_counted_as_text():
    image = "data:image/png;base64," + "A" * 100_000
    budget = output_budget.fit({"max_tokens": 100, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is it"}, {"type": "image_url", "image_url": {"url": image}}]}]}, WINDOW, "gpt-4o")
    assert budget is not None and budget.granted == 100


def test_an_input_larger_than_the_window_does_not_fit():
    budget = output_budget.fit({"max_tokens": 10, "messages": [{"role": "user", "content": "word " * 3000}]}, WINDOW, "gpt-4o")
    assert budget is not None and not budget.fits and "window" in budget.why_not()


# ---- through the gateway, on every API ------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("model", ["auto", "local-text"])
@pytest.mark.parametrize("api", APIS)
def test_a_large_reservation_is_answered_by_the_local_model_with_its_output_lowered(gateway, api, model, stream):
    path, field, body = APIS[api]
    marker = f"budget {api} {model} {stream}"
    request = json.loads(json.dumps(body).replace("MARK", marker)) | {"model": model, field: 32000, "stream": stream}
    response, text = _send(gateway, path, request)
    assert response.status_code == 200, text[:1500]
    assert response.headers["x-llm-router-model"] == "local-text"
    granted = int(response.headers[OUTPUT_BUDGET_HEADER])
    assert 0 < granted < WINDOW
    assert is_complete(text) and not errors_in(text), text[:1500]
    received = _local_body(gateway, marker)
    reserved = [received[f] for f in output_budget.OUTPUT_FIELDS if f in received]
    assert reserved and max(reserved) == granted


@pytest.mark.parametrize("api", APIS)
def test_a_reservation_that_fits_reaches_the_model_untouched(gateway, api):
    path, field, body = APIS[api]
    marker = f"fits {api}"
    response, text = _send(gateway, path, json.loads(json.dumps(body).replace("MARK", marker)) | {"model": "auto", field: 100})
    assert response.status_code == 200, text[:1500]
    assert OUTPUT_BUDGET_HEADER not in response.headers
    received = _local_body(gateway, marker)
    assert [received[f] for f in output_budget.OUTPUT_FIELDS if f in received] == [100]


@pytest.mark.parametrize("api", APIS)
def test_an_input_the_local_window_cannot_hold_goes_on_to_the_next_group(gateway, api):
    path, field, body = APIS[api]
    long = "word " * 3000
    response, text = _send(gateway, path, json.loads(json.dumps(body).replace("MARK", long)) | {"model": "local-text", field: 64})
    assert response.status_code == 200, text[:1500]
    assert response.headers["x-litellm-model-group"] == "claude-sonnet"


def test_explain_shows_the_output_budget(gateway):
    response = httpx.post(gateway.url + "/v1/router/explain", headers={"authorization": f"Bearer {CLIENTS_TEAM_KEY}"},
                          json={"model": "auto", "max_tokens": 32000, "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    explained = response.json()
    assert explained["model"] == "local-text"
    assert explained["output_budget"]["requested"] == 32000 and 0 < explained["output_budget"]["granted"] < WINDOW
    assert explained["output_budget"]["window"] == WINDOW
