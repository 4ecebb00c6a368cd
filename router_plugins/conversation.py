"""What content routing reads from a request, in each API's own shapes: text, images, tools.

- Chat completions: `messages`, content as a string or parts (`text`, `image_url`, `file`...).
- Responses: `instructions`, and `input` as a string or items (messages whose content holds
  `input_text`/`output_text`, `input_image`, `input_file`; `function_call_output` items).
- Messages: `system` (a string or blocks), and `messages` whose content holds `text`, `image`,
  `document`, `tool_use` and `tool_result` blocks (a tool result may hold images too).

Nothing is decoded or fetched: an image counts the same whatever its size. What is noted is
whether any image or file is given by URL rather than inline: whoever serves the request would
fetch it, which a local server must not do unless its spec allows it. Files (chat `file`
parts, Responses `input_file`, Messages `document` blocks with a base64, URL or file source,
PDFs mostly) are neither images nor text we can read without decoding them, so they give no
signal: they never send a request to vision and add nothing to its length. A `document` whose
source is plain text (`text`, or `content` blocks) is read like any text. Any JSON value is
accepted; what doesn't fit a shape is skipped.

**The user's own words** are what the difficulty score reads: the text of user turns, less tool
results (Messages `tool_result` blocks) and less the context a client wraps in a tag of its own
and sends as a user turn or text part of one (Claude Code's `<system-reminder>...</system-reminder>`,
Codex's `<environment_context>...</environment_context>`): what a person typed, not what an agent
attached.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any


class Shape(str, enum.Enum):
    CHAT = "chat"
    RESPONSES = "responses"
    MESSAGES = "messages"


_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
_OPENING_TAG = re.compile(r"<([A-Za-z][\w.:-]{0,63})[\s>/]")


@dataclass(frozen=True)
class Conversation:
    turns: tuple[tuple[str, str], ...]
    """(role, text) per turn, the system prompt included."""
    images: int
    last_user_text: str
    wants_tools: bool
    """The request offers tools: only a model that can call them may serve it."""
    remote_media: bool = False
    """An image or file is given by URL: whoever serves the request fetches it."""
    first_user_words: str = ""
    last_user_words: str = ""
    """The user's own words in the first and the last user turn that has any (see the module's docstring)."""
    user_word_turns: int = 0
    """How many user turns have words of the user's own."""

    @property
    def chars(self) -> int:
        return sum(len(text) for _, text in self.turns)

    @property
    def user_chars(self) -> int:
        """The length of the user's words: the last turn's, and the first one's where that is another turn."""
        if self.user_word_turns <= 1:
            return len(self.last_user_words)
        return len(self.first_user_words) + len(self.last_user_words)

    def user_words(self, limit: int) -> str:
        """What the difficulty score reads, at most `limit` characters: the last turn's words, after the first's
        where that is another turn (each whole where both fit, else at most half the room for the first)."""
        if self.user_word_turns <= 1:
            return self.last_user_words[:limit]
        first = self.first_user_words[:max(limit // 2, limit - 1 - len(self.last_user_words))]
        return first + "\n" + self.last_user_words[:limit - 1 - len(first)]

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
    return Conversation(tuple(reader.turns), reader.images, reader.last_user_text, offers_tools(body, shape), reader.remote_media,
                        reader.first_user_words, reader.last_user_words, reader.user_word_turns)


def guess_shape(body: dict[str, Any]) -> Shape:
    """The API a request body is written for: `input` is the Responses API's; a top-level `system` or
    Anthropic content blocks are the Messages API's; anything else is chat completions."""
    if "input" in body or "instructions" in body:
        return Shape.RESPONSES
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    blocks = [p for m in messages if isinstance(m, dict) and isinstance(m.get("content"), list) for p in m["content"]]
    if "system" in body or any(isinstance(p, dict) and isinstance(p.get("type"), str) and p["type"] in _ANTHROPIC_BLOCKS for p in blocks):
        return Shape.MESSAGES
    return Shape.CHAT


_ANTHROPIC_BLOCKS = frozenset({"image", "document", "tool_use", "tool_result"})


def offers_tools(body: dict[str, Any], shape: Shape) -> bool:
    tools = body.get("tools") or (body.get("functions") if shape is Shape.CHAT else None)
    return isinstance(tools, list) and bool(tools)


class _Reader:
    def __init__(self) -> None:
        self.turns: list[tuple[str, str]] = []
        self.images = 0
        self.last_user_text = ""
        self.remote_media = False
        self.first_user_words = ""
        self.last_user_words = ""
        self.user_word_turns = 0

    def turn(self, role: str, content: Any) -> None:
        texts: list[str] = []
        words: list[str] | None = [] if role == "user" else None
        self._collect(content, texts, words=words)
        if not texts and content is None:
            return
        text = "".join(texts)
        self.turns.append((role, text))
        if role == "user":
            self.last_user_text = text
            if words:
                self.last_user_words = "\n".join(words)
                self.user_word_turns += 1
                if self.user_word_turns == 1:
                    self.first_user_words = self.last_user_words

    def _collect(self, content: Any, texts: list[str], depth: int = 0, words: list[str] | None = None) -> None:
        """Append the text of `content` to `texts`, and what of it is the user's own words to `words` (when given)."""
        if isinstance(content, str):
            texts.append(content)
            if words is not None and not _client_context(content):
                words.append(content)
            return
        if depth > 2:
            return
        for part in _items(content):
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if not isinstance(kind, str):
                continue
            self.remote_media = self.remote_media or _by_url(part)
            if kind in _IMAGE_PARTS:
                self.images += 1
            elif kind in _TEXT_PARTS and isinstance(part.get("text"), str):
                texts.append(part["text"])
                if words is not None and not _client_context(part["text"]):
                    words.append(part["text"])
            elif kind == "tool_result":
                self._collect(part.get("content"), texts, depth + 1)
            elif kind == "document" and isinstance(part.get("source"), dict):
                source = part["source"]
                if source.get("type") == "text" and isinstance(source.get("data"), str):
                    texts.append(source["data"])
                elif source.get("type") == "content":
                    self._collect(source.get("content"), texts, depth + 1)


def _client_context(text: str) -> bool:
    """Whether a text is context a client wrapped in a tag of its own (`<name ...>...</name>`), not typed words.

    Looks only at the ends: a pasted megabyte costs the same as a line."""
    head = text[:80].lstrip()
    if not head.startswith("<"):
        return False
    opening = _OPENING_TAG.match(head)
    return opening is not None and text[-200:].rstrip().endswith(f"</{opening.group(1)}>")


def _by_url(part: dict[str, Any]) -> bool:
    """Whether a content part names its image or file by a remote URL (rather than inline data or an id)."""
    image = part.get("image_url")
    file = part.get("file")
    source = part.get("source")
    candidates = (
        image.get("url") if isinstance(image, dict) else image,
        part.get("file_url"),
        file.get("file_url") if isinstance(file, dict) else None,
        source.get("url") if isinstance(source, dict) and source.get("type") == "url" else None,
    )
    # Only the scheme is lowered: an inline image is a data URL of megabytes.
    return any(isinstance(url, str) and url[:8].lower().startswith(("https://", "http://")) for url in candidates)


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _role(message: Any) -> str:
    role = message.get("role") if isinstance(message, dict) else None
    return role if isinstance(role, str) else "user"
