"""The one owner of a machine's local model servers: every decision about them is made here.

`llm-router serve` runs one owner per machine and state folder, in its main process, on a thread
of its own; its workers, other gateways sharing the state folder, and `llm-router
start/stop/status` ask it over a unix socket. It holds the only Launcher, so the memory budget,
eviction, drain waits, idle stops, crash restarts and leases see every request of every worker,
the way llama-swap's single ProcessGroup does.

Ownership is a file lock on the state folder: whoever holds it is the owner. A second gateway on
the same folder waits for the lock, its workers using the first one's owner, and takes over
(adopting running servers) if that one dies. The CLI, finding no owner, is the owner itself for
as long as its command runs. A state folder serves one config at a time (StateFolderClaim): a
gateway or command with another config is refused before it starts anything, since the owner it
would ask has never heard of its servers. A client's leases are tied to its connection: a worker
that dies leaks none.

The protocol is one JSON object per line. A request carries an `id` and gets one reply with the
same `id` (`ok`, and `why`/`log_tail` or `result`); `release`, `cancel`, `note_decision` (a
worker's record of a routing decision, for the status page) and `share_tier` (a conversation's
routing tier, which the owner passes on to every worker as a `tier` event) get none. The owner
also sends every connection each server's state as it changes (`{"event": "servers", ...}`), so
workers read state without asking.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import logging
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from launchers.manager import Launcher
from launchers.owner_client import MESSAGE_LIMIT, OwnerClient
from launchers.paths import RuntimePaths
from launchers.server import ModelServer, ServerUnavailable
from router_config.gateway_config import MemoryBudget
from router_config.problems import ConfigError
from router_config.spec import LaunchSpec

log = logging.getLogger("llm_router.owner")

Handler = Callable[["_Session", dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class NewConfig:
    """A reread configuration, as the owner applies it."""

    specs: list[LaunchSpec]
    memory: MemoryBudget
    needs_gateway_restart: list[str]
    """Changes only a restart applies (a deployment LiteLLM would have to add without its database)."""


Reloader = Callable[[], NewConfig]
"""Rereads and validates the configuration; raises ConfigError."""
DECISIONS_KEPT = 100
DECISION_FIELDS = ("time", "key", "requested", "reason", "chosen", "served", "status", "latency_ms")
"""What a routing decision record holds (the status page's table): never a prompt, never a key."""
_LOCK_POLL_S = 0.2


class Owner:
    """Serves one Launcher to every process of the machine, over a unix socket."""

    def __init__(self, launcher: Launcher, socket_path: Path, reload_config: Reloader | None = None):
        """reload_config: rereads the configuration for `reload` (a gateway's owner; None for a command's)."""
        self._launcher = launcher
        self._socket_path = socket_path
        self._reload_config = reload_config
        self._sessions: set[_Session] = set()
        self._numbers = itertools.count(1)
        self._decisions: deque[dict[str, Any]] = deque(maxlen=DECISIONS_KEPT)
        launcher.on_change(self._broadcast)
        self._handlers: dict[str, Handler] = {
            "ensure_ready": self._ensure_ready,
            "start_in_background": self._start_in_background,
            "start": self._start,
            "stop": self._stop,
            "statuses": self._statuses,
            "overview": self._overview,
            "check_alive": self._check_alive,
            "reload": self._reload,
        }

    async def serve(self) -> None:
        """Adopt what already runs, then answer until cancelled; on the way out, stop what we own."""
        await asyncio.gather(*(server.attach() for server in self._launcher.servers.values()))
        self._socket_path.unlink(missing_ok=True)  # a dead owner's; we hold the lock now
        server = await asyncio.start_unix_server(self._session, path=str(self._socket_path), limit=MESSAGE_LIMIT)
        os.chmod(self._socket_path, 0o600)
        self._launcher.start_monitor()
        log.info("owner of local model servers %s (pid %d)", ", ".join(self._launcher.servers) or "(none)", os.getpid())
        try:
            await asyncio.Event().wait()
        finally:
            server.close()
            self._socket_path.unlink(missing_ok=True)
            for session in list(self._sessions):
                session.close()
            await self._launcher.shutdown()

    # ---- sessions --------------------------------------------------------------------------

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(next(self._numbers), writer)
        self._sessions.add(session)
        session.send({"event": "servers", "servers": self._views()})
        try:
            while line := await reader.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                op = message.get("op")
                if op == "release":
                    self._release(session, str(message.get("lease")))
                elif op == "note_decision":
                    self._note_decision(message.get("decision"))
                elif op == "share_tier":
                    self._share_tier(message)
                elif op == "cancel":
                    session.cancel(message.get("id"))
                else:
                    session.track(message.get("id"), asyncio.create_task(self._answer(session, message)))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._sessions.discard(session)
            session.close()
            dropped = sum(server.release_all(session.prefix) for server in self._launcher.servers.values())
            if dropped:
                log.info("a client went away holding %d lease(s); released", dropped)

    async def _answer(self, session: _Session, message: dict[str, Any]) -> None:
        handler = self._handlers.get(str(message.get("op")))
        reply: dict[str, Any] = {"id": message.get("id")}
        try:
            if handler is None:
                raise ValueError(f"unknown op {message.get('op')!r}")
            reply.update(ok=True, result=await handler(session, message))
        except ServerUnavailable as exc:
            reply.update(ok=False, why=exc.why, log_tail=exc.log_tail)
        except (KeyError, ValueError) as exc:
            reply.update(ok=False, why=str(exc).strip("'\""), log_tail="")
        session.send(reply)

    def _broadcast(self, _: ModelServer) -> None:
        self._tell_everyone({"event": "servers", "servers": self._views()})

    def _tell_everyone(self, event: dict[str, Any]) -> None:
        for session in list(self._sessions):
            session.send(event)

    def _views(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "state": s.state.value, "last_error": s.last_error} for s in self._launcher.servers.values()]

    # ---- operations ------------------------------------------------------------------------

    def _server_named(self, message: dict[str, Any]) -> ModelServer:
        name = str(message.get("server"))
        if name not in self._launcher.servers:
            raise KeyError(f"no local model server named '{name}'; known: {sorted(self._launcher.servers)}")
        return self._launcher.server(name)

    async def _ensure_ready(self, session: _Session, message: dict[str, Any]) -> None:
        await self._server_named(message).ensure_ready(lease=session.prefix + str(message.get("lease")))

    def _release(self, session: _Session, lease: str) -> None:
        for server in self._launcher.servers.values():
            server.release(session.prefix + lease)

    async def _start_in_background(self, _: _Session, message: dict[str, Any]) -> None:
        self._server_named(message).start_in_background()

    async def _start(self, _: _Session, message: dict[str, Any]) -> dict[str, Any]:
        server = self._server_named(message)
        await server.ensure_ready()
        return asdict(server.status())

    async def _stop(self, _: _Session, message: dict[str, Any]) -> dict[str, Any]:
        server = self._server_named(message)
        await server.stop(str(message.get("reason") or "stopped by an operator"))
        return asdict(server.status())

    async def _statuses(self, _: _Session, __: dict[str, Any]) -> list[dict[str, Any]]:
        return [asdict(s) for s in self._launcher.statuses()]

    async def _overview(self, _: _Session, __: dict[str, Any]) -> dict[str, Any]:
        """Everything the status page shows about the machine: servers (with their log tails), the
        memory they hold against the budget, and the latest routing decisions of every worker."""
        return {"servers": [{**asdict(s), "memory": self._spec_memory(s.name), "log_tail": self._launcher.log_tail(s.name)}
                            for s in self._launcher.statuses()],
                "memory": self._launcher.memory(), "decisions": list(reversed(self._decisions))}

    def _spec_memory(self, name: str) -> dict[str, Any]:
        """What the server's own spec (the one it runs under, which may predate a reload) says it holds."""
        memory = self._launcher.servers[name].spec.memory
        return {"gpu_gib": memory.gpu_gib, "gpu_device": memory.gpu_device, "host_gib": memory.host_gib}

    def _note_decision(self, decision: Any) -> None:
        if isinstance(decision, dict):
            self._decisions.append({k: decision.get(k) for k in DECISION_FIELDS})

    def _share_tier(self, message: dict[str, Any]) -> None:
        """A worker routed a conversation at a tier: every worker hears it (router_plugins/affinity.py)."""
        conversation, tier = message.get("conversation"), message.get("tier")
        if isinstance(conversation, str) and isinstance(tier, str) and len(conversation) <= 64 and len(tier) <= 16:
            self._tell_everyone({"event": "tier", "conversation": conversation, "tier": tier})

    async def _check_alive(self, _: _Session, message: dict[str, Any]) -> None:
        await self._server_named(message).check_alive(probe_port=True)

    async def _reload(self, _: _Session, __: dict[str, Any]) -> dict[str, Any]:
        return self.reload()

    def reload(self) -> dict[str, Any]:
        """Reread the configuration and apply it live: here to the local servers, and in every worker
        (told by an event) to routing, fallbacks, aliases and keys. An invalid file changes nothing."""
        if self._reload_config is None:
            raise ValueError("only a running gateway reloads its configuration")
        try:
            new = self._reload_config()
        except ConfigError as exc:
            raise ValueError(f"nothing changed: the configuration has {len(exc.problems)} problem(s): "
                             + "; ".join(str(p) for p in exc.problems)) from None
        outcome = self._launcher.reconfigure(new.specs, new.memory)
        outcome.needs_gateway_restart += new.needs_gateway_restart
        self._tell_everyone({"event": "reload"})
        log.info("configuration reloaded: applied to %s; restarting when idle: %s; needs a gateway restart: %s",
                 ", ".join(outcome.applied) or "no local server", ", ".join(outcome.restarts_when_idle) or "none",
                 "; ".join(outcome.needs_gateway_restart) or "nothing")
        return asdict(outcome)


class _Session:
    """One client connection: its leases are named `<number>:<lease>`, and end with it."""

    def __init__(self, number: int, writer: asyncio.StreamWriter):
        self.prefix = f"{number}:"
        self._writer = writer
        self._tasks: dict[Any, asyncio.Task[None]] = {}

    def track(self, request_id: Any, task: asyncio.Task[None]) -> None:
        self._tasks[request_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(request_id, None))

    def cancel(self, request_id: Any) -> None:
        """The client gave up waiting (its request went away): the start goes on, but no lease is taken."""
        task = self._tasks.get(request_id)
        if task is not None:
            task.cancel()

    def send(self, message: dict[str, Any]) -> None:
        if not self._writer.is_closing():
            self._writer.write(json.dumps(message).encode() + b"\n")

    def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        self._writer.close()


class _OwnerLock:
    """The machine's owner lock for one state folder (an flock: the kernel releases it when its holder dies)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def close(self) -> None:
        os.close(self._fd)  # closing releases the lock


class OwnerThread:
    """Runs an Owner on a thread of this process as soon as this process gets the machine's owner lock.

    Servers are spawned from this long-lived thread, which matters for `setpriv --pdeathsig`: the
    kernel signals a server when the thread that started it ends, so they end with this process.
    """

    def __init__(self, make_launcher: Callable[[], Launcher], paths: RuntimePaths, reload_config: Reloader):
        self._make_launcher = make_launcher
        self._paths = paths
        self._reload_config = reload_config
        self._owner: Owner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llm-router owner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop every server this owner started; return once done (at once if we never owned, or already stopped)."""
        self._stopping.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed: the owner is done already
                loop.call_soon_threadsafe(task.cancel)
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def reload_soon(self) -> None:
        """Reload the configuration on the owner's thread (SIGHUP); a gateway that doesn't own the
        machine's servers has nothing to reload here: `llm-router reload` reaches the one that does."""
        loop, owner = self._loop, self._owner
        if loop is None or owner is None:
            log.warning("reload asked of a gateway that doesn't own this machine's model servers; use `llm-router reload`")
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._reload_and_log, owner)

    @staticmethod
    def _reload_and_log(owner: Owner) -> None:
        try:
            owner.reload()
        except ValueError as exc:
            log.error("configuration not reloaded: %s", exc)

    def _run(self) -> None:
        lock = _OwnerLock(self._paths.owner_lock)
        try:
            while not lock.try_acquire():
                if self._stopping.wait(_LOCK_POLL_S):
                    return  # another process owned this machine's servers all along
            if not self._stopping.is_set():
                asyncio.run(self._own())
        finally:
            lock.close()

    async def _own(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._owner = Owner(self._make_launcher(), self._paths.owner_socket, self._reload_config)
        try:
            await self._owner.serve()
        except asyncio.CancelledError:
            pass


@asynccontextmanager
async def machine_owner(make_launcher: Callable[[], Launcher], paths: RuntimePaths, names: list[str]) -> AsyncIterator[OwnerClient]:
    """A client of the machine's owner: the running one, or, when none runs, this process for as
    long as the block lasts (`llm-router start/stop/status` without a gateway)."""
    lock = _OwnerLock(paths.owner_lock)
    owner: asyncio.Task[None] | None = None
    try:
        if lock.try_acquire():
            owner = asyncio.create_task(Owner(make_launcher(), paths.owner_socket).serve(), name="owner")
        client = OwnerClient(paths.owner_socket, names)
        try:
            yield client
        finally:
            await client.close()
    finally:
        if owner is not None:
            owner.cancel()
            await asyncio.gather(owner, return_exceptions=True)
        lock.close()
