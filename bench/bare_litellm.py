"""Path (f): LiteLLM's own proxy app under llm-router's serving settings, with none of our plugins.

    python -m bench.bare_litellm CONFIG PORT

The same environment defaults and uvicorn settings as `llm-router serve` (one worker), but
LiteLLM's app itself: no door, no hooks, no custom auth, no master key. `serve` always registers
our plugins, so this is how the bench measures the floor they add to.
"""

from __future__ import annotations

import os
import sys

from llm_router.cli import serving_options
from router_config import environment


def main(config: str, port: int) -> None:
    environment.apply_defaults()
    os.environ["CONFIG_FILE_PATH"] = config
    import uvicorn

    uvicorn.run("litellm.proxy.proxy_server:app", host="127.0.0.1", port=port, workers=1, **serving_options())  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
