"""Every route LiteLLM mounts: team keys deny by default, the master key for the rest, and a route
llm-router doesn't serve answers 501 even to the master key.

The routes come from the installed LiteLLM's own route table at test time (tests/support/
litellm_routes.py), so a route that a LiteLLM upgrade adds is covered the day it appears. What a
team key may reach is written here, from the README's route policy, independently of the
gateway's own table: inference routes (chat completions, completions, embeddings, responses and
their by-id operations, messages and count_tokens, batches, files, each under every alias LiteLLM
serves), the model list, health and explain.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest

from tests.fakes.cloud import FakeCloud
from tests.support.configs import core_config
from tests.support.gateway import Gateway
from tests.support.litellm_routes import MountedRoute, mounted_routes

MASTER = "sk-master-SENTINEL-routes-0001"
OUR_REFUSALS = ("This route needs the master key.", "Missing API key", "Invalid or revoked API key.")

_V1 = ("", "/v1")
TEAM_ROUTES: frozenset[tuple[str, str]] = frozenset(
    [("POST", f"{v}/{op}") for v in _V1 for op in ("chat/completions", "completions", "embeddings", "responses",
                                                      "responses/compact", "responses/input_tokens")]
    + [("POST", f"/{prefix}/{{model:path}}/{op}") for prefix in ("openai/deployments", "engines")
       for op in ("chat/completions", "completions", "embeddings")]
    + [(method, f"{v}/responses/{{response_id}}") for v in _V1 for method in ("GET", "DELETE")]
    + [("GET", f"{v}/responses/{{response_id}}/input_items") for v in _V1]
    + [("POST", f"{v}/responses/{{response_id}}/cancel") for v in _V1]
    + [("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens")]
    + [(method, f"{v}/batches") for v in _V1 for method in ("GET", "POST")]
    + [("GET", f"{v}/batches/{{batch_id:path}}") for v in _V1]
    + [("POST", f"{v}/batches/{{batch_id:path}}/cancel") for v in _V1]
    + [(method, f"{v}/files") for v in _V1 for method in ("GET", "POST")]
    + [(method, f"{v}/files/{{file_id:path}}") for v in _V1 for method in ("GET", "DELETE")]
    + [("GET", f"{v}/files/{{file_id:path}}/content") for v in _V1]
    + [("GET", f"{v}/models") for v in _V1] + [("GET", f"{v}/models/{{model_id}}") for v in _V1]
    + [("GET", "/v1/health"), ("GET", "/health"), ("POST", "/v1/router/explain")]
)
# LiteLLM's read-only admin routes that work without its database; everything else isn't served.
ADMIN_ROUTES = frozenset(
    [("GET", path) for path in ("/model/info", "/v1/model/info", "/model_group/info", "/routes", "/openapi.json",
                                "/active/callbacks", "/get/config/callbacks", "/debug/asyncio-tasks", "/utils/supported_openai_params")]
    + [("POST", "/utils/token_counter"), ("POST", "/utils/transform_request")]
)
PUBLIC_ROUTES = frozenset((method, f"/health/{probe}") for probe in ("liveliness", "liveness", "readiness") for method in ("GET", "OPTIONS"))


def _requests(routes: list[MountedRoute]) -> list[tuple[str, MountedRoute]]:
    out = []
    for route in routes:
        if route.kind == "http":
            out += [(method, route) for method in route.methods]
        else:
            out.append(("GET", route))
    return out


ROUTES = mounted_routes()
_CLIENT = httpx.Client(timeout=30)
REQUESTS = _requests(ROUTES)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with FakeCloud() as cloud:
        config = core_config(tmp_path_factory.mktemp("routes"), cloud.url, keys_file=True)
        done = subprocess.run([sys.executable, "-m", "llm_router.cli", "keys", "add", "team", "--team", "t", "--models", "gpt-4o",
                               "--config", str(config)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-routes-openai-0001", "ANTHROPIC_API_KEY": "sk-ant-test-routes-0001"}
        with Gateway(config, env) as gw:
            yield gw, done.stdout.strip(), cloud


def _send(gw: Gateway, method: str, route: MountedRoute, key: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    if route.kind == "websocket":
        return _websocket_handshake(gw, route.sample_path(), headers)
    body = {} if method in ("POST", "PUT", "PATCH") else None
    # Only a refusal's body is read: it is a small JSON body, and some of LiteLLM's GET routes
    # stream without end.
    with _CLIENT.stream(method, gw.url + route.sample_path(), json=body, headers=headers) as response:
        content = response.read() if response.status_code in (401, 403, 501) else b""
    return httpx.Response(response.status_code, headers=response.headers, content=content)


def _websocket_handshake(gw: Gateway, path: str, headers: dict[str, str]) -> httpx.Response:
    """The answer to a websocket upgrade: 101 when accepted (the socket is then closed), else the refusal."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{gw.port}", "Connection: Upgrade", "Upgrade: websocket",
             "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            length = int(next((line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), b"0"))
            while len(rest) < length:
                rest += sock.recv(65536)
    return httpx.Response(status, content=rest if status != 101 else b"")


def _error_message(response: httpx.Response, path: str) -> str:
    body = response.json()
    if "/v1/messages" in path or path.startswith("/anthropic"):
        assert body["type"] == "error", body
    return body["error"]["message"]


def test_the_route_table_is_read_from_litellm():
    templates = {route.template for route in ROUTES}
    assert {"/v1/chat/completions", "/v1/messages", "/v1/responses", "/key/generate", "/model/info"} <= templates
    assert len(ROUTES) > 500


def test_without_a_key_every_route_but_the_probes_is_401(setup):
    gw, _, cloud = setup
    before = len(cloud.requests)
    wrong = []
    for method, route in REQUESTS:
        response = _send(gw, method, route, None)
        public = (method, route.template) in PUBLIC_ROUTES
        if (response.status_code != 401) != public:
            wrong.append(f"{method} {route.template}: {response.status_code}")
    assert not wrong, f"{len(wrong)} of {len(REQUESTS)} routes: {wrong[:30]}"
    assert len(cloud.requests) == before


def test_a_team_key_gets_403_on_every_route_that_is_not_inference_or_team(setup):
    gw, team, cloud = setup
    before = len(cloud.requests)
    wrong = []
    for method, route in REQUESTS:
        if (method, route.template) in TEAM_ROUTES | PUBLIC_ROUTES:
            continue
        response = _send(gw, method, route, team)
        if response.status_code != 403 or _error_message(response, route.template) != "This route needs the master key.":
            wrong.append(f"{method} {route.template}: {response.status_code} {response.text[:80]}")
    assert not wrong, f"{len(wrong)} routes: {wrong[:30]}"
    assert len(cloud.requests) == before


def test_a_team_key_reaches_every_inference_and_team_route(setup):
    gw, team, _ = setup
    wrong = []
    for method, route in REQUESTS:
        if (method, route.template) not in TEAM_ROUTES:
            continue
        response = _send(gw, method, route, team)
        if response.status_code in (401, 403) and any(r in response.text for r in OUR_REFUSALS):
            wrong.append(f"{method} {route.template}: {response.status_code} {response.text[:80]}")
    assert not wrong, wrong
    assert {t for _, t in TEAM_ROUTES} <= {r.template for r in ROUTES} | {"/v1/health", "/health", "/v1/router/explain"}


def test_the_master_key_reaches_every_route_llm_router_serves_and_the_rest_answer_501(setup):
    gw, _, cloud = setup
    before = len(cloud.requests)
    wrong = []
    for method, route in REQUESTS:
        response = _send(gw, method, route, MASTER)
        # This config's OpenAI deployments all name their api_base, so files and batches, which LiteLLM
        # sends to OpenAI's default base URL, aren't served either.
        files = "/files" in route.template or "/batches" in route.template
        served = (method, route.template) in TEAM_ROUTES | PUBLIC_ROUTES | ADMIN_ROUTES and not files
        refused = (response.status_code == 501 and ("doesn't serve" in response.text or "Files and batches" in response.text)
                   or response.status_code == 405)  # a method we don't take on a path we serve
        if refused == served or (response.status_code >= 500 and not refused) or response.status_code in (401, 403):
            wrong.append(f"{method} {route.template}: {response.status_code} {response.text[:80]}")
    assert not wrong, f"{len(wrong)} routes: {wrong[:30]}"
    assert len(cloud.requests) == before  # empty bodies: every inference request was refused at the door


def _not_served(gw: Gateway, method: str, path: str) -> str:
    response = _CLIENT.request(method, gw.url + path, json={} if method in ("POST", "PUT") else None, headers={"authorization": f"Bearer {MASTER}"})
    assert response.status_code == 501, (method, path, response.status_code, response.text[:200])
    assert response.headers.get("x-should-retry") == "false"
    message = _error_message(response, path)
    assert message.startswith(f"llm-router doesn't serve {method} {path}: ")
    # It names what llm-router does serve.
    assert "llm-router serves chat completions, completions, embeddings, responses, messages" in message, message
    return message


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/threads/x1"), ("POST", "/v1/threads/x1/runs"), ("POST", "/v1/assistants"),
                                              ("POST", "/threads")])
def test_an_assistants_or_threads_route_answers_that_llm_router_does_not_serve_the_assistants_api(setup, method, path):
    message = _not_served(setup[0], method, path)
    assert "OpenAI's Assistants API" in message and "database" not in message, message


def test_an_evals_route_answers_that_llm_router_does_not_serve_the_evals_api(setup):
    message = _not_served(setup[0], "POST", "/v1/evals")
    assert "OpenAI's Evals API" in message and "database" not in message, message


def test_put_on_openai_v1_responses_answers_that_it_is_a_provider_pass_through_and_where_responses_are_served(setup):
    message = _not_served(setup[0], "PUT", "/openai/v1/responses")
    assert "pass-through to a provider's own API" in message and "/v1/responses with POST" in message, message
    assert "database" not in message


def test_a_served_api_under_a_provider_prefix_answers_where_llm_router_serves_it(setup):
    message = _not_served(setup[0], "POST", "/openai/v1/responses")
    assert "llm-router serves it at /v1/responses" in message, message


def test_anthropics_message_batches_route_answers_in_anthropics_format_that_it_is_not_served(setup):
    message = _not_served(setup[0], "POST", "/v1/messages/batches")
    assert "Anthropic's Message Batches API" in message, message


def test_a_litellm_management_route_answers_that_it_needs_litellms_database(setup):
    message = _not_served(setup[0], "POST", "/key/generate")
    assert "management" in message and "database, which llm-router runs without" in message, message
