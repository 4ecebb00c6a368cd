"""Multi-turn agent conversations for judging conversation affinity: built from a seed, no downloads.

Each conversation is a list of request bodies for `model: auto`, one per turn, each resending the
whole history as agents do (the assistant's replies included), on chat completions, the
Responses API or Anthropic's Messages API. Three kinds:

- **complex opening**: a task LiteLLM's complexity scorer rates COMPLEX or REASONING, then
  several short follow-ups ("thanks", "now rename x to y", "run the tests again"), each of
  which alone rates below that;
- **escalates late**: a simple opening and simple follow-ups, then a turn that escalates (a
  complex question, a pasted log or file longer than `max_chars`, or an image), then short
  follow-ups;
- **stays simple**: a simple opening and simple follow-ups.

Most conversations are keyed by their content (system prompt and first user turn, each first
turn unique to its conversation); some carry a client's session identity (`x-session-id`,
`prompt_cache_key`, Anthropic's `metadata.user_id`). System prompts are short: an agent's
several-KB system prompt is longer than `max_chars`, which routes every turn complex by length
alone and leaves affinity nothing to decide. `tests/test_affinity_corpus.py` checks with the
scorer that each opening, question and follow-up rates as its kind says.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field
from typing import Any

from bench.corpus import _CODE, _LOGS, _filled, _log_uniform

SEED = 22
SIZE = 360
SHAPES = ("chat", "responses", "messages")
KINDS = ("complex opening", "escalates late", "stays simple")
_KIND_WEIGHTS = (50, 30, 20)
ESCALATIONS = ("question", "paste", "image")
MAX_CHARS = 2000
"""The bench config's routing.complexity.max_chars: a pasted escalation is longer than this."""

# LiteLLM's scorer rates each of these COMPLEX or REASONING on its first 128 characters (the part the
# decision scores), with the context line the corpus appends.
COMPLEX_ASKS = (
    "Design a scalable distributed architecture: analyze the algorithm, prove correctness, optimize performance, and compare trade-offs",
    "Think step by step: analyze why the distributed cache loses writes under concurrency, then design and implement a fix with tests.",
    "Debug this race condition: analyze the threading model, explain the root cause step by step, and optimize the lock contention.",
    "Evaluate three database schemas for the event store, analyze query performance and scalability, and conclude which one to implement.",
    "Explain how TLS encryption and authentication work in the handshake, then implement certificate pinning in our API client.",
    "Think step by step: design a distributed rate limiter for our API gateway, analyze its consistency trade-offs, and implement it.",
    "Analyze step by step why the Kubernetes deployment fails its readiness probe, then debug the async database pool and optimize it.",
    "Evaluate whether to shard the Postgres database or add read replicas: analyze throughput, latency and consistency, and conclude.",
    "Think carefully: refactor the async job scheduler to avoid deadlocks, explain your reasoning, and prove the fix with a concurrency test.",
    "Design a scalable event-driven architecture for order processing, analyze the algorithm for exactly-once delivery, and implement it.",
    "Debug the memory leak in the GPU inference server: analyze the allocator, explain the root cause step by step, and optimize throughput.",
    "Compare the trade-offs of gRPC and websocket for our real-time protocol, analyze latency under load, and conclude which to implement.",
    "Step by step, analyze the encryption of our authentication tokens, evaluate the security trade-offs, and refactor the API middleware.",
    "Investigate why the distributed transaction deadlocks: analyze the database locks step by step, then design and implement a fix.",
    "Reason through the caching architecture: analyze cache invalidation for the microservice, evaluate trade-offs, and implement it in Python.",
    "Let's think step by step about the algorithm: optimize the graph traversal for latency, analyze its complexity, and refactor the code.",
    "Evaluate the architecture of our authentication service, analyze the database schema for scalability, and conclude with a migration plan.",
    "Think step by step: the async API returns stale data under concurrency; debug the cache, explain why, and implement a correct fix.",
    "Design and implement a lock-free queue in Rust, prove correctness of the algorithm, analyze memory ordering, and benchmark throughput.",
    "Analyze this distributed system's failure modes, evaluate the retry algorithm and backoff trade-offs, and implement idempotent handlers.",
    "Explain your reasoning step by step: why does the Kubernetes autoscaler oscillate, and how should we redesign the scaling algorithm?",
    "Compare and contrast three queue architectures for the payment pipeline, analyze latency and throughput, and conclude which to deploy.",
    "Optimize the SQL query planner for the reporting database: analyze the indexes, explain the algorithm step by step, and refactor the queries.",
)
_SIMPLE_OPENINGS = (
    "Add a docstring to {func}.", "Rename the variable {a} to {b} in {path}.", "Fix the typo in the README.", "hi",
    "What does {func} do?", "Bump the version to 0.{n}.0.", "Add {a} to .gitignore.", "Format {path} with the project's formatter.",
    "Sort the imports in {path}.", "Write a commit message for the staged changes.", "Remove the unused import in {path}.",
    "What's in {path}?", "Change the log level in {path} to debug.", "Add a blank line at the end of {path}.",
)
_FOLLOW_UPS = (
    "thanks", "thanks!", "ok, do it", "yes", "please continue", "looks good, commit it", "run the tests again", "and add a test",
    "fix the lint errors", "rerun it with verbose output", "can you make it shorter?", "revert that last change", "push it",
    "now rename {a} to {b}", "now rename {func} to {func2} everywhere", "run the tests in tests/test_{name}.py again",
    "add a test for {func}", "what about the edge case where the list is empty?", "also update the docstring of {func}",
    "use {a} instead of {b} there", "show me the diff", "undo the change to {path}", "great, now the same for {path}",
)
_PASTE_ASKS = ("the build fails, here's the log:", "here is the file:", "CI is red again:", "this is what I get:")
_IMAGE_ASKS = ("what's wrong in this screenshot?", "the layout looks off, see:", "here's the error dialog:")
_REPLIES = (
    "Done.", "Done: renamed `{a}` to `{b}` in {n} files.", "The tests pass ({n} passed).", "I updated {path}.",
    "Committed as `{commit}`.", "Fixed {n} lint errors in {path}.", "Here is the change:",
)
_SYSTEMS = ("You are a coding agent. Be concise.", "You are a helpful assistant working in the user's repository.",
            "Answer briefly; run the tests before saying they pass.")
_NAMES = ("order", "user", "invoice", "session", "report", "item", "config", "payload", "record", "batch", "event", "token")
_PROJECTS = ("billing", "gateway", "scheduler", "webapp", "ingest", "search", "auth", "reports")


@dataclass(frozen=True)
class AgentConversation:
    kind: str
    shape: str
    """chat, responses or messages (router_plugins.conversation.Shape's values)."""
    key_from: str
    """content, x-session-id, prompt_cache_key or metadata.user_id."""
    turns: tuple[dict[str, Any], ...]
    """One request body per turn, each with the whole history."""
    headers: dict[str, str] = field(default_factory=dict)
    escalation: str | None = None
    """For `escalates late`: question, paste or image."""
    escalates_at: int | None = None
    """The index of the turn that escalates (0 for a complex opening)."""
    user_texts: tuple[str, ...] = ()
    """Each turn's own user text (what the scorer rates), for the checks."""


def conversations(size: int = SIZE, seed: int = SEED) -> list[AgentConversation]:
    """`size` conversations, the same for the same seed."""
    rng = random.Random(seed)
    return [_conversation(rng, i) for i in range(size)]


def _conversation(rng: random.Random, index: int) -> AgentConversation:
    kind = rng.choices(KINDS, _KIND_WEIGHTS)[0]
    shape = SHAPES[index % len(SHAPES)]
    context = f"\n\n(repo {rng.choice(_PROJECTS)}-{index}, ticket T-{1000 + index})"
    turns: list[tuple[str, Any]] = []  # (user text, content: the text or parts with an image)
    escalation, escalates_at = None, None
    if kind == "complex opening":
        turns.append(_text(rng.choice(COMPLEX_ASKS) + context))
        escalates_at = 0
        turns += [_text(_fill(rng, rng.choice(_FOLLOW_UPS))) for _ in range(rng.randint(3, 8))]
    else:
        turns.append(_text(_fill(rng, rng.choice(_SIMPLE_OPENINGS)) + context))
        if kind == "escalates late":
            turns += [_text(_fill(rng, rng.choice(_FOLLOW_UPS))) for _ in range(rng.randint(1, 3))]
            escalation, escalates_at = rng.choice(ESCALATIONS), len(turns)
            turns.append(_escalation(rng, escalation))
            turns += [_text(_fill(rng, rng.choice(_FOLLOW_UPS))) for _ in range(rng.randint(2, 5))]
        else:
            turns += [_text(_fill(rng, rng.choice(_FOLLOW_UPS))) for _ in range(rng.randint(2, 6))]
    short_replies = kind == "stays simple"
    replies = [_reply(rng, short_replies) for _ in turns]
    system = rng.choice(_SYSTEMS) if rng.random() < 0.6 else None
    key_from, identity = _identity(rng, shape, index)
    bodies = tuple(_body(shape, system, turns[: i + 1], replies[:i], key_from, identity) for i in range(len(turns)))
    headers = {"x-session-id": identity} if key_from == "x-session-id" and identity else {}
    return AgentConversation(kind, shape, key_from, bodies, headers, escalation, escalates_at, tuple(text for text, _ in turns))


def _text(text: str) -> tuple[str, Any]:
    return text, text


def _escalation(rng: random.Random, escalation: str) -> tuple[str, Any]:
    if escalation == "question":
        return _text(rng.choice(COMPLEX_ASKS))
    if escalation == "paste":
        pieces = _LOGS if rng.random() < 0.6 else _CODE
        paste = _filled(rng, lambda r: r.choice(pieces)(r), _log_uniform(rng, MAX_CHARS + 500, 20_000))
        return _text(f"{rng.choice(_PASTE_ASKS)}\n\n```\n{paste}\n```")
    ask = rng.choice(_IMAGE_ASKS)
    return ask, {"text": ask, "image": base64.b64encode(rng.randbytes(_log_uniform(rng, 200, 20_000))).decode()}


def _fill(rng: random.Random, template: str) -> str:
    a, b = rng.sample(_NAMES, 2)
    return template.format(a=a, b=b, func=f"load_{a}", func2=f"fetch_{a}", name=b, path=f"src/{b}.py", n=rng.randint(1, 12),
                           commit=f"{rng.getrandbits(28):07x}")


def _reply(rng: random.Random, short: bool) -> str:
    text = _fill(rng, rng.choice(_REPLIES))
    if not short and rng.random() < 0.5:
        text += "\n\n```\n" + _filled(rng, lambda r: r.choice(_CODE)(r), _log_uniform(rng, 60, 600)) + "```"
    return text


def _identity(rng: random.Random, shape: str, index: int) -> tuple[str, str | None]:
    """Where the conversation's key comes from, and the session identity the client sends (None: its content)."""
    if rng.random() < 0.7:
        return "content", None
    session = f"session-{index}-{rng.getrandbits(32):08x}"
    if rng.random() < 0.4:
        return "x-session-id", session
    if shape == "messages":
        return "metadata.user_id", json.dumps({"device_id": "bench", "session_id": session})
    return "prompt_cache_key", session


def _body(shape: str, system: str | None, turns: list[tuple[str, Any]], replies: list[str], key_from: str,
          identity: str | None) -> dict[str, Any]:
    history: list[dict[str, Any]] = []
    for i, (_, content) in enumerate(turns):
        if i:
            history.append(_assistant(shape, replies[i - 1]))
        history.append({"role": "user", "content": _user_content(shape, content)})
    if shape == "chat":
        body: dict[str, Any] = {"model": "auto", "messages": ([{"role": "system", "content": system}] if system else []) + history}
    elif shape == "responses":
        body = {"model": "auto", "input": history, **({"instructions": system} if system else {})}
    else:
        body = {"model": "auto", "max_tokens": 1024, "messages": history, **({"system": system} if system else {})}
    if key_from == "metadata.user_id":
        body["metadata"] = {"user_id": identity}
    elif key_from == "prompt_cache_key":
        body["prompt_cache_key"] = identity
    return body


def _assistant(shape: str, reply: str) -> dict[str, Any]:
    if shape == "chat":
        return {"role": "assistant", "content": reply}
    if shape == "responses":
        return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": reply}]}
    return {"role": "assistant", "content": [{"type": "text", "text": reply}]}


def _user_content(shape: str, content: Any) -> Any:
    if isinstance(content, str):
        return content
    text, data = content["text"], content["image"]
    if shape == "chat":
        return [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}]
    if shape == "responses":
        return [{"type": "input_text", "text": text}, {"type": "input_image", "image_url": f"data:image/png;base64,{data}"}]
    return [{"type": "text", "text": text}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}]
