"""Where the launcher keeps a machine's runtime files: state, logs, the owner's lock and socket."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RuntimePaths:
    state_dir: Path
    log_dir: Path

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def state_file(self, name: str) -> Path:
        """A server's pid and group, so that the next owner can adopt it."""
        return self.state_dir / f"{name}.json"

    @property
    def state_database(self) -> Path:
        """The state database (router_plugins/state/database.py): stored responses and the spend ledger."""
        return self.state_dir / "state.db"

    @property
    def owner_lock(self) -> Path:
        """Whoever holds this file lock owns the machine's model servers for this state folder."""
        return self.state_dir / "owner.lock"

    @property
    def config_lock(self) -> Path:
        """Every llm-router process using this state folder holds a shared lock on this file, which
        names the config they serve: one config per state folder (launchers/state_folder.py)."""
        return self.state_dir / "config.lock"

    @property
    def claim_lock(self) -> Path:
        """Held for the instant a process claims the state folder, so that two claims never interleave."""
        return self.state_dir / "claim.lock"

    @property
    def owner_socket(self) -> Path:
        """The owner's unix socket. Under the temp folder: a socket path must stay under 108 bytes,
        and a state folder can be deep."""
        return self._short_dir() / "owner.sock"

    def tmp_dir(self, name: str, create: bool = True) -> Path:
        """A short per-server TMPDIR: vLLM binds unix sockets there, whose paths must stay under 108 bytes."""
        path = Path(tempfile.gettempdir()) / f"llm-router-{self._digest()}-{name[:24]}"
        if create:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def _short_dir(self) -> Path:
        path = Path(tempfile.gettempdir()) / f"llm-router-{self._digest()}"
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def _digest(self) -> str:
        return hashlib.sha1(str(self.state_dir.resolve()).encode()).hexdigest()[:8]
