"""Reading a raw answer, a JSON body or an SSE stream in any of the three APIs, as a client would."""

from __future__ import annotations

import json
from typing import Any


def is_complete(answer: str) -> bool:
    """Whether an answer is whole: a JSON body with the model's output, or a stream that reached its last event."""
    if any(end in answer for end in ("data: [DONE]", "event: message_stop", "event: response.completed")):
        return True
    try:
        body = json.loads(answer)
    except ValueError:
        return False
    return isinstance(body, dict) and bool(body.get("choices") or body.get("content") or body.get("output"))


def errors_in(answer: str) -> list[Any]:
    """The error objects in an answer (OpenAI's, Anthropic's, or a failed Responses stream's)."""
    payloads = [line.removeprefix("data:").strip() for line in answer.splitlines() if line.startswith("data:")] or [answer]
    found = []
    for payload in payloads:
        try:
            event = json.loads(payload)
        except ValueError:
            continue  # "[DONE]"
        if isinstance(event, dict) and (event.get("error") or event.get("type") in ("error", "response.failed")):
            found.append(event)
    return found
