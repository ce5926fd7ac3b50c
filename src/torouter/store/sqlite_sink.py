"""Batched INSERTs into a SQLite file, written by a child process of their own.

In the gateway's process, the sqlite3 driver binds every parameter while holding the GIL, and
each batch took the GIL from the event loop many times over. Under load, writing usage that way
cost about 8% of the loop's calls a second (measured against the same gateway with the writes
dropped). The child binds and writes with its own interpreter: the loop only serialises a batch
and writes it to a pipe.

The protocol, over the child's stdin and stdout. The parent sends frames: a 4-byte little-endian
length, then JSON `[insert_prefix, width, rows]`. For each frame the child runs one transaction,
all rows or none, and answers one byte: 0 when it committed, 1 when it did not, followed by the
error on one line. The child ignores SIGINT and SIGTERM, since the gateway's own shutdown still
writes through it, and it exits when its stdin closes, which includes the parent dying.

    python -m torouter.store.sqlite_sink PATH [BUSY_TIMEOUT_SECONDS]
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import signal
import sqlite3
import struct
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

_LENGTH = struct.Struct("<I")
OK, FAILED = b"\x00", b"\x01"
MAX_ROWS_PER_STATEMENT = 512


class SinkError(Exception):
    """A batch the child did not commit: it failed, or the child is gone."""


def file_path(url: str | URL) -> str | None:
    """The file a SQLite URL names; None for other stores, in-memory databases and URI options
    (those keep to the engine, which knows how to open them)."""
    from sqlalchemy.engine import make_url  # here: the child process does without SQLAlchemy

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query:
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


@functools.cache
def statement_sizes(width: int) -> tuple[int, ...]:
    """Rows per INSERT, largest first: powers of two up to 512, within SQLite's limit on
    parameters, so a batch of any length takes a few statements whose texts repeat."""
    with contextlib.closing(sqlite3.connect(":memory:")) as probe:
        limit = probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    most = max(1, min(MAX_ROWS_PER_STATEMENT, limit // width))
    return tuple(1 << i for i in reversed(range(most.bit_length())))


@functools.cache
def _insert(prefix: str, width: int, rows: int) -> str:
    marks = "(" + ",".join("?" * width) + ")"
    return f"{prefix} VALUES {','.join([marks] * rows)}"


def multirow_statements(
    prefix: str, width: int, rows: Sequence[Sequence[Any]]
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The rows as multi-row INSERTs (`prefix` is `INSERT INTO t (a, b)`): each statement with
    the parameter sets it runs with, in the rows' order."""
    out: list[tuple[str, list[tuple[Any, ...]]]] = []
    at = 0
    for size in statement_sizes(width):
        sets = []
        while len(rows) - at >= size:
            sets.append(tuple(itertools.chain.from_iterable(rows[at : at + size])))
            at += size
        if sets:
            out.append((_insert(prefix, width, size), sets))
    return out


class SqliteSink:
    """The parent's end: one child per sink, started on the first batch, batches in order."""

    def __init__(self, path: str, busy_timeout: float = 30.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout  # how long the child waits for another writer's lock
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    def write(self, prefix: str, width: int, rows: Sequence[Sequence[Any]]) -> asyncio.Future[None]:
        """Send the rows to be committed in one transaction. The future settles once the child
        answers (SinkError: not committed). Cancelling it does not recall a batch already sent,
        so await it through `asyncio.shield`."""
        # Values JSON cannot carry (a lone surrogate) raise here; the driver could not bind them
        # either, and request bodies parsed by orjson never hold one.
        frame = orjson.dumps([prefix, width, rows])
        return asyncio.ensure_future(self._round_trip(frame))

    async def close(self) -> None:
        """After the batches already sent: the child's stdin closes and it exits."""
        async with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def _round_trip(self, frame: bytes) -> None:
        async with self._lock:
            proc = await self._child()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(_LENGTH.pack(len(frame)) + frame)
                await proc.stdin.drain()
                answer = await proc.stdout.readexactly(1)
                if answer != OK:
                    reason = (await proc.stdout.readline()).decode("utf-8", "replace").strip()
                    raise SinkError(reason or "the batch was not written")
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self._drop(proc)  # gone: the next batch starts another
                raise SinkError("the usage writer process exited") from exc
            except asyncio.CancelledError:
                # Its answer may still come, and would be read as the next batch's: this child
                # is done with (killed mid-transaction, SQLite rolls the batch back).
                self._drop(proc)
                raise

    def _drop(self, proc: asyncio.subprocess.Process) -> None:
        if self._proc is proc:
            self._proc = None
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

    async def _child(self) -> asyncio.subprocess.Process:
        if self._proc is None or self._proc.returncode is not None:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                self.path,
                str(self.busy_timeout),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                # A terminal's Ctrl+C goes to the gateway, which flushes here. A session of its
                # own also gives the writer its own autogroup, where Linux has them: in the
                # gateway's, the writer's batches raised its p99 at c=1 from 1.2 ms to 3.3 ms.
                start_new_session=True,
            )
        return self._proc


def serve(path: str, inp: BinaryIO, out: BinaryIO, busy_timeout: float = 30.0) -> None:
    """The child's loop: a transaction per frame until the input ends."""
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    # As the engine's connections: WAL is the file's own setting, durability is per connection.
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        while head := inp.read(_LENGTH.size):
            (size,) = _LENGTH.unpack(head)
            prefix, width, rows = orjson.loads(inp.read(size))
            try:
                conn.execute("BEGIN IMMEDIATE")  # the write lock now, not at the first INSERT
                for statement, parameter_sets in multirow_statements(prefix, width, rows):
                    conn.executemany(statement, parameter_sets)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.rollback()
                out.write(FAILED + f"{type(exc).__name__}: {exc}".replace("\n", " ").encode() + b"\n")
            else:
                out.write(OK)
            out.flush()
    finally:
        conn.close()


def main() -> None:
    os.nice(10)  # the gateway's loop (and its clients) come first: this work can wait a moment
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    busy_timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer, busy_timeout)


if __name__ == "__main__":
    main()
