"""The gateway connects only to the hosts its config names: with the shipped config and only
OPENAI_BASE_URL / ANTHROPIC_BASE_URL pointing at the fakes, nothing on any route tries another host.

The gateway runs under strace, which records every connect() of it and of every process it starts
(local model servers included). Every route LiteLLM mounts is called with the master key, and
each inference API once with a body that reaches a backend. Any connection to a non-loopback
address, or a DNS query (port 53, which would precede one), is egress the config didn't name.
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.configs import shipped_config_copy
from tests.support.gateway import Gateway
from tests.support.litellm_routes import mounted_routes

pytestmark = pytest.mark.slow

MASTER = "sk-master-SENTINEL-egress-0001"
HI = [{"role": "user", "content": "hi"}]
_INET = re.compile(r'connect\(\d+, \{sa_family=AF_INET6?, sin6?_port=htons\((\d+)\), (?:sin_addr=inet_addr\("([^"]+)"\)|.*?inet_pton\(AF_INET6, "([^"]+)")')
_UDP_DNS = re.compile(r"sendto\(.*htons\(53\)")

IMAGE_URL_PART = {"type": "image_url", "image_url": {"url": "https://images.example.com/cat.png"}}
VALID = [
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": HI}),
    ("/v1/chat/completions", {"model": "claude-sonnet", "messages": HI, "stream": True}),
    ("/v1/completions", {"model": "gpt-4o", "prompt": "hi"}),
    ("/v1/embeddings", {"model": "gpt-4o", "input": "hi"}),
    ("/v1/responses", {"model": "gpt-4o", "input": "hi"}),
    ("/v1/messages", {"model": "claude-sonnet", "max_tokens": 5, "messages": HI}),
    ("/v1/messages/count_tokens", {"model": "claude-sonnet", "messages": HI}),
    ("/v1/batches", {"input_file_id": "file-1", "endpoint": "/v1/chat/completions", "completion_window": "24h"}),
    # Media by URL: passed to the (fake) provider as a URL, never fetched here.
    ("/v1/chat/completions", {"model": "auto", "messages": [{"role": "user", "content": [IMAGE_URL_PART]}]}),
    ("/v1/chat/completions", {"model": "claude-sonnet", "messages": [{"role": "user", "content": [IMAGE_URL_PART]}]}),
    ("/v1/messages", {"model": "claude-sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://images.example.com/cat.png"}}]}]}),
]


def _egress(trace: str) -> list[str]:
    found = []
    for line in trace.splitlines():
        match = _INET.search(line)
        if match:
            port, v4, v6 = match.groups()
            address = v4 or v6
            if port == "53" or not (address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")):
                found.append(line.strip())
        elif _UDP_DNS.search(line):
            found.append(line.strip())
    return found


def test_no_route_reaches_a_host_the_config_does_not_name(tmp_path, cloud):
    config = shipped_config_copy(tmp_path, link_cpu_weights=False)
    trace = tmp_path / "connect.trace"
    env = {"LLM_ROUTER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-test-egress-0001", "ANTHROPIC_API_KEY": "sk-ant-test-egress-0001",
           "OPENAI_BASE_URL": f"{cloud.url}/v1", "ANTHROPIC_BASE_URL": cloud.url}
    wrapper = ("strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=connect,sendto", "-o", str(trace))
    with Gateway(config, env, wrapper=wrapper) as gw, httpx.Client(timeout=60, headers={"authorization": f"Bearer {MASTER}"}) as client:
        before = len(cloud.requests)
        for path, body in VALID:
            response = client.post(gw.url + path, json=body)
            assert response.status_code < 500 or path == "/v1/batches", (path, response.status_code, response.text[:300])
        assert len(cloud.requests) >= before + 9  # the answers came from the fakes
        for route in mounted_routes():
            for method in route.methods if route.kind == "http" else ("GET",):
                with client.stream(method, gw.url + route.sample_path(), json={} if method in ("POST", "PUT", "PATCH") else None):
                    pass
    egress = _egress(trace.read_text())
    assert not egress, egress[:20]
