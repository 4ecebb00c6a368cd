"""Every route LiteLLM's proxy app mounts, read from the app itself (lazy features included).

Run as `python -m tests.support.litellm_routes` it prints them as JSON, one [methods, path, kind]
per route, so a test reads the route table of the installed LiteLLM without importing the proxy
into the test process. A route a LiteLLM upgrade adds is in the list the day it appears.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class MountedRoute:
    methods: tuple[str, ...]
    template: str
    kind: str
    """"http", "websocket" or "mount" (a sub-application under a prefix)."""

    def sample_path(self, model: str = "gpt-4o", ident: str = "x1") -> str:
        """A concrete path this route matches: `{model...}` becomes `model`, any other parameter `ident`."""
        def fill(match: re.Match[str]) -> str:
            name = match.group(1).split(":")[0]
            return model if name == "model" else ident

        path = re.sub(r"\{([^}]+)\}", fill, self.template)
        return path + "/x1" if self.kind == "mount" else path


def mounted_routes() -> list[MountedRoute]:
    done = subprocess.run([sys.executable, "-m", "tests.support.litellm_routes"], cwd=REPO, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "LITELLM_OFFLINE_MODE": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    if done.returncode != 0:
        raise RuntimeError(f"could not list LiteLLM's routes:\n{done.stderr[-3000:]}")
    return [MountedRoute(tuple(methods), path, kind) for methods, path, kind in json.loads(done.stdout)]


def _list_routes() -> list[tuple[list[str], str, str]]:
    from fastapi.routing import _IncludedRouter
    from litellm.proxy._lazy_features import register_all_features
    from litellm.proxy.proxy_server import app
    from starlette.routing import Mount, WebSocketRoute

    register_all_features(app)
    found: dict[tuple[tuple[str, ...], str], str] = {}

    def walk(routes: list) -> None:
        for route in routes:
            if isinstance(route, _IncludedRouter):
                walk(route.effective_candidates())
                walk(route.effective_low_priority_routes())
                continue
            path = getattr(route, "path", None)
            if not path:
                continue
            if isinstance(route, Mount):
                found.setdefault(((), path), "mount")
            elif isinstance(route, WebSocketRoute) or "WebSocket" in type(route).__name__:
                found.setdefault(((), path), "websocket")
            else:
                methods = tuple(sorted(m for m in (getattr(route, "methods", None) or ()) if m != "HEAD"))
                found.setdefault((methods, path), "http")

    walk(app.routes)
    return [[list(methods), path, kind] for (methods, path), kind in sorted(found.items(), key=lambda item: item[0][1])]


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from router_config import environment

    environment.apply_defaults()
    print(json.dumps(_list_routes()))
