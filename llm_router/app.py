"""The ASGI app that `llm-router serve` runs: LiteLLM's proxy app with our endpoints beside it.

LiteLLM is composed, not patched: requests for our paths go to our FastAPI app, everything
else to LiteLLM's; the lifespan is LiteLLM's, with the launcher's monitor started after it and
every server we started stopped after its shutdown.
"""

from __future__ import annotations


from llm_router import environment

environment.apply_defaults()

from litellm.proxy.proxy_server import app as litellm_app  # noqa: E402  (needs the environment first)

from llm_router import logs  # noqa: E402
from llm_router.gateway import current  # noqa: E402
from router_plugins import endpoints  # noqa: E402


class GatewayApp:
    def __init__(self) -> None:
        self._ours = endpoints.build_app()

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            await litellm_app(scope, receive, self._lifespan_send(send))
        elif scope["type"] == "http" and _is_ours(scope["path"]):
            await self._ours(scope, receive, send)
        else:
            await litellm_app(scope, receive, send)

    @staticmethod
    def _lifespan_send(send):  # type: ignore[no-untyped-def]
        async def wrapped(message) -> None:  # type: ignore[no-untyped-def]
            if message["type"] == "lifespan.startup.complete":
                current().launcher.start_monitor()
            elif message["type"] == "lifespan.shutdown.complete":
                await current().launcher.shutdown()
            await send(message)

        return wrapped


def _is_ours(path: str) -> bool:
    return path in endpoints.PATHS or path.startswith(endpoints.PATH_PREFIXES)


logs.configure(current().paths.log_dir)
app = GatewayApp()
__all__ = ["app"]
