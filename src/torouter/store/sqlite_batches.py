"""Batched writes to a SQLite file, each a whole transaction run by one thread of its own.

Through SQLAlchemy and aiosqlite, one usage flush took some 30 trips between the event loop and
the driver's thread (begin, cursor, each statement, commit, the pool's reset), and each trip
took the GIL back from the loop. Under load that was half a futex call per proxied call on the
loop's thread, and about 7% of its calls a second. Here a batch is one trip: the thread begins,
runs every statement and commits, and the loop only waits for the result.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import URL, make_url

Statements = Sequence[tuple[str, Sequence[Sequence[Any]]]]  # each SQL text with its parameter sets


def file_path(url: str | URL) -> str | None:
    """The file a SQLite URL names; None for other stores, in-memory databases and URI options
    (those keep to the engine, which knows how to open them)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query:
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


class SqliteBatches:
    """One connection, used only from one worker thread; `run` awaits a committed transaction."""

    def __init__(self, path: str, busy_timeout: float = 30.0) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torouter-sqlite")
        self._conn: sqlite3.Connection | None = None

    def write(self, statements: Statements) -> asyncio.Future[None]:
        """Run the statements in one transaction: all of them are committed, or none.

        The future settles when the transaction has ended. Cancelling it does not stop a
        transaction under way (await it through `asyncio.shield`).
        """
        return asyncio.get_running_loop().run_in_executor(self._thread, self._write, statements)

    async def close(self) -> None:
        """Finish what was started, then close the connection and end the thread."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)

    def _write(self, statements: Statements) -> None:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")  # the write lock now, not at the first INSERT
        try:
            for statement, parameter_sets in statements:
                conn.executemany(statement, parameter_sets)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
        # As the engine's connections: WAL is the file's own setting, durability is per connection.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
