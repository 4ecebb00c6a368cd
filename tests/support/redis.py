"""A real redis-server for tests: on a free loopback port, in a temporary folder, with a password."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import redis

from tests.support.gateway import free_port
from tests.support.waiting import wait_until


class RedisServer:
    def __init__(self, directory: Path, password: str):
        self.directory = directory
        self.password = password
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        # Nothing is saved: a restart after a kill comes back empty, as a Redis without persistence does.
        (directory / "redis.conf").write_text(f"port {self.port}\nbind 127.0.0.1\ndir {directory}\nsave \"\"\n"
                                              f"appendonly no\nrequirepass {password}\n")

    def start(self) -> RedisServer:
        executable = shutil.which("redis-server")
        assert executable, "redis-server is not installed (.ci/run installs Debian's redis-server)"
        with open(self.directory / "redis.log", "ab") as log:
            self.proc = subprocess.Popen([executable, str(self.directory / "redis.conf")], stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._answers, 10, "redis-server to answer")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis("127.0.0.1", self.port, password=self.password, socket_timeout=2)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL: Redis vanishes without a word, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
