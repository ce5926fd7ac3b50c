"""The pooled aiohttp session every upstream call goes through."""

from __future__ import annotations

import asyncio

import aiohttp


class UpstreamClient:
    """One keep-alive connection pool for all upstreams, created inside the running loop."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the session's, once it exists

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self.loop = asyncio.get_running_loop()
            # An idle connection is dropped after 4 s, before servers that keep one for 5 s
            # (uvicorn, Node) close it under us: reusing one they just closed fails the call with
            # "server disconnected" before any byte. Busy upstreams keep their connections anyway.
            connector = aiohttp.TCPConnector(
                limit=0, ttl_dns_cache=300, keepalive_timeout=4, enable_cleanup_closed=True
            )
            # auto_decompress stays on so a gzip upstream reaches the client as plain bytes.
            # No skip_auto_headers: it sends aiohttp down a slow header path on every request.
            # No cookie jar: one session serves every caller, so a cookie an upstream sets for
            # one call must not ride along on another caller's (and filtering costs every call).
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self.loop = None
