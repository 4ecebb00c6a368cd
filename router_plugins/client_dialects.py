"""What real clients send beyond an API's published shape, rewritten at the door into the shape every backend takes.

Each rule comes from recorded traffic (tests/clients/corpus/), not from a schema:

- **System turns inside Messages `messages`.** Claude Code (2.1.x), for a model name it doesn't
  know (`auto`, a local model's), sends a `{"role": "system", ...}` entry among the turns, besides
  the top-level `system`. Anthropic's newer API versions take it as part of the system prompt; the
  published shape, LiteLLM's translation to OpenAI-style backends and older upstreams don't. The
  door folds each such turn, in order, into the top-level `system`, so every backend gets the
  same, valid request.
"""

from __future__ import annotations

from typing import Any

from router_plugins.errors import invalid


def fold_system_turns(body: dict[str, Any]) -> bool:
    """Move Messages `system` turns into the top-level `system` (as text blocks, after its own); whether any moved.

    The body has passed the door's checks, so each system turn's content is a string or text blocks."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not any(_is_system(m) for m in messages):
        return False
    turns = [m for m in messages if not _is_system(m)]
    if not turns:
        raise invalid("'messages' must hold at least one user or assistant turn besides system turns.", "messages")
    body["system"] = [*_blocks(body.get("system")), *(b for m in messages if _is_system(m) for b in _blocks(m.get("content")))]
    body["messages"] = turns
    return True


def _is_system(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "system"


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content) if isinstance(content, list) else []
