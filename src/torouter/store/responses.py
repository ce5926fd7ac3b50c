"""Stored Responses API answers: kept in memory for follow-ups, written to the store in batches.

A follow-up (`previous_response_id`) usually comes seconds after the answer it continues, so a
bounded in-memory cache serves it with no database read; the store is the fallback and what
survives a restart. Entries expire after the configured retention and belong to one key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from torouter.store.schema import StoredResponse
from torouter.writer import BackgroundWriter

log = logging.getLogger("torouter.responses")


def minted_at(response_id: str) -> float:
    """The second a response id was made (its first 8 hex digits); 0 for ids of another shape."""
    try:
        return float(int(response_id[5:13], 16)) if response_id.startswith("resp_") else 0.0
    except ValueError:
        return 0.0


@dataclass(slots=True)
class Entry:
    id: str
    key_id: int
    created_at: float
    expires_at: float
    input_items: list[Any]
    response: dict[str, Any]


class ResponseStore(BackgroundWriter):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        retention: float,
        interval: float = 1.0,
        cache_size: int = 4096,
    ) -> None:
        super().__init__(interval, "torouter-response-store")
        self._sessions = sessions
        self.retention = retention
        self._cache: OrderedDict[str, Entry] = OrderedDict()
        self._cache_size = cache_size
        self._pending: list[Entry] = []
        self._deleted: set[str] = set()
        self._last_purge = 0.0

    def put(self, response_id: str, key_id: int, input_items: list[Any], response: dict[str, Any]) -> None:
        now = time.time()
        entry = Entry(response_id, key_id, now, now + self.retention, input_items, response)
        self._remember(entry)
        self._pending.append(entry)

    def _remember(self, entry: Entry) -> None:
        self._cache[entry.id] = entry
        self._cache.move_to_end(entry.id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def get(self, response_id: str, key_id: int) -> Entry | None:
        """The entry if it exists, has not expired and belongs to this key; else None (a 404)."""
        if response_id in self._deleted:
            return None
        entry = self._cache.get(response_id)
        if entry is None:
            row = await self._load(response_id)
            if row is None:
                return None
            entry = Entry(row.id, row.key_id, row.created_at, row.expires_at, row.input_items, row.response)
            self._remember(entry)
        if entry.key_id != key_id or entry.expires_at <= time.time():
            return None
        return entry

    async def _load(self, response_id: str) -> StoredResponse | None:
        """From the store. A response minted moments ago by another worker or replica may still be
        in that process's batch: wait for its next flush rather than answer 404."""
        wait = self._interval + 1.0
        deadline = (
            min(minted_at(response_id), time.time()) + wait
        )  # older ids (random digits) can't wait longer
        while True:
            async with self._sessions() as session:
                row = (
                    await session.execute(select(StoredResponse).where(StoredResponse.id == response_id))
                ).scalar_one_or_none()
            if row is not None or time.time() >= deadline:
                return row
            await asyncio.sleep(0.05)

    async def delete(self, response_id: str, key_id: int) -> bool:
        if await self.get(response_id, key_id) is None:
            return False
        self._cache.pop(response_id, None)
        self._pending = [e for e in self._pending if e.id != response_id]
        self._deleted.add(response_id)
        async with self._sessions() as session, session.begin():
            await session.execute(delete(StoredResponse).where(StoredResponse.id == response_id))
        self._deleted.discard(response_id)
        return True

    async def start(self) -> None:
        self.start_writing()

    async def tick(self) -> None:
        await self.flush()
        if time.monotonic() - self._last_purge > 600:
            self._last_purge = time.monotonic()
            await self.purge_expired()

    async def flush(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        values = [
            {
                "id": e.id,
                "key_id": e.key_id,
                "created_at": e.created_at,
                "expires_at": e.expires_at,
                "input_items": e.input_items,
                "response": e.response,
            }
            for e in rows
        ]
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(insert(StoredResponse.__table__), values)
        except asyncio.CancelledError:
            self._pending[:0] = rows  # put back: stop() flushes them
            raise
        except Exception as exc:
            self._pending[:0] = rows  # try again next tick; nothing is lost to a passing outage
            log.warning("storing %d responses failed (%s); will retry", len(rows), type(exc).__name__)

    async def purge_expired(self) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(StoredResponse).where(StoredResponse.expires_at <= time.time()))
