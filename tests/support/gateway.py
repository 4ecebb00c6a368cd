"""Running the real `llm-router serve` as a subprocess on loopback, for tests."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai

from launchers import process_group

REPO = Path(__file__).resolve().parents[2]
FAKE_MODEL_SERVER = REPO / "tests" / "fakes" / "model_server.py"


_HANDED_OUT = Path(tempfile.gettempdir()) / "llm-router-test-ports"
"""One file per port free_port() has handed out, in any process on this machine."""
_HANDED_OUT_FOR_S = 1800.0
_DRAWS = 200
_RANGE_SIZE = 12000


def free_port() -> int:
    """A port nothing listens on, handed out once per half hour to all the test and bench processes of
    this machine. It lies below the kernel's ephemeral range: a gateway binds its port only after it has
    imported LiteLLM, seconds later, and in between any outgoing connection (tests make thousands) may
    take an ephemeral port as its own, which then can't be bound (seen in CI: a gateway exited with
    'address already in use'). xdist workers draw at once, hence the marks."""
    try:
        _HANDED_OUT.mkdir()
        _HANDED_OUT.chmod(0o1777)  # like the temp folder itself: every user's test processes share it
    except FileExistsError:
        pass
    high = _ephemeral_low()
    draws = random.Random()
    for _ in range(_DRAWS):
        port = draws.randrange(high - _RANGE_SIZE, high)
        if _bindable(port) and _hand_out(_HANDED_OUT / str(port)):
            return port
    raise RuntimeError(f"no free port below {high} after {_DRAWS} draws")


def _ephemeral_low() -> int:
    """The lowest port the kernel hands to outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _hand_out(mark: Path) -> bool:
    try:
        os.close(os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        try:
            if time.time() - mark.stat().st_mtime < _HANDED_OUT_FOR_S:
                return False
            mark.unlink()  # handed out long ago: free again, for whoever creates the mark first
        except FileNotFoundError:
            pass
        except PermissionError:
            return False  # another user's mark
        return _hand_out(mark)


def closed_port() -> int:
    """A port nothing listens on (connection refused)."""
    return free_port()


def fake_server_spec(port: int, served_name: str, *flags: str, **keys: object) -> str:
    """A launch spec (YAML) running tests/fakes/model_server.py as an OpenAI-compatible server."""
    command = [sys.executable, str(FAKE_MODEL_SERVER), "--port", "{port}", "--served-model-name", served_name, *flags]
    lines = ["engine: command", f"served_model_name: {served_name}", f"port: {port}", f"command: {command!r}"]
    lines += [f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


class Gateway:
    def __init__(self, config: Path, env: dict[str, str] | None = None, workers: int = 1, wrapper: tuple[str, ...] = ()):
        """wrapper: a command the gateway runs under (e.g. strace and its options)."""
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = config.parent / "gateway.out"
        self._env = {**os.environ, "LLM_ROUTER_LOG_LEVEL": "INFO", **(env or {})}
        for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LLM_ROUTER_MASTER_KEY"):
            if env is None or name not in env:
                self._env.pop(name, None)
        self._workers = workers
        self._wrapper = wrapper
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> Gateway:
        """Launch the gateway and return once it answers. The limit is generous: a gateway is ready in 6 to 15 s
        on a quiet 2-core machine, but took 96 s on one whose load average was 10 (others' tests beside ours)."""
        argv = [*self._wrapper, sys.executable, "-m", "llm_router.cli", "serve", "--config", str(self.config), "--port", str(self.port),
                "--workers", str(self._workers)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, env=self._env, cwd=self.config.parent, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                # Only our own gateway counts: another process on the port (one a port race gave it to) would
                # answer the probe, and the test would talk to it until it goes away.
                if httpx.get(f"{self.url}/health/liveliness", timeout=1).status_code == 200 and self._listens():
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gateway not ready after {timeout}s:\n{self.log_text()[-3000:]}")

    def _listens(self) -> bool:
        """Whether the process listening on our port is one of our gateway's (its process group)."""
        assert self.proc is not None
        listener = process_group.listening_process(self.port)
        try:
            return listener is not None and os.getpgid(listener.pid) == self.proc.pid
        except ProcessLookupError:
            return False

    def client(self, api_key: str = "unused", **kw: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, timeout=kw.pop("timeout", 60), **kw)  # type: ignore[arg-type]

    def post(self, path: str, body: object = None, *, content: bytes | None = None, key: str | None = None, timeout: float = 60) -> httpx.Response:
        headers = {"content-type": "application/json"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        if content is not None:
            return httpx.post(self.url + path, content=content, headers=headers, timeout=timeout)
        return httpx.post(self.url + path, json=body, headers=headers, timeout=timeout)

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.get(self.url + path, headers=headers, timeout=30)

    def received(self, group: str) -> list[dict]:
        """The bodies a local group's fake server received, when its spec records them
        (`--record-requests <config folder>/<group>.requests.jsonl`)."""
        path = self.config.parent / f"{group}.requests.jsonl"
        return [json.loads(line)["body"] for line in path.read_text().splitlines()] if path.exists() else []

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM the gateway's process group (SIGKILL after `timeout`); its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            process_group.stop_group(self.proc.pid, timeout, self.proc)
        return self.proc.wait(10)

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
