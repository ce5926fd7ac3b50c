"""Session affinity: the calls of one conversation go to the same account, so its prompt cache stays warm.

The session is named by the first of: Claude Code's x-claude-code-session-id header, Codex's
session_id header, the session_id inside Anthropic's metadata.user_id (Claude Code sends a JSON
string there), OpenAI's prompt_cache_key, an x-session-affinity header, or else a hash of the
system prompt and the first message. Pins are per API key and expire after `ttl` seconds idle.
They are read from memory on the hot path; new and moved pins are written to the store in the
background and loaded again at start-up, so a restart keeps conversations where they were.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from torouter.store.schema import SessionPin
from torouter.writer import BackgroundWriter

_HEADERS = (b"x-claude-code-session-id", b"session_id", b"session-id")


def session_of(headers: list[tuple[bytes, bytes]], body: Any) -> str:
    found = {name: value for name, value in headers if name in _HEADERS or name == b"x-session-affinity"}
    for name in _HEADERS:
        if found.get(name):
            return "h:" + found[name].decode("latin-1")
    if isinstance(body, dict):
        metadata = body.get("metadata")
        user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
        if isinstance(user_id, str) and "session_id" in user_id:
            try:
                session = orjson.loads(user_id).get("session_id")
            except (orjson.JSONDecodeError, AttributeError):
                session = None
            if isinstance(session, str) and session:
                return "m:" + session
        if isinstance(body.get("prompt_cache_key"), str) and body["prompt_cache_key"]:
            return "p:" + body["prompt_cache_key"]
    if found.get(b"x-session-affinity"):
        return "a:" + found[b"x-session-affinity"].decode("latin-1")
    return "c:" + _conversation_hash(body)


def _conversation_hash(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    system = body.get("system") or body.get("instructions") or body.get("systemInstruction")
    turns = body.get("messages") or body.get("input") or body.get("contents") or []
    first = turns[0] if isinstance(turns, list) and turns else turns
    return hashlib.blake2b(orjson.dumps([system, first], default=str), digest_size=12).hexdigest()


class Affinity(BackgroundWriter):
    """(key id, session) -> account id, with an idle TTL and a bound on the number of pins."""

    def __init__(self, ttl: float = 3600.0, max_pins: int = 200_000) -> None:
        super().__init__(1.0, "torouter-affinity-writer")
        self.ttl = ttl
        self._max = max_pins
        self._pins: OrderedDict[tuple[int, str], tuple[int, float]] = OrderedDict()
        self._dirty: dict[tuple[int, str], tuple[int, float]] = {}
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._last_purge = 0.0
        self._redis: Redis | None = None
        self._writes: set[asyncio.Task[Any]] = set()

    def share(self, redis: Redis) -> None:
        """Keep pins in Redis too, so that every replica sends a conversation to the same account."""
        self._redis = redis

    @staticmethod
    def _redis_key(key_id: int, session: str) -> str:
        return f"torouter:pin:{key_id}:{session}"

    async def lookup(self, key_id: int, session: str) -> int | None:
        """The pinned account: from Redis when replicas share pins, else from memory."""
        if self._redis is None:
            return self.pinned(key_id, session)
        try:
            value = await self._redis.get(self._redis_key(key_id, session))
        except RedisError:
            return self.pinned(key_id, session)  # Redis away: this replica's own view still helps
        return int(value) if value is not None else None

    def pinned(self, key_id: int, session: str) -> int | None:
        entry = self._pins.get((key_id, session))
        if entry is None:
            return None
        account_id, expires = entry
        if expires <= time.time():
            del self._pins[(key_id, session)]
            return None
        return account_id

    def pin(self, key_id: int, session: str, account_id: int) -> None:
        key = (key_id, session)
        now = time.time()
        old = self._pins.get(key)
        self._pins[key] = (account_id, now + self.ttl)
        self._pins.move_to_end(key)
        # Write a new or moved pin at once; a kept one only when half its TTL has gone by.
        if old is None or old[0] != account_id or old[1] - now < self.ttl / 2:
            self._dirty[key] = self._pins[key]
            if self._redis is not None:
                write = self._redis.set(self._redis_key(key_id, session), account_id, ex=int(self.ttl))
                task = asyncio.ensure_future(write)
                self._writes.add(task)
                task.add_done_callback(self._written)
        while len(self._pins) > self._max:
            self._pins.popitem(last=False)

    def _written(self, task: asyncio.Task[Any]) -> None:
        self._writes.discard(task)
        if not task.cancelled():
            task.exception()  # a failed write is not fatal: the store copy still holds the pin

    def __len__(self) -> int:
        return len(self._pins)

    async def start(self, sessions: async_sessionmaker[AsyncSession], interval: float = 1.0) -> None:
        """Load the unexpired pins, newest last, then write new ones in the background."""
        self._sessions = sessions
        async with sessions() as session:
            rows = await session.execute(
                select(SessionPin).where(SessionPin.expires_at > time.time()).order_by(SessionPin.expires_at)
            )
            for pin in rows.scalars():
                self._pins[(pin.key_id, pin.session)] = (pin.account_id, pin.expires_at)
        while len(self._pins) > self._max:
            self._pins.popitem(last=False)
        self._interval = interval
        self.start_writing()

    async def tick(self) -> None:
        await self.flush()
        if self._sessions is not None and time.monotonic() - self._last_purge > 600:
            self._last_purge = time.monotonic()
            async with self._sessions() as session, session.begin():
                await session.execute(delete(SessionPin).where(SessionPin.expires_at <= time.time()))

    async def flush(self) -> None:
        if not self._dirty or self._sessions is None:
            return
        batch, self._dirty = self._dirty, {}
        try:
            async with self._sessions() as session, session.begin():
                for key_id, name in batch:  # replace: delete then insert works on SQLite and PostgreSQL alike
                    await session.execute(
                        delete(SessionPin).where(SessionPin.key_id == key_id, SessionPin.session == name)
                    )
                await session.execute(
                    insert(SessionPin.__table__),
                    [
                        {"key_id": k, "session": n, "account_id": a, "expires_at": e}
                        for (k, n), (a, e) in batch.items()
                    ],
                )
        except BaseException:  # cancelled or failed: keep them for the next round
            for key, value in batch.items():
                self._dirty.setdefault(key, value)
            raise
