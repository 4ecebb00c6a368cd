"""A gateway worker's (or the CLI's) side of the owner: ask it, and mirror what it says.

Each worker keeps one connection to the machine's owner (launchers/owner.py). Leases taken over it
end with it. The owner pushes every server's state as it changes, so routing and health read the
mirror without a round trip; only a request that needs a server (ensure ready, take a lease) asks.
When the owner can't be reached, requests for local models fail over at once with that reason,
and the client reconnects in the background (another gateway on the same state folder takes over
within a second if the owner's process died).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launchers.server import ServerState, ServerUnavailable

log = logging.getLogger("llm_router.owner")

RECONNECT_S = 0.2
MESSAGE_LIMIT = 2**20
"""Longest line either side sends (a status with log tails included)."""
_NO_OWNER = "the owner of this machine's model servers is not reachable (is `llm-router serve` running?)"


@dataclass(frozen=True)
class ServerView:
    name: str
    state: ServerState
    last_error: str | None

    @property
    def is_ready(self) -> bool:
        return self.state is ServerState.READY


class OwnerClient:
    def __init__(self, socket_path: Path, names: list[str], connect_timeout_s: float = 10.0):
        self._socket_path = socket_path
        self._views: dict[str, ServerView] = {n: ServerView(n, ServerState.STOPPED, None) for n in names}
        self._connect_timeout_s = connect_timeout_s
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._leases: set[str] = set()
        self._on_reload: list[Callable[[], None]] = []
        self._on_tier: list[Callable[[str, str], None]] = []

    # ---- the mirror ------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self._views)

    def view(self, name: str) -> ServerView:
        return self._views[name]

    # ---- asking ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._keep_connected(), name="owner connection")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def ensure_ready(self, name: str, lease: str) -> None:
        """Return once `name` is ready and holds a lease for this request; raise ServerUnavailable otherwise."""
        await self._ask(name, {"op": "ensure_ready", "server": name, "lease": lease})
        self._leases.add(lease)

    def release(self, lease: str) -> None:
        """End a lease; a no-op for a request that holds none (most requests: cloud ones)."""
        if lease in self._leases:
            self._leases.discard(lease)
            self._send({"op": "release", "lease": lease})

    async def start_in_background(self, name: str) -> None:
        await self._ask(name, {"op": "start_in_background", "server": name})

    async def start_server(self, name: str) -> dict[str, Any]:
        return await self._ask(name, {"op": "start", "server": name})

    async def stop_server(self, name: str, reason: str) -> dict[str, Any]:
        return await self._ask(name, {"op": "stop", "server": name, "reason": reason})

    async def statuses(self) -> list[dict[str, Any]]:
        return await self._ask("", {"op": "statuses"})

    def on_reload(self, listener: Callable[[], None]) -> None:
        """Call `listener` when the owner has reloaded the configuration (it tells every worker)."""
        self._on_reload.append(listener)

    async def reload(self) -> dict[str, Any]:
        """Have the owner reread the configuration and apply it everywhere; what it did."""
        return await self._ask("", {"op": "reload"})

    async def overview(self) -> dict[str, Any]:
        """Servers with their log tails, memory held against the budget, and the latest routing decisions."""
        return await self._ask("", {"op": "overview"})

    def share_tier(self, conversation: str, tier: str) -> None:
        """Tell every worker, through the owner, a conversation's routing tier (fire and forget)."""
        self._send({"op": "share_tier", "conversation": conversation, "tier": tier})

    def on_tier(self, listener: Callable[[str, str], None]) -> None:
        """Call `listener(conversation, tier)` for each tier a worker of this machine shares."""
        self._on_tier.append(listener)

    def note_decision(self, decision: dict[str, Any]) -> None:
        """Tell the owner about a routing decision and its outcome (fire and forget; lost if not connected)."""
        self._send({"op": "note_decision", "decision": decision})

    async def check_alive(self, name: str) -> None:
        await self._ask(name, {"op": "check_alive", "server": name})

    async def _ask(self, name: str, message: dict[str, Any]) -> Any:
        self.start()
        try:
            await asyncio.wait_for(self._connected.wait(), self._connect_timeout_s)
        except TimeoutError:
            raise ServerUnavailable(name, _NO_OWNER) from None
        assert self._writer is not None
        request_id = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        try:
            self._send({**message, "id": request_id})
            reply = await answer
        except asyncio.CancelledError:
            self._send({"op": "cancel", "id": request_id})  # so the owner takes no lease for a request that went away
            raise
        finally:
            self._pending.pop(request_id, None)
        if not reply.get("ok"):
            raise ServerUnavailable(name, str(reply.get("why")), str(reply.get("log_tail") or ""))
        return reply.get("result")

    def _send(self, message: dict[str, Any]) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(json.dumps(message).encode() + b"\n")

    # ---- the connection --------------------------------------------------------------------

    async def _keep_connected(self) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self._socket_path), limit=MESSAGE_LIMIT)
            except OSError:
                await asyncio.sleep(RECONNECT_S)
                continue
            self._writer = writer
            self._connected.set()
            try:
                await self._read(reader)
            finally:
                self._connected.clear()
                self._writer = None
                writer.close()
                self._fail_pending()
            log.warning("lost the connection to the model-server owner; reconnecting")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                message = json.loads(line)
                if message.get("event") == "reload":
                    for listener in self._on_reload:
                        listener()
                    continue
                if message.get("event") == "tier":
                    for heard in self._on_tier:
                        heard(str(message.get("conversation")), str(message.get("tier")))
                    continue
                if message.get("event") == "servers":
                    for view in message["servers"]:
                        if view["name"] in self._views:
                            self._views[view["name"]] = ServerView(view["name"], ServerState(view["state"]), view.get("last_error"))
                    continue
                answer = self._pending.get(message.get("id"))
                if answer is not None and not answer.done():
                    answer.set_result(message)
        except (ConnectionError, ValueError):
            return

    def _fail_pending(self) -> None:
        self._leases.clear()  # the owner dropped them with the connection
        for answer in self._pending.values():
            if not answer.done():
                answer.set_result({"ok": False, "why": _NO_OWNER})
        for name, view in self._views.items():
            self._views[name] = ServerView(name, view.state, _NO_OWNER)
