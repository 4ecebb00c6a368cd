"""One local model server and its lifecycle, as an explicit state machine.

    stopped -> starting -> ready -> stopping -> stopped
                   \\          \\
                    -> failed  -> failed (crash)      failed -> starting | stopped

Every transition goes through `_transition(expected, new)`, a compare-and-swap against the
state the caller expects, and is logged once. Nothing holds a lock across a start that can take
minutes: a start is one task that every caller awaits (single flight), and a stop is one task
likewise. A ModelServer lives in the machine's one owner process (launchers/owner.py), on the
owner's event loop, so a swap with no await inside it is atomic.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import httpx
import psutil

from launchers import metrics, process_group, provision
from launchers.paths import RuntimePaths
from launchers.requirements import missing_requirements
from router_config.spec import LaunchSpec

log = logging.getLogger("llm_router.launcher")

STATE_FOLDER_ENV = "LLM_ROUTER_STATE_DIR"
"""In every server's environment: the state folder whose owner started it. A server without it was
started by hand; one with another folder belongs to another llm-router, which must not be adopted."""
READINESS_POLL_S = 0.1
STOP_GRACE_S = 10.0
_PROBE_TIMEOUT_S = 1.0
_MAX_BACKOFF_S = 60.0
_STABLE_AFTER_S = 60.0


class ServerState(str, enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    FAILED = "failed"


S = ServerState
LEGAL_TRANSITIONS: frozenset[tuple[ServerState, ServerState]] = frozenset({
    (S.STOPPED, S.STARTING),
    (S.STARTING, S.READY),
    (S.STARTING, S.FAILED),
    (S.STARTING, S.STOPPING),  # a start cancelled by a stop
    (S.READY, S.STOPPING),
    (S.READY, S.FAILED),  # crashed, or stopped answering
    (S.STOPPING, S.STOPPED),
    (S.FAILED, S.STARTING),
    (S.FAILED, S.STOPPED),
})


class IllegalTransition(RuntimeError):
    pass


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


@asynccontextmanager
async def _no_budget(_: ModelServer) -> AsyncIterator[None]:
    yield


RoomMaker = Callable[["ModelServer"], AbstractAsyncContextManager[None]]
"""Makes room under the memory budget for a server about to spawn, and holds it while it does."""
ChangeListener = Callable[["ModelServer"], None]


class ModelServer:
    def __init__(self, spec: LaunchSpec, paths: RuntimePaths, make_room: RoomMaker = _no_budget, die_with_us: bool = True,
                 on_change: ChangeListener | None = None):
        """die_with_us: a server this process spawns gets SIGTERM if this process dies without stopping
        it; False where servers must outlive their starter (`llm-router start` without a gateway)."""
        self.spec = spec
        self.name = spec.name
        self._paths = paths
        self._make_room = make_room
        self._die_with_us = die_with_us
        self._on_change = on_change
        self.state = ServerState.STOPPED
        self._proc: subprocess.Popen[bytes] | None = None
        self._pgid: int | None = None
        self._pid: int | None = None
        self.owned = False
        self._start_task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._cleanup: asyncio.Task[None] | None = None
        self._next_spec: LaunchSpec | None = None
        self._leases: dict[str, float] = {}
        self._waiting = 0
        self.last_used = time.monotonic()
        self._ready_at: float | None = None
        self.last_error: str | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._log_offset = 0
        metrics.server_state(self.name, self.state.value)

    # ---- public surface -------------------------------------------------------------------

    @property
    def inflight(self) -> int:
        return len(self._leases)

    @property
    def is_ready(self) -> bool:
        return self.state is ServerState.READY

    @property
    def holds_memory(self) -> bool:
        """Counts against the memory budget: a process exists (or is about to) for this server."""
        return self.state in (ServerState.READY, ServerState.STOPPING) or (self.state is ServerState.STARTING and self._pgid is not None)

    @property
    def evictable(self) -> bool:
        """Idle enough to be stopped to make room: ready, nobody using it or waiting for it, not pinned."""
        return self.is_ready and not self._leases and self._waiting == 0 and not self.spec.pinned

    async def ensure_ready(self, lease: str | None = None) -> None:
        """Return once the server is ready (holding `lease` for the caller, if given), starting it if
        needed; raise ServerUnavailable if it can't be."""
        self._waiting += 1
        metrics.waiting_for_start(self.name, self._waiting)
        try:
            while True:
                if self.state is ServerState.READY:
                    if self._alive():
                        if lease is not None:
                            self.lease(lease)
                        return
                    await self._mark_failed(self._why_gone())
                    continue
                if self.state is ServerState.STOPPING and self._stop_task is not None:
                    await asyncio.shield(self._stop_task)
                    continue
                await self._await_start(self._begin_start())
        finally:
            self._waiting -= 1
            metrics.waiting_for_start(self.name, self._waiting)

    def start_in_background(self) -> None:
        """Begin a start without waiting for it (cold_start: fallback); the outcome lands in state and last_error."""
        if self.state is ServerState.READY:
            return
        try:
            self._begin_start()
        except ServerUnavailable:
            pass  # auto_start off or backing off: recorded already, nothing to begin

    async def attach(self) -> bool:
        """Adopt a server already running on the spec's port; True if there is one."""
        if self.state is not ServerState.STOPPED:
            return self.is_ready
        try:
            found = await self._adopt_running()
        except StartFailed:
            return False
        if not found or not self._transition(ServerState.STOPPED, ServerState.STARTING, "attaching to a running server"):
            return False
        return self._transition(ServerState.STARTING, ServerState.READY, f"pid {self._pid}, adopted")

    def lease(self, request_id: str) -> None:
        self._leases[request_id] = time.monotonic()
        self.last_used = time.monotonic()

    def release(self, request_id: str) -> None:
        if self._leases.pop(request_id, None) is not None:
            self.last_used = time.monotonic()

    def release_all(self, prefix: str) -> int:
        """Drop every lease whose id starts with `prefix` (a client that went away); how many."""
        dropped = [rid for rid in self._leases if rid.startswith(prefix)]
        for rid in dropped:
            self.release(rid)
        return len(dropped)

    def drop_stale_leases(self, max_age_s: float) -> None:
        """Forget leases whose end was never reported, so a lost event can't pin a server forever."""
        now = time.monotonic()
        for rid, since in list(self._leases.items()):
            if now - since > max_age_s:
                del self._leases[rid]

    def idle_for(self) -> float:
        """Seconds since this server last began or ended a request (of any worker: they all lease here)."""
        return time.monotonic() - self.last_used

    async def stop(self, reason: str) -> None:
        """Stop the server (a start in progress is cancelled); return once it is stopped."""
        start = self._start_task
        if start is not None and not start.done():
            start.cancel()
            await asyncio.gather(start, return_exceptions=True)
        if self.state is ServerState.FAILED:
            self._transition(ServerState.FAILED, ServerState.STOPPED, reason)
        # Leaving `ready` here, in the caller's own step, closes the gap in which a request could
        # lease a server that an eviction or an idle stop has already chosen to stop.
        elif self._transition(ServerState.READY, ServerState.STOPPING, reason):
            self._stop_task = asyncio.create_task(self._terminate(), name=f"stop {self.name}")
        if self._stop_task is not None:
            await asyncio.shield(self._stop_task)

    async def check_alive(self, probe_port: bool = False) -> None:
        """Notice a ready server whose process is gone or, with probe_port (after a failed request, and
        always for a server we didn't spawn), whose port refuses connections."""
        if self.state is not ServerState.READY:
            return
        why = None if self._alive() else self._why_gone()
        if why is None and (probe_port or self._proc is None) and not await self._port_open():
            why = f"port {self.spec.port} refuses connections"
        if why is not None:
            await self._mark_failed(why)

    def status(self) -> ServerStatus:
        return ServerStatus(
            name=self.name,
            state=self.state.value,
            pid=self._pid,
            port=self.spec.port,
            owned=self.owned,
            uptime_s=self._uptime(),
            idle_s=round(self.idle_for(), 1) if self.is_ready else None,
            inflight=self.inflight,
            rss_gib=_group_rss_gib(self._pgid) if self._pgid and self.is_ready else None,
            last_error=self.last_error,
        )

    def reconfigure(self, spec: LaunchSpec) -> bool:
        """Take a changed launch spec: at once if the server's process doesn't depend on what changed
        (or none runs); else it is used from the next start, and True says the running server must be
        restarted for it (the launcher does that when the server is next idle)."""
        if spec == self.spec:
            return False
        if _process_of(spec) == _process_of(self.spec) or self.state in (ServerState.STOPPED, ServerState.FAILED):
            self.spec = spec
            return False
        self._next_spec = spec
        return True

    @property
    def awaits_restart(self) -> bool:
        """A changed spec waits for this server's next start."""
        return self._next_spec is not None

    def kill_now(self) -> None:
        """Interpreter-exit safety net: SIGKILL an owned group without the event loop."""
        if self.owned and self._pgid is not None:
            process_group.kill_group_now(self._pgid)

    # ---- the state machine ----------------------------------------------------------------

    def _transition(self, expected: ServerState, new: ServerState, detail: str = "") -> bool:
        """Move from `expected` to `new`; False (and nothing changes) if the state isn't `expected`."""
        if (expected, new) not in LEGAL_TRANSITIONS:
            raise IllegalTransition(f"{self.name}: {expected.value} -> {new.value} is not a legal transition")
        if self.state is not expected:
            return False
        self.state = new
        if new is ServerState.READY:
            self._ready_at = self.last_used = time.monotonic()
        log.info("%s: %s -> %s%s", self.name, expected.value, new.value, f" ({detail})" if detail else "")
        metrics.server_state(self.name, new.value)
        self._write_state_file()
        if self._on_change is not None:
            self._on_change(self)
        return True

    def _begin_start(self) -> asyncio.Task[None]:
        """The one start task, created if none is running: ensure_ready and start_in_background share it."""
        if self._start_task is not None and not self._start_task.done():
            return self._start_task
        if not self.spec.auto_start:
            raise ServerUnavailable(self.name, "auto_start is false and the server is not running")
        if self.state is ServerState.FAILED and time.monotonic() < self._retry_at:
            wait = self._retry_at - time.monotonic()
            raise ServerUnavailable(self.name, f"{self.last_error} (next start allowed in {wait:.0f}s)")
        expected = self.state
        if expected not in (ServerState.STOPPED, ServerState.FAILED) or not self._transition(expected, ServerState.STARTING):
            raise ServerUnavailable(self.name, f"cannot start while {self.state.value}")
        task = asyncio.create_task(self._start(), name=f"start {self.name}")
        task.add_done_callback(_retrieve)
        self._start_task = task
        return task

    async def _await_start(self, task: asyncio.Task[None]) -> None:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and not (current is not None and current.cancelling()):
                raise ServerUnavailable(self.name, "stopped while starting") from None
            raise

    async def _start(self) -> None:
        began = time.monotonic()
        try:
            if self._cleanup is not None:
                await asyncio.shield(self._cleanup)
            missing = missing_requirements(self.spec)
            if missing:
                raise StartFailed("; ".join(missing))
            if not await self._adopt_running():
                await self._prepare()
                async with self._make_room(self):
                    self._spawn()
                await self._wait_until_ready()
        except StartFailed as exc:
            ended = await self._end_spawned()
            self._record_failure(exc.why)
            metrics.cold_start(self.name, "failed")
            self._transition(ServerState.STARTING, ServerState.FAILED, exc.why)
            self._forget_process(group_ended=ended)
            raise ServerUnavailable(self.name, exc.why, exc.log_tail) from None
        except asyncio.CancelledError:
            ended = await self._end_spawned()
            metrics.cold_start(self.name, "cancelled")
            self._transition(ServerState.STARTING, ServerState.STOPPING, "start cancelled")
            self._transition(ServerState.STOPPING, ServerState.STOPPED)
            self._forget_process(group_ended=ended)
            raise
        if self.owned:
            metrics.cold_start(self.name, "ready", time.monotonic() - began)
        else:
            metrics.cold_start(self.name, "adopted")
        self._failures = 0
        self._transition(ServerState.STARTING, ServerState.READY, f"pid {self._pid}, port {self.spec.port}" + ("" if self.owned else ", adopted"))

    async def _terminate(self) -> None:
        pgid, proc = self._pgid, self._proc
        if pgid is not None:
            killed = await process_group.terminate_group(pgid, STOP_GRACE_S, proc)
            if killed:
                log.warning("%s: did not stop within %.0fs of SIGTERM; killed", self.name, STOP_GRACE_S)
        self._leases.clear()
        # Adopted servers too: whoever spawned it, its whole group is gone now.
        self._forget_process(group_ended=pgid is not None)
        if self._next_spec is not None:
            self.spec, self._next_spec = self._next_spec, None
        self._transition(ServerState.STOPPING, ServerState.STOPPED)

    async def _mark_failed(self, why: str) -> None:
        """A ready server that crashed or stopped answering: failed, its leftovers stopped; the next
        request starts it again."""
        if self.state is not ServerState.READY:
            return  # someone else noticed first
        if self._ready_at is not None and time.monotonic() - self._ready_at > _STABLE_AFTER_S:
            self._failures = 0  # it ran long enough: this is not a crash loop
        self._record_failure(why)  # before the transition, whose listeners report last_error
        pgid, proc, owned = self._pgid, self._proc, self.owned
        self._transition(ServerState.READY, ServerState.FAILED, why)
        self._leases.clear()
        self._forget_process(group_ended=False)
        if owned and pgid is not None:
            # The next start waits for this: a dying server may still hold the port and answer health.
            self._cleanup = asyncio.create_task(self._end_group(pgid, proc), name=f"clean up {self.name}")
            await asyncio.shield(self._cleanup)

    async def _end_group(self, pgid: int, proc: subprocess.Popen[bytes] | None) -> None:
        await process_group.terminate_group(pgid, STOP_GRACE_S, proc)
        shutil.rmtree(self._paths.tmp_dir(self.name, create=False), ignore_errors=True)

    def _record_failure(self, why: str) -> None:
        self.last_error = why
        self._failures += 1
        backoff = 0.0 if self._failures <= 1 else min(2.0 ** (self._failures - 1), _MAX_BACKOFF_S)
        self._retry_at = time.monotonic() + backoff

    # ---- starting -------------------------------------------------------------------------

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
        env = {"VLLM_CACHE_ROOT": str(cache), "TMPDIR": str(tmp), **self.spec.environment(), STATE_FOLDER_ENV: self._state_folder()}
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
        """Use a healthy server already on the port (started by `llm-router start`, or by hand)."""
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
        theirs = await asyncio.to_thread(_started_for, self.spec.port)
        if theirs is not None and theirs != self._state_folder():
            # Its requests, leases and memory are another owner's: serving ours there, that owner's stop or
            # eviction would cut them off, and our budget would count a server we don't control.
            raise StartFailed(
                f"port {self.spec.port} is served by a server another llm-router started for state folder {theirs}; "
                f"it is not adopted. Fix: give {self.spec.source.name} a port of its own in this config (`port:` and "
                f"its deployment's api_base), or stop that server from its own config (llm-router stop {self.name})"
            )
        recorded = self._read_state_file()
        pid = recorded.get("pid")
        if isinstance(pid, int) and _started_at(pid) == recorded.get("started"):
            self._pid, self._pgid = pid, recorded.get("pgid") or pid
        else:
            # Not the recorded process (gone, and its pid perhaps reused by another): never ours to signal.
            self._pid = self._pgid = None
        self._proc, self.owned = None, False
        return True

    # ---- processes ------------------------------------------------------------------------

    async def _end_spawned(self) -> bool:
        """Stop the group we spawned (a failed or cancelled start); False if we spawned none."""
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

    def _alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        if self._pid is not None:
            try:
                return psutil.Process(self._pid).status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                return False
        return True  # adopted without a known pid: the port probe will tell

    def _why_gone(self) -> str:
        code = self._proc.poll() if self._proc else None
        return f"server exited with code {code} while ready" if code is not None else "server process is gone"

    async def _port_open(self) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(self.spec.host, self.spec.port), _PROBE_TIMEOUT_S)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True

    def _uptime(self) -> float | None:
        if not self.is_ready:
            return None
        if self._pid is not None:
            try:
                return round(time.time() - psutil.Process(self._pid).create_time(), 1)
            except psutil.Error:
                pass
        return round(time.monotonic() - self._ready_at, 1) if self._ready_at else None

    def _tail(self) -> str:
        return process_group.log_tail(self._paths.log_file(self.name), self._log_offset)

    def _state_folder(self) -> str:
        return str(self._paths.state_dir.resolve())

    def _write_state_file(self) -> None:
        """For the next owner, which adopts a server that outlived us; written only while we know the process."""
        if self._pid is None:
            return
        path = self._paths.state_file(self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"state": self.state.value, "pid": self._pid, "pgid": self._pgid, "started": _started_at(self._pid), "port": self.spec.port,
                "owner_pid": os.getpid() if self.owned else None, "since": time.time(), "last_error": self.last_error}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    def _read_state_file(self) -> dict:
        try:
            return json.loads(self._paths.state_file(self.name).read_text())
        except (FileNotFoundError, ValueError):
            return {}


def _started_at(pid: int) -> float | None:
    """When the process with this pid started: with the pid, it names one process, whereas a pid alone
    is reused by the system once its process is gone."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _started_for(port: int) -> str | None:
    """The state folder whose llm-router started the server listening on `port`; None for a server started
    by hand (or by a process whose environment this user can't read)."""
    process = process_group.listening_process(port)
    try:
        return process.environ().get(STATE_FOLDER_ENV) if process is not None else None
    except psutil.Error:
        return None


def _process_of(spec: LaunchSpec) -> tuple[object, ...]:
    """What a running server's process was started with: a change here needs a restart."""
    return (spec.argv(), spec.environment(), spec.host, spec.port, spec.health_path, spec.served_model_name,
            spec.checks_with_completion, spec.source)


def _retrieve(task: asyncio.Task[None]) -> None:
    """A start nobody awaits (start_in_background) still has its outcome consumed; it is in state and last_error."""
    if not task.cancelled():
        task.exception()


def _group_rss_gib(pgid: int) -> float | None:
    total = 0
    for proc in process_group.group_members(pgid):
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return round(total / 2**30, 2) if total else None
