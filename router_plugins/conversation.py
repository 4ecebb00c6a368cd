"""What content routing reads from a request, in each API's own shapes: text, images, tools.

- Chat completions: `messages`, content as a string or parts (`text`, `image_url`, `file`...).
- Responses: `instructions`, and `input` as a string or items (messages whose content holds
  `input_text`/`output_text`, `input_image`, `input_file`; `function_call_output` items).
- Messages: `system` (a string or blocks), and `messages` whose content holds `text`, `image`,
  `document`, `tool_use` and `tool_result` blocks (a tool result may hold images too).

Nothing is decoded or fetched: an image counts the same whatever its size. Any JSON value is
accepted; what doesn't fit a shape is skipped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Shape(str, enum.Enum):
    CHAT = "chat"
    RESPONSES = "responses"
    MESSAGES = "messages"


_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})


@dataclass(frozen=True)
class Conversation:
    turns: tuple[tuple[str, str], ...]
    """(role, text) per turn, the system prompt included."""
    images: int
    last_user_text: str
    wants_tools: bool
    """The request offers tools: only a model that can call them may serve it."""

    @property
    def chars(self) -> int:
        return sum(len(text) for _, text in self.turns)

    def utf8_size(self) -> int:
        return sum(len(text.encode("utf-8", "surrogatepass")) for _, text in self.turns)


def read(body: dict[str, Any], shape: Shape) -> Conversation:
    reader = _Reader()
    if shape is Shape.CHAT:
        for message in _items(body.get("messages")):
            reader.turn(_role(message), message.get("content") if isinstance(message, dict) else None)
    elif shape is Shape.RESPONSES:
        reader.turn("system", body.get("instructions"))
        value = body.get("input")
        if isinstance(value, str):
            reader.turn("user", value)
        for item in _items(value):
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                reader.turn("tool", item.get("output"))
            elif isinstance(item, dict):
                reader.turn(_role(item), item.get("content"))
    else:
        reader.turn("system", body.get("system"))
        for message in _items(body.get("messages")):
            reader.turn(_role(message), message.get("content") if isinstance(message, dict) else None)
    return Conversation(tuple(reader.turns), reader.images, reader.last_user_text, offers_tools(body, shape))


def offers_tools(body: dict[str, Any], shape: Shape) -> bool:
    tools = body.get("tools") or (body.get("functions") if shape is Shape.CHAT else None)
    return isinstance(tools, list) and bool(tools)


class _Reader:
    def __init__(self) -> None:
        self.turns: list[tuple[str, str]] = []
        self.images = 0
        self.last_user_text = ""

    def turn(self, role: str, content: Any) -> None:
        texts: list[str] = []
        self._collect(content, texts)
        if not texts and content is None:
            return
        text = "".join(texts)
        self.turns.append((role, text))
        if role == "user":
            self.last_user_text = text

    def _collect(self, content: Any, texts: list[str], depth: int = 0) -> None:
        if isinstance(content, str):
            texts.append(content)
            return
        if depth > 2:
            return
        for part in _items(content):
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if not isinstance(kind, str):
                continue
            if kind in _IMAGE_PARTS:
                self.images += 1
            elif kind in _TEXT_PARTS and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "tool_result":
                self._collect(part.get("content"), texts, depth + 1)
            elif kind == "document" and isinstance(part.get("source"), dict) and isinstance(part["source"].get("data"), str) \
                    and part["source"].get("type") == "text":
                texts.append(part["source"]["data"])


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _role(message: Any) -> str:
    role = message.get("role") if isinstance(message, dict) else None
    return role if isinstance(role, str) else "user"
