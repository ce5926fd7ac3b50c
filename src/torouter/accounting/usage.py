"""Usage records: built on the hot path, queued in memory, written to the store in batches."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import operator
from typing import Any

import orjson
from sqlalchemy import Dialect, TextClause, insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from torouter.hub import Usage
from torouter.store.schema import UsageRecord
from torouter.store.sqlite_sink import SinkError, SqliteSink, file_path, multirow_statements
from torouter.writer import BackgroundWriter

__all__ = ["Usage", "UsageWriter", "usage_row"]

log = logging.getLogger("torouter.usage")
_TABLE = UsageRecord.__table__
_INSERT = insert(_TABLE)
# The columns a usage row fills, in the table's order (`id` is the database's).
COLUMNS = tuple(c.name for c in _TABLE.columns if c.name not in ("id", "extra"))


@functools.cache
def batch_insert(dialect: Dialect) -> TextClause | None:
    """PostgreSQL: one INSERT that takes a whole batch as a single JSON parameter.

    SQLAlchemy's executemany binds each row's parameters on the event loop, some 13 µs a row:
    a stall of 13 ms a second at 1,000 calls/s. As one JSON text, the batch crosses the driver
    in one bind and the server unpacks it. None elsewhere (SQLite's JSON functions cost ~55 µs a
    row there, in the gateway's own process).
    """
    if dialect.name != "postgresql":
        return None
    quote = dialect.identifier_preparer.quote
    fields, values = [], []
    for c in COLUMNS:
        kind = _TABLE.c[c].type
        length = getattr(kind, "length", None)
        # Strings arrive as text and are cut to their column: a client's over-long model name
        # must not fail the batch (and every row queued behind it).
        fields.append(f"{quote(c)} {'text' if length else kind.compile(dialect=dialect)}")
        values.append(f"left({quote(c)}, {length})" if length else quote(c))
    names = ", ".join(quote(c) for c in COLUMNS)
    return text(
        f"INSERT INTO {_TABLE.name} ({names}) SELECT {', '.join(values)} "
        f"FROM json_to_recordset(CAST(:rows AS json)) AS r({', '.join(fields)})"
    )


# SQLite: plain tuples straight to the driver, which skips SQLAlchemy's per-row work, and many
# rows per INSERT (see store.sqlite_sink, which writes them for a SQLite file).
_as_tuple = operator.itemgetter(*COLUMNS)
_PREFIX = f"INSERT INTO {_TABLE.name} ({', '.join(COLUMNS)})"


def sqlite_statements(values: list[tuple[Any, ...]]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The rows as multi-row INSERTs: each statement with the parameter sets it runs with."""
    return multirow_statements(_PREFIX, len(COLUMNS), values)


_JSON_AT = COLUMNS.index("attempt_log")


def sqlite_values(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    values = list(map(_as_tuple, rows))
    for i, row in enumerate(rows):
        log_ = row["attempt_log"]
        if log_ is not None:  # a JSON column: the driver takes its text
            values[i] = (*values[i][:_JSON_AT], orjson.dumps(log_).decode(), *values[i][_JSON_AT + 1 :])
    return values


class UsageWriter(BackgroundWriter):
    """Collects usage rows and flushes them every `interval` seconds, or sooner when many wait."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], interval: float = 1.0, batch: int | None = None
    ) -> None:
        super().__init__(interval, "torouter-usage-writer")
        self._sessions = sessions
        self._rows: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self.written = 0
        engine = sessions.kw.get("bind")
        path = file_path(engine.url) if engine is not None else None
        # A SQLite file's batches are written by a child process (see store.sqlite_sink).
        self._sink = SqliteSink(path) if path is not None else None
        # `batch`: under load a flush starts as soon as this many rows wait. Small batches spread
        # the writing evenly. At c=1, each of the child's transactions slows the calls that
        # overlap it: batches of 1,000 put ~1 ms on the p99, of 256 ~0.4 ms, of 32 none we
        # could measure (nor any cost at c=32). Through the engine (PostgreSQL) a flush costs
        # this process a session and a round trip, so batches stay larger there.
        self._batch = batch or (32 if self._sink is not None else 256)

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

    async def stop(self) -> None:
        await super().stop()
        if self._sink is not None:
            await self._sink.close()
            self._sink = None  # a flush after stop (there should be none) takes the engine

    async def flush(self) -> None:
        while self._rows:
            rows, self._rows = self._rows[: self._batch], self._rows[self._batch :]
            written: asyncio.Future[None] | None = None
            try:
                if self._sink is not None:
                    written = self._sink.write(_PREFIX, len(COLUMNS), sqlite_values(rows))
                    await asyncio.shield(written)
                else:  # PostgreSQL, or an in-memory SQLite
                    async with self._sessions() as session, session.begin():
                        await self._insert(session, rows)
                self.written += len(rows)
            except asyncio.CancelledError:
                if written is None:
                    self._rows[:0] = rows  # put back: stop() flushes them
                else:  # the batch was sent: its rows come back only if it was not committed
                    written.add_done_callback(functools.partial(self._ended_late, rows))
                raise
            except Exception as exc:
                # Put them back so a passing store outage loses nothing; the next tick retries.
                self._rows[:0] = rows
                reason = str(exc) if isinstance(exc, SinkError) else type(exc).__name__
                log.warning("usage flush of %d rows failed (%s); will retry", len(rows), reason)
                return

    def _ended_late(self, rows: list[dict[str, Any]], written: asyncio.Future[None]) -> None:
        if written.cancelled() or written.exception() is not None:
            self._rows[:0] = rows
        else:
            self.written += len(rows)

    async def _insert(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        dialect = session.get_bind().dialect
        if dialect.name == "sqlite":
            connection = await session.connection()
            for statement, parameter_sets in sqlite_statements(sqlite_values(rows)):
                await connection.exec_driver_sql(statement, parameter_sets)
            return
        statement = batch_insert(dialect)
        if statement is not None:
            try:
                payload = orjson.dumps(rows).decode()
            except orjson.JSONEncodeError:
                payload = None  # a string orjson refuses (a lone surrogate): the slow path takes it
            if payload is not None:
                await session.execute(statement, {"rows": payload})
                return
        # Core executemany: the ORM's bulk path costs several times more per row.
        await session.execute(_INSERT, rows)


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
