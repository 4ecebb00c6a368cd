"""One config per state folder: every llm-router process using a state folder claims it for its config.

Kept apart from the owner (launchers/owner.py) so that `serve` can claim the folder before anything
imports prometheus_client: the owner's metrics must see the multiprocess folder serve sets next.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from launchers.paths import RuntimePaths
from router_config.problems import ConfigProblem


class StateFolderInUse(Exception):
    """A live llm-router process uses this state folder for another config."""

    def __init__(self, config: Path, state_dir: Path, theirs: str):
        self.problem = ConfigProblem(
            str(config), "llm_router.state_dir",
            f"state folder {state_dir} is in use by llm-router with another config, {theirs}",
            f"give this config a state folder of its own (e.g. `state_dir: run-{config.stem}` under llm_router:), "
            f"or stop the llm-router using {theirs} first")
        super().__init__(str(self.problem))


class StateFolderClaim:
    """This process's use of a state folder for one config, until closed (or until it dies).

    Two configs must never share a state folder: the second one's workers and commands would ask
    the first one's owner, which has never heard of its model servers (every request for one: a
    503), and each would overwrite the other's LiteLLM config copy. So every gateway, and every
    command acting on the owner, holds a shared flock on `config.lock`, whose content names their
    config: held, it tells who uses the folder; once its last holder dies the kernel drops the
    lock, and a stale name counts for nothing. Claims are made one at a time under `claim.lock`,
    so two configs can never both find the folder free.
    """

    def __init__(self, paths: RuntimePaths, config: Path):
        """Raise StateFolderInUse if a live llm-router process uses the folder for another config."""
        paths.state_dir.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(paths.config_lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with _held(paths.claim_lock):
                self._claim(paths.state_dir, str(config))
        except BaseException:
            os.close(self._fd)
            raise

    def _claim(self, state_dir: Path, config: str) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # In use. Only a claim holds it exclusively, and claims wait for the claim lock we hold:
            # this shared lock is granted at once, and the name we read is the users' own.
            fcntl.flock(self._fd, fcntl.LOCK_SH)
            theirs = os.pread(self._fd, os.fstat(self._fd).st_size, 0).decode(errors="replace")
            if theirs != config:
                raise StateFolderInUse(Path(config), state_dir, theirs) from None
            return
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, config.encode(), 0)
        fcntl.flock(self._fd, fcntl.LOCK_SH)  # let others with the same config in

    def close(self) -> None:
        os.close(self._fd)  # closing releases our hold

    def __enter__(self) -> StateFolderClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _held(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` while the block runs (a few system calls: waiting for it is brief)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
