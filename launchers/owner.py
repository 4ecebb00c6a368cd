"""The one owner of a machine's local model servers: every decision about them is made here.

`llm-router serve` runs one owner per machine and state folder, in its main process, on a
thread of its own; its workers, other gateways sharing the state folder, and `llm-router
start/stop/status` ask it over a unix socket. It holds the only Launcher, so the memory budget,
eviction, drain waits, idle stops, crash restarts and leases see every request of every worker,
the way llama-swap's single ProcessGroup does.

Ownership is a file lock on the state folder: whoever holds it is the owner; a second gateway on
the same folder waits for the lock and takes over (adopting running servers) if the owner dies.
A worker's leases are tied to its connection: a worker that dies leaks none.

The protocol is one JSON object per line. A request carries an `id` and gets one reply with the
same `id` (`ok`, and `why`/`log_tail` or `result`); `release` gets none. The owner also sends every
connection each server's state as it changes (`{"event": "servers", ...}`), so workers read state
without asking.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from launchers.manager import Launcher
from launchers.server import ModelServer, ServerUnavailable

log = logging.getLogger("llm_router.owner")

Handler = Callable[["_Session", dict[str, Any]], Awaitable[Any]]


class Owner:
    """Serves one Launcher to every process of the machine, over a unix socket."""

    def __init__(self, launcher: Launcher, socket_path: Path):
        self._launcher = launcher
        self._socket_path = socket_path
        self._sessions: set[_Session] = set()
        self._ids = itertools.count(1)
        self._server: asyncio.AbstractServer | None = None
        launcher.on_change(self._broadcast)
        self._handlers: dict[str, Handler] = {
            "ensure_ready": self._ensure_ready,
            "start_in_background": self._start_in_background,
            "start": self._start,
            "stop": self._stop,
            "statuses": self._statuses,
            "check_alive": self._check_alive,
        }

    async def serve(self) -> None:
        """Adopt what already runs, then answer until cancelled; on the way out, stop what we own."""
        await asyncio.gather(*(server.attach() for server in self._launcher.servers.values()))
        self._socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._socket_path.unlink(missing_ok=True)  # a dead owner's; we hold the lock now
        self._server = await asyncio.start_unix_server(self._session, path=str(self._socket_path))
        os.chmod(self._socket_path, 0o600)
        self._launcher.start_monitor()
        log.info("owner of local model servers %s (pid %d, socket %s)", ", ".join(self._launcher.servers) or "(none)",
                 os.getpid(), self._socket_path)
        try:
            await asyncio.Event().wait()
        finally:
            self._server.close()
            self._socket_path.unlink(missing_ok=True)
            await self._launcher.shutdown()

    # ---- sessions --------------------------------------------------------------------------

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(next(self._ids), writer)
        self._sessions.add(session)
        session.send({"event": "servers", "servers": self._views()})
        pending: set[asyncio.Task[None]] = set()
        try:
            while line := await reader.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if message.get("op") == "release":
                    self._release(session, str(message.get("lease")))
                    continue
                task = asyncio.create_task(self._answer(session, message))
                pending.add(task)
                task.add_done_callback(pending.discard)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._sessions.discard(session)
            for task in pending:
                task.cancel()
            dropped = sum(server.release_all(session.prefix) for server in self._launcher.servers.values())
            if dropped:
                log.info("a client went away holding %d lease(s); released", dropped)
            writer.close()

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
            reply.update(ok=False, why=str(exc), log_tail="")
        session.send(reply)

    def _broadcast(self, _: ModelServer) -> None:
        event = {"event": "servers", "servers": self._views()}
        for session in list(self._sessions):
            session.send(event)

    def _views(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "state": s.state.value, "last_error": s.last_error} for s in self._launcher.servers.values()]

    # ---- operations ------------------------------------------------------------------------

    def _server_named(self, message: dict[str, Any]) -> ModelServer:
        name = str(message.get("server"))
        if name not in self._launcher.servers:
            raise KeyError(f"no local model server named '{name}'")
        return self._launcher.server(name)

    async def _ensure_ready(self, session: _Session, message: dict[str, Any]) -> None:
        server = self._server_named(message)
        await server.ensure_ready()
        server.lease(session.prefix + str(message.get("lease")))

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

    async def _check_alive(self, _: _Session, message: dict[str, Any]) -> None:
        await self._server_named(message).check_alive()


class _Session:
    def __init__(self, number: int, writer: asyncio.StreamWriter):
        self.prefix = f"{number}:"
        self._writer = writer

    def send(self, message: dict[str, Any]) -> None:
        if not self._writer.is_closing():
            self._writer.write(json.dumps(message).encode() + b"\n")


class OwnerThread:
    """Runs an Owner on a thread of this process as soon as this process gets the machine's owner lock.

    A second gateway on the same state folder waits here, its workers using the first one's owner,
    and takes over if that one dies. Servers are spawned from this long-lived thread, which matters
    for `setpriv --pdeathsig`: the kernel signals a server when the thread that started it ends.
    """

    def __init__(self, make_launcher: Callable[[], Launcher], lock_path: Path, socket_path: Path):
        self._make_launcher = make_launcher
        self._lock_path = lock_path
        self._socket_path = socket_path
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llm-router owner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop every server this owner started; return once done (or at once if we never owned)."""
        self._stopping.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
            self._thread.join(timeout_s)

    def _run(self) -> None:
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while not self._stopping.is_set():
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    self._stopping.wait(0.2)  # another process owns this machine's servers
            else:
                return
            asyncio.run(self._own())
        finally:
            os.close(fd)  # closing releases the lock

    async def _own(self) -> None:
        self._loop = asyncio.get_running_loop()
        owner = Owner(self._make_launcher(), self._socket_path)
        self._task = asyncio.current_task()
        try:
            await owner.serve()
        except asyncio.CancelledError:
            pass
