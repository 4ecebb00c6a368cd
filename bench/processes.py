"""Every process the bench starts, and the guarantee that none outlives it.

Each process is the leader of its own session, so stopping it signals its whole group.
Every one also carries BENCH_RUN_MARKER in its environment, which its children inherit
(the model servers a gateway launches in sessions of their own included): the final sweep
finds and kills anything still carrying this run's marker, then reports what it found.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx
import psutil

from launchers import process_group
from tests.support.gateway import free_port

REPO = Path(__file__).resolve().parents[1]
MARKER_ENV = "BENCH_RUN_MARKER"
STOP_GRACE_S = 20.0


def port_is_free(port: int) -> bool:
    """Whether a server could bind the port now; like servers do, TIME_WAIT leftovers don't count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Managed:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def state(self) -> str:
        """Running, or how it ended: what a failure report needs when the process stops answering."""
        code = self.popen.poll()
        if code is None:
            return f"{self.name} (pid {self.pid}) is still running"
        if code < 0:
            return f"{self.name} (pid {self.pid}) was killed by {signal.Signals(-code).name}"
        return f"{self.name} (pid {self.pid}) exited with {code}"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def rss_bytes(self) -> int:
        """RSS of the process and its descendants in its own process group.

        Model servers a gateway launches run in sessions of their own, so they are left out.
        """
        return int(self._sum_over_group(lambda p: p.memory_info().rss))

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the process and its descendants in its own group."""
        return self._sum_over_group(lambda p: sum(p.cpu_times()[:2]))

    def _sum_over_group(self, measure: Callable[[psutil.Process], float]) -> float:
        try:
            root = psutil.Process(self.pid)
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for proc in members:
            try:
                if os.getpgid(proc.pid) == self.pid:
                    total += measure(proc)
            except (ProcessLookupError, psutil.Error):
                continue  # exited meanwhile
        return total


@dataclass
class Supervisor:
    """Starts processes into `log_dir` and stops all of them, whatever happens."""

    log_dir: Path
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    _procs: list[Managed] = field(default_factory=list)

    def env(self, extra: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in drop}
        return {**env, **(extra or {}), MARKER_ENV: self.marker}

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
              stdout: IO[bytes] | None = None) -> Managed:
        """Start argv in a session of its own; output goes to <log_dir>/<name>.log (stdout to `stdout` if given)."""
        log_path = self.log_dir / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout or log, stderr=log if stdout else subprocess.STDOUT,
                                     env=env or self.env(), cwd=cwd, start_new_session=True)
        managed = Managed(name, popen, log_path)
        self._procs.append(managed)
        return managed

    def run(self, name: str, argv: list[str], timeout_s: float, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
        """Run to completion and return stdout; raise with the log tail on failure or timeout."""
        out_path = self.log_dir / f"{name}.stdout"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(out_path, "wb") as out:
            managed = self.start(name, argv, env=env, cwd=cwd, stdout=out)
        self.finish(managed, timeout_s)
        return out_path.read_text()

    def finish(self, managed: Managed, timeout_s: float) -> None:
        """Wait for a process that should exit by itself; raise with its log tail if it fails or hangs."""
        try:
            code = managed.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.stop(managed)
            raise RuntimeError(f"{managed.name} did not finish within {timeout_s:g}s:\n{managed.log_tail()}")
        self.stop(managed)  # reaps it and any stray children of its group
        if code != 0:
            raise RuntimeError(f"{managed.name} exited with {code}:\n{managed.log_tail()}")

    def stop(self, managed: Managed, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM the group (a gateway then stops the servers it launched), SIGKILL after grace_s."""
        process_group.stop_group(managed.pid, grace_s, managed.popen)
        if managed in self._procs:
            self._procs.remove(managed)

    def stop_all(self) -> None:
        # Newest first: gateways stop before the upstream they talk to.
        for managed in reversed(list(self._procs)):
            self.stop(managed)

    def sweep(self) -> list[str]:
        """Kill whatever still carries this run's marker; return a description of each."""
        found = marked_processes(self.marker)
        described = [_describe(p) for p in found]
        own_group = os.getpgid(0)
        for proc in found:
            try:
                pgid = os.getpgid(proc.pid)
                if pgid != own_group:
                    process_group.kill_group_now(pgid)
                else:
                    proc.kill()
            except (ProcessLookupError, psutil.Error):
                continue
        psutil.wait_procs(found, timeout=5)
        return described

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop_all()


def marked_processes(marker: str) -> list[psutil.Process]:
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.pid == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(MARKER_ENV) == marker:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def wait_http_ok(url: str, managed: Managed | None, timeout_s: float) -> None:
    """Poll GET url until 200; fail early if `managed` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if managed is not None and not managed.alive():
            raise RuntimeError(f"{managed.name} exited with {managed.popen.returncode}:\n{managed.log_tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tail = managed.log_tail() if managed else ""
    raise RuntimeError(f"{url} not ready after {timeout_s:g}s:\n{tail}")


def wait_port_free(port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not port_is_free(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} still in use after {timeout_s:g}s")
        time.sleep(0.05)


def _describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid}: {' '.join(proc.cmdline())[:200]}"
    except psutil.Error:
        return f"pid {proc.pid}"


# ---- the processes under test ------------------------------------------------------------

LIVENESS = "/health/liveliness"
STARTUP_TIMEOUT_S = 120.0
# LiteLLM's environment for both gateways: offline, production, no .env from the folder.
LITELLM_ENV = {
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true",
}
_CLOUD_ENV = ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LLM_ROUTER_MASTER_KEY", "LITELLM_MASTER_KEY")


@dataclass(frozen=True)
class Server:
    """A started HTTP server under test."""

    name: str
    url: str
    process: Managed


@dataclass(frozen=True)
class RouterGateway(Server):
    master_key: str
    team_key: str
    config: Path

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.master_key}"}

    def server_state(self, group: str) -> str:
        servers = self._admin("GET", "/v1/router/servers", 30).json()["servers"]
        return next(s["state"] for s in servers if s["name"] == group)

    def stop_server(self, group: str) -> None:
        self._admin("POST", f"/v1/router/servers/{group}/stop", 60).raise_for_status()

    def _admin(self, method: str, path: str, timeout: float) -> httpx.Response:
        try:
            return httpx.request(method, f"{self.url}{path}", headers=self.admin_headers, timeout=timeout)
        except httpx.TransportError as exc:
            # The run's folder is gone with a CI machine: the report must carry the evidence.
            router_log = self.config.parent / "logs" / "router.log"
            tail = router_log.read_text(errors="replace")[-2000:] if router_log.exists() else "(none)"
            raise RuntimeError(f"{method} {path}: {type(exc).__name__}: {exc}; {self.process.state()}\n"
                               f"--- its output:\n{self.process.log_tail(2000)}\n--- {router_log}:\n{tail}") from exc


def start_upstream(sup: Supervisor, argv: list[str], port: int) -> Server:
    proc = sup.start("upstream", argv, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{url}/health", proc, 30)
    return Server("upstream", url, proc)


def stock_litellm_executable() -> Path:
    """`litellm` from its own default install of the locked version (litellm[proxy], nothing added).

    Our environment adds packages that make LiteLLM itself faster (see the README's Performance
    section), so stock LiteLLM "as a user installs it" needs an environment of its own. It is made
    once with uv (seconds from uv's cache) under the llm-router home.
    """
    import importlib.metadata

    version = importlib.metadata.version("litellm")
    venv = Path(os.environ.get("LLM_ROUTER_HOME") or Path.home() / ".cache" / "llm-router") / "bench" / f"stock-litellm-{version}"
    executable = venv / "bin" / "litellm"
    if not executable.exists():
        subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(["uv", "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), f"litellm[proxy]=={version}"], check=True)
    return executable


def launch_stock(sup: Supervisor, config: Path) -> Server:
    """Start stock LiteLLM without waiting; see wait_ready."""
    port = free_port()
    litellm = stock_litellm_executable()
    env = sup.env({**LITELLM_ENV, "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true"}, drop=_CLOUD_ENV)
    proc = sup.start("stock-litellm", [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                     env=env, cwd=config.parent)
    return Server("stock-litellm", f"http://127.0.0.1:{port}", proc)


def launch_router(sup: Supervisor, name: str, config: Path, master_key: str, team_key: str, workers: int = 1,
                  env: dict[str, str] | None = None) -> RouterGateway:
    """Start `llm-router serve` without waiting; see wait_ready."""
    port, proc = _serve(sup, name, config, workers, {"LLM_ROUTER_MASTER_KEY": master_key, **(env or {})})
    return RouterGateway(name, f"http://127.0.0.1:{port}", proc, master_key, team_key, config)


def launch_bare_litellm(sup: Supervisor, name: str, config: Path) -> Server:
    """Start LiteLLM's app under llm-router's serving settings (bench/bare_litellm.py), without waiting."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.bare_litellm", str(config), str(port)]
    env = sup.env({**LITELLM_ENV, "PYTHONPATH": str(REPO)}, drop=_CLOUD_ENV)
    return Server(name, f"http://127.0.0.1:{port}", sup.start(name, argv, env=env, cwd=config.parent))


def _serve(sup: Supervisor, name: str, config: Path, workers: int, extra_env: dict[str, str]) -> tuple[int, Managed]:
    port = free_port()
    # Always explicit: the default depends on the machine's CPU count.
    argv = [sys.executable, "-m", "llm_router.cli", "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]
    env = sup.env({**LITELLM_ENV, **extra_env, "PYTHONPATH": str(REPO)}, drop=_CLOUD_ENV)
    return port, sup.start(name, argv, env=env, cwd=config.parent)


def wait_ready(server: Server) -> None:
    wait_http_ok(server.url + LIVENESS, server.process, STARTUP_TIMEOUT_S)


def add_team_key(sup: Supervisor, config: Path, models: list[str]) -> str:
    """`llm-router keys add`, with a model allowlist and an rpm limit so both checks run per request."""
    out = sup.run("keys-add", [sys.executable, "-m", "llm_router.cli", "keys", "add", "bench", "--team", "bench",
                               "--models", ",".join(models), "--rpm", "100000000", "--config", str(config)],
                  timeout_s=60, cwd=REPO)
    return out.strip().splitlines()[-1]
