"""The launcher: every local model server of a machine, and the memory they share.

It lives in the machine's one owner (launchers/owner.py). It starts servers on demand (via
ModelServer.ensure_ready), makes room under the declared memory budget by stopping the least
recently used idle servers, stops idle servers, notices crashes, and stops everything it started
on shutdown (and, should its process die without a shutdown, the kernel stops them:
ModelServer's die_with_us).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from launchers import budget, metrics, process_group
from launchers.paths import RuntimePaths
from launchers.server import ModelServer, ServerState, ServerStatus, StartFailed
from router_config.gateway_config import MemoryBudget
from router_config.spec import LaunchSpec

log = logging.getLogger("llm_router.launcher")

MONITOR_INTERVAL_S = 0.5
_DRAIN_POLL_S = 0.1
_LEASE_MAX_AGE_S = 1800.0


@dataclass
class Reconfigured:
    """What a live configuration change did to the local servers."""

    applied: list[str] = field(default_factory=list)
    restarts_when_idle: list[str] = field(default_factory=list)
    needs_gateway_restart: list[str] = field(default_factory=list)


class Launcher:
    def __init__(self, specs: Iterable[LaunchSpec], memory: MemoryBudget, paths: RuntimePaths, servers_outlive_us: bool = False):
        """servers_outlive_us: servers this launcher starts keep running after it (`llm-router start`
        without a gateway); the next owner adopts them."""
        self._budget = memory
        self._paths = paths
        self._outlive = servers_outlive_us
        self._listeners: list[Callable[[ModelServer], None]] = []
        self._room_lock = asyncio.Lock()
        self.servers: dict[str, ModelServer] = {
            spec.name: ModelServer(spec, paths, make_room=self._room, die_with_us=not servers_outlive_us, on_change=self._changed)
            for spec in specs
        }
        self._monitor: asyncio.Task[None] | None = None
        if not servers_outlive_us:
            atexit.register(self._kill_owned_now)

    def server(self, name: str) -> ModelServer:
        return self.servers[name]

    def on_change(self, listener: Callable[[ModelServer], None]) -> None:
        """Call `listener` after every state transition of any server."""
        self._listeners.append(listener)

    def start_monitor(self) -> None:
        if self._monitor is None:
            self._monitor = asyncio.create_task(self._watch(), name="launcher monitor")

    async def shutdown(self) -> None:
        """Stop every server this launcher started (adopted ones belong to whoever started them)."""
        if self._monitor is not None:
            self._monitor.cancel()
            await asyncio.gather(self._monitor, return_exceptions=True)
            self._monitor = None
        if self._outlive:
            return
        await asyncio.gather(*(s.stop("gateway shutdown") for s in self.servers.values() if s.owned or s.state is ServerState.STARTING))

    def statuses(self) -> list[ServerStatus]:
        return [s.status() for s in self.servers.values()]

    def memory(self) -> dict[str, Any]:
        """What the running servers hold against the budget, per GPU and on the host (GiB)."""
        holding = [s.spec.memory for s in self.servers.values() if s.holds_memory]
        gpus = sorted({m.gpu_device for m in holding if m.gpu_gib} | set(self._budget.gpu_gib))
        return {
            "gpu": [{"device": d, "held_gib": sum(m.gpu_gib for m in holding if m.gpu_device == d), "budget_gib": self._budget.gpu_gib.get(d)}
                    for d in gpus],
            "host": {"held_gib": sum(m.host_gib for m in holding), "budget_gib": self._budget.host_gib},
        }

    def log_tail(self, name: str, lines: int = 20) -> str:
        return process_group.log_tail(self._paths.log_file(name), 0, lines)

    def reconfigure(self, specs: Iterable[LaunchSpec], memory: MemoryBudget) -> Reconfigured:
        """Take changed launch specs and budget, live. A server whose process a change touches (its
        command, environment, port...) is restarted when next idle; the others keep running."""
        self._budget = memory
        given = {spec.name: spec for spec in specs}
        outcome = Reconfigured()
        for name, spec in given.items():
            server = self.servers.get(name)
            if server is None:
                outcome.needs_gateway_restart.append(f"{name}: a new local model")
            elif spec != server.spec:
                (outcome.restarts_when_idle if server.reconfigure(spec) else outcome.applied).append(name)
        outcome.needs_gateway_restart += [f"{name}: a local model no longer configured" for name in self.servers if name not in given]
        return outcome

    def never_fits(self, spec: LaunchSpec) -> str | None:
        return budget.never_fits(self._budget, spec)

    @asynccontextmanager
    async def _room(self, starting: ModelServer) -> AsyncIterator[None]:
        """Make room for `starting` and hold it while it spawns: one start at a time decides what fits,
        so two starts can never both count on the same free memory, nor wait on each other."""
        never = self.never_fits(starting.spec)
        if never:
            raise StartFailed(f"does not fit the memory budget: {never}")
        async with self._room_lock:
            await self._make_room(starting)
            yield

    async def _make_room(self, starting: ModelServer) -> None:
        """Stop LRU idle unpinned servers until `starting` fits; wait (bounded) for busy ones to drain."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._budget.drain_timeout_s
        waited = False
        while True:
            holding = [s for s in self.servers.values() if s is not starting and s.holds_memory]
            if budget.fits_beside(self._budget, starting.spec, (s.spec for s in holding)):
                return
            evictable = sorted((s for s in holding if s.evictable and budget.competes(starting.spec, s.spec)), key=lambda s: s.last_used)
            if evictable:
                victim = evictable[0]
                log.info("%s: stopping idle %s to make room", starting.name, victim.name)
                metrics.eviction(victim.name)
                await victim.stop(f"evicted to make room for {starting.name}")
                continue
            if loop.time() >= deadline:
                busy = ", ".join(s.name for s in holding if budget.competes(starting.spec, s.spec))
                raise StartFailed(f"does not fit the memory budget beside busy or pinned servers ({busy}) "
                                  f"after waiting drain_timeout_s={self._budget.drain_timeout_s:g}")
            if not waited:
                waited = True
                metrics.drain_wait(starting.name)
            await asyncio.sleep(_DRAIN_POLL_S)

    def _changed(self, server: ModelServer) -> None:
        for listener in self._listeners:
            listener(server)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(MONITOR_INTERVAL_S)
            for server in self.servers.values():
                try:
                    await server.check_alive()
                    server.drop_stale_leases(_LEASE_MAX_AGE_S)
                    ttl = server.spec.idle_ttl_s
                    if server.is_ready and server.awaits_restart and server.inflight == 0:
                        await server.stop("its launch spec changed")
                        server.start_in_background()
                    elif server.is_ready and server.owned and ttl > 0 and server.inflight == 0 and server.idle_for() > ttl:
                        await server.stop(f"idle for more than idle_ttl_s={ttl:g}")
                except Exception:
                    log.exception("%s: launcher monitor error", server.name)

    def _kill_owned_now(self) -> None:
        for server in self.servers.values():
            server.kill_now()
