"""Protocol-neutral errors. Each protocol module renders them in its own wire shape."""

from __future__ import annotations

# kind -> default HTTP status
KINDS: dict[str, int] = {
    "invalid_request": 400,
    "authentication": 401,
    "permission": 403,
    "not_found": 404,
    "request_too_large": 413,
    "rate_limit": 429,
    "insufficient_quota": 429,
    "api_error": 500,
    "bad_gateway": 502,
    "unavailable": 503,
    "timeout": 504,
    "overloaded": 529,
}


class GatewayError(Exception):
    """An error the client should see, in its own protocol's shape."""

    __slots__ = ("code", "headers", "kind", "message", "param", "status")

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status or KINDS.get(kind, 500)
        self.code = code
        self.param = param
        self.headers = headers or {}


def kind_for_status(status: int) -> str:
    """The error kind a vendor's HTTP status stands for."""
    if status == 529:
        return "overloaded"
    for kind, s in KINDS.items():
        if s == status:
            return kind
    if status == 402:
        return "insufficient_quota"
    if status == 422:
        return "invalid_request"
    return "invalid_request" if 400 <= status < 500 else "api_error"
