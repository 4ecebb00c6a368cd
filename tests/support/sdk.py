"""How many HTTP requests the API's own SDK sends for one call, with its default retries on."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai


def sdk_http_requests(base_url: str, path: str, body: dict[str, Any]) -> int:
    """Send `body` once through the SDK of `path`'s API (OpenAI's or Anthropic's, default retries)
    and count the HTTP requests it made, whatever the answer."""
    sent: list[object] = []
    # Each SDK takes only a client of the HTTP package it is built on (Anthropic's: httpx2).
    http = (anthropic.DefaultHttpxClient if path == "/v1/messages" else httpx.Client)(event_hooks={"request": [sent.append]})
    try:
        if path == "/v1/messages":
            anthropic.Anthropic(base_url=base_url, api_key="unused", http_client=http).messages.create(**body)
        elif path == "/v1/responses":
            openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", http_client=http).responses.create(**body)
        else:
            openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", http_client=http).chat.completions.create(**body)
    except (openai.APIStatusError, anthropic.APIStatusError):
        pass
    finally:
        http.close()
    return len(sent)
