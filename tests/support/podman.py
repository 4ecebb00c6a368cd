"""podman and podman-compose for the container tests, with the settings these machines need.

podman's defaults fail here; what works (verified on these machines): runc and the cgroupfs
manager with no default ulimits, in a containers.conf of the session's own (CONTAINERS_CONF);
builds with chroot isolation, the host's network and the host's CA bundle mounted where Debian's
ca-certificates adds extra CAs (the package registries are reached through a TLS-intercepting
proxy), in Docker's format, which keeps HEALTHCHECK. No image registry is reachable, so the images
llm-router's files name get stand-ins built from Debian's own packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

DEBIAN = "docker.io/library/debian:bookworm-slim"
"""The one base image the Containerfile names."""
REDIS = "docker.io/library/redis:7-bookworm"
"""The Redis image compose.yaml names."""
_CONTAINERS_CONF = """\
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""
_HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_BUILD_CA = "/usr/local/share/ca-certificates/build-proxy-ca.crt"
_REDIS_CONTAINERFILE = f"""\
FROM {DEBIAN}
RUN apt-get update && apt-get install -y --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*
CMD ["redis-server"]
"""


class Podman:
    """Runs podman and podman-compose with this session's containers.conf."""

    def __init__(self, folder: Path):
        for tool in ("podman", "podman-compose", "mmdebstrap"):
            assert shutil.which(tool), f"{tool} is not installed (.ci/run installs Debian's podman, podman-compose and mmdebstrap)"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "containers.conf").write_text(_CONTAINERS_CONF)
        self.folder = folder
        self.env = {**os.environ, "CONTAINERS_CONF": str(folder / "containers.conf")}

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`podman ARGS`, its output as text; a failure (when `check`) raises with its stderr."""
        return self._run(["podman", *args], check, timeout, None, {})

    def compose(self, project_dir: Path, project: str, *args: str, env: dict[str, str], timeout: float = 300,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        """`podman-compose -p PROJECT ARGS` in `project_dir` (it resolves secrets' files from its working directory)."""
        return self._run(["podman-compose", "-p", project, *args], check, timeout, project_dir, env)

    def has_image(self, name: str) -> bool:
        return self("image", "exists", name, check=False).returncode == 0

    def build(self, context: Path, tag: str, timeout: float = 900) -> None:
        """Build the Containerfile in `context` as a builder behind this machine's proxy would (README).
        Its stages build at once where they can (--jobs 2); no intermediate image is kept (--layers=false), so
        removing `tag` removes everything the build made."""
        self("build", "--layers=false", "--jobs", "2", "--format", "docker", "--pull=never", "--isolation", "chroot", "--network", "host",
             "-v", f"{_HOST_CA_BUNDLE}:{_BUILD_CA}:ro", "--quiet", "-t", tag, str(context), timeout=timeout)

    @contextmanager
    def stand_in(self, name: str, make: Callable[[], None]) -> Iterator[str]:
        """`name`, made by `make` unless this machine has it already; removed afterwards only if made here."""
        if self.has_image(name):
            yield name
            return
        make()
        try:
            yield name
        finally:
            self("rmi", "-f", name, check=False)

    def import_debian(self) -> None:
        """Debian bookworm from Debian's own packages (mmdebstrap's minbase), imported as DEBIAN."""
        log = self.folder / "mmdebstrap.log"
        with open(log, "wb") as errors:
            rootfs = subprocess.Popen(["mmdebstrap", "--quiet", "--variant=minbase", "bookworm", "-"], stdout=subprocess.PIPE,
                                      stderr=errors)
        assert rootfs.stdout is not None
        imported = subprocess.run(["podman", "import", "--quiet", "-", DEBIAN], stdin=rootfs.stdout, capture_output=True,
                                  text=True, env=self.env, timeout=300)
        rootfs.stdout.close()
        assert rootfs.wait(60) == 0, f"mmdebstrap failed: {log.read_text(errors='replace')[-2000:]}"
        assert imported.returncode == 0, f"podman import failed: {imported.stderr[-2000:]}"

    def build_redis(self) -> None:
        """REDIS from Debian's redis-server, on the DEBIAN stand-in."""
        context = self.folder / "redis"
        context.mkdir(exist_ok=True)
        (context / "Containerfile").write_text(_REDIS_CONTAINERFILE)
        self.build(context, REDIS, timeout=300)

    def _run(self, argv: list[str], check: bool, timeout: float, cwd: Path | None,
             env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, env={**self.env, **env},
                              stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        return done
