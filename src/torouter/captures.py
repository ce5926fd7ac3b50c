"""What went upstream: a call's request as the client sent it and as it left for the upstream.

A client asks for it with `x-torouter-capture: 1` (the Playground does). The gateway keeps the
pair, with every credential masked, for ten minutes, for the key that made the call only.
Nothing is kept for calls that did not ask, so the hot path pays one header scan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from torouter.request_headers import header_map
from torouter.store.schema import StoredCapture

CAPTURE_HEADER = b"x-torouter-capture"
TTL = 600.0
MAX_ENTRIES = 1000
STORE_WAIT = 0.5  # seconds a lookup waits for another worker's write of the capture
log = logging.getLogger("torouter.captures")
MASKED = "[masked]"
_SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie", "proxy-authorization"}
)


def wants_capture(scope: dict[str, Any]) -> bool:
    """The client asked to see what went upstream (the header's first value, if repeated)."""
    value = header_map(scope).get(CAPTURE_HEADER)
    return value is not None and value.strip() not in (b"", b"0", b"false")


def masked_headers(headers: Any) -> dict[str, str]:
    """Headers with credentials replaced; accepts ASGI pairs or a mapping."""
    pairs = headers.items() if isinstance(headers, dict) else headers
    out: dict[str, str] = {}
    for name, value in pairs:
        k = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        v = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        out[k.lower()] = MASKED if k.lower() in _SECRET_HEADERS else v
    return out


def masked_query(query: str) -> str:
    if not query:
        return ""
    parts = [p if not p.startswith("key=") else "key=" + MASKED for p in query.split("&")]
    return "&".join(parts)


def _json_or_text(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


class Capture:
    """One call's capture, filled in as the call goes."""

    __slots__ = ("data",)

    def __init__(self, scope: dict[str, Any], body: Any) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope["path"] + ("?" + masked_query(query) if query else "")
        self.data: dict[str, Any] = {
            "client": {
                "method": scope["method"],
                "path": path,
                "headers": masked_headers(scope["headers"]),
                "body": orjson.loads(orjson.dumps(body)),  # a copy: surfaces may edit theirs later
            },
            "upstream": None,
        }

    def upstream(self, url: str, headers: dict[str, str], body: bytes, secret: str) -> None:
        """The request as built for an account; the account's host is not shown, only the path."""
        parts = urlsplit(url)
        text = orjson.dumps(_json_or_text(body)).decode()
        if secret and secret in text:  # a credential must never surface, even inside a body
            text = text.replace(secret, MASKED)
        self.data["upstream"] = {
            "method": "POST",
            "path": parts.path + ("?" + masked_query(parts.query) if parts.query else ""),
            "headers": masked_headers(headers),
            "body": orjson.loads(text),
        }


class Captures:
    """Recent captures by request id, each visible only to the key that made it.

    Each is kept in this process and written to the store, because the lookup that follows may land
    on another worker or replica. Only calls that asked for a capture pay that write.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession] | None = None, shared: bool = False
    ) -> None:
        self._entries: OrderedDict[str, tuple[int, float, dict[str, Any]]] = OrderedDict()
        self._sessions = sessions
        self._shared = shared  # other workers or replicas may hold a capture this one lacks
        self._writes: set[asyncio.Task[None]] = set()

    def put(self, request_id: str, key_id: int, data: dict[str, Any]) -> None:
        now = time.time()
        self._entries[request_id] = (key_id, now + TTL, data)
        self._entries.move_to_end(request_id)
        while self._entries:
            oldest_id, (_, expires, _) = next(iter(self._entries.items()))
            if expires > now and len(self._entries) <= MAX_ENTRIES:
                break
            del self._entries[oldest_id]
        if self._sessions is not None:
            task = asyncio.get_running_loop().create_task(self._store(request_id, key_id, now + TTL, data))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _store(self, request_id: str, key_id: int, expires_at: float, data: dict[str, Any]) -> None:
        assert self._sessions is not None
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(delete(StoredCapture).where(StoredCapture.expires_at <= time.time()))
                await session.execute(
                    insert(StoredCapture).values(
                        request_id=request_id, key_id=key_id, expires_at=expires_at, data=data
                    )
                )
        except Exception as exc:  # this process still has it; only other workers will miss it
            log.warning("storing capture failed: %s", type(exc).__name__)

    async def get(self, request_id: str, key_id: int) -> dict[str, Any] | None:
        entry = self._entries.get(request_id)
        if entry is None and self._sessions is not None and self._shared:
            entry = await self._load(request_id)
        if entry is None or entry[0] != key_id or entry[1] <= time.time():
            return None
        return entry[2]

    async def _load(self, request_id: str) -> tuple[int, float, dict[str, Any]] | None:
        """From the store, waiting briefly: the worker that ran the call may still be writing it."""
        assert self._sessions is not None
        deadline = time.monotonic() + STORE_WAIT
        while True:
            async with self._sessions() as session:
                row = await session.get(StoredCapture, request_id)
            if row is not None:
                return row.key_id, row.expires_at, row.data
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.05)

    async def drain(self) -> None:
        """Wait for the writes still in flight (at shutdown)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
