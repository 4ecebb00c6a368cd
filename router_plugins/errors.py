"""Errors a client sees, shaped as the API it called: OpenAI's or Anthropic's.

Both SDKs read the status and the message; the `type` names the cause in Anthropic's words,
which OpenAI clients don't interpret.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any


class Api(str, enum.Enum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    501: "not_implemented_error",
    502: "api_error",
    503: "overloaded_error",
}


_ANTHROPIC_TYPES = {"insufficient_quota": "billing_error"}
"""OpenAI's type for a spent quota is Anthropic's billing_error."""


@dataclass  # not frozen: Python sets __traceback__ on an exception as it is raised
class ApiError(Exception):
    status: int
    message: str
    param: str | None = None
    kind: str | None = None
    """The error's `type`; by default the usual one for its status."""
    code: str | None = None
    """The OpenAI format's `code`; by default the status."""
    retryable: bool = True
    """False: the answer carries `x-should-retry: false`, which the OpenAI and Anthropic SDKs obey."""
    groups: tuple[tuple[str, str | None], ...] = ()
    """For a request no model group here can serve: every group and why it can't (None: it could).
    Sent as `provider_specific_fields.groups`, where LiteLLM puts what an error adds to its API's shape."""

    @property
    def type(self) -> str:
        return self.kind or _TYPES.get(self.status, "api_error" if self.status >= 500 else "invalid_request_error")

    @property
    def anthropic_type(self) -> str:
        """The `type` in Anthropic's words, where they differ from OpenAI's."""
        return _ANTHROPIC_TYPES.get(self.type, self.type)

    @property
    def extra_fields(self) -> dict[str, Any] | None:
        """What the error adds to its API's shape, as LiteLLM's `provider_specific_fields`; None if nothing."""
        return {"groups": [{"group": group, "why": why} for group, why in self.groups]} if self.groups else None

    def body(self, api: Api) -> bytes:
        extra = {"provider_specific_fields": self.extra_fields} if self.groups else {}
        if api is Api.ANTHROPIC:
            return json.dumps({"type": "error", "error": {"type": self.anthropic_type, "message": self.message, **extra}}).encode()
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code or str(self.status), **extra}
        return json.dumps({"error": error}).encode()

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", b"application/json")]
        if not self.retryable:
            headers.append((b"x-should-retry", b"false"))
        return headers


def invalid(message: str, param: str | None = None, status: int = 400) -> ApiError:
    return ApiError(status, message, param)


def error_meant(exc: BaseException) -> ApiError | None:
    """The error answer an exception that escaped LiteLLM was on its way to, or None for a bug.

    LiteLLM's error path can fail before it answers (on its batches routes it imports `prisma`, a
    database client llm-router doesn't install), and the exception that escapes is that failure,
    raised while handling the real one: an upstream's error (an OpenAI or Anthropic SDK error, a
    LiteLLM provider exception, an httpx status error) or LiteLLM's own deliberate answer (an
    HTTPException, a ProxyException). Its status and message are read from the first exception in
    the chain that carries one. A 4xx is answered as it was meant, status and message; an
    upstream's 5xx is a 502 that names it (the gateway got a failed answer); LiteLLM's own 5xx and
    anything without a status are bugs (None: a JSON 500, logged with its traceback)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        status = status_of(current)
        if status is not None:
            message, param = _message_of(current)
            if status < 500:
                return ApiError(status, message, param)
            if _from_upstream(current):
                return ApiError(502, f"The upstream failed (HTTP {status}): {message}")
            return None
        current = current.__cause__ or current.__context__
    return None


def status_of(exc: BaseException) -> int | None:
    """The HTTP error status an exception carries (an SDK's, httpx's, LiteLLM's ProxyException's string code), or None."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)  # httpx.HTTPStatusError
    if status is None and isinstance(getattr(exc, "code", None), str):
        status = exc.code  # type: ignore[attr-defined]  # LiteLLM's ProxyException: a string
    try:
        status = int(status)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return status if 400 <= status <= 599 else None


def _message_of(exc: BaseException) -> tuple[str, str | None]:
    """The error's own message (the upstream's body's, where it has one) and the parameter it names."""
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
        param = error.get("param")
        return error["message"], param if isinstance(param, str) else None
    for name in ("message", "detail"):
        value = getattr(exc, name, None)
        if isinstance(value, str) and value:
            return value, None
    return str(exc) or type(exc).__name__, None


def _from_upstream(exc: BaseException) -> bool:
    """An upstream's answer (provider SDKs, httpx, LiteLLM's provider exceptions), not LiteLLM's proxy's own."""
    module = type(exc).__module__
    return module.split(".")[0] in ("openai", "anthropic", "httpx") or (module.startswith("litellm.") and not module.startswith("litellm.proxy"))
