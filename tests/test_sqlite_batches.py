"""Usage batches on a SQLite file: one trip to the writer's thread each, and nothing lost or doubled."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from tests.test_store import fresh_store, plain_row
from torouter.accounting.usage import UsageWriter
from torouter.store.schema import UsageRecord
from torouter.store.sqlite_batches import SqliteBatches, file_path


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite+aiosqlite:////var/lib/torouter/store.db", "/var/lib/torouter/store.db"),
        ("sqlite+aiosqlite:///./torouter.db", "./torouter.db"),
        ("sqlite:///relative.db", "relative.db"),
        ("sqlite+aiosqlite://", None),  # in memory: only the engine's connection sees it
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite+aiosqlite:///file:store.db?mode=rwc&uri=true", None),  # URI options: the engine's
        ("postgresql+asyncpg://u@127.0.0.1/test", None),
    ],
)
def test_only_a_plain_sqlite_file_gets_its_own_writer(url: str, path: str | None) -> None:
    assert file_path(url) == path


async def count_rows(sessions) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        rows, distinct = (
            await s.execute(select(func.count(), func.count(UsageRecord.request_id.distinct())))
        ).one()
    return rows, distinct


def test_each_batch_is_one_trip_to_the_thread_and_none_goes_through_the_engine(tmp_path: Path) -> None:
    async def main() -> None:
        engine, sessions = await fresh_store(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
        inserts: list[str] = []

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def note(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("INSERT"):
                inserts.append(statement)

        writer = UsageWriter(sessions, interval=3600, batch=1000)
        assert writer._file is not None
        trips = 0
        write = writer._file._write

        def counted(statements):  # type: ignore[no-untyped-def]
            nonlocal trips
            trips += 1
            write(statements)

        writer._file._write = counted  # type: ignore[method-assign]
        for i in range(2500):
            writer.submit(plain_row(f"r{i}"))
        await writer.flush()
        assert trips == 3 and writer.written == 2500 and not inserts  # 1000 + 1000 + 500
        assert await count_rows(sessions) == (2500, 2500)
        await writer.stop()
        await engine.dispose()

    asyncio.run(main())


def test_a_failed_batch_is_kept_whole_and_written_once_the_store_is_back(tmp_path: Path) -> None:
    async def main() -> None:
        db = tmp_path / "store.db"
        engine, sessions = await fresh_store(f"sqlite+aiosqlite:///{db}")
        writer = UsageWriter(sessions, interval=3600, batch=1000)
        for i in range(1300):
            writer.submit(plain_row(f"r{i}"))
        with sqlite3.connect(db) as other:  # the table goes away under the writer
            other.execute("ALTER TABLE usage_records RENAME TO usage_records_away")
        await writer.flush()
        assert writer.pending == 1300 and writer.written == 0
        with sqlite3.connect(db) as other:
            other.execute("ALTER TABLE usage_records_away RENAME TO usage_records")
            # The failed transaction left nothing behind: not even the first 1000 rows.
            assert other.execute("SELECT count(*) FROM usage_records").fetchone() == (0,)
        await writer.stop()
        assert writer.pending == 0 and writer.written == 1300
        assert await count_rows(sessions) == (1300, 1300)
        await engine.dispose()

    asyncio.run(main())


@pytest.mark.parametrize("commits", [True, False])
def test_a_flush_cancelled_mid_transaction_neither_loses_nor_doubles_rows(
    tmp_path: Path, commits: bool
) -> None:
    """The thread's transaction ends on its own: its rows go back to the queue only if it failed."""

    async def main() -> None:
        db = tmp_path / "store.db"
        engine, sessions = await fresh_store(f"sqlite+aiosqlite:///{db}")
        writer = UsageWriter(sessions, interval=3600)
        writer._file = SqliteBatches(str(db), busy_timeout=5.0 if commits else 0.3)
        for i in range(700):
            writer.submit(plain_row(f"r{i}"))
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the writer's BEGIN waits on this lock
        flushing = asyncio.create_task(writer.flush())
        await asyncio.sleep(0.1)
        flushing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flushing
        assert writer.pending == 0  # handed to the thread: not put back while it may still commit
        await asyncio.sleep(0.0 if commits else 0.6)  # past the failing writer's busy timeout
        holder.execute("COMMIT")
        holder.close()
        deadline = time.monotonic() + 5
        while writer.written + writer.pending < 700:  # the transaction ends one way or the other
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert (writer.written, writer.pending) == ((700, 0) if commits else (0, 700))
        await writer.stop()
        assert await count_rows(sessions) == (700, 700)
        await engine.dispose()

    asyncio.run(main())
