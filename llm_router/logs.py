"""Gateway logging: stderr and logs/router.log, with secrets masked on every record, and a traceback
only where the error is our own code's."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from starlette.exceptions import HTTPException as StarletteHTTPException

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
        handler.addFilter(_ours_only_traceback)
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


_OUR_PACKAGES = frozenset({"llm_router", "router_plugins", "launchers", "router_config"})
_OUR_CODE = tuple(f"{os.sep}{package}{os.sep}" for package in _OUR_PACKAGES)


def _ours_only_traceback(record: logging.LogRecord) -> bool:
    """A failure LiteLLM or uvicorn logs with a traceback (an upstream's error, a client's mistake, one
    of our hooks saying no) becomes one line naming the exception. A traceback stays only for our own
    bug: an exception we didn't mean to raise, raised in our code."""
    if not record.exc_info or record.exc_info[1] is None:
        return True
    exc = record.exc_info[1]
    if not _deliberate(exc) and _raised_in_our_code(exc):
        return True
    record.msg = f"{record.getMessage()} ({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''})"
    record.args, record.exc_info, record.exc_text = None, None, None
    return True


def _deliberate(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.split(".")[0] in _OUR_PACKAGES or isinstance(exc, StarletteHTTPException)


def _raised_in_our_code(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and any(p in tb.tb_frame.f_code.co_filename for p in _OUR_CODE)


def _detach(logger: logging.Logger) -> None:
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.propagate = False
