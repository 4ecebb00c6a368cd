"""Gateway logging: stdout (what `docker logs` shows) and logs/router.log, with secrets masked on every record.

An operator reads one line per failed request. The door logs each request it answers with a 4xx
or 5xx, its own refusals and LiteLLM's errors alike (llm_router/app.py): request id, key name,
route, group, status and reason, never a prompt or a key. What LiteLLM and uvicorn log while a
request is handled waits until the request's answer starts: for a failed request it is dropped
(the door's line says it), for an answered one (a fallback served it) each record is kept as one
line, without its traceback. A traceback is kept only for our own code's records and for what is
logged outside any request (start-up, shutdown), where a bug is not a client's or an upstream's.
LiteLLM's start-up notices about features llm-router doesn't use (its own master key, its admin
UI, its database-backed checks) are dropped; llm-router logs what it runs with instead. With
LLM_ROUTER_LOG_LEVEL=DEBUG nothing is dropped or shortened.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from router_config.environment import access_log_enabled
from router_plugins.redaction import RedactingFilter

_LOGGERS = ("llm_router", "LiteLLM", "LiteLLM Proxy", "LiteLLM Router", "uvicorn", "uvicorn.error")
_ACCESS_LOGGER = "uvicorn.access"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(log_dir: Path, secrets: Callable[[], Iterable[str]]) -> None:
    """Send our loggers' and LiteLLM's and uvicorn's records to stdout and router.log, and nowhere else.

    Called once by `serve` (before LiteLLM is imported) and once by each worker's app (after):
    the handlers are made once, and every call takes off whatever handlers others attached since
    (LiteLLM attaches its own to its loggers when it is imported)."""
    global _handlers
    if _handlers is None:
        log_dir.mkdir(parents=True, exist_ok=True)
        redacting = RedactingFilter(secrets)
        _handlers = [logging.StreamHandler(sys.stdout), logging.FileHandler(log_dir / "router.log")]
        for handler in _handlers:
            handler.setFormatter(logging.Formatter(_FORMAT))
            handler.addFilter(_HeldUntilAnswered(handler))
            handler.addFilter(redacting)
    level = os.environ.get("LLM_ROUTER_LOG_LEVEL", "INFO").upper()
    # uvicorn writes an access line whenever this logger has a handler, whatever its own
    # access_log setting says, so it gets one only when the access log is asked for.
    _detach(logging.getLogger(_ACCESS_LOGGER))
    for name in (*_LOGGERS, _ACCESS_LOGGER) if access_log_enabled() else _LOGGERS:
        logger = logging.getLogger(name)
        _detach(logger)
        for handler in _handlers:
            logger.addHandler(handler)
        # LiteLLM's INFO lines are per-request chatter; keep them unless debugging.
        logger.setLevel("WARNING" if name.startswith("LiteLLM") and level != "DEBUG" else level)


_handlers: list[logging.Handler] | None = None


class _Request:
    """The records held back while one request is handled, until its answer's status is known."""

    def __init__(self) -> None:
        self.settled = False
        self.failed = False
        self.held: list[tuple[logging.Handler, logging.LogRecord]] = []

    def settle(self, status: int | None) -> None:
        """The answer started with `status` (None: no answer was sent): drop or pass on what was held."""
        if self.settled:
            return
        self.settled = True
        self.failed = status is None or status >= 400
        held, self.held = self.held, []
        if not self.failed:
            for handler, record in held:
                handler.handle(_one_line(record))

    def admit(self, handler: logging.Handler, record: logging.LogRecord) -> bool:
        if self.settled:
            if not self.failed:
                _one_line(record)
            return not self.failed
        self.held.append((handler, record))
        return False


_request: ContextVar[_Request | None] = ContextVar("llm_router_request", default=None)


@contextmanager
def request_scope() -> Iterator[Callable[[int | None], None]]:
    """Around the handling of one HTTP request; gives the function to call with its answer's status.

    LiteLLM handles the request in this task and in tasks it starts from it, which all see this
    request's context, so every record they log is matched to its request."""
    request = _Request()
    token = _request.set(request)
    try:
        yield request.settle
    finally:
        _request.reset(token)
        request.settle(None)


class _HeldUntilAnswered(logging.Filter):
    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self._handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        if not _quieted(record.name) or _debugging():
            return True
        request = _request.get()
        if request is None:
            return not record.getMessage().startswith(_NOT_OURS)
        return request.admit(self._handler, record)


# LiteLLM's start-up notices about what llm-router replaces: its master key and database-backed
# checks (our door authenticates and applies the route policy) and its admin UI (not served).
_NOT_OURS = (
    "LITELLM_MASTER_KEY is not set",
    "dangerously_permit_weak_or_unset_master_key",
    "custom_auth is configured but 'custom_auth_run_common_checks' is not set",
    "trusted_proxy_ranges is not set",
)


def _debugging() -> bool:
    return os.environ.get("LLM_ROUTER_LOG_LEVEL", "INFO").upper() == "DEBUG"


def _quieted(logger_name: str) -> bool:
    """LiteLLM's and uvicorn's error records; never ours, nor uvicorn's access lines."""
    return logger_name.startswith("LiteLLM") or logger_name in ("uvicorn", "uvicorn.error")


def _one_line(record: logging.LogRecord) -> logging.LogRecord:
    """The record as one line: its message's first line, and its exception's, without a traceback."""
    exc = record.exc_info[1] if record.exc_info else None
    message = record.getMessage().strip().split("\n", 1)[0][:300]
    if exc is not None:
        message += f" ({type(exc).__name__}: {str(exc).strip().split(chr(10), 1)[0][:300]})"
    record.msg, record.args = message, None
    record.exc_info, record.exc_text = None, None
    return record


def _detach(logger: logging.Logger) -> None:
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.propagate = False
