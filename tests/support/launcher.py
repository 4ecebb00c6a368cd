"""Building a real Launcher over fake model servers, in the test's own event loop."""

from __future__ import annotations

from pathlib import Path

from launchers.manager import Launcher
from launchers.paths import RuntimePaths
from router_config.spec import load_spec
from router_config.gateway_config import MemoryBudget
from tests.support.gateway import fake_server_spec, free_port


def make_launcher(tmp: Path, servers: dict[str, dict], budget: MemoryBudget | None = None) -> Launcher:
    """servers: name -> {"flags": [...], plus any launch spec keys}."""
    specs = []
    (tmp / "models").mkdir(exist_ok=True)
    for name, options in servers.items():
        options = dict(options)
        flags = options.pop("flags", [])
        port = options.pop("port", None) or free_port()
        options.setdefault("startup_timeout_s", 30)
        options.setdefault("idle_ttl_s", 0)
        path = tmp / "models" / f"{name}.yaml"
        path.write_text(fake_server_spec(port, f"served-{name}", *flags, **options))
        specs.append(load_spec(path))
    return Launcher(specs, budget or MemoryBudget(), RuntimePaths(tmp / "run", tmp / "logs"))
