"""Tool calls in the three wire formats the fakes speak: OpenAI chat, OpenAI Responses, Anthropic Messages.

A fake offered tools answers with a call to the first one (arguments TOOL_ARGUMENTS) unless the
conversation's last turn is a tool's result; then it answers in text that quotes the result,
so a test can see a whole round trip.
"""

from __future__ import annotations

import json
import time
from typing import Any

try:
    from . import _common as wire
except ImportError:  # run as a script
    import _common as wire  # type: ignore[no-redef]

JSON = dict[str, Any]
TOOL_ARGUMENTS = {"city": "Paris"}


def _tool_names(tools: Any) -> list[str]:
    names = []
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict):
            name = (tool.get("function") or {}).get("name") if isinstance(tool.get("function"), dict) else tool.get("name")
            if isinstance(name, str):
                names.append(name)
    return names


# ---------------------------------------------------------------- what to do


def chat_tool_to_call(body: JSON) -> str | None:
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    names = _tool_names(body.get("tools"))
    last = messages[-1] if messages else {}
    return names[0] if names and not (isinstance(last, dict) and last.get("role") == "tool") else None


def chat_tool_result(body: JSON) -> str | None:
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    last = messages[-1] if messages else {}
    return wire.text_of(last.get("content")) if isinstance(last, dict) and last.get("role") == "tool" else None


def responses_tool_to_call(body: JSON) -> str | None:
    names = _tool_names(body.get("tools"))
    return names[0] if names and responses_tool_result(body) is None else None


def responses_tool_result(body: JSON) -> str | None:
    items = body.get("input") if isinstance(body.get("input"), list) else []
    last = items[-1] if items else {}
    if isinstance(last, dict) and last.get("type") == "function_call_output":
        return str(last.get("output"))
    return None


def messages_tool_to_call(body: JSON) -> str | None:
    names = _tool_names(body.get("tools"))
    return names[0] if names and messages_tool_result(body) is None else None


def messages_tool_result(body: JSON) -> str | None:
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    last = messages[-1] if messages else {}
    content = last.get("content") if isinstance(last, dict) else None
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            inner = block.get("content")
            return inner if isinstance(inner, str) else wire.text_of(inner)
    return None


# ------------------------------------------------------------- OpenAI chat


def chat_tool_call_completion(model: str, name: str, prompt: int) -> JSON:
    call = {"id": wire.new_id("call_"), "type": "function", "function": {"name": name, "arguments": json.dumps(TOOL_ARGUMENTS)}}
    return {
        "id": wire.new_id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                     "logprobs": None, "finish_reason": "tool_calls"}],
        "usage": wire.openai_usage(prompt, 5),
    }


def chat_tool_call_chunks(model: str, name: str) -> list[JSON]:
    base = {"id": wire.new_id("chatcmpl-"), "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    arguments = json.dumps(TOOL_ARGUMENTS)
    head = {"index": 0, "id": wire.new_id("call_"), "type": "function", "function": {"name": name, "arguments": ""}}
    deltas = [{"role": "assistant", "content": None, "tool_calls": [head]}]
    deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} for piece in wire.split_text(arguments)]
    chunks = [{**base, "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": None}]} for d in deltas]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}]})
    return chunks


# ---------------------------------------------------------------- Responses


def function_call_item(name: str, status: str = "completed") -> JSON:
    return {"type": "function_call", "id": wire.new_id("fc_"), "call_id": wire.new_id("call_"), "name": name,
            "arguments": json.dumps(TOOL_ARGUMENTS) if status == "completed" else "", "status": status}


def response_tool_call(model: str, name: str, input_tokens: int) -> JSON:
    return wire.response_object(wire.new_id("resp_"), model, "completed", [function_call_item(name)], input_tokens, 5)


def response_tool_call_events(model: str, name: str, input_tokens: int) -> list[tuple[str, JSON]]:
    response_id = wire.new_id("resp_")
    done = function_call_item(name)
    started = {**done, "arguments": "", "status": "in_progress"}
    events: list[tuple[str, JSON]] = [
        ("response.created", {"response": wire.response_object(response_id, model, "in_progress", [], input_tokens, 0)}),
        ("response.output_item.added", {"output_index": 0, "item": started}),
    ]
    events += [("response.function_call_arguments.delta", {"item_id": done["id"], "output_index": 0, "delta": piece})
               for piece in wire.split_text(done["arguments"])]
    events += [
        ("response.function_call_arguments.done", {"item_id": done["id"], "output_index": 0, "arguments": done["arguments"]}),
        ("response.output_item.done", {"output_index": 0, "item": done}),
        ("response.completed", {"response": wire.response_object(response_id, model, "completed", [done], input_tokens, 5)}),
    ]
    return [(event, {"type": event, "sequence_number": n, **data}) for n, (event, data) in enumerate(events)]


# ---------------------------------------------------------------- Anthropic


def anthropic_tool_use(model: str, name: str, input_tokens: int) -> JSON:
    return {"id": wire.new_id("msg_"), "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "tool_use", "id": wire.new_id("toolu_"), "name": name, "input": TOOL_ARGUMENTS}],
            "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": input_tokens, "output_tokens": 5}}


def anthropic_tool_use_events(model: str, name: str, input_tokens: int) -> list[tuple[str, JSON]]:
    start = anthropic_tool_use(model, name, input_tokens)
    block = {**start["content"][0], "input": {}}
    start.update(content=[], stop_reason=None)
    events: list[tuple[str, JSON]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
    ]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}})
               for piece in wire.split_text(json.dumps(TOOL_ARGUMENTS))]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 5}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events
