"""The request paths under test: where a chat completion goes, with which model and key."""

from __future__ import annotations

import json
from dataclasses import dataclass

PROMPT = "Say hello to the benchmark."


@dataclass(frozen=True)
class RequestPath:
    key: str
    """a: direct, b: stock LiteLLM, c: llm-router explicit, d: llm-router auto, e: llm-router --workers 2,
    f: LiteLLM under `llm-router serve` without our plugins (latency only)."""
    label: str
    base_url: str
    model: str
    api_key: str | None = None
    process: str = ""
    """Name of the bench process that serves it (for counting requests per gateway)."""

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/v1/chat/completions"

    @property
    def headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        return headers

    def body(self, stream: bool = False) -> bytes:
        return chat_body(self.model, stream)


def chat_body(model: str, stream: bool = False, content: str = PROMPT, max_tokens: int = 16) -> bytes:
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def first_token_seen(line: str) -> bool:
    """True for an SSE data line carrying non-empty content (the first token)."""
    if not line.startswith("data:"):
        return False
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return False
    try:
        choices = json.loads(data).get("choices") or []
    except ValueError:
        return False
    return any((c.get("delta") or {}).get("content") for c in choices if isinstance(c, dict))
