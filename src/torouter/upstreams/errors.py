"""Turning an upstream's error answer into a GatewayError the client's protocol can render."""

from __future__ import annotations

from typing import Any

import orjson

from torouter.catalog import Account
from torouter.errors import GatewayError, kind_for_status
from torouter.upstreams.call import scrub


def _fields(body: bytes) -> tuple[str | None, str | None, str | None]:
    """(message, code, param) from any of the three vendors' error shapes."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None, None
    if isinstance(data, list) and data:  # Gemini streams errors as a one-element array
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return None, None, None
    message = err.get("message")
    code = err.get("code") if isinstance(err.get("code"), str) else None
    code = code or err.get("status") or (err.get("type") if "type" in err and "param" not in err else None)
    param = err.get("param") if isinstance(err.get("param"), str) else None
    return (message if isinstance(message, str) else None), (code if isinstance(code, str) else None), param


def from_upstream(account: Account, status: int, body: bytes, retry_after: str | None = None) -> GatewayError:
    if status == 401:
        # The upstream refused ToRouter's own credential: the caller can't fix that, an admin must.
        return GatewayError(
            "bad_gateway",
            "The upstream account rejected the gateway's credentials. Ask your ToRouter admin to check it.",
            code="upstream_auth_failed",
        )
    message, code, param = _fields(body)
    kind = kind_for_status(status)
    if not message:
        message = f"The upstream answered with HTTP {status}."
    headers = {"retry-after": retry_after} if retry_after else None
    return GatewayError(kind, scrub(message, account), status=status, code=code, param=param, headers=headers)
