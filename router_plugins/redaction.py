"""Keeping secrets (API keys, the master key, team keys) out of logs and error bodies."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

from router_plugins.keys import KEY_PREFIX

_MASK = "[REDACTED]"
# Key-shaped tokens even when we don't know the value: ours, OpenAI's and Anthropic's.
_KEY_SHAPES = re.compile(rf"({re.escape(KEY_PREFIX)}|sk-ant-|sk-proj-|sk-)[A-Za-z0-9_\-]{{8,}}")


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, _MASK)
    return _KEY_SHAPES.sub(_MASK, text)


class RedactingFilter(logging.Filter):
    """Rewrites every record's message with secrets masked before any handler sees it."""

    def __init__(self, secrets: Callable[[], Iterable[str]]):
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message, self._secrets())
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets())
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True
