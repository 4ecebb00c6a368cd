"""The output a request reserves, fitted to the context window of the local model that serves it.

vLLM refuses a request whose input plus reserved output (`max_tokens`, `max_completion_tokens`,
`max_output_tokens`) exceeds its `max_model_len`: `400 max_tokens=4096 cannot be greater than
max_model_len=2048`. The Messages API requires `max_tokens`, and real clients send large ones
(4,096 from SDK defaults, 32,000 from coding agents), so nearly every Anthropic client would be
refused by a small local model for a short prompt. `max_tokens` is only an upper bound on the
answer, so the gateway lowers it to what the window leaves after the input, and only when the
input alone can't fit does the request go on to the next group.

The input is measured as an upper bound, so that a lowered request can't still overflow:
- every string of the prompt (messages, system, input, instructions, tools and tool calls; not
  inline images or files, whose token cost only the model's processor knows) plus a few tokens of
  chat-template framing per item;
- a UTF-8 byte is at most one token for byte-level BPE tokenizers (Qwen's, SmolLM2's, GPT's), so
  when the bytes fit, nothing is counted;
- otherwise LiteLLM's token counter counts the text, with a margin for the model's own tokenizer,
  which can split text into more pieces than the counter's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import litellm

OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
"""Chat completions (both names), Messages, and the Responses API."""
_PROMPT_FIELDS = ("messages", "system", "input", "instructions", "tools")
_FRAMING_TOKENS_PER_ITEM = 8
"""An upper bound on what a chat template adds around one message, part or tool (role markers, separators)."""
_FRAMING_TOKENS_PER_REQUEST = 16
"""And around the whole prompt: a bare string input's user turn, the start of the answer."""
TOKENIZER_MARGIN = 1.25
"""How many more tokens than LiteLLM's counter a local model's tokenizer may need for the same text."""
MIN_OUTPUT_TOKENS = 16
"""Below this, an answer is too short to be worth serving: the input is taken not to fit."""
_INLINE_PREFIX = "data:"


@dataclass(frozen=True)
class OutputBudget:
    window: int
    """The serving model's context window: input and output together."""
    input_tokens: int
    """An upper bound on the request's input, in tokens."""
    requested: int
    """The output the request reserved."""

    @property
    def granted(self) -> int:
        """The output the request gets: what it asked for, or what the window leaves after its input."""
        return max(0, min(self.requested, self.window - self.input_tokens))

    @property
    def fits(self) -> bool:
        return self.granted >= min(self.requested, MIN_OUTPUT_TOKENS)

    @property
    def lowered(self) -> bool:
        return self.fits and self.granted < self.requested

    def why_not(self) -> str:
        return f"the input (up to {self.input_tokens} tokens) leaves no room for an answer in its {self.window}-token window"

    def as_json(self) -> dict[str, Any]:
        return {"window": self.window, "input_tokens_at_most": self.input_tokens, "requested": self.requested, "granted": self.granted}


def reserved_output(body: dict[str, Any]) -> int | None:
    """The largest output the request reserves in any of its API's fields, or None."""
    values = [v for f in OUTPUT_FIELDS if isinstance(v := body.get(f), int) and not isinstance(v, bool)]
    return max(values) if values else None


def fit(body: dict[str, Any], window: int | None, count_model: str) -> OutputBudget | None:
    """The request's output budget in a model with this window; None when it reserves none or the window is unknown."""
    if window is None:
        return None
    requested = reserved_output(body)
    if requested is None:
        return None
    pieces: list[str] = []
    items = _collect([body.get(f) for f in _PROMPT_FIELDS], pieces)
    text = " ".join(pieces)
    framing = _FRAMING_TOKENS_PER_REQUEST + _FRAMING_TOKENS_PER_ITEM * items
    by_bytes = len(text.encode("utf-8", "surrogatepass")) + framing
    if by_bytes + requested <= window:
        return OutputBudget(window, by_bytes, requested)
    counted = math.ceil(litellm.token_counter(model=count_model, text=text) * TOKENIZER_MARGIN) + framing if text else framing
    return OutputBudget(window, min(by_bytes, counted), requested)


def lower(body: dict[str, Any], budget: OutputBudget) -> None:
    """Set every output field the request gave to the granted budget."""
    for name in OUTPUT_FIELDS:
        if isinstance(body.get(name), int):
            body[name] = min(body[name], budget.granted)


def _collect(value: Any, pieces: list[str]) -> int:
    """Append the prompt's strings (keys too: a template renders tool schemas whole) to `pieces`; the number of items."""
    if isinstance(value, str):
        if not value.startswith(_INLINE_PREFIX):
            pieces.append(value)
        return 0
    if isinstance(value, list):
        return sum(_collect(v, pieces) for v in value)
    if isinstance(value, dict):
        pieces.extend(k for k in value if isinstance(k, str))
        return 1 + sum(_collect(v, pieces) for v in value.values())
    if value is not None:
        pieces.append(str(value))
    return 0
