"""Errors a client sees, shaped as the API it called: OpenAI's or Anthropic's.

Both SDKs read the status and the message; the `type` names the cause in Anthropic's words,
which OpenAI clients don't interpret.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass


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


@dataclass  # not frozen: Python sets __traceback__ on an exception as it is raised
class ApiError(Exception):
    status: int
    message: str
    param: str | None = None
    kind: str | None = None
    """The error's `type`; by default the usual one for its status."""
    retryable: bool = True
    """False: the answer carries `x-should-retry: false`, which the OpenAI and Anthropic SDKs obey."""

    @property
    def type(self) -> str:
        return self.kind or _TYPES.get(self.status, "api_error" if self.status >= 500 else "invalid_request_error")

    def body(self, api: Api) -> bytes:
        if api is Api.ANTHROPIC:
            return json.dumps({"type": "error", "error": {"type": self.type, "message": self.message}}).encode()
        error = {"message": self.message, "type": self.type, "param": self.param, "code": str(self.status)}
        return json.dumps({"error": error}).encode()

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", b"application/json")]
        if not self.retryable:
            headers.append((b"x-should-retry", b"false"))
        return headers


def invalid(message: str, param: str | None = None, status: int = 400) -> ApiError:
    return ApiError(status, message, param)
