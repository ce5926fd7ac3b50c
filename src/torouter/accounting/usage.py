"""Usage records: built on the hot path, queued in memory, written to the store in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from torouter.hub import Usage
from torouter.store.schema import UsageRecord
from torouter.writer import BackgroundWriter

__all__ = ["Usage", "UsageWriter", "usage_row"]

log = logging.getLogger("torouter.usage")
_INSERT = insert(UsageRecord.__table__)


class UsageWriter(BackgroundWriter):
    """Collects usage rows and flushes them every `interval` seconds, or sooner when many wait."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], interval: float = 1.0, batch: int = 1000
    ) -> None:
        super().__init__(interval, "torouter-usage-writer")
        self._sessions = sessions
        self._batch = batch
        self._rows: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self.written = 0

    def submit(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._rows)

    async def start(self) -> None:
        self.start_writing()

    async def wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._interval)
        self._wake.clear()

    async def flush(self) -> None:
        while self._rows:
            rows, self._rows = self._rows[: self._batch], self._rows[self._batch :]
            try:
                async with self._sessions() as session, session.begin():
                    # Core executemany: the ORM's bulk path costs several times more per row.
                    await session.execute(_INSERT, rows)
                self.written += len(rows)
            except asyncio.CancelledError:
                self._rows[:0] = rows  # put back: stop() flushes them
                raise
            except Exception as exc:
                # Put them back so a passing store outage loses nothing; the next tick retries.
                self._rows[:0] = rows
                log.warning("usage flush of %d rows failed (%s); will retry", len(rows), type(exc).__name__)
                return


def usage_row(
    *,
    request_id: str,
    created_at: float,
    key_id: int | None,
    key_name: str,
    group_name: str,
    account_name: str,
    surface: str,
    platform: str,
    endpoint: str,
    model: str,
    upstream_model: str,
    stream: bool,
    status_code: int,
    usage: Usage | None,
    latency_ms: float,
    ttft_ms: float | None,
    attempts: int,
    error: str | None = None,
    session: str | None = None,
    attempt_log: list[dict[str, Any]] | None = None,
    cost_usd: float = 0.0,
    estimated: bool = False,
) -> dict[str, Any]:
    u = usage or Usage()
    return {
        "request_id": request_id,
        "created_at": created_at,
        "key_id": key_id,
        "key_name": key_name,
        "group_name": group_name,
        "account_name": account_name,
        "surface": surface,
        "platform": platform,
        "endpoint": endpoint,
        "model": model,
        "upstream_model": upstream_model,
        "stream": stream,
        "status_code": status_code,
        "error": error,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_tokens": u.cached_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "cache_write_1h_tokens": u.cache_write_1h_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "cost_usd": cost_usd,
        "estimated": estimated,
        "latency_ms": latency_ms,
        "ttft_ms": ttft_ms,
        "attempts": attempts,
        "session": session[:200] if session else None,
        "attempt_log": attempt_log,
    }
