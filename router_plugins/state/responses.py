"""The Responses store: Responses conversations that chain by previous_response_id on every backend.

A Responses API answer is kept, under the id its client got, with what a later turn needs: the
turn's own input items, its output items and the answer itself. A request naming a
`previous_response_id` is expanded at the door into the whole conversation (every earlier turn's
input and output, then its own input) before routing, so whichever backend serves it (a local model,
a cloud one, a fallback, the group an affinity escalation picks) gets the whole conversation, and
the backend never sees an id it didn't make. `GET /v1/responses/{id}`, its `input_items` and
`DELETE` answer from here.

- Only as readable as the API: a response is visible to the key that made it and to the master key
  (on a gateway without a master key, to everyone); to any other key it doesn't exist.
- `store: false`: nothing is kept but that the id existed and whose it is, so that chaining to it is
  a clear 400 rather than a "not found".
- Bounded: a response is forgotten `ttl_days` after its last use (made, or continued by a later
  turn), and the least recently used go first past `max_responses`.
- Shared: the state database on one machine; with replicas, also Redis (replicas.py), written before
  the answer's last event goes out, so a next turn finds it on any replica.

This is the one place the gateway keeps prompt and answer text; `llm_router.responses: false` turns
it off (previous_response_id then goes to the backend as it is).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
import zlib
from dataclasses import dataclass, replace
from typing import Any, Protocol

from litellm.proxy.hooks.responses_id_security import decrypted_response_id

from router_config.gateway_config import ResponsesStore as StoreSettings
from router_plugins.access import Caller
from router_plugins.errors import ApiError
from router_plugins.state.database import StateDatabase

log = logging.getLogger("llm_router.responses")

_MAX_CHAIN = 10_000
_STORED_STATUSES = frozenset({"completed", "incomplete"})
# Reasoning items are the provider's own (often encrypted) state, which no other backend can read.
_NOT_CARRIED = frozenset({"reasoning"})


def response_key(response_id: str) -> str:
    """The key a response is kept under: the same for every form of its id (LiteLLM encrypts ids
    for clients, and encodes the deployment in them)."""
    try:
        original = decrypted_response_id(response_id)
    except Exception:  # not an id LiteLLM made (a client's guess): it names nothing kept here
        original = response_id
    return hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def owner_of(caller: Caller) -> str:
    return f"key:{caller.key.sha256}" if caller.is_team and caller.key is not None else caller.role.value


def _may_see(caller: Caller, owner: str) -> bool:
    return not caller.is_team or owner == owner_of(caller)


@dataclass(frozen=True)
class Turn:
    """A Responses request as the store sees it: whose it is, what it continues, its own input."""

    owner: str
    previous: str | None
    """The key of the response it continues."""
    input: list[Any]
    store: bool
    continued: str | None = None
    """The previous_response_id it named, as the client sent it (affinity keys the conversation by it)."""


@dataclass(frozen=True)
class Kept:
    """One stored response (or the bare mark of a `store: false` one)."""

    key: str
    owner: str
    created: float
    expires: float
    stored: bool
    previous: str | None
    body: bytes | None
    """zlib'd JSON: {"input": [...], "output": [...], "response": {...}}."""

    def content(self) -> dict[str, Any]:
        return json.loads(zlib.decompress(self.body)) if self.body else {"input": [], "output": [], "response": None}

    def row(self) -> tuple[Any, ...]:
        return (self.key, self.owner, self.created, self.expires, int(self.stored), self.previous, self.body)


class RemoteCopies(Protocol):
    """Where replicas keep their copies of stored responses (replicas.py's RemoteResponses, in Redis)."""

    async def get(self, key: str) -> Kept | None: ...

    async def put(self, kept: Kept, settings: StoreSettings) -> None: ...

    async def delete(self, key: str) -> None: ...

    def touch(self, keys: list[str], settings: StoreSettings) -> None: ...


def _items(value: Any) -> list[Any]:
    """A Responses `input` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    return list(value) if isinstance(value, list) else []


def _as_input(item: Any) -> Any | None:
    """An output item as a later turn's input item, for any backend: without the ids and statuses the
    backend that made it assigned; reasoning items (the provider's own state) left out."""
    if not isinstance(item, dict):
        return item
    if item.get("type") in _NOT_CARRIED:
        return None
    return {k: v for k, v in item.items() if k not in ("id", "status")}


def _not_found(response_id: str) -> ApiError:
    return ApiError(400, f"Previous response with id '{response_id}' not found.", "previous_response_id")


class ResponseStore:
    def __init__(self, db: StateDatabase, settings: StoreSettings, remote: RemoteCopies | None = None) -> None:
        self._db = db
        self.settings = settings
        self._remote = remote
        db.maintain(self._prune)

    # ---- the door: before a request, after its answer --------------------------------------

    async def expand(self, body: dict[str, Any], caller: Caller) -> Turn:
        """Replace a request's previous_response_id by the whole conversation it continues (in `input`).
        Raise a 400 ApiError for an id this caller can't continue."""
        own = _items(body.get("input"))
        turn = Turn(owner_of(caller), None, own, body.get("store") is not False)
        named = body.get("previous_response_id")
        if not isinstance(named, str) or not named:
            return turn
        chain = await self._chain(named, caller)
        history = [item for kept in chain for item in _conversation(kept.content())]
        body["input"] = [*history, *own]
        del body["previous_response_id"]
        self._touch(chain)
        return replace(turn, previous=chain[-1].key, continued=named)

    async def keep(self, turn: Turn, response: dict[str, Any]) -> None:
        """Keep an answer (as its client got it) for the turns that will continue it."""
        response_id = response.get("id")
        if not isinstance(response_id, str) or response.get("status") not in _STORED_STATUSES:
            return
        key = response_key(response_id)
        now = time.time()
        body = None
        if turn.store:
            content = {"input": turn.input, "output": response.get("output") or [], "response": response}
            body = zlib.compress(json.dumps(content, separators=(",", ":")).encode(), 1)
        kept = Kept(key, turn.owner, now, now + self.settings.ttl_s, turn.store, turn.previous, body)
        await self._db.write(lambda connection: self._put(connection, kept))
        if self._remote is not None:
            await self._remote.put(kept, self.settings)

    # ---- our endpoints ------------------------------------------------------------------------

    async def retrieve(self, response_id: str, caller: Caller) -> dict[str, Any]:
        """GET /v1/responses/{id}: the answer as its client got it."""
        kept = await self._visible(response_id, caller)
        return kept.content()["response"]

    async def delete(self, response_id: str, caller: Caller) -> dict[str, Any]:
        kept = await self._visible(response_id, caller)
        await self._db.write(lambda connection: connection.execute("DELETE FROM responses WHERE key = ?", (kept.key,)))
        if self._remote is not None:
            await self._remote.delete(kept.key)
        return {"id": response_id, "object": "response", "deleted": True}

    async def input_items(self, response_id: str, caller: Caller, limit: int = 20, order: str = "desc",
                          after: str | None = None) -> dict[str, Any]:
        """GET /v1/responses/{id}/input_items: what the model was given, the earlier turns included."""
        kept = await self._visible(response_id, caller)
        chain = await self._chain(response_id, caller)
        history = [item for earlier in chain[:-1] for item in _conversation(earlier.content())]
        items = [{**item, "id": item.get("id") or f"item_{kept.key[:16]}_{n}"} if isinstance(item, dict) else item
                 for n, item in enumerate([*history, *kept.content()["input"]])]
        if order == "desc":
            items.reverse()
        if after is not None:
            ids = [i.get("id") if isinstance(i, dict) else None for i in items]
            if after not in ids:
                raise ApiError(400, f"No input item with id '{after}' in this response.", "after")
            items = items[ids.index(after) + 1:]
        page = items[:limit]
        ids_of = [i.get("id") if isinstance(i, dict) else None for i in page]
        return {"object": "list", "data": page, "first_id": ids_of[0] if page else None, "last_id": ids_of[-1] if page else None,
                "has_more": len(items) > limit}

    # ---- lookups ------------------------------------------------------------------------------

    async def _visible(self, response_id: str, caller: Caller) -> Kept:
        kept = await self._find(response_key(response_id))
        if kept is None or not kept.stored or not _may_see(caller, kept.owner):
            raise ApiError(404, f"Response with id '{response_id}' not found.", "response_id")
        return kept

    async def _chain(self, response_id: str, caller: Caller) -> list[Kept]:
        """The response named and every one before it, oldest first."""
        key: str | None = response_key(response_id)
        chain: list[Kept] = []
        while key is not None and len(chain) < _MAX_CHAIN:
            kept = await self._find(key)
            if kept is None or not _may_see(caller, kept.owner):
                if not chain:
                    raise _not_found(response_id)
                raise ApiError(400, f"An earlier response of the conversation that '{response_id}' continues is no longer kept "
                                    "(expired or deleted); send the conversation as input instead.", "previous_response_id")
            if not kept.stored:
                raise ApiError(400, f"Previous response '{response_id}' was made with store: false, so nothing of it was kept to "
                                    "continue from; send the whole conversation as input, or leave store on.", "previous_response_id")
            chain.append(kept)
            key = kept.previous
        chain.reverse()
        return chain

    async def _find(self, key: str) -> Kept | None:
        row = self._db.reader().execute("SELECT key, owner, created, expires, stored, previous, body FROM responses WHERE key = ?",
                                        (key,)).fetchone()
        kept = Kept(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6]) if row else None
        if kept is None and self._remote is not None:
            kept = await self._remote.get(key)
            if kept is not None:
                self._db.submit(lambda connection: self._put(connection, kept))  # a local copy for the next turns
        return kept if kept is not None and kept.expires > time.time() else None

    def _touch(self, chain: list[Kept]) -> None:
        """A continued conversation's responses live on for another TTL, all of them: a later turn needs every one."""
        expires = time.time() + self.settings.ttl_s
        keys = [kept.key for kept in chain]
        self._db.submit(lambda connection: connection.executemany("UPDATE responses SET expires = max(expires, ?) WHERE key = ?",
                                                                  [(expires, key) for key in keys]))
        if self._remote is not None:
            self._remote.touch(keys, self.settings)

    # ---- the writer thread's ------------------------------------------------------------------

    def _put(self, connection: sqlite3.Connection, kept: Kept) -> None:
        connection.execute("INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, "
                           "created = excluded.created, expires = max(expires, excluded.expires), stored = excluded.stored, "
                           "previous = excluded.previous, body = excluded.body", kept.row())
        self._bound(connection)

    def _prune(self, connection: sqlite3.Connection, now: float) -> None:
        connection.execute("DELETE FROM responses WHERE expires <= ?", (now,))
        self._bound(connection)

    def _bound(self, connection: sqlite3.Connection) -> None:
        """The least recently used go first past max_responses."""
        (count,) = connection.execute("SELECT n FROM counts WHERE name = 'responses'").fetchone()
        excess = count - self.settings.max_responses
        if excess > 0:
            connection.execute("DELETE FROM responses WHERE key IN (SELECT key FROM responses ORDER BY expires LIMIT ?)", (excess,))


def _conversation(content: dict[str, Any]) -> list[Any]:
    """One stored turn as a later turn's input: its own input, then its output."""
    carried = (_as_input(item) for item in content.get("output") or [])
    return [*content.get("input", []), *(item for item in carried if item is not None)]


class AnswerReader:
    """Finds the final response in a Responses answer as it goes out: the JSON body, or a stream's
    `response.completed` (or `response.incomplete`) event, before the chunk carrying it is sent."""

    _FINAL = (b"response.completed", b"response.incomplete")
    _MAX_EVENT = 64 * 2**20

    def __init__(self, streamed: bool) -> None:
        self.streamed = streamed
        self._buffer = b""
        self._done = False

    def feed(self, chunk: bytes, last: bool) -> dict[str, Any] | None:
        """The final response, once the chunk that completes it is fed; None until then (and after)."""
        if self._done:
            return None
        self._buffer += chunk
        if not self.streamed:
            if not last:
                return None
            self._done = True
            return _response_in(self._buffer)
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                if len(self._buffer) > self._MAX_EVENT:
                    self._done = True
                return None
            event, self._buffer = self._buffer[:end], self._buffer[end + 2:]
            if any(final in event for final in self._FINAL):
                data = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
                parsed = _response_in(data)
                if parsed is not None:
                    self._done = True
                    return parsed.get("response") if isinstance(parsed.get("response"), dict) else None


def _response_in(raw: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None
