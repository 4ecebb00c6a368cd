"""The launcher: every local model server of one gateway process, and the memory they share.

It starts servers on demand (via ModelServer.ensure_ready), makes room under the declared
memory budget by stopping the least recently used idle servers, stops idle servers, notices
crashes, and stops everything it started on shutdown (and, should its process die without a
shutdown, the kernel stops them: ModelServer's die_with_us).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
from collections.abc import Iterable

from launchers.server import ModelServer, RuntimePaths, ServerState, ServerStatus, ServerUnavailable, StartFailed
from router_config.spec import LaunchSpec
from router_config.gateway_config import MemoryBudget

log = logging.getLogger("llm_router.launcher")

MONITOR_INTERVAL_S = 0.5
_LEASE_MAX_AGE_S = 1800.0
_RUNNING = (ServerState.STARTING, ServerState.READY, ServerState.STOPPING)


class Launcher:
    def __init__(self, specs: Iterable[LaunchSpec], budget: MemoryBudget, paths: RuntimePaths, stop_on_exit: bool = True):
        self._budget = budget
        self.servers: dict[str, ModelServer] = {
            spec.name: ModelServer(spec, paths, make_room=self._make_room, die_with_us=stop_on_exit) for spec in specs
        }
        self._monitor: asyncio.Task[None] | None = None
        if stop_on_exit:
            atexit.register(self._kill_owned_now)

    def server(self, name: str) -> ModelServer:
        return self.servers[name]

    def start_monitor(self) -> None:
        if self._monitor is None:
            self._monitor = asyncio.create_task(self._watch(), name="launcher monitor")

    async def shutdown(self) -> None:
        """Stop every server this process started (adopted ones belong to someone else)."""
        if self._monitor is not None:
            self._monitor.cancel()
            await asyncio.gather(self._monitor, return_exceptions=True)
            self._monitor = None
        await asyncio.gather(*(s.stop("gateway shutdown") for s in self.servers.values() if s.owned or s.state is ServerState.STARTING))

    def statuses(self) -> list[ServerStatus]:
        return [s.status() for s in self.servers.values()]

    def fits_budget(self, spec: LaunchSpec) -> str | None:
        """Why the server could never fit the budget, even alone; None if it can."""
        gpu_cap = self._budget.gpu_gib.get(spec.memory.gpu_device)
        if spec.memory.gpu_gib and gpu_cap is not None and spec.memory.gpu_gib > gpu_cap:
            return f"needs {spec.memory.gpu_gib:g} GiB on GPU {spec.memory.gpu_device}, budget is {gpu_cap:g} GiB"
        if spec.memory.host_gib and self._budget.host_gib is not None and spec.memory.host_gib > self._budget.host_gib:
            return f"needs {spec.memory.host_gib:g} GiB host memory, budget is {self._budget.host_gib:g} GiB"
        return None

    async def _make_room(self, starting: ModelServer) -> None:
        """Stop LRU idle unpinned servers until `starting` fits; wait (bounded) for busy ones to drain."""
        never = self.fits_budget(starting.spec)
        if never:
            raise StartFailed(f"does not fit the memory budget: {never}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._budget.drain_timeout_s
        while True:
            others = [s for s in self.servers.values() if s is not starting and s.state in _RUNNING]
            if self._fits_beside(starting.spec, others):
                return
            evictable = sorted(
                (s for s in others if s.is_ready and s.inflight == 0 and not s.spec.pinned and self._competes(starting.spec, s.spec)),
                key=lambda s: s.last_used,
            )
            if evictable:
                victim = evictable[0]
                log.info("%s: stopping idle %s to make room", starting.name, victim.name)
                await victim.stop(f"evicted to make room for {starting.name}")
                continue
            if loop.time() >= deadline:
                busy = ", ".join(s.name for s in others if self._competes(starting.spec, s.spec))
                raise StartFailed(f"does not fit the memory budget beside busy or pinned servers ({busy}) after waiting {self._budget.drain_timeout_s:g}s")
            await asyncio.sleep(0.25)

    def _fits_beside(self, spec: LaunchSpec, running: list[ModelServer]) -> bool:
        mem = spec.memory
        cap = self._budget.gpu_gib.get(mem.gpu_device)
        if mem.gpu_gib and cap is not None:
            used = sum(s.spec.memory.gpu_gib for s in running if s.spec.memory.gpu_device == mem.gpu_device)
            if used + mem.gpu_gib > cap:
                return False
        if mem.host_gib and self._budget.host_gib is not None:
            if sum(s.spec.memory.host_gib for s in running) + mem.host_gib > self._budget.host_gib:
                return False
        return True

    @staticmethod
    def _competes(spec: LaunchSpec, other: LaunchSpec) -> bool:
        same_gpu = spec.memory.gpu_gib and other.memory.gpu_gib and spec.memory.gpu_device == other.memory.gpu_device
        return bool(same_gpu or (spec.memory.host_gib and other.memory.host_gib))

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(MONITOR_INTERVAL_S)
            for server in self.servers.values():
                try:
                    await server.check_alive()
                    server.drop_stale_leases(_LEASE_MAX_AGE_S)
                    ttl = server.spec.idle_ttl_s
                    if server.is_ready and server.owned and ttl > 0 and server.inflight == 0 and server.idle_for() > ttl:
                        await server.stop(f"idle for more than idle_ttl_s={ttl:g}")
                except Exception:
                    log.exception("%s: launcher monitor error", server.name)

    def _kill_owned_now(self) -> None:
        for server in self.servers.values():
            server.kill_now()


__all__ = ["Launcher", "ServerUnavailable"]
