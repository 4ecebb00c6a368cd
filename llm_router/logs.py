"""Gateway logging: stderr and logs/router.log, with secrets masked on every record.

A client's mistake is one line. The door logs each request it answers with a 4xx, its own refusals
and LiteLLM's alike (llm_router/app.py), and what LiteLLM and uvicorn log while that request is
handled is dropped: their records wait until the request's answer starts, then are dropped for a
4xx and passed on for anything else. An exception with a 4xx status that LiteLLM logs on its way
to another answer (count_tokens falls back to a default tokenizer for a model it doesn't know) is
a refusal too: its record keeps one line, without the traceback. Nothing else is shortened: an
upstream's failure, a 5xx, and a bug of ours or of LiteLLM's keep their tracebacks.
"""

from __future__ import annotations

import logging
import os
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
    """Send our loggers' and LiteLLM's and uvicorn's records to stderr and router.log, and nowhere else.

    Called once by `serve` (before LiteLLM is imported) and once by each worker's app (after):
    the handlers are made once, and every call takes off whatever handlers others attached since
    (LiteLLM attaches its own to its loggers when it is imported)."""
    global _handlers
    if _handlers is None:
        log_dir.mkdir(parents=True, exist_ok=True)
        redacting = RedactingFilter(secrets)
        _handlers = [logging.StreamHandler(), logging.FileHandler(log_dir / "router.log")]
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
        self.client_error = False
        self.held: list[tuple[logging.Handler, logging.LogRecord]] = []

    def settle(self, status: int | None) -> None:
        """The answer started with `status` (None: no answer was sent): drop or pass on what was held."""
        if self.settled:
            return
        self.settled = True
        self.client_error = status is not None and 400 <= status < 500
        held, self.held = self.held, []
        if not self.client_error:
            for handler, record in held:
                handler.handle(record)

    def admit(self, handler: logging.Handler, record: logging.LogRecord) -> bool:
        if self.settled:
            return not self.client_error
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
        if not _quieted(record.name):
            return True
        request = _request.get()
        if request is not None and not request.admit(self._handler, record):
            return False
        if record.exc_info and _is_client_error(record.exc_info[1]):
            _drop_traceback(record)
        return True


def _quieted(logger_name: str) -> bool:
    """LiteLLM's and uvicorn's error records; never ours, nor uvicorn's access lines."""
    return logger_name.startswith("LiteLLM") or logger_name in ("uvicorn", "uvicorn.error")


def _is_client_error(exc: BaseException | None) -> bool:
    # LiteLLM's exceptions carry `status_code`; its ProxyException a `code`, as a string.
    status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
    return str(status).isdigit() and 400 <= int(str(status)) < 500


def _drop_traceback(record: logging.LogRecord) -> None:
    exc = record.exc_info[1] if record.exc_info else None
    first_line = str(exc).strip().split("\n", 1)[0][:300]
    record.msg, record.args = f"{record.getMessage()} ({type(exc).__name__}: {first_line})", None
    record.exc_info, record.exc_text = None, None


def _detach(logger: logging.Logger) -> None:
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.propagate = False
