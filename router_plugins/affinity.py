"""Conversation affinity: a conversation that `auto` escalated stays escalated for its follow-ups.

An agent's follow-up ("thanks", "now rename x to y") resends the history with a short last turn,
which alone rates `default`: routed turn by turn, a task a strong model planned would drop to the
local model mid-conversation, and every switch throws away the upstream's prompt cache. So `auto`
remembers each conversation's tier (default < complex < vision) and routes a later turn to at
least that tier. It may go up, and the escalation is remembered; it never goes down while the
conversation lasts.

**The key** needs no client cooperation, and names a conversation, never a person. A session
identity the client sends wins, in this order: the `x-session-id` header, the session inside
Anthropic's `metadata.user_id` (Claude Code puts `session_id` there), OpenAI's `prompt_cache_key`
(Codex sends one per session), then the Responses API's `previous_response_id` (a response
remembers the tier of the turn that made it; also once the Responses store has expanded it,
router_plugins/state/responses.py). Otherwise, what stays fixed as an agent's conversation grows,
read the same on chat, Responses and Messages: the system prompt and the first user turn (their
first `_KEYED_CHARS` characters each, so the cost is bounded). A field that names an end user
rather than a session (OpenAI's `user`, a `metadata.user_id` without a session in it) only scopes
that content key: one escalated conversation never lifts every other conversation of the same
person. Only a hash is kept, never the text.

**Shared**: each process keeps a bounded table, so a decision never waits on another process
(router_plugins/gateway.py wires it): what one process learns reaches the machine's other workers
through the owner of local model servers, and other replicas through Redis where
`llm_router.redis` is set. Entries are forgotten after `routing.affinity.ttl_s` without a turn.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from litellm.proxy.hooks.responses_id_security import decrypted_response_id
from litellm.responses.utils import ResponsesAPIRequestUtils

from router_config.gateway_config import AffinitySettings
from router_plugins.conversation import Conversation, Shape

Tier = Literal["default", "complex", "vision"]
TIERS: tuple[Tier, ...] = ("default", "complex", "vision")
_RANK = {tier: rank for rank, tier in enumerate(TIERS)}
SESSION_HEADER = "x-session-id"
CONTINUED_HEADER = "x-llm-router-previous-response-id"
"""Set by the door (never by a client) on a Responses request whose previous_response_id the Responses store
expanded into the whole conversation: the response it continued, for affinity to key it by."""
_KEYED_CHARS = 4096
_SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True)
class ConversationKey:
    digest: str
    """A hash of the key's source and value: the only thing remembered."""
    source: str
    """Where it came from: a header, a body field, or `content` (system prompt and first user turn)."""


def higher(a: Tier, b: Tier | None) -> Tier:
    return a if b is None or _RANK[a] >= _RANK[b] else b


def conversation_key(body: dict[str, Any], shape: Shape, conversation: Conversation, headers: Mapping[str, str]) -> ConversationKey | None:
    """The key this request's conversation is remembered by, or None when nothing identifies it."""
    header = _header(headers, SESSION_HEADER)
    if header:
        return _key(SESSION_HEADER, header)
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if shape is Shape.MESSAGES and isinstance(metadata, dict) else None
    session = _session_in(user_id) if isinstance(user_id, str) else None
    if session:
        return _key("metadata.user_id", session)
    cache_key = body.get("prompt_cache_key") if shape is not Shape.MESSAGES else None
    if isinstance(cache_key, str) and cache_key:
        return _key("prompt_cache_key", cache_key)
    previous = body.get("previous_response_id") or _header(headers, CONTINUED_HEADER) if shape is Shape.RESPONSES else None
    if isinstance(previous, str) and previous:
        return response_key(previous)
    content = _content_key(conversation)
    person = user_id if isinstance(user_id, str) and user_id else body.get("user") if shape is not Shape.MESSAGES else None
    if content is not None and isinstance(person, str) and person:
        source = "metadata.user_id" if person is user_id else "user"
        return _key(f"{source} + content", f"{person}\x00{content.digest}")
    return content


def _session_in(user_id: str) -> str | None:
    """The session a Messages `metadata.user_id` carries, if any: Claude Code sends JSON with a `session_id`
    (older versions: `user_<hash>_account_<id>_session_<id>`); anything else names a user."""
    if user_id.startswith("{"):
        try:
            parsed = json.loads(user_id)
        except ValueError:
            return None
        session = parsed.get("session_id") if isinstance(parsed, dict) else None
        return session if isinstance(session, str) and session else None
    _, found, session = user_id.partition("_session_")
    return session if found and session else None


def response_key(response_id: str) -> ConversationKey:
    """The key a response is remembered by, so that a turn naming it as previous_response_id finds its tier.

    LiteLLM hands clients response ids that encode the deployment, then encrypts them: the id is read as the
    provider's whichever form it comes in."""
    original = ResponsesAPIRequestUtils.decode_previous_response_id_to_original_previous_response_id(decrypted_response_id(response_id))
    return _key("previous_response_id", original)


def _content_key(conversation: Conversation) -> ConversationKey | None:
    system = [text[:_KEYED_CHARS] for role, text in conversation.turns if role in _SYSTEM_ROLES]
    first_user = next((text[:_KEYED_CHARS] for role, text in conversation.turns if role == "user"), None)
    if first_user is None:
        return None
    return _key("content", "\x00".join([*system, "\x01", first_user]))


def _key(source: str, value: str) -> ConversationKey:
    digest = hashlib.blake2b(f"{source}\x00{value}".encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return ConversationKey(digest, source)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value if isinstance(value, str) else None


@dataclass
class _Entry:
    tier: Tier
    seen: float
    shared: float


Share = Callable[[str, Tier], None]
"""Tells the other processes a conversation's tier (by its digest)."""


class ConversationTiers:
    """The tiers this process knows, by conversation digest: bounded, and forgotten after the idle ttl.

    Only tiers above `default` are kept: `default` is what a conversation gets anyway."""

    def __init__(self, settings: AffinitySettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._share: Share | None = None

    def share_with(self, share: Share) -> None:
        self._share = share

    def recall(self, digest: str) -> Tier | None:
        with self._lock:
            entry = self._live(digest)
            return entry.tier if entry else None

    def remember(self, digest: str, tier: Tier) -> None:
        """A turn of this conversation was routed at `tier`: keep the higher tier, refresh its ttl, tell the others."""
        now = self._clock()
        with self._lock:
            entry = self._live(digest)
            if entry is None and tier == "default":
                return
            if entry is None:
                entry = self._entries[digest] = _Entry(tier, now, shared=float("-inf"))
                self._bound()
            raised = _RANK[tier] > _RANK[entry.tier]
            entry.tier, entry.seen = higher(tier, entry.tier), now
            self._entries.move_to_end(digest)
            # A refresh is told again only now and then: the others need it only before their copy expires.
            tell = raised or entry.shared == float("-inf") or now - entry.shared > self.settings.ttl_s / 10
            if tell:
                entry.shared = now
            tier_now = entry.tier
        if tell and self._share is not None:
            self._share(digest, tier_now)

    def learn(self, digest: str, tier: str) -> None:
        """Another process routed this conversation at `tier`."""
        if tier not in _RANK or tier == "default":
            return
        now = self._clock()
        with self._lock:
            entry = self._live(digest)
            if entry is None:
                self._entries[digest] = _Entry(tier, now, shared=now)  # type: ignore[arg-type]
                self._bound()
            else:
                entry.tier, entry.seen, entry.shared = higher(tier, entry.tier), now, now  # type: ignore[arg-type]
                self._entries.move_to_end(digest)

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, digest: str) -> _Entry | None:
        entry = self._entries.get(digest)
        if entry is not None and self._clock() - entry.seen > self.settings.ttl_s:
            del self._entries[digest]
            return None
        return entry

    def _bound(self) -> None:
        while len(self._entries) > self.settings.max_conversations:
            self._entries.popitem(last=False)
