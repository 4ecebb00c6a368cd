"""One local model server and its lifecycle, as an explicit state machine.

    stopped -> starting -> ready -> stopping -> stopped
                   \\          \\
                    -> failed  -> failed (crash)      failed -> starting | stopped

Every transition goes through `_transition`, under the server's one lock, and is logged
once. Starts are single-flight: concurrent callers of `ensure_ready` share one start task;
across worker processes a file lock makes one of them spawn and the others adopt.
"""

from __future__ import annotations

import asyncio
import enum
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import httpx
import psutil

from launchers import process_group, provision
from launchers.requirements import missing_requirements
from router_config.spec import LaunchSpec

log = logging.getLogger("llm_router.launcher")

READINESS_POLL_S = 0.1
STOP_GRACE_S = 10.0
_MAX_BACKOFF_S = 60.0
_STABLE_AFTER_S = 60.0


class ServerState(str, enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    FAILED = "failed"


_ALLOWED: dict[ServerState, set[ServerState]] = {
    ServerState.STOPPED: {ServerState.STARTING},
    ServerState.STARTING: {ServerState.READY, ServerState.FAILED, ServerState.STOPPING},
    ServerState.READY: {ServerState.STOPPING, ServerState.FAILED},
    ServerState.STOPPING: {ServerState.STOPPED},
    ServerState.FAILED: {ServerState.STARTING, ServerState.STOPPED},
}


class ServerUnavailable(Exception):
    """The server can't serve this request; the router moves on to the next fallback."""

    def __init__(self, name: str, why: str, log_tail: str = ""):
        self.name, self.why, self.log_tail = name, why, log_tail
        tail = f"\n--- last lines of logs/{name}.log ---\n{log_tail}" if log_tail else ""
        super().__init__(f"local model server '{name}' unavailable: {why}{tail}")


class StartFailed(Exception):
    def __init__(self, why: str, log_tail: str = ""):
        self.why, self.log_tail = why, log_tail
        super().__init__(why)


@dataclass(frozen=True)
class RuntimePaths:
    state_dir: Path
    log_dir: Path

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def state_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.json"

    def lock_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.lock"

    def used_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.used"

    def tmp_dir(self, name: str, create: bool = True) -> Path:
        """A short per-server TMPDIR: vLLM binds unix sockets there, whose paths must stay under 108 bytes."""
        digest = hashlib.sha1(str(self.state_dir.resolve()).encode()).hexdigest()[:8]
        path = Path(tempfile.gettempdir()) / f"llm-router-{digest}-{name[:24]}"
        if create:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path


@dataclass(frozen=True)
class ServerStatus:
    name: str
    state: str
    pid: int | None
    port: int
    owned: bool
    uptime_s: float | None
    idle_s: float | None
    inflight: int
    rss_gib: float | None
    last_error: str | None


RoomMaker = Callable[["ModelServer"], Awaitable[None]]


class ModelServer:
    def __init__(self, spec: LaunchSpec, paths: RuntimePaths, make_room: RoomMaker | None = None, die_with_us: bool = True):
        """die_with_us: a server this process spawns gets SIGTERM if this process dies without stopping
        it; False where servers must outlive their starter (`llm-router start`)."""
        self.spec = spec
        self._die_with_us = die_with_us
        self.name = spec.name
        self._paths = paths
        self._make_room = make_room
        self._lock = asyncio.Lock()
        self.state = ServerState.STOPPED
        self._proc: subprocess.Popen[bytes] | None = None
        self._pgid: int | None = None
        self._pid: int | None = None
        self.owned = False
        self._start_task: asyncio.Task[None] | None = None
        self._leases: dict[str, float] = {}
        self.last_used = time.monotonic()
        self._ready_at: float | None = None
        self.last_error: str | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._log_offset = 0

    # ---- public surface -------------------------------------------------------------------

    @property
    def inflight(self) -> int:
        return len(self._leases)

    @property
    def is_ready(self) -> bool:
        return self.state is ServerState.READY

    async def ensure_ready(self) -> None:
        """Return once the server is ready, starting it if needed; raise ServerUnavailable if it can't be."""
        if self.state is ServerState.READY:
            if self._alive():
                return
            await self._mark_crashed()
        if not self.spec.auto_start:
            raise ServerUnavailable(self.name, "auto_start is false and the server is not running")
        if self._start_task is None or self._start_task.done():
            if self.state is ServerState.FAILED and time.monotonic() < self._retry_at:
                wait = self._retry_at - time.monotonic()
                raise ServerUnavailable(self.name, f"{self.last_error} (next start allowed in {wait:.0f}s)")
            self._start_task = asyncio.create_task(self._start(), name=f"start {self.name}")
        await asyncio.shield(self._start_task)

    def start_in_background(self) -> None:
        """Begin a start without waiting (cold_start: fallback); errors are recorded in last_error."""
        if self._start_task is None or self._start_task.done():
            if self.state in (ServerState.STOPPED, ServerState.FAILED) and time.monotonic() >= self._retry_at:
                self._start_task = asyncio.create_task(self._start(), name=f"start {self.name}")
                self._start_task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def attach(self) -> bool:
        """Adopt a server already running on the spec's port; True if there is one."""
        async with self._lock:
            if self.state is not ServerState.STOPPED:
                return self.is_ready
            try:
                if not await self._adopt_running():
                    return False
            except StartFailed:
                return False
            self._transition(ServerState.STARTING, "attaching to a running server")
            self._transition(ServerState.READY, f"pid {self._pid}, adopted")
            return True

    def lease(self, request_id: str) -> None:
        self._leases[request_id] = time.monotonic()
        self._touch()

    def release(self, request_id: str) -> None:
        if self._leases.pop(request_id, None) is not None:
            self._touch()

    def drop_stale_leases(self, max_age_s: float) -> None:
        """Forget leases whose end was never reported, so a lost event can't pin a server forever."""
        now = time.monotonic()
        for rid, since in list(self._leases.items()):
            if now - since > max_age_s:
                del self._leases[rid]

    def idle_for(self) -> float:
        """Seconds since this server last began or ended a request, across all workers."""
        last = self.last_used
        try:
            shared = self._paths.used_file(self.name).stat().st_mtime
            last = max(last, time.monotonic() - (time.time() - shared))
        except FileNotFoundError:
            pass
        return time.monotonic() - last

    async def stop(self, reason: str) -> None:
        task = self._start_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        async with self._lock:
            if self.state is ServerState.READY:
                await self._terminate(reason)
            elif self.state is ServerState.FAILED:
                self._transition(ServerState.STOPPED, reason)

    async def check_alive(self) -> None:
        """Notice a server that died while ready (called by the launcher's monitor)."""
        if self.state is ServerState.READY and not self._alive():
            await self._mark_crashed()

    def status(self) -> ServerStatus:
        now = time.monotonic()
        return ServerStatus(
            name=self.name,
            state=self.state.value,
            pid=self._pid,
            port=self.spec.port,
            owned=self.owned,
            uptime_s=self._uptime(now),
            idle_s=round(self.idle_for(), 1) if self.is_ready else None,
            inflight=self.inflight,
            rss_gib=_group_rss_gib(self._pgid) if self._pgid and self.is_ready else None,
            last_error=self.last_error,
        )

    def _uptime(self, now: float) -> float | None:
        if not self.is_ready:
            return None
        if self._pid is not None:
            try:
                return round(time.time() - psutil.Process(self._pid).create_time(), 1)
            except psutil.Error:
                pass
        return round(now - self._ready_at, 1) if self._ready_at else None

    # ---- lifecycle internals --------------------------------------------------------------

    def _transition(self, new: ServerState, detail: str = "") -> None:
        old = self.state
        if new not in _ALLOWED[old]:
            raise RuntimeError(f"{self.name}: illegal transition {old.value} -> {new.value}")
        self.state = new
        if new is ServerState.READY:
            self._ready_at = time.monotonic()
            self.last_used = time.monotonic()
        log.info("%s: %s -> %s%s", self.name, old.value, new.value, f" ({detail})" if detail else "")
        self._write_state_file()

    async def _start(self) -> None:
        async with self._lock:
            self._transition(ServerState.STARTING)
            try:
                missing = missing_requirements(self.spec)
                if missing:
                    raise StartFailed("; ".join(missing))
                async with self._cross_process_lock():
                    if not await self._adopt_running():
                        await self._prepare()
                        if self._make_room:
                            await self._make_room(self)
                        self._spawn()
                        await self._wait_until_ready()
                self._failures = 0
                self._transition(ServerState.READY, f"pid {self._pid}, port {self.spec.port}" + ("" if self.owned else ", adopted"))
            except StartFailed as exc:
                ended = await self._kill_spawned()
                self._record_failure(exc.why)
                self._transition(ServerState.FAILED, exc.why)
                self._forget_process(group_ended=ended)
                raise ServerUnavailable(self.name, exc.why, exc.log_tail) from None
            except asyncio.CancelledError:
                ended = await self._kill_spawned()
                self._transition(ServerState.STOPPING, "start cancelled")
                self._transition(ServerState.STOPPED)
                self._forget_process(group_ended=ended)
                raise

    async def _prepare(self) -> None:
        pending = provision.pending_preparation(self.spec)
        if not pending:
            return
        log.info("%s: preparing %s before the first start", self.name, ", ".join(pending))
        try:
            await asyncio.to_thread(provision.prepare_spec, self.spec)
        except provision.PreparationFailed as exc:
            raise StartFailed(str(exc))

    def _spawn(self) -> None:
        log_path = self._paths.log_file(self.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as f:
            f.write(f"\n=== llm-router starting {self.name}: {self.spec.argv()}\n".encode())
            self._log_offset = f.tell()
        cache = self._paths.state_dir / "cache" / self.name
        cache.mkdir(parents=True, exist_ok=True)
        tmp = self._paths.tmp_dir(self.name)
        env = {"VLLM_CACHE_ROOT": str(cache), "TMPDIR": str(tmp), **self.spec.environment()}
        try:
            self._proc = process_group.spawn(self.spec.argv(), env, log_path, cwd=self.spec.source.parent, die_with_parent=self._die_with_us)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StartFailed(f"could not run {self.spec.executable()}: {exc.strerror}")
        self._pid = self._pgid = self._proc.pid
        self.owned = True
        self._write_state_file()

    async def _wait_until_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.spec.startup_timeout_s
        async with httpx.AsyncClient(base_url=self.spec.base_url, timeout=2.0) as client:
            while True:
                assert self._proc is not None
                code = self._proc.poll()
                if code is not None:
                    raise StartFailed(f"server exited with code {code} while starting", self._tail())
                if loop.time() >= deadline:
                    raise StartFailed(f"not ready after startup_timeout_s={self.spec.startup_timeout_s:g}", self._tail())
                if await self._answers(client):
                    return
                await asyncio.sleep(READINESS_POLL_S)

    async def _answers(self, client: httpx.AsyncClient, with_completion: bool = True) -> bool:
        """Ready = health 200, the served model listed and, where configured, one tiny completion."""
        try:
            health = await client.get(self.spec.health_path)
            if health.status_code != 200:
                return False
            models = await client.get("/v1/models")
            ids = {m.get("id") for m in models.json().get("data", [])} if models.status_code == 200 else set()
            if self.spec.served_model_name not in ids:
                return False
            if with_completion and self.spec.checks_with_completion:
                done = await client.post(
                    "/v1/completions",
                    json={"model": self.spec.served_model_name, "prompt": "hi", "max_tokens": 1},
                    timeout=60.0,
                )
                return done.status_code == 200
            return True
        except (httpx.HTTPError, ValueError, AttributeError):
            return False

    async def _adopt_running(self) -> bool:
        """Use a healthy server already on the port (another worker's, or started by hand)."""
        async with httpx.AsyncClient(base_url=self.spec.base_url, timeout=2.0) as client:
            try:
                await client.get(self.spec.health_path)
            except httpx.ConnectError:
                return False
            except httpx.HTTPError:
                pass
            # Whoever started it already proved it can complete; health and the model list suffice.
            if not await self._answers(client, with_completion=False):
                raise StartFailed(
                    f"port {self.spec.port} is held by another process that is not serving "
                    f"'{self.spec.served_model_name}'; stop it or change the port in {self.spec.source.name}"
                )
        recorded = self._read_state_file()
        pid = recorded.get("pid")
        if isinstance(pid, int) and psutil.pid_exists(pid):
            self._pid, self._pgid = pid, recorded.get("pgid") or pid
        else:
            self._pid = self._pgid = None
        self._proc, self.owned = None, False
        return True

    @asynccontextmanager
    async def _cross_process_lock(self) -> AsyncIterator[None]:
        path = self._paths.lock_file(self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(READINESS_POLL_S)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    async def _mark_crashed(self) -> None:
        async with self._lock:
            if self.state is not ServerState.READY or self._alive():
                return
            code = self._proc.poll() if self._proc else None
            why = f"server exited with code {code} while ready" if code is not None else "server process is gone"
            stable = self._ready_at is not None and time.monotonic() - self._ready_at > _STABLE_AFTER_S
            if stable:
                self._failures = 0
            self._record_failure(why)
            self._leases.clear()
            ended = await self._kill_spawned()
            self._transition(ServerState.FAILED, why)
            self._forget_process(group_ended=ended)

    def _record_failure(self, why: str) -> None:
        self.last_error = why
        self._failures += 1
        backoff = 0.0 if self._failures <= 1 else min(2.0 ** (self._failures - 1), _MAX_BACKOFF_S)
        self._retry_at = time.monotonic() + backoff

    async def _terminate(self, reason: str) -> None:
        self._transition(ServerState.STOPPING, reason)
        if self._pgid is not None:
            killed = await process_group.terminate_group(self._pgid, STOP_GRACE_S, self._proc)
            if killed:
                log.warning("%s: did not stop within %.0fs of SIGTERM; killed", self.name, STOP_GRACE_S)
        self._transition(ServerState.STOPPED)
        # Adopted servers too: whoever spawned it, its whole group is gone now.
        self._forget_process(group_ended=self._pgid is not None)

    async def _kill_spawned(self) -> bool:
        """Stop the group we spawned (a failed or cancelled start, a crash's leftovers); False if we spawned none."""
        if self._proc is None or self._pgid is None:
            return False
        await process_group.terminate_group(self._pgid, STOP_GRACE_S, self._proc)
        return True

    def _forget_process(self, group_ended: bool) -> None:
        """group_ended: we just ended the server's process group, so its TMPDIR can go. Never otherwise:
        an adopted server can still be running, or be restarted by its owner, with the same TMPDIR."""
        if group_ended:
            shutil.rmtree(self._paths.tmp_dir(self.name, create=False), ignore_errors=True)
        self._proc = None
        self._pid = self._pgid = None
        self.owned = False

    def kill_now(self) -> None:
        """Interpreter-exit safety net: SIGKILL an owned group without the event loop."""
        if self.owned and self._pgid is not None:
            process_group.kill_group_now(self._pgid)

    def _alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        if self._pid is not None:
            return psutil.pid_exists(self._pid)
        return True  # adopted without a known pid: the request itself will tell

    def _tail(self) -> str:
        return process_group.log_tail(self._paths.log_file(self.name), self._log_offset)

    def _touch(self) -> None:
        self.last_used = time.monotonic()
        path = self._paths.used_file(self.name)
        try:
            os.utime(path)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

    def _write_state_file(self) -> None:
        """Shared with other workers and the CLI; written only by whoever knows the process."""
        if self._pid is None:
            return
        path = self._paths.state_file(self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"state": self.state.value, "pid": self._pid, "pgid": self._pgid, "port": self.spec.port,
                "owner_pid": os.getpid() if self.owned else None, "since": time.time(), "last_error": self.last_error}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    def _read_state_file(self) -> dict:
        try:
            return json.loads(self._paths.state_file(self.name).read_text())
        except (FileNotFoundError, ValueError):
            return {}


def _group_rss_gib(pgid: int) -> float | None:
    total = 0
    for proc in process_group.group_members(pgid):
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return round(total / 2**30, 2) if total else None
