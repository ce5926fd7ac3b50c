"""Usage batches on a SQLite file, written by a child process: one frame a batch, nothing lost or doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from tests.test_store import fresh_store, plain_row
from torouter.accounting.usage import UsageWriter
from torouter.store.schema import UsageRecord
from torouter.store.sqlite_sink import SinkError, SqliteSink, file_path


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
def test_only_a_plain_sqlite_file_gets_a_sink(url: str, path: str | None) -> None:
    assert file_path(url) == path


async def count_rows(sessions: Any) -> tuple[int, int]:
    async with sessions() as s:
        rows, distinct = (
            await s.execute(select(func.count(), func.count(UsageRecord.request_id.distinct())))
        ).one()
    return rows, distinct


async def writer_on_file(tmp_path: Path, busy_timeout: float = 30.0) -> tuple[Any, Any, UsageWriter]:
    db = tmp_path / "store.db"
    engine, sessions = await fresh_store(f"sqlite+aiosqlite:///{db}")
    writer = UsageWriter(sessions, interval=3600, batch=1000)  # never ticks: flush() and stop() write
    assert writer._sink is not None
    writer._sink.busy_timeout = busy_timeout
    return engine, sessions, writer


async def writer_with_child(
    tmp_path: Path, busy_timeout: float = 30.0
) -> tuple[Any, Any, UsageWriter, SqliteSink]:
    """A writer whose child is up: one row ("first") already written through it."""
    engine, sessions, writer = await writer_on_file(tmp_path, busy_timeout)
    sink = writer._sink
    assert sink is not None
    writer.submit(plain_row("first"))
    await writer.flush()
    assert sink._proc is not None and writer.written == 1
    return engine, sessions, writer, sink


def test_each_batch_is_one_frame_to_the_child_and_none_goes_through_the_engine(tmp_path: Path) -> None:
    async def main() -> None:
        engine, sessions, writer = await writer_on_file(tmp_path)
        inserts: list[str] = []

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def note(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("INSERT"):
                inserts.append(statement)

        sink = writer._sink
        assert sink is not None
        frames: list[int] = []
        send = sink._round_trip

        async def counted(frame: bytes) -> None:
            frames.append(len(frame))
            await send(frame)

        sink._round_trip = counted  # type: ignore[method-assign]
        for i in range(2500):
            writer.submit(plain_row(f"r{i}"))
        await writer.flush()
        assert len(frames) == 3 and writer.written == 2500 and not inserts  # 1000 + 1000 + 500
        assert await count_rows(sessions) == (2500, 2500)
        child = sink._proc
        assert child is not None and child.returncode is None
        # It yields the CPU to the gateway's loop and its clients when both want it.
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
        await writer.stop()
        assert child.returncode == 0  # its stdin closed: it finished and left
        await engine.dispose()

    asyncio.run(main())


def test_a_failed_batch_is_kept_whole_and_written_once_the_store_is_back(tmp_path: Path) -> None:
    async def main() -> None:
        engine, sessions, writer = await writer_on_file(tmp_path)
        for i in range(1300):
            writer.submit(plain_row(f"r{i}"))
        db = tmp_path / "store.db"
        with sqlite3.connect(db) as other:  # the table goes away under the writer
            other.execute("ALTER TABLE usage_records RENAME TO usage_records_away")
        await writer.flush()
        assert writer.pending == 1300 and writer.written == 0
        with sqlite3.connect(db) as other:
            other.execute("ALTER TABLE usage_records_away RENAME TO usage_records")
        await writer.stop()
        assert writer.pending == 0 and writer.written == 1300
        assert await count_rows(sessions) == (1300, 1300)
        await engine.dispose()

    asyncio.run(main())


def test_a_child_that_dies_is_replaced_and_its_batch_kept(tmp_path: Path) -> None:
    async def main() -> None:
        engine, sessions, writer, sink = await writer_with_child(tmp_path)
        assert sink._proc is not None
        first = sink._proc.pid
        os.kill(first, signal.SIGKILL)  # between batches: the next one starts another child
        await sink._proc.wait()
        writer.submit(plain_row("second"))
        await writer.flush()
        assert (writer.pending, writer.written) == (0, 2)
        assert sink._proc is not None
        second = sink._proc.pid
        assert second != first

        holder = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the child waits on this lock with the batch in hand
        for i in range(5):
            writer.submit(plain_row(f"r{i}"))
        flushing = asyncio.create_task(writer.flush())
        await asyncio.sleep(0.2)
        os.kill(second, signal.SIGKILL)  # mid-batch: nothing was committed
        await flushing
        holder.execute("COMMIT")
        holder.close()
        assert (writer.pending, writer.written) == (5, 2)
        await writer.flush()
        assert (writer.pending, writer.written) == (0, 7)
        assert sink._proc is not None and sink._proc.pid not in (first, second)
        await writer.stop()
        assert await count_rows(sessions) == (7, 7)
        await engine.dispose()

    asyncio.run(main())


def test_the_child_outlives_the_signals_a_shutdown_sends(tmp_path: Path) -> None:
    """SIGINT and SIGTERM are the gateway's to handle: its last flush still goes through the child."""

    async def main() -> None:
        engine, sessions, writer, sink = await writer_with_child(tmp_path)
        assert sink._proc is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            os.kill(sink._proc.pid, sig)
        await asyncio.sleep(0.2)
        assert sink._proc.returncode is None
        writer.submit(plain_row("after"))
        await writer.stop()
        assert writer.written == 2 and await count_rows(sessions) == (2, 2)
        await engine.dispose()

    asyncio.run(main())


@pytest.mark.parametrize("commits", [True, False])
def test_a_flush_cancelled_mid_transaction_neither_loses_nor_doubles_rows(
    tmp_path: Path, commits: bool
) -> None:
    """A batch sent is the child's: its rows go back to the queue only if it was not committed."""

    async def main() -> None:
        # The child is up before the clock matters.
        engine, sessions, writer, _ = await writer_with_child(tmp_path, busy_timeout=5.0 if commits else 0.3)
        db = tmp_path / "store.db"
        for i in range(700):
            writer.submit(plain_row(f"r{i}"))
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the child's BEGIN waits on this lock
        flushing = asyncio.create_task(writer.flush())
        await asyncio.sleep(0.1)
        flushing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flushing
        assert writer.pending == 0  # sent: not put back while the child may still commit it
        await asyncio.sleep(0.0 if commits else 0.6)  # past the failing child's busy timeout
        holder.execute("COMMIT")
        holder.close()
        deadline = time.monotonic() + 5
        while writer.written + writer.pending < 701:  # the batch ends one way or the other
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert (writer.written, writer.pending) == ((701, 0) if commits else (1, 700))
        await writer.stop()
        assert await count_rows(sessions) == (701, 701)
        await engine.dispose()

    asyncio.run(main())


def test_a_sink_sends_batches_in_order(tmp_path: Path) -> None:
    """Batches sent without waiting for one another are committed in the order they were sent."""

    async def main() -> None:
        db = tmp_path / "plain.db"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE t (a INTEGER, b TEXT)")
        sink = SqliteSink(str(db))
        writes = [
            sink.write("INSERT INTO t (a, b)", 2, [(n, f"v{n}") for n in range(i, i + 3)])
            for i in range(0, 30, 3)
        ]
        await asyncio.gather(*writes)
        await sink.close()
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT a, b FROM t ORDER BY rowid").fetchall() == [
                (n, f"v{n}") for n in range(30)
            ]

    asyncio.run(main())


def test_a_batch_cancelled_in_flight_leaves_no_answer_for_the_next(tmp_path: Path) -> None:
    """A round trip cancelled before its answer: the next batch must not read that answer as its own."""

    async def main() -> None:
        db = tmp_path / "plain.db"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE t (a INTEGER)")
        sink = SqliteSink(str(db), busy_timeout=5.0)
        await sink.write("INSERT INTO t (a)", 1, [(0,)])
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the child waits on this lock with batch 1 in hand
        first = sink.write("INSERT INTO t (a)", 1, [(1,)])
        await asyncio.sleep(0.2)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        holder.execute("COMMIT")
        holder.close()
        # A batch that fails must be told so, not handed the cancelled batch's "committed".
        with pytest.raises(SinkError):
            await sink.write("INSERT INTO missing (a)", 1, [(2,)])
        await sink.write("INSERT INTO t (a)", 1, [(3,)])
        await sink.close()
        with sqlite3.connect(db) as conn:  # the cancelled batch died with its child, uncommitted
            assert conn.execute("SELECT a FROM t ORDER BY rowid").fetchall() == [(0,), (3,)]

    asyncio.run(main())
