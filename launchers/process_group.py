"""Spawning a server in its own process session and stopping the whole group.

vLLM's engine and worker children survive a signal sent to the main PID alone, so every
stop is SIGTERM to the process group, then SIGKILL to the group after a grace period.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil

_SETPRIV = shutil.which("setpriv")
_TAIL_BYTES = 64 * 1024


def spawn(argv: list[str], env: dict[str, str], log_path: Path, cwd: Path, die_with_parent: bool) -> subprocess.Popen[bytes]:
    """Start argv (a list, never a shell string) as the leader of a new session, output to log_path.

    die_with_parent: the kernel sends the server SIGTERM if this process dies without stopping it
    (SIGKILL, a crash), where no exit handler runs. util-linux's setpriv sets that up before it execs
    argv; preexec_fn could too, but isn't safe in a process with threads."""
    if die_with_parent and _SETPRIV:
        argv = [_SETPRIV, "--pdeathsig", "TERM", "--", *argv]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            cwd=cwd,
            start_new_session=True,
        )


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes in the group."""
    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def listening_process(port: int) -> psutil.Process | None:
    """The process listening on this TCP port, where this user may see it (its own processes); else None."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    for connection in connections:
        if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port and connection.pid:
            try:
                return psutil.Process(connection.pid)
            except psutil.Error:
                return None
    return None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def terminate_group(pgid: int, grace_s: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """SIGTERM the group, SIGKILL it after grace_s; return True if it had to be killed."""
    _signal_group(pgid, signal.SIGTERM)
    if await _wait_group_gone(pgid, grace_s, proc):
        return False
    _signal_group(pgid, signal.SIGKILL)
    await _wait_group_gone(pgid, 10.0, proc)
    return True


def stop_group(pgid: int, grace_s: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """terminate_group for callers without an event loop (the CLI's tests, the bench); True if killed."""
    _signal_group(pgid, signal.SIGTERM)
    if _wait_group_gone_sync(pgid, grace_s, proc):
        return False
    _signal_group(pgid, signal.SIGKILL)
    _wait_group_gone_sync(pgid, 10.0, proc)
    return True


def kill_group_now(pgid: int) -> None:
    """Last resort when the event loop is already gone (interpreter exit)."""
    _signal_group(pgid, signal.SIGKILL)


async def _wait_group_gone(pgid: int, timeout_s: float, proc: subprocess.Popen[bytes] | None) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        if proc is not None:
            proc.poll()  # reap our own child so it doesn't linger as a zombie
        if not await asyncio.to_thread(group_members, pgid):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.1)


def _wait_group_gone_sync(pgid: int, timeout_s: float, proc: subprocess.Popen[bytes] | None) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None:
            proc.poll()
        if not group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def log_tail(log_path: Path, offset: int, lines: int = 20) -> str:
    """The last lines written to log_path since offset (this run's output only)."""
    try:
        with open(log_path, "rb") as f:
            f.seek(max(offset, f.seek(0, os.SEEK_END) - _TAIL_BYTES))  # a long-running server's log is large
            data = f.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
