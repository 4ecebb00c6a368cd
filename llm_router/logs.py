"""Gateway logging: stderr and logs/router.log, with secrets masked on every record."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from router_config.environment import access_log_enabled
from router_plugins.redaction import RedactingFilter

_LOGGERS = ("llm_router", "LiteLLM", "LiteLLM Proxy", "LiteLLM Router", "uvicorn", "uvicorn.error")
_ACCESS_LOGGER = "uvicorn.access"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(log_dir: Path, secrets: Callable[[], Iterable[str]]) -> None:
    """Idempotent: uvicorn workers each import the app and call this once."""
    root = logging.getLogger("llm_router")
    if getattr(root, "_llm_router_configured", False):
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    redacting = RedactingFilter(secrets)
    handlers: list[logging.Handler] = [logging.StreamHandler(), logging.FileHandler(log_dir / "router.log")]
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(redacting)
    level = os.environ.get("LLM_ROUTER_LOG_LEVEL", "INFO").upper()
    # uvicorn writes an access line whenever this logger has a handler, whatever its own
    # access_log setting says, so it gets one only when the access log is asked for.
    _detach(logging.getLogger(_ACCESS_LOGGER))
    for name in (*_LOGGERS, _ACCESS_LOGGER) if access_log_enabled() else _LOGGERS:
        logger = logging.getLogger(name)
        _detach(logger)
        for handler in handlers:
            logger.addHandler(handler)
        # LiteLLM's INFO lines are per-request chatter; keep them unless debugging.
        logger.setLevel("WARNING" if name.startswith("LiteLLM") and level != "DEBUG" else level)
    root._llm_router_configured = True  # type: ignore[attr-defined]


def _detach(logger: logging.Logger) -> None:
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.propagate = False
