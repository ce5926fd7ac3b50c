"""The caller's address: the peer's, or the client a trusted proxy names in X-Forwarded-For.

uvicorn can rewrite every request's scope for this with its proxy-headers middleware, but only
the failed-authentication throttle reads the address, and only for a call that failed to
authenticate or while some address is blocked. So the gateway serves without that middleware
and runs the same middleware here, for those calls alone: the same rules, `forwarded_allow_ips`
included, for none of the per-call cost (a pass over the headers and one more coroutine frame).
"""

from __future__ import annotations

import os
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware


async def _keep(scope: Any, receive: Any, send: Any) -> None:
    """The middleware's inner app: the rewritten scope is all that is wanted."""


class ClientAddress:
    def __init__(self, forwarded_allow_ips: str | None = None) -> None:
        trusted = forwarded_allow_ips  # None: uvicorn's own default for the setting
        if trusted is None:
            trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
        self._rewrite = ProxyHeadersMiddleware(_keep, trusted_hosts=trusted)

    def __call__(self, scope: dict[str, Any]) -> str:
        view = dict(scope)  # the middleware sets `client` on the scope it is given
        call = self._rewrite(view, _keep, _keep)  # type: ignore[arg-type]
        try:
            call.send(None)  # nothing in it awaits anything that suspends: it runs to the end
        except StopIteration:
            pass
        else:
            call.close()
            raise RuntimeError("uvicorn's proxy-headers middleware suspended; it is expected not to")
        client = view.get("client")
        return client[0] if client else "unknown"
